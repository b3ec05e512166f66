//! The AppArmor half of the complain → enforce workflow
//! (`armorlet profile suggest --apparmor`, `profile complain|enforce`).
//!
//! [`check`] evaluates what a workload was recorded doing ([`Observed`])
//! against a profile with the [`Evaluator`], as if the profile were
//! enforcing: its mode flag is ignored, since the point is to find what
//! complain mode would have logged. [`add_rules`] writes rules into a
//! profile text and [`set_mode`] flips its `complain` flag, both as edits of
//! the text: everything else is kept byte for byte, and the result must
//! parse.
//!
//! Ownership: a recording cannot tell who owns a file, so a permission
//! counts as granted only when it is granted both to the owner and to
//! others (an `owner` rule alone does not grant it), except for files the
//! workload created, which are its own.

use crate::ast::{Profile, Severity, Span};
use crate::eval::{
    find_profile, EvalError, Evaluator, FileAccess, FileRequest, NetworkRequest, PermOutcome,
    Request,
};
use crate::generate::{FilePerms, Observed};
use crate::parser::ProfileLayout;
use crate::ParseOptions;

/// The recorded accesses a profile denies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Denials {
    /// Not granted by any rule: complain mode logs them (ALLOWED), enforce
    /// mode denies them. Adding allow rules fixes them.
    pub missing: Observed,
    /// Denied by a `deny` rule (in every mode): an allow rule would not help.
    pub explicit: Observed,
}

impl Denials {
    /// True when the profile allows everything recorded.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.explicit.is_empty()
    }
}

/// The path the kernel mediates for a recorded one: `/proc/self` is the
/// caller's `/proc/<pid>` (any pid: `@{pid}` matches them all).
fn mediated_path(path: &str) -> String {
    match path.strip_prefix("/proc/self") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/proc/1{rest}"),
        _ => path.to_owned(),
    }
}

fn set_letter(p: &mut FilePerms, letter: &str) {
    match letter {
        "r" => p.read = true,
        "w" => p.write = true,
        "x" => p.exec = true,
        "m" => p.mmap = true,
        "l" => p.link = true,
        _ => {}
    }
}

/// What `profile` (its rules; its mode flag is ignored) would deny of what
/// was `observed`: per file only the permissions it does not grant (read →
/// `r`, write → `w`, exec → `x`, mmap → `m`, link → `l`), each network
/// `(family, type)` and each capability.
pub fn check(observed: &Observed, profile: &Profile) -> Result<Denials, EvalError> {
    let ev = Evaluator::new(profile)?;
    let mut out = Denials::default();
    for (path, p) in &observed.files {
        let mut access = None;
        for (on, a) in [
            (p.read, FileAccess::READ),
            (p.write, FileAccess::WRITE),
            (p.exec, FileAccess::EXEC),
            (p.mmap, FileAccess::MMAP),
            (p.link, FileAccess::LINK),
        ] {
            if on {
                access = Some(access.map_or(a, |x| x | a));
            }
        }
        let Some(access) = access else { continue };
        let owners: &[bool] = if p.create { &[true] } else { &[true, false] };
        let mut missing = FilePerms::default();
        let mut explicit = FilePerms::default();
        for &owner in owners {
            let d = ev.evaluate(&Request::File(FileRequest {
                path: mediated_path(path),
                access,
                owner,
                link_target: None,
            }));
            for perm in &d.perms {
                match perm.outcome {
                    PermOutcome::Allowed => {}
                    PermOutcome::NotGranted => set_letter(&mut missing, &perm.perm),
                    PermOutcome::ExplicitDeny => set_letter(&mut explicit, &perm.perm),
                }
            }
        }
        // A permission a deny rule takes is not fixed by an allow rule.
        let missing = FilePerms {
            read: missing.read && !explicit.read,
            write: missing.write && !explicit.write,
            exec: missing.exec && !explicit.exec,
            mmap: missing.mmap && !explicit.mmap,
            link: missing.link && !explicit.link,
            create: false,
        };
        if !missing.is_empty() {
            let create = p.create && missing.write;
            out.missing
                .files
                .insert(path.clone(), FilePerms { create, ..missing });
        }
        if !explicit.is_empty() {
            out.explicit.files.insert(path.clone(), explicit);
        }
    }
    for (family, ty) in &observed.network {
        let d = ev.evaluate(&Request::Network(NetworkRequest {
            domain: family.clone(),
            sock_type: ty.clone(),
            ..NetworkRequest::default()
        }));
        let target = match d.perms.first().map(|p| p.outcome) {
            Some(PermOutcome::NotGranted) => &mut out.missing,
            Some(PermOutcome::ExplicitDeny) => &mut out.explicit,
            _ => continue,
        };
        target.network.insert((family.clone(), ty.clone()));
    }
    for cap in &observed.capabilities {
        let d = ev.evaluate(&Request::Capability(cap.clone()));
        let target = match d.perms.first().map(|p| p.outcome) {
            Some(PermOutcome::NotGranted) => &mut out.missing,
            Some(PermOutcome::ExplicitDeny) => &mut out.explicit,
            _ => continue,
        };
        target.capabilities.insert(cap.clone());
    }
    Ok(out)
}

/// The recorded accesses `profile` does not grant (what complain mode logs
/// and enforce mode denies; see [`check`], which also gives those a `deny`
/// rule takes).
pub fn denied(observed: &Observed, profile: &Profile) -> Result<Observed, EvalError> {
    check(observed, profile).map(|d| d.missing)
}

/// One line per access of `o`, as a denial names it: `/tmp/x w`,
/// `capability chown`, `network inet stream`.
pub fn describe(o: &Observed) -> Vec<String> {
    let mut out: Vec<String> = o
        .files
        .iter()
        .map(|(path, p)| format!("{path} {}", p.letters()))
        .collect();
    out.extend(o.network.iter().map(|(f, t)| match t {
        Some(t) => format!("network {f} {t}"),
        None => format!("network {f}"),
    }));
    out.extend(o.capabilities.iter().map(|c| format!("capability {c}")));
    out
}

/// Errors editing a profile text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The text does not parse.
    #[error("the profile does not parse:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// No such profile, several to choose from, or none.
    #[error(transparent)]
    Profile(#[from] EvalError),
    /// The profile is defined by an included file, not by this text.
    #[error("profile '{0}' is not defined in this text (an included file defines it)")]
    NotInText(String),
    /// The edit would produce a text that does not parse.
    #[error("the edited profile would not parse:\n{}", .0.join("\n"))]
    Result(Vec<String>),
}

/// The comment line above the rules [`add_rules`] inserts.
pub const ADDED_COMMENT: &str = "# added by armorlet profile suggest";

/// The name diagnostics of an edited text carry.
const TEXT_NAME: &str = "profile";

fn errors(text: &str, opts: &ParseOptions) -> Vec<String> {
    let (_, diags) = crate::parse_str(text, TEXT_NAME, opts);
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect()
}

/// Parses `text`, refusing it when it has errors.
fn parse_valid(
    text: &str,
    opts: &ParseOptions,
) -> Result<(crate::Policy, Vec<ProfileLayout>), EditError> {
    let (policy, diags, layouts) = crate::parse_with_layout(text, TEXT_NAME, opts);
    let errs: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if errs.is_empty() {
        Ok((policy, layouts))
    } else {
        Err(EditError::Invalid(errs))
    }
}

/// The byte offset of a position (1-based line and column in characters).
fn offset(text: &str, at: &Span) -> usize {
    let mut line = 1;
    let mut start = 0;
    if at.line > 1 {
        for (i, c) in text.char_indices() {
            if c == '\n' {
                line += 1;
                if line == at.line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    text[start..]
        .char_indices()
        .nth(at.column.saturating_sub(1) as usize)
        .map_or(text.len(), |(i, _)| start + i)
}

fn layout_of<'l>(
    layouts: &'l [ProfileLayout],
    profile: &Profile,
) -> Result<&'l ProfileLayout, EditError> {
    layouts
        .iter()
        .find(|l| l.header == profile.span)
        .ok_or_else(|| EditError::NotInText(profile.name.clone()))
}

/// Applies `(start, end, replacement)` edits (non-overlapping), and checks
/// that the result parses.
fn apply(
    text: &str,
    mut edits: Vec<(usize, usize, String)>,
    opts: &ParseOptions,
) -> Result<String, EditError> {
    if edits.is_empty() {
        return Ok(text.to_owned());
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_owned();
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    let errs = errors(&out, opts);
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(EditError::Result(errs))
    }
}

/// `text` with the rules for `additions` (the rule shapes of
/// [`Observed::profile`]) inserted just before the closing `}` of the profile
/// `name` (`outer//child` for a child profile or hat; `None`: the only
/// profile), after an [`ADDED_COMMENT`] line. Everything else is kept byte
/// for byte; nothing is added (and the text is returned as it is) when
/// `additions` is empty. When the policy does not define `@{PROC}` and
/// `@{pid}` (no `include <tunables/global>`), process-own `/proc` paths are
/// written `/proc/[0-9]*/...`.
pub fn add_rules(
    text: &str,
    name: Option<&str>,
    additions: &Observed,
    opts: &ParseOptions,
) -> Result<String, EditError> {
    let (policy, layouts) = parse_valid(text, opts)?;
    let profile = find_profile(&policy, name)?;
    let layout = layout_of(&layouts, profile)?;
    if additions.is_empty() {
        return Ok(text.to_owned());
    }
    let mut rules = additions.rules();
    if !(policy.variables.contains_key("PROC") && policy.variables.contains_key("pid")) {
        rules.files = rules
            .files
            .into_iter()
            .map(|(k, p)| match k.strip_prefix("@{PROC}/@{pid}") {
                Some(rest) => (format!("/proc/[0-9]*{rest}"), p),
                None => (k, p),
            })
            .collect();
    }
    let close = offset(text, &layout.close);
    let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..close];
    let own_line = before.chars().all(|c| c == ' ' || c == '\t');
    let lead: String = before
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let indent = format!("{lead}  ");
    let mut block = format!("{indent}{ADDED_COMMENT}\n");
    let created = additions.created();
    let comment: Vec<String> = if created.is_empty() {
        Vec::new()
    } else {
        vec![format!("created by the workload: {}", created.join(" "))]
    };
    rules.write(&mut block, &indent, false, &comment);
    while block.ends_with("\n\n") {
        block.pop();
    }
    let edit = if own_line {
        (line_start, line_start, block)
    } else {
        (close, close, format!("\n{block}{lead}"))
    };
    apply(text, vec![edit], opts)
}

/// The mode flags: `complain` replaces the others, and enforcing removes
/// all but `enforce` (as aa-complain and aa-enforce do; `default_allow` is
/// treated like the modes upstream's tools name).
const MODE_FLAGS: &[&str] = &[
    "enforce",
    "complain",
    "kill",
    "unconfined",
    "prompt",
    "default_allow",
];

fn render_flag(v: &str) -> String {
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || "(),\"#".contains(c)) {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_owned()
    }
}

/// `text` with `complain` added to (`complain`) or removed from (enforce)
/// the `flags=(...)` of the profile `name` (`None`: every top-level profile
/// of the text), like aa-complain and aa-enforce: the flags clause is
/// created or removed as needed, other mode flags give way (`kill`,
/// `unconfined`, `prompt`, `default_allow`; `enforce` too when setting
/// complain), other flags are kept. A profile already in the mode is left as
/// it is.
pub fn set_mode(
    text: &str,
    name: Option<&str>,
    complain: bool,
    opts: &ParseOptions,
) -> Result<String, EditError> {
    let (policy, layouts) = parse_valid(text, opts)?;
    let targets: Vec<&Profile> = match name {
        Some(_) => vec![find_profile(&policy, name)?],
        None if policy.profiles.is_empty() => return Err(EvalError::NoProfile.into()),
        None => policy.profiles.iter().collect(),
    };
    let mut edits = Vec::new();
    for profile in targets {
        let layout = layout_of(&layouts, profile)?;
        let raw = &profile.flags.raw;
        let is_mode = |v: &&String| MODE_FLAGS.contains(&v.as_str());
        let modes: Vec<&String> = raw.iter().filter(is_mode).collect();
        let done = if complain {
            !modes.is_empty() && modes.iter().all(|m| *m == "complain")
        } else {
            modes.iter().all(|m| *m == "enforce")
        };
        if done {
            continue;
        }
        let mut kept: Vec<String> = raw
            .iter()
            .filter(|v| !is_mode(v) || (!complain && *v == "enforce"))
            .map(|v| render_flag(v))
            .collect();
        if complain {
            kept.push("complain".to_owned());
        }
        match &layout.flags {
            Some((start, end)) => {
                let (mut s, e) = (offset(text, start), offset(text, end));
                if kept.is_empty() {
                    let after_blank = text[e..].starts_with(char::is_whitespace);
                    let trimmed = text[..s].trim_end_matches([' ', '\t']);
                    if after_blank && trimmed.len() < s {
                        s = trimmed.len();
                    }
                    edits.push((s, e, String::new()));
                } else {
                    edits.push((s, e, format!("flags=({})", kept.join(","))));
                }
            }
            None => {
                let open = offset(text, &layout.open);
                let spaced = text[..open].ends_with(char::is_whitespace);
                let clause = format!("flags=({}) ", kept.join(","));
                edits.push((
                    open,
                    open,
                    if spaced { clause } else { format!(" {clause}") },
                ));
            }
        }
    }
    apply(text, edits, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::FilePerms;

    fn opts() -> ParseOptions {
        ParseOptions::default()
    }

    const TUNABLES: &str = "@{PROC}=/proc/\n@{pid}={[1-9],[1-9][0-9],[1-9][0-9][0-9]}\n";

    fn perms(s: &str) -> FilePerms {
        let mut p = FilePerms::default();
        for c in s.chars() {
            match c {
                'r' => p.read = true,
                'w' => p.write = true,
                'x' => p.exec = true,
                'm' => p.mmap = true,
                'l' => p.link = true,
                'c' => p.create = true,
                _ => panic!("{c}"),
            }
        }
        p
    }

    fn observed(files: &[(&str, &str)], caps: &[&str], net: &[(&str, Option<&str>)]) -> Observed {
        Observed {
            files: files
                .iter()
                .map(|(f, p)| (f.to_string(), perms(p)))
                .collect(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            network: net
                .iter()
                .map(|(f, t)| (f.to_string(), t.map(str::to_owned)))
                .collect(),
        }
    }

    fn parse(text: &str) -> crate::Policy {
        let (p, diags) = crate::parse_str(text, "t", &opts());
        assert!(
            diags.iter().all(|d| d.severity != Severity::Error),
            "{diags:?}"
        );
        p
    }

    const COMPLAIN: &str = concat!(
        "@{PROC}=/proc/\n@{pid}={[1-9],[1-9][0-9]}\n",
        "# a complain profile\n",
        "profile app flags=(attach_disconnected,complain) {\n",
        "  capability chown,\n",
        "  network inet stream,\n",
        "  /etc/hostname r,\n",
        "  /tmp/** r,\n",
        "  owner /home/** rw,\n",
        "  deny /etc/shadow rw,\n",
        "  /bin/sh Px,\n",
        "  @{PROC}/@{pid}/status r,\n",
        "}\n"
    );

    #[test]
    fn complain_profile_denials_are_what_it_does_not_grant() {
        let policy = parse(COMPLAIN);
        let profile = find_profile(&policy, None).unwrap();
        let o = observed(
            &[
                ("/etc/hostname", "r"),
                ("/tmp/x", "rw"),
                ("/tmp/new", "wc"),
                ("/home/u/f", "r"),
                ("/home/u/mine", "wc"),
                ("/etc/shadow", "r"),
                ("/bin/sh", "rx"),
                ("/bin/busybox", "rx"),
                ("/usr/lib/libc.so.6", "rm"),
                ("/proc/self/status", "r"),
                ("/proc/12/maps", "r"),
            ],
            &["chown", "setuid"],
            &[
                ("inet", Some("stream")),
                ("inet", Some("dgram")),
                ("unix", None),
            ],
        );
        let d = check(&o, profile).unwrap();
        assert_eq!(
            describe(&d.missing),
            [
                "/bin/busybox rx",
                "/bin/sh r",
                "/home/u/f r",
                "/proc/12/maps r",
                "/tmp/new w",
                "/tmp/x w",
                "/usr/lib/libc.so.6 mr",
                "network inet dgram",
                "network unix",
                "capability setuid",
            ]
        );
        // Created files keep their flag (the rule then covers the directory).
        assert!(d.missing.files["/tmp/new"].create);
        assert_eq!(describe(&d.explicit), ["/etc/shadow r"]);
        assert_eq!(denied(&o, profile).unwrap(), d.missing);
        // Enforce or complain: the same rules, the same denials.
        let enforce = parse(&COMPLAIN.replace(",complain", ""));
        assert_eq!(check(&o, find_profile(&enforce, None).unwrap()).unwrap(), d);
    }

    #[test]
    fn exec_is_granted_by_any_exec_mode_and_implies_mmap_for_ix() {
        let policy =
            parse("profile p {\n  /bin/a ix,\n  /bin/b ux,\n  /bin/c Px,\n  /bin/d rm,\n}\n");
        let profile = find_profile(&policy, None).unwrap();
        let o = observed(
            &[
                ("/bin/a", "xm"),
                ("/bin/b", "x"),
                ("/bin/c", "x"),
                ("/bin/d", "rx"),
            ],
            &[],
            &[],
        );
        assert_eq!(describe(&denied(&o, profile).unwrap()), ["/bin/d x"]);
    }

    #[test]
    fn adds_rules_before_the_closing_brace_keeping_the_rest() {
        let additions = observed(
            &[
                ("/tmp/x", "w"),
                ("/tmp/new", "wc"),
                ("/usr/lib/libc.so.6", "rm"),
                ("/proc/self/status", "r"),
                ("/srv/a b", "r"),
                ("/bin/busybox", "rx"),
            ],
            &["setuid"],
            &[("inet", Some("dgram"))],
        );
        let out = add_rules(COMPLAIN, None, &additions, &opts()).unwrap();
        let expected = COMPLAIN.replace(
            "  @{PROC}/@{pid}/status r,\n}\n",
            concat!(
                "  @{PROC}/@{pid}/status r,\n",
                "  # added by armorlet profile suggest\n",
                "  capability setuid,\n",
                "  network inet dgram,\n",
                "\n",
                "  # created by the workload: /tmp/new\n",
                "  /bin/busybox rix,\n",
                "  \"/srv/a b\" r,\n",
                "  /tmp/** w,\n",
                "  /tmp/x w,\n",
                "  /usr/lib/** mr,\n",
                "  @{PROC}/@{pid}/status r,\n",
                "}\n"
            ),
        );
        assert_eq!(out, expected);
        // Nothing to add: the text as it is.
        assert_eq!(
            add_rules(COMPLAIN, None, &Observed::default(), &opts()).unwrap(),
            COMPLAIN
        );
        // The added rules now grant what was denied.
        let policy = parse(&out);
        let d = check(&additions, find_profile(&policy, None).unwrap()).unwrap();
        assert!(d.missing.is_empty(), "{d:?}");
    }

    #[test]
    fn adds_rules_to_a_named_child_or_an_inline_body() {
        let text =
            "profile a {\n  /a r,\n}\nprofile b {\n  /b r,\n  profile kid {\n    /k r,\n  }\n}\n";
        let add = observed(&[("/x", "w")], &[], &[]);
        assert_eq!(
            add_rules(text, Some("b//kid"), &add, &opts()).unwrap(),
            "profile a {\n  /a r,\n}\nprofile b {\n  /b r,\n  profile kid {\n    /k r,\n    # added by armorlet profile suggest\n    /x w,\n  }\n}\n"
        );
        assert_eq!(
            add_rules(text, Some("a"), &add, &opts()).unwrap(),
            "profile a {\n  /a r,\n  # added by armorlet profile suggest\n  /x w,\n}\nprofile b {\n  /b r,\n  profile kid {\n    /k r,\n  }\n}\n"
        );
        assert!(matches!(
            add_rules(text, None, &add, &opts()),
            Err(EditError::Profile(EvalError::AmbiguousProfile { .. }))
        ));
        assert!(matches!(
            add_rules(text, Some("c"), &add, &opts()),
            Err(EditError::Profile(EvalError::NoSuchProfile { .. }))
        ));
        assert_eq!(
            add_rules("profile p { /a r, }", None, &add, &opts()).unwrap(),
            "profile p { /a r, \n  # added by armorlet profile suggest\n  /x w,\n}"
        );
        // Without the tunables, /proc/<pid> is spelled out.
        let proc_ = observed(&[("/proc/7/stat", "r")], &[], &[]);
        assert_eq!(
            add_rules("profile p {\n}\n", None, &proc_, &opts()).unwrap(),
            "profile p {\n  # added by armorlet profile suggest\n  /proc/[0-9]*/stat r,\n}\n"
        );
        let with = format!("{TUNABLES}profile p {{\n}}\n");
        assert_eq!(
            add_rules(&with, None, &proc_, &opts()).unwrap(),
            format!("{TUNABLES}profile p {{\n  # added by armorlet profile suggest\n  @{{PROC}}/@{{pid}}/stat r,\n}}\n")
        );
        assert!(matches!(
            add_rules("profile p {\n  /a rr\n}\n", None, &add, &opts()),
            Err(EditError::Invalid(_))
        ));
    }

    #[test]
    fn braces_in_names_attachments_and_comments_do_not_confuse_the_insertion() {
        let text = "profile p /usr/bin/{a,b} {\n  # } not the end {\n  \"/x y/{c,d}\" r,\n  ^hat {\n    /h r,\n  }\n}\n";
        let add = observed(&[("/z", "r")], &[], &[]);
        let out = add_rules(text, None, &add, &opts()).unwrap();
        assert_eq!(
            out,
            text.replace(
                "  }\n}\n",
                "  }\n  # added by armorlet profile suggest\n  /z r,\n}\n"
            )
        );
        let out = add_rules(text, Some("p//hat"), &add, &opts()).unwrap();
        assert_eq!(
            out,
            text.replace(
                "    /h r,\n",
                "    /h r,\n    # added by armorlet profile suggest\n    /z r,\n"
            )
        );
    }

    #[test]
    fn complain_and_enforce_flip_the_flags() {
        let plain = "# x\nprofile p {\n  /a r,\n}\n";
        let c = set_mode(plain, None, true, &opts()).unwrap();
        assert_eq!(c, "# x\nprofile p flags=(complain) {\n  /a r,\n}\n");
        assert_eq!(set_mode(&c, None, true, &opts()).unwrap(), c);
        assert_eq!(set_mode(&c, None, false, &opts()).unwrap(), plain);
        assert_eq!(set_mode(plain, None, false, &opts()).unwrap(), plain);

        let flags = "profile p flags=(attach_disconnected, mediate_deleted) {\n}\n";
        let c = set_mode(flags, None, true, &opts()).unwrap();
        assert_eq!(
            c,
            "profile p flags=(attach_disconnected,mediate_deleted,complain) {\n}\n"
        );
        assert_eq!(
            set_mode(&c, None, false, &opts()).unwrap(),
            "profile p flags=(attach_disconnected,mediate_deleted) {\n}\n"
        );
        // Other modes give way; `enforce` stays when enforcing.
        assert_eq!(
            set_mode("profile p flags=(kill,audit) {\n}\n", None, true, &opts()).unwrap(),
            "profile p flags=(audit,complain) {\n}\n"
        );
        assert_eq!(
            set_mode("profile p flags=(enforce) {\n}\n", None, true, &opts()).unwrap(),
            "profile p flags=(complain) {\n}\n"
        );
        assert_eq!(
            set_mode("profile p flags=(enforce) {\n}\n", None, false, &opts()).unwrap(),
            "profile p flags=(enforce) {\n}\n"
        );
        assert_eq!(
            set_mode("/usr/bin/x (complain) {\n}\n", None, false, &opts()).unwrap(),
            "/usr/bin/x {\n}\n"
        );
        assert_eq!(
            set_mode("/usr/bin/x flags=(complain){\n}\n", None, false, &opts()).unwrap(),
            "/usr/bin/x {\n}\n"
        );
        // Every top-level profile, or the one named; hats keep theirs.
        let two = "profile a {\n  ^h {\n  }\n}\nprofile b flags=(audit) {\n}\n";
        assert_eq!(
            set_mode(two, None, true, &opts()).unwrap(),
            "profile a flags=(complain) {\n  ^h {\n  }\n}\nprofile b flags=(audit,complain) {\n}\n"
        );
        assert_eq!(
            set_mode(two, Some("a//h"), true, &opts()).unwrap(),
            "profile a {\n  ^h flags=(complain) {\n  }\n}\nprofile b flags=(audit) {\n}\n"
        );
        assert!(matches!(
            set_mode("", None, true, &opts()),
            Err(EditError::Profile(EvalError::NoProfile))
        ));
        // A profile the text only includes cannot be edited.
        let dir = std::env::temp_dir().join(format!("armorlet-suggest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("inc"), "profile inc {\n}\n").unwrap();
        let o = ParseOptions {
            include_dirs: vec![dir.clone()],
        };
        let r = set_mode("include <inc>\n", None, true, &o);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r, Err(EditError::NotInText("inc".into())));
    }
}
