//! Semantic checks of each rule class, and construction of the AST rules.
//!
//! Each function mirrors what upstream checks when it builds the rule
//! (`parser_yacc.y` actions and the per-class `*.cc` constructors), and
//! reports every problem with the rule's location.

use crate::ast::*;
use crate::lexer::Tok;
use crate::parser::{Bail, Item, Parser, Prefix};
use crate::tables;
use crate::vars::{check_aare, expand, ProfileCtx};

type PResult<T> = Result<T, Bail>;

fn quals(prefix: &Prefix) -> Qualifiers {
    Qualifiers {
        priority: prefix.priority,
        audit: prefix.audit,
        quiet: false,
        deny: prefix.mode == Some("deny"),
        allow: prefix.mode == Some("allow"),
        owner: prefix.owner == Some("owner"),
        other: prefix.owner == Some("other"),
    }
}

fn push(prof: &mut Profile, prefix: &Prefix, kind: RuleKind, span: Span) {
    prof.rules.push(Rule {
        qualifiers: quals(prefix),
        kind,
        span,
    });
}

fn no_owner(p: &mut Parser, prefix: &Prefix, class: &str, span: &Span) -> bool {
    if prefix.owner.is_some() {
        p.error(
            span.clone(),
            format!("owner prefix not allowed on {class} rules"),
        );
        return false;
    }
    true
}

fn no_priority(p: &mut Parser, prefix: &Prefix, class: &str, span: &Span) -> bool {
    if prefix.priority.is_some_and(|v| v != 0) {
        p.error(
            span.clone(),
            format!("priority prefix not allowed on {class} rules"),
        );
        return false;
    }
    true
}

/// Expand variables of a pattern and check its AARE syntax.
fn pattern(p: &mut Parser, ctx: &ProfileCtx, raw: &str, span: &Span) -> PResult<Pattern> {
    let e = expand(p, ctx, raw, span)?;
    if let Err(m) = check_aare(&e) {
        p.error(span.clone(), m);
        return Err(Bail);
    }
    Ok(Pattern {
        raw: raw.to_string(),
        expanded: vec![e],
    })
}

/// Apply an enclosing block's prefix (`audit { ... }`) to a rule.
pub(crate) fn apply_block_prefix(p: &mut Parser, prefix: &Prefix, rule: &mut Rule) {
    let q = &mut rule.qualifiers;
    if prefix.audit {
        q.audit = true;
    }
    if let Some(m) = prefix.mode {
        let cur = if q.deny {
            Some("deny")
        } else if q.allow {
            Some("allow")
        } else {
            None
        };
        if cur.is_some() && cur != Some(m) {
            p.error(rule.span.clone(), "conflicting mode prefix");
        }
        q.deny = m == "deny";
        q.allow = m == "allow";
    }
    if let Some(o) = prefix.owner {
        let cur = if q.owner {
            Some("owner")
        } else if q.other {
            Some("other")
        } else {
            None
        };
        if cur.is_some() && cur != Some(o) {
            p.error(rule.span.clone(), "conflicting owner prefix");
        }
        let ok_owner = matches!(rule.kind, RuleKind::File(_) | RuleKind::Link(_));
        if !ok_owner {
            p.error(rule.span.clone(), "owner prefix not allowed on this rule");
        }
        q.owner = o == "owner";
        q.other = o == "other";
    }
}

// ----------------------------------------------------------------------
// file rules

/// Parse a permission string (upstream `parse_sub_perms`).
fn parse_file_perms(
    p: &mut Parser,
    s: &str,
    span: &Span,
) -> PResult<(FilePerms, Option<ExecMode>, bool)> {
    let chars: Vec<char> = s.chars().collect();
    let mut perms = FilePerms::empty();
    let mut exec: Option<ExecMode> = None;
    let mut plain_x = false;
    let mut i = 0;
    fn set_exec(
        p: &mut Parser,
        exec: &mut Option<ExecMode>,
        e: ExecMode,
        txt: &str,
        span: &Span,
    ) -> PResult<()> {
        if let Some(old) = *exec {
            if old != e {
                p.error(
                    span.clone(),
                    format!(
                        "Exec qualifier '{txt}' invalid, conflicting qualifier already specified"
                    ),
                );
                return Err(Bail);
            }
        }
        *exec = Some(e);
        Ok(())
    }
    while i < chars.len() {
        let c = chars[i];
        let n = chars.get(i + 1).copied();
        let nn = chars.get(i + 2).copied();
        match c.to_ascii_lowercase() {
            'r' => perms |= FilePerms::READ,
            'w' => {
                if perms.contains(FilePerms::APPEND) && !perms.contains(FilePerms::WRITE) {
                    p.error(
                        span.clone(),
                        "Conflict 'a' and 'w' perms are mutually exclusive.",
                    );
                    return Err(Bail);
                }
                perms |= FilePerms::WRITE | FilePerms::APPEND;
            }
            'a' => {
                if perms.contains(FilePerms::WRITE) {
                    p.error(
                        span.clone(),
                        "Conflict 'a' and 'w' perms are mutually exclusive.",
                    );
                    return Err(Bail);
                }
                perms |= FilePerms::APPEND;
            }
            'l' => perms |= FilePerms::LINK,
            'k' => perms |= FilePerms::LOCK,
            'm' => perms |= FilePerms::MMAP,
            'x' => {
                perms |= FilePerms::EXEC;
                plain_x = true;
            }
            'i' => {
                if exec.is_some_and(|e| e.kind != ExecKind::Inherit) {
                    p.error(
                        span.clone(),
                        "Exec qualifier 'i' invalid, conflicting qualifier already specified",
                    );
                    return Err(Bail);
                }
                exec = Some(ExecMode {
                    kind: ExecKind::Inherit,
                    scrub: false,
                    fallback: None,
                });
                perms |= FilePerms::EXEC;
                i += 1;
            }
            'u' => {
                let e = ExecMode {
                    kind: ExecKind::Unconfined,
                    scrub: c == 'U',
                    fallback: None,
                };
                set_exec(p, &mut exec, e, &c.to_string(), span)?;
                perms |= FilePerms::EXEC;
                i += 1;
            }
            'p' | 'c' => {
                let kind = if c.eq_ignore_ascii_case(&'p') {
                    ExecKind::Profile
                } else {
                    ExecKind::Child
                };
                let scrub = c.is_ascii_uppercase();
                let fb = match n.map(|x| x.to_ascii_lowercase()) {
                    Some('i') if nn.is_some_and(|x| x.eq_ignore_ascii_case(&'x')) => {
                        Some(ExecKind::Inherit)
                    }
                    Some('u') if nn.is_some_and(|x| x.eq_ignore_ascii_case(&'x')) => {
                        Some(ExecKind::Unconfined)
                    }
                    _ => None,
                };
                let e = ExecMode {
                    kind,
                    scrub,
                    fallback: fb,
                };
                let txt: String = if fb.is_some() {
                    chars[i..i + 2].iter().collect()
                } else {
                    c.to_string()
                };
                set_exec(p, &mut exec, e, &txt, span)?;
                perms |= FilePerms::EXEC;
                i += if fb.is_some() { 2 } else { 1 };
            }
            _ => {
                p.error(
                    span.clone(),
                    format!("invalid permission character '{c}' in '{s}'"),
                );
                return Err(Bail);
            }
        }
        i += 1;
    }
    let _ = plain_x;
    Ok((
        perms,
        exec,
        exec.is_none() && perms.contains(FilePerms::EXEC),
    ))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn file(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    exec_mode: Option<&str>,
    path: String,
    perms_s: &str,
    perms_span: Span,
    perms_first: bool,
    subset: bool,
    target: Option<String>,
    start: Span,
    file_kw: bool,
) -> PResult<()> {
    let (perms, exec, bare_x) = parse_file_perms(p, perms_s, &perms_span)?;
    let deny = prefix.mode == Some("deny");
    let has_link = perms.contains(FilePerms::LINK);
    let has_exec = perms.contains(FilePerms::EXEC);
    let mut ok = true;
    if perms_first {
        if subset && perms.0 & !FilePerms::LINK.0 != 0 {
            p.error(start.clone(), "subset can only be used with link rules.");
            ok = false;
        }
        if target.is_some() && has_link && has_exec {
            p.error(
                start.clone(),
                "link and exec perms conflict on a file rule using ->",
            );
            ok = false;
        }
        if let Some(t) = &target {
            if has_link && (t.starts_with(':') || t.contains("//")) && t.starts_with(':') {
                p.error(
                    start.clone(),
                    "link perms are not allowed on a named profile transition.",
                );
                ok = false;
            }
        }
    }
    if exec_mode.is_some() && !has_exec {
        p.error(start.clone(), "unsafe rule missing exec permissions");
        ok = false;
    }
    // check_x_qualifier (after owner masking, which keeps exec bits)
    if has_exec {
        if deny && exec.is_some() {
            p.error(perms_span.clone(), "Invalid perms, in deny rules 'x' must not be preceded by exec qualifier 'i', 'p', or 'u'");
            ok = false;
        } else if !deny && bare_x {
            p.error(
                perms_span.clone(),
                "Invalid perms, 'x' must be preceded by exec qualifier 'i', 'p', or 'u'",
            );
            ok = false;
        }
    }
    // `PATH lx -> TARGET` names a link target; with exec perms the target
    // is the exec transition (upstream warns that this is ambiguous)
    let link_target = target.is_some() && has_link && !has_exec;
    let pat = pattern(p, ctx, &path, &start)?;
    let target_pat = match &target {
        Some(t) => Some(pattern(p, ctx, t, &start)?),
        None => None,
    };
    if !ok {
        return Err(Bail);
    }
    let mut q = quals(prefix);
    if exec_mode.is_some() {
        q.audit |= false;
    }
    if link_target {
        prof.rules.push(Rule {
            qualifiers: q,
            kind: RuleKind::Link(LinkRule {
                subset,
                link: pat,
                target: target_pat.unwrap_or_default(),
            }),
            span: start,
        });
        return Ok(());
    }
    let mut exec = exec;
    if let (Some(m), Some(e)) = (exec_mode, exec.as_mut()) {
        e.scrub = m == "safe";
    }
    prof.rules.push(Rule {
        qualifiers: q,
        kind: RuleKind::File(FileRule {
            path: Some(pat),
            perms,
            exec,
            target: target_pat,
            file_keyword: file_kw,
        }),
        span: start,
    });
    Ok(())
}

pub(crate) fn bare_file(
    p: &mut Parser,
    prof: &mut Profile,
    prefix: &Prefix,
    start: Span,
) -> PResult<()> {
    // Upstream expands `file,` to `/{**,} rwlkmix` before applying the
    // prefix, so `deny file,` trips the deny-rule exec check (a known
    // upstream bug, launchpad #1215637, reproduced here to agree with it).
    if prefix.mode == Some("deny") {
        p.error(
            start,
            "Invalid perms, in deny rules 'x' must not be preceded by exec qualifier 'i', 'p', or 'u' (bare 'file,' implies ix)",
        );
        return Err(Bail);
    }
    let perms = FilePerms::READ
        | FilePerms::WRITE
        | FilePerms::APPEND
        | FilePerms::LINK
        | FilePerms::LOCK
        | FilePerms::MMAP
        | FilePerms::EXEC;
    let exec = if prefix.mode == Some("deny") {
        None
    } else {
        Some(ExecMode {
            kind: ExecKind::Inherit,
            scrub: false,
            fallback: None,
        })
    };
    push(
        prof,
        prefix,
        RuleKind::File(FileRule {
            path: None,
            perms,
            exec,
            target: None,
            file_keyword: true,
        }),
        start,
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn link(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    subset: bool,
    link: String,
    target: String,
    start: Span,
) -> PResult<()> {
    let l = pattern(p, ctx, &link, &start)?;
    let t = pattern(p, ctx, &target, &start)?;
    push(
        prof,
        prefix,
        RuleKind::Link(LinkRule {
            subset,
            link: l,
            target: t,
        }),
        start,
    );
    Ok(())
}

// ----------------------------------------------------------------------
// capability, rlimit, change_profile, all

pub(crate) fn capability(
    p: &mut Parser,
    prof: &mut Profile,
    prefix: &Prefix,
    caps: Vec<(String, Span)>,
    start: Span,
) -> PResult<()> {
    let mut ok = no_owner(p, prefix, "capability", &start);
    let mut names = Vec::new();
    for (c, s) in caps {
        if !tables::CAPABILITIES.contains(&c.as_str()) {
            p.error(s, format!("Invalid capability {c}."));
            ok = false;
        }
        names.push(c);
    }
    if !ok {
        return Err(Bail);
    }
    push(
        prof,
        prefix,
        RuleKind::Capability(CapabilityRule { caps: names }),
        start,
    );
    Ok(())
}

pub(crate) fn rlimit(
    p: &mut Parser,
    prof: &mut Profile,
    toks: Vec<(Tok, Span)>,
    span: Span,
) -> PResult<()> {
    let get = |i: usize| toks.get(i).map(|t| &t.0);
    let (Some(Tok::Id(res)), Some(Tok::Le), Some(Tok::Id(val))) = (get(0), get(1), get(2)) else {
        p.error(
            span,
            "syntax error in rlimit rule: expecting 'set rlimit NAME <= VALUE,'",
        );
        return Err(Bail);
    };
    let unit = match get(3) {
        None => None,
        Some(Tok::Id(u))
            if toks.len() == 4 && u.chars().all(|c| c.is_ascii_alphabetic() || c == '_') =>
        {
            Some(u.clone())
        }
        Some(t) => {
            let t = t.clone();
            let s = toks[3].1.clone();
            return Err(p.unexpected_pub(&t, s, "','"));
        }
    };
    // value must be a number or `infinity` (lexed as a keyword)
    let is_num = val
        .strip_prefix('-')
        .unwrap_or(val)
        .chars()
        .all(|c| c.is_ascii_digit())
        && !val.is_empty()
        && val != "-";
    if !is_num && val != "infinity" {
        p.error(span, format!("syntax error: invalid rlimit value '{val}'"));
        return Err(Bail);
    }
    if !tables::RLIMITS.contains(&res.as_str()) {
        p.error(span, format!("INVALID RLIMIT '{res}'"));
        return Err(Bail);
    }
    let mut ok = true;
    if val != "infinity" {
        let n: i128 = val.parse().unwrap_or(0);
        let u = unit.as_deref();
        match res.as_str() {
            "cpu" => {
                if n < 0 {
                    ok = false;
                } else if let Some(u) = u {
                    match time_unit(u) {
                        Some(ms) => {
                            // must be at least one second
                            if n * ms < 1000 {
                                ok = false;
                            }
                        }
                        None => ok = false,
                    }
                }
            }
            "rttime" => {
                if n < 0 {
                    ok = false;
                } else if let Some(u) = u {
                    if time_unit_us(u).is_none() {
                        ok = false;
                    }
                }
            }
            "nofile" | "ofile" | "nproc" | "locks" | "sigpending" | "rtprio" => {
                if u.is_some() || n < 0 {
                    ok = false;
                }
            }
            "nice" => {
                if u.is_some() || !(-20..=19).contains(&n) {
                    ok = false;
                }
            }
            _ => {
                if n < 0 {
                    ok = false;
                } else if let Some(u) = u {
                    let ok_unit = !u.is_empty()
                        && ("KB".starts_with(u) || "MB".starts_with(u) || "GB".starts_with(u));
                    if !ok_unit {
                        ok = false;
                    }
                }
            }
        }
    } else if unit.is_some() {
        // upstream ignores the unit with infinity
    }
    if !ok {
        p.error(
            span,
            format!(
                "RLIMIT '{res}' invalid value {val} {}",
                unit.clone().unwrap_or_default()
            ),
        );
        return Err(Bail);
    }
    let value = match unit {
        Some(u) => format!("{val}{u}"),
        None => val.clone(),
    };
    prof.rules.push(Rule {
        qualifiers: Qualifiers::default(),
        kind: RuleKind::Rlimit(RlimitRule {
            resource: res.clone(),
            value,
        }),
        span,
    });
    Ok(())
}

/// Time units accepted for cpu, in milliseconds.
fn time_unit(u: &str) -> Option<i128> {
    time_unit_us(u).map(|us| us / 1000)
}

/// Time units in microseconds (upstream `convert_time_units`).
fn time_unit_us(u: &str) -> Option<i128> {
    Some(match u {
        "us" | "microsecond" | "microseconds" => 1,
        "ms" | "millisecond" | "milliseconds" => 1_000,
        "s" | "sec" | "second" | "seconds" => 1_000_000,
        "min" | "minute" | "minutes" => 60_000_000,
        "h" | "hour" | "hours" => 3_600_000_000,
        "d" | "day" | "days" => 86_400_000_000,
        "week" | "weeks" => 604_800_000_000,
        _ => return None,
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn change_profile(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    mode: Option<&str>,
    exec: Option<(String, Span)>,
    target: Option<(String, Span)>,
    start: Span,
) -> PResult<()> {
    let mut ok = true;
    if prefix.owner.is_some() {
        p.error(
            start.clone(),
            "owner conditional not allowed on change_profile rules",
        );
        ok = false;
    }
    if exec.is_none() && mode.is_some() {
        p.error(
            start.clone(),
            "Exec condition is required when unsafe or safe keywords are present",
        );
        ok = false;
    }
    let mut exec_pat = None;
    if let Some((e, s)) = &exec {
        if !(e.starts_with('/') || e.starts_with("@{")) {
            p.error(s.clone(), "Exec condition must begin with '/'.");
            ok = false;
        } else {
            exec_pat = Some(pattern(p, ctx, e, s)?);
        }
    }
    let mut target_pat = None;
    if let Some((t, s)) = &target {
        target_pat = Some(pattern(p, ctx, t, s)?);
    }
    if !ok {
        return Err(Bail);
    }
    push(
        prof,
        prefix,
        RuleKind::ChangeProfile(ChangeProfileRule {
            safe: mode.map(|m| m == "safe"),
            exec: exec_pat,
            target: target_pat,
        }),
        start,
    );
    Ok(())
}

pub(crate) fn all(p: &mut Parser, prof: &mut Profile, prefix: &Prefix, start: Span) -> PResult<()> {
    let a = no_priority(p, prefix, "all", &start);
    let b = no_owner(p, prefix, "all", &start);
    if !(a && b) {
        return Err(Bail);
    }
    push(prof, prefix, RuleKind::All, start);
    Ok(())
}

// ----------------------------------------------------------------------
// class rules built from items

/// Split items into (perms, leading ids, conds, trailing ids, condlist, arrow part).
struct Parts {
    perms: Option<Vec<String>>,
    ids_before: Vec<(String, Span)>,
    conds: Vec<(Cond, Span)>,
    ids_after: Vec<(String, Span)>,
    cond_list: Option<(String, Vec<Cond>, Span)>,
    arrow: Option<Span>,
    after_arrow_conds: Vec<(Cond, Span)>,
    after_arrow_ids: Vec<(String, Span)>,
    /// An item appeared out of grammatical order.
    bad: Option<Span>,
    /// Conditions written with `:=`: (name, in the peer list).
    set_ops: Vec<(String, bool)>,
}

fn split(items: Vec<(Item, Span)>) -> Parts {
    let mut pt = Parts {
        perms: None,
        ids_before: vec![],
        conds: vec![],
        ids_after: vec![],
        cond_list: None,
        arrow: None,
        after_arrow_conds: vec![],
        after_arrow_ids: vec![],
        bad: None,
        set_ops: vec![],
    };
    for (it, s) in items {
        let bad = &mut pt.bad;
        match it {
            Item::Perms(v, _) => pt.perms = Some(v),
            Item::Arrow => {
                if pt.arrow.is_some() || pt.cond_list.is_some() {
                    bad.get_or_insert(s.clone());
                }
                pt.arrow = Some(s)
            }
            Item::Id(x) => {
                if pt.cond_list.is_some() {
                    bad.get_or_insert(s.clone());
                }
                if pt.arrow.is_some() {
                    pt.after_arrow_ids.push((x, s));
                } else if pt.conds.is_empty() {
                    pt.ids_before.push((x, s));
                } else {
                    pt.ids_after.push((x, s));
                }
            }
            Item::Cond(c, set) => {
                if set {
                    pt.set_ops.push((c.name.clone(), false));
                }
                if pt.cond_list.is_some() {
                    bad.get_or_insert(s.clone());
                }
                if pt.arrow.is_some() {
                    if !pt.after_arrow_ids.is_empty() {
                        bad.get_or_insert(s.clone());
                    }
                    pt.after_arrow_conds.push((c, s));
                } else {
                    if !pt.ids_after.is_empty() {
                        bad.get_or_insert(s.clone());
                    }
                    pt.conds.push((c, s));
                }
            }
            Item::CondList(n, cs) => {
                if pt.cond_list.is_some() {
                    bad.get_or_insert(s.clone());
                }
                let mut c = Vec::new();
                for (x, set) in cs {
                    if set {
                        pt.set_ops.push((x.name.clone(), true));
                    }
                    c.push(x);
                }
                pt.cond_list = Some((n, c, s))
            }
        }
    }
    pt
}

fn syntax(p: &mut Parser, span: Span, what: &str) -> Bail {
    p.error(span, format!("syntax error in {what} rule"));
    Bail
}

fn check_perm_words(
    p: &mut Parser,
    perms: &[String],
    allowed: &[&str],
    rw: Option<(&str, &str)>,
    class: &str,
    span: &Span,
) -> PResult<Vec<String>> {
    let mut out = Vec::new();
    for w in perms {
        if allowed.contains(&w.as_str()) {
            out.push(w.clone());
            continue;
        }
        // a mode string like "rw"
        let mut good = !w.is_empty();
        for c in w.chars() {
            match (c.to_ascii_lowercase(), rw) {
                ('r', Some((r, _))) => out.push(r.to_string()),
                ('w', Some((_, wr))) => out.push(wr.to_string()),
                _ => good = false,
            }
        }
        if !good {
            p.error(span.clone(), format!("unknown {class} permission '{w}'"));
            return Err(Bail);
        }
    }
    Ok(out)
}

fn cond_pattern(p: &mut Parser, ctx: &ProfileCtx, c: &Cond, span: &Span) -> PResult<()> {
    for v in &c.values {
        pattern(p, ctx, v, span)?;
    }
    Ok(())
}

pub(crate) fn signal(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || !pt.ids_before.is_empty()
        || !pt.ids_after.is_empty()
        || pt.cond_list.is_some()
        || pt.arrow.is_some()
    {
        return Err(syntax(p, start, "signal"));
    }
    if !no_owner(p, prefix, "signal", &start) {
        return Err(Bail);
    }
    let perms = match &pt.perms {
        Some(v) => check_perm_words(
            p,
            v,
            &["send", "receive", "read", "write"],
            Some(("receive", "send")),
            "signal",
            &start,
        )?,
        None => vec![],
    };
    no_dups(p, &pt.conds, &["set"], "signal")?;
    no_set_ops(p, &pt, &[], "signal", &start)?;
    let mut rule = SignalRule {
        perms,
        ..Default::default()
    };
    for (c, s) in &pt.conds {
        if c.is_in {
            p.error(
                s.clone(),
                "only \"=\" allowed in conditions of signal rules",
            );
            return Err(Bail);
        }
        match c.name.as_str() {
            "set" => {
                for v in &c.values {
                    if tables::signal_number(v).is_none() {
                        p.error(s.clone(), format!("unknown signal \"{v}\""));
                        return Err(Bail);
                    }
                    rule.signals.push(v.clone());
                }
            }
            "peer" => {
                let Some(v) = c.values.first() else {
                    return Err(syntax(p, s.clone(), "signal"));
                };
                rule.peer = Some(pattern(p, ctx, v, s)?);
            }
            n => {
                p.error(
                    s.clone(),
                    format!("invalid signal rule conditional \"{n}\""),
                );
                return Err(Bail);
            }
        }
    }
    push(prof, prefix, RuleKind::Signal(rule), start);
    Ok(())
}

pub(crate) fn ptrace(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || !pt.ids_before.is_empty()
        || !pt.ids_after.is_empty()
        || pt.cond_list.is_some()
        || pt.arrow.is_some()
    {
        return Err(syntax(p, start, "ptrace"));
    }
    if !no_owner(p, prefix, "ptrace", &start) {
        return Err(Bail);
    }
    let perms = match &pt.perms {
        Some(v) => check_perm_words(
            p,
            v,
            &["trace", "tracedby", "read", "readby", "write"],
            Some(("read", "trace")),
            "ptrace",
            &start,
        )?,
        None => vec![],
    };
    no_dups(p, &pt.conds, &[], "ptrace")?;
    no_set_ops(p, &pt, &[], "ptrace", &start)?;
    let mut rule = PtraceRule { perms, peer: None };
    for (c, s) in &pt.conds {
        if c.is_in {
            p.error(
                s.clone(),
                "only \"=\" allowed in conditions of ptrace rules",
            );
            return Err(Bail);
        }
        match c.name.as_str() {
            "peer" => {
                let Some(v) = c.values.first() else {
                    return Err(syntax(p, s.clone(), "ptrace"));
                };
                rule.peer = Some(pattern(p, ctx, v, s)?);
            }
            n => {
                p.error(
                    s.clone(),
                    format!("invalid ptrace rule conditional \"{n}\""),
                );
                return Err(Bail);
            }
        }
    }
    push(prof, prefix, RuleKind::Ptrace(rule), start);
    Ok(())
}

pub(crate) fn userns(
    p: &mut Parser,
    prof: &mut Profile,
    _ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || !pt.ids_before.is_empty()
        || !pt.ids_after.is_empty()
        || pt.cond_list.is_some()
        || pt.arrow.is_some()
        || !pt.conds.is_empty()
    {
        return Err(syntax(p, start, "userns"));
    }
    if !no_owner(p, prefix, "userns", &start) {
        return Err(Bail);
    }
    let perms = match &pt.perms {
        Some(v) => check_perm_words(p, v, &["create"], None, "userns", &start)?,
        None => vec![],
    };
    push(prof, prefix, RuleKind::Userns(UsernsRule { perms }), start);
    Ok(())
}

pub(crate) fn io_uring(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || !pt.ids_before.is_empty()
        || !pt.ids_after.is_empty()
        || pt.arrow.is_some()
    {
        return Err(syntax(p, start, "io_uring"));
    }
    if !no_owner(p, prefix, "io_uring", &start) {
        return Err(Bail);
    }
    no_set_ops(p, &pt, &[], "io_uring", &start)?;
    let perms = match &pt.perms {
        Some(v) => check_perm_words(
            p,
            v,
            &["sqpoll", "override_creds"],
            None,
            "io_uring",
            &start,
        )?,
        None => vec![],
    };
    // local conditionals and a `peer=( )` group go through the same checks
    let mut all: Vec<(Cond, Span)> = pt.conds.clone();
    if let Some((_, pc, s)) = &pt.cond_list {
        all.extend(pc.iter().map(|c| (c.clone(), s.clone())));
    }
    no_dups(p, &all, &[], "io_uring")?;
    let mut rule = IoUringRule { perms, label: None };
    for (c, s) in &all {
        if c.is_in {
            p.error(
                s.clone(),
                "only \"=\" allowed in conditions of io_uring rules",
            );
            return Err(Bail);
        }
        if c.values.len() > 1 {
            p.error(
                s.clone(),
                format!(
                    "io_uring conditional \"{}\" only supports a single value",
                    c.name
                ),
            );
            return Err(Bail);
        }
        match (c.name.as_str(), c.values.first()) {
            ("label", Some(v)) => rule.label = Some(pattern(p, ctx, v, s)?),
            (n, _) => {
                p.error(s.clone(), format!("invalid io_uring conditional \"{n}\""));
                return Err(Bail);
            }
        }
    }
    push(prof, prefix, RuleKind::IoUring(rule), start);
    Ok(())
}

pub(crate) fn mqueue(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || (!pt.ids_before.is_empty() && !pt.conds.is_empty())
        || pt.cond_list.is_some()
        || pt.arrow.is_some()
    {
        return Err(syntax(p, start, "mqueue"));
    }
    let mut ids = pt.ids_before.clone();
    ids.extend(pt.ids_after.clone());
    if ids.len() > 1 {
        return Err(syntax(p, start, "mqueue"));
    }
    no_set_ops(p, &pt, &[], "mqueue", &start)?;
    if !no_owner(p, prefix, "mqueue", &start) {
        return Err(Bail);
    }
    let perms = match &pt.perms {
        Some(v) => check_perm_words(
            p,
            v,
            &[
                "create", "open", "delete", "getattr", "setattr", "read", "write",
            ],
            Some(("read", "write")),
            "mqueue",
            &start,
        )?,
        None => vec![],
    };
    no_dups(p, &pt.conds, &[], "mqueue")?;
    let mut conds = Vec::new();
    let mut mtype: Option<String> = None;
    for (c, s) in &pt.conds {
        if c.is_in {
            p.error(
                s.clone(),
                "only \"=\" allowed in conditions of mqueue rules",
            );
            return Err(Bail);
        }
        let Some(v) = c.values.first() else {
            return Err(syntax(p, s.clone(), "mqueue"));
        };
        match c.name.as_str() {
            "type" => {
                if v != "posix" && v != "sysv" {
                    p.error(s.clone(), format!("mqueue invalid type='{v}'"));
                    return Err(Bail);
                }
                mtype = Some(v.clone());
            }
            "label" => {
                pattern(p, ctx, v, s)?;
            }
            n => {
                p.error(
                    s.clone(),
                    format!("invalid mqueue rule conditional \"{n}\""),
                );
                return Err(Bail);
            }
        }
        conds.push(c.clone());
    }
    let mut name = None;
    if let Some((n, s)) = ids.first() {
        // checked as written, before variable expansion (as upstream)
        if n.starts_with('/') {
            if mtype.as_deref() == Some("sysv") {
                p.error(s.clone(), format!("mqueue type=sysv invalid name '{n}', sysv message queues must be identified by a positive integer."));
                return Err(Bail);
            }
        } else if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            if mtype.as_deref() == Some("posix") {
                p.error(s.clone(), format!("mqueue type=posix invalid name '{n}', posix message queues names must begin with a /"));
                return Err(Bail);
            }
        } else {
            p.error(s.clone(), format!("mqueue invalid name '{n}', message queue names must begin with a / or be a positive integer."));
            return Err(Bail);
        }
        name = Some(pattern(p, ctx, n, s)?);
    }
    push(
        prof,
        prefix,
        RuleKind::Mqueue(MqueueRule { perms, conds, name }),
        start,
    );
    Ok(())
}

pub(crate) fn dbus(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || !pt.ids_before.is_empty()
        || !pt.ids_after.is_empty()
        || pt.arrow.is_some()
    {
        return Err(syntax(p, start, "dbus"));
    }
    if !no_owner(p, prefix, "dbus", &start) {
        return Err(Bail);
    }
    no_set_ops(p, &pt, &[], "dbus", &start)?;
    let perms = match &pt.perms {
        Some(v) => check_perm_words(
            p,
            v,
            &["send", "receive", "bind", "eavesdrop", "read", "write"],
            Some(("receive", "send")),
            "dbus",
            &start,
        )?,
        None => vec![],
    };
    // upstream dbus_rule: the same conditionals are accepted locally and in
    // peer=(); each may be given once overall; label only in peer=().
    let mut set: std::collections::BTreeMap<String, bool> = std::collections::BTreeMap::new();
    let mut check = |p: &mut Parser, c: &Cond, s: &Span, peer: bool| -> PResult<()> {
        if c.is_in {
            p.error(s.clone(), "only \"=\" allowed in conditions of dbus rules");
            return Err(Bail);
        }
        if c.values.len() > 1 {
            p.error(
                s.clone(),
                format!(
                    "dbus conditional \"{}\" only supports a single value",
                    c.name
                ),
            );
            return Err(Bail);
        }
        if !matches!(
            c.name.as_str(),
            "bus" | "name" | "label" | "path" | "interface" | "member"
        ) {
            p.error(
                s.clone(),
                format!("invalid dbus conditional \"{}\"", c.name),
            );
            return Err(Bail);
        }
        if set.insert(c.name.clone(), peer).is_some() {
            p.error(
                s.clone(),
                format!("dbus conditional \"{}\" can only be specified once", c.name),
            );
            return Err(Bail);
        }
        if c.name == "label" && !peer {
            p.error(
                s.clone(),
                "dbus \"label\" conditional can only be used inside of the \"peer=()\" grouping",
            );
            return Err(Bail);
        }
        cond_pattern(p, ctx, c, s)
    };
    for (c, s) in &pt.conds {
        check(p, c, s, false)?;
    }
    let mut peer = Vec::new();
    if let Some((n, conds, s)) = &pt.cond_list {
        if n != "peer" {
            p.error(
                s.clone(),
                format!("dbus rule: invalid conditional group {n}=()"),
            );
            return Err(Bail);
        }
        for c in conds {
            check(p, c, s, true)?;
            peer.push(c.clone());
        }
    }
    let has = |n: &str| set.contains_key(n);
    let name_local = set.get("name") == Some(&false);
    let message = has("path")
        || has("interface")
        || has("member")
        || has("label")
        || (has("name") && !name_local);
    let service = has("name") && name_local;
    if message && service {
        p.error(
            start.clone(),
            "dbus rule contains message conditionals and service conditionals",
        );
        return Err(Bail);
    }
    let perm = |x: &str| perms.iter().any(|q| q == x);
    let bind = perm("bind");
    let sendrecv = perm("send") || perm("receive") || perm("read") || perm("write");
    if message && bind {
        p.error(
            start.clone(),
            "dbus \"bind\" access cannot be used with message rule conditionals",
        );
        return Err(Bail);
    }
    if service && sendrecv {
        p.error(start.clone(), "dbus \"send\" and/or \"receive\" accesses cannot be used with service rule conditionals");
        return Err(Bail);
    }
    if perm("eavesdrop")
        && (has("path") || has("interface") || has("member") || has("label") || has("name"))
    {
        p.error(
            start.clone(),
            "dbus \"eavesdrop\" access can only contain a bus conditional",
        );
        return Err(Bail);
    }
    let conds = pt.conds.iter().map(|c| c.0.clone()).collect();
    push(
        prof,
        prefix,
        RuleKind::Dbus(DbusRule { perms, conds, peer }),
        start,
    );
    Ok(())
}

const NET_PERMS: &[&str] = &[
    "create", "bind", "listen", "accept", "connect", "shutdown", "getattr", "setattr", "getopt",
    "setopt", "send", "receive", "read", "write",
];

pub(crate) fn unix(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some()
        || !pt.ids_before.is_empty()
        || !pt.ids_after.is_empty()
        || pt.arrow.is_some()
    {
        return Err(syntax(p, start, "unix"));
    }
    if !no_owner(p, prefix, "unix", &start) {
        return Err(Bail);
    }
    let perms = match &pt.perms {
        Some(v) => check_perm_words(p, v, NET_PERMS, Some(("receive", "send")), "unix", &start)?,
        None => vec![],
    };
    no_dups(p, &pt.conds, &[], "unix")?;
    no_set_ops(p, &pt, &[], "unix", &start)?;
    let mut conds = Vec::new();
    for (c, s) in &pt.conds {
        unix_cond(p, ctx, c, s, false)?;
        conds.push(c.clone());
    }
    let mut peer = Vec::new();
    if let Some((n, pc, s)) = &pt.cond_list {
        if n != "peer" {
            p.error(
                s.clone(),
                format!("unix rule: invalid conditional group {n}=()"),
            );
            return Err(Bail);
        }
        let v: Vec<(Cond, Span)> = pc.iter().map(|c| (c.clone(), s.clone())).collect();
        no_dups(p, &v, &[], "unix peer")?;
        for c in pc {
            unix_cond(p, ctx, c, s, true)?;
            peer.push(c.clone());
        }
    }
    if !peer.is_empty() && !perms.is_empty() {
        let bad = perms.iter().any(|q| {
            matches!(
                q.as_str(),
                "create"
                    | "bind"
                    | "listen"
                    | "shutdown"
                    | "getattr"
                    | "setattr"
                    | "getopt"
                    | "setopt"
            )
        });
        if bad {
            p.error(start.clone(), "unix socket 'create', 'shutdown', 'setattr', 'getattr', 'bind', 'listen', 'setopt', and/or 'getopt' accesses cannot be used with peer socket conditionals");
            return Err(Bail);
        }
    }
    push(
        prof,
        prefix,
        RuleKind::Unix(UnixRule { perms, conds, peer }),
        start,
    );
    Ok(())
}

/// One unix conditional (upstream `af_unix.cc` / `af_rule.cc` tables):
/// `addr` either side, `type`/`protocol` local only, `label` peer only;
/// all with `=` and a single value.
fn unix_cond(p: &mut Parser, ctx: &ProfileCtx, c: &Cond, s: &Span, peer: bool) -> PResult<()> {
    let side_ok = match c.name.as_str() {
        "addr" => true,
        "type" | "protocol" => !peer,
        "label" => peer,
        n => {
            let what = if peer {
                "peer conditional"
            } else {
                "conditional"
            };
            p.error(s.clone(), format!("unix rule: invalid {what} '{n}'"));
            return Err(Bail);
        }
    };
    if !side_ok {
        let msg = if peer {
            format!(
                "unix rule: '{}' conditional is not allowed in the peer expression",
                c.name
            )
        } else {
            format!(
                "unix rule: '{}' conditional is only valid in the peer expression",
                c.name
            )
        };
        p.error(s.clone(), msg);
        return Err(Bail);
    }
    if c.name == "protocol" {
        p.error(
            s.clone(),
            "socket rule: 'protocol' conditional is not currently supported",
        );
        return Err(Bail);
    }
    if c.is_in {
        p.error(
            s.clone(),
            format!(
                "unix rule: operator used is not allowed in '{}' socket conditional",
                c.name
            ),
        );
        return Err(Bail);
    }
    if c.values.len() > 1 {
        p.error(
            s.clone(),
            format!(
                "unix rule: conditional '{}' only supports a single value",
                c.name
            ),
        );
        return Err(Bail);
    }
    let Some(v) = c.values.first() else {
        p.error(
            s.clone(),
            format!("unix rule: conditional '{}' needs a value", c.name),
        );
        return Err(Bail);
    };
    match c.name.as_str() {
        "type" => {
            if !tables::SOCK_TYPES.contains(&v.as_str()) {
                p.error(s.clone(), format!("socket rule: invalid socket type '{v}'"));
                return Err(Bail);
            }
        }
        "addr" => {
            if !(v.starts_with('@') || v == "none" || v == "auto") {
                p.error(
                    s.clone(),
                    format!("unix rule: invalid value for addr='{v}'"),
                );
                return Err(Bail);
            }
            pattern(p, ctx, v, s)?;
        }
        _ => {
            pattern(p, ctx, v, s)?;
        }
    }
    Ok(())
}

pub(crate) fn network(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some() || !pt.ids_after.is_empty() || pt.arrow.is_some() || pt.ids_before.len() > 2
    {
        return Err(syntax(p, start, "network"));
    }
    let a = no_priority(p, prefix, "network", &start);
    let b = no_owner(p, prefix, "network", &start);
    if !(a && b) {
        return Err(Bail);
    }
    let perms = match &pt.perms {
        Some(v) => check_perm_words(
            p,
            v,
            NET_PERMS,
            Some(("receive", "send")),
            "network",
            &start,
        )?,
        None => vec![],
    };
    let mut rule = NetworkRule {
        perms: perms.clone(),
        ..Default::default()
    };
    let check_conds = |p: &mut Parser,
                       conds: &[(Cond, Span)],
                       out: &mut Vec<Cond>,
                       is_peer: bool|
     -> PResult<()> {
        for (c, s) in conds {
            if c.name != "label" && c.is_in {
                p.error(
                    s.clone(),
                    "unsupported operator used in conditions of network rules",
                );
                return Err(Bail);
            }
            match c.name.as_str() {
                "label" => cond_pattern(p, ctx, c, s)?,
                "ip" => {
                    for v in &c.values {
                        if v != "none" && v.parse::<std::net::IpAddr>().is_err() {
                            p.error(s.clone(), format!("network invalid ip='{v}'"));
                            return Err(Bail);
                        }
                    }
                    if c.values.len() != 1 {
                        p.error(s.clone(), "network ip conditional accepts a single value");
                        return Err(Bail);
                    }
                }
                "port" => {
                    for v in &c.values {
                        if !valid_port(v) {
                            p.error(s.clone(), format!("network invalid port='{v}'"));
                            return Err(Bail);
                        }
                    }
                    if c.values.len() != 1 {
                        p.error(s.clone(), "network port conditional accepts a single value");
                        return Err(Bail);
                    }
                }
                "interface" => {
                    if is_peer {
                        p.error(
                            s.clone(),
                            "interface cannot be set for peer in network rules",
                        );
                        return Err(Bail);
                    }
                    cond_pattern(p, ctx, c, s)?
                }
                n => {
                    p.error(
                        s.clone(),
                        format!("invalid network rule conditional \"{n}\""),
                    );
                    return Err(Bail);
                }
            }
            out.push(c.clone());
        }
        Ok(())
    };
    no_dups(p, &pt.conds, &[], "network")?;
    no_set_ops(p, &pt, &["label"], "network", &start)?;
    if let Some((_, pc, s)) = &pt.cond_list {
        let v: Vec<(Cond, Span)> = pc.iter().map(|c| (c.clone(), s.clone())).collect();
        no_dups(p, &v, &[], "network peer")?;
    }
    let mut local = Vec::new();
    check_conds(p, &pt.conds, &mut local, false)?;
    let mut peer = Vec::new();
    if let Some((n, pc, s)) = &pt.cond_list {
        if n != "peer" {
            p.error(
                s.clone(),
                format!("network rule: invalid conditional group {n}=()"),
            );
            return Err(Bail);
        }
        let pcs: Vec<(Cond, Span)> = pc.iter().map(|c| (c.clone(), s.clone())).collect();
        check_conds(p, &pcs, &mut peer, true)?;
    }
    let has_ip_conds = local
        .iter()
        .chain(peer.iter())
        .any(|c| c.name == "ip" || c.name == "port")
        || !peer.is_empty()
        || !local.is_empty();
    match pt.ids_before.len() {
        0 => {}
        1 => {
            let (x, s) = &pt.ids_before[0];
            if !tables::network_valid(x, None) {
                p.error(s.clone(), "Invalid network entry.");
                return Err(Bail);
            }
            if has_ip_conds && tables::FAMILIES.contains(&x.as_str()) && x != "inet" && x != "inet6"
            {
                p.error(
                    s.clone(),
                    "network family does not support local or peer conditionals",
                );
                return Err(Bail);
            }
            if tables::FAMILIES.contains(&x.as_str()) {
                rule.domain = Some(x.clone());
            } else if matches!(x.as_str(), "tcp" | "udp" | "icmp") {
                rule.protocol = Some(x.clone());
            } else {
                rule.sock_type = Some(x.clone());
            }
        }
        _ => {
            let (x, s) = &pt.ids_before[0];
            let (y, _) = &pt.ids_before[1];
            if !tables::network_valid(x, Some(y)) {
                p.error(s.clone(), "Invalid network entry.");
                return Err(Bail);
            }
            if has_ip_conds && x != "inet" && x != "inet6" {
                p.error(
                    s.clone(),
                    "network family does not support local or peer conditionals",
                );
                return Err(Bail);
            }
            rule.domain = Some(x.clone());
            if tables::SOCK_TYPES.contains(&y.as_str()) {
                rule.sock_type = Some(y.clone());
            } else {
                rule.protocol = Some(y.clone());
            }
        }
    }
    if !peer.is_empty() && !perms.is_empty() {
        let bad = perms.iter().any(|q| {
            matches!(
                q.as_str(),
                "create"
                    | "bind"
                    | "listen"
                    | "shutdown"
                    | "getattr"
                    | "setattr"
                    | "getopt"
                    | "setopt"
            )
        });
        if bad {
            p.error(start.clone(), "network 'create', 'shutdown', 'setattr', 'getattr', 'bind', 'listen', 'setopt', and/or 'getopt' accesses cannot be used with peer socket conditionals");
            return Err(Bail);
        }
    }
    rule.conds = local;
    rule.peer = peer;
    push(prof, prefix, RuleKind::Network(rule), start);
    Ok(())
}

fn valid_port(v: &str) -> bool {
    let num = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u32>().ok().filter(|n| *n <= 65535)
    };
    if let Some((a, b)) = v.split_once('-') {
        match (num(a), num(b)) {
            (Some(x), Some(y)) => x <= y,
            _ => false,
        }
    } else {
        num(v).is_some()
    }
}

pub(crate) fn mount(
    p: &mut Parser,
    prof: &mut Profile,
    ctx: &ProfileCtx,
    prefix: &Prefix,
    kind: &str,
    items: Vec<(Item, Span)>,
    start: Span,
) -> PResult<()> {
    let pt = split(items);
    if pt.bad.is_some() || pt.perms.is_some() || pt.cond_list.is_some() {
        return Err(syntax(p, start, kind));
    }
    no_set_ops(p, &pt, &[], "mount", &start)?;
    if !no_owner(p, prefix, "mount", &start) {
        return Err(Bail);
    }
    let mut ids = pt.ids_before.clone();
    ids.extend(pt.ids_after.clone());
    if ids.len() > 1 {
        return Err(syntax(p, start, kind));
    }
    if !pt.ids_before.is_empty() && !pt.conds.is_empty() {
        // conds must come before the source
        return Err(syntax(p, start, kind));
    }
    let mk = match kind {
        "mount" => MountKind::Mount,
        "remount" => MountKind::Remount,
        "pivot_root" => MountKind::PivotRoot,
        _ => MountKind::Umount,
    };
    if pt.arrow.is_some() && !matches!(mk, MountKind::Mount | MountKind::PivotRoot) {
        return Err(syntax(p, start, kind));
    }
    if pt.arrow.is_some() && pt.after_arrow_ids.len() != 1 {
        return Err(syntax(p, start, kind));
    }
    if !pt.after_arrow_conds.is_empty() {
        if mk == MountKind::PivotRoot {
            return Err(syntax(p, start, kind));
        }
        p.error(
            start.clone(),
            "mount point conditions not currently supported",
        );
        return Err(Bail);
    }
    let mut conds = Vec::new();
    let mut oldroot = None;
    if mk == MountKind::PivotRoot {
        for (c, s) in &pt.conds {
            if c.name != "oldroot" {
                p.error(
                    s.clone(),
                    format!("invalid pivotroot conditional '{}'", c.name),
                );
                return Err(Bail);
            }
            if let Some(v) = c.values.first() {
                oldroot = Some(pattern(p, ctx, v, s)?);
            }
        }
    } else {
        crate::mount::check_conds(p, mk, &pt.conds, &start)?;
        conds = pt.conds.iter().map(|c| c.0.clone()).collect();
    }
    let source = match ids.first() {
        Some((x, s)) => Some(pattern(p, ctx, x, s)?),
        None => None,
    };
    let target = match pt.after_arrow_ids.first() {
        Some((x, s)) => Some(pattern(p, ctx, x, s)?),
        None => None,
    };
    if mk != MountKind::PivotRoot {
        crate::mount::check_rule(p, mk, &conds, source.as_ref(), target.as_ref(), &start)?;
    }
    push(
        prof,
        prefix,
        RuleKind::Mount(MountRule {
            kind: mk,
            conds,
            source,
            target,
            oldroot,
        }),
        start,
    );
    Ok(())
}

// ----------------------------------------------------------------------
// profile-level checks

pub(crate) fn check_profile(p: &mut Parser, prof: &mut Profile) {
    // duplicate hats / child profiles
    let mut seen = std::collections::BTreeMap::new();
    for c in &prof.children {
        if let Some(prev) = seen.insert(c.name.clone(), c.span.clone()) {
            let _ = prev;
            p.error(
                c.span.clone(),
                format!(
                    "Profile '{}' defined twice (hat or child profile of '{}')",
                    c.name, prof.name
                ),
            );
        }
    }
    crate::xmode::check_conflicts(p, prof);
}

/// Reject a conditional given twice (upstream: "... can only be specified once").
fn no_dups(p: &mut Parser, conds: &[(Cond, Span)], multi: &[&str], class: &str) -> PResult<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (c, s) in conds {
        if multi.contains(&c.name.as_str()) {
            continue;
        }
        if !seen.insert(c.name.clone()) {
            p.error(
                s.clone(),
                format!(
                    "{class} conditional '{}' can only be specified once",
                    c.name
                ),
            );
            return Err(Bail);
        }
    }
    Ok(())
}

/// Reject `:=` except on the named conditionals.
fn no_set_ops(
    p: &mut Parser,
    pt: &Parts,
    allowed: &[&str],
    class: &str,
    span: &Span,
) -> PResult<()> {
    if let Some((n, _)) = pt
        .set_ops
        .iter()
        .find(|(n, _)| !allowed.contains(&n.as_str()))
    {
        p.error(
            span.clone(),
            format!("only \"=\" allowed in conditions of {class} rules ('{n}:=' given)"),
        );
        return Err(Bail);
    }
    Ok(())
}
