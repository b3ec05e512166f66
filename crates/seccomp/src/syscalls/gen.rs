//! Generator for `generated.rs`: reads the Linux UAPI headers (Debian package
//! `linux-libc-dev`) and renders the syscall tables as Rust source.
//!
//! Run it with `cargo run -p armorlet-seccomp --example gen-syscalls`; the test
//! `generated_tables_match_installed_headers` regenerates and compares.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the generator reads from.
#[derive(Debug, Clone)]
pub struct HeaderPaths {
    /// Directory holding `unistd_64.h`, `unistd_32.h` and `unistd_x32.h`.
    pub asm_dir: PathBuf,
    /// The include root holding `linux/net.h`, `linux/ipc.h` and `linux/version.h`.
    pub include_dir: PathBuf,
    /// A Python with Debian's `python3-seccomp`, asked for syscalls newer than
    /// the headers (Debian's libseccomp knows syscalls up to Linux 6.x).
    pub python: PathBuf,
}

impl HeaderPaths {
    /// The Debian multiarch layout on x86_64 (`/usr/include/x86_64-linux-gnu/asm`).
    pub fn system() -> Self {
        HeaderPaths {
            asm_dir: PathBuf::from("/usr/include/x86_64-linux-gnu/asm"),
            include_dir: PathBuf::from("/usr/include"),
            python: PathBuf::from("/usr/bin/python3"),
        }
    }
}

/// A generator failure: a header is missing or has no usable definitions.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no definitions found")]
    Empty { path: PathBuf },
    #[error("asking libseccomp through {python} (install python3-seccomp): {message}")]
    Libseccomp { python: PathBuf, message: String },
}

/// Asks libseccomp for the name of every syscall number 0..1024 (x32: with the
/// x32 bit; arm: plus its private calls at 0xf0000) on x86_64, x86, x32,
/// aarch64 and arm.
const LIBSECCOMP_DUMP: &str = r#"
import seccomp
for label, arch, numbers in (
        ("x86_64", seccomp.Arch.X86_64, range(0, 1024)),
        ("x86", seccomp.Arch.X86, range(0, 1024)),
        ("x32", seccomp.Arch.X32, range(0x40000000, 0x40000000 + 1024)),
        ("aarch64", seccomp.Arch.AARCH64, range(0, 1024)),
        ("arm", seccomp.Arch.ARM, list(range(0, 1024)) + list(range(0xf0000, 0xf0010)))):
    for nr in numbers:
        try:
            name = seccomp.resolve_syscall(arch, nr)
        except ValueError:
            continue
        print(label, name.decode(), nr)
"#;

fn libseccomp_tables(python: &Path) -> Result<Vec<(String, String, u32)>, GenError> {
    let fail = |message: String| GenError::Libseccomp {
        python: python.to_path_buf(),
        message,
    };
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(LIBSECCOMP_DUMP)
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(String, String, u32)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (arch, name, nr) = (it.next()?, it.next()?, it.next()?.parse().ok()?);
            Some((arch.to_string(), name.to_string(), nr))
        })
        .collect();
    if rows.len() < 1500 {
        return Err(fail(format!("only {} syscalls reported", rows.len())));
    }
    Ok(rows)
}

/// Adds libseccomp's syscalls that the headers lack (same number unused and
/// name unknown); returns the names added.
fn merge(
    rows: &mut Vec<(String, u32)>,
    extra: &[(String, String, u32)],
    arch: &str,
) -> Vec<String> {
    let mut added = Vec::new();
    for (a, name, nr) in extra {
        if a != arch || rows.iter().any(|(n, v)| n == name || v == nr) {
            continue;
        }
        rows.push((name.clone(), *nr));
        added.push(format!("{name}={nr}"));
    }
    rows.sort();
    added.sort();
    added
}

/// The first line of the version comment; the regeneration test ignores it so a
/// new Debian revision of the headers with the same tables does not fail.
pub const VERSION_LINE_PREFIX: &str = "// Headers version:";

fn read(path: &Path) -> Result<String, GenError> {
    std::fs::read_to_string(path).map_err(|source| GenError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses `#define NAME VALUE` lines whose name starts with `prefix`; `VALUE` is a
/// decimal number or `(__X32_SYSCALL_BIT + N)`.
fn parse_defines(text: &str, prefix: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("#define ") else {
            continue;
        };
        let rest = rest.trim();
        let Some((name, value)) = rest.split_once(|c: char| c.is_ascii_whitespace()) else {
            continue;
        };
        let Some(name) = name.strip_prefix(prefix) else {
            continue;
        };
        // Drop a trailing C comment.
        let value = value.split("/*").next().unwrap_or("").trim();
        let number = if let Some(inner) = value
            .strip_prefix("(__X32_SYSCALL_BIT +")
            .and_then(|v| v.strip_suffix(')'))
        {
            inner
                .trim()
                .parse::<u32>()
                .ok()
                .map(|n| n | super::X32_SYSCALL_BIT)
        } else {
            value.parse::<u32>().ok()
        };
        if let Some(n) = number {
            out.push((name.to_string(), n));
        }
    }
    out
}

fn table(path: &Path, prefix: &str, lowercase: bool) -> Result<Vec<(String, u32)>, GenError> {
    let mut rows = parse_defines(&read(path)?, prefix);
    if lowercase {
        for row in &mut rows {
            row.0 = row.0.to_ascii_lowercase();
        }
    }
    if rows.is_empty() {
        return Err(GenError::Empty {
            path: path.to_path_buf(),
        });
    }
    rows.sort();
    rows.dedup();
    Ok(rows)
}

fn render(out: &mut String, name: &str, doc: &str, rows: &[(String, u32)]) {
    let _ = writeln!(out, "/// {doc}");
    let _ = writeln!(out, "pub(crate) static {name}: &[(&str, u32)] = &[");
    for (n, v) in rows {
        if *v >= super::X32_SYSCALL_BIT {
            let _ = writeln!(out, "    ({n:?}, 0x{v:08x}),");
        } else {
            let _ = writeln!(out, "    ({n:?}, {v}),");
        }
    }
    let _ = writeln!(out, "];\n");
}

/// Renders `generated.rs` from the headers.
pub fn generate(paths: &HeaderPaths) -> Result<String, GenError> {
    let mut x86_64 = table(&paths.asm_dir.join("unistd_64.h"), "__NR_", false)?;
    let mut x86 = table(&paths.asm_dir.join("unistd_32.h"), "__NR_", false)?;
    let mut x32 = table(&paths.asm_dir.join("unistd_x32.h"), "__NR_", false)?;
    let extra = libseccomp_tables(&paths.python)?;
    // No UAPI headers for these on an x86_64 machine: libseccomp's tables only.
    let mut aarch64 = Vec::new();
    let mut arm = Vec::new();
    merge(&mut aarch64, &extra, "aarch64");
    merge(&mut arm, &extra, "arm");
    let added = [
        ("x86_64", merge(&mut x86_64, &extra, "x86_64")),
        ("x86", merge(&mut x86, &extra, "x86")),
        ("x32", merge(&mut x32, &extra, "x32")),
    ];
    let socketcall = table(&paths.include_dir.join("linux/net.h"), "SYS_", true)?;
    let ipc: Vec<(String, u32)> = table(&paths.include_dir.join("linux/ipc.h"), "", true)?
        .into_iter()
        .filter(|(n, _)| {
            ["sem", "msg", "shm"].iter().any(|p| n.starts_with(p))
                && n.chars().all(|c| c.is_ascii_lowercase())
        })
        .collect();
    let version = read(&paths.include_dir.join("linux/version.h")).unwrap_or_default();
    let v = |key: &str| {
        parse_defines(&version, key)
            .first()
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| "?".into())
    };

    let mut out = String::new();
    out.push_str(
        "// @generated by `cargo run -p armorlet-seccomp --example gen-syscalls`: do not edit.\n\
         // Source: the Linux UAPI headers (Debian package linux-libc-dev):\n\
         //   asm/unistd_64.h (x86_64), asm/unistd_32.h (x86), asm/unistd_x32.h (x32,\n\
         //   numbers include __X32_SYSCALL_BIT), linux/net.h (socketcall SYS_*),\n\
         //   linux/ipc.h (ipc call numbers);\n\
         // plus the syscalls newer than the headers that libseccomp knows (asked\n\
         // through python3-seccomp), listed here; the aarch64 and arm tables come\n\
         // from libseccomp alone (no headers for them on x86_64 machines):\n",
    );
    for (arch, names) in &added {
        for chunk in names.chunks(6) {
            let _ = writeln!(out, "//   {arch}: {}", chunk.join(" "));
        }
    }
    let _ = writeln!(
        out,
        "{VERSION_LINE_PREFIX} {}.{}.{}\n",
        v("LINUX_VERSION_MAJOR"),
        v("LINUX_VERSION_PATCHLEVEL"),
        v("LINUX_VERSION_SUBLEVEL")
    );
    render(
        &mut out,
        "X86_64",
        "x86_64 syscalls, sorted by name.",
        &x86_64,
    );
    render(
        &mut out,
        "X86",
        "x86 (i386) syscalls, sorted by name.",
        &x86,
    );
    render(
        &mut out,
        "X32",
        "x32 syscalls (with the x32 bit), sorted by name.",
        &x32,
    );
    render(
        &mut out,
        "AARCH64",
        "aarch64 syscalls (from libseccomp), sorted by name.",
        &aarch64,
    );
    render(
        &mut out,
        "ARM",
        "arm (EABI) syscalls (from libseccomp), sorted by name.",
        &arm,
    );
    render(
        &mut out,
        "SOCKETCALL",
        "socketcall(2) call numbers (`SYS_*`), sorted by name.",
        &socketcall,
    );
    render(
        &mut out,
        "IPC",
        "ipc(2) call numbers, sorted by name.",
        &ipc,
    );
    // End with exactly one newline, as rustfmt leaves the file.
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    Ok(out)
}

/// Strips the version line so two renderings can be compared table for table.
pub fn without_version(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(VERSION_LINE_PREFIX))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_x32_defines() {
        let text = "#define __NR_read 0\n#define __NR_x (__X32_SYSCALL_BIT + 512)\n#define FOO 3\n#define SYS_BIND\t2\t/* c */\n";
        assert_eq!(
            parse_defines(text, "__NR_"),
            vec![("read".into(), 0), ("x".into(), 0x4000_0200)]
        );
        assert_eq!(parse_defines(text, "SYS_"), vec![("BIND".into(), 2)]);
    }

    /// CI installs linux-libc-dev, so the headers must be there: a missing header fails.
    #[test]
    fn generated_tables_match_installed_headers() {
        let fresh = generate(&HeaderPaths::system())
            .expect("linux-libc-dev headers are required (apt-get install linux-libc-dev)");
        let checked_in = include_str!("generated.rs");
        assert!(
            without_version(&fresh) == without_version(checked_in),
            "src/syscalls/generated.rs is stale: run `cargo run -p armorlet-seccomp --example gen-syscalls`"
        );
    }
}
