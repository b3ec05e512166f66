//! The evaluator: given one profile and one request, say allow or deny,
//! whether the event is logged, and which rules decided it.
//!
//! # Semantics (apparmor.d(5), upstream `perms_t` in `libapparmor_re/hfa.cc`)
//!
//! A request asks for one or more permissions (file: `r w a l k m x`;
//! network: `create`, `send`, ...). Each permission is decided on its own:
//!
//! 1. Every rule whose object matches the request (path, peer, family, ...)
//!    and whose qualifiers apply (`owner` only when the requester owns the
//!    file, `other` only when it does not) *covers* the permissions it names.
//! 2. Among the covering rules the highest level wins: a rule's level is
//!    `priority * 4` plus 3 for `deny`, 2 for an allow rule with an exact
//!    (glob-free) path when the permission is `x`, 1 for any other allow.
//!    So at equal priority an explicit `deny` beats any allow, and a higher
//!    `priority=` overrides lower ones whatever their kind.
//! 3. A permission with a winning deny is *explicitly denied*; with a
//!    winning allow it is *allowed*; with no covering rule it is *not
//!    granted* (implicit denial).
//!
//! The request is allowed when every permission is allowed. Then the
//! profile mode applies:
//!
//! | mode | explicit deny | not granted |
//! | --- | --- | --- |
//! | enforce, prompt | denied, logged only if the deny rule has `audit` | denied, logged (DENIED) |
//! | kill | denied, logged, task killed | denied, logged, task killed |
//! | complain | denied (complain never overrides a deny rule) | allowed, logged (ALLOWED) |
//! | default_allow | denied | allowed, not logged |
//! | unconfined | allowed | allowed |
//!
//! An allowed request is logged (AUDIT) when a deciding allow rule has
//! `audit`, or the profile has `flags=(audit)` (which logs everything).
//! `quiet` on a deny rule keeps it silent even with the profile's `audit`
//! flag. Write (`w`) implies append (`a`); `ix` implies `m`; `file,` is
//! `/{**,} rwlkmix` (as upstream's grammar expands it); `all,` covers
//! everything.
//!
//! For an `x` request the winning allow rules also give the exec mode
//! (`ix`, `Px`, ...) and the `->` target; two winning rules with different
//! modes are reported as a conflict (upstream refuses to compile such a
//! profile).

use std::collections::BTreeMap;

use thiserror::Error;

use crate::aare::{filter_slashes, Aare, AareError};
use crate::ast::{
    Cond, ExecKind, ExecMode, FilePerms, MountKind, Pattern, Policy, Profile, ProfileMode, Rule,
    RuleKind, Span,
};

/// Errors building an [`Evaluator`] or parsing a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvalError {
    /// A rule's pattern is not a valid AARE.
    #[error("{span}: invalid pattern '{pattern}': {source}")]
    BadPattern {
        span: Span,
        pattern: String,
        #[source]
        source: AareError,
    },
    /// A rule still holds an `@{VAR}` reference (the policy was not
    /// validated, or validation failed).
    #[error("{span}: pattern '{pattern}' has an unexpanded variable (was the policy validated?)")]
    UnexpandedVariable { span: Span, pattern: String },
    /// An access string had an unknown letter.
    #[error("invalid file access '{access}': unknown permission '{letter}' (expected some of r w a l k m x)")]
    BadAccess { access: String, letter: char },
    /// An empty access string.
    #[error("empty file access: give some of r w a l k m x")]
    EmptyAccess,
    /// No such profile in the policy.
    #[error("no profile named '{name}' (profiles: {available})")]
    NoSuchProfile { name: String, available: String },
    /// The policy defines several profiles and none was chosen.
    #[error("the policy defines {count} profiles ({available}); choose one")]
    AmbiguousProfile { count: usize, available: String },
    /// The policy defines no profile.
    #[error("the policy defines no profile")]
    NoProfile,
}

type Result<T, E = EvalError> = std::result::Result<T, E>;

/// File permissions a request can ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FileAccess(u8);

impl FileAccess {
    pub const READ: FileAccess = FileAccess(1 << 0);
    pub const WRITE: FileAccess = FileAccess(1 << 1);
    pub const APPEND: FileAccess = FileAccess(1 << 2);
    pub const LINK: FileAccess = FileAccess(1 << 3);
    pub const LOCK: FileAccess = FileAccess(1 << 4);
    pub const MMAP: FileAccess = FileAccess(1 << 5);
    pub const EXEC: FileAccess = FileAccess(1 << 6);

    const LETTERS: [(char, FileAccess); 7] = [
        ('r', FileAccess::READ),
        ('w', FileAccess::WRITE),
        ('a', FileAccess::APPEND),
        ('l', FileAccess::LINK),
        ('k', FileAccess::LOCK),
        ('m', FileAccess::MMAP),
        ('x', FileAccess::EXEC),
    ];

    /// Parses letters such as `rw` or `mr`.
    pub fn parse(s: &str) -> Result<FileAccess> {
        let mut out = FileAccess(0);
        for c in s.chars() {
            let Some((_, bit)) = Self::LETTERS.iter().find(|(l, _)| *l == c) else {
                return Err(EvalError::BadAccess {
                    access: s.to_owned(),
                    letter: c,
                });
            };
            out.0 |= bit.0;
        }
        if out.0 == 0 {
            return Err(EvalError::EmptyAccess);
        }
        Ok(out)
    }

    pub fn contains(self, other: FileAccess) -> bool {
        self.0 & other.0 == other.0
    }

    /// The permissions as letters, in `rwalkmx` order.
    pub fn letters(self) -> impl Iterator<Item = (char, FileAccess)> {
        Self::LETTERS
            .into_iter()
            .filter(move |(_, b)| self.contains(*b))
    }
}

impl std::ops::BitOr for FileAccess {
    type Output = FileAccess;
    fn bitor(self, rhs: FileAccess) -> FileAccess {
        FileAccess(self.0 | rhs.0)
    }
}

impl std::fmt::Display for FileAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (c, _) in self.letters() {
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A file access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// The path as the kernel names it (absolute, directories with a
    /// trailing `/`).
    pub path: String,
    pub access: FileAccess,
    /// Whether the requesting task's fsuid owns the file.
    pub owner: bool,
    /// For `l`: the target of the hard link, checked against `link` rules.
    pub link_target: Option<String>,
}

/// A network access (socket level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// Address family: `inet`, `inet6`, `unix`, `netlink`, ...
    pub domain: String,
    /// Socket type: `stream`, `dgram`, `raw`, ...
    pub sock_type: Option<String>,
    /// Protocol: `tcp`, `udp`, `icmp`, ...
    pub protocol: Option<String>,
    /// Permissions (`create`, `send`, `r`, ...); empty means `create`.
    pub perms: Vec<String>,
    /// Local address conditions (`ip`, `port`) for fine-grained rules.
    pub conds: BTreeMap<String, String>,
    /// Peer address conditions (`ip`, `port`).
    pub peer: BTreeMap<String, String>,
}

/// A signal between tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalRequest {
    /// `send` or `receive` (also `w`/`r`).
    pub perm: String,
    /// Signal name (`hup`, `SIGKILL`, `rtmin+1`, ...).
    pub signal: String,
    /// The other task's label.
    pub peer: String,
}

/// A ptrace access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PtraceRequest {
    /// `trace`, `tracedby`, `read`, `readby` (also `r`/`w`).
    pub perm: String,
    pub peer: String,
}

/// A rule class keyed by named conditions (unix sockets, D-Bus, mqueue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CondRequest {
    pub perms: Vec<String>,
    /// Conditions such as `type`, `addr`, `label`, `bus`, `path`, `member`.
    pub conds: BTreeMap<String, String>,
    /// Peer conditions (`addr`, `label`, `name`).
    pub peer: BTreeMap<String, String>,
    /// mqueue: the queue name.
    pub name: Option<String>,
}

/// A mount-class operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub kind: MountKind,
    /// mount: the source device; pivot_root: the new root.
    pub source: Option<String>,
    /// mount: the mount point; umount/remount: the mount point too.
    pub mountpoint: Option<String>,
    pub fstype: Option<String>,
    pub options: Vec<String>,
}

/// Anything a confined task may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    File(FileRequest),
    /// A capability name, with or without `CAP_`, any case.
    Capability(String),
    Network(NetworkRequest),
    Signal(SignalRequest),
    Ptrace(PtraceRequest),
    Unix(CondRequest),
    Dbus(CondRequest),
    Mqueue(CondRequest),
    Mount(MountRequest),
    /// `userns create`.
    Userns,
    /// `io_uring` with permissions (`sqpoll`, `override_creds`) and the
    /// label of the credentials being overridden.
    IoUring {
        perms: Vec<String>,
        label: Option<String>,
    },
    /// `change_profile` to `target`, optionally only when executing `exec`.
    ChangeProfile {
        target: String,
        exec: Option<String>,
    },
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

/// How the event is logged, with the kernel's tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Not logged.
    None,
    /// Allowed and logged (`audit` rule or profile flag).
    Audit,
    /// Would be denied, allowed by complain mode, logged as ALLOWED.
    Allowed,
    /// Denied and logged.
    Denied,
}

/// Why the verdict is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every permission granted by allow rules.
    Allowed,
    /// A `deny` rule won for some permission.
    ExplicitDeny,
    /// Some permission is not granted by any rule (enforce/kill/prompt).
    NotGranted,
    /// Not granted, but the profile is in complain mode.
    Complain,
    /// Not granted, but the profile is `default_allow`.
    DefaultAllow,
    /// The profile is `unconfined`.
    Unconfined,
}

/// The outcome for one requested permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermOutcome {
    Allowed,
    ExplicitDeny,
    NotGranted,
}

/// One requested permission and the rules that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct PermDecision<'a> {
    /// The permission (`r`, `w`, `send`, the capability name, ...).
    pub perm: String,
    pub outcome: PermOutcome,
    /// The winning rules (all of one kind, at the winning level).
    pub rules: Vec<&'a Rule>,
}

/// The exec transition of an allowed `x` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecDecision<'a> {
    pub mode: ExecMode,
    /// `-> target` of the deciding rule.
    pub target: Option<&'a Pattern>,
    /// The winning rules disagree on the exec mode (upstream rejects such
    /// a profile: "conflicting x modifiers").
    pub conflict: bool,
}

/// The evaluator's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub reason: Reason,
    pub log: Log,
    /// The task is killed (`kill` mode on a denial).
    pub kill: bool,
    /// The rules that decided: the winning deny rules on an explicit
    /// denial, otherwise the winning allow rules.
    pub rules: Vec<&'a Rule>,
    /// One entry per requested permission.
    pub perms: Vec<PermDecision<'a>>,
    /// For a file `x` request that was allowed by rules.
    pub exec: Option<ExecDecision<'a>>,
}

impl Decision<'_> {
    /// Is the event logged?
    pub fn audit(&self) -> bool {
        self.log != Log::None
    }
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// Finds a profile by name (`outer//hat` for hats and child profiles).
/// With `None`, the policy must define exactly one top-level profile.
pub fn find_profile<'p>(policy: &'p Policy, name: Option<&str>) -> Result<&'p Profile> {
    let available = || {
        crate::profile_names(policy)
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(name) = name else {
        return match policy.profiles.as_slice() {
            [] => Err(EvalError::NoProfile),
            [one] => Ok(one),
            many => Err(EvalError::AmbiguousProfile {
                count: many.len(),
                available: available(),
            }),
        };
    };
    let mut parts = name.split("//");
    let first = parts.next().unwrap_or_default();
    let mut cur = policy.profiles.iter().find(|p| p.name == first);
    for part in parts {
        cur = cur.and_then(|p| p.children.iter().find(|c| c.name == part));
    }
    cur.ok_or_else(|| EvalError::NoSuchProfile {
        name: name.to_owned(),
        available: available(),
    })
}

/// The patterns of one AST [`Pattern`], compiled.
#[derive(Debug, Clone)]
struct Pats(Vec<Aare>);

impl Pats {
    /// Compiles a path-like pattern: runs of `/` are collapsed first, as
    /// upstream does for file, link and mount paths.
    fn path(p: &Pattern, span: &Span) -> Result<Pats> {
        let filtered = Pattern {
            raw: p.raw.clone(),
            expanded: p.expanded.iter().map(|e| filter_slashes(e)).collect(),
        };
        let raw_only = p.expanded.is_empty() && !p.raw.contains("@{");
        Pats::compile(
            &if raw_only {
                Pattern::new(filter_slashes(&p.raw))
            } else {
                filtered
            },
            span,
        )
    }

    fn opt_path(p: &Option<Pattern>, span: &Span) -> Result<Option<Pats>> {
        p.as_ref().map(|p| Pats::path(p, span)).transpose()
    }

    fn compile(p: &Pattern, span: &Span) -> Result<Pats> {
        let sources: Vec<&str> = if p.expanded.is_empty() {
            if p.raw.contains("@{") {
                return Err(EvalError::UnexpandedVariable {
                    span: span.clone(),
                    pattern: p.raw.clone(),
                });
            }
            vec![p.raw.as_str()]
        } else {
            p.expanded.iter().map(String::as_str).collect()
        };
        let mut out = Vec::with_capacity(sources.len());
        for s in sources {
            out.push(Aare::new(s).map_err(|source| EvalError::BadPattern {
                span: span.clone(),
                pattern: s.to_owned(),
                source,
            })?);
        }
        Ok(Pats(out))
    }

    fn opt(p: &Option<Pattern>, span: &Span) -> Result<Option<Pats>> {
        p.as_ref().map(|p| Pats::compile(p, span)).transpose()
    }

    fn is_match(&self, s: &str) -> bool {
        self.0.iter().any(|a| a.is_match(s))
    }

    /// Every alternative is a plain path (used for exec dominance).
    fn is_exact(&self) -> bool {
        self.0.iter().all(|a| a.literal().is_some())
    }
}

/// `o` is absent or satisfies `f` (`Option::is_none_or`, stable only since
/// Rust 1.82; the workspace's MSRV is 1.80).
fn none_or<T>(o: Option<T>, f: impl FnOnce(T) -> bool) -> bool {
    match o {
        None => true,
        Some(v) => f(v),
    }
}

/// `None` pattern = any value; otherwise the value must be given and match.
fn opt_match(p: &Option<Pats>, value: Option<&str>) -> bool {
    match p {
        None => true,
        Some(p) => value.is_some_and(|v| p.is_match(v)),
    }
}

/// Compiled per-rule data, parallel to the profile's rules.
#[derive(Debug, Clone)]
enum Compiled {
    None,
    File {
        path: Pats,
    },
    Link {
        link: Pats,
        target: Pats,
    },
    Mount {
        source: Option<Pats>,
        target: Option<Pats>,
        oldroot: Option<Pats>,
    },
    Peer(Option<Pats>),
    ChangeProfile {
        exec: Option<Pats>,
        target: Option<Pats>,
    },
    Mqueue(Option<Pats>),
}

/// One profile, with its patterns compiled, ready to answer requests.
#[derive(Debug, Clone)]
pub struct Evaluator<'a> {
    profile: &'a Profile,
    compiled: Vec<Compiled>,
}

/// A rule covering some requested permissions.
struct Hit<'a> {
    rule: &'a Rule,
    /// Bit i set: covers requested permission i.
    bits: u64,
    exact: bool,
    exec: Option<ExecMode>,
    target: Option<&'a Pattern>,
}

impl<'a> Evaluator<'a> {
    /// Compiles every pattern of `profile` (not of its children).
    pub fn new(profile: &'a Profile) -> Result<Evaluator<'a>> {
        let mut compiled = Vec::with_capacity(profile.rules.len());
        for rule in &profile.rules {
            let span = &rule.span;
            let c = match &rule.kind {
                RuleKind::File(f) => Compiled::File {
                    path: match &f.path {
                        Some(p) => Pats::path(p, span)?,
                        None => Pats::compile(&Pattern::new("/{**,}"), span)?,
                    },
                },
                RuleKind::Link(l) => Compiled::Link {
                    link: Pats::path(&l.link, span)?,
                    target: Pats::path(&l.target, span)?,
                },
                RuleKind::Mount(m) => Compiled::Mount {
                    source: Pats::opt_path(&m.source, span)?,
                    target: Pats::opt_path(&m.target, span)?,
                    oldroot: Pats::opt_path(&m.oldroot, span)?,
                },
                RuleKind::Signal(s) => Compiled::Peer(Pats::opt(&s.peer, span)?),
                RuleKind::Ptrace(p) => Compiled::Peer(Pats::opt(&p.peer, span)?),
                RuleKind::IoUring(i) => Compiled::Peer(Pats::opt(&i.label, span)?),
                RuleKind::ChangeProfile(c) => Compiled::ChangeProfile {
                    exec: Pats::opt(&c.exec, span)?,
                    target: Pats::opt(&c.target, span)?,
                },
                RuleKind::Mqueue(m) => Compiled::Mqueue(Pats::opt(&m.name, span)?),
                _ => Compiled::None,
            };
            compiled.push(c);
        }
        Ok(Evaluator { profile, compiled })
    }

    /// The profile being evaluated.
    pub fn profile(&self) -> &'a Profile {
        self.profile
    }

    /// Decides `request`.
    pub fn evaluate(&self, request: &Request) -> Decision<'a> {
        match request {
            Request::File(f) => {
                let (names, hits) = self.file_hits(f);
                self.decide(names, hits, Some(f.access))
            }
            other => {
                let (names, hits) = self.other_hits(other);
                self.decide(names, hits, None)
            }
        }
    }

    fn rules(&self) -> impl Iterator<Item = (&'a Rule, &Compiled)> {
        self.profile.rules.iter().zip(self.compiled.iter())
    }

    fn file_hits(&self, req: &FileRequest) -> (Vec<String>, Vec<Hit<'a>>) {
        // Every file permission is decided (the implied `m` of `ix`
        // depends on the `x` outcome); `decide` keeps the requested ones.
        let requested: Vec<(char, FileAccess)> = FileAccess(0x7f).letters().collect();
        let names = requested.iter().map(|(c, _)| c.to_string()).collect();
        let bit_of = |want: FileAccess| -> u64 {
            requested
                .iter()
                .enumerate()
                .filter(|(_, (_, b))| want.contains(*b))
                .fold(0, |acc, (i, _)| acc | 1 << i)
        };
        let all = bit_of(FileAccess(0x7f));
        let mut hits = Vec::new();
        for (rule, c) in self.rules() {
            let q = &rule.qualifiers;
            if (q.owner && !req.owner) || (q.other && req.owner) {
                continue;
            }
            match (&rule.kind, c) {
                (RuleKind::File(f), Compiled::File { path }) => {
                    if !path.is_match(&req.path) {
                        continue;
                    }
                    let (grant, exec) = if f.path.is_none() {
                        // `file,` = `/{**,} rwlkm ix` (upstream grammar).
                        let ix = ExecMode {
                            kind: ExecKind::Inherit,
                            scrub: false,
                            fallback: None,
                        };
                        (FileAccess(0x7f), Some(ix))
                    } else {
                        (file_grant(f.perms, f.exec), f.exec)
                    };
                    let bits = bit_of(grant);
                    if bits != 0 {
                        hits.push(Hit {
                            rule,
                            bits,
                            exact: path.is_exact(),
                            exec,
                            target: f.target.as_ref(),
                        });
                    }
                }
                (RuleKind::Link(_), Compiled::Link { link, target }) => {
                    let linked = req
                        .link_target
                        .as_deref()
                        .is_some_and(|t| target.is_match(t));
                    if link.is_match(&req.path) && linked {
                        let bits = bit_of(FileAccess::LINK);
                        if bits != 0 {
                            hits.push(Hit {
                                rule,
                                bits,
                                exact: false,
                                exec: None,
                                target: None,
                            });
                        }
                    }
                }
                (RuleKind::All, _) => hits.push(Hit {
                    rule,
                    bits: all,
                    exact: false,
                    exec: Some(ExecMode {
                        kind: ExecKind::Inherit,
                        scrub: false,
                        fallback: None,
                    }),
                    target: None,
                }),
                _ => {}
            }
        }
        (names, hits)
    }

    fn other_hits(&self, req: &Request) -> (Vec<String>, Vec<Hit<'a>>) {
        let names: Vec<String> = match req {
            Request::File(_) => unreachable!("file requests are handled by file_hits"),
            Request::Capability(c) => vec![capability_name(c)],
            Request::Network(n) => {
                if n.perms.is_empty() {
                    vec!["create".to_owned()]
                } else {
                    canon_perms(PermClass::Net, &n.perms)
                }
            }
            Request::Signal(s) => canon_perms(PermClass::Signal, std::slice::from_ref(&s.perm)),
            Request::Ptrace(p) => canon_perms(PermClass::Ptrace, std::slice::from_ref(&p.perm)),
            Request::Unix(u) => canon_perms(PermClass::Net, &u.perms),
            Request::Dbus(d) => canon_perms(PermClass::Dbus, &d.perms),
            Request::Mqueue(m) => canon_perms(PermClass::Mqueue, &m.perms),
            Request::Mount(m) => vec![mount_kind_name(m.kind).to_owned()],
            Request::Userns => vec!["create".to_owned()],
            Request::IoUring { perms, .. } => canon_perms(PermClass::Plain, perms),
            Request::ChangeProfile { .. } => vec!["change_profile".to_owned()],
        };
        let mut hits = Vec::new();
        for (rule, c) in self.rules() {
            let covered: Option<Vec<String>> = match (&rule.kind, c, req) {
                (RuleKind::All, _, _) => None,
                (RuleKind::Capability(r), _, Request::Capability(_)) => {
                    if r.caps.is_empty() || r.caps.iter().any(|c| capability_name(c) == names[0]) {
                        None
                    } else {
                        continue;
                    }
                }
                (RuleKind::Network(r), _, Request::Network(n)) => {
                    let dom_ok = none_or(r.domain.as_deref(), |d| d == n.domain);
                    let type_ok = none_or(r.sock_type.as_deref(), |t| {
                        n.sock_type.as_deref() == Some(t)
                    });
                    let proto_ok =
                        none_or(r.protocol.as_deref(), |p| n.protocol.as_deref() == Some(p));
                    if !(dom_ok
                        && type_ok
                        && proto_ok
                        && conds_match(&r.conds, &n.conds)
                        && conds_match(&r.peer, &n.peer))
                    {
                        continue;
                    }
                    rule_perms(PermClass::Net, &r.perms)
                }
                (RuleKind::Signal(r), Compiled::Peer(peer), Request::Signal(s)) => {
                    let sig = signal_name(&s.signal);
                    let sig_ok =
                        r.signals.is_empty() || r.signals.iter().any(|x| signal_name(x) == sig);
                    if !(sig_ok && opt_match(peer, Some(&s.peer))) {
                        continue;
                    }
                    rule_perms(PermClass::Signal, &r.perms)
                }
                (RuleKind::Ptrace(r), Compiled::Peer(peer), Request::Ptrace(p)) => {
                    if !opt_match(peer, Some(&p.peer)) {
                        continue;
                    }
                    rule_perms(PermClass::Ptrace, &r.perms)
                }
                (RuleKind::Unix(r), _, Request::Unix(u)) => {
                    if !(conds_match(&r.conds, &u.conds) && conds_match(&r.peer, &u.peer)) {
                        continue;
                    }
                    rule_perms(PermClass::Net, &r.perms)
                }
                (RuleKind::Dbus(r), _, Request::Dbus(d)) => {
                    if !(conds_match(&r.conds, &d.conds) && conds_match(&r.peer, &d.peer)) {
                        continue;
                    }
                    rule_perms(PermClass::Dbus, &r.perms)
                }
                (RuleKind::Mqueue(r), Compiled::Mqueue(name), Request::Mqueue(m)) => {
                    if !(conds_match(&r.conds, &m.conds) && opt_match(name, m.name.as_deref())) {
                        continue;
                    }
                    rule_perms(PermClass::Mqueue, &r.perms)
                }
                (
                    RuleKind::Mount(r),
                    Compiled::Mount {
                        source,
                        target,
                        oldroot,
                    },
                    Request::Mount(m),
                ) => {
                    // `remount` is `mount options=(remount)`: a mount
                    // rule whose options allow remount covers it too.
                    let remount_by_mount = r.kind == MountKind::Mount
                        && m.kind == MountKind::Remount
                        && mount_allows_remount(&r.conds);
                    if (r.kind != m.kind && !remount_by_mount) || !mount_conds_match(&r.conds, m) {
                        continue;
                    }
                    let ok = match m.kind {
                        MountKind::Remount if remount_by_mount => {
                            opt_match(target, m.mountpoint.as_deref())
                        }
                        MountKind::Mount => {
                            opt_match(source, m.source.as_deref())
                                && opt_match(target, m.mountpoint.as_deref())
                        }
                        // umount/remount: the rule's path is the mount point.
                        MountKind::Umount | MountKind::Remount => {
                            opt_match(source, m.mountpoint.as_deref())
                        }
                        MountKind::PivotRoot => {
                            opt_match(source, m.source.as_deref())
                                && opt_match(oldroot, m.mountpoint.as_deref())
                        }
                    };
                    if !ok {
                        continue;
                    }
                    None
                }
                (RuleKind::Userns(r), _, Request::Userns) => rule_perms(PermClass::Plain, &r.perms),
                (
                    RuleKind::IoUring(r),
                    Compiled::Peer(label),
                    Request::IoUring { label: l, .. },
                ) => {
                    if !opt_match(label, l.as_deref()) {
                        continue;
                    }
                    rule_perms(PermClass::Plain, &r.perms)
                }
                (
                    RuleKind::ChangeProfile(_),
                    Compiled::ChangeProfile { exec, target },
                    Request::ChangeProfile { target: t, exec: e },
                ) => {
                    if !(opt_match(target, Some(t)) && opt_match(exec, e.as_deref())) {
                        continue;
                    }
                    None
                }
                _ => continue,
            };
            let bits = names
                .iter()
                .enumerate()
                .filter(|(_, n)| none_or(covered.as_ref(), |c| c.contains(n)))
                .fold(0u64, |acc, (i, _)| acc | 1 << i);
            if bits != 0 {
                hits.push(Hit {
                    rule,
                    bits,
                    exact: false,
                    exec: None,
                    target: None,
                });
            }
        }
        (names, hits)
    }

    /// Decides every permission in `names`. For a file request, `file`
    /// is the requested access: `names` are then all of `rwalkmx`, and the
    /// ones not requested are dropped after the `ix`-implies-`m` step.
    fn decide(
        &self,
        names: Vec<String>,
        hits: Vec<Hit<'a>>,
        file: Option<FileAccess>,
    ) -> Decision<'a> {
        let exec_index = file.and_then(|_| names.iter().position(|n| n == "x"));
        let level = |h: &Hit, i: usize| -> i64 {
            let pri = i64::from(h.rule.qualifiers.priority.unwrap_or(0)) * 4;
            pri + if h.rule.qualifiers.deny {
                3
            } else if h.exact && Some(i) == exec_index {
                2
            } else {
                1
            }
        };
        let mut perms = Vec::with_capacity(names.len());
        let mut levels = Vec::with_capacity(names.len());
        let mut exec = None;
        for (i, name) in names.into_iter().enumerate() {
            let covering: Vec<&Hit> = hits.iter().filter(|h| h.bits & (1 << i) != 0).collect();
            let best = covering.iter().map(|h| level(h, i)).max();
            levels.push(best);
            let Some(best) = best else {
                perms.push(PermDecision {
                    perm: name,
                    outcome: PermOutcome::NotGranted,
                    rules: Vec::new(),
                });
                continue;
            };
            let winners: Vec<&Hit> = covering
                .into_iter()
                .filter(|h| level(h, i) == best)
                .collect();
            let deny = winners[0].rule.qualifiers.deny;
            if !deny && Some(i) == exec_index {
                let modes: Vec<(ExecMode, Option<&'a Pattern>)> = winners
                    .iter()
                    .filter_map(|h| h.exec.map(|m| (m, h.target)))
                    .collect();
                if let Some(&(mode, target)) = modes.first() {
                    exec = Some(ExecDecision {
                        mode,
                        target,
                        conflict: modes.iter().any(|(m, t)| *m != mode || *t != target),
                    });
                }
            }
            perms.push(PermDecision {
                perm: name,
                outcome: if deny {
                    PermOutcome::ExplicitDeny
                } else {
                    PermOutcome::Allowed
                },
                rules: winners.iter().map(|h| h.rule).collect(),
            });
        }
        if let Some(access) = file {
            // `ix` implies `m` (upstream add_implied_ix_mmap): when the
            // resolved exec type is inherit and `m` is not decided at a
            // higher level than `x`.
            let (m, x) = (5, 6);
            if let (Some(e), Some(xl)) = (&exec, levels[x]) {
                if e.mode.kind == ExecKind::Inherit
                    && perms[x].outcome == PermOutcome::Allowed
                    && none_or(levels[m], |ml| ml <= xl)
                    && perms[m].outcome != PermOutcome::Allowed
                {
                    perms[m].outcome = PermOutcome::Allowed;
                    perms[m].rules = perms[x].rules.clone();
                }
            }
            let keep: Vec<bool> = FileAccess(0x7f)
                .letters()
                .map(|(_, b)| access.contains(b))
                .collect();
            let mut k = keep.iter();
            perms.retain(|_| *k.next().unwrap_or(&false));
            if !access.contains(FileAccess::EXEC) {
                exec = None;
            }
        }
        self.apply_mode(perms, exec)
    }

    fn apply_mode(
        &self,
        perms: Vec<PermDecision<'a>>,
        exec: Option<ExecDecision<'a>>,
    ) -> Decision<'a> {
        let profile_audit = self.profile.flags.audit;
        let mode = self.profile.mode();
        let collect = |outcome: PermOutcome| -> Vec<&'a Rule> {
            let mut out: Vec<&'a Rule> = Vec::new();
            for p in perms.iter().filter(|p| p.outcome == outcome) {
                for r in &p.rules {
                    if !out.iter().any(|o| std::ptr::eq(*o, *r)) {
                        out.push(r);
                    }
                }
            }
            out
        };
        let explicit = perms.iter().any(|p| p.outcome == PermOutcome::ExplicitDeny);
        let missing = perms.iter().any(|p| p.outcome == PermOutcome::NotGranted);
        let allow_rules = collect(PermOutcome::Allowed);
        let allowed_log = if profile_audit || allow_rules.iter().any(|r| r.qualifiers.audit) {
            Log::Audit
        } else {
            Log::None
        };
        let d = |verdict, reason, log, kill, rules| Decision {
            verdict,
            reason,
            log,
            kill,
            rules,
            perms: perms.clone(),
            exec: exec.clone(),
        };
        if mode == ProfileMode::Unconfined {
            return d(
                Verdict::Allow,
                Reason::Unconfined,
                Log::None,
                false,
                allow_rules,
            );
        }
        let kill = mode == ProfileMode::Kill;
        if explicit {
            let deny_rules = collect(PermOutcome::ExplicitDeny);
            let audited = deny_rules.iter().any(|r| r.qualifiers.audit);
            let quiet = deny_rules.iter().all(|r| r.qualifiers.quiet);
            let log = if kill || audited || (profile_audit && !quiet) {
                Log::Denied
            } else {
                Log::None
            };
            return d(Verdict::Deny, Reason::ExplicitDeny, log, kill, deny_rules);
        }
        if missing {
            return match mode {
                ProfileMode::Complain => d(
                    Verdict::Allow,
                    Reason::Complain,
                    Log::Allowed,
                    false,
                    allow_rules,
                ),
                ProfileMode::DefaultAllow => d(
                    Verdict::Allow,
                    Reason::DefaultAllow,
                    if profile_audit {
                        Log::Audit
                    } else {
                        allowed_log
                    },
                    false,
                    allow_rules,
                ),
                _ => d(
                    Verdict::Deny,
                    Reason::NotGranted,
                    Log::Denied,
                    kill,
                    allow_rules,
                ),
            };
        }
        d(
            Verdict::Allow,
            Reason::Allowed,
            allowed_log,
            false,
            allow_rules,
        )
    }
}

/// The request permissions a file rule covers (the `m` implied by `ix` is
/// added by [`Evaluator::decide`], after the exec type is resolved).
fn file_grant(perms: FilePerms, exec: Option<ExecMode>) -> FileAccess {
    let mut g = FileAccess(0);
    let map = [
        (FilePerms::READ, FileAccess::READ),
        // `w` implies `a` (upstream parse_mode sets both bits).
        (FilePerms::WRITE, FileAccess::WRITE | FileAccess::APPEND),
        (FilePerms::APPEND, FileAccess::APPEND),
        (FilePerms::LINK, FileAccess::LINK),
        (FilePerms::LOCK, FileAccess::LOCK),
        (FilePerms::MMAP, FileAccess::MMAP),
        (FilePerms::EXEC, FileAccess::EXEC),
    ];
    for (p, a) in map {
        if perms.contains(p) {
            g = g | a;
        }
    }
    if exec.is_some() {
        g = g | FileAccess::EXEC;
    }
    g
}

#[derive(Clone, Copy)]
enum PermClass {
    Net,
    Signal,
    Ptrace,
    Dbus,
    Mqueue,
    Plain,
}

/// Canonical permission names for the short forms (`r`, `w`, `rw`, ...).
fn canon_perm(class: PermClass, p: &str) -> Vec<String> {
    let p = p.to_ascii_lowercase();
    let (r, w): (&[&str], &[&str]) = match class {
        PermClass::Net | PermClass::Signal | PermClass::Dbus => (&["receive"], &["send"]),
        PermClass::Ptrace => (&["read"], &["trace"]),
        PermClass::Mqueue => (&["read"], &["write"]),
        PermClass::Plain => (&[], &[]),
    };
    let names: Vec<&str> = match p.as_str() {
        "r" | "read" if !r.is_empty() => r.to_vec(),
        "w" | "write" if !w.is_empty() => w.to_vec(),
        "rw" if !r.is_empty() => r.iter().chain(w).copied().collect(),
        // Any other name stands for itself: only the same name matches.
        other => vec![other],
    };
    names.into_iter().map(str::to_owned).collect()
}

fn canon_perms(class: PermClass, perms: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in perms {
        for c in canon_perm(class, p) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// `None` = the rule names no permission, so it covers all of them.
fn rule_perms(class: PermClass, perms: &[String]) -> Option<Vec<String>> {
    (!perms.is_empty()).then(|| canon_perms(class, perms))
}

fn capability_name(c: &str) -> String {
    let c = c.to_ascii_lowercase();
    c.strip_prefix("cap_").map(str::to_owned).unwrap_or(c)
}

fn signal_name(s: &str) -> String {
    let s = s.to_ascii_lowercase();
    s.strip_prefix("sig").map(str::to_owned).unwrap_or(s)
}

fn mount_kind_name(k: MountKind) -> &'static str {
    match k {
        MountKind::Mount => "mount",
        MountKind::Remount => "remount",
        MountKind::Umount => "umount",
        MountKind::PivotRoot => "pivot_root",
    }
}

/// Every rule condition must be given by the request with a matching value
/// (values are AAREs; an invalid one is compared literally).
fn conds_match(rule: &[Cond], req: &BTreeMap<String, String>) -> bool {
    rule.iter().all(|c| {
        req.get(&c.name)
            .is_some_and(|v| c.values.iter().any(|pat| value_match(pat, v)))
    })
}

fn value_match(pat: &str, v: &str) -> bool {
    match Aare::new(pat) {
        Ok(a) => a.is_match(v),
        Err(_) => pat == v,
    }
}

fn is_options_cond(c: &Cond) -> bool {
    matches!(c.name.as_str(), "options" | "flags")
}

/// A `mount` rule covers a remount when it has no options condition or
/// one that lists `remount`.
fn mount_allows_remount(conds: &[Cond]) -> bool {
    conds.iter().filter(|c| is_options_cond(c)).all(|c| {
        c.values
            .iter()
            .flat_map(|v| v.split(','))
            .any(|v| v.trim() == "remount")
    })
}

fn mount_conds_match(conds: &[Cond], m: &MountRequest) -> bool {
    conds.iter().all(|c| match c.name.as_str() {
        "fstype" | "vfstype" => m
            .fstype
            .as_deref()
            .is_some_and(|f| c.values.iter().any(|p| value_match(p, f))),
        _ if is_options_cond(c) => {
            let vals: Vec<&str> = c
                .values
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            // The `remount` option selects the operation; it is not one
            // of the request's options.
            let opts: Vec<&str> = m
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| *o != "remount")
                .collect();
            let vals: Vec<&str> = vals.into_iter().filter(|v| *v != "remount").collect();
            if c.is_in {
                opts.iter().all(|o| vals.contains(o))
            } else {
                opts.len() == vals.len() && opts.iter().all(|o| vals.contains(o))
            }
        }
        // Other conditions are not modelled; they do not restrict.
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{
        CapabilityRule, ChangeProfileRule, FileRule, Flags, LinkRule, MountRule, NetworkRule,
        ProfileKind, PtraceRule, Qualifiers, SignalRule, UnixRule, UsernsRule,
    };

    fn span(line: u32) -> Span {
        Span {
            file: "test.sd".into(),
            line,
            column: 3,
        }
    }

    fn q(s: &str) -> Qualifiers {
        let mut q = Qualifiers::default();
        for w in s.split_whitespace() {
            match w {
                "deny" => q.deny = true,
                "audit" => q.audit = true,
                "quiet" => q.quiet = true,
                "owner" => q.owner = true,
                "other" => q.other = true,
                "allow" => q.allow = true,
                p if p.starts_with("priority=") => {
                    q.priority = Some(p["priority=".len()..].parse().unwrap())
                }
                other => panic!("bad qualifier {other}"),
            }
        }
        q
    }

    /// Parses the permission letters of a file rule the way the AST stores
    /// them: `ix`, `Px`, `Cx`, `pix`... become an exec mode.
    fn perms(s: &str) -> (FilePerms, Option<ExecMode>) {
        let mut p = FilePerms::empty();
        let mut exec = None;
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'r' => p |= FilePerms::READ,
                b'w' => p |= FilePerms::WRITE,
                b'a' => p |= FilePerms::APPEND,
                b'l' => p |= FilePerms::LINK,
                b'k' => p |= FilePerms::LOCK,
                b'm' => p |= FilePerms::MMAP,
                b'x' => {
                    p |= FilePerms::EXEC;
                    exec.get_or_insert(ExecMode {
                        kind: ExecKind::Plain,
                        scrub: false,
                        fallback: None,
                    });
                }
                c @ (b'i' | b'p' | b'c' | b'u' | b'P' | b'C' | b'U') => {
                    let kind = match c.to_ascii_lowercase() {
                        b'i' => ExecKind::Inherit,
                        b'p' => ExecKind::Profile,
                        b'c' => ExecKind::Child,
                        _ => ExecKind::Unconfined,
                    };
                    // `pix`: a fallback follows
                    let fallback = match b.get(i + 1) {
                        Some(b'i') => Some(ExecKind::Inherit),
                        Some(b'u') => Some(ExecKind::Unconfined),
                        _ => None,
                    };
                    if fallback.is_some() {
                        i += 1;
                    }
                    exec = Some(ExecMode {
                        kind,
                        scrub: c.is_ascii_uppercase(),
                        fallback,
                    });
                }
                c => panic!("bad perm {}", c as char),
            }
            i += 1;
        }
        (p, exec)
    }

    fn pat(s: &str) -> Pattern {
        Pattern {
            raw: s.to_owned(),
            expanded: vec![s.to_owned()],
        }
    }

    fn file(line: u32, quals: &str, path: &str, p: &str) -> Rule {
        let (perms, exec) = perms(p);
        Rule {
            qualifiers: q(quals),
            kind: RuleKind::File(FileRule {
                path: Some(pat(path)),
                perms,
                exec,
                target: None,
                file_keyword: false,
            }),
            span: span(line),
        }
    }

    fn rule(line: u32, quals: &str, kind: RuleKind) -> Rule {
        Rule {
            qualifiers: q(quals),
            kind,
            span: span(line),
        }
    }

    fn bare_file(line: u32, quals: &str) -> Rule {
        rule(
            line,
            quals,
            RuleKind::File(FileRule {
                path: None,
                perms: FilePerms::empty(),
                exec: None,
                target: None,
                file_keyword: true,
            }),
        )
    }

    fn profile(mode: Option<ProfileMode>, rules: Vec<Rule>) -> Profile {
        Profile {
            kind: ProfileKind::Profile,
            name: "test".into(),
            namespace: None,
            attachment: None,
            flags: Flags {
                mode,
                ..Flags::default()
            },
            xattrs: Vec::new(),
            rules,
            children: Vec::new(),
            span: span(1),
        }
    }

    fn freq(path: &str, access: &str, owner: bool) -> Request {
        Request::File(FileRequest {
            path: path.into(),
            access: FileAccess::parse(access).unwrap(),
            owner,
            link_target: None,
        })
    }

    fn lines(d: &Decision) -> Vec<u32> {
        d.rules.iter().map(|r| r.span.line).collect()
    }

    /// The k8s tutorial profile `k8s-apparmor-example-deny-write`:
    /// `file, deny /** w,` (abstractions/base left out here; the
    /// integration test covers it with the real includes).
    fn deny_write() -> Profile {
        profile(None, vec![bare_file(2, ""), file(3, "deny", "/**", "w")])
    }

    #[test]
    fn deny_write_example() {
        let p = deny_write();
        let ev = Evaluator::new(&p).unwrap();
        let d = ev.evaluate(&freq("/tmp/test", "w", true));
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.reason, Reason::ExplicitDeny);
        assert_eq!(lines(&d), vec![3]);
        // an explicit deny without `audit` is not logged
        assert_eq!(d.log, Log::None);

        let d = ev.evaluate(&freq("/tmp/test", "r", true));
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(d.reason, Reason::Allowed);
        assert_eq!(lines(&d), vec![2]);
        assert_eq!(d.log, Log::None);

        // `w` implies `a`: a deny of `w` denies append too
        let d = ev.evaluate(&freq("/tmp/test", "a", false));
        assert_eq!(d.verdict, Verdict::Deny);

        // mixed request: read allowed, write denied → denied by line 3
        let d = ev.evaluate(&freq("/etc/passwd", "rw", false));
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.perms[0].outcome, PermOutcome::Allowed);
        assert_eq!(d.perms[1].outcome, PermOutcome::ExplicitDeny);
        assert_eq!(lines(&d), vec![3]);

        // `/**` does not match `/` itself, so `file,` (`/{**,}`) allows
        // writing the root directory entry.
        let d = ev.evaluate(&freq("/", "w", false));
        assert_eq!(d.verdict, Verdict::Allow);
    }

    #[test]
    fn implicit_deny_is_logged_in_enforce() {
        let p = profile(None, vec![file(2, "", "/etc/*", "r")]);
        let ev = Evaluator::new(&p).unwrap();
        let d = ev.evaluate(&freq("/etc/shadow", "w", true));
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.reason, Reason::NotGranted);
        assert_eq!(d.log, Log::Denied);
        assert!(d.rules.is_empty());
        let d = ev.evaluate(&freq("/etc/ssl/cert", "r", true));
        assert_eq!(d.verdict, Verdict::Deny, "* does not cross /");
        let d = ev.evaluate(&freq("/etc/hosts", "r", true));
        assert_eq!(d.verdict, Verdict::Allow);
    }

    #[test]
    fn permissions_accumulate_across_rules() {
        let p = profile(
            None,
            vec![
                file(2, "", "/data/**", "r"),
                file(3, "", "/data/*.log", "w"),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        let d = ev.evaluate(&freq("/data/a.log", "rw", true));
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(lines(&d), vec![2, 3]);
        let d = ev.evaluate(&freq("/data/sub/a.log", "rw", true));
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.perms[1].outcome, PermOutcome::NotGranted);
        // append granted by w
        assert!(ev.evaluate(&freq("/data/a.log", "a", true)).is_allowed());
        // but w is not granted by a
        let p = profile(None, vec![file(2, "", "/log", "a")]);
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev.evaluate(&freq("/log", "a", true)).is_allowed());
        assert!(!ev.evaluate(&freq("/log", "w", true)).is_allowed());
    }

    #[test]
    fn owner_and_other() {
        let p = profile(
            None,
            vec![
                file(2, "owner", "/home/*/**", "rw"),
                file(3, "other", "/srv/**", "r"),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev.evaluate(&freq("/home/u/f", "w", true)).is_allowed());
        let d = ev.evaluate(&freq("/home/u/f", "w", false));
        assert_eq!(d.reason, Reason::NotGranted);
        assert!(ev.evaluate(&freq("/srv/x", "r", false)).is_allowed());
        assert!(!ev.evaluate(&freq("/srv/x", "r", true)).is_allowed());
        // owner deny only applies to owned files
        let p = profile(
            None,
            vec![bare_file(2, ""), file(3, "owner deny", "/secret", "r")],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert!(!ev.evaluate(&freq("/secret", "r", true)).is_allowed());
        assert!(ev.evaluate(&freq("/secret", "r", false)).is_allowed());
    }

    #[test]
    fn audit_qualifiers() {
        let p = profile(
            None,
            vec![
                file(2, "audit", "/a", "r"),
                file(3, "", "/b", "r"),
                file(4, "audit deny", "/c", "r"),
                file(5, "deny", "/d", "r"),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert_eq!(ev.evaluate(&freq("/a", "r", true)).log, Log::Audit);
        assert_eq!(ev.evaluate(&freq("/b", "r", true)).log, Log::None);
        let d = ev.evaluate(&freq("/c", "r", true));
        assert_eq!((d.verdict, d.log), (Verdict::Deny, Log::Denied));
        let d = ev.evaluate(&freq("/d", "r", true));
        assert_eq!((d.verdict, d.log), (Verdict::Deny, Log::None));
        assert!(!d.audit());
        // profile audit flag logs everything, except quiet denials
        let mut p = profile(
            None,
            vec![
                file(2, "", "/b", "r"),
                file(3, "deny", "/d", "r"),
                file(4, "quiet deny", "/q", "r"),
            ],
        );
        p.flags.audit = true;
        let ev = Evaluator::new(&p).unwrap();
        assert_eq!(ev.evaluate(&freq("/b", "r", true)).log, Log::Audit);
        assert_eq!(ev.evaluate(&freq("/d", "r", true)).log, Log::Denied);
        assert_eq!(ev.evaluate(&freq("/q", "r", true)).log, Log::None);
    }

    #[test]
    fn profile_modes() {
        let rules = || vec![file(2, "", "/ok", "r"), file(3, "deny", "/no", "r")];
        let check = |mode, path: &str| {
            let p = profile(mode, rules());
            let ev = Evaluator::new(&p).unwrap();
            let d = ev.evaluate(&freq(path, "r", true));
            (d.verdict, d.reason, d.log, d.kill)
        };
        use Log as L;
        use Reason as R;
        use Verdict::*;
        // enforce (default)
        assert_eq!(check(None, "/ok"), (Allow, R::Allowed, L::None, false));
        assert_eq!(
            check(None, "/other"),
            (Deny, R::NotGranted, L::Denied, false)
        );
        assert_eq!(check(None, "/no"), (Deny, R::ExplicitDeny, L::None, false));
        // complain: only implicit denials become ALLOWED
        let c = Some(ProfileMode::Complain);
        assert_eq!(check(c, "/other"), (Allow, R::Complain, L::Allowed, false));
        assert_eq!(check(c, "/no"), (Deny, R::ExplicitDeny, L::None, false));
        assert_eq!(check(c, "/ok"), (Allow, R::Allowed, L::None, false));
        // kill
        let k = Some(ProfileMode::Kill);
        assert_eq!(check(k, "/other"), (Deny, R::NotGranted, L::Denied, true));
        assert_eq!(check(k, "/no"), (Deny, R::ExplicitDeny, L::Denied, true));
        // default_allow: deny rules still apply
        let da = Some(ProfileMode::DefaultAllow);
        assert_eq!(
            check(da, "/other"),
            (Allow, R::DefaultAllow, L::None, false)
        );
        assert_eq!(check(da, "/no"), (Deny, R::ExplicitDeny, L::None, false));
        // unconfined allows everything
        let u = Some(ProfileMode::Unconfined);
        assert_eq!(check(u, "/no"), (Allow, R::Unconfined, L::None, false));
        assert_eq!(check(u, "/other"), (Allow, R::Unconfined, L::None, false));
    }

    #[test]
    fn priority_overrides_deny() {
        let p = profile(
            None,
            vec![
                file(2, "deny", "/etc/**", "w"),
                file(3, "priority=1", "/etc/app/**", "w"),
                file(4, "priority=-1", "/etc/x", "r"),
                file(5, "deny priority=-2", "/etc/x", "r"),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        let d = ev.evaluate(&freq("/etc/app/conf", "w", true));
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(lines(&d), vec![3]);
        let d = ev.evaluate(&freq("/etc/other", "w", true));
        assert_eq!((d.verdict, lines(&d)), (Verdict::Deny, vec![2]));
        // a higher-priority allow beats a lower-priority deny
        let d = ev.evaluate(&freq("/etc/x", "r", true));
        assert_eq!((d.verdict, lines(&d)), (Verdict::Allow, vec![4]));
    }

    #[test]
    fn exec_modes() {
        let mut rules = vec![
            file(2, "", "/usr/bin/*", "ix"),
            file(3, "", "/usr/bin/sudo", "Px"),
            file(4, "", "/opt/**", "pix"),
            file(5, "deny", "/usr/bin/su", "x"),
            file(6, "", "/bin/{a,b}", "cx"),
            file(7, "", "/bin/*", "ux"),
        ];
        if let RuleKind::File(f) = &mut rules[1].kind {
            f.target = Some(pat("sudo_profile"));
        }
        let p = profile(None, rules);
        let ev = Evaluator::new(&p).unwrap();
        let d = ev.evaluate(&freq("/usr/bin/ls", "x", true));
        assert!(d.is_allowed());
        let e = d.exec.clone().unwrap();
        assert_eq!(e.mode.kind, ExecKind::Inherit);
        assert!(!e.conflict);
        // ix implies m
        assert!(ev.evaluate(&freq("/usr/bin/ls", "m", true)).is_allowed());
        // exact match dominates the glob for the exec type
        let d = ev.evaluate(&freq("/usr/bin/sudo", "x", true));
        let e = d.exec.clone().unwrap();
        assert_eq!(e.mode.kind, ExecKind::Profile);
        assert!(e.mode.scrub);
        assert_eq!(e.target.unwrap().raw, "sudo_profile");
        assert_eq!(lines(&d), vec![3]);
        // Px does not imply m
        assert!(!ev.evaluate(&freq("/usr/bin/sudo", "m", true)).is_allowed());
        // deny x
        let d = ev.evaluate(&freq("/usr/bin/su", "x", true));
        assert_eq!((d.verdict, lines(&d)), (Verdict::Deny, vec![5]));
        assert!(d.exec.is_none());
        let d = ev.evaluate(&freq("/opt/tool/bin", "x", true));
        assert_eq!(
            d.exec.unwrap().mode.fallback,
            Some(ExecKind::Inherit),
            "pix"
        );
        // two globs with different modes: reported as a conflict
        let d = ev.evaluate(&freq("/bin/a", "x", true));
        assert!(d.exec.unwrap().conflict);
        // a non-exec request carries no exec decision
        assert!(ev.evaluate(&freq("/usr/bin/ls", "r", true)).exec.is_none());
    }

    #[test]
    fn links() {
        let p = profile(
            None,
            vec![rule(
                2,
                "",
                RuleKind::Link(LinkRule {
                    subset: false,
                    link: pat("/tmp/link*"),
                    target: pat("/tmp/target"),
                }),
            )],
        );
        let ev = Evaluator::new(&p).unwrap();
        let mut req = FileRequest {
            path: "/tmp/link1".into(),
            access: FileAccess::LINK,
            owner: true,
            link_target: Some("/tmp/target".into()),
        };
        assert!(ev.evaluate(&Request::File(req.clone())).is_allowed());
        req.link_target = Some("/etc/shadow".into());
        assert!(!ev.evaluate(&Request::File(req.clone())).is_allowed());
        req.link_target = None;
        assert!(!ev.evaluate(&Request::File(req)).is_allowed());
    }

    #[test]
    fn capabilities() {
        let p = profile(
            None,
            vec![
                rule(
                    2,
                    "",
                    RuleKind::Capability(CapabilityRule {
                        caps: vec!["net_admin".into(), "chown".into()],
                    }),
                ),
                rule(
                    3,
                    "deny",
                    RuleKind::Capability(CapabilityRule {
                        caps: vec!["sys_admin".into()],
                    }),
                ),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        let cap = |c: &str| ev.evaluate(&Request::Capability(c.into()));
        assert!(cap("net_admin").is_allowed());
        assert!(cap("CAP_CHOWN").is_allowed());
        let d = cap("sys_admin");
        assert_eq!((d.reason, lines(&d)), (Reason::ExplicitDeny, vec![3]));
        assert_eq!(cap("sys_module").reason, Reason::NotGranted);
        // `capability,` allows all
        let p = profile(
            None,
            vec![rule(
                2,
                "",
                RuleKind::Capability(CapabilityRule { caps: vec![] }),
            )],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev
            .evaluate(&Request::Capability("sys_ptrace".into()))
            .is_allowed());
        // a file rule never grants a capability
        let p = deny_write();
        let ev = Evaluator::new(&p).unwrap();
        assert!(!ev
            .evaluate(&Request::Capability("chown".into()))
            .is_allowed());
    }

    fn net(domain: Option<&str>, ty: Option<&str>, perms: &[&str]) -> RuleKind {
        RuleKind::Network(NetworkRule {
            perms: perms.iter().map(|s| s.to_string()).collect(),
            domain: domain.map(Into::into),
            sock_type: ty.map(Into::into),
            ..NetworkRule::default()
        })
    }

    fn nreq(domain: &str, ty: Option<&str>, perms: &[&str]) -> Request {
        Request::Network(NetworkRequest {
            domain: domain.into(),
            sock_type: ty.map(Into::into),
            perms: perms.iter().map(|s| s.to_string()).collect(),
            ..NetworkRequest::default()
        })
    }

    #[test]
    fn network() {
        // docker-default: `network,` + `deny network alg,`
        let p = profile(
            None,
            vec![
                rule(2, "", net(None, None, &[])),
                rule(3, "deny", net(Some("alg"), None, &[])),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev.evaluate(&nreq("inet", Some("stream"), &[])).is_allowed());
        let d = ev.evaluate(&nreq("alg", Some("seqpacket"), &[]));
        assert_eq!((d.verdict, lines(&d)), (Verdict::Deny, vec![3]));

        let p = profile(
            None,
            vec![
                rule(2, "", net(Some("inet"), Some("stream"), &[])),
                rule(3, "", net(Some("inet6"), None, &["send", "r"])),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev.evaluate(&nreq("inet", Some("stream"), &[])).is_allowed());
        assert!(!ev.evaluate(&nreq("inet", Some("dgram"), &[])).is_allowed());
        assert!(!ev.evaluate(&nreq("inet", None, &[])).is_allowed());
        assert!(ev
            .evaluate(&nreq("inet6", Some("dgram"), &["send"]))
            .is_allowed());
        assert!(ev
            .evaluate(&nreq("inet6", Some("dgram"), &["receive"]))
            .is_allowed());
        assert!(ev
            .evaluate(&nreq("inet6", Some("dgram"), &["w"]))
            .is_allowed());
        let d = ev.evaluate(&nreq("inet6", Some("dgram"), &["send", "create"]));
        assert_eq!(d.reason, Reason::NotGranted);
        assert_eq!(d.perms[1].perm, "create");
        // fine-grained: a port condition restricts the rule
        let mut nr = NetworkRule {
            domain: Some("inet".into()),
            ..NetworkRule::default()
        };
        nr.conds.push(Cond {
            name: "port".into(),
            values: vec!["80".into()],
            is_in: false,
            is_list: false,
        });
        let p = profile(None, vec![rule(2, "", RuleKind::Network(nr))]);
        let ev = Evaluator::new(&p).unwrap();
        let mut r = NetworkRequest {
            domain: "inet".into(),
            ..NetworkRequest::default()
        };
        assert!(!ev.evaluate(&Request::Network(r.clone())).is_allowed());
        r.conds.insert("port".into(), "80".into());
        assert!(ev.evaluate(&Request::Network(r.clone())).is_allowed());
        r.conds.insert("port".into(), "81".into());
        assert!(!ev.evaluate(&Request::Network(r)).is_allowed());
    }

    #[test]
    fn signals_and_ptrace() {
        let p = profile(
            None,
            vec![
                rule(
                    2,
                    "",
                    RuleKind::Signal(SignalRule {
                        perms: vec!["receive".into()],
                        signals: vec![],
                        peer: Some(pat("{unconfined,runc,crun}")),
                    }),
                ),
                rule(
                    3,
                    "",
                    RuleKind::Signal(SignalRule {
                        perms: vec!["send".into(), "receive".into()],
                        signals: vec!["hup".into(), "term".into()],
                        peer: Some(pat("docker-default")),
                    }),
                ),
                rule(
                    4,
                    "",
                    RuleKind::Ptrace(PtraceRule {
                        perms: vec!["r".into()],
                        peer: Some(pat("docker-*")),
                    }),
                ),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        let sig = |perm: &str, s: &str, peer: &str| {
            ev.evaluate(&Request::Signal(SignalRequest {
                perm: perm.into(),
                signal: s.into(),
                peer: peer.into(),
            }))
        };
        assert!(sig("receive", "kill", "runc").is_allowed());
        assert!(sig("r", "SIGKILL", "unconfined").is_allowed());
        assert!(!sig("send", "kill", "runc").is_allowed());
        assert!(sig("send", "SIGHUP", "docker-default").is_allowed());
        assert!(!sig("send", "kill", "docker-default").is_allowed());
        let d = sig("w", "term", "docker-default");
        assert_eq!(lines(&d), vec![3]);
        let pt = |perm: &str, peer: &str| {
            ev.evaluate(&Request::Ptrace(PtraceRequest {
                perm: perm.into(),
                peer: peer.into(),
            }))
        };
        assert!(pt("read", "docker-x").is_allowed());
        assert!(!pt("trace", "docker-x").is_allowed());
        assert!(!pt("read", "other").is_allowed());
    }

    #[test]
    fn unix_mount_userns_change_profile() {
        let p = profile(
            None,
            vec![
                rule(
                    2,
                    "",
                    RuleKind::Unix(UnixRule {
                        perms: vec!["connect".into(), "send".into()],
                        conds: vec![Cond {
                            name: "type".into(),
                            values: vec!["stream".into()],
                            is_in: false,
                            is_list: false,
                        }],
                        peer: vec![Cond {
                            name: "addr".into(),
                            values: vec!["@/tmp/.X11-unix/*".into()],
                            is_in: false,
                            is_list: false,
                        }],
                    }),
                ),
                rule(
                    3,
                    "",
                    RuleKind::Mount(MountRule {
                        kind: MountKind::Mount,
                        conds: vec![
                            Cond {
                                name: "fstype".into(),
                                values: vec!["tmpfs".into()],
                                is_in: false,
                                is_list: false,
                            },
                            Cond {
                                name: "options".into(),
                                values: vec!["ro".into(), "nosuid".into()],
                                is_in: true,
                                is_list: true,
                            },
                        ],
                        source: None,
                        target: Some(pat("/mnt/**")),
                        oldroot: None,
                    }),
                ),
                rule(
                    4,
                    "deny",
                    RuleKind::Mount(MountRule {
                        kind: MountKind::Umount,
                        conds: vec![],
                        source: Some(pat("/")),
                        target: None,
                        oldroot: None,
                    }),
                ),
                rule(5, "", RuleKind::Userns(UsernsRule { perms: vec![] })),
                rule(
                    6,
                    "",
                    RuleKind::ChangeProfile(ChangeProfileRule {
                        safe: None,
                        exec: None,
                        target: Some(pat("restricted-*")),
                    }),
                ),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        let unix = |perm: &str, ty: &str, peer: &str| {
            let mut r = CondRequest {
                perms: vec![perm.into()],
                ..CondRequest::default()
            };
            r.conds.insert("type".into(), ty.into());
            r.peer.insert("addr".into(), peer.into());
            ev.evaluate(&Request::Unix(r))
        };
        assert!(unix("connect", "stream", "@/tmp/.X11-unix/X0").is_allowed());
        assert!(unix("w", "stream", "@/tmp/.X11-unix/X0").is_allowed());
        assert!(!unix("connect", "dgram", "@/tmp/.X11-unix/X0").is_allowed());
        assert!(!unix("bind", "stream", "@/tmp/.X11-unix/X0").is_allowed());
        assert!(!unix("connect", "stream", "@/other").is_allowed());

        let mount = |fstype: &str, opts: &[&str], mp: &str| {
            ev.evaluate(&Request::Mount(MountRequest {
                kind: MountKind::Mount,
                source: Some("none".into()),
                mountpoint: Some(mp.into()),
                fstype: Some(fstype.into()),
                options: opts.iter().map(|s| s.to_string()).collect(),
            }))
        };
        assert!(mount("tmpfs", &["ro"], "/mnt/x").is_allowed());
        assert!(mount("tmpfs", &[], "/mnt/x").is_allowed());
        assert!(!mount("tmpfs", &["ro", "exec"], "/mnt/x").is_allowed());
        assert!(!mount("ext4", &["ro"], "/mnt/x").is_allowed());
        assert!(!mount("tmpfs", &["ro"], "/etc").is_allowed());
        let d = ev.evaluate(&Request::Mount(MountRequest {
            kind: MountKind::Umount,
            source: None,
            mountpoint: Some("/".into()),
            fstype: None,
            options: vec![],
        }));
        assert_eq!((d.verdict, lines(&d)), (Verdict::Deny, vec![4]));
        assert!(ev.evaluate(&Request::Userns).is_allowed());
        let cp = |t: &str| {
            ev.evaluate(&Request::ChangeProfile {
                target: t.into(),
                exec: None,
            })
        };
        assert!(cp("restricted-a").is_allowed());
        assert!(!cp("unconfined").is_allowed());
    }

    #[test]
    fn all_rule_allows_every_class_but_deny_still_wins() {
        let p = profile(
            None,
            vec![
                rule(2, "", RuleKind::All),
                file(3, "deny", "/etc/shadow", "r"),
            ],
        );
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev.evaluate(&freq("/etc/passwd", "rwx", true)).is_allowed());
        assert!(!ev.evaluate(&freq("/etc/shadow", "r", true)).is_allowed());
        assert!(ev
            .evaluate(&Request::Capability("sys_admin".into()))
            .is_allowed());
        assert!(ev.evaluate(&nreq("inet", Some("raw"), &[])).is_allowed());
        assert!(ev.evaluate(&Request::Userns).is_allowed());
    }

    #[test]
    fn bad_patterns_and_unexpanded_variables_are_errors() {
        let p = profile(None, vec![file(7, "", "/a{b", "r")]);
        let e = Evaluator::new(&p).unwrap_err();
        assert!(matches!(e, EvalError::BadPattern { ref span, .. } if span.line == 7));
        assert!(
            e.to_string().starts_with("test.sd:7:3: invalid pattern"),
            "{e}"
        );
        let mut r = file(8, "", "/x", "r");
        if let RuleKind::File(f) = &mut r.kind {
            f.path = Some(Pattern::new("@{HOME}/x"));
        }
        let p = profile(None, vec![r]);
        assert!(matches!(
            Evaluator::new(&p),
            Err(EvalError::UnexpandedVariable { .. })
        ));
        // every expansion of a variable is matched
        let mut r = file(9, "", "/x", "r");
        if let RuleKind::File(f) = &mut r.kind {
            f.path = Some(Pattern {
                raw: "@{HOME}/x".into(),
                expanded: vec!["/home/*/x".into(), "/root/x".into()],
            });
        }
        let p = profile(None, vec![r]);
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev.evaluate(&freq("/root/x", "r", true)).is_allowed());
        assert!(ev.evaluate(&freq("/home/u/x", "r", true)).is_allowed());
        assert!(!ev.evaluate(&freq("/x", "r", true)).is_allowed());
    }

    #[test]
    fn doubled_slashes_from_variables_are_collapsed() {
        let mut r = file(2, "", "/x", "r");
        if let RuleKind::File(f) = &mut r.kind {
            f.path = Some(Pattern {
                raw: "@{PROC}/sys/kernel/random/uuid".into(),
                expanded: vec!["/proc//sys/kernel/random/uuid".into()],
            });
        }
        let p = profile(None, vec![r]);
        let ev = Evaluator::new(&p).unwrap();
        assert!(ev
            .evaluate(&freq("/proc/sys/kernel/random/uuid", "r", true))
            .is_allowed());
    }

    #[test]
    fn access_parsing() {
        assert_eq!(
            FileAccess::parse("rw").unwrap(),
            FileAccess::READ | FileAccess::WRITE
        );
        assert_eq!(FileAccess::parse("xmr").unwrap().to_string(), "rmx");
        assert!(matches!(
            FileAccess::parse("rz"),
            Err(EvalError::BadAccess { letter: 'z', .. })
        ));
        assert_eq!(FileAccess::parse(""), Err(EvalError::EmptyAccess));
    }

    #[test]
    fn find_profile_by_name() {
        let mut outer = profile(None, vec![]);
        outer.name = "outer".into();
        let mut hat = profile(None, vec![]);
        hat.name = "hat".into();
        hat.kind = ProfileKind::Hat;
        outer.children.push(hat);
        let mut other = profile(None, vec![]);
        other.name = "other".into();
        let policy = Policy {
            profiles: vec![outer, other],
            ..Policy::default()
        };
        assert_eq!(
            find_profile(&policy, Some("outer//hat")).unwrap().name,
            "hat"
        );
        assert_eq!(find_profile(&policy, Some("other")).unwrap().name, "other");
        assert!(matches!(
            find_profile(&policy, None),
            Err(EvalError::AmbiguousProfile { count: 2, .. })
        ));
        let e = find_profile(&policy, Some("nope")).unwrap_err();
        assert!(e.to_string().contains("outer//hat"), "{e}");
        assert_eq!(
            find_profile(&Policy::default(), None),
            Err(EvalError::NoProfile)
        );
    }
}
