//! `armorlet apparmor explain`: verdicts, deciding rules and exit codes
//! (0 allow, 1 deny, 2 error) on the k8s tutorial profile (with the
//! system's /etc/apparmor.d, from the `apparmor` Debian package) and on
//! moby's docker-default profile from the shared oracle data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn armorlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_armorlet"))
        .args(["apparmor", "explain"])
        .args(args)
        .output()
        .expect("running armorlet")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The k8s tutorial profile, written to a scratch directory.
struct K8sProfile {
    dir: PathBuf,
    file: String,
}

impl K8sProfile {
    fn new(tag: &str) -> K8sProfile {
        assert!(
            Path::new("/etc/apparmor.d/tunables/global").is_file(),
            "/etc/apparmor.d is missing: install the `apparmor` Debian package"
        );
        let dir =
            std::env::temp_dir().join(format!("armorlet-explain-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let file = dir.join("deny-write.sd");
        std::fs::write(
            &file,
            "#include <tunables/global>\n\
             \n\
             profile k8s-apparmor-example-deny-write flags=(attach_disconnected) {\n\
             \x20 #include <abstractions/base>\n\
             \n\
             \x20 file,\n\
             \n\
             \x20 # Deny all file writes.\n\
             \x20 deny /** w,\n\
             }\n",
        )
        .expect("writing the profile");
        K8sProfile {
            file: file.display().to_string(),
            dir,
        }
    }
}

impl Drop for K8sProfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn write_is_denied_with_the_deciding_rule_and_exit_1() {
    let p = K8sProfile::new("w");
    let o = armorlet(&[
        &p.file,
        "-I",
        "/etc/apparmor.d",
        "--path",
        "/tmp/test",
        "--access",
        "w",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}{}", stderr(&o));
    assert!(
        out.contains("profile: k8s-apparmor-example-deny-write (enforce)"),
        "{out}"
    );
    assert!(
        out.contains("verdict: deny (explicit deny rule; not logged)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}:9:3  deny /** w,", p.file)),
        "the deciding rule with file:line and its text: {out}"
    );
}

#[test]
fn read_is_allowed_with_exit_0() {
    let p = K8sProfile::new("r");
    let o = armorlet(&[
        &p.file,
        "-I",
        "/etc/apparmor.d",
        "--path",
        "/tmp/test",
        "--access",
        "r",
        "--owner",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(out.contains("verdict: allow"), "{out}");
    assert!(out.contains(&format!("{}:6:3  file,", p.file)), "{out}");
    assert!(out.contains("request: file /tmp/test r (owner)"), "{out}");
}

#[test]
fn capability_not_granted_is_denied_and_logged() {
    let p = K8sProfile::new("cap");
    let o = armorlet(&[
        &p.file,
        "-I",
        "/etc/apparmor.d",
        "--capability",
        "sys_admin",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}{}", stderr(&o));
    assert!(
        out.contains("verdict: deny (no rule grants it; logged (DENIED))"),
        "{out}"
    );
}

#[test]
fn includes_default_to_etc_apparmor_d_like_check() {
    let p = K8sProfile::new("base");
    let o = armorlet(&[&p.file, "--path", "/tmp/test", "--access", "w"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("deny /** w,"), "{}", stdout(&o));
}

#[test]
fn errors_exit_2() {
    let p = K8sProfile::new("err");
    // includes not found (a base directory without the abstractions): the policy is invalid
    let empty = std::env::temp_dir().join(format!("armorlet-explain-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let empty_s = empty.to_str().unwrap();
    let o = armorlet(&[
        &p.file,
        "-b",
        empty_s,
        "--path",
        "/tmp/test",
        "--access",
        "w",
    ]);
    let _ = std::fs::remove_dir(&empty);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(stderr(&o).contains("tunables/global"), "{}", stderr(&o));
    // bad access letter
    let o = armorlet(&[
        &p.file,
        "-I",
        "/etc/apparmor.d",
        "--path",
        "/x",
        "--access",
        "rq",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("unknown permission 'q'"),
        "{}",
        stderr(&o)
    );
    // unknown profile
    let o = armorlet(&[
        &p.file,
        "-I",
        "/etc/apparmor.d",
        "--profile",
        "nope",
        "--path",
        "/x",
        "--access",
        "r",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no profile named 'nope'"),
        "{}",
        stderr(&o)
    );
    // missing file
    let o = armorlet(&["/nonexistent/p.sd", "--capability", "chown"]);
    assert_eq!(code(&o), 2);
    // no request
    let o = armorlet(&[&p.file]);
    assert_eq!(code(&o), 2);
}

#[test]
fn docker_default_network_and_signals() {
    let shared = match std::env::var_os("ARMORLET_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let golden = shared.join("oracles/apparmor/docker-default/default.golden");
    assert!(golden.is_file(), "{} is missing", golden.display());
    let golden = golden.display().to_string();
    let o = armorlet(&[&golden, "--network", "alg seqpacket"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains(":9:3  deny network alg,"),
        "{}",
        stdout(&o)
    );
    let o = armorlet(&[&golden, "--network", "inet stream"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = armorlet(&[
        &golden, "--signal", "term", "--peer", "runc", "--perm", "receive",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = armorlet(&[&golden, "--signal", "term", "--peer", "runc"]);
    assert_eq!(code(&o), 1, "send to runc: {}", stdout(&o));
    let o = armorlet(&[&golden, "--ptrace", "trace", "--peer", "default"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}
