//! Conflicting exec modes between rules of one profile.
//!
//! Upstream merges the rules of a profile into one automaton and rejects
//! the policy when one path can get two different exec transitions:
//! - two rules with the same path and different `x` modes (or targets);
//! - two *globbing* rules whose patterns overlap (`/bin/*` and `/bin/**`,
//!   `/a*` and `/*b`) with different `x` modes.
//!
//! A rule with a literal path wins over any glob, so a literal and a glob
//! never conflict (upstream's "exact match" dominance). Overlap of two globs
//! is decided on their token sequences with a small product search
//! (bounded; beyond the bound the rules are assumed not to conflict).
//!
//! `change_profile` rules conflict when the same exec path and target are
//! given once `safe` and once `unsafe`.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{ExecMode, Profile, RuleKind};
use crate::parser::Parser;

/// Most alternatives a pattern may expand to for the overlap search.
const MAX_ALTS: usize = 64;
/// Most globbing exec rules compared pairwise.
const MAX_GLOB_RULES: usize = 2000;

struct XRule {
    path: String,
    raw: String,
    mode: (ExecMode, Option<String>),
    classes: u8,
    priority: i32,
    span: crate::ast::Span,
}

pub(crate) fn check_conflicts(p: &mut Parser, prof: &Profile) {
    let mut cp: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut xr: Vec<XRule> = Vec::new();
    for r in &prof.rules {
        if r.qualifiers.deny {
            continue;
        }
        match &r.kind {
            RuleKind::ChangeProfile(c) => {
                let Some(e) = &c.exec else { continue };
                let key = (
                    e.expanded.first().cloned().unwrap_or_default(),
                    c.target
                        .as_ref()
                        .and_then(|t| t.expanded.first().cloned())
                        .unwrap_or_else(|| "**".into()),
                );
                let unsafe_ = c.safe == Some(false);
                if let Some(old) = cp.insert(key, unsafe_) {
                    if old != unsafe_ {
                        p.error(
                            r.span.clone(),
                            format!("profile {} has conflicting safe and unsafe change_profile rules for {}", prof.name, e.raw),
                        );
                        return;
                    }
                }
            }
            RuleKind::File(f) => {
                let (Some(path), Some(e)) = (&f.path, f.exec) else {
                    continue;
                };
                let target = f
                    .target
                    .as_ref()
                    .map(|t| t.expanded.first().cloned().unwrap_or_default());
                let classes = if r.qualifiers.owner {
                    1
                } else if r.qualifiers.other {
                    2
                } else {
                    3
                };
                xr.push(XRule {
                    path: crate::aare_norm(
                        path.expanded
                            .first()
                            .map(String::as_str)
                            .unwrap_or(&path.raw),
                    ),
                    raw: path.raw.clone(),
                    mode: (e, target),
                    classes,
                    priority: r.qualifiers.priority.unwrap_or(0),
                    span: r.span.clone(),
                });
            }
            _ => {}
        }
    }
    // the profile's table of named transitions has 12 slots
    let mut names = BTreeSet::new();
    for r in &prof.rules {
        let RuleKind::File(f) = &r.kind else { continue };
        let (Some(t), Some(path)) = (&f.target, &f.path) else {
            continue;
        };
        let child = f
            .exec
            .is_some_and(|e| e.kind == crate::ast::ExecKind::Child);
        let t = t.expanded.first().cloned().unwrap_or_else(|| t.raw.clone());
        let path = path.expanded.first().cloned().unwrap_or_default();
        let key = if !t.starts_with(':') && child {
            if t == path {
                continue;
            }
            format!("{}//{t}", prof.name)
        } else {
            t
        };
        names.insert(key);
        if names.len() > 12 {
            p.error(
                r.span.clone(),
                format!(
                    "Profile {} has too many specified profile transitions.",
                    prof.name
                ),
            );
            return;
        }
    }
    // Two rules conflict when they can match the same path with different
    // exec modes, unless exactly one of them is an "exact" pattern (no
    // wildcard): the exact rule then wins (upstream `exact_match`).
    let parsed: Vec<Option<Vec<Vec<Tok>>>> = xr
        .iter()
        .take(MAX_GLOB_RULES)
        .map(|r| alternatives(&r.path))
        .collect();
    for (i, a) in xr.iter().enumerate().take(MAX_GLOB_RULES) {
        for (j, b) in xr[..i].iter().enumerate() {
            if a.classes & b.classes == 0 || a.mode == b.mode || a.priority != b.priority {
                continue;
            }
            let (ga, gb) = (is_glob(&a.path), is_glob(&b.path));
            if ga != gb {
                continue;
            }
            let overlap = a.path == b.path
                || match (&parsed[i], &parsed[j]) {
                    (Some(aa), Some(bb)) => aa.iter().any(|x| bb.iter().any(|y| intersects(x, y))),
                    _ => false,
                };
            if overlap {
                let msg = if a.path == b.path {
                    format!(
                        "profile {} has merged rule {} with conflicting x modifiers",
                        prof.name, a.raw
                    )
                } else {
                    format!(
                        "profile {} has conflicting x modifiers: '{}' overlaps '{}'",
                        prof.name, a.raw, b.raw
                    )
                };
                p.error(a.span.clone(), msg);
                return;
            }
        }
    }
}

/// Does the pattern contain a wildcard (`*`, `?`, `[^...]`)? Alternations
/// and plain character classes keep a pattern "exact".
fn is_glob(s: &str) -> bool {
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '*' | '?' => return true,
            _ => {}
        }
    }
    s.contains("[^")
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`: one character but `/`.
    One,
    /// `[...]`: (negated, members as ranges).
    Class(bool, Vec<(char, char)>),
    /// `*`
    Star,
    /// `**`
    DStar,
}

/// Expand alternations into token sequences (None when over the bound or
/// malformed).
fn alternatives(s: &str) -> Option<Vec<Vec<Tok>>> {
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let r = alt_seq(&chars, &mut pos, 0)?;
    if pos != chars.len() {
        return None;
    }
    Some(r)
}

/// Parse a sequence until `,` or `}` (not consumed) at depth > 0.
fn alt_seq(c: &[char], pos: &mut usize, depth: usize) -> Option<Vec<Vec<Tok>>> {
    if depth > 16 {
        return None;
    }
    let mut acc: Vec<Vec<Tok>> = vec![vec![]];
    while *pos < c.len() {
        let ch = c[*pos];
        match ch {
            ',' | '}' if depth > 0 => break,
            '\\' => {
                let n = *c.get(*pos + 1)?;
                acc.iter_mut().for_each(|a| a.push(Tok::Lit(n)));
                *pos += 2;
            }
            '*' => {
                if c.get(*pos + 1) == Some(&'*') {
                    while c.get(*pos) == Some(&'*') {
                        *pos += 1;
                    }
                    acc.iter_mut().for_each(|a| a.push(Tok::DStar));
                } else {
                    *pos += 1;
                    acc.iter_mut().for_each(|a| a.push(Tok::Star));
                }
            }
            '?' => {
                *pos += 1;
                acc.iter_mut().for_each(|a| a.push(Tok::One));
            }
            '[' => {
                *pos += 1;
                let neg = c.get(*pos) == Some(&'^');
                if neg {
                    *pos += 1;
                }
                let mut ranges = Vec::new();
                while *pos < c.len() && c[*pos] != ']' {
                    let mut a = c[*pos];
                    if a == '\\' {
                        *pos += 1;
                        a = *c.get(*pos)?;
                    }
                    if c.get(*pos + 1) == Some(&'-') && c.get(*pos + 2).is_some_and(|x| *x != ']') {
                        let b = c[*pos + 2];
                        ranges.push((a, b));
                        *pos += 3;
                    } else {
                        ranges.push((a, a));
                        *pos += 1;
                    }
                }
                *pos += 1; // ]
                acc.iter_mut()
                    .for_each(|a| a.push(Tok::Class(neg, ranges.clone())));
            }
            '{' => {
                *pos += 1;
                let mut options: Vec<Vec<Tok>> = Vec::new();
                loop {
                    let sub = alt_seq(c, pos, depth + 1)?;
                    options.extend(sub);
                    match c.get(*pos) {
                        Some(',') => *pos += 1,
                        Some('}') => {
                            *pos += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                let mut next = Vec::new();
                for a in &acc {
                    for o in &options {
                        let mut x = a.clone();
                        x.extend(o.iter().cloned());
                        next.push(x);
                        if next.len() > MAX_ALTS {
                            return None;
                        }
                    }
                }
                acc = next;
            }
            _ => {
                *pos += 1;
                acc.iter_mut().for_each(|a| a.push(Tok::Lit(ch)));
            }
        }
    }
    Some(acc)
}

/// The characters one token step accepts, for intersection tests.
fn class_has(neg: bool, r: &[(char, char)], c: char) -> bool {
    let inside = r.iter().any(|(a, b)| *a <= c && c <= *b);
    inside != neg
}

/// Can one character satisfy both single-character tokens?
fn chars_meet(a: &Tok, b: &Tok) -> bool {
    use Tok::*;
    // Star steps accept non-'/', DStar any.
    let lit_ok = |t: &Tok, c: char| match t {
        Lit(x) => *x == c,
        One | Star => c != '/',
        DStar => true,
        Class(n, r) => c != '/' && class_has(*n, r, c),
    };
    match (a, b) {
        (Lit(x), t) | (t, Lit(x)) => lit_ok(t, *x),
        (DStar, _) | (_, DStar) => true,
        (One | Star, One | Star) => true,
        (Class(n, r), One | Star) | (One | Star, Class(n, r)) => {
            *n || r.iter().any(|(x, y)| !(*x == '/' && *y == '/'))
        }
        (Class(n1, r1), Class(n2, r2)) => {
            if *n1 && *n2 {
                return true;
            }
            // try the members of a non-negated class
            let (pos, other) = if !*n1 { (r1, b) } else { (r2, a) };
            pos.iter().any(|(x, y)| {
                let (x, y) = (*x as u32, (*y as u32).min(*x as u32 + 256));
                (x..=y)
                    .filter_map(char::from_u32)
                    .any(|c| lit_ok(other, c) && c != '/')
            })
        }
    }
}

/// Do two token sequences match a common string?
fn intersects(a: &[Tok], b: &[Tok]) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        if !seen.insert((i, j)) {
            continue;
        }
        if i == a.len() && j == b.len() {
            return true;
        }
        let a_rep = a
            .get(i)
            .is_some_and(|t| matches!(t, Tok::Star | Tok::DStar));
        let b_rep = b
            .get(j)
            .is_some_and(|t| matches!(t, Tok::Star | Tok::DStar));
        // skip an empty repetition
        if a_rep {
            stack.push((i + 1, j));
        }
        if b_rep {
            stack.push((i, j + 1));
        }
        if let (Some(ta), Some(tb)) = (a.get(i), b.get(j)) {
            if chars_meet(ta, tb) {
                let ni = if a_rep { i } else { i + 1 };
                let nj = if b_rep { j } else { j + 1 };
                stack.push((ni, nj));
                // a repetition may also stop after this character
                if a_rep {
                    stack.push((i + 1, nj));
                }
                if b_rep {
                    stack.push((ni, j + 1));
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ov(a: &str, b: &str) -> bool {
        let x = alternatives(a).unwrap();
        let y = alternatives(b).unwrap();
        x.iter().any(|p| y.iter().any(|q| intersects(p, q)))
    }

    #[test]
    fn overlap_of_globs() {
        let cases = [
            ("/bin/*", "/bin/**", true),
            ("/bin/a*", "/bin/*b", true),
            ("/*", "/bin/cat", false),
            ("/**", "/*", true),
            ("/b*", "/*", true),
            ("/a*", "/b*", false),
            ("/{a,b}*", "/b*", true),
            ("/[ab]x", "/cx", false),
            ("/[^a]x", "/bx", true),
            ("/?", "/ab", false),
            ("/foo/*", "/bar/**", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(ov(a, b), want, "{a} vs {b}");
        }
    }
}
