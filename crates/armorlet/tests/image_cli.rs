//! `armorlet image load|ls|rm` and `armorlet audit` end to end, with the images built by
//! `images/build` and a real data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn armorlet(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_armorlet"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn built_images(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/build");
    let out = Command::new(script).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "images/build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

#[test]
fn load_list_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let images = built_images(&tmp.path().join("images-out"));
    let data = tmp.path().join("data");
    let busybox = images.join("busybox.tar");
    let echo = images.join("http-echo.tar");

    let out = armorlet(
        &[
            "image",
            "load",
            busybox.to_str().unwrap(),
            echo.to_str().unwrap(),
        ],
        &data,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out),
        "Loaded image: docker.io/library/busybox:1.28\nLoaded image: docker.io/library/busybox:latest\n\
         Loaded image: docker.io/hashicorp/http-echo:0.2.3\n"
    );

    let out = armorlet(&["image", "ls"], &data);
    assert!(out.status.success());
    let ls = text(&out);
    let lines: Vec<Vec<&str>> = ls.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]);
    assert_eq!(&lines[1][..2], ["docker.io/library/busybox", "1.28"]);
    assert_eq!(&lines[2][..2], ["docker.io/library/busybox", "latest"]);
    assert_eq!(&lines[3][..2], ["docker.io/hashicorp/http-echo", "0.2.3"]);
    assert_eq!(lines[1][2].len(), 13, "short image id: {ls}");
    assert!(
        lines[1][3].ends_with("MB") || lines[1][3].ends_with("kB"),
        "{ls}"
    );
    assert_eq!(
        ls.lines().next().unwrap().find("TAG"),
        ls.lines().nth(1).unwrap().find("1.28"),
        "aligned:\n{ls}"
    );

    let out = armorlet(&["image", "rm", "busybox"], &data);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "Deleted: docker.io/library/busybox:latest\n");
    let out = armorlet(&["image", "rm", "busybox"], &data);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert!(!text(&armorlet(&["image", "ls"], &data)).contains("latest"));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.tar");
    let out = armorlet(&["image", "load", missing.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope.tar") && err.contains("No such file"),
        "{err}"
    );
    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let out = armorlet(&["image", "load", junk.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = armorlet(&["image", "rm"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn audit_filters_node_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "Jul  6 15:37:40 h kernel: [369128.669452] audit: type=1326 audit(1594067860.082:8): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=1 comm=\"http-echo\" exe=\"/http-echo\" sig=0 arch=c000003e syscall=257 compat=0 ip=0x1 code=0x7ffc0000 syscall_name=openat";
    let a = format!("{base} pod=default/audit-pod container=test-container");
    let b = format!("{base} pod=other/audit-pod container=test-container");
    let c = format!("{base} pod=default/fine-pod container=test-container");
    for (node, line) in [("n1", &a), ("n1", &b), ("n2", &c)] {
        armorlet_audit_append(&tmp.path().join("nodes").join(node).join("audit.log"), line);
    }
    let out = armorlet(
        &["audit", "--pod", "audit-pod", "--namespace", "default"],
        tmp.path(),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), format!("{a}\n"));
    let out = armorlet(&["audit"], tmp.path());
    assert_eq!(text(&out), format!("{a}\n{b}\n{c}\n"));
}

fn armorlet_audit_append(path: &Path, line: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut old = std::fs::read_to_string(path).unwrap_or_default();
    old.push_str(line);
    old.push('\n');
    std::fs::write(path, old).unwrap();
}
