//! Generating a profile from what a workload did (`armorlet record apparmor`).
//!
//! [`decode`] turns one syscall (its name and arguments, with a [`Task`] to
//! read the caller's strings, fds and working directory) into the accesses
//! AppArmor mediates: file permissions (`r`, `w`, `l`, `m`, `ix`), network
//! families and types, and the capabilities the syscall needs. Capabilities
//! are inferred from the syscalls (`chown` → `chown`, `mount` → `sys_admin`,
//! binding a port below 1024 → `net_bind_service`...): the kernel's own
//! capability checks cannot be observed without the AppArmor LSM or BPF.
//! [`Observed::profile`] writes the least-privilege profile, like
//! aa-genprof's without its prompts: one rule per file, directories with a
//! trailing `/`, library trees (`/usr/lib`, `/lib`...) read and mapped
//! collapsed to `/usr/lib/** mr,`, process-own `/proc/<pid>` paths as
//! `@{PROC}/@{pid}/`. `owner` is never emitted: the recording cannot tell
//! whose files they are, and the Landlock backend could not enforce it.
//! Pure: the kernel side is the recorder's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// File permissions seen on one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePerms {
    /// Read (open for reading, list a directory).
    #[serde(default, skip_serializing_if = "is_false")]
    pub read: bool,
    /// Write, create, delete, rename, change attributes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub write: bool,
    /// Executed (`ix`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub exec: bool,
    /// Mapped executable (`m`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mmap: bool,
    /// Hard-linked to (`l`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub link: bool,
    /// Created by the workload (it did not exist before the syscall).
    #[serde(default, skip_serializing_if = "is_false")]
    pub create: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl FilePerms {
    /// Both sets of permissions.
    pub fn union(self, o: FilePerms) -> FilePerms {
        FilePerms {
            read: self.read || o.read,
            write: self.write || o.write,
            exec: self.exec || o.exec,
            mmap: self.mmap || o.mmap,
            link: self.link || o.link,
            create: self.create || o.create,
        }
    }

    /// The permission string of a `deny` rule: `x` instead of `ix` (a deny
    /// rule takes no exec mode).
    pub fn deny_mode(self) -> String {
        let mut s = self.mode();
        if let Some(i) = s.find("ix") {
            s.replace_range(i..i + 2, "x");
        }
        s
    }

    /// The accesses as request letters (`mrwlx`), as a denial names them.
    pub fn letters(self) -> String {
        self.deny_mode()
    }

    /// True when no permission is set (`create` aside).
    pub fn is_empty(self) -> bool {
        !(self.read || self.write || self.exec || self.mmap || self.link)
    }

    /// The permission string, in AppArmor's usual order (`mrwlix`).
    pub fn mode(self) -> String {
        let mut s = String::new();
        for (on, c) in [
            (self.mmap, "m"),
            (self.read, "r"),
            (self.write, "w"),
            (self.link, "l"),
            (self.exec, "ix"),
        ] {
            if on {
                s.push_str(c);
            }
        }
        s
    }
}

/// One access a syscall makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A file (a directory ends with `/`).
    File(String, FilePerms),
    /// `network FAMILY TYPE`.
    Network(&'static str, Option<&'static str>),
    /// `capability NAME`.
    Capability(&'static str),
}

/// What was observed of a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Path → permissions.
    #[serde(default)]
    pub files: BTreeMap<String, FilePerms>,
    /// Capability names.
    #[serde(default)]
    pub capabilities: BTreeSet<String>,
    /// `(family, type)` of sockets created.
    #[serde(default)]
    pub network: BTreeSet<(String, Option<String>)>,
}

/// The caller of a syscall, as the recorder can read it.
pub trait Task {
    /// A NUL-terminated string at `addr` in the caller's memory.
    fn string(&self, addr: u64) -> Option<String>;
    /// `len` bytes at `addr` in the caller's memory.
    fn bytes(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// The path of the caller's fd (`/proc/<pid>/fd/<fd>`).
    fn fd_path(&self, fd: i32) -> Option<String>;
    /// The caller's working directory.
    fn cwd(&self) -> Option<String>;
    /// Whether `path` (in the caller's root) is a directory.
    fn is_dir(&self, path: &str) -> bool;
    /// `path` with its symlinks resolved in the caller's root (all of them, or
    /// all but the last component), as AppArmor mediates the object reached.
    fn real_path(&self, path: &str, follow_last: bool) -> String {
        let _ = follow_last;
        path.to_owned()
    }
    /// Whether `path` (in the caller's root) exists (asked before the syscall runs).
    fn exists(&self, path: &str) -> bool;
}

/// What running a file takes.
const EXEC: FilePerms = FilePerms {
    read: true,
    write: false,
    exec: true,
    mmap: false,
    link: false,
    create: false,
};

const AT_FDCWD: i32 = -100;
const AT_REMOVEDIR: u64 = 0x200;
const O_ACCMODE: u64 = 3;
const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_PATH: u64 = 0o10000000;
const PROT_EXEC: u64 = 4;
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;

fn perms(read: bool, write: bool) -> FilePerms {
    FilePerms {
        read,
        write,
        ..FilePerms::default()
    }
}

/// An absolute, normalised path of `path` relative to `dirfd`.
fn resolve(task: &dyn Task, dirfd: i32, path: &str) -> Option<String> {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        let base = if dirfd == AT_FDCWD {
            task.cwd()?
        } else {
            task.fd_path(dirfd)?
        };
        if path.is_empty() {
            base
        } else {
            format!("{}/{path}", base.trim_end_matches('/'))
        }
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The file access of a path argument, directories marked with a trailing `/`.
/// `dir` is `Some` for syscalls that name the object itself (mkdir, unlink...:
/// a symlink in the last component is not followed), `None` for those that
/// reach it (open, exec, chmod...).
fn file(task: &dyn Task, dirfd: i32, addr: u64, p: FilePerms, dir: Option<bool>) -> Option<Access> {
    let path = resolve(task, dirfd, &task.string(addr)?)?;
    let path = task.real_path(&path, dir.is_none() || p.exec);
    let mut p = p;
    p.create = p.write && !task.exists(&path);
    let dir = dir.unwrap_or_else(|| task.is_dir(&path));
    let path = if dir && path != "/" {
        format!("{path}/")
    } else {
        path
    };
    Some(Access::File(path, p))
}

fn family(n: u64) -> Option<&'static str> {
    Some(match n {
        1 => "unix",
        2 => "inet",
        10 => "inet6",
        16 => "netlink",
        17 => "packet",
        _ => return None,
    })
}

fn sock_type(n: u64) -> Option<&'static str> {
    Some(match n & 0xf {
        1 => "stream",
        2 => "dgram",
        3 => "raw",
        4 => "rdm",
        5 => "seqpacket",
        6 => "dccp",
        10 => "packet",
        _ => return None,
    })
}

/// The accesses of one syscall (`name` as in the syscall tables, x86_64
/// argument order); empty for syscalls AppArmor does not mediate.
pub fn decode(name: &str, a: &[u64; 6], task: &dyn Task) -> Vec<Access> {
    let fd = |i: usize| a[i] as i32;
    let w = perms(false, true);
    let one = |x: Option<Access>| x.into_iter().collect::<Vec<_>>();
    let open = |dirfd: i32, addr: u64, flags: u64| -> Vec<Access> {
        if flags & O_PATH != 0 {
            return Vec::new();
        }
        let mode = flags & O_ACCMODE;
        let write =
            mode == O_WRONLY || mode == O_RDWR || flags & (O_CREAT | O_TRUNC | O_APPEND) != 0;
        let read = mode != O_WRONLY;
        one(file(task, dirfd, addr, perms(read, write), None))
    };
    match name {
        "open" => open(AT_FDCWD, a[0], a[1]),
        "openat" => open(fd(0), a[1], a[2]),
        "openat2" => {
            // struct open_how { u64 flags; ... }
            let flags = task
                .bytes(a[2], 8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
                .unwrap_or(0);
            open(fd(0), a[1], flags)
        }
        "creat" => one(file(task, AT_FDCWD, a[0], w, Some(false))),
        // `rix`, as aa-logprof writes it: the kernel opens the executable for
        // reading, which Landlock checks (AppArmor's own exec check does not).
        "execve" => one(file(task, AT_FDCWD, a[0], EXEC, Some(false))),
        "execveat" => one(file(task, fd(0), a[1], EXEC, Some(false))),
        "mkdir" => one(file(task, AT_FDCWD, a[0], w, Some(true))),
        "mkdirat" => one(file(task, fd(0), a[1], w, Some(true))),
        "rmdir" => one(file(task, AT_FDCWD, a[0], w, Some(true))),
        "unlink" => one(file(task, AT_FDCWD, a[0], w, Some(false))),
        "unlinkat" => one(file(task, fd(0), a[1], w, Some(a[2] & AT_REMOVEDIR != 0))),
        "rename" => [
            file(task, AT_FDCWD, a[0], perms(true, true), None),
            file(task, AT_FDCWD, a[1], w, None),
        ]
        .into_iter()
        .flatten()
        .collect(),
        "renameat" | "renameat2" => [
            file(task, fd(0), a[1], perms(true, true), None),
            file(task, fd(2), a[3], w, None),
        ]
        .into_iter()
        .flatten()
        .collect(),
        "link" | "linkat" => {
            let (newdir, new) = if name == "link" {
                (AT_FDCWD, a[1])
            } else {
                (fd(2), a[3])
            };
            one(file(
                task,
                newdir,
                new,
                FilePerms {
                    link: true,
                    ..FilePerms::default()
                },
                Some(false),
            ))
        }
        "symlink" => one(file(task, AT_FDCWD, a[1], w, Some(false))),
        "symlinkat" => one(file(task, fd(1), a[2], w, Some(false))),
        "chmod" | "truncate" | "utime" | "utimes" => one(file(task, AT_FDCWD, a[0], w, None)),
        "fchmodat" | "futimesat" | "utimensat" if a[1] != 0 => {
            one(file(task, fd(0), a[1], w, None))
        }
        "mknod" | "mknodat" => {
            let (dirfd, addr, mode) = if name == "mknod" {
                (AT_FDCWD, a[0], a[1])
            } else {
                (fd(0), a[1], a[2])
            };
            let mut out = one(file(task, dirfd, addr, w, Some(false)));
            if matches!(mode & S_IFMT, S_IFCHR | S_IFBLK) {
                out.push(Access::Capability("mknod"));
            }
            out
        }
        "chown" | "lchown" => {
            let mut out = one(file(task, AT_FDCWD, a[0], w, None));
            out.push(Access::Capability("chown"));
            out
        }
        "fchownat" => {
            let mut out = one(file(task, fd(0), a[1], w, None));
            out.push(Access::Capability("chown"));
            out
        }
        "fchown" => vec![Access::Capability("chown")],
        "mmap" if a[2] & PROT_EXEC != 0 && (a[4] as i32) >= 0 => task
            .fd_path(a[4] as i32)
            .filter(|p| p.starts_with('/'))
            .map(|p| {
                vec![Access::File(
                    p,
                    FilePerms {
                        mmap: true,
                        ..FilePerms::default()
                    },
                )]
            })
            .unwrap_or_default(),
        "socket" => match family(a[0]) {
            Some(f) => {
                let t = sock_type(a[1]);
                let mut out = vec![Access::Network(f, t)];
                if t == Some("raw") || f == "packet" {
                    out.push(Access::Capability("net_raw"));
                }
                out
            }
            None => Vec::new(),
        },
        "bind" => {
            // struct sockaddr_in/in6: family (2 bytes), port (2 bytes, big endian).
            let port = task
                .bytes(a[1], 4)
                .filter(|b| matches!(u16::from_le_bytes([b[0], b[1]]), 2 | 10))
                .map(|b| u16::from_be_bytes([b[2], b[3]]));
            match port {
                Some(p) if p != 0 && p < 1024 => vec![Access::Capability("net_bind_service")],
                _ => Vec::new(),
            }
        }
        "setuid" | "setreuid" | "setresuid" | "setfsuid" => vec![Access::Capability("setuid")],
        "setgid" | "setregid" | "setresgid" | "setfsgid" | "setgroups" => {
            vec![Access::Capability("setgid")]
        }
        "chroot" => vec![Access::Capability("sys_chroot")],
        "mount" | "umount2" | "pivot_root" | "sethostname" | "setdomainname" | "setns"
        | "unshare" => vec![Access::Capability("sys_admin")],
        "ptrace" => vec![Access::Capability("sys_ptrace")],
        "settimeofday" | "clock_settime" | "adjtimex" | "clock_adjtime" => {
            vec![Access::Capability("sys_time")]
        }
        "reboot" => vec![Access::Capability("sys_boot")],
        "init_module" | "finit_module" | "delete_module" => vec![Access::Capability("sys_module")],
        "iopl" | "ioperm" => vec![Access::Capability("sys_rawio")],
        _ => Vec::new(),
    }
}

/// Trees whose files are only read and mapped: collapsed to `TREE/** mr,`.
const LIBRARY_TREES: &[&str] = &[
    "/usr/lib/",
    "/usr/lib64/",
    "/lib/",
    "/lib64/",
    "/usr/share/",
];

impl Observed {
    /// Adds one access.
    pub fn add(&mut self, access: Access) -> bool {
        match access {
            Access::File(path, p) => {
                let e = self.files.entry(path).or_default();
                let new = e.union(p);
                let changed = new != *e;
                *e = new;
                changed
            }
            Access::Network(f, t) => self.network.insert((f.to_owned(), t.map(str::to_owned))),
            Access::Capability(c) => self.capabilities.insert(c.to_owned()),
        }
    }

    /// Adds everything `other` saw.
    pub fn merge(&mut self, other: &Observed) {
        for (path, p) in &other.files {
            self.add(Access::File(path.clone(), *p));
        }
        self.capabilities.extend(other.capabilities.iter().cloned());
        self.network.extend(other.network.iter().cloned());
    }

    /// True when nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.capabilities.is_empty() && self.network.is_empty()
    }

    /// The file rules: library trees collapsed, `/proc/<n>/` and
    /// `/proc/self/` as `@{PROC}/@{pid}/`, files created by the workload as
    /// their directory's tree, sorted. Keys are AARE patterns as the profile
    /// writes them (glob characters of recorded names escaped, not quoted:
    /// [`render_path`] quotes).
    pub fn file_rules(&self) -> BTreeMap<String, FilePerms> {
        self.file_rule_sources()
            .into_iter()
            .map(|(k, (p, _))| (k, p))
            .collect()
    }

    /// [`Observed::file_rules`], with the recorded paths each rule covers.
    pub fn file_rule_sources(&self) -> BTreeMap<String, (FilePerms, Vec<String>)> {
        let mut rules: BTreeMap<String, (FilePerms, Vec<String>)> = BTreeMap::new();
        for (path, p) in &self.files {
            let tree = LIBRARY_TREES.iter().find(|t| path.starts_with(**t));
            let key = match tree {
                Some(t) if !p.write && !p.link && !p.exec => format!("{}**", escape(t)),
                // Creating names a file that is not there yet: the rule covers
                // the directory's tree (what Landlock can grant: creation
                // beneath a directory).
                _ if p.create => format!("{}**", escape(parent(path))),
                _ => proc_pid(path),
            };
            let p = FilePerms {
                create: false,
                ..*p
            };
            let e = rules.entry(key).or_default();
            e.0 = e.0.union(p);
            e.1.push(path.clone());
        }
        rules
    }

    /// The files the workload created (named in a comment of the profile).
    pub fn created(&self) -> Vec<String> {
        self.files
            .iter()
            .filter(|(_, p)| p.create)
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// The rules of the profile ([`Observed::profile`] writes them).
    pub fn rules(&self) -> Rules {
        Rules {
            capabilities: self.capabilities.clone(),
            network: self.network.clone(),
            files: self.file_rules(),
        }
    }

    /// The profile text.
    pub fn profile(&self, name: &str) -> String {
        profile_text(name, &self.rules(), &Rules::default(), &self.created())
    }
}

/// Rules in profile form: what a profile's body says, class by class. File
/// rules are keyed by their AARE pattern (escaped, unquoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// `capability NAME,`
    pub capabilities: BTreeSet<String>,
    /// `network FAMILY [TYPE],`
    pub network: BTreeSet<(String, Option<String>)>,
    /// `PATTERN MODE,`
    pub files: BTreeMap<String, FilePerms>,
}

impl Rules {
    /// True when there is no rule.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.capabilities.is_empty() && self.network.is_empty()
    }

    /// Adds a file rule (merging the permissions of one already there).
    pub fn add_file(&mut self, pattern: String, p: FilePerms) {
        let e = self.files.entry(pattern).or_default();
        *e = e.union(FilePerms { create: false, ..p });
    }

    /// Adds every rule of `other`.
    pub fn merge(&mut self, other: &Rules) {
        self.capabilities.extend(other.capabilities.iter().cloned());
        self.network.extend(other.network.iter().cloned());
        for (k, p) in &other.files {
            self.add_file(k.clone(), *p);
        }
    }

    /// The rule lines, each starting with `indent` and ending with `,\n`,
    /// prefixed with `deny` when `deny` (file modes then name `x`, not
    /// `ix`); capabilities, network, a blank line, then `comment` lines
    /// (as `# ...`) and the file rules, as [`Observed::profile`] writes them.
    pub fn write(&self, o: &mut String, indent: &str, deny: bool, comment: &[String]) {
        let q = if deny { "deny " } else { "" };
        for c in &self.capabilities {
            let _ = writeln!(o, "{indent}{q}capability {c},");
        }
        for (f, t) in &self.network {
            match t {
                Some(t) => {
                    let _ = writeln!(o, "{indent}{q}network {f} {t},");
                }
                None => {
                    let _ = writeln!(o, "{indent}{q}network {f},");
                }
            }
        }
        if !self.capabilities.is_empty() || !self.network.is_empty() {
            o.push('\n');
        }
        for c in comment {
            let _ = writeln!(o, "{indent}# {c}");
        }
        for (path, p) in &self.files {
            let mode = if deny { p.deny_mode() } else { p.mode() };
            let _ = writeln!(o, "{indent}{q}{} {mode},", render_path(path));
        }
    }
}

/// A whole profile: the tunables, `profile NAME flags=(...) {`, the allow
/// rules, the deny rules after a blank line, `}`.
pub(crate) fn profile_text(name: &str, allow: &Rules, deny: &Rules, created: &[String]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Generated by armorlet record apparmor: the accesses of one recorded workload."
    );
    let _ = writeln!(o, "#include <tunables/global>\n");
    let _ = writeln!(
        o,
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{"
    );
    let comment: Vec<String> = if created.is_empty() {
        Vec::new()
    } else {
        vec![format!("created by the workload: {}", created.join(" "))]
    };
    allow.write(&mut o, "  ", false, &comment);
    if !deny.is_empty() {
        if !allow.is_empty() && !o.ends_with("\n\n") {
            o.push('\n');
        }
        deny.write(&mut o, "  ", true, &[]);
        if o.ends_with("\n\n") {
            o.pop();
        }
    }
    o.push_str("}\n");
    o
}

/// The directory holding `path` (`/tmp/a` and `/tmp/a/` → `/tmp/`).
fn parent(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) => &trimmed[..=i],
        None => "/",
    }
}

/// `/proc/123/x` and `/proc/self/x` → `@{PROC}/@{pid}/x`; any other path
/// escaped (a pattern matching exactly it).
fn proc_pid(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/proc/") {
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if first == "self" || (!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit())) {
            return if tail.is_empty() && !path.ends_with('/') {
                "@{PROC}/@{pid}".to_owned()
            } else {
                format!("@{{PROC}}/@{{pid}}/{}", escape(tail))
            };
        }
    }
    escape(path)
}

/// Glob characters of a recorded name escaped: the pattern matches exactly
/// that name.
pub fn escape(path: &str) -> String {
    let mut escaped = String::new();
    for c in path.chars() {
        if "*?[]{}^\\\"".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A pattern as a rule writes it: quoted when it holds characters the policy
/// language treats specially (blanks, `#`, a `,` outside an alternation).
pub fn render_path(pattern: &str) -> String {
    let mut depth = 0usize;
    let mut escaped = false;
    let mut special = false;
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => special = true,
            ' ' | '\t' | '#' => special = true,
            _ => {}
        }
    }
    if special {
        format!("\"{pattern}\"")
    } else {
        pattern.to_owned()
    }
}

/// A recorded path as a rule writes it.
#[cfg(test)]
fn quote(path: &str) -> String {
    render_path(&proc_pid(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake {
        strings: HashMap<u64, &'static str>,
        fds: HashMap<i32, &'static str>,
        dirs: Vec<&'static str>,
    }

    impl Task for Fake {
        fn string(&self, addr: u64) -> Option<String> {
            self.strings.get(&addr).map(|s| s.to_string())
        }
        fn bytes(&self, _: u64, _: usize) -> Option<Vec<u8>> {
            Some(vec![2, 0, 0, 80])
        }
        fn fd_path(&self, fd: i32) -> Option<String> {
            self.fds.get(&fd).map(|s| s.to_string())
        }
        fn cwd(&self) -> Option<String> {
            Some("/work".into())
        }
        fn is_dir(&self, path: &str) -> bool {
            self.dirs.contains(&path)
        }
        fn exists(&self, path: &str) -> bool {
            path != "/work/out.txt" && path != "/tmp/d"
        }
    }

    fn fake() -> Fake {
        Fake {
            strings: HashMap::from([
                (1, "/etc/hostname"),
                (2, "out.txt"),
                (3, "../tmp/./d"),
                (4, "/proc/self/status"),
                (5, "/bin/busybox"),
                (6, "/usr/lib/x86_64-linux-gnu/libc.so.6"),
            ]),
            fds: HashMap::from([(7, "/usr/lib/x86_64-linux-gnu/libm.so.6"), (9, "/var")]),
            dirs: vec!["/tmp/d"],
        }
    }

    #[test]
    fn decodes_file_syscalls() {
        let t = fake();
        let f = |path: &str, read, write| Access::File(path.into(), perms(read, write));
        let created = |path: &str| {
            Access::File(
                path.into(),
                FilePerms {
                    write: true,
                    create: true,
                    ..FilePerms::default()
                },
            )
        };
        assert_eq!(
            decode("openat", &[AT_FDCWD as u64, 1, 0, 0, 0, 0], &t),
            [f("/etc/hostname", true, false)]
        );
        assert_eq!(
            decode(
                "openat",
                &[AT_FDCWD as u64, 2, O_WRONLY | O_CREAT, 0, 0, 0],
                &t
            ),
            [created("/work/out.txt")]
        );
        assert_eq!(
            decode("openat", &[9, 2, O_RDWR, 0, 0, 0], &t),
            [f("/var/out.txt", true, true)]
        );
        assert!(decode("openat", &[AT_FDCWD as u64, 1, O_PATH, 0, 0, 0], &t).is_empty());
        assert_eq!(
            decode("mkdir", &[3, 0, 0, 0, 0, 0], &t),
            [created("/tmp/d/")]
        );
        assert_eq!(
            decode("openat", &[AT_FDCWD as u64, 3, 0, 0, 0, 0], &t),
            [f("/tmp/d/", true, false)]
        );
        assert_eq!(
            decode("mmap", &[0, 4096, PROT_EXEC | 1, 2, 7, 0], &t),
            [Access::File(
                "/usr/lib/x86_64-linux-gnu/libm.so.6".into(),
                FilePerms {
                    mmap: true,
                    ..FilePerms::default()
                }
            )]
        );
        assert_eq!(
            decode("socket", &[2, 1 | 0o2000000, 0, 0, 0, 0], &t),
            [Access::Network("inet", Some("stream"))]
        );
        assert_eq!(
            decode("bind", &[3, 1, 16, 0, 0, 0], &t),
            [Access::Capability("net_bind_service")]
        );
        assert!(decode("read", &[0; 6], &t).is_empty());
    }

    #[test]
    fn writes_a_profile_with_collapsed_trees_and_proc() {
        let t = fake();
        let mut o = Observed::default();
        for (name, args) in [
            ("execve", [5, 0, 0, 0, 0, 0]),
            ("openat", [AT_FDCWD as u64, 6, 0, 0, 0, 0]),
            ("mmap", [0, 1, PROT_EXEC, 2, 7, 0]),
            ("openat", [AT_FDCWD as u64, 4, 0, 0, 0, 0]),
            ("openat", [AT_FDCWD as u64, 2, O_WRONLY | O_CREAT, 0, 0, 0]),
            ("socket", [2, 2, 0, 0, 0, 0]),
            ("chown", [2, 0, 0, 0, 0, 0]),
        ] {
            for a in decode(name, &args, &t) {
                o.add(a);
            }
        }
        let text = o.profile("rec");
        let body: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(
            body,
            [
                "profile rec flags=(attach_disconnected,mediate_deleted) {",
                "  capability chown,",
                "  network inet dgram,",
                "",
                "  # created by the workload: /work/out.txt",
                "  /bin/busybox rix,",
                "  /usr/lib/** mr,",
                "  /work/** w,",
                "  @{PROC}/@{pid}/status r,",
                "}"
            ],
            "{text}"
        );
        let (_, diags) = crate::parse_str(
            &text.replace(
                "#include <tunables/global>",
                "@{PROC}=/proc/\n@{pid}={[1-9],[1-9][0-9]}",
            ),
            "rec",
            &crate::ParseOptions::default(),
        );
        assert!(
            diags.iter().all(|d| d.severity != crate::Severity::Error),
            "{diags:?}"
        );
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Observed>(&json).unwrap(), o);
    }

    #[test]
    fn quotes_and_escapes_recorded_names() {
        assert_eq!(quote("/tmp/a b"), "\"/tmp/a b\"");
        assert_eq!(quote("/tmp/x*"), "/tmp/x\\*");
        assert_eq!(quote("/tmp/a,b"), "\"/tmp/a,b\"");
        assert_eq!(quote("/tmp/{a,b}"), "\"/tmp/\\{a,b\\}\"");
        assert_eq!(quote("/proc/self/a b*"), "\"@{PROC}/@{pid}/a b\\*\"");
        assert_eq!(render_path("/etc/{a,b}/*.conf"), "/etc/{a,b}/*.conf");
        assert_eq!(proc_pid("/proc/42/fd/"), "@{PROC}/@{pid}/fd/");
        assert_eq!(parent("/tmp/a"), "/tmp/");
        assert_eq!(parent("/tmp/a/"), "/tmp/");
        assert_eq!(parent("/a"), "/");
        assert_eq!(proc_pid("/proc/sys/kernel/x"), "/proc/sys/kernel/x");
    }
}
