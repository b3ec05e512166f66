//! YAML documents decoded with a bound on their expanded size.
//!
//! serde_yaml refuses the classic "billion laughs" (it replays at most 100 aliases per event
//! of the document), but not a quadratic expansion: `a: &a [x, x, ...]` with n items and then
//! `b: [*a, *a, ...]` with n aliases is n² values from 6n bytes (25 KB of YAML took 2.5 GB and
//! 10 s in serde_yaml 0.9). Decoding through [`Budget`] counts every value and every string
//! byte as it is produced, aliases included, and stops at the limits with an error, as kind's
//! YAML library (go-yaml) refuses such a document ("document contains excessive aliasing").
//! The limits are far above any real config: a kind config has hundreds of values.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

/// Values (scalars, sequences, mappings, keys included) one budget allows.
pub const MAX_VALUES: usize = 100_000;
/// String bytes (scalars and keys) one budget allows.
pub const MAX_STRING_BYTES: usize = 16 << 20;

/// What is left to decode; shared by all documents decoded with it.
#[derive(Debug)]
pub struct Budget {
    values: Cell<usize>,
    bytes: Cell<usize>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            values: Cell::new(MAX_VALUES),
            bytes: Cell::new(MAX_STRING_BYTES),
        }
    }
}

impl Budget {
    /// Decodes a single-document YAML text (as `serde_yaml::from_str::<Value>`).
    pub fn document(&self, text: &str) -> Result<Value, serde_yaml::Error> {
        Seed(self).deserialize(serde_yaml::Deserializer::from_str(text))
    }

    /// Decodes every document of a YAML stream (as `serde_yaml::Deserializer::from_str`).
    pub fn documents<'a>(
        &'a self,
        text: &'a str,
    ) -> impl Iterator<Item = Result<Value, serde_yaml::Error>> + 'a {
        serde_yaml::Deserializer::from_str(text).map(move |doc| Seed(self).deserialize(doc))
    }

    fn charge<E: de::Error>(&self, values: usize, bytes: usize) -> Result<(), E> {
        match (
            self.values.get().checked_sub(values),
            self.bytes.get().checked_sub(bytes),
        ) {
            (Some(v), Some(b)) => {
                self.values.set(v);
                self.bytes.set(b);
                Ok(())
            }
            _ => Err(E::custom(format!(
                "the YAML expands to more than {MAX_VALUES} values or {MAX_STRING_BYTES} bytes \
                 of strings (an alias counts as a copy of its anchor): refused as excessive \
                 aliasing or an oversized config"
            ))),
        }
    }
}

struct Seed<'a>(&'a Budget);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Number(u.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Number(f.into()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.0.charge(1, s.len())?;
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.0.charge(1, s.len())?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.charge(1, 0)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed(self.0))? {
            out.push(v);
        }
        Ok(Value::Sequence(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.charge(1, 0)?;
        let mut out = Mapping::new();
        while let Some(k) = map.next_key_seed(Seed(self.0))? {
            if out.contains_key(&k) {
                // serde_yaml's own message for a repeated key.
                return Err(de::Error::custom(match &k {
                    Value::Null => "duplicate entry with null key".to_owned(),
                    Value::Bool(b) => format!("duplicate entry with key `{b}`"),
                    Value::Number(n) => format!("duplicate entry with key {n}"),
                    Value::String(s) => format!("duplicate entry with key {s:?}"),
                    _ => "duplicate entry in YAML map".to_owned(),
                }));
            }
            let v = map.next_value_seed(Seed(self.0))?;
            out.insert(k, v);
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (tag, contents) = data.variant::<String>()?;
        if tag.is_empty() {
            return Err(de::Error::custom("empty YAML tag is not allowed"));
        }
        self.0.charge(1, tag.len())?;
        let value = contents.newtype_variant_seed(Seed(self.0))?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a: &a [x × n]`, `b: [*a × n]`: n² values from 6n bytes.
    fn quadratic(n: usize) -> String {
        format!(
            "a: &a [{}x]\nb: [{}*a]\n",
            "x, ".repeat(n),
            "*a, ".repeat(n)
        )
    }

    #[test]
    fn decodes_like_serde_yaml() {
        for text in [
            "a: &x [1, -2, 3.5, true, ~, 'q']\nb: *x\nc: !Tag {k: v}\n? [1]\n: z\n",
            "! x",
            "!!str 5",
            "- .nan\n- 0x1F\n- 1e400\n- !!binary aGk=\n",
        ] {
            let ours = Budget::default().document(text).unwrap();
            let theirs: Value = serde_yaml::from_str(text).unwrap();
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{text:?}");
        }
        let docs: Vec<Value> = Budget::default()
            .documents("a: 1\n---\nb: [2]\n")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"][0], Value::from(2));
    }

    #[test]
    fn keeps_serde_yaml_errors() {
        let b = Budget::default();
        for (text, want) in [
            ("a: 1\na: 2\n", "duplicate entry with key \"a\""),
            ("a: 1\n---\nb: 2\n", "more than one document"),
            ("a: [", "did not find expected"),
            ("a: *nope\n", "unknown anchor"),
            ("a: [1, {b: 2]\n", "did not find expected"),
        ] {
            let e = b.document(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn quadratic_alias_expansion_is_refused() {
        // 2000 × 2000 = 4M values, which serde_yaml alone builds; the budget stops at 100k.
        let e = Budget::default()
            .document(&quadratic(2000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("excessive aliasing"), "{e}");
        // Small expansions are fine.
        assert!(Budget::default().document(&quadratic(100)).is_ok());
    }

    #[test]
    fn aliased_long_strings_count_their_bytes() {
        let long = "y".repeat(1 << 20);
        let text = format!("a: &a {long}\nb: [{}*a]\n", "*a, ".repeat(20));
        let e = Budget::default().document(&text).unwrap_err().to_string();
        assert!(e.contains("excessive aliasing"), "{e}");
    }

    #[test]
    fn the_budget_is_shared_between_documents() {
        let b = Budget::default();
        let one = format!("[{}x]", "x, ".repeat(MAX_VALUES / 2));
        assert!(b.document(&one).is_ok());
        assert!(b.document(&one).is_err(), "second half-budget document");
    }
}
