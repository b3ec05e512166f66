//! The `RuntimeDefault` profile: moby's default profile, as data.
//!
//! The JSON files in `profiles/` are copies (Apache-2.0, see `profiles/SOURCE`
//! and `profiles/LICENSE.Apache-2.0`). The node resolves the profile for each
//! container with [`Profile::resolve`](crate::model::Profile::resolve), which
//! applies the capability, architecture and kernel-version conditions.

use crate::model::Profile;

/// moby's `profiles/seccomp/default.json`.
pub const MOBY_DEFAULT_JSON: &str = include_str!("../profiles/moby-default.json");
/// containers/common's `pkg/seccomp/seccomp.json` (last release of that repository).
pub const CONTAINERS_COMMON_JSON: &str = include_str!("../profiles/containers-common-default.json");
/// containers/container-libs' `common/pkg/seccomp/seccomp.json` (its successor).
pub const CONTAINER_LIBS_COMMON_JSON: &str =
    include_str!("../profiles/container-libs-common-default.json");

fn parse_embedded(text: &str) -> Profile {
    // The embedded files are fixed at build time and parsed by the tests below,
    // so a failure here is a build defect, not bad input.
    Profile::from_json(text).expect("embedded profile parses")
}

/// The `RuntimeDefault` profile (moby's default).
pub fn runtime_default() -> Profile {
    parse_embedded(MOBY_DEFAULT_JSON)
}

/// containers/common's default profile (CRI-O and Podman).
pub fn containers_default() -> Profile {
    parse_embedded(CONTAINERS_COMMON_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::model::Action;
    use crate::policy::{ret, SeccompData};
    use crate::resolve::{ResolveContext, DEFAULT_CAPS};

    #[test]
    fn embedded_profiles_parse_and_validate() {
        for text in [
            MOBY_DEFAULT_JSON,
            CONTAINERS_COMMON_JSON,
            CONTAINER_LIBS_COMMON_JSON,
        ] {
            let p = Profile::from_json(text).unwrap();
            p.validate().unwrap();
            assert_eq!(p.default_action, Action::Errno);
        }
    }

    #[test]
    fn runtime_default_is_conditional_on_caps() {
        let p = runtime_default();
        let kernel = "6.1".parse().unwrap();
        let plain = p.resolve(&ResolveContext::new(
            Arch::X86_64,
            DEFAULT_CAPS.iter().copied(),
            kernel,
        ));
        let admin = p.resolve(&ResolveContext::new(
            Arch::X86_64,
            DEFAULT_CAPS.iter().copied().chain(["CAP_SYS_ADMIN"]),
            kernel,
        ));
        assert_eq!(plain.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
        let mount = |r: &crate::resolve::ResolvedProfile| {
            r.policy().unwrap().decide(&SeccompData {
                nr: 165, // mount
                arch: crate::arch::AUDIT_ARCH_X86_64,
                ..Default::default()
            })
        };
        assert_eq!(mount(&plain).ret, ret::ERRNO | 1);
        assert_eq!(mount(&admin).ret, ret::ALLOW);
    }

    #[test]
    fn node_compiles_runtime_default_in_one_call() {
        let ctx = ResolveContext::new(
            Arch::X86_64,
            DEFAULT_CAPS.iter().copied(),
            "6.1".parse().unwrap(),
        );
        let c = runtime_default().compile(&ctx).unwrap();
        assert_eq!(c.flags, crate::load::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
        let getppid = SeccompData {
            nr: 110,
            arch: crate::arch::AUDIT_ARCH_X86_64,
            ..Default::default()
        };
        assert_eq!(
            crate::bpf::interpret(&c.program, &getppid).unwrap().ret,
            ret::ALLOW
        );
        let ctx2 = ResolveContext::new(
            Arch::X86_64,
            DEFAULT_CAPS.iter().copied(),
            "6.1".parse().unwrap(),
        );
        assert!(Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_S390X"]}"#
        )
        .unwrap()
        .compile(&ctx2)
        .is_err());
    }
}
