//! Variable expansion and AARE syntax checks.
//!
//! As upstream (`variable::expand_by_alternation`), a set variable with
//! several values expands to an alternation `{a,b}` in place, so expansion is
//! linear in the size of the values, never a cartesian product. The result is
//! still bounded ([`MAX_EXPANSION`]) with an error, and self-references are
//! detected.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Profile, Span};
use crate::lexer::Tok;
use crate::parser::{var_name, Bail, Parser};

/// Largest expanded string accepted, in bytes.
pub const MAX_EXPANSION: usize = 4 * 1024 * 1024;

/// The built-in variables of the profile being parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProfileCtx {
    pub builtins: BTreeMap<String, Vec<String>>,
}

impl ProfileCtx {
    pub fn new(_p: &Parser, prof: &Profile) -> ProfileCtx {
        let mut b = BTreeMap::new();
        b.insert("profile_name".to_string(), vec![escape_re(&prof.name)]);
        let attach = match &prof.attachment {
            Some(a) => Some(a.clone()),
            None if prof.name.starts_with('/') => Some(prof.name.clone()),
            None => None,
        };
        if let Some(a) = attach {
            b.insert("attach_path".to_string(), vec![a.clone()]);
            b.insert("exec_path".to_string(), vec![a]);
        }
        ProfileCtx { builtins: b }
    }
}

fn escape_re(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            out.push(c);
            if let Some(n) = it.next() {
                out.push(n);
            }
            continue;
        }
        if "{}[]*?".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Expand every `@{VAR}` of `raw`. Errors are reported at `span`.
pub(crate) fn expand(
    p: &mut Parser,
    ctx: &ProfileCtx,
    raw: &str,
    span: &Span,
) -> Result<String, Bail> {
    let mut stack = BTreeSet::new();
    let mut memo = BTreeMap::new();
    match expand_inner(p, ctx, raw, &mut stack, &mut memo, 0) {
        Ok(s) => Ok(s),
        Err(msg) => {
            p.error(span.clone(), msg);
            Err(Bail)
        }
    }
}

fn lookup<'a>(p: &'a Parser, ctx: &'a ProfileCtx, name: &str) -> Option<&'a Vec<String>> {
    if let Some(v) = ctx.builtins.get(name) {
        return Some(v);
    }
    p.vars.get(name)
}

fn expand_inner(
    p: &Parser,
    ctx: &ProfileCtx,
    raw: &str,
    stack: &mut BTreeSet<String>,
    memo: &mut BTreeMap<String, Vec<String>>,
    depth: usize,
) -> Result<String, String> {
    if depth > 64 {
        return Err("variable expansion nested too deeply".into());
    }
    if !raw.contains('@') {
        return Ok(raw.to_string());
    }
    let too_big = || format!("variable expansion exceeds {MAX_EXPANSION} bytes");
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(c);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '@' && chars.get(i + 1) == Some(&'{') {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '}' {
                j += 1;
            }
            if j >= chars.len() {
                return Err(format!("unterminated variable reference in '{raw}'"));
            }
            let name: String = chars[i + 2..j].iter().collect();
            if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && !name.contains(',')
            {
                return Err(format!(
                    "Variable '@{{{name}}}' must start with alphabet letters"
                ));
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                if name.contains(',') {
                    // `@{a,b}`: kept literally as an alternation (upstream
                    // deprecates but accepts it)
                    out.push(c);
                    i += 1;
                    continue;
                }
                return Err(format!(
                    "Variable '@{{{name}}}' contains invalid characters"
                ));
            }
            let parts = match memo.get(&name) {
                Some(v) => v.clone(),
                None => {
                    let Some(vals) = lookup(p, ctx, &name) else {
                        if p.bools.contains_key(&name) {
                            return Err(format!("Variable {name} is not a set variable"));
                        }
                        return Err(format!(
                            "Found reference to variable {name}, but is never declared"
                        ));
                    };
                    if stack.contains(&name) {
                        return Err(format!("Variable @{{{name}}} is referenced recursively"));
                    }
                    stack.insert(name.clone());
                    let mut parts = Vec::new();
                    let mut total = 0usize;
                    for v in vals.clone() {
                        let e = expand_inner(p, ctx, &v, stack, memo, depth + 1)?;
                        total += e.len() + 1;
                        if total > MAX_EXPANSION {
                            return Err(too_big());
                        }
                        parts.push(e);
                    }
                    stack.remove(&name);
                    memo.insert(name.clone(), parts.clone());
                    parts
                }
            };
            // as upstream: no doubled '/' around the reference
            let trim_lead = out.ends_with('/') && out.chars().any(|c| c != '/');
            let trim_trail = chars.get(j + 1) == Some(&'/');
            let mut seen = BTreeSet::new();
            let mut alts = Vec::new();
            for mut v in parts {
                if trim_lead {
                    v = trim_slashes(&v, true);
                }
                if trim_trail {
                    v = trim_slashes(&v, false);
                }
                if seen.insert(v.clone()) {
                    alts.push(v);
                }
            }
            if alts.len() == 1 {
                out.push_str(&alts[0]);
            } else {
                out.push('{');
                out.push_str(&alts.join(","));
                out.push('}');
            }
            if out.len() > MAX_EXPANSION {
                return Err(too_big());
            }
            i = j + 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

/// Remove leading (`lead`) or trailing '/' of a value; when the value
/// begins (ends) with an alternation, of each of its alternatives.
fn trim_slashes(v: &str, lead: bool) -> String {
    if lead {
        if let Some(rest) = v.strip_prefix('{') {
            if let Some(close) = matching_close(rest) {
                let inner = &rest[..close];
                let after = &rest[close + 1..];
                let alts: Vec<String> = split_top(inner)
                    .iter()
                    .map(|a| trim_slashes(a, true))
                    .collect();
                return format!("{{{}}}{after}", alts.join(","));
            }
        }
        v.trim_start_matches('/').to_string()
    } else {
        if v.ends_with('}') {
            if let Some(open) = matching_open(v) {
                let before = &v[..open];
                let inner = &v[open + 1..v.len() - 1];
                let alts: Vec<String> = split_top(inner)
                    .iter()
                    .map(|a| trim_slashes(a, false))
                    .collect();
                return format!("{before}{{{}}}", alts.join(","));
            }
        }
        v.trim_end_matches('/').to_string()
    }
}

/// Index in `s` of the `}` closing an alternation opened just before `s`.
fn matching_close(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Index of the `{` opening the alternation that ends `s`.
fn matching_open(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    for i in (0..b.len()).rev() {
        let escaped = i > 0 && b[i - 1] == b'\\';
        match b[i] {
            b'}' if !escaped => depth += 1,
            b'{' if !escaped => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Split an alternation body at its top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Check AARE syntax (the errors of upstream `convert_aaregex_to_pcre`).
pub(crate) fn check_aare(s: &str) -> Result<(), String> {
    const MAX_ALT_DEPTH: usize = 50;
    let mut counts: Vec<usize> = vec![0];
    let mut in_class = false;
    let mut escape = false;
    for c in s.chars() {
        if escape {
            escape = false;
            continue;
        }
        match c {
            '\\' => escape = true,
            '[' => in_class = true,
            ']' => {
                if !in_class {
                    return Err(format!("Regex grouping error: Invalid close ], no matching open [ detected in '{s}'"));
                }
                in_class = false;
            }
            '{' if !in_class => {
                counts.push(0);
                if counts.len() > MAX_ALT_DEPTH {
                    return Err(format!(
                        "Regex grouping error: Exceeded maximum nesting of {{}} in '{s}'"
                    ));
                }
            }
            '}' if !in_class => {
                if counts.len() <= 1 {
                    return Err(format!("Regex grouping error: Invalid close }}, no matching open {{ detected in '{s}'"));
                }
                if counts.pop() == Some(0) {
                    return Err(format!(
                        "Regex grouping error: Invalid number of items between {{}} in '{s}'"
                    ));
                }
            }
            ',' if !in_class && counts.len() > 1 => {
                if let Some(l) = counts.last_mut() {
                    *l += 1;
                }
            }
            _ => {}
        }
    }
    if in_class || counts.len() > 1 {
        return Err(format!(
            "Regex grouping error: Unclosed grouping or character class in '{s}'"
        ));
    }
    if escape {
        return Err(format!(
            "Regex error: trailing '\\' escape character in '{s}'"
        ));
    }
    Ok(())
}

/// `a OP b` in an if-expression.
pub(crate) fn compare(
    p: &mut Parser,
    span: &Span,
    a: &str,
    op: &Tok,
    b: &str,
) -> Result<bool, Bail> {
    let la = get_set(p, span, a)?;
    let lb = get_set(p, span, b)?;
    match op {
        Tok::InOp => return Ok(la.is_subset(&lb)),
        Tok::EqOp => return Ok(la == lb),
        Tok::NeOp => return Ok(la != lb),
        _ => {}
    }
    let num = |s: &BTreeSet<String>| -> Option<i64> {
        if s.len() != 1 {
            return None;
        }
        let v = s.iter().next()?;
        parse_c_long(v)
    };
    match (num(&la), num(&lb)) {
        (Some(x), Some(y)) => Ok(match op {
            Tok::Gt => x > y,
            Tok::Ge => x >= y,
            Tok::Lt => x < y,
            _ => x <= y,
        }),
        (None, None) => Ok(match op {
            Tok::Gt => la > lb,
            Tok::Ge => la >= lb,
            Tok::Lt => la < lb,
            _ => la <= lb,
        }),
        _ => {
            p.error(span.clone(), "Can only compare numbers with numbers");
            Err(Bail)
        }
    }
}

fn parse_c_long(v: &str) -> Option<i64> {
    let (neg, t) = match v.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { -n } else { n })
}

fn get_set(p: &mut Parser, span: &Span, v: &str) -> Result<BTreeSet<String>, Bail> {
    let is_var = v.starts_with("@{")
        && v.ends_with('}')
        && v[2..v.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_var {
        return Ok([v.to_string()].into_iter().collect());
    }
    let name = var_name(v);
    let Some(vals) = p.vars.get(&name).cloned() else {
        p.error(span.clone(), format!("Error retrieving variable {v}"));
        return Err(Bail);
    };
    let ctx = ProfileCtx::default();
    let mut out = BTreeSet::new();
    for val in vals {
        let mut st = BTreeSet::new();
        st.insert(name.clone());
        match expand_inner(p, &ctx, &val, &mut st, &mut BTreeMap::new(), 0) {
            Ok(e) => {
                out.insert(e);
            }
            Err(m) => {
                p.error(span.clone(), m);
                return Err(Bail);
            }
        }
    }
    Ok(out)
}
