//! Unit tests of the parser and validator: small policies and the verdict
//! (and, for rejections, a fragment of the message and its line).

use crate::{parse_str, profile_names, ParseOptions, Severity};

/// `Ok(())` expects acceptance; `Err((line, fragment))` a rejection whose
/// first error is on `line` and mentions `fragment`.
fn check(src: &str, expect: Result<(), (u32, &str)>) {
    let (_p, diags) = parse_str(src, "t.sd", &ParseOptions::default());
    let errs: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    match expect {
        Ok(()) => assert!(
            errs.is_empty(),
            "expected acceptance of:\n{src}\ngot: {errs:#?}"
        ),
        Err((line, frag)) => {
            let first = errs
                .first()
                .unwrap_or_else(|| panic!("expected rejection of:\n{src}"));
            assert!(
                first.message.contains(frag),
                "message {:?} lacks {frag:?} for:\n{src}",
                first.message
            );
            assert_eq!(first.span.line, line, "wrong line for {first:?}");
        }
    }
}

fn ok(src: &str) {
    check(src, Ok(()));
}

#[test]
fn file_rules_and_permissions() {
    ok("/usr/bin/foo {\n  /etc/passwd r,\n  rw /tmp/x,\n  owner /home/** rwk,\n  /bin/ls ix,\n  /bin/sh Px -> other,\n}\n");
    ok("profile p {\n  file,\n  audit deny /secret/** w,\n  deny /bin/x x,\n}\n");
    check("/f {\n  /a aw,\n}\n", Err((2, "mutually exclusive")));
    check("/f {\n  /a wa,\n}\n", Err((2, "mutually exclusive")));
    check("/f {\n  /a x,\n}\n", Err((2, "'x' must be preceded")));
    check("/f {\n  deny /a ix,\n}\n", Err((2, "in deny rules")));
    check("/f {\n  /a pxux,\n}\n", Err((2, "conflicting qualifier")));
    check("/f {\n  /a r\n}\n", Err((3, "syntax error")));
}

#[test]
fn exec_conflicts_between_rules() {
    check(
        "/f {\n  /bin/cat px,\n  /bin/cat ix,\n}\n",
        Err((3, "conflicting x")),
    );
    ok("/f {\n  /bin/cat px,\n  /bin/* ix,\n}\n");
    check(
        "/f {\n  /bin/* px,\n  /bin/** ix,\n}\n",
        Err((3, "conflicting x")),
    );
    ok("/f {\n  /bin/cat px,\n  px /bin/cat,\n}\n");
    ok("/f {\n  unsafe /bin/cat px,\n  /bin/cat px,\n}\n");
    check(
        "/f {\n  safe /bin/cat px,\n  /bin/cat px,\n}\n",
        Err((3, "conflicting x")),
    );
}

#[test]
fn variables_and_alternations() {
    ok("@{A}=a b\n@{B}=@{A}/c\n/f {\n  /x/@{B} r,\n}\n");
    check("/f {\n  /x/@{NOPE} r,\n}\n", Err((2, "never declared")));
    check("@{A}=a\n@{A}=b\n/f {}\n", Err((2, "previously declared")));
    check("@{A}+=b\n/f {}\n", Err((1, "not previously declared")));
    check("@{A}=a,\n/f {}\n", Err((1, "trailing commas")));
    check("/f {\n  /a{} r,\n}\n", Err((2, "Invalid number of items")));
    check("/f {\n  /a{b} r,\n}\n", Err((2, "Invalid number of items")));
    check("/f {\n  /a{b,c r,\n}\n", Err((2, "Unclosed")));
    ok("/f {\n  @{profile_name} r,\n  @{exec_path} r,\n}\n");
    check(
        "profile f {\n  @{exec_path} r,\n}\n",
        Err((2, "never declared")),
    );
    check(
        "@{A}=@{A}\n/f {\n  /@{A} r,\n}\n",
        Err((3, "referenced recursively")),
    );
}

#[test]
fn conditionals_and_booleans() {
    ok("$X=true\n/f {\n  if $X {\n    /a r,\n  } else {\n    /b r,\n  }\n}\n");
    ok("@{V}=1\n/f {\n  if defined @{V} and not defined @{W} {\n    /a r,\n  }\n}\n");
    check("/f {\n  if $NOPE {\n  }\n}\n", Err((2, "Unset boolean")));
    check("$X=maybe\n/f {}\n", Err((1, "not true or false")));
    check("$X+=true\n/f {}\n", Err((1, "+= not allowed")));
    ok("$X=TRUE\n/f {}\n");
}

#[test]
fn profiles_flags_and_names() {
    ok("profile foo /bin/foo flags=(complain,attach_disconnected) {\n  ^hat {}\n  profile child {}\n}\n");
    check("foo {}\n", Err((1, "Profile names must begin")));
    check("/f flags=(complain,enforce) {}\n", Err((1, "conflicts")));
    check("/f flags=(bogus) {}\n", Err((1, "Invalid profile flag")));
    check(
        "/f flags=(kill.signal=nosuch) {}\n",
        Err((1, "unknown signal")),
    );
    ok("/f flags=(kill.signal=hup, error=EPERM, interruptible) {}\n");
    check("/f {}\n/f {}\n", Err((2, "more than once")));
    check("/f {\n  ^h {}\n  ^h {}\n}\n", Err((3, "defined twice")));
    let (p, d) = parse_str(
        "profile b {\n ^z {}\n ^a {}\n}\n/a { }\n",
        "t",
        &ParseOptions::default(),
    );
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(profile_names(&p), vec!["/a", "b", "b//a", "b//z"]);
}

#[test]
fn class_rules() {
    ok("/f {\n  capability chown sys_admin,\n  network inet stream,\n  network tcp,\n  signal (send) set=(hup, int) peer=foo,\n  ptrace read peer=bar,\n}\n");
    check(
        "/f {\n  capability nosuch,\n}\n",
        Err((2, "Invalid capability")),
    );
    check("/f {\n  owner capability chown,\n}\n", Err((2, "owner")));
    check(
        "/f {\n  network foo,\n}\n",
        Err((2, "Invalid network entry")),
    );
    ok("/f {\n  network inet ip=1.2.3.4 port=80 peer=(ip=::1 port=1-1024),\n}\n");
    check(
        "/f {\n  network unix ip=1.2.3.4,\n}\n",
        Err((2, "does not support")),
    );
    check("/f {\n  network ip=1.2.3.999,\n}\n", Err((2, "invalid ip")));
    check(
        "/f {\n  signal set=(nosig),\n}\n",
        Err((2, "unknown signal")),
    );
    ok("/f {\n  dbus send bus=session path=/a interface=b member=c peer=(name=d label=e),\n  dbus bind name=x,\n}\n");
    check("/f {\n  dbus bind path=/a,\n}\n", Err((2, "bind")));
    ok("/f {\n  unix (connect) type=stream addr=@foo peer=(label=bar addr=none),\n}\n");
    check(
        "/f {\n  unix addr=foo,\n}\n",
        Err((2, "invalid value for addr")),
    );
    check(
        "/f {\n  unix label=foo,\n}\n",
        Err((2, "only valid in the peer")),
    );
    ok("/f {\n  mount options=(ro,nosuid) /dev/sda -> /mnt,\n  umount /mnt,\n  pivot_root oldroot=/old /new,\n}\n");
    check(
        "/f {\n  mount options=(ro,rw) -> /mnt,\n}\n",
        Err((2, "conflicting flags")),
    );
    check(
        "/f {\n  mount options=(bogus) -> /mnt,\n}\n",
        Err((2, "unsupported mount option")),
    );
    ok("/f {\n  set rlimit nofile <= 1024,\n  set rlimit as <= 4GB,\n  set rlimit cpu <= 10seconds,\n}\n");
    check("/f {\n  set rlimit nice <= 20,\n}\n", Err((2, "RLIMIT")));
    ok("/f {\n  change_profile -> foo,\n  change_profile safe /bin/a -> b,\n  userns create,\n  io_uring sqpoll,\n  mqueue read /q,\n  all,\n}\n");
    check(
        "/f {\n  change_profile safe -> foo,\n}\n",
        Err((2, "Exec condition is required")),
    );
    check("/f {\n  mqueue type=sysv /q,\n}\n", Err((2, "sysv")));
    check("/f {\n  priority=1 all,\n}\n", Err((2, "priority")));
    ok("/f {\n  priority=-5 /a r,\n  audit deny owner /b w,\n}\n");
    check(
        "/f {\n  priority=1001 /a r,\n}\n",
        Err((2, "invalid priority")),
    );
}

#[test]
fn preamble_abi_alias_includes() {
    ok("abi <kernel>,\nalias /usr/ -> /mnt/usr/,\n/f {}\n");
    check(
        "include <does/not/exist>\n/f {}\n",
        Err((1, "could not open include")),
    );
    ok("include if exists <does/not/exist>\n/f {}\n");
    ok("#include if exists \"/does/not/exist\"\n/f {}\n");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for src in [
        "\0\u{1}\u{2}{{{",
        "}}}}",
        "/f {",
        "profile",
        "@{",
        "$",
        "\"",
        "/f { /a r",
        "if",
        "^",
    ] {
        let (_p, d) = parse_str(src, "junk", &ParseOptions::default());
        assert!(
            d.iter().any(|x| x.severity == Severity::Error),
            "no error for {src:?}"
        );
    }
    // deep nesting is bounded with an error
    let deep = format!(
        "/f {{\n{}{}}}\n",
        "audit {\n".repeat(500),
        "}\n".repeat(500)
    );
    let (_p, d) = parse_str(&deep, "deep", &ParseOptions::default());
    assert!(
        d.iter().any(|x| x.message.contains("nested too deeply")),
        "{:?}",
        d.first()
    );
    // large inputs are refused with a message
    let big = "#".repeat(crate::source::MAX_FILE_SIZE + 1);
    let (_p, d) = parse_str(&big, "big", &ParseOptions::default());
    assert!(d[0].message.contains("larger than"));
}

#[test]
fn include_cycles_terminate() {
    let dir = std::env::temp_dir().join(format!("aa-incl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("a"), "include <b>\n/x r,\n").expect("write");
    std::fs::write(dir.join("b"), "include <a>\n/y r,\n").expect("write");
    let opts = ParseOptions {
        include_dirs: vec![dir.clone()],
    };
    let (p, d) = parse_str("/f {\n  include <a>\n}\n", "cyc", &opts);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(p.profiles[0].rules.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
