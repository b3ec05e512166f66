//! AppArmor profile → confine [`Plan`] (Landlock ruleset, capabilities,
//! socket families).
//!
//! The translation is SOUND: the plan never lets a process do something the
//! profile denies, for what Landlock and the socket filter mediate. A rule
//! that cannot be enforced exactly is a *problem*: the profile is refused,
//! or with `approximate` it is tightened (deny-biased) and the problem is
//! reported as a tightening.
//!
//! Mapping of file permissions to `LANDLOCK_ACCESS_FS_*`:
//! - `r` → `READ_FILE | READ_DIR`;
//! - `w` → `WRITE_FILE | TRUNCATE | REMOVE_* | MAKE_* | REFER | IOCTL_DEV`
//!   (AppArmor's `w` covers create, delete, rename and truncate);
//! - `ix` → `EXECUTE`; other exec modes (`px`, `cx`, `ux`...) switch
//!   profiles, which Landlock cannot do: not granted (a problem);
//! - `a` alone: Landlock has no append-only right: not granted (a problem).
//!
//! Patterns: Landlock rules are path-beneath only, so an allow pattern is
//! exact when it is a literal file path or `<literal dir>/**`; anything else
//! (`*`, `?`, `[..]`, a glob inside the directory part, a bare directory
//! `/dir/`) is a problem and is not granted. A deny rule is subtracted from
//! every allow rule whose subtree it may touch; that is exact only when the
//! deny covers the whole allowed subtree (or matches the allowed file).
//!
//! Not mediated by Landlock at all, and deliberately not reported per rule
//! (documented gaps): `m` (mapping a readable file executable gains nothing
//! over copying it into anonymous memory), `k` (locks), same-directory hard
//! links under `w` without `l`, connecting to pathname UNIX sockets, being
//! traced by a process outside the container. Signals and abstract UNIX
//! sockets are scoped to the container's Landlock domain.

use std::collections::{BTreeMap, BTreeSet};

use armorlet_apparmor::aare::Aare;
use armorlet_apparmor::ast::{
    ExecKind, FilePerms, FileRule, NetworkRule, Profile, ProfileMode, Rule, RuleKind,
};

use crate::plan::{fs, scope, FsRule, LandlockRules, Plan, SocketAllow};
use crate::LandlockError;

/// A translated profile.
#[derive(Debug, Clone)]
pub struct Translation {
    /// What the helper applies.
    pub plan: Plan,
    /// The tightenings made (empty: exact).
    pub approximations: Vec<String>,
}

impl Translation {
    /// Whether the plan enforces the profile exactly.
    pub fn is_exact(&self) -> bool {
        self.approximations.is_empty()
    }
}

/// Translates `profile`. With `approximate == false`, any problem refuses it.
pub fn translate(profile: &Profile, approximate: bool) -> Result<Translation, LandlockError> {
    let mut t = Translator::default();
    let plan = t.run(profile);
    let problems: Vec<String> = t.problems.into_iter().collect();
    if !t.fatal.is_empty() {
        return Err(LandlockError::Refused {
            profile: profile.name.clone(),
            problems: t.fatal,
        });
    }
    if !problems.is_empty() && !approximate {
        return Err(LandlockError::Refused {
            profile: profile.name.clone(),
            problems,
        });
    }
    Ok(Translation {
        plan,
        approximations: problems,
    })
}

/// Whether AppArmor would log this profile's denials: implicit denials are
/// logged, explicit `deny` rules are quiet unless `audit deny`. Landlock logs
/// per domain, not per rule, so logging is on when the profile has an `audit`
/// rule or no quiet `deny` rule.
fn logs_denials(profile: &Profile) -> bool {
    let audit = profile.rules.iter().any(|r| r.qualifiers.audit);
    let quiet_deny = profile
        .rules
        .iter()
        .any(|r| r.qualifiers.deny && !r.qualifiers.audit);
    audit || !quiet_deny
}

/// Where an allow or deny pattern applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `<dir>/**`: everything beneath `dir` (kept with its trailing `/`).
    Subtree(String),
    /// A literal file path.
    File(String),
    /// Anything else; the literal directory prefix (ends in `/`).
    Glob(String),
}

/// An allow rule that is not expressible; harmless (not a tightening) when
/// an expressible subtree rule already grants `bits` over `prefix`.
struct Pending {
    message: String,
    prefix: String,
    bits: u64,
}

#[derive(Default)]
struct Translator {
    problems: BTreeSet<String>,
    pending: Vec<Pending>,
    /// Problems no tightening can fix (the profile is refused).
    fatal: Vec<String>,
    profile_name: String,
    /// (shape, landlock bits) of allow rules.
    allows: Vec<(Shape, u64)>,
    /// (pattern text, shape, landlock bits, rule location).
    denies: Vec<(String, Shape, u64, String)>,
    caps_all: bool,
    caps: BTreeSet<String>,
    caps_denied: BTreeSet<String>,
    net: NetState,
}

impl Translator {
    fn problem(&mut self, rule: &Rule, what: &str, why: &str) {
        let loc = location(rule);
        self.problems.insert(format!("{loc}: {what}: {why}"));
    }

    /// Records an inexpressible allow over `prefix` needing `bits`.
    fn pend(&mut self, rule: &Rule, what: &str, why: &str, prefix: String, bits: u64) {
        let message = format!("{}: {what}: {why}", location(rule));
        self.pending.push(Pending {
            message,
            prefix,
            bits,
        });
    }

    /// Pending allows not covered by an expressible subtree rule become problems.
    fn settle_pending(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            let covered = self.allows.iter().any(|(shape, bits)| {
                matches!(shape, Shape::Subtree(r) if p.prefix.starts_with(r.as_str()))
                    && bits & p.bits == p.bits
            });
            if !covered {
                self.problems.insert(p.message);
            }
        }
    }

    fn run(&mut self, profile: &Profile) -> Plan {
        self.profile_name = profile.name.clone();
        match profile.mode() {
            ProfileMode::Complain | ProfileMode::Unconfined => {
                return Plan {
                    profile: profile.name.clone(),
                    ..Plan::default()
                }
            }
            ProfileMode::DefaultAllow => {
                self.problems.insert(format!(
                    "{}:{}: flags=(default_allow): enforced as a default-deny profile",
                    profile.span.file, profile.span.line
                ));
            }
            _ => {}
        }
        let priorities: BTreeSet<i32> = profile
            .rules
            .iter()
            .map(|r| r.qualifiers.priority.unwrap_or(0))
            .collect();
        if priorities.len() > 1 {
            self.fatal.push(format!(
                "{}:{}: rules with different priorities: a higher-priority rule may override a deny or an allow, which Landlock's union of grants cannot express",
                profile.span.file, profile.span.line
            ));
        }
        for rule in &profile.rules {
            self.rule(rule);
        }
        self.settle_pending();
        let fs_rules = self.fs_rules();
        let caps = self.capabilities();
        Plan {
            profile: profile.name.clone(),
            landlock: Some(LandlockRules {
                handled_fs: fs::ALL,
                fs: fs_rules,
                scoped: scope::ABSTRACT_UNIX_SOCKET | scope::SIGNAL,
            }),
            capabilities: Some(caps),
            sockets: self.net.sockets(),
            seccomp_hex: None,
            seccomp_flags: 0,
            log_denials: logs_denials(profile),
            no_new_privs: true,
        }
    }

    fn rule(&mut self, rule: &Rule) {
        let deny = rule.qualifiers.deny;
        match &rule.kind {
            RuleKind::File(f) => self.file(rule, f),
            RuleKind::Capability(c) => {
                let set = if deny {
                    &mut self.caps_denied
                } else {
                    &mut self.caps
                };
                if c.caps.is_empty() {
                    if deny {
                        self.caps_denied.insert("*".into());
                    } else {
                        self.caps_all = true;
                    }
                } else {
                    set.extend(c.caps.iter().map(|n| crate::caps::canonical(n)));
                }
            }
            RuleKind::Network(n) => {
                if let Err(why) = self.net.rule(n, deny) {
                    self.problem(rule, "network rule", &why);
                }
            }
            RuleKind::All => {
                if deny {
                    self.problem(rule, "deny all", "not expressible; nothing is granted");
                } else {
                    self.allows.push((Shape::Subtree("/".into()), fs::ALL));
                    self.caps_all = true;
                    self.net.allow_all();
                }
            }
            RuleKind::Rlimit(_) if !deny => self.problem(
                rule,
                "rlimit rule",
                "resource limits are not applied by the Landlock backend",
            ),
            RuleKind::Unix(u) if !deny => {
                if u.perms.is_empty() || u.perms.iter().any(|p| p == "create") {
                    self.net.allow_unix();
                }
                if !self.unix_exact(u) {
                    self.problem(rule, "unix rule", SCOPED);
                }
            }
            RuleKind::Signal(sg) if !deny => {
                let receive_only =
                    !sg.perms.is_empty() && sg.perms.iter().all(|p| p == "receive" || p == "r");
                if !receive_only && !self.own_peer(&sg.peer) {
                    self.problem(rule, "signal rule", SCOPED);
                }
            }
            RuleKind::Ptrace(pt) if !deny => {
                let passive = !pt.perms.is_empty()
                    && pt.perms.iter().all(|p| p == "readby" || p == "tracedby");
                if !passive && !self.own_peer(&pt.peer) {
                    self.problem(rule, "ptrace rule", SCOPED);
                }
            }
            other => {
                if !deny {
                    let kind = kind_name(other);
                    self.problem(rule, kind, "Landlock cannot grant this; denied");
                }
            }
        }
    }

    fn file(&mut self, rule: &Rule, f: &FileRule) {
        let deny = rule.qualifiers.deny;
        let what = match &f.path {
            Some(p) => format!("file rule {}", p.raw),
            None => "file rule (all files)".into(),
        };
        let mut bits = 0;
        if f.perms.contains(FilePerms::READ) {
            bits |= fs::READ_FILE | fs::READ_DIR;
        }
        let mut append_only = false;
        if f.perms.contains(FilePerms::WRITE) || (deny && f.perms.contains(FilePerms::APPEND)) {
            bits |= WRITE;
        } else if f.perms.contains(FilePerms::APPEND) {
            append_only = true;
        }
        if let Some(x) = f.exec {
            if deny || x.kind == ExecKind::Inherit {
                bits |= fs::EXECUTE;
            } else {
                self.problem(
                    rule,
                    &what,
                    "exec transitions other than ix cannot be enforced; execution not granted",
                );
            }
        }
        let conditional = rule.qualifiers.owner || rule.qualifiers.other;
        if conditional && deny {
            self.problem(
                rule,
                &what,
                "owner/other conditional cannot be enforced by Landlock; denied for every owner",
            );
        }
        for alt in alternatives(f) {
            let shape = classify(&alt);
            if deny {
                if bits != 0 {
                    self.denies.push((alt, shape, bits, location(rule)));
                }
                continue;
            }
            let prefix = match &shape {
                Shape::Subtree(p) | Shape::File(p) | Shape::Glob(p) => p.clone(),
            };
            if append_only {
                let why = "append-only access has no Landlock right; not granted";
                self.pend(rule, &what, why, prefix.clone(), fs::WRITE_FILE);
            }
            if bits == 0 {
                continue;
            }
            let why = match shape {
                _ if conditional => {
                    "owner/other conditional cannot be enforced by Landlock; not granted"
                        .to_string()
                }
                Shape::Glob(_) => format!("glob {alt} is not a path-beneath rule; not granted"),
                Shape::File(ref p) if p.ends_with('/') => {
                    format!(
                        "directory {alt} alone cannot be granted without its contents; not granted"
                    )
                }
                s => {
                    self.allows.push((s, bits));
                    continue;
                }
            };
            self.pend(rule, &what, &why, prefix, bits);
        }
    }

    /// Whether a peer names this profile (so it stays inside the Landlock domain).
    fn own_peer(&self, peer: &Option<armorlet_apparmor::ast::Pattern>) -> bool {
        peer.as_ref().is_some_and(|p| {
            p.raw == "@{profile_name}"
                || p.raw.trim_matches('"') == self.profile_name
                || p.expanded
                    .iter()
                    .all(|e| e.trim_matches('"') == self.profile_name)
                    && !p.expanded.is_empty()
        })
    }

    /// Unix rules Landlock leaves as allowed as the profile does: local
    /// socket operations without a peer, or a peer in the same profile.
    fn unix_exact(&self, u: &armorlet_apparmor::ast::UnixRule) -> bool {
        const LOCAL: &[&str] = &[
            "create", "getattr", "getopt", "setopt", "shutdown", "receive",
        ];
        if u.peer.is_empty() {
            return !u.perms.is_empty() && u.perms.iter().all(|p| LOCAL.contains(&p.as_str()));
        }
        u.peer.iter().all(|c| {
            c.name == "label"
                && c.values
                    .iter()
                    .all(|v| v == "@{profile_name}" || v.trim_matches('"') == self.profile_name)
        }) || (!u.perms.is_empty() && u.perms.iter().all(|p| p == "receive"))
    }

    /// Subtracts denies from allows, then merges per path.
    fn fs_rules(&mut self) -> Vec<FsRule> {
        let denies = std::mem::take(&mut self.denies);
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        let mut subtree_paths: BTreeSet<String> = BTreeSet::new();
        for (shape, mut bits) in std::mem::take(&mut self.allows) {
            for (pattern, dshape, dbits, loc) in &denies {
                if bits & dbits == 0 {
                    continue;
                }
                match overlap(&shape, pattern, dshape) {
                    Overlap::None => {}
                    Overlap::Exact => bits &= !dbits,
                    Overlap::Partial => {
                        bits &= !dbits;
                        self.problems.insert(format!(
                            "{loc}: deny rule {pattern}: covers only part of the allowed {}; denied in all of it",
                            shape_text(&shape)
                        ));
                    }
                }
            }
            if bits != 0 {
                let path = match shape {
                    Shape::Subtree(d) => {
                        let p = if d == "/" {
                            d
                        } else {
                            d.trim_end_matches('/').to_string()
                        };
                        subtree_paths.insert(p.clone());
                        p
                    }
                    Shape::File(p) | Shape::Glob(p) => p,
                };
                *out.entry(path).or_default() |= bits;
            }
        }
        let subtrees: Vec<(String, u64)> = out
            .iter()
            .filter(|(p, _)| subtree_paths.contains(*p))
            .map(|(p, b)| (p.clone(), *b))
            .collect();
        out.into_iter()
            .filter(|(path, access)| !redundant(path, *access, &subtrees))
            .map(|(path, access)| FsRule {
                path,
                access,
                except: Vec::new(),
            })
            .collect()
    }

    fn capabilities(&self) -> Vec<String> {
        if self.caps_denied.contains("*") {
            return Vec::new();
        }
        let granted: Vec<String> = if self.caps_all {
            crate::caps::NAMES.iter().map(|s| s.to_string()).collect()
        } else {
            self.caps.iter().cloned().collect()
        };
        granted
            .into_iter()
            .filter(|c| !self.caps_denied.contains(c))
            .collect()
    }
}

const SCOPED: &str =
    "Landlock scopes signals, ptrace and abstract UNIX sockets to the container; not granted outside it";

const WRITE: u64 = fs::WRITE_FILE
    | fs::TRUNCATE
    | fs::REMOVE_DIR
    | fs::REMOVE_FILE
    | fs::MAKE_CHAR
    | fs::MAKE_DIR
    | fs::MAKE_REG
    | fs::MAKE_SOCK
    | fs::MAKE_FIFO
    | fs::MAKE_BLOCK
    | fs::MAKE_SYM
    | fs::REFER
    | fs::IOCTL_DEV;

/// A rule adds nothing when a strict ancestor subtree already grants its bits
/// (Landlock unions the rights of every rule along the path).
fn redundant(path: &str, access: u64, subtrees: &[(String, u64)]) -> bool {
    subtrees.iter().any(|(root, bits)| {
        let beneath = if root == "/" {
            path != "/"
        } else {
            path.strip_prefix(root.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        };
        beneath && bits & access == access
    })
}

enum Overlap {
    None,
    Exact,
    Partial,
}

/// How a deny pattern relates to an allow shape.
fn overlap(allow: &Shape, pattern: &str, deny: &Shape) -> Overlap {
    match allow {
        Shape::File(f) => {
            if Aare::new(pattern).map(|a| a.is_match(f)).unwrap_or(true) {
                Overlap::Exact
            } else {
                Overlap::None
            }
        }
        Shape::Subtree(r) | Shape::Glob(r) => {
            let exact_allow = matches!(allow, Shape::Subtree(_));
            match deny {
                Shape::Subtree(l) if r.starts_with(l.as_str()) && exact_allow => Overlap::Exact,
                Shape::Subtree(l) | Shape::Glob(l) | Shape::File(l)
                    if l.starts_with(r.as_str()) || r.starts_with(l.as_str()) =>
                {
                    Overlap::Partial
                }
                _ => Overlap::None,
            }
        }
    }
}

fn shape_text(s: &Shape) -> String {
    match s {
        Shape::Subtree(d) => format!("subtree {d}**"),
        Shape::File(f) => format!("file {f}"),
        Shape::Glob(g) => format!("paths under {g}"),
    }
}

const GLOB: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

fn classify(alt: &str) -> Shape {
    if let Some(dir) = alt.strip_suffix("**") {
        if dir.ends_with('/') && !dir.contains(GLOB) {
            return Shape::Subtree(dir.to_string());
        }
    }
    if !alt.contains(GLOB) {
        return Shape::File(alt.to_string());
    }
    let cut = alt.find(GLOB).unwrap_or(alt.len());
    let prefix = &alt[..cut];
    let dir = &prefix[..prefix.rfind('/').map(|i| i + 1).unwrap_or(0)];
    Shape::Glob(if dir.is_empty() {
        "/".into()
    } else {
        dir.into()
    })
}

/// The expanded pattern strings of a file rule, with `{a,b}` alternations
/// expanded (bounded; past the bound the pattern stays a glob).
fn alternatives(f: &FileRule) -> Vec<String> {
    let pats: Vec<String> = match &f.path {
        None => vec!["/**".into()],
        Some(p) if p.expanded.is_empty() => vec![p.raw.clone()],
        Some(p) => p.expanded.clone(),
    };
    let mut out = Vec::new();
    for p in pats {
        out.extend(expand_braces(&p, 64));
    }
    out
}

fn expand_braces(s: &str, limit: usize) -> Vec<String> {
    let Some(open) = s.find('{') else {
        return vec![s.to_string()];
    };
    let bytes = s.as_bytes();
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![s.to_string()];
    };
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let (head, tail) = (&s[..open], &s[close + 1..]);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let part = &s[w[0] + 1..w[1]];
        for e in expand_braces(&format!("{head}{part}{tail}"), limit) {
            if out.len() >= limit {
                return vec![s.to_string()];
            }
            out.push(e);
        }
    }
    out
}

fn location(rule: &Rule) -> String {
    format!("{}:{}", rule.span.file, rule.span.line)
}

fn kind_name(k: &RuleKind) -> &'static str {
    match k {
        RuleKind::Link(_) => "link rule",
        RuleKind::Mount(_) => "mount rule",
        RuleKind::Signal(_) => "signal rule",
        RuleKind::Ptrace(_) => "ptrace rule",
        RuleKind::Unix(_) => "unix rule",
        RuleKind::Dbus(_) => "dbus rule",
        RuleKind::ChangeProfile(_) => "change_profile rule",
        RuleKind::Userns(_) => "userns rule",
        RuleKind::IoUring(_) => "io_uring rule",
        RuleKind::Mqueue(_) => "mqueue rule",
        RuleKind::Rlimit(_) => "rlimit rule",
        RuleKind::File(_) => "file rule",
        RuleKind::Capability(_) => "capability rule",
        RuleKind::Network(_) => "network rule",
        RuleKind::All => "all rule",
    }
}

/// Socket families and types the profile allows.
#[derive(Default)]
struct NetState {
    all: bool,
    set: BTreeSet<(u32, Option<u32>)>,
}

const FAMILIES: &[(&str, u32)] = &[
    ("unix", 1),
    ("local", 1),
    ("inet", 2),
    ("ax25", 3),
    ("ipx", 4),
    ("appletalk", 5),
    ("netrom", 6),
    ("bridge", 7),
    ("atmpvc", 8),
    ("x25", 9),
    ("inet6", 10),
    ("rose", 11),
    ("netbeui", 13),
    ("security", 14),
    ("key", 15),
    ("netlink", 16),
    ("packet", 17),
    ("ash", 18),
    ("econet", 19),
    ("atmsvc", 20),
    ("rds", 21),
    ("sna", 22),
    ("irda", 23),
    ("pppox", 24),
    ("wanpipe", 25),
    ("llc", 26),
    ("ib", 27),
    ("mpls", 28),
    ("can", 29),
    ("tipc", 30),
    ("bluetooth", 31),
    ("iucv", 32),
    ("rxrpc", 33),
    ("isdn", 34),
    ("phonet", 35),
    ("ieee802154", 36),
    ("caif", 37),
    ("alg", 38),
    ("nfc", 39),
    ("vsock", 40),
    ("kcm", 41),
    ("qipcrtr", 42),
    ("smc", 43),
    ("xdp", 44),
    ("mctp", 45),
];

const TYPES: &[(&str, u32)] = &[
    ("stream", 1),
    ("dgram", 2),
    ("raw", 3),
    ("rdm", 4),
    ("seqpacket", 5),
    ("dccp", 6),
    ("packet", 10),
];

impl NetState {
    fn allow_all(&mut self) {
        self.all = true;
    }

    /// A `unix` rule granting `create`: AF_UNIX sockets may be created.
    fn allow_unix(&mut self) {
        if !self.all {
            self.set.insert((1, None));
        }
    }

    fn sockets(&self) -> Option<Vec<SocketAllow>> {
        if self.all {
            return None;
        }
        Some(
            self.set
                .iter()
                .map(|&(family, sock_type)| SocketAllow { family, sock_type })
                .collect(),
        )
    }

    fn expand_all(&mut self) {
        if self.all {
            self.all = false;
            let mut fams: Vec<u32> = FAMILIES.iter().map(|f| f.1).collect();
            fams.dedup();
            self.set = fams.into_iter().map(|f| (f, None)).collect();
        }
    }

    /// Applies one network rule; `Err` names an inexactness (the rule is
    /// then applied deny-biased: an allow is dropped, a deny widened).
    fn rule(&mut self, n: &NetworkRule, deny: bool) -> Result<(), String> {
        let mut inexact = None;
        if !n.perms.is_empty() || !n.conds.is_empty() || !n.peer.is_empty() {
            if !deny {
                return Err(
                    "permissions or address conditions cannot be enforced per socket; not granted"
                        .into(),
                );
            }
            inexact = Some(
                "permission/address-specific deny widened to the whole socket type".to_string(),
            );
        }
        let families: Vec<u32> = match &n.domain {
            None => FAMILIES
                .iter()
                .map(|f| f.1)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Some(d) => match FAMILIES.iter().find(|f| f.0 == d) {
                Some(f) => vec![f.1],
                None if deny => return Err(format!("unknown family {d}")),
                None => return Err(format!("unknown family {d}; not granted")),
            },
        };
        let sock_type = match (&n.sock_type, &n.protocol) {
            (Some(t), _) => match TYPES.iter().find(|x| x.0 == t) {
                Some(x) => Some(x.1),
                None => return Err(format!("unknown socket type {t}; not granted")),
            },
            (None, Some(p)) if p == "tcp" => Some(1),
            (None, Some(p)) if p == "udp" => Some(2),
            (None, Some(p)) => return Err(format!("protocol {p} cannot be filtered; not granted")),
            (None, None) => None,
        };
        let everything = n.domain.is_none() && sock_type.is_none();
        if deny {
            self.expand_all();
            for f in families {
                self.deny(f, sock_type);
            }
        } else if everything {
            self.all = true;
        } else if !self.all {
            for f in families {
                self.set.insert((f, sock_type));
            }
        }
        match inexact {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    fn deny(&mut self, family: u32, sock_type: Option<u32>) {
        let Some(t) = sock_type else {
            self.set.retain(|e| e.0 != family);
            return;
        };
        if self.set.remove(&(family, None)) {
            for x in TYPES.iter().filter(|x| x.1 != t) {
                self.set.insert((family, Some(x.1)));
            }
        }
        self.set.remove(&(family, Some(t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(classify("/**"), Shape::Subtree("/".into()));
        assert_eq!(classify("/tmp/**"), Shape::Subtree("/tmp/".into()));
        assert_eq!(classify("/etc/hosts"), Shape::File("/etc/hosts".into()));
        assert_eq!(classify("/proc/*/mem"), Shape::Glob("/proc/".into()));
        assert_eq!(classify("/usr/**.so"), Shape::Glob("/usr/".into()));
        assert_eq!(expand_braces("/{usr/,}lib{,32}/x", 64).len(), 4);
    }

    fn tr(body: &str, approximate: bool) -> Result<Translation, LandlockError> {
        let text = format!("profile t {{\n{body}\n}}\n");
        let (policy, diags) =
            armorlet_apparmor::parse_str(&text, "t", &armorlet_apparmor::ParseOptions::default());
        assert!(
            diags
                .iter()
                .all(|d| d.severity != armorlet_apparmor::Severity::Error),
            "{diags:?}"
        );
        translate(&policy.profiles[0], approximate)
    }

    fn rules(t: &Translation) -> Vec<(String, u64)> {
        let ll = t.plan.landlock.as_ref().expect("landlock");
        ll.fs.iter().map(|r| (r.path.clone(), r.access)).collect()
    }

    #[test]
    fn exact_subtrees_files_and_deny_over_whole_subtree() {
        let t = tr(
            "/data/** rw,\n/etc/hostname r,\n/bin/** ix,\n/srv/** rw,\ndeny /srv/** w,",
            false,
        )
        .expect("exact");
        assert!(t.is_exact());
        let r = rules(&t);
        assert!(r.contains(&("/data".into(), fs::READ_FILE | fs::READ_DIR | WRITE)));
        assert!(r.contains(&("/etc/hostname".into(), fs::READ_FILE | fs::READ_DIR)));
        assert!(r.contains(&("/bin".into(), fs::EXECUTE)));
        assert!(r.contains(&("/srv".into(), fs::READ_FILE | fs::READ_DIR)));
    }

    #[test]
    fn deny_inside_allowed_subtree_is_refused_or_tightened() {
        let err = tr("/data/** rw,\ndeny /data/*.key w,", false).expect_err("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("deny rule /data/*.key") && msg.contains("t:3"),
            "{msg}"
        );
        let t = tr("/data/** rw,\ndeny /data/*.key w,", true).expect("approximated");
        assert_eq!(
            rules(&t),
            vec![("/data".into(), fs::READ_FILE | fs::READ_DIR)]
        );
        assert_eq!(t.approximations.len(), 1);
    }

    #[test]
    fn globs_owner_and_transitions_are_problems_unless_subsumed() {
        for body in [
            "/data/*.txt r,",
            "owner /home/** r,",
            "/usr/bin/foo px,",
            "/log a,",
        ] {
            assert!(tr(body, false).is_err(), "{body}");
        }
        // Covered by `file,`: nothing is lost by dropping the glob rule.
        assert!(tr("file,\n/data/*.txt r,", false)
            .expect("exact")
            .is_exact());
    }

    #[test]
    fn capabilities_and_sockets() {
        let t = tr(
            "capability net_bind_service,\ncapability chown,\nnetwork inet tcp,",
            false,
        )
        .expect("exact");
        assert_eq!(
            t.plan.capabilities,
            Some(vec![
                "CAP_CHOWN".to_string(),
                "CAP_NET_BIND_SERVICE".to_string()
            ])
        );
        assert_eq!(
            t.plan.sockets,
            Some(vec![SocketAllow {
                family: 2,
                sock_type: Some(1)
            }])
        );
        let t = tr(
            "capability,\ndeny capability sys_admin,\nnetwork,\ndeny network inet raw,",
            false,
        )
        .expect("exact");
        let caps = t.plan.capabilities.expect("caps");
        assert!(
            !caps.contains(&"CAP_SYS_ADMIN".to_string()) && caps.contains(&"CAP_KILL".to_string())
        );
        let socks = t.plan.sockets.expect("filtered");
        assert!(socks.contains(&SocketAllow {
            family: 2,
            sock_type: Some(1)
        }));
        assert!(!socks.contains(&SocketAllow {
            family: 2,
            sock_type: Some(3)
        }));
        assert!(socks.contains(&SocketAllow {
            family: 10,
            sock_type: None
        }));
    }

    #[test]
    fn mixed_priorities_are_refused_even_when_approximating() {
        let err = tr("priority=1 /tmp/** rw,\ndeny /tmp/x w,", true).expect_err("refused");
        assert!(err.to_string().contains("priorities"), "{err}");
    }

    #[test]
    fn complain_mode_is_not_confined() {
        let (policy, _) = armorlet_apparmor::parse_str(
            "profile c flags=(complain) { /x r, }",
            "c",
            &armorlet_apparmor::ParseOptions::default(),
        );
        let t = translate(&policy.profiles[0], false).expect("ok");
        assert!(t.plan.landlock.is_none() && t.plan.capabilities.is_none());
    }
}
