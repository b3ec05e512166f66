//! Label and field selectors.
//!
//! Label syntax follows staging/src/k8s.io/apimachinery/pkg/labels/selector.go:
//! `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist),
//! comma-separated and ANDed.
//! Field syntax follows staging/src/k8s.io/apimachinery/pkg/fields/selector.go: `f=v`, `f==v`, `f!=v`.

use serde_json::Value;

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {detail}")]
pub struct SelectorError {
    /// What was wrong.
    pub detail: String,
}

fn err(detail: impl Into<String>) -> SelectorError {
    SelectorError {
        detail: detail.into(),
    }
}

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    /// `k=v` or `k==v`.
    Equals(String, String),
    /// `k!=v` (also true when the label is absent).
    NotEquals(String, String),
    /// `k in (a,b)`.
    In(String, Vec<String>),
    /// `k notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `k`.
    Exists(String),
    /// `!k`.
    DoesNotExist(String),
}

/// A conjunction of label requirements; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<LabelRequirement>,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(err(format!("unbalanced parenthesis in {s:?}")));
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(err(format!("unbalanced parenthesis in {s:?}")));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_set(rest: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            err(format!(
                "expected '(' and ')' around set values, found {rest:?}"
            ))
        })?;
    let mut values = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return Err(err(format!("invalid label value: {v:?}")));
        }
        values.push(v.to_string());
    }
    Ok(values)
}

impl LabelSelector {
    /// Parses a selector string; the empty string is the match-everything selector.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for term in split_top_level(s)? {
            let term = term.trim();
            if term.is_empty() {
                return Err(err("found empty requirement"));
            }
            let req = if let Some(key) = term.strip_prefix('!') {
                let key = key.trim();
                if !valid_key(key) {
                    return Err(err(format!("invalid label key {key:?}")));
                }
                LabelRequirement::DoesNotExist(key.to_string())
            } else if let Some(i) = term.find("!=") {
                let (k, v) = (term[..i].trim(), term[i + 2..].trim());
                Self::check(k, v)?;
                LabelRequirement::NotEquals(k.into(), v.into())
            } else if let Some(i) = term.find("==") {
                let (k, v) = (term[..i].trim(), term[i + 2..].trim());
                Self::check(k, v)?;
                LabelRequirement::Equals(k.into(), v.into())
            } else if let Some(i) = term.find('=') {
                let (k, v) = (term[..i].trim(), term[i + 1..].trim());
                Self::check(k, v)?;
                LabelRequirement::Equals(k.into(), v.into())
            } else if let Some(i) = term.find(" notin ") {
                let k = term[..i].trim();
                Self::check(k, "")?;
                LabelRequirement::NotIn(k.into(), parse_set(&term[i + 7..])?)
            } else if let Some(i) = term.find(" in ") {
                let k = term[..i].trim();
                Self::check(k, "")?;
                LabelRequirement::In(k.into(), parse_set(&term[i + 4..])?)
            } else {
                if !valid_key(term) {
                    return Err(err(format!("invalid label key {term:?}")));
                }
                LabelRequirement::Exists(term.to_string())
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    fn check(k: &str, v: &str) -> Result<(), SelectorError> {
        if !valid_key(k) {
            return Err(err(format!("invalid label key {k:?}")));
        }
        if !valid_value(v) {
            return Err(err(format!("invalid label value: {v:?}")));
        }
        Ok(())
    }

    /// Whether the selector matches nothing but everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Evaluates the selector against `metadata.labels` of an object.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches(|k| labels.and_then(|m| m.get(k)).and_then(Value::as_str))
    }

    /// Evaluates the selector against the `metadata.labels` of a stored object's JSON text
    /// without building the whole object: a list reads only the labels of the objects its
    /// selector rejects, which matters once objects carry `managedFields`. `None` when the
    /// text does not parse (the caller's full parse reports that).
    pub fn matches_json(&self, json: &str) -> Option<bool> {
        let probe: LabelsProbe<'_> = serde_json::from_str(json).ok()?;
        let labels = probe.metadata.labels;
        Some(self.matches(|k| labels.get(k).map(|v| v.as_ref())))
    }

    fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// The labels of an object; every other field is skipped without being built.
#[derive(serde::Deserialize)]
struct LabelsProbe<'a> {
    #[serde(borrow, default)]
    metadata: MetaProbe<'a>,
}

#[derive(Default, serde::Deserialize)]
struct MetaProbe<'a> {
    #[serde(borrow, default)]
    labels: std::collections::HashMap<std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>>,
}

/// One field requirement: `field=value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Dotted path such as `metadata.name` or `involvedObject.uid`.
    pub field: String,
    /// The value to compare with; a missing field reads as the empty string.
    pub value: String,
    /// `!=` instead of `=`.
    pub negated: bool,
}

/// A conjunction of field requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `a=b,c!=d,e==f`; values may be empty and may contain `\,`-escaped commas.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { requirements });
        }
        // Split on unescaped commas (fields.go splitTerms).
        let mut terms = Vec::new();
        let mut cur = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ',' => terms.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        terms.push(cur);
        for term in terms {
            let (field, value, negated) = if let Some(i) = term.find("!=") {
                (&term[..i], &term[i + 2..], true)
            } else if let Some(i) = term.find("==") {
                (&term[..i], &term[i + 2..], false)
            } else if let Some(i) = term.find('=') {
                (&term[..i], &term[i + 1..], false)
            } else {
                return Err(err(format!(
                    "invalid field selector: {term:?}: expected an operator (=, ==, !=)"
                )));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(err(format!(
                    "invalid field selector: {term:?}: empty field"
                )));
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                value: value.to_string(),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value a selector reads for `field` from `obj`: strings as they are, numbers and booleans
    /// printed, anything missing as "".
    pub fn field_value(obj: &Value, field: &str) -> String {
        let mut cur = obj;
        for part in field.split('.') {
            match cur.get(part) {
                Some(v) => cur = v,
                None => return String::new(),
            }
        }
        match cur {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }

    /// Evaluates the selector against an object.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let v = Self::field_value(obj, &r.field);
            (v == r.value) != r.negated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "labels": labels},
               "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn matches_json_agrees_with_matches_object() {
        let objects = [
            obj(json!({"app": "web", "tier": "front"})),
            obj(json!({"app": "db"})),
            obj(json!({"app": "we\\\"b"})),
            json!({"metadata": {"name": "nolabels"}}),
            json!({"kind": "X"}),
        ];
        for sel in [
            "app=web",
            "app!=web",
            "tier",
            "!tier",
            "app in (web,db)",
            "app notin (db)",
            "app=we\\\"b",
        ] {
            let Ok(sel) = LabelSelector::parse(sel) else {
                continue;
            };
            for o in &objects {
                let text = serde_json::to_string(o).unwrap();
                assert_eq!(
                    sel.matches_json(&text),
                    Some(sel.matches_object(o)),
                    "{sel:?} {o}"
                );
            }
        }
        assert_eq!(
            LabelSelector::parse("app=web").unwrap().matches_json("{"),
            None
        );
    }

    #[test]
    fn label_equality_and_inequality_follow_kubernetes_semantics() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        assert!(LabelSelector::parse("app=web").unwrap().matches_object(&o));
        assert!(LabelSelector::parse("app==web,tier=front")
            .unwrap()
            .matches_object(&o));
        assert!(!LabelSelector::parse("app=db").unwrap().matches_object(&o));
        assert!(LabelSelector::parse("app!=db").unwrap().matches_object(&o));
        // != matches objects without the label at all.
        assert!(LabelSelector::parse("missing!=x")
            .unwrap()
            .matches_object(&o));
        assert!(!LabelSelector::parse("app!=web").unwrap().matches_object(&o));
    }

    #[test]
    fn label_set_and_existence_operators() {
        let o = obj(json!({"app": "web"}));
        assert!(LabelSelector::parse("app in (db, web)")
            .unwrap()
            .matches_object(&o));
        assert!(!LabelSelector::parse("app in (db)")
            .unwrap()
            .matches_object(&o));
        assert!(LabelSelector::parse("app notin (db)")
            .unwrap()
            .matches_object(&o));
        assert!(LabelSelector::parse("env notin (prod)")
            .unwrap()
            .matches_object(&o));
        assert!(!LabelSelector::parse("app notin (web,db)")
            .unwrap()
            .matches_object(&o));
        assert!(LabelSelector::parse("app").unwrap().matches_object(&o));
        assert!(!LabelSelector::parse("!app").unwrap().matches_object(&o));
        assert!(LabelSelector::parse("!env,app in (web)")
            .unwrap()
            .matches_object(&o));
        assert!(LabelSelector::parse("").unwrap().matches_object(&o));
        assert!(!LabelSelector::parse("app")
            .unwrap()
            .matches_object(&json!({"metadata": {}})));
    }

    #[test]
    fn malformed_label_selectors_are_errors() {
        for bad in ["app in (a", "app=va lue", "=x", "a,,b", "app in a,b", "!"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn field_selectors_compare_dotted_paths() {
        let o = obj(json!({}));
        let s = FieldSelector::parse("metadata.name=web,spec.nodeName=node1").unwrap();
        assert!(s.matches_object(&o));
        let s = FieldSelector::parse(
            "spec.nodeName=node1,status.phase!=Succeeded,status.phase!=Failed",
        )
        .unwrap();
        assert!(s.matches_object(&o));
        assert!(!FieldSelector::parse("status.phase!=Running")
            .unwrap()
            .matches_object(&o));
        // Missing fields read as the empty string, as in describe node's `involvedObject.namespace=`.
        assert!(FieldSelector::parse("involvedObject.namespace=")
            .unwrap()
            .matches_object(&o));
        assert!(FieldSelector::parse("a=b").unwrap().requirements.len() == 1);
        assert!(FieldSelector::parse("novalue").is_err());
    }

    #[test]
    fn field_selector_values_may_contain_escaped_commas() {
        let s = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(s.requirements[0].value, "a,b");
    }
}
