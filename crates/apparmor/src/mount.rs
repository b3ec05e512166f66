//! Mount rule checks (upstream `mount.cc`): known conditionals, known
//! options, conflicting options and the propagation-type restrictions.

use crate::ast::{Cond, MountKind, Pattern, Span};
use crate::parser::{Bail, Parser};

type PResult<T> = Result<T, Bail>;

const RDONLY: u32 = 1 << 0;
const NOSUID: u32 = 1 << 1;
const NODEV: u32 = 1 << 2;
const NOEXEC: u32 = 1 << 3;
const SYNC: u32 = 1 << 4;
const REMOUNT: u32 = 1 << 5;
const MAND: u32 = 1 << 6;
const DIRSYNC: u32 = 1 << 7;
const NOSYMFOLLOW: u32 = 1 << 8;
const NOATIME: u32 = 1 << 10;
const NODIRATIME: u32 = 1 << 11;
const BIND: u32 = 1 << 12;
const MOVE: u32 = 1 << 13;
const REC: u32 = 1 << 14;
const VERBOSE: u32 = 1 << 15;
const ACL: u32 = 1 << 16;
const UNBINDABLE: u32 = 1 << 17;
const PRIVATE: u32 = 1 << 18;
const SLAVE: u32 = 1 << 19;
const SHARED: u32 = 1 << 20;
const RELATIME: u32 = 1 << 21;
const IVERSION: u32 = 1 << 23;
const STRICTATIME: u32 = 1 << 24;
const LAZYTIME: u32 = 1 << 25;
const NOUSER: u32 = 1 << 31;

/// Propagation-type commands.
const MAKE_CMDS: u32 = UNBINDABLE | PRIVATE | SLAVE | SHARED;

/// Mount options: (name, flags set, flags cleared).
pub(crate) const MNT_OPTS: &[(&str, u32, u32)] = &[
    ("ro", RDONLY, 0),
    ("r", RDONLY, 0),
    ("read-only", RDONLY, 0),
    ("rw", 0, RDONLY),
    ("w", 0, RDONLY),
    ("suid", 0, NOSUID),
    ("nosuid", NOSUID, 0),
    ("dev", 0, NODEV),
    ("nodev", NODEV, 0),
    ("exec", 0, NOEXEC),
    ("noexec", NOEXEC, 0),
    ("sync", SYNC, 0),
    ("async", 0, SYNC),
    ("remount", REMOUNT, 0),
    ("mand", MAND, 0),
    ("nomand", 0, MAND),
    ("dirsync", DIRSYNC, 0),
    ("symfollow", 0, NOSYMFOLLOW),
    ("nosymfollow", NOSYMFOLLOW, 0),
    ("atime", 0, NOATIME),
    ("noatime", NOATIME, 0),
    ("diratime", 0, NODIRATIME),
    ("nodiratime", NODIRATIME, 0),
    ("bind", BIND, 0),
    ("B", BIND, 0),
    ("move", MOVE, 0),
    ("M", MOVE, 0),
    ("rbind", BIND | REC, 0),
    ("R", BIND | REC, 0),
    ("verbose", VERBOSE, 0),
    ("silent", VERBOSE, 0),
    ("loud", 0, VERBOSE),
    ("acl", ACL, 0),
    ("noacl", 0, ACL),
    ("unbindable", UNBINDABLE, 0),
    ("make-unbindable", UNBINDABLE, 0),
    ("runbindable", UNBINDABLE | REC, 0),
    ("make-runbindable", UNBINDABLE | REC, 0),
    ("private", PRIVATE, 0),
    ("make-private", PRIVATE, 0),
    ("rprivate", PRIVATE | REC, 0),
    ("make-rprivate", PRIVATE | REC, 0),
    ("slave", SLAVE, 0),
    ("make-slave", SLAVE, 0),
    ("rslave", SLAVE | REC, 0),
    ("make-rslave", SLAVE | REC, 0),
    ("shared", SHARED, 0),
    ("make-shared", SHARED, 0),
    ("rshared", SHARED | REC, 0),
    ("make-rshared", SHARED | REC, 0),
    ("relatime", RELATIME, 0),
    ("norelatime", 0, RELATIME),
    ("iversion", IVERSION, 0),
    ("noiversion", 0, IVERSION),
    ("strictatime", STRICTATIME, 0),
    ("nostrictatime", 0, STRICTATIME),
    ("lazytime", LAZYTIME, 0),
    ("nolazytime", 0, LAZYTIME),
    ("user", 0, NOUSER),
    ("nouser", NOUSER, 0),
];

pub(crate) fn check_conds(
    p: &mut Parser,
    kind: MountKind,
    conds: &[(Cond, Span)],
    _start: &Span,
) -> PResult<()> {
    for (c, s) in conds {
        match c.name.as_str() {
            "options" | "option" => {
                let mut set = 0u32;
                let mut clear = 0u32;
                for v in &c.values {
                    match MNT_OPTS.iter().find(|o| o.0 == v) {
                        Some((_, a, b)) => {
                            set |= a;
                            clear |= b;
                        }
                        None => {
                            p.error(s.clone(), format!("unsupported mount option value '{v}'"));
                            return Err(Bail);
                        }
                    }
                }
                if !c.is_in {
                    if kind == MountKind::Remount {
                        set |= REMOUNT;
                    }
                    if set & clear != 0 {
                        p.error(s.clone(), "conflicting flags in the rule");
                        return Err(Bail);
                    }
                }
            }
            "fstype" | "vfstype" => {}
            n => {
                p.error(s.clone(), format!("invalid mount conditional {n}"));
                return Err(Bail);
            }
        }
    }
    Ok(())
}

pub(crate) fn check_rule(
    p: &mut Parser,
    kind: MountKind,
    conds: &[Cond],
    source: Option<&Pattern>,
    target: Option<&Pattern>,
    start: &Span,
) -> PResult<()> {
    if kind != MountKind::Mount {
        return Ok(());
    }
    for c in conds {
        if c.is_in || !(c.name == "options" || c.name == "option") {
            continue;
        }
        let flags = c
            .values
            .iter()
            .filter_map(|v| MNT_OPTS.iter().find(|o| o.0 == v))
            .fold(0u32, |a, o| a | o.1);
        let other = flags & !(MAKE_CMDS | REC);
        if flags & MAKE_CMDS != 0 && other == 0 && source.is_some() && target.is_some() {
            p.error(
                start.clone(),
                "source and mount point cannot be used at the same time for propagation type flags",
            );
            return Err(Bail);
        }
    }
    Ok(())
}
