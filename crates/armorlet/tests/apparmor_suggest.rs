//! The AppArmor half of the complain → enforce workflow, through the built
//! binary: `profile suggest --apparmor` against a pod recording in a data
//! directory, `profile complain` / `profile enforce` on AppArmor files, and
//! `record apparmor --interactive` driven like a user at aa-logprof's
//! prompts. Every profile written must pass the real `apparmor_parser -QK`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::{armorlet, assert_apparmor_parser_accepts};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const RECORDING: &str = r#"{
  "syscalls": {"SCMP_ARCH_X86_64": ["openat", "read", "socket", "write"]},
  "apparmor": {
    "files": {
      "/etc/hostname": {"read": true},
      "/etc/shadow": {"read": true},
      "/bin/busybox": {"read": true, "exec": true},
      "/usr/lib/x86_64-linux-gnu/libc.so.6": {"read": true, "mmap": true},
      "/proc/self/status": {"read": true},
      "/tmp/out": {"write": true, "create": true},
      "/var/log/app.log": {"read": true, "write": true}
    },
    "capabilities": ["chown"],
    "network": [["inet", "stream"], ["inet", "dgram"]]
  }
}"#;

/// A complain profile that grants part of the recording.
const COMPLAIN: &str = "# The web pod's profile.
#include <tunables/global>

profile web flags=(attach_disconnected,complain) {
  network inet stream,

  /etc/hostname r,
  /bin/busybox rix,
  /usr/lib/** mr,
  @{PROC}/@{pid}/status r,
  /var/log/app.log r,
  deny /etc/shadow r,
}
";

/// A data dir with the recording of pod `default/web`, container `app`, on
/// node `node-a`.
fn data_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("nodes/node-a/recordings/default/web");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.json"), RECORDING).unwrap();
    d
}

fn suggest(data: &Path, profile: &Path, out: &Path, extra: &[&str]) -> Output {
    armorlet()
        .args(["profile", "suggest", "--apparmor"])
        .arg(profile)
        .args(["--pod", "web", "--data-dir"])
        .arg(data)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn suggest_lists_the_denials_and_adds_rules_for_them() {
    let data = data_dir();
    let profile = data.path().join("web");
    std::fs::write(&profile, COMPLAIN).unwrap();
    assert_apparmor_parser_accepts(&profile);
    let next = data.path().join("web-next");
    let run = suggest(data.path(), &profile, &next, &[]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "armorlet: a deny rule of the profile denies: /etc/shadow r (not added)",
            "armorlet: the profile would deny: /tmp/out w",
            "armorlet: the profile would deny: /var/log/app.log w",
            "armorlet: the profile would deny: network inet dgram",
            "armorlet: the profile would deny: capability chown",
            &format!(
                "armorlet: 4 recorded accesses the profile would deny; profile with rules for them written to {}",
                next.display()
            ),
        ],
        "{err}"
    );
    let text = std::fs::read_to_string(&next).unwrap();
    assert_eq!(
        text,
        COMPLAIN.replace(
            "  deny /etc/shadow r,\n}\n",
            concat!(
                "  deny /etc/shadow r,\n",
                "  # added by armorlet profile suggest\n",
                "  capability chown,\n",
                "  network inet dgram,\n",
                "\n",
                "  # created by the workload: /tmp/out\n",
                "  /tmp/** w,\n",
                "  /var/log/app.log w,\n",
                "}\n"
            )
        )
    );
    assert_apparmor_parser_accepts(&next);

    // The extended profile allows everything recorded: nothing more to add,
    // and the profile is written unchanged.
    let again = data.path().join("web-again");
    let run = suggest(data.path(), &next, &again, &["-c", "app", "-n", "default"]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert!(
        stderr(&run).contains("armorlet: 0 recorded accesses the profile would deny"),
        "{}",
        stderr(&run)
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);

    // Then enforce it.
    let run = armorlet()
        .args(["profile", "enforce"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let enforced = stdout(&run);
    assert_eq!(
        enforced,
        text.replace(
            "flags=(attach_disconnected,complain)",
            "flags=(attach_disconnected)"
        )
    );
    let file = data.path().join("web-enforce");
    std::fs::write(&file, &enforced).unwrap();
    assert_apparmor_parser_accepts(&file);

    // To standard output without -o.
    let run = armorlet()
        .args(["profile", "suggest", "--apparmor"])
        .arg(&profile)
        .args(["--pod", "web", "--name", "web", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(stdout(&run), text);
}

#[test]
fn suggest_refuses_bad_profiles_missing_recordings_and_ambiguous_arguments() {
    let data = data_dir();
    let out = data.path().join("out");
    let bad = data.path().join("bad");
    std::fs::write(&bad, "profile web {\n  /etc/hostname rr\n}\n").unwrap();
    let run = suggest(data.path(), &bad, &out, &[]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let err = stderr(&run);
    assert!(
        err.contains(&format!(
            "{} is not a valid AppArmor profile",
            bad.display()
        )) && err.contains(&format!("{}:3:", bad.display())),
        "{err}"
    );
    assert!(!out.exists());

    let good = data.path().join("web");
    std::fs::write(&good, COMPLAIN).unwrap();
    let run = suggest(data.path(), &good, &out, &["--name", "nope"]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains("no profile named 'nope'"),
        "{}",
        stderr(&run)
    );

    let run = armorlet()
        .args(["profile", "suggest", "--apparmor"])
        .arg(&good)
        .args(["--pod", "other", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains("no recording of pod default/other"),
        "{}",
        stderr(&run)
    );

    let missing = data.path().join("missing");
    let run = suggest(data.path(), &missing, &out, &[]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(stderr(&run).contains("reading"), "{}", stderr(&run));

    // Exactly one of FILE and --apparmor.
    let run = armorlet()
        .args(["profile", "suggest", "--pod", "web"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains("<FILE|--apparmor <PROFILE_FILE>>"),
        "{}",
        stderr(&run)
    );
    let run = armorlet()
        .args(["profile", "suggest", "x.json", "--apparmor"])
        .arg(&good)
        .args(["--pod", "web"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains("cannot be used with"),
        "{}",
        stderr(&run)
    );
}

const SECCOMP: &str = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#;

#[test]
fn the_seccomp_forms_keep_working() {
    let data = data_dir();
    let file = data.path().join("p.json");
    std::fs::write(&file, SECCOMP).unwrap();
    // No audit log on the node: nothing logged, the profile as it was.
    let run = armorlet()
        .args(["profile", "suggest"])
        .arg(&file)
        .args(["--pod", "web", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert!(
        stderr(&run).contains("0 syscalls the profile would have denied"),
        "{}",
        stderr(&run)
    );
    let p: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");

    let run = armorlet()
        .args(["profile", "complain"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let p: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(p["defaultAction"], "SCMP_ACT_LOG");

    let run = armorlet()
        .args(["profile", "enforce"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains("apply the original profile"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn complain_and_enforce_flip_an_apparmor_profile() {
    let dir = tempfile::tempdir().unwrap();
    let enforce = COMPLAIN.replace(",complain", "");
    let file = dir.path().join("web");
    std::fs::write(&file, &enforce).unwrap();
    let complain_file = dir.path().join("web-complain");
    let run = armorlet()
        .args(["profile", "complain"])
        .arg(&file)
        .arg("-o")
        .arg(&complain_file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(std::fs::read_to_string(&complain_file).unwrap(), COMPLAIN);
    assert_apparmor_parser_accepts(&complain_file);
    let run = armorlet()
        .args(["profile", "enforce"])
        .arg(&complain_file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(stdout(&run), enforce);

    // No flags at all: the clause comes and goes.
    let bare = "profile p {\n  /etc/hostname r,\n}\n";
    std::fs::write(&file, bare).unwrap();
    let run = armorlet()
        .args(["profile", "complain", "--name", "p"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let complained = stdout(&run);
    assert_eq!(
        complained,
        "profile p flags=(complain) {\n  /etc/hostname r,\n}\n"
    );
    std::fs::write(&complain_file, &complained).unwrap();
    assert_apparmor_parser_accepts(&complain_file);
    let run = armorlet()
        .args(["profile", "enforce"])
        .arg(&complain_file)
        .output()
        .unwrap();
    assert_eq!(stdout(&run), bare);

    // Not valid AppArmor: exit 2, naming the file.
    std::fs::write(&file, "profile p {\n").unwrap();
    let run = armorlet()
        .args(["profile", "complain"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains(&format!(
            "{} is not a valid AppArmor profile",
            file.display()
        )),
        "{}",
        stderr(&run)
    );
}

/// A command whose recording has a few file rules (a dynamically linked one:
/// the binary, the loader cache, libc).
const COMMAND: &str = "/usr/bin/true";

fn record_interactive(out: &Path) -> Command {
    let mut c = armorlet();
    c.args(["record", "apparmor", "--interactive", "--name", "t", "-o"])
        .arg(out)
        .args(["--", COMMAND]);
    c
}

/// The selected option of a question block: ` [N - RULE]`.
fn selected(block: &[String]) -> String {
    block
        .iter()
        .find_map(|l| l.strip_prefix(" [").and_then(|l| l.strip_suffix(']')))
        .and_then(|l| l.split_once(" - "))
        .map(|(_, rule)| rule.to_owned())
        .unwrap_or_else(|| panic!("no selected option in {block:?}"))
}

#[test]
fn record_apparmor_interactive_reviews_each_rule() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let mut child = record_interactive(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut prompts = BufReader::new(child.stderr.take().unwrap());
    let mut transcript = Vec::new();
    let mut block: Vec<String> = Vec::new();
    let mut questions = 0;
    let mut globbed = None;
    let mut denied = None;
    let mut step = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if prompts.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let l = line.trim_end_matches('\n').to_owned();
        transcript.push(l.clone());
        if l.starts_with("Profile:  ") {
            block.clear();
            questions += 1;
        }
        block.push(l.clone());
        if !l.starts_with("(A)llow / [(D)eny]") {
            continue;
        }
        // The first file rule: an unknown answer, then glob it and allow.
        // The second: a relative new path (refused), then deny it. Then
        // allow the rest.
        let is_file = l.contains("(G)lob");
        let answer = match step {
            0 if is_file => {
                step = 1;
                "x"
            }
            1 => {
                assert_eq!(transcript[transcript.len() - 2], "Unknown answer 'x'.");
                step = 2;
                "g"
            }
            2 => {
                globbed = Some(selected(&block));
                step = 3;
                "a"
            }
            3 if is_file => {
                step = 4;
                "n\nrelative/path"
            }
            4 => {
                assert_eq!(
                    transcript[transcript.len() - 2],
                    "Enter new path: The new path must be absolute: 'relative/path'."
                );
                denied = Some(selected(&block));
                step = 5;
                "d"
            }
            _ => "a",
        };
        writeln!(stdin, "{answer}").unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let transcript = transcript.join("\n");
    assert!(status.success(), "{status:?}\n{transcript}");
    assert!(step == 5 && questions >= 3, "{transcript}");
    let text = std::fs::read_to_string(&out).unwrap();
    let globbed = globbed.unwrap();
    assert!(
        globbed.contains("/*"),
        "{globbed} is not a glob\n{transcript}"
    );
    assert!(
        text.lines().any(|l| l == format!("  {globbed}")),
        "{globbed} missing\n{text}\n{transcript}"
    );
    // The denied rule: `deny PATH MODE,` with `x` for `ix`.
    let denied = denied.unwrap().replace("ix,", "x,");
    assert!(
        text.lines().any(|l| l == format!("  deny {denied}")),
        "deny {denied} missing\n{text}\n{transcript}"
    );
    assert!(transcript.contains("armorlet: reviewed: "), "{transcript}");
    assert_apparmor_parser_accepts(&out);
}

#[test]
fn record_apparmor_interactive_abort_and_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    // Abort at the first question: nothing is written, exit 2.
    let mut child = record_interactive(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"r\n").unwrap();
    let run = child.wait_with_output().unwrap();
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert!(
        stderr(&run).contains("armorlet: review aborted: no profile written"),
        "{}",
        stderr(&run)
    );
    assert!(!out.exists());

    // No answers at all: the end of the input finishes the review; the
    // profile has no rules, still valid; the command's exit status.
    let run = record_interactive(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.ends_with("profile t flags=(attach_disconnected,mediate_deleted) {\n}\n"),
        "{text}"
    );
    assert!(
        stderr(&run).contains("armorlet: reviewed: 0 rules allowed, 0 denied"),
        "{}",
        stderr(&run)
    );
    assert_apparmor_parser_accepts(&out);

    // Without --interactive, stdin is not read and the profile has rules.
    let run = armorlet()
        .args(["record", "apparmor", "--name", "t", "-o"])
        .arg(&out)
        .args(["--", COMMAND])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let plain = std::fs::read_to_string(&out).unwrap();
    assert!(plain.contains(&format!("  {COMMAND} rix,")), "{plain}");
}
