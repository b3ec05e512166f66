//! `armorlet apparmor load|unload|status` with the Landlock backend and a
//! temp data dir.

use std::path::Path;
use std::process::Command;

const DENY_WRITE: &str = "#include <tunables/global>
profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>
  file,
  deny /** w,
}
";

const EXACT: &str = "profile exact-one {\n  /data/** r,\n  /etc/hostname r,\n}\n";

fn armorlet(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_armorlet"))
        .arg("apparmor")
        .args(args)
        .arg("--backend")
        .arg("landlock")
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run armorlet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn load_status_unload_on_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let dw = data.join("deny-write");
    std::fs::write(&dw, DENY_WRITE).expect("write");
    let exact = data.join("exact");
    std::fs::write(&exact, EXACT).expect("write");
    let dws = dw.to_str().expect("utf8");

    let (code, _, err) = armorlet(data, &["load", dws]);
    assert_eq!(code, 2, "no node dirs yet: {err}");
    assert!(err.contains("no node directories"), "{err}");

    std::fs::create_dir_all(data.join("nodes/a")).expect("mkdir");
    std::fs::create_dir_all(data.join("nodes/b")).expect("mkdir");
    let (code, _, err) = armorlet(data, &["load", dws]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot be enforced by Landlock") && err.contains("signal rule"),
        "{err}"
    );

    let (code, out, err) = armorlet(
        data,
        &["load", "--approximate", dws, exact.to_str().expect("utf8")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("a: k8s-apparmor-example-deny-write: loaded (Landlock, with 1 tightening(s))"),
        "{out}"
    );
    assert!(
        out.contains("b: exact-one: loaded (Landlock, exactly)"),
        "{out}"
    );
    for n in ["a", "b"] {
        let profiles = std::fs::read_to_string(data.join(format!("nodes/{n}/apparmor/profiles")))
            .expect("profiles");
        assert_eq!(
            profiles,
            "exact-one (enforce)\nk8s-apparmor-example-deny-write (enforce)\n"
        );
    }

    let (code, out, _) = armorlet(data, &["status", "--node", "a"]);
    assert_eq!(code, 0);
    assert!(out.contains("2 profiles are loaded.\n2 profiles are in enforce mode.\n   exact-one\n   k8s-apparmor-example-deny-write\n"), "{out}");

    let (code, out, _) = armorlet(data, &["unload", "--node", "b", "exact-one"]);
    assert_eq!(code, 0);
    assert!(out.contains("b: exact-one: unloaded"), "{out}");
    let (code, _, err) = armorlet(data, &["unload", "--node", "b", "exact-one"]);
    assert_eq!(code, 1);
    assert!(err.contains("profile \"exact-one\" is not loaded"), "{err}");

    let bad = data.join("bad");
    std::fs::write(&bad, "profile broken {\n  /x rwz,\n}\n").expect("write");
    let (code, _, err) = armorlet(data, &["load", bad.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad:2"),
        "parse error names file and line: {err}"
    );
}
