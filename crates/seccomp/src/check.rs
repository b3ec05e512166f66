//! Parsing with JSON paths in errors, and validation.
//!
//! Errors follow what crun (our default runtime) rejects; warnings follow what it
//! accepts with a warning (syscall names unknown on every architecture, which
//! libseccomp cannot resolve and runtimes skip).

use crate::error::{Error, Result, Warning};
use crate::model::{Action, Profile};
use crate::syscalls;

/// The largest profile accepted. The biggest real profiles are tens of
/// kilobytes; anything near this size is a mistake or an attack.
pub const MAX_PROFILE_BYTES: usize = 1 << 20;

/// Syscall arguments are numbered 0 to 5.
pub const MAX_ARGS: u32 = 6;

impl Profile {
    /// Parses profile JSON. Errors carry the JSON path of the offending value.
    pub fn from_json(text: &str) -> Result<Profile> {
        Profile::from_slice(text.as_bytes())
    }

    /// Parses profile JSON from bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Profile> {
        if bytes.len() > MAX_PROFILE_BYTES {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: MAX_PROFILE_BYTES,
            });
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let profile: Profile =
            serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Parse {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| Error::Parse {
            path: ".".into(),
            message: e.to_string(),
        })?;
        Ok(profile)
    }

    /// Checks what the types cannot: errnoRet only on ERRNO/TRACE, argument
    /// indexes, rules without names, NOTIFY as the default. Returns the warnings.
    pub fn validate(&self) -> Result<Vec<Warning>> {
        let invalid = |path: String, message: String| Error::Invalid { path, message };
        if self.default_errno_ret.is_some() && !self.default_action.takes_errno() {
            return Err(invalid(
                "defaultErrnoRet".into(),
                format!(
                    "an errno value is not allowed with default action {}",
                    self.default_action
                ),
            ));
        }
        if self.default_action == Action::Notify {
            return Err(invalid(
                "defaultAction".into(),
                "SCMP_ACT_NOTIFY cannot be the default action".into(),
            ));
        }
        let mut warnings = Vec::new();
        for (i, rule) in self.syscalls.iter().enumerate() {
            if rule.errno_ret.is_some() && !rule.action.takes_errno() {
                return Err(invalid(
                    format!("syscalls[{i}].errnoRet"),
                    format!("an errno value is not allowed with action {}", rule.action),
                ));
            }
            if rule.all_names().next().is_none() {
                return Err(invalid(
                    format!("syscalls[{i}].names"),
                    "a rule needs at least one syscall name".into(),
                ));
            }
            for (j, arg) in rule.args.iter().enumerate() {
                if arg.index >= MAX_ARGS {
                    return Err(invalid(
                        format!("syscalls[{i}].args[{j}].index"),
                        format!("argument index {} is out of range 0..=5", arg.index),
                    ));
                }
            }
            for (j, name) in rule.names.iter().enumerate() {
                if !syscalls::known_anywhere(name) {
                    warnings.push(Warning {
                        path: format!("syscalls[{i}].names[{j}]"),
                        message: format!("unknown syscall {name:?} (skipped, as libseccomp does)"),
                    });
                }
            }
            if let Some(name) = &rule.name {
                if !syscalls::known_anywhere(name) {
                    warnings.push(Warning {
                        path: format!("syscalls[{i}].name"),
                        message: format!("unknown syscall {name:?} (skipped, as libseccomp does)"),
                    });
                }
            }
        }
        Ok(warnings)
    }
}

/// Parses and validates in one go.
pub fn check(bytes: &[u8]) -> Result<(Profile, Vec<Warning>)> {
    let profile = Profile::from_slice(bytes)?;
    let warnings = profile.validate()?;
    Ok((profile, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match check(text.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn unknown_action_names_the_path() {
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"names":["write"],"action":"SCMP_ACT_FOO"}]}"#);
        assert!(
            e.starts_with("syscalls[1].action: unknown action \"SCMP_ACT_FOO\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_operator_and_arch_name_the_path() {
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#);
        assert!(
            e.starts_with("syscalls[0].args[0].op: unknown operator \"SCMP_CMP_XX\""),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_VAX"]}"#,
        );
        assert!(
            e.starts_with("architectures[1]: unknown architecture \"SCMP_ARCH_VAX\""),
            "{e}"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["pdp11"]}}]}"#,
        );
        assert!(e.starts_with("syscalls[0].includes.arches[0]:"), "{e}");
    }

    #[test]
    fn malformed_json_is_an_error_with_position() {
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"#);
        assert!(e.contains("line 1"), "{e}");
        let e = err("");
        assert!(e.contains("EOF"), "{e}");
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO"} trailing"#);
        assert!(e.contains("trailing"), "{e}");
        let e = err(r#"{"syscalls":[]}"#);
        assert!(e.contains("defaultAction"), "{e}");
        let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":-1}"#);
        assert!(e.starts_with("defaultErrnoRet:"), "{e}");
        let deep = "[".repeat(100_000);
        let e = err(&deep);
        assert!(!e.is_empty());
    }

    #[test]
    fn oversized_profile_is_rejected_without_parsing() {
        let mut big = String::from(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":["#);
        while big.len() < 10 * 1024 * 1024 {
            big.push_str(r#"{"names":["read"],"action":"SCMP_ACT_ALLOW"},"#);
        }
        big.push_str(r#"{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#);
        let e = err(&big);
        assert!(e.starts_with("profile is 1048"), "{e}");
        assert!(e.contains("limit of 1048576 bytes"), "{e}");
    }

    #[test]
    fn semantic_errors_and_warnings() {
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":1}]}"#,
        );
        assert_eq!(
            e,
            "syscalls[0].errnoRet: an errno value is not allowed with action SCMP_ACT_ALLOW"
        );
        let e = err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(
            e,
            "syscalls[0].args[0].index: argument index 6 is out of range 0..=5"
        );
        let (_, w) = check(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","frobnicate"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "syscalls[0].names[1]: unknown syscall \"frobnicate\" (skipped, as libseccomp does)"
        );
    }
}
