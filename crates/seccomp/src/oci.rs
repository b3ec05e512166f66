//! Docker/OCI-format profiles to the OCI runtime spec's `linux.seccomp`.
//!
//! This is what containerd's CRI plugin hands to the runtime for a
//! `RuntimeDefault` or `Localhost` profile (`contrib/seccomp/seccomp.go`,
//! `setupSeccomp`, which follows moby's `profiles/seccomp`): `archMap` is
//! reduced to the native architecture's entry, `includes`/`excludes` are
//! decided against the container's bounding capabilities, architecture and
//! kernel ([`Profile::resolve`]), the old single `name` becomes `names`, and
//! `comment`s are dropped. Like containerd, `architectures` is copied as
//! written (the native architecture is not added: libseccomp always covers it).

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::{Profile, SyscallRule};
use crate::resolve::ResolveContext;

/// Resolves `profile` for the container described by `ctx` and returns the
/// OCI `linux.seccomp` object.
///
/// Errors as containerd's: both `architectures` and `archMap`, or a rule with
/// both `name` and `names`.
pub fn to_oci(profile: &Profile, ctx: &ResolveContext) -> Result<Value> {
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(Error::Invalid {
            path: "architectures".into(),
            message: "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        });
    }
    let resolved = profile.resolve(ctx);
    let mut out = Map::new();
    out.insert("defaultAction".into(), json!(profile.default_action));
    if let Some(errno) = profile.default_errno_ret {
        out.insert("defaultErrnoRet".into(), json!(errno));
    }
    let architectures = architectures(profile, ctx);
    if !architectures.is_empty() {
        out.insert("architectures".into(), json!(architectures));
    }
    if !profile.flags.is_empty() {
        out.insert("flags".into(), json!(profile.flags));
    }
    if let Some(path) = &profile.listener_path {
        out.insert("listenerPath".into(), json!(path));
    }
    if let Some(meta) = &profile.listener_metadata {
        out.insert("listenerMetadata".into(), json!(meta));
    }
    let syscalls = resolved
        .rules
        .iter()
        .map(|r| syscall(&r.rule, r.index))
        .collect::<Result<Vec<_>>>()?;
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

/// `architectures` as written, or the native architecture's `archMap` entry.
fn architectures(profile: &Profile, ctx: &ResolveContext) -> Vec<crate::Arch> {
    if !profile.architectures.is_empty() {
        return profile.architectures.clone();
    }
    profile
        .arch_map
        .iter()
        .find(|e| e.architecture == ctx.arch)
        .map(|e| {
            std::iter::once(e.architecture)
                .chain(e.sub_architectures.iter().copied())
                .collect()
        })
        .unwrap_or_default()
}

/// One OCI `LinuxSyscall`.
fn syscall(rule: &SyscallRule, index: usize) -> Result<Value> {
    let names: Vec<&str> = match (&rule.name, rule.names.is_empty()) {
        (Some(_), false) => {
            return Err(Error::Invalid {
                path: format!("syscalls[{index}]"),
                message: "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
            })
        }
        (Some(name), true) => vec![name.as_str()],
        (None, _) => rule.names.iter().map(String::as_str).collect(),
    };
    let mut out = Map::new();
    out.insert("names".into(), json!(names));
    out.insert("action".into(), json!(rule.action));
    if let Some(errno) = rule.errno_ret {
        out.insert("errnoRet".into(), json!(errno));
    }
    if !rule.args.is_empty() {
        out.insert("args".into(), json!(rule.args));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KernelVersion;
    use crate::Arch;

    fn ctx(caps: &[&str]) -> ResolveContext {
        ResolveContext::new(
            Arch::X86_64,
            caps.iter().copied(),
            KernelVersion {
                major: 6,
                minor: 1,
                patch: 0,
            },
        )
    }

    fn tutorial(name: &str) -> Profile {
        let path = format!(
            "{}/../../testdata/tutorial/profiles/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Profile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn moby_default_resolves_by_capabilities() {
        let profile = crate::runtime_default();
        let plain = to_oci(&profile, &ctx(crate::resolve::DEFAULT_CAPS)).unwrap();
        assert_eq!(plain["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(plain["defaultErrnoRet"], 1);
        assert_eq!(
            plain["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let n = names(&plain);
        assert!(n.contains(&"read".to_string()));
        assert!(!n.contains(&"mount".to_string()));
        assert!(!n.contains(&"unshare".to_string()));
        // The CAP_SYS_ADMIN-only rule adds mount/unshare.
        let admin = to_oci(&profile, &ctx(&["CAP_SYS_ADMIN"])).unwrap();
        let n = names(&admin);
        assert!(n.contains(&"mount".to_string()) && n.contains(&"unshare".to_string()));
        // No includes/excludes/comment survive.
        let text = plain.to_string();
        assert!(
            !text.contains("includes") && !text.contains("excludes") && !text.contains("comment")
        );
        // clone's flag check is kept with its arguments.
        let clone = plain["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["names"] == json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    }

    #[test]
    fn tutorial_profiles() {
        let v = to_oci(&tutorial("violation.json"), &ctx(&[])).unwrap();
        assert_eq!(
            v,
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []})
        );
        let a = to_oci(&tutorial("audit.json"), &ctx(&[])).unwrap();
        assert_eq!(a, json!({"defaultAction": "SCMP_ACT_LOG", "syscalls": []}));
        let f = to_oci(&tutorial("fine-grained.json"), &ctx(&[])).unwrap();
        assert_eq!(
            f["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(f["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
        assert!(names(&f).contains(&"execve".to_string()));
    }

    #[test]
    fn name_and_names_and_arch_conflicts_are_errors() {
        let p = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let e = to_oci(&p, &ctx(&[])).unwrap_err().to_string();
        assert!(e.contains("use either 'name' or 'names'"), "{e}");
        let p = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert_eq!(names(&to_oci(&p, &ctx(&[])).unwrap()), ["read"]);
        let p = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[]}]}"#,
        )
        .unwrap();
        assert!(to_oci(&p, &ctx(&[])).is_err());
    }
}
