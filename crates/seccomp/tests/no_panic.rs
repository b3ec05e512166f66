//! Bad input never panics: arbitrary bytes, mutated profiles, and whatever
//! parses also compiles (or fails with an error) to a program that agrees with
//! the model.

use armorlet_seccomp::bpf::interpret;
use armorlet_seccomp::resolve::{ResolveContext, DEFAULT_CAPS};
use armorlet_seccomp::{check, runtime_default::MOBY_DEFAULT_JSON, Arch, SeccompData};
use proptest::prelude::*;

fn compile_and_cross_check(bytes: &[u8]) {
    let Ok((profile, _)) = check(bytes) else {
        return;
    };
    for arch in [Arch::X86_64, Arch::X86, Arch::Aarch64] {
        let ctx = ResolveContext::new(arch, DEFAULT_CAPS.iter().copied(), "6.1".parse().unwrap());
        let Ok(policy) = profile.resolve(&ctx).policy() else {
            continue;
        };
        let Ok(prog) = policy.compile() else {
            continue;
        };
        for s in &policy.sections {
            for nr in s
                .syscalls
                .keys()
                .copied()
                .chain([0, 59, 0x4000_0000, u32::MAX])
            {
                let d = SeccompData {
                    nr,
                    arch: s.audit_arch,
                    args: [1, 2, 3, 4, 5, 6],
                    ..Default::default()
                };
                assert_eq!(interpret(&prog, &d).unwrap().ret, policy.decide(&d).ret);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        compile_and_cross_check(&bytes);
    }

    #[test]
    fn mutated_moby_profile_does_not_panic(
        edits in proptest::collection::vec((0usize..MOBY_DEFAULT_JSON.len(), any::<u8>()), 1..6)
    ) {
        let mut bytes = MOBY_DEFAULT_JSON.as_bytes().to_vec();
        for (at, b) in edits {
            bytes[at] = b;
        }
        compile_and_cross_check(&bytes);
    }

    #[test]
    fn random_rules_compile_to_programs_that_agree_with_the_model(
        rules in proptest::collection::vec(
            (0usize..40, 0usize..4, proptest::collection::vec((0u32..6, any::<u64>(), any::<u64>(), 0usize..7), 0..3)),
            0..12
        ),
        default in 0usize..4,
    ) {
        const NAMES: [&str; 8] = ["read", "write", "socket", "ipc", "clone", "personality", "getppid", "shmat"];
        const ACTIONS: [&str; 4] = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "SCMP_ACT_KILL_PROCESS"];
        const OPS: [&str; 7] = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];
        let rules: Vec<String> = rules.iter().map(|(n, a, args)| {
            let args: Vec<String> = args.iter().map(|(i, v, v2, op)| format!(
                r#"{{"index":{i},"value":{v},"valueTwo":{v2},"op":"{}"}}"#, OPS[*op])).collect();
            format!(r#"{{"names":["{}"],"action":"{}","args":[{}]}}"#, NAMES[n % 8], ACTIONS[*a], args.join(","))
        }).collect();
        let text = format!(
            r#"{{"defaultAction":"{}","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{}]}}"#,
            ACTIONS[default], rules.join(","));
        let (profile, _) = check(text.as_bytes()).unwrap();
        let ctx = ResolveContext::new(Arch::X86_64, DEFAULT_CAPS.iter().copied(), "6.1".parse().unwrap());
        let policy = profile.resolve(&ctx).policy().unwrap();
        let prog = policy.compile().unwrap();
        for s in &policy.sections {
            for nr in s.syscalls.keys() {
                for args in [[0u64; 6], [u64::MAX; 6], [1, 2, 3, 4, 5, 6], [1 << 32, 7, 1 << 63, 0, 0, 0]] {
                    let d = SeccompData { nr: *nr, arch: s.audit_arch, args, ..Default::default() };
                    prop_assert_eq!(interpret(&prog, &d).unwrap().ret, policy.decide(&d).ret);
                }
            }
        }
    }
}
