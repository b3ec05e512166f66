//! The AppArmor policy language in pure Rust.
//!
//! See `ARCHITECTURE.md` at the repository root for what this crate owns.
//!
//! Entry points:
//! - [`parse_str`]: parse and validate policy text, returning the AST and
//!   every diagnostic (the parser never stops at the first error and never
//!   panics);
//! - [`load_file`]: the same for a file on disk (or `-` for stdin), resolving
//!   `include` against [`ParseOptions::include_dirs`];
//! - [`profile_names`]: the names `apparmor_parser -N` prints;
//! - [`from_toml`]: bane's simplified TOML language compiled to a profile;
//! - [`suggest`]: what a recording needs that a profile denies, and editing
//!   profile texts (adding rules, complain/enforce);
//! - [`review`]: the aa-logprof-like interactive review of a recording.
//!
//! The AST lives in [`ast`].

pub mod aare;
pub mod ast;
pub mod eval;
pub mod from_toml;
pub mod generate;
mod lexer;
mod mount;
mod parser;
pub mod review;
mod rules;
mod source;
pub mod suggest;
mod tables;
mod vars;
mod xmode;

pub use ast::{Diagnostic, Policy, Severity, Span};

use std::path::{Path, PathBuf};

/// Options for parsing.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Search path for `include <...>` (`-I DIR`), in order.
    pub include_dirs: Vec<PathBuf>,
}

/// Parse and validate policy text. `name` is used in diagnostics.
pub fn parse_str(src: &str, name: &str, opts: &ParseOptions) -> (Policy, Vec<Diagnostic>) {
    let (policy, diags, _) = parse_with_layout(src, name, opts);
    (policy, diags)
}

/// [`parse_str`], and where the profiles of `src` itself sit in it.
pub(crate) fn parse_with_layout(
    src: &str,
    name: &str,
    opts: &ParseOptions,
) -> (Policy, Vec<Diagnostic>, Vec<parser::ProfileLayout>) {
    if src.len() > source::MAX_FILE_SIZE {
        let d = Diagnostic {
            severity: Severity::Error,
            span: Span {
                file: name.into(),
                line: 1,
                column: 1,
            },
            message: format!("input larger than {} bytes", source::MAX_FILE_SIZE),
        };
        return (Policy::default(), vec![d], Vec::new());
    }
    let mut p = parser::Parser::new(source::Source::new(name, src), opts);
    p.parse_policy();
    check_policy(&mut p);
    (p.policy, p.diags, p.layouts)
}

/// Policy-wide checks: duplicate profiles.
fn check_policy(p: &mut parser::Parser) {
    let mut seen = std::collections::BTreeMap::new();
    let profs: Vec<(String, Span)> = p
        .policy
        .profiles
        .iter()
        .map(|x| {
            (
                format!("{}:{}", x.namespace.clone().unwrap_or_default(), x.name),
                x.span.clone(),
            )
        })
        .collect();
    for (n, s) in profs {
        if seen.insert(n.clone(), s.clone()).is_some() {
            let name = n.split_once(':').map(|x| x.1.to_string()).unwrap_or(n);
            p.error(s, format!("Profile '{name}' is defined more than once"));
        }
    }
}

/// Errors reading a policy file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("could not read '{path}'")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read, parse and validate a policy file (`-` reads stdin).
pub fn load_file(path: &Path, opts: &ParseOptions) -> Result<(Policy, Vec<Diagnostic>), LoadError> {
    let (text, name) = if path == Path::new("-") {
        use std::io::Read;
        let mut buf = Vec::new();
        std::io::stdin()
            .take(source::MAX_FILE_SIZE as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| LoadError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        (String::from_utf8_lossy(&buf).into_owned(), "-".to_string())
    } else {
        let t = parser::read_policy_file(path).map_err(|e| LoadError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        (t, path.display().to_string())
    };
    Ok(parse_str(&text, &name, opts))
}

/// The profile names as `apparmor_parser -N` prints them (`profile//hat`).
pub fn profile_names(policy: &Policy) -> Vec<String> {
    fn walk(prefix: &str, p: &ast::Profile, out: &mut Vec<String>) {
        let name = if prefix.is_empty() {
            match &p.namespace {
                Some(ns) => format!(":{ns}://{}", p.name),
                None => p.name.clone(),
            }
        } else {
            format!("{prefix}//{}", p.name)
        };
        out.push(name.clone());
        // apparmor_parser keeps hats and child profiles in a table sorted
        // by name
        let mut kids: Vec<&ast::Profile> = p.children.iter().collect();
        kids.sort_by(|a, b| a.name.cmp(&b.name));
        for c in kids {
            walk(&name, c, out);
        }
    }
    let mut out = Vec::new();
    let mut top: Vec<&ast::Profile> = policy.profiles.iter().collect();
    top.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for p in top {
        walk("", p, &mut out);
    }
    out
}

/// Collapse repeated `/` (upstream `filter_slashes`), used to compare paths.
pub(crate) fn aare_norm(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = '\0';
    for c in s.chars() {
        if c == '/' && prev == '/' {
            continue;
        }
        out.push(c);
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests;
