//! The typed AST of an AppArmor policy.
//!
//! This is the contract between the parser (`parser.rs`, `validate.rs`) and the
//! consumers (the evaluator in `eval.rs`, the CLI). Names here are stable.
//!
//! What the AST holds:
//! - includes are already resolved: the rules of an included file appear inline
//!   in the profile that included them (as upstream's textual include does);
//! - conditionals (`if ... {} else {}`) are already evaluated: only the rules of
//!   the taken branch appear;
//! - every string that may contain variables keeps its raw spelling (`raw`) and
//!   its expansion (`expanded`): as upstream does, a variable with several
//!   values becomes an AARE alternation `{a,b}` in place, so `expanded` holds
//!   one AARE string per pattern (doubled `/` around references removed).

use std::fmt;
use std::sync::Arc;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The file name as given to the parser (or `-` for stdin).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A whole policy: the top-level file plus everything it includes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// `abi <...>,` or `abi "...",` declarations, in order.
    pub abi: Vec<String>,
    /// `@{VAR} = ...` set variables (after `+=` appends), raw values, by name
    /// without `@{}`.
    pub variables: std::collections::BTreeMap<String, Vec<String>>,
    /// `$VAR = true|false` boolean variables, by name without `$`.
    pub booleans: std::collections::BTreeMap<String, bool>,
    /// `alias /a -> /b,` rules.
    pub aliases: Vec<Alias>,
    /// Top-level profiles (hats and child profiles are inside them).
    pub profiles: Vec<Profile>,
}

/// `alias FROM -> TO,`
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub from: String,
    pub to: String,
    pub span: Span,
}

/// Whether a profile was declared as a hat (`^name` / `hat name`) or a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// `profile name ...` or `/attach ...` (top level or child profile).
    Profile,
    /// `^name {}` or `hat name {}` inside a profile.
    Hat,
}

/// A profile, child profile or hat.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub kind: ProfileKind,
    /// The profile name as written (unquoted), e.g. `/usr/bin/foo` or `foo`.
    /// For hats, without the `^`.
    pub name: String,
    /// Optional namespace `:ns:` prefix of the name.
    pub namespace: Option<String>,
    /// The attachment (`profile name /attach {}`); `None` when absent. For
    /// `/attach {}` profiles the name itself is the attachment and this is `None`.
    pub attachment: Option<String>,
    pub flags: Flags,
    /// `xattrs=(name=value ...)`.
    pub xattrs: Vec<(String, String)>,
    /// Rules directly in this profile (includes resolved, conditionals evaluated).
    pub rules: Vec<Rule>,
    /// Hats and child profiles.
    pub children: Vec<Profile>,
    /// Where the profile header starts.
    pub span: Span,
}

impl Profile {
    /// The mode of this profile (enforce when no mode flag is given).
    pub fn mode(&self) -> ProfileMode {
        self.flags.mode.unwrap_or(ProfileMode::Enforce)
    }
}

/// The profile mode from `flags=(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileMode {
    Enforce,
    Complain,
    Kill,
    Unconfined,
    DefaultAllow,
    Prompt,
}

/// `flags=(...)` of a profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// enforce / complain / kill / unconfined / default_allow / prompt.
    pub mode: Option<ProfileMode>,
    /// `audit`
    pub audit: bool,
    /// `mediate_deleted` (`Some(true)`), `delegate_deleted` (`Some(false)`).
    pub mediate_deleted: Option<bool>,
    /// `attach_disconnected` (`Some(true)`), `no_attach_disconnected` (`Some(false)`).
    pub attach_disconnected: Option<bool>,
    /// `attach_disconnected.path=...`
    pub attach_disconnected_path: Option<String>,
    /// `attach_disconnected.ipc=...`
    pub attach_disconnected_ipc: Option<String>,
    /// `chroot_relative` (`Some(true)`) or `namespace_relative` (`Some(false)`).
    pub chroot_relative: Option<bool>,
    /// `chroot_attach` (`Some(true)`) or `chroot_no_attach` (`Some(false)`).
    pub chroot_attach: Option<bool>,
    /// `interruptible`
    pub interruptible: bool,
    /// `kill.signal=NAME`
    pub kill_signal: Option<String>,
    /// `error=ENAME`
    pub error: Option<String>,
    /// `debug`
    pub debug: bool,
    /// Every flag as written, in order.
    pub raw: Vec<String>,
}

/// Rule qualifiers: `[priority=N] [audit|quiet] [allow|deny] [owner|other]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qualifiers {
    /// `priority=N`
    pub priority: Option<i32>,
    /// `audit`
    pub audit: bool,
    /// `quiet`
    pub quiet: bool,
    /// `deny`
    pub deny: bool,
    /// `allow` written explicitly
    pub allow: bool,
    /// `owner` (file rules and others): the rule applies only to files owned
    /// by the task's fsuid.
    pub owner: bool,
    /// `other`: the rule applies to files not owned by the task.
    pub other: bool,
}

/// A rule with its qualifiers and location.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub qualifiers: Qualifiers,
    pub kind: RuleKind,
    pub span: Span,
}

/// One variant per rule class.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    File(FileRule),
    Link(LinkRule),
    Capability(CapabilityRule),
    Network(NetworkRule),
    Mount(MountRule),
    Signal(SignalRule),
    Ptrace(PtraceRule),
    Unix(UnixRule),
    Dbus(DbusRule),
    Rlimit(RlimitRule),
    ChangeProfile(ChangeProfileRule),
    Userns(UsernsRule),
    IoUring(IoUringRule),
    Mqueue(MqueueRule),
    /// `all,`: every permission of every class.
    All,
}

/// A string that may contain `@{VAR}` references and `{a,b}` alternations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pattern {
    /// As written (unquoted, escapes kept).
    pub raw: String,
    /// Variables expanded (one AARE string; a multi-valued variable becomes
    /// an alternation `{a,b}`). Alternations are AARE syntax, compiled by the
    /// matcher. Empty only for patterns the parser did not expand.
    pub expanded: Vec<String>,
}

impl Pattern {
    pub fn new(raw: impl Into<String>) -> Self {
        Pattern {
            raw: raw.into(),
            expanded: Vec::new(),
        }
    }
}

/// File access permissions (without the exec mode), a small bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FilePerms(pub u16);

impl FilePerms {
    pub const READ: FilePerms = FilePerms(1 << 0);
    pub const WRITE: FilePerms = FilePerms(1 << 1);
    pub const APPEND: FilePerms = FilePerms(1 << 2);
    pub const LINK: FilePerms = FilePerms(1 << 3);
    pub const LOCK: FilePerms = FilePerms(1 << 4);
    pub const MMAP: FilePerms = FilePerms(1 << 5);
    /// Any `x` mode was given (see [`FileRule::exec`] for which one).
    pub const EXEC: FilePerms = FilePerms(1 << 6);

    pub fn empty() -> Self {
        FilePerms(0)
    }
    pub fn contains(self, other: FilePerms) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn intersects(self, other: FilePerms) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for FilePerms {
    type Output = FilePerms;
    fn bitor(self, rhs: FilePerms) -> FilePerms {
        FilePerms(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for FilePerms {
    fn bitor_assign(&mut self, rhs: FilePerms) {
        self.0 |= rhs.0;
    }
}

/// What happens on exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecKind {
    /// `x` alone (only valid in `deny` rules / `audit deny`).
    Plain,
    /// `ix`: inherit the current profile.
    Inherit,
    /// `px`/`Px`: transition to the profile of the target (or named by `->`).
    Profile,
    /// `cx`/`Cx`: transition to a child profile.
    Child,
    /// `ux`/`Ux`: run unconfined.
    Unconfined,
}

/// An exec mode such as `Pix` or `cux`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExecMode {
    pub kind: ExecKind,
    /// Uppercase (`P`, `C`, `U`): scrub the environment (secure exec).
    pub scrub: bool,
    /// Fallback when the target profile does not exist: `pix` → `Some(Inherit)`,
    /// `pux` → `Some(Unconfined)`.
    pub fallback: Option<ExecKind>,
}

/// A file rule: `[file] PATH PERMS [-> TARGET],` or `[file] PERMS PATH [-> TARGET],`
/// or the bare `file,`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRule {
    /// The path pattern; `None` for a bare `file,` (all files).
    pub path: Option<Pattern>,
    pub perms: FilePerms,
    /// The exec mode, if any `x` permission was given.
    pub exec: Option<ExecMode>,
    /// `-> target` (exec transition target profile name).
    pub target: Option<Pattern>,
    /// Written with the `file` keyword.
    pub file_keyword: bool,
}

/// `link [subset] LINK -> TARGET,`
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRule {
    pub subset: bool,
    pub link: Pattern,
    pub target: Pattern,
}

/// `capability [NAME...],` (empty `caps` means all capabilities).
#[derive(Debug, Clone, PartialEq)]
pub struct CapabilityRule {
    /// Lower-case capability names without `CAP_`.
    pub caps: Vec<String>,
}

/// A condition `name=value` or `name=(v1 v2)` or `name in (v1 v2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub name: String,
    pub values: Vec<String>,
    /// Written with `in` instead of `=`.
    pub is_in: bool,
    /// Written with a list in parentheses.
    pub is_list: bool,
}

/// `network [PERMS] [DOMAIN] [TYPE|PROTOCOL] [conds] [peer=(conds)],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkRule {
    /// Access permissions, if given (create, bind, send, ...).
    pub perms: Vec<String>,
    /// Address family (`inet`, `unix`, ...); `None` = all.
    pub domain: Option<String>,
    /// Socket type (`stream`, `dgram`, ...).
    pub sock_type: Option<String>,
    /// Protocol (`tcp`, `udp`, `icmp`).
    pub protocol: Option<String>,
    /// Local fine-grained conditions (`ip=`, `port=`).
    pub conds: Vec<Cond>,
    /// `peer=(ip= port=)` conditions.
    pub peer: Vec<Cond>,
}

/// Which mount-class rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Mount,
    Remount,
    Umount,
    PivotRoot,
}

/// `mount [conds] [SOURCE] [-> MOUNTPOINT],`, `remount`, `umount`, `pivot_root`.
#[derive(Debug, Clone, PartialEq)]
pub struct MountRule {
    pub kind: MountKind,
    /// `fstype=`/`vfstype=`, `options=`/`options in`, `flags=`... as written.
    pub conds: Vec<Cond>,
    /// mount: the source device; umount/remount: the mount point;
    /// pivot_root: the new root.
    pub source: Option<Pattern>,
    /// mount: `-> MOUNTPOINT`; pivot_root: `-> PROFILE`.
    pub target: Option<Pattern>,
    /// pivot_root: `oldroot=`.
    pub oldroot: Option<Pattern>,
}

/// `signal [(PERMS)] [set=(SIGNALS)] [peer=LABEL],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalRule {
    /// send, receive (empty = all).
    pub perms: Vec<String>,
    /// Signal names (`hup`, `rtmin+3`, ...); empty = all.
    pub signals: Vec<String>,
    pub peer: Option<Pattern>,
}

/// `ptrace [(PERMS)] [peer=LABEL],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PtraceRule {
    /// trace, tracedby, read, readby (empty = all).
    pub perms: Vec<String>,
    pub peer: Option<Pattern>,
}

/// `unix [(PERMS)] [conds] [peer=(conds)],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnixRule {
    pub perms: Vec<String>,
    /// `type=`, `protocol=`, `addr=`, `label=`, `attr=`, `opt=`.
    pub conds: Vec<Cond>,
    /// `peer=(addr= label=)`.
    pub peer: Vec<Cond>,
}

/// `dbus [(PERMS)] [bus=] [path=] [interface=] [member=] [name=] [peer=(name= label=)],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbusRule {
    pub perms: Vec<String>,
    pub conds: Vec<Cond>,
    pub peer: Vec<Cond>,
}

/// `set rlimit RESOURCE <= VALUE,`
#[derive(Debug, Clone, PartialEq)]
pub struct RlimitRule {
    pub resource: String,
    pub value: String,
}

/// `change_profile [safe|unsafe] [EXEC] [-> PROFILE],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeProfileRule {
    /// `Some(true)` for `safe`, `Some(false)` for `unsafe`.
    pub safe: Option<bool>,
    pub exec: Option<Pattern>,
    pub target: Option<Pattern>,
}

/// `userns [create],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsernsRule {
    pub perms: Vec<String>,
}

/// `io_uring [(sqpoll override_creds)] [label=LABEL],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IoUringRule {
    pub perms: Vec<String>,
    pub label: Option<Pattern>,
}

/// `mqueue [(PERMS)] [type=posix|sysv] [label=LABEL] [NAME],`
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MqueueRule {
    pub perms: Vec<String>,
    pub conds: Vec<Cond>,
    pub name: Option<Pattern>,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A problem found while parsing or validating, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {}: {}", self.span, sev, self.message)
    }
}
