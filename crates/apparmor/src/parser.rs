//! The recursive-descent parser (grammar of upstream `parser_yacc.y`).
//!
//! The parser drives the modal [`Lexer`], resolves includes textually,
//! evaluates conditionals and variable assignments as it goes (as upstream
//! does), and hands each finished rule to [`crate::rules`] for its semantic
//! checks. It never stops at the first error: a syntax error skips to the end
//! of the rule and parsing continues.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::ast::*;
use crate::lexer::{is_blank, Lexer, Mode, RuleClass, Tok};
use crate::source::{Reader, Source, MAX_FILE_SIZE, MAX_INCLUDE_DEPTH};
use crate::ParseOptions;

/// Deepest nesting of profiles, blocks and conditionals accepted.
pub const MAX_NESTING: usize = 64;
/// Total input (all includes together) accepted, in bytes.
pub const MAX_TOTAL_INPUT: usize = 64 * 1024 * 1024;

/// A rule's prefix as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefix {
    pub priority: Option<i32>,
    pub audit: bool,
    /// "allow" | "deny" | "prompt"
    pub mode: Option<&'static str>,
    /// "owner" | "other"
    pub owner: Option<&'static str>,
}

/// Unwinds to the end of the current rule after a reported error.
pub(crate) struct Bail;

type PResult<T> = Result<T, Bail>;

pub(crate) struct Parser<'o> {
    pub lx: Lexer,
    pub opts: &'o ParseOptions,
    pub diags: Vec<Diagnostic>,
    /// Set variables, name (without `@{}`) → raw values.
    pub vars: BTreeMap<String, Vec<String>>,
    pub bools: BTreeMap<String, bool>,
    pub policy: Policy,
    include_caches: Vec<HashSet<String>>,
    total_input: usize,
    nesting: usize,
    /// One token of lookahead in INITIAL mode.
    peeked: Option<(Tok, Span)>,
    pub cwd: PathBuf,
    /// Where each profile of the top-level source sits in its text (for
    /// editing it: `crate::suggest`).
    pub layouts: Vec<ProfileLayout>,
    /// The `}` that ended the last block, and whether it is in the
    /// top-level source.
    last_close: Option<(Span, bool)>,
}

/// Where a profile's header, flags and body are in the top-level text
/// (profiles read from included files have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileLayout {
    /// The header's start (`profile`, `^`, `hat` or the name): the profile's
    /// [`Profile::span`].
    pub header: Span,
    /// The `flags=(...)` (or bare `(...)`) clause: its start and the
    /// position just after its `)`.
    pub flags: Option<(Span, Span)>,
    /// The `{` opening the body.
    pub open: Span,
    /// The `}` closing the body.
    pub close: Span,
}

impl<'o> Parser<'o> {
    pub fn new(src: Source, opts: &'o ParseOptions) -> Parser<'o> {
        let total = src.text.len();
        Parser {
            lx: Lexer {
                r: Reader::new(src),
            },
            opts,
            diags: Vec::new(),
            vars: BTreeMap::new(),
            bools: BTreeMap::new(),
            policy: Policy::default(),
            include_caches: vec![HashSet::new()],
            total_input: total,
            nesting: 0,
            peeked: None,
            cwd: std::env::current_dir().unwrap_or_default(),
            layouts: Vec::new(),
            last_close: None,
        }
    }

    pub fn error(&mut self, span: Span, msg: impl Into<String>) {
        // Bound the number of diagnostics kept.
        if self.diags.len() < 1000 {
            self.diags.push(Diagnostic {
                severity: Severity::Error,
                span,
                message: msg.into(),
            });
        }
    }

    // ------------------------------------------------------------------
    // trivia and includes

    /// Skip whitespace, comments and include directives (INITIAL state).
    fn skip_trivia(&mut self) {
        loop {
            self.lx.skip_ws_nl();
            if self.lx.r.at_end() {
                if self.lx.r.pop_finished() {
                    continue;
                }
                return;
            }
            let r = &self.lx.r;
            if r.starts_with("#include") {
                let span = r.span();
                self.lx.r.bump_n(8);
                // `#include if exists`
                let exists = self.match_if_exists();
                self.include_directive(span, exists);
                continue;
            }
            if r.peek() == Some('#') {
                while let Some(c) = self.lx.r.bump() {
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            if r.starts_with("include") && r.peek_at(7).is_some_and(is_blank) {
                let span = r.span();
                self.lx.r.bump_n(7);
                let exists = self.match_if_exists();
                self.include_directive(span, exists);
                continue;
            }
            return;
        }
    }

    fn match_if_exists(&mut self) -> bool {
        let r = &self.lx.r;
        let mut i = 0;
        while r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        if i == 0 && !r.starts_with(" ") {
            // `#include<foo>` has no blank
        }
        let lit = "if";
        if !(lit
            .chars()
            .enumerate()
            .all(|(k, c)| r.peek_at(i + k) == Some(c)))
        {
            return false;
        }
        let mut j = i + 2;
        if !r.peek_at(j).is_some_and(is_blank) {
            return false;
        }
        while r.peek_at(j).is_some_and(is_blank) {
            j += 1;
        }
        let lit = "exists";
        if !(lit
            .chars()
            .enumerate()
            .all(|(k, c)| r.peek_at(j + k) == Some(c)))
        {
            return false;
        }
        if !r.peek_at(j + 6).is_some_and(is_blank) {
            return false;
        }
        self.lx.r.bump_n(j + 6);
        true
    }

    /// Read an include file name: `<a/b>`, `<"a b">`, `"a/b"` or `a/b`.
    /// Returns (name, search).
    fn read_include_name(&mut self) -> Option<(String, bool)> {
        self.lx.skip_ws_nl();
        let r = &self.lx.r;
        match r.peek()? {
            '<' => {
                let mut i = 1;
                let mut s = String::new();
                if r.peek_at(1) == Some('"') {
                    i = 2;
                    loop {
                        match r.peek_at(i) {
                            Some('"') => break,
                            Some(c) => {
                                s.push(c);
                                i += 1
                            }
                            None => return None,
                        }
                    }
                    i += 1;
                    if r.peek_at(i) != Some('>') {
                        return None;
                    }
                } else {
                    loop {
                        match r.peek_at(i) {
                            Some('>') => break,
                            Some(c) if !matches!(c, '"' | '\t' | '\r' | '\n') => {
                                s.push(c);
                                i += 1
                            }
                            _ => return None,
                        }
                    }
                    if s.is_empty() {
                        return None;
                    }
                }
                self.lx.r.bump_n(i + 1);
                Some((s.trim().to_string(), true))
            }
            '"' => {
                let mut i = 1;
                let mut s = String::new();
                loop {
                    match r.peek_at(i) {
                        Some('\\') if r.peek_at(i + 1) == Some('"') => {
                            s.push('"');
                            i += 2
                        }
                        Some('"') => break,
                        Some(c) => {
                            s.push(c);
                            i += 1
                        }
                        None => return None,
                    }
                }
                self.lx.r.bump_n(i + 1);
                Some((s.trim().to_string(), false))
            }
            _ => {
                let mut i = 0;
                let mut s = String::new();
                while let Some(c) = r.peek_at(i) {
                    if matches!(c, ' ' | '\t' | '\r' | '\n' | '"' | '!' | ',' | '<' | '>') {
                        break;
                    }
                    s.push(c);
                    i += 1;
                }
                if s.is_empty() {
                    return None;
                }
                self.lx.r.bump_n(i);
                Some((s, false))
            }
        }
    }

    fn include_directive(&mut self, span: Span, if_exists: bool) {
        let Some((name, search)) = self.read_include_name() else {
            self.error(span, "invalid include: expected <file> or \"file\"");
            // skip the rest of the line
            while let Some(c) = self.lx.r.bump() {
                if c == '\n' {
                    break;
                }
            }
            return;
        };
        if self.lx.r.depth() >= MAX_INCLUDE_DEPTH {
            self.error(
                span,
                format!(
                    "include nesting too deep (more than {MAX_INCLUDE_DEPTH} levels) at '{name}'"
                ),
            );
            return;
        }
        let mut found: Option<PathBuf> = None;
        if search {
            for dir in &self.opts.include_dirs {
                let p = dir.join(&name);
                let key = p.to_string_lossy().to_string();
                if self.cache_contains(&key) {
                    return;
                }
                if p.exists() {
                    self.cache_insert(key);
                    found = Some(p);
                    break;
                }
            }
        } else {
            if self.cache_contains(&name) {
                return;
            }
            let p = if Path::new(&name).is_absolute() {
                PathBuf::from(&name)
            } else {
                self.cwd.join(&name)
            };
            if p.exists() {
                self.cache_insert(name.clone());
                found = Some(p);
            }
        }
        let Some(path) = found else {
            if !if_exists {
                let shown = if search {
                    format!("<{name}>")
                } else {
                    format!("\"{name}\"")
                };
                self.error(span, format!("could not open include {shown}"));
            }
            return;
        };
        if path.is_dir() {
            let mut entries: Vec<(String, PathBuf)> = match std::fs::read_dir(&path) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
                    .collect(),
                Err(e) => {
                    self.error(
                        span,
                        format!("could not read include directory '{}': {e}", path.display()),
                    );
                    return;
                }
            };
            entries.sort();
            // pushed in reverse so they are read in order
            for (fname, p) in entries.into_iter().rev() {
                if is_ignored_name(&fname) || !p.is_file() {
                    continue;
                }
                let key = p.to_string_lossy().to_string();
                if self.cache_contains(&key) {
                    continue;
                }
                self.cache_insert(key);
                self.push_file(&span, &p);
            }
        } else {
            self.push_file(&span, &path);
        }
    }

    fn push_file(&mut self, span: &Span, p: &Path) {
        match read_policy_file(p) {
            Ok(text) => {
                self.total_input += text.len();
                if self.total_input > MAX_TOTAL_INPUT {
                    self.error(
                        span.clone(),
                        format!("total input exceeds {MAX_TOTAL_INPUT} bytes"),
                    );
                    return;
                }
                self.lx.r.push(Source::new(&p.to_string_lossy(), &text));
            }
            Err(e) => self.error(
                span.clone(),
                format!("could not open '{}': {e}", p.display()),
            ),
        }
    }

    fn cache_contains(&self, k: &str) -> bool {
        self.include_caches.last().is_some_and(|c| c.contains(k))
    }

    fn cache_insert(&mut self, k: String) {
        if let Some(c) = self.include_caches.last_mut() {
            c.insert(k);
        }
    }

    // ------------------------------------------------------------------
    // token access (INITIAL)

    fn next(&mut self) -> (Tok, Span) {
        if let Some(t) = self.peeked.take() {
            return t;
        }
        self.skip_trivia();
        let span = self.lx.span();
        let t = self.lx.lex_initial();
        (t, span)
    }

    fn peek(&mut self) -> &(Tok, Span) {
        if self.peeked.is_none() {
            let t = self.next();
            self.peeked = Some(t);
        }
        self.peeked.as_ref().expect("just filled")
    }

    pub(crate) fn unexpected_pub(&mut self, t: &Tok, span: Span, what: &str) -> Bail {
        self.unexpected(t, span, what)
    }

    fn unexpected(&mut self, t: &Tok, span: Span, what: &str) -> Bail {
        let msg = match t {
            Tok::Error(m) => m.clone(),
            _ => format!(
                "syntax error: unexpected {}, expecting {what}",
                t.describe()
            ),
        };
        self.error(span, msg);
        Bail
    }

    /// After an error: skip to the end of the rule (`,`) or the end of the
    /// block (`}` is left for the caller).
    fn recover(&mut self) {
        self.peeked = None;
        let mut depth = 0usize;
        loop {
            self.skip_trivia();
            match self.lx.r.peek() {
                None => return,
                Some(',') if depth == 0 => {
                    self.lx.r.bump();
                    return;
                }
                Some('{') => {
                    depth += 1;
                    self.lx.r.bump();
                }
                Some('}') => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    self.lx.r.bump();
                    if depth == 0 {
                        return;
                    }
                }
                Some('"') => {
                    self.lx.r.bump();
                    while let Some(c) = self.lx.r.bump() {
                        if c == '"' {
                            break;
                        }
                    }
                }
                Some(_) => {
                    self.lx.r.bump();
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // the file

    pub fn parse_policy(&mut self) {
        // preamble
        loop {
            let (t, span) = self.peek().clone();
            let res = match t {
                Tok::Kw("alias") | Tok::Kw("rewrite") => {
                    self.peeked = None;
                    self.parse_alias(span)
                }
                Tok::SetVar(name) => {
                    self.peeked = None;
                    self.parse_set_assign(name, span)
                }
                Tok::BoolVarAssign(name) => {
                    self.peeked = None;
                    self.parse_bool_assign(name, span)
                }
                Tok::Kw("abi") => {
                    self.peeked = None;
                    self.parse_abi(span)
                }
                _ => break,
            };
            if res.is_err() {
                self.recover();
            }
        }
        // profiles
        loop {
            let (t, span) = self.next();
            if t == Tok::Eof {
                break;
            }
            match self.parse_profile_top(t, span) {
                Ok(p) => self.policy.profiles.push(p),
                Err(Bail) => self.recover_profile(),
            }
            if self.diags.len() >= 1000 {
                break;
            }
        }
        self.policy.variables = self.vars.clone();
        self.policy.booleans = self.bools.clone();
    }

    /// After an error at profile level: skip to the close of the profile.
    fn recover_profile(&mut self) {
        self.recover();
        if self.lx.r.peek() == Some('}') {
            self.lx.r.bump();
        }
    }

    fn parse_alias(&mut self, _span: Span) -> PResult<()> {
        let (t, s) = self.next();
        let Tok::Id(from) = t else {
            return Err(self.unexpected(&t, s, "alias source path"));
        };
        let (t, s) = self.next();
        if t != Tok::Arrow {
            return Err(self.unexpected(&t, s, "'->'"));
        }
        self.lx.skip_ws_nl();
        let s = self.lx.span();
        let Some(to) = self.lx.lex_sub_id() else {
            self.error(s, "syntax error: expecting alias target");
            return Err(Bail);
        };
        let (t, s2) = self.next();
        if t != Tok::Comma {
            return Err(self.unexpected(&t, s2, "','"));
        }
        if !from.starts_with('/') {
            self.error(
                s.clone(),
                format!("alias source '{from}' must be an absolute path"),
            );
        }
        if !to.starts_with('/') {
            self.error(
                s.clone(),
                format!("alias target '{to}' must be an absolute path"),
            );
        }
        self.policy.aliases.push(Alias { from, to, span: s });
        Ok(())
    }

    fn parse_abi(&mut self, span: Span) -> PResult<()> {
        let Some((name, _search)) = self.read_include_name() else {
            self.error(span, "syntax error: expecting abi <file> or \"file\"");
            return Err(Bail);
        };
        let (t, s) = self.next();
        if t != Tok::Comma {
            return Err(self.unexpected(&t, s, "',' after abi"));
        }
        if _search && name != "kernel" && name != "default" {
            let exists = self
                .opts
                .include_dirs
                .iter()
                .any(|d| d.join(&name).is_file());
            if !exists {
                self.error(span, format!("could not find features abi <{name}>"));
            }
        } else if !_search {
            let p = if Path::new(&name).is_absolute() {
                PathBuf::from(&name)
            } else {
                self.cwd.join(&name)
            };
            if !p.is_file() {
                self.error(span, format!("could not open features abi \"{name}\""));
            }
        }
        self.policy.abi.push(name);
        Ok(())
    }

    /// `@{VAR} (=|+=|?=|:=) values...` (ASSIGN_MODE values until end of line).
    fn parse_set_assign(&mut self, var: String, span: Span) -> PResult<()> {
        let (t, s) = self.next();
        let op = match t {
            Tok::Equals => "=",
            Tok::AddAssign => "+=",
            Tok::CondAssign => "?=",
            Tok::OverrideAssign => ":=",
            _ => return Err(self.unexpected(&t, s, "'=' or '+='")),
        };
        let mut values = Vec::new();
        loop {
            self.lx.skip_blanks();
            let r = &self.lx.r;
            match r.peek() {
                None => break,
                Some('\n') => {
                    self.lx.r.bump();
                    break;
                }
                Some('#') => {
                    while let Some(c) = self.lx.r.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                    break;
                }
                Some('\\') if r.peek_at(1) == Some('\n') => {
                    self.lx.r.bump_n(2);
                }
                Some(',') => {
                    let s = self.lx.span();
                    self.error(s, "Variable declarations do not accept trailing commas");
                    return Err(Bail);
                }
                Some(_) => {
                    let s = self.lx.span();
                    match self.lx.lex_sub_id() {
                        Some(v) => values.push(v),
                        None => {
                            let c = self.lx.r.bump().unwrap_or(' ');
                            self.error(
                                s,
                                format!(
                                    "unexpected character '{}' in variable value",
                                    c.escape_default()
                                ),
                            );
                            return Err(Bail);
                        }
                    }
                }
            }
        }
        if values.is_empty() {
            self.error(
                span,
                format!("syntax error: variable {var} assigned no value"),
            );
            return Ok(());
        }
        let name = var_name(&var);
        match op {
            "+=" => match self.vars.get_mut(&name) {
                Some(v) => v.extend(values),
                None => self.error(
                    span,
                    format!("variable {var} was not previously declared, but is being assigned additional values"),
                ),
            },
            _ => self.assign(op, &var, name, VarValue::Set(values), span),
        }
        Ok(())
    }

    fn parse_bool_assign(&mut self, var: String, span: Span) -> PResult<()> {
        self.lx.skip_blanks();
        let r = &self.lx.r;
        let op = match (r.peek(), r.peek_at(1)) {
            (Some('='), _) => {
                self.lx.r.bump();
                "="
            }
            (Some('+'), Some('=')) => {
                self.lx.r.bump_n(2);
                "+="
            }
            (Some('?'), Some('=')) => {
                self.lx.r.bump_n(2);
                "?="
            }
            (Some(':'), Some('=')) => {
                self.lx.r.bump_n(2);
                ":="
            }
            _ => {
                self.error(span, "syntax error: expecting assignment");
                return Err(Bail);
            }
        };
        let mut toks = Vec::new();
        loop {
            let s = self.lx.span();
            let t = self.lx.lex_expr(true);
            match t {
                Tok::Comma => break,
                Tok::Error(m) => {
                    self.error(s, m);
                    return Err(Bail);
                }
                t => toks.push((t, s)),
            }
            if toks.len() > 10_000 {
                self.error(span, "expression too long");
                return Err(Bail);
            }
        }
        if op == "+=" {
            self.error(
                span.clone(),
                "Invalid assignment += not allowed with boolean variables",
            );
            return Ok(());
        }
        let mut ep = ExprParser {
            toks,
            pos: 0,
            depth: 0,
        };
        let v = match ep.parse_expr(self) {
            Ok(v) => v,
            Err(Bail) => return Ok(()),
        };
        if ep.pos < ep.toks.len() {
            let (t, s) = ep.toks[ep.pos].clone();
            self.unexpected(&t, s, "end of expression");
            return Ok(());
        }
        let name = var_name(&var);
        self.assign(op, &var, name, VarValue::Bool(v), span);
        Ok(())
    }

    /// `:=` overrides, `?=` sets only when undeclared, `=` declares (an error
    /// when `name` is declared already, as a set or as a boolean variable).
    fn assign(&mut self, op: &str, var: &str, name: String, value: VarValue, span: Span) {
        let declared = self.vars.contains_key(&name) || self.bools.contains_key(&name);
        match op {
            ":=" => {}
            "?=" if declared => return,
            "?=" => {}
            _ if declared => {
                self.error(span, format!("variable {var} was previously declared"));
                return;
            }
            _ => {}
        }
        match value {
            VarValue::Set(values) => {
                self.bools.remove(&name);
                self.vars.insert(name, values);
            }
            VarValue::Bool(b) => {
                self.vars.remove(&name);
                self.bools.insert(name, b);
            }
        }
    }

    // ------------------------------------------------------------------
    // profiles

    fn parse_profile_top(&mut self, t: Tok, span: Span) -> PResult<Profile> {
        match t {
            Tok::Profile => {
                let name = self.sub_id(&span)?;
                self.profile_base(name, span, ProfileKind::Profile, true, true)
            }
            Tok::Caret | Tok::Hat => {
                let name = self.sub_id(&span)?;
                self.profile_base(name, span, ProfileKind::Hat, true, true)
            }
            Tok::Id(name) => {
                let is_path = name.starts_with('/') || name.starts_with(':');
                if !is_path {
                    self.error(
                        span.clone(),
                        format!("Profile names must begin with a '/', namespace or keyword 'profile' or 'hat' (found '{name}')"),
                    );
                }
                self.profile_base(name, span, ProfileKind::Profile, false, true)
            }
            t => Err(self.unexpected(&t, span, "a profile")),
        }
    }

    fn sub_id(&mut self, span: &Span) -> PResult<String> {
        self.peeked = None;
        match self.lx.lex_sub_id() {
            Some(n) => Ok(n),
            None => {
                let s = self.lx.span();
                let c = self
                    .lx
                    .r
                    .peek()
                    .map(|c| c.escape_default().to_string())
                    .unwrap_or_else(|| "end of file".into());
                let _ = span;
                self.error(
                    s,
                    format!("syntax error: expecting a profile name, found '{c}'"),
                );
                Err(Bail)
            }
        }
    }

    /// `NAME [ATTACH] [xattrs=(...)] [flags=(...)] { rules }`
    fn profile_base(
        &mut self,
        raw_name: String,
        span: Span,
        kind: ProfileKind,
        _keyword: bool,
        _top: bool,
    ) -> PResult<Profile> {
        if self.nesting >= MAX_NESTING {
            self.error(
                span,
                format!("profiles nested too deeply (more than {MAX_NESTING} levels)"),
            );
            return Err(Bail);
        }
        let (namespace, name) = split_namespace(&raw_name);
        if raw_name.starts_with('&') {
            self.error(
                span.clone(),
                "Profile names must begin with a '/' or a namespace",
            );
        }
        if raw_name.starts_with(':') && namespace.is_none() {
            self.error(
                span.clone(),
                format!("invalid namespace in profile name '{raw_name}'"),
            );
        }
        if name.is_empty() {
            self.error(span.clone(), format!("invalid profile name '{raw_name}'"));
        }
        let mut in_root = self.lx.r.depth() == 1;
        let mut prof = Profile {
            kind,
            name,
            namespace,
            attachment: None,
            flags: Flags::default(),
            xattrs: Vec::new(),
            rules: Vec::new(),
            children: Vec::new(),
            span: span.clone(),
        };
        let (mut t, mut s) = self.next();
        match &t {
            Tok::Id(a) | Tok::SetVar(a) => {
                if !(a.starts_with('/') || a.starts_with("@{")) {
                    self.error(
                        s.clone(),
                        "Profile attachment must begin with a '/' or variable.",
                    );
                }
                prof.attachment = Some(a.clone());
                (t, s) = self.next();
            }
            _ => {}
        }
        if let Tok::CondListId(n) = &t {
            let n = n.clone();
            let conds = self.cond_list_body(&s)?;
            if n != "xattrs" {
                self.error(
                    s.clone(),
                    format!("profile id: invalid conditional group {n}=()"),
                );
            }
            if kind == ProfileKind::Hat {
                self.error(s.clone(), "hat profiles can't use xattrs matches");
            }
            for c in conds {
                let v = c.values.first().cloned().unwrap_or_default();
                prof.xattrs.push((c.name, v));
            }
            (t, s) = self.next();
        }
        // `+ identities=( ... )`
        while t == Tok::Plus {
            self.lx.skip_ws_nl();
            let s2 = self.lx.span();
            let r = &self.lx.r;
            if !r.starts_with("identities") {
                self.error(s2, "syntax error: expecting 'identities=(' after '+'");
                return Err(Bail);
            }
            self.lx.r.bump_n(10);
            self.lx.skip_ws_nl();
            if self.lx.r.peek() != Some('=') {
                self.error(s2, "syntax error: expecting '=' after identities");
                return Err(Bail);
            }
            self.lx.r.bump();
            self.lx.skip_ws_nl();
            if self.lx.r.peek() != Some('(') {
                self.error(s2, "syntax error: expecting '(' after identities=");
                return Err(Bail);
            }
            self.lx.r.bump();
            let vals = self.list_values()?;
            if vals.is_empty() {
                self.error(s2.clone(), "syntax error: empty identities list");
            }
            for (v, vs) in vals {
                if !v.starts_with('/') && v.contains(' ') {
                    self.error(
                        vs,
                        format!("Space character not allowed in identities: '{v}'"),
                    );
                }
            }
            (t, s) = self.next();
        }
        let mut flag_vals: Option<Vec<(String, Span)>> = None;
        let mut flags_at = None;
        if t == Tok::Flags {
            self.lx.skip_ws_nl();
            if self.lx.r.peek() != Some('=') {
                let s2 = self.lx.span();
                self.error(s2, "syntax error: expecting '=' after flags");
                return Err(Bail);
            }
            self.lx.r.bump();
            self.lx.skip_ws_nl();
            if self.lx.r.peek() != Some('(') {
                let s2 = self.lx.span();
                self.error(s2, "syntax error: expecting '(' after flags=");
                return Err(Bail);
            }
            self.lx.r.bump();
            flag_vals = Some(self.list_values()?);
            in_root &= self.lx.r.depth() == 1;
            flags_at = Some((s.clone(), self.lx.span()));
            (t, s) = self.next();
        } else if t == Tok::OpenParen {
            flag_vals = Some(self.list_values()?);
            in_root &= self.lx.r.depth() == 1;
            flags_at = Some((s.clone(), self.lx.span()));
            (t, s) = self.next();
        }
        if let Some(fv) = flag_vals {
            if fv.is_empty() {
                self.error(s.clone(), "syntax error: empty flags list");
            }
            self.apply_flags(&mut prof.flags, fv);
        }
        if t != Tok::Open {
            return Err(self.unexpected(&t, s, "'{'"));
        }
        in_root &= self.lx.r.depth() == 1;
        let open = s;
        self.check_profile_names(&prof);
        self.include_caches.push(HashSet::new());
        self.nesting += 1;
        let ctx = self.profile_ctx(&prof);
        // Recorded before the body so that the layouts are in text order.
        let layout_index = self.layouts.len();
        if in_root {
            self.layouts.push(ProfileLayout {
                header: span.clone(),
                flags: flags_at,
                open: open.clone(),
                close: open,
            });
        }
        let res = self.parse_rules(&mut prof, &ctx, true);
        self.nesting -= 1;
        self.include_caches.pop();
        if in_root {
            match (&res, self.last_close.take()) {
                (Ok(()), Some((close, true))) => self.layouts[layout_index].close = close,
                _ => {
                    self.layouts.remove(layout_index);
                }
            }
        }
        res?;
        crate::rules::check_profile(self, &mut prof);
        Ok(prof)
    }

    /// Expand the variables of the name, attachment and disconnected paths
    /// (only global variables are visible there).
    fn check_profile_names(&mut self, prof: &Profile) {
        let ctx = crate::vars::ProfileCtx::default();
        let span = prof.span.clone();
        let name = crate::vars::expand(self, &ctx, &prof.name, &span);
        let attach = match &prof.attachment {
            Some(a) => crate::vars::expand(self, &ctx, a, &span).ok(),
            // without an attachment the name itself is the match pattern
            None => name.ok(),
        };
        if let Some(a) = attach {
            if let Err(m) = crate::vars::check_aare(&a) {
                self.error(
                    span.clone(),
                    format!(
                        "Invalid profile name '{}' - bad regular expression: {m}",
                        prof.name
                    ),
                );
            }
        }
        for (flag, v) in [
            (
                "attach_disconnected.path",
                prof.flags.attach_disconnected_path.clone(),
            ),
            (
                "attach_disconnected.ipc",
                prof.flags.attach_disconnected_ipc.clone(),
            ),
        ] {
            let Some(v) = v else { continue };
            if let Ok(e) = crate::vars::expand(self, &ctx, &v, &span) {
                if !e.starts_with('/') {
                    self.error(
                        span.clone(),
                        format!("{flag} path must begin with a / (got '{e}')"),
                    );
                }
            }
        }
    }

    fn profile_ctx(&mut self, prof: &Profile) -> crate::vars::ProfileCtx {
        crate::vars::ProfileCtx::new(self, prof)
    }

    fn list_values(&mut self) -> PResult<Vec<(String, Span)>> {
        let mut out = Vec::new();
        loop {
            self.lx.skip_ws_nl();
            let s = self.lx.span();
            match self.lx.lex_list_value() {
                Ok(Some(v)) => out.push((v, s.clone())),
                Ok(None) => return Ok(out),
                Err(m) => {
                    self.error(s, m);
                    return Err(Bail);
                }
            }
            if out.len() > 100_000 {
                self.error(s, "list too long");
                return Err(Bail);
            }
        }
    }

    fn apply_flags(&mut self, f: &mut Flags, vals: Vec<(String, Span)>) {
        for (v, s) in vals {
            f.raw.push(v.clone());
            let mode = match v.as_str() {
                "enforce" => Some(ProfileMode::Enforce),
                "complain" => Some(ProfileMode::Complain),
                "kill" => Some(ProfileMode::Kill),
                "unconfined" => Some(ProfileMode::Unconfined),
                "prompt" => Some(ProfileMode::Prompt),
                "default_allow" => Some(ProfileMode::DefaultAllow),
                _ => None,
            };
            if let Some(m) = mode {
                if let Some(old) = f.mode {
                    if old != m {
                        self.error(
                            s,
                            format!("Profile flag '{}' conflicts with '{v}'", mode_name(old)),
                        );
                    }
                }
                f.mode = Some(m);
                continue;
            }
            let set_opt =
                |this: &mut Self, slot: &mut Option<bool>, val: bool, a: &str, b: &str| {
                    if *slot == Some(!val) {
                        this.error(s.clone(), format!("Profile flag {a} conflicts with {b}"));
                    }
                    *slot = Some(val);
                };
            match v.as_str() {
                "debug" => f.debug = true,
                "audit" => f.audit = true,
                "chroot_relative" => {
                    let mut x = f.chroot_relative;
                    set_opt(self, &mut x, true, "chroot_relative", "namespace_relative");
                    f.chroot_relative = x;
                }
                "namespace_relative" => {
                    let mut x = f.chroot_relative;
                    set_opt(self, &mut x, false, "chroot_relative", "namespace_relative");
                    f.chroot_relative = x;
                }
                "mediate_deleted" => {
                    let mut x = f.mediate_deleted;
                    set_opt(self, &mut x, true, "mediate_deleted", "delegate_deleted");
                    f.mediate_deleted = x;
                }
                "delegate_deleted" => {
                    let mut x = f.mediate_deleted;
                    set_opt(self, &mut x, false, "mediate_deleted", "delegate_deleted");
                    f.mediate_deleted = x;
                }
                "attach_disconnected" => {
                    let mut x = f.attach_disconnected;
                    set_opt(
                        self,
                        &mut x,
                        true,
                        "attach_disconnected",
                        "no_attach_disconnected",
                    );
                    f.attach_disconnected = x;
                }
                "no_attach_disconnected" => {
                    let mut x = f.attach_disconnected;
                    set_opt(
                        self,
                        &mut x,
                        false,
                        "attach_disconnected",
                        "no_attach_disconnected",
                    );
                    f.attach_disconnected = x;
                    if f.attach_disconnected_ipc.is_some()
                        || f.raw.iter().any(|r| r == "attach_disconnected.ipc")
                    {
                        self.error(s.clone(), "Profile flag attach_disconnected.ipc conflicts with no_attach_disconnected");
                    }
                }
                "chroot_attach" => {
                    let mut x = f.chroot_attach;
                    set_opt(self, &mut x, true, "chroot_attach", "chroot_no_attach");
                    f.chroot_attach = x;
                }
                "chroot_no_attach" => {
                    let mut x = f.chroot_attach;
                    set_opt(self, &mut x, false, "chroot_attach", "chroot_no_attach");
                    f.chroot_attach = x;
                }
                "interruptible" => f.interruptible = true,
                "attach_disconnected.ipc" => {
                    if f.attach_disconnected == Some(false) {
                        self.error(s.clone(), "Profile flag attach_disconnected.ipc conflicts with no_attach_disconnected");
                    }
                }
                _ => {
                    if let Some(p) = v.strip_prefix("attach_disconnected.path=") {
                        let mut x = f.attach_disconnected;
                        set_opt(
                            self,
                            &mut x,
                            true,
                            "attach_disconnected",
                            "no_attach_disconnected",
                        );
                        f.attach_disconnected = x;
                        if let Some(old) = &f.attach_disconnected_path {
                            if old != p {
                                self.error(s.clone(), format!("Profile flag attach_disconnected set to conflicting values: '{old}' and '{p}'"));
                            }
                        }
                        f.attach_disconnected_path = Some(p.to_string());
                    } else if let Some(p) = v.strip_prefix("attach_disconnected.ipc=") {
                        if f.attach_disconnected == Some(false) {
                            self.error(s.clone(), "Profile flag attach_disconnected.ipc conflicts with no_attach_disconnected");
                        }
                        if let Some(old) = &f.attach_disconnected_ipc {
                            if old != p {
                                self.error(s.clone(), format!("Profile flag attach_disconnected set to conflicting values: '{old}' and '{p}'"));
                            }
                        }
                        f.attach_disconnected_ipc = Some(p.to_string());
                    } else if let Some(sig) = v.strip_prefix("kill.signal=") {
                        match crate::tables::signal_number(sig) {
                            None => self.error(
                                s.clone(),
                                format!("unknown signal specified for kill.signal='{sig}'"),
                            ),
                            Some(n) => {
                                if let Some(old) = &f.kill_signal {
                                    if crate::tables::signal_number(old) != Some(n) {
                                        self.error(s.clone(), format!("Profile flag kill.signal set to conflicting values: '{old}' and '{sig}'"));
                                    }
                                }
                                f.kill_signal = Some(sig.to_string());
                            }
                        }
                    } else if let Some(e) = v.strip_prefix("error=") {
                        match crate::tables::errno_number(e) {
                            None => self.error(
                                s.clone(),
                                format!("unknown error code specified for error='{e}'"),
                            ),
                            Some(n) => {
                                if let Some(old) = &f.error {
                                    if crate::tables::errno_number(old) != Some(n) {
                                        self.error(s.clone(), format!("Profile flag error set to conflicting values: '{old}' and '{e}'"));
                                    }
                                }
                                f.error = Some(e.to_string());
                            }
                        }
                    } else {
                        self.error(s.clone(), format!("Invalid profile flag: {v}."));
                    }
                }
            }
        }
    }

    /// The body of `peer=(...)` / `xattrs=(...)` after the CondListId token:
    /// `= ( conds )`.
    fn cond_list_body(&mut self, span: &Span) -> PResult<Vec<Cond>> {
        self.cond_list_body_ops(span)
            .map(|v| v.into_iter().map(|c| c.0).collect())
    }

    /// Like `cond_list_body`, also telling which conditions used `:=`.
    fn cond_list_body_ops(&mut self, span: &Span) -> PResult<Vec<(Cond, bool)>> {
        self.peeked = None;
        self.lx.skip_blanks();
        if self.lx.r.peek() != Some('=') {
            self.error(span.clone(), "syntax error: expecting '='");
            return Err(Bail);
        }
        self.lx.r.bump();
        self.lx.skip_blanks();
        if self.lx.r.peek() != Some('(') {
            self.error(span.clone(), "syntax error: expecting '('");
            return Err(Bail);
        }
        self.lx.r.bump();
        let mut conds = Vec::new();
        loop {
            self.lx.skip_ws_nl();
            let s = self.lx.span();
            match self.lx.r.peek() {
                Some(')') => {
                    self.lx.r.bump();
                    return Ok(conds);
                }
                Some(',') => {
                    self.lx.r.bump();
                    continue;
                }
                None => {
                    self.error(s, "unexpected end of file in conditional list");
                    return Err(Bail);
                }
                _ => {}
            }
            // IDS_NOASSIGN
            let name = self.lx.lex_cond_name();
            let Some(name) = name else {
                let c = self.lx.r.bump().unwrap_or(' ');
                self.error(
                    s,
                    format!(
                        "unexpected character '{}' in conditional list",
                        c.escape_default()
                    ),
                );
                return Err(Bail);
            };
            self.lx.skip_blanks();
            let (is_set, has_eq) = match (self.lx.r.peek(), self.lx.r.peek_at(1)) {
                (Some('='), _) => {
                    self.lx.r.bump();
                    (false, true)
                }
                (Some(':'), Some('=')) => {
                    self.lx.r.bump_n(2);
                    (true, true)
                }
                _ => (false, false),
            };
            if !has_eq {
                conds.push((
                    Cond {
                        name,
                        values: vec![],
                        is_in: false,
                        is_list: false,
                    },
                    false,
                ));
                continue;
            }
            self.lx.skip_blanks();
            if self.lx.r.peek() == Some('(') {
                self.lx.r.bump();
                let vals = self.list_values()?;
                conds.push((
                    Cond {
                        name,
                        values: vals.into_iter().map(|v| v.0).collect(),
                        is_in: false,
                        is_list: true,
                    },
                    is_set,
                ));
            } else {
                let s = self.lx.span();
                match self.lx.lex_cond_list_value() {
                    Some(v) => conds.push((
                        Cond {
                            name,
                            values: vec![v],
                            is_in: false,
                            is_list: false,
                        },
                        is_set,
                    )),
                    None => {
                        self.error(s, "syntax error: expecting a value");
                        return Err(Bail);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // rules

    /// Parse rules up to the closing `}` (consumed).
    fn parse_rules(
        &mut self,
        prof: &mut Profile,
        ctx: &crate::vars::ProfileCtx,
        _is_profile: bool,
    ) -> PResult<()> {
        loop {
            let (t, span) = self.next();
            let r = match t {
                Tok::Close => {
                    self.last_close = Some((span, self.lx.r.depth() == 1));
                    return Ok(());
                }
                Tok::Eof => {
                    self.error(span, "syntax error: unexpected end of file, expecting '}'");
                    return Err(Bail);
                }
                Tok::Kw("abi") => self.parse_abi(span),
                Tok::Caret | Tok::Hat => {
                    let name = match self.sub_id(&span) {
                        Ok(n) => n,
                        Err(b) => {
                            self.recover_profile();
                            let _ = b;
                            continue;
                        }
                    };
                    match self.profile_base(name, span, ProfileKind::Hat, true, false) {
                        Ok(h) => {
                            prof.children.push(h);
                            Ok(())
                        }
                        Err(_) => {
                            self.recover_profile();
                            continue;
                        }
                    }
                }
                Tok::Profile => {
                    let name = match self.sub_id(&span) {
                        Ok(n) => n,
                        Err(_) => {
                            self.recover_profile();
                            continue;
                        }
                    };
                    match self.profile_base(name, span, ProfileKind::Profile, true, false) {
                        Ok(h) => {
                            prof.children.push(h);
                            Ok(())
                        }
                        Err(_) => {
                            self.recover_profile();
                            continue;
                        }
                    }
                }
                Tok::Kw("if") => self.parse_cond_rule(prof, ctx, span),
                Tok::Kw("set") => self.parse_rlimit(prof, span),
                t => self.parse_prefixed_rule(prof, ctx, t, span),
            };
            if r.is_err() {
                self.recover();
            }
            if self.diags.len() >= 1000 {
                return Err(Bail);
            }
        }
    }

    fn parse_prefix(&mut self, mut t: Tok, mut span: Span) -> PResult<(Prefix, Tok, Span)> {
        let mut p = Prefix::default();
        if t == Tok::Priority {
            // `= INTEGER`
            self.lx.skip_ws_nl();
            if self.lx.r.peek() != Some('=') {
                let s = self.lx.span();
                self.error(s, "syntax error: expecting '=' after priority");
                return Err(Bail);
            }
            self.lx.r.bump();
            self.lx.skip_ws_nl();
            let s = self.lx.span();
            let mut i = 0;
            let r = &self.lx.r;
            if matches!(r.peek(), Some('+' | '-')) {
                i = 1;
            }
            let st = i;
            while r.peek_at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            if i == st {
                self.error(s, "syntax error: priority must be an integer");
                return Err(Bail);
            }
            let txt: String = (0..i).filter_map(|k| self.lx.r.peek_at(k)).collect();
            self.lx.r.bump_n(i);
            match txt.parse::<i64>() {
                Ok(v) if v > 1000 => {
                    self.error(s, format!("invalid priority {v} > 1000"));
                    return Err(Bail);
                }
                Ok(v) if v < -1000 => {
                    self.error(s, format!("invalid priority {v} < -1000"));
                    return Err(Bail);
                }
                Ok(v) => p.priority = Some(v as i32),
                Err(_) => {
                    self.error(s, format!("invalid priority {txt}"));
                    return Err(Bail);
                }
            }
            (t, span) = self.next();
        }
        if t == Tok::Kw("audit") {
            p.audit = true;
            (t, span) = self.next();
        }
        if let Tok::Kw(k @ ("allow" | "deny" | "prompt")) = t {
            p.mode = Some(k);
            (t, span) = self.next();
        }
        if let Tok::Kw(k @ ("owner" | "user" | "other")) = t {
            p.owner = Some(if k == "other" { "other" } else { "owner" });
            (t, span) = self.next();
        }
        Ok((p, t, span))
    }

    fn parse_prefixed_rule(
        &mut self,
        prof: &mut Profile,
        ctx: &crate::vars::ProfileCtx,
        t: Tok,
        span: Span,
    ) -> PResult<()> {
        let start = span.clone();
        let (prefix, t, span) = self.parse_prefix(t, span)?;
        let quals = Qualifiers {
            priority: prefix.priority,
            audit: prefix.audit,
            quiet: false,
            deny: prefix.mode == Some("deny"),
            allow: prefix.mode == Some("allow"),
            owner: prefix.owner == Some("owner"),
            other: prefix.owner == Some("other"),
        };
        let _ = quals;
        match t {
            Tok::Open => {
                if prefix.priority.is_some_and(|p| p != 0) {
                    self.error(start.clone(), "priority is not allowed on rule blocks");
                }
                if self.nesting >= MAX_NESTING {
                    self.error(
                        span,
                        format!("blocks nested too deeply (more than {MAX_NESTING} levels)"),
                    );
                    return Err(Bail);
                }
                let mut block = Profile {
                    kind: ProfileKind::Profile,
                    name: String::new(),
                    namespace: None,
                    attachment: None,
                    flags: Flags::default(),
                    xattrs: vec![],
                    rules: vec![],
                    children: vec![],
                    span: span.clone(),
                };
                self.nesting += 1;
                let r = self.parse_rules(&mut block, ctx, false);
                self.nesting -= 1;
                r?;
                for mut rule in block.rules {
                    crate::rules::apply_block_prefix(self, &prefix, &mut rule);
                    prof.rules.push(rule);
                }
                prof.children.extend(block.children);
                Ok(())
            }
            Tok::Kw("network") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Network))?;
                crate::rules::network(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw(k @ ("mount" | "remount" | "umount" | "unmount")) => {
                let items = self.rule_items(Mode::Rule(RuleClass::Mount))?;
                crate::rules::mount(self, prof, ctx, &prefix, k, items, start)
            }
            Tok::Kw("pivot_root") => {
                let items = self.rule_items(Mode::Initial)?;
                crate::rules::mount(self, prof, ctx, &prefix, "pivot_root", items, start)
            }
            Tok::Kw("dbus") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Dbus))?;
                crate::rules::dbus(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw("signal") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Signal))?;
                crate::rules::signal(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw("ptrace") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Ptrace))?;
                crate::rules::ptrace(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw("unix") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Unix))?;
                crate::rules::unix(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw("userns") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Userns))?;
                crate::rules::userns(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw("mqueue") => {
                let items = self.rule_items(Mode::Rule(RuleClass::Mqueue))?;
                crate::rules::mqueue(self, prof, ctx, &prefix, items, start)
            }
            Tok::Kw("io_uring") => {
                let items = self.rule_items(Mode::Initial)?;
                crate::rules::io_uring(self, prof, ctx, &prefix, items, start)
            }
            Tok::All => {
                let (t, s) = self.next();
                if t != Tok::Comma {
                    return Err(self.unexpected(&t, s, "','"));
                }
                crate::rules::all(self, prof, &prefix, start)
            }
            Tok::Kw("change_profile") => self.parse_change_profile(prof, ctx, &prefix, start),
            Tok::Kw("capability") => {
                let mut caps = Vec::new();
                loop {
                    let (t, s) = self.next();
                    match t {
                        Tok::Comma => break,
                        Tok::Id(c) => caps.push((c, s)),
                        t => return Err(self.unexpected(&t, s, "a capability name or ','")),
                    }
                }
                crate::rules::capability(self, prof, &prefix, caps, start)
            }
            Tok::Kw("link") => {
                let (mut t, mut s) = self.next();
                let mut subset = false;
                if t == Tok::Kw("subset") {
                    subset = true;
                    (t, s) = self.next();
                }
                let link = match t {
                    Tok::Id(x) | Tok::SetVar(x) => x,
                    t => return Err(self.unexpected(&t, s, "a link path")),
                };
                let (t, s) = self.next();
                if t != Tok::Arrow {
                    return Err(self.unexpected(&t, s, "'->'"));
                }
                let target = self.arrow_target()?;
                let (t, s) = self.next();
                if t != Tok::Comma {
                    return Err(self.unexpected(&t, s, "','"));
                }
                crate::rules::link(self, prof, ctx, &prefix, subset, link, target, start)
            }
            Tok::Kw("file") => {
                let (t, s) = self.peek().clone();
                if t == Tok::Comma {
                    self.peeked = None;
                    return crate::rules::bare_file(self, prof, &prefix, start);
                }
                let _ = s;
                let (t, s) = self.next();
                self.file_rule_tail(prof, ctx, &prefix, t, s, start, true)
            }
            t => self.file_rule_tail(prof, ctx, &prefix, t, span, start, false),
        }
    }

    /// After `->` in INITIAL: SUB_ID_WS.
    fn arrow_target(&mut self) -> PResult<String> {
        self.peeked = None;
        self.lx.skip_ws_nl();
        let s = self.lx.span();
        match self.lx.lex_sub_id() {
            Some(v) => Ok(v),
            None => {
                self.error(s, "syntax error: expecting a target after '->'");
                Err(Bail)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn file_rule_tail(
        &mut self,
        prof: &mut Profile,
        ctx: &crate::vars::ProfileCtx,
        prefix: &Prefix,
        mut t: Tok,
        mut s: Span,
        start: Span,
        file_kw: bool,
    ) -> PResult<()> {
        let mut exec_mode = None;
        if let Tok::Kw(k @ ("safe" | "unsafe")) = t {
            exec_mode = Some(k);
            (t, s) = self.next();
        }
        match t {
            Tok::Id(path) | Tok::SetVar(path) => {
                let (t2, s2) = self.next();
                let Tok::Mode(perms) = t2 else {
                    if let Tok::Id(_) = t2 {
                        self.error(
                            s2,
                            format!("missing an end of line character? (entry: {path})"),
                        );
                        return Err(Bail);
                    }
                    return Err(self.unexpected(&t2, s2, "file permissions"));
                };
                let (mut t3, mut s3) = self.next();
                let mut target = None;
                if t3 == Tok::Arrow {
                    target = Some(self.arrow_target()?);
                    (t3, s3) = self.next();
                }
                if t3 != Tok::Comma {
                    if let Tok::Id(_) | Tok::SetVar(_) = t3 {
                        self.error(
                            s3,
                            format!("missing an end of line character? (entry: {path})"),
                        );
                        return Err(Bail);
                    }
                    return Err(self.unexpected(&t3, s3, "','"));
                }
                crate::rules::file(
                    self, prof, ctx, prefix, exec_mode, path, &perms, s2, false, false, target,
                    start, file_kw,
                )
            }
            Tok::Mode(perms) => {
                let (mut t2, mut s2) = self.next();
                let mut subset = false;
                if t2 == Tok::Kw("subset") {
                    subset = true;
                    (t2, s2) = self.next();
                }
                let path = match t2 {
                    Tok::Id(p) | Tok::SetVar(p) => p,
                    t => return Err(self.unexpected(&t, s2, "a path")),
                };
                let (mut t3, mut s3) = self.next();
                let mut target = None;
                if t3 == Tok::Arrow {
                    target = Some(self.arrow_target()?);
                    (t3, s3) = self.next();
                }
                if t3 != Tok::Comma {
                    return Err(self.unexpected(&t3, s3, "','"));
                }
                crate::rules::file(
                    self, prof, ctx, prefix, exec_mode, path, &perms, s, true, subset, target,
                    start, file_kw,
                )
            }
            t => Err(self.unexpected(&t, s, "a rule")),
        }
    }

    fn parse_change_profile(
        &mut self,
        prof: &mut Profile,
        ctx: &crate::vars::ProfileCtx,
        prefix: &Prefix,
        start: Span,
    ) -> PResult<()> {
        self.peeked = None;
        let next = |p: &mut Self| {
            let s = p.lx.span();
            let t = p.lx.lex_change_profile();
            (t, s)
        };
        let (mut t, mut s) = next(self);
        let mut mode = None;
        if let Tok::Kw(k @ ("safe" | "unsafe")) = t {
            mode = Some(k);
            (t, s) = next(self);
        }
        let mut exec = None;
        if let Tok::Id(e) = &t {
            exec = Some((e.clone(), s.clone()));
            (t, s) = next(self);
        }
        let mut target = None;
        if t == Tok::Arrow {
            self.lx.skip_ws_nl();
            let s2 = self.lx.span();
            match self.lx.lex_sub_id() {
                Some(v) => target = Some((v, s2)),
                None => {
                    self.error(s2, "syntax error: expecting a profile after '->'");
                    return Err(Bail);
                }
            }
            (t, s) = next(self);
        }
        if t != Tok::Comma {
            return Err(self.unexpected(&t, s, "','"));
        }
        crate::rules::change_profile(self, prof, ctx, prefix, mode, exec, target, start)
    }

    fn parse_rlimit(&mut self, prof: &mut Profile, span: Span) -> PResult<()> {
        let (t, s) = self.next();
        if t != Tok::Kw("rlimit") {
            return Err(self.unexpected(&t, s, "'rlimit'"));
        }
        let mut toks = Vec::new();
        loop {
            let s = self.lx.span();
            let t = self.lx.lex_rlimit();
            match t {
                Tok::Comma => break,
                Tok::Eof => {
                    self.error(s, "syntax error: unexpected end of file in rlimit rule");
                    return Err(Bail);
                }
                Tok::Error(m) => {
                    self.error(s, m);
                    return Err(Bail);
                }
                t => toks.push((t, s)),
            }
            if toks.len() > 8 {
                break;
            }
        }
        crate::rules::rlimit(self, prof, toks, span)
    }

    /// `if EXPR { rules } [else { rules } | else if ...]`
    fn parse_cond_rule(
        &mut self,
        prof: &mut Profile,
        ctx: &crate::vars::ProfileCtx,
        span: Span,
    ) -> PResult<()> {
        if self.nesting >= MAX_NESTING {
            self.error(
                span,
                format!("conditionals nested too deeply (more than {MAX_NESTING} levels)"),
            );
            return Err(Bail);
        }
        self.peeked = None;
        let mut toks = Vec::new();
        loop {
            let s = self.lx.span();
            let t = self.lx.lex_expr(false);
            match t {
                Tok::Open => break,
                Tok::Eof => {
                    self.error(s, "syntax error: unexpected end of file in if expression");
                    return Err(Bail);
                }
                Tok::Error(m) => {
                    self.error(s, m);
                    return Err(Bail);
                }
                t => toks.push((t, s)),
            }
            if toks.len() > 10_000 {
                self.error(span, "expression too long");
                return Err(Bail);
            }
        }
        let mut ep = ExprParser {
            toks,
            pos: 0,
            depth: 0,
        };
        let val = ep.parse_expr(self);
        let val = match val {
            Ok(v) => {
                if ep.pos < ep.toks.len() {
                    let (t, s) = ep.toks[ep.pos].clone();
                    self.unexpected(&t, s, "'{'");
                    false
                } else {
                    v
                }
            }
            Err(_) => false,
        };
        // then-block
        let mut block = empty_block(span.clone());
        self.nesting += 1;
        let r = self.parse_rules(&mut block, ctx, false);
        self.nesting -= 1;
        r?;
        if val {
            prof.rules.extend(block.rules);
            prof.children.extend(block.children);
        }
        // else?
        let (t, _s) = self.peek().clone();
        if t == Tok::Kw("else") {
            self.peeked = None;
            let (t, s) = self.next();
            match t {
                Tok::Open => {
                    let mut block = empty_block(s);
                    self.nesting += 1;
                    let r = self.parse_rules(&mut block, ctx, false);
                    self.nesting -= 1;
                    r?;
                    if !val {
                        prof.rules.extend(block.rules);
                        prof.children.extend(block.children);
                    }
                }
                Tok::Kw("if") => {
                    if val {
                        let mut sink = empty_block(s.clone());
                        self.parse_cond_rule(&mut sink, ctx, s)?;
                    } else {
                        self.parse_cond_rule(prof, ctx, s)?;
                    }
                }
                t => return Err(self.unexpected(&t, s, "'{' or 'if' after else")),
            }
        }
        Ok(())
    }

    /// Items of a class rule up to its `,`.
    fn rule_items(&mut self, mode: Mode) -> PResult<Vec<(Item, Span)>> {
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let (t, s) = match mode {
                Mode::Rule(c) => {
                    self.peeked = None;
                    let s = {
                        self.lx.skip_ws_nl();
                        self.lx.span()
                    };
                    (self.lx.lex_rule(c), s)
                }
                _ => self.next(),
            };
            let item = match t {
                Tok::Comma => return Ok(items),
                Tok::Eof => {
                    self.error(s, "syntax error: unexpected end of file, expecting ','");
                    return Err(Bail);
                }
                Tok::Error(m) => {
                    self.error(s, m);
                    return Err(Bail);
                }
                Tok::OpenParen if first => {
                    let vals = self.list_values()?;
                    Item::Perms(vals.into_iter().map(|v| v.0).collect(), true)
                }
                Tok::Kw(k)
                    if first && k != "in" && k != "peer" && k != "priority" && k != "all" =>
                {
                    Item::Perms(vec![k.to_string()], false)
                }
                Tok::Mode(m) if first => Item::Perms(vec![m], false),
                Tok::Id(x) | Tok::SetVar(x) => Item::Id(x),
                Tok::Arrow => {
                    if mode == Mode::Initial {
                        let v = self.arrow_target()?;
                        items.push((Item::Arrow, s.clone()));
                        Item::Id(v)
                    } else {
                        Item::Arrow
                    }
                }
                Tok::CondId(name) => {
                    self.peeked = None;
                    let set = self.cond_op_is_set();
                    let c = self.cond_value(name, &s)?;
                    Item::Cond(c, set)
                }
                Tok::CondListId(name) => {
                    let conds = self.cond_list_body_ops(&s)?;
                    Item::CondList(name, conds)
                }
                t => return Err(self.unexpected(&t, s, "a rule condition or ','")),
            };
            first = false;
            items.push((item, s));
            if items.len() > 10_000 {
                let s = self.lx.span();
                self.error(s, "rule too long");
                return Err(Bail);
            }
        }
    }

    /// Is the next operator `:=`?
    fn cond_op_is_set(&mut self) -> bool {
        let mut i = 0;
        while self.lx.r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        self.lx.r.peek_at(i) == Some(':') && self.lx.r.peek_at(i + 1) == Some('=')
    }

    /// EXTCOND_MODE after a condition name: `= value`, `= (list)`,
    /// `in (list)`, `:= ...`.
    fn cond_value(&mut self, name: String, span: &Span) -> PResult<Cond> {
        self.lx.skip_blanks();
        let r = &self.lx.r;
        let (is_in, ok) = match (r.peek(), r.peek_at(1)) {
            (Some('='), _) => {
                self.lx.r.bump();
                (false, true)
            }
            (Some(':'), Some('=')) => {
                self.lx.r.bump_n(2);
                (false, true)
            }
            (Some('i'), Some('n')) => {
                self.lx.r.bump_n(2);
                (true, true)
            }
            _ => (false, false),
        };
        if !ok {
            self.error(
                span.clone(),
                format!("syntax error: expecting '=' after '{name}'"),
            );
            return Err(Bail);
        }
        self.lx.skip_blanks();
        if self.lx.r.peek() == Some('\n') {
            self.lx.skip_ws_nl();
        }
        if self.lx.r.peek() == Some('(') {
            self.lx.r.bump();
            let vals = self.list_values()?;
            return Ok(Cond {
                name,
                values: vals.into_iter().map(|v| v.0).collect(),
                is_in,
                is_list: true,
            });
        }
        if is_in {
            let s = self.lx.span();
            self.error(s, format!("syntax error: expecting '(' after '{name} in'"));
            return Err(Bail);
        }
        let s = self.lx.span();
        match self.lx.lex_value() {
            Some(v) => Ok(Cond {
                name,
                values: vec![v],
                is_in: false,
                is_list: false,
            }),
            None => {
                self.error(s, format!("syntax error: expecting a value for '{name}'"));
                Err(Bail)
            }
        }
    }
}

/// One element of a class rule (`mount`, `dbus`, `network`, ...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// Permissions; `true` when written in parentheses.
    Perms(Vec<String>, bool),
    Id(String),
    /// A condition; `true` when written with `:=`.
    Cond(Cond, bool),
    /// `name=( conds )`; the flag tells a `:=` condition.
    CondList(String, Vec<(Cond, bool)>),
    Arrow,
}

fn empty_block(span: Span) -> Profile {
    Profile {
        kind: ProfileKind::Profile,
        name: String::new(),
        namespace: None,
        attachment: None,
        flags: Flags::default(),
        xattrs: vec![],
        rules: vec![],
        children: vec![],
        span,
    }
}

fn mode_name(m: ProfileMode) -> &'static str {
    match m {
        ProfileMode::Enforce => "enforce",
        ProfileMode::Complain => "complain",
        ProfileMode::Kill => "kill",
        ProfileMode::Unconfined => "unconfined",
        ProfileMode::DefaultAllow => "default_allow",
        ProfileMode::Prompt => "prompt",
    }
}

/// `@{foo}` / `@foo` / `${foo}` / `$foo` → `foo`.
pub(crate) fn var_name(v: &str) -> String {
    let v = v.trim_start_matches(['@', '$']);
    v.trim_start_matches('{').trim_end_matches('}').to_string()
}

/// Split `:ns:name` / `:ns://name` into (namespace, name).
pub(crate) fn split_namespace(label: &str) -> (Option<String>, String) {
    if let Some(rest) = label.strip_prefix(':') {
        if let Some(i) = rest.find(':') {
            let ns = &rest[..i];
            let mut name = &rest[i + 1..];
            if let Some(n) = name.strip_prefix("//") {
                name = n;
            }
            if ns.is_empty() {
                return (None, name.to_string());
            }
            return (Some(ns.to_string()), name.to_string());
        }
        return (None, label.to_string());
    }
    (None, label.to_string())
}

/// Names skipped in include directories (upstream `_aa_is_blacklisted`).
pub(crate) fn is_ignored_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with('.') || name == "README" {
        return true;
    }
    const SUFFIXES: &[&str] = &[
        ".dpkg-new",
        ".dpkg-old",
        ".dpkg-dist",
        ".dpkg-bak",
        ".dpkg-remove",
        ".pacsave",
        ".pacnew",
        ".rpmnew",
        ".rpmsave",
        ".orig",
        ".rej",
        "~",
    ];
    SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Read a policy file with the size cap; invalid UTF-8 is replaced.
pub(crate) fn read_policy_file(p: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(p)?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_SIZE as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_FILE_SIZE {
        return Err(std::io::Error::other(format!(
            "file larger than {MAX_FILE_SIZE} bytes"
        )));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The expression grammar of `if` and boolean assignments.
struct ExprParser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn span(&self) -> Span {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }

    fn parse_expr(&mut self, p: &mut Parser) -> PResult<bool> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            p.error(self.span(), "expression nested too deeply");
            return Err(Bail);
        }
        let mut v = self.parse_term(p)?;
        while self.peek() == Some(&Tok::Kw("or")) {
            self.pos += 1;
            let r = self.parse_term(p)?;
            v = v || r;
        }
        self.depth -= 1;
        Ok(v)
    }

    fn parse_term(&mut self, p: &mut Parser) -> PResult<bool> {
        let mut v = self.parse_not(p)?;
        while self.peek() == Some(&Tok::Kw("and")) {
            self.pos += 1;
            let r = self.parse_not(p)?;
            v = v && r;
        }
        Ok(v)
    }

    fn parse_not(&mut self, p: &mut Parser) -> PResult<bool> {
        if self.peek() == Some(&Tok::Kw("not")) {
            self.pos += 1;
            self.depth += 1;
            if self.depth > MAX_NESTING {
                p.error(self.span(), "expression nested too deeply");
                return Err(Bail);
            }
            let v = self.parse_not(p)?;
            self.depth -= 1;
            return Ok(!v);
        }
        self.parse_factor(p)
    }

    fn parse_factor(&mut self, p: &mut Parser) -> PResult<bool> {
        let span = self.span();
        let Some(t) = self.peek().cloned() else {
            p.error(span, "syntax error: expecting an expression");
            return Err(Bail);
        };
        self.pos += 1;
        match t {
            Tok::BoolVar(v) => {
                let n = var_name(&v);
                match p.bools.get(&n) {
                    Some(b) => Ok(*b),
                    None => {
                        p.error(
                            span,
                            format!("Unset boolean variable {v} used in if-expression"),
                        );
                        Err(Bail)
                    }
                }
            }
            Tok::Kw("defined") => {
                let s = self.span();
                match self.peek().cloned() {
                    Some(Tok::SetVar(v)) => {
                        self.pos += 1;
                        Ok(p.vars.contains_key(&var_name(&v)))
                    }
                    Some(Tok::BoolVar(v)) => {
                        self.pos += 1;
                        // upstream looks the name up among set variables
                        Ok(p.vars.contains_key(&var_name(&v)))
                    }
                    Some(t) => Err(p.unexpected(&t, s, "a variable after 'defined'")),
                    None => {
                        p.error(s, "syntax error: expecting a variable after 'defined'");
                        Err(Bail)
                    }
                }
            }
            Tok::OpenParen => {
                let v = self.parse_expr(p)?;
                if self.peek() != Some(&Tok::CloseParen) {
                    let s = self.span();
                    let t = self.peek().cloned().unwrap_or(Tok::Eof);
                    return Err(p.unexpected(&t, s, "')'"));
                }
                self.pos += 1;
                Ok(v)
            }
            Tok::Id(a) | Tok::SetVar(a) => {
                let op = self.peek().cloned();
                match op {
                    Some(
                        op @ (Tok::EqOp
                        | Tok::NeOp
                        | Tok::InOp
                        | Tok::Gt
                        | Tok::Ge
                        | Tok::Lt
                        | Tok::Le),
                    ) => {
                        self.pos += 1;
                        let s = self.span();
                        let b = match self.peek().cloned() {
                            Some(Tok::Id(b)) | Some(Tok::SetVar(b)) => {
                                self.pos += 1;
                                b
                            }
                            Some(t) => return Err(p.unexpected(&t, s, "a value")),
                            None => {
                                p.error(s, "syntax error: expecting a value");
                                return Err(Bail);
                            }
                        };
                        crate::vars::compare(p, &span, &a, &op, &b)
                    }
                    _ => match a.to_ascii_lowercase().as_str() {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        _ => {
                            p.error(
                                span,
                                format!("Invalid boolean : '{a}' is not true or false"),
                            );
                            Err(Bail)
                        }
                    },
                }
            }
            t => Err(p.unexpected(&t, span, "an expression")),
        }
    }
}

/// The value of a variable assignment: a set variable `@{X}` or a boolean `$X`.
enum VarValue {
    Set(Vec<String>),
    Bool(bool),
}
