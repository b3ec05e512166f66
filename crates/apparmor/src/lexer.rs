//! The modal lexer.
//!
//! AppArmor's lexer (upstream `parser_lex.l`) is modal: what a word means
//! depends on the rule being read (`send` is a permission inside a `dbus`
//! rule but a plain name elsewhere). Here the parser tells the lexer which
//! mode it is in; the character classes follow upstream's definitions (the
//! scanner is hand-written because the modes and the include stack make a
//! generated lexer awkward, and no crate models this language).

use crate::ast::Span;
use crate::source::Reader;

/// What the parser expects; selects the lexer's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The default state: preamble, profile headers, file rules, ...
    Initial,
    /// Inside a rule class with its own permission words.
    Rule(RuleClass),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleClass {
    Mount,
    Dbus,
    Signal,
    Ptrace,
    Unix,
    Mqueue,
    Network,
    Userns,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Eof,
    Open,
    Close,
    Comma,
    Caret,
    Arrow,
    Equals,
    Plus,
    AddAssign,
    CondAssign,
    OverrideAssign,
    Colon,
    OpenParen,
    CloseParen,
    /// A name, path or label (`TOK_ID`).
    Id(String),
    /// `@{VAR}` (the whole text).
    SetVar(String),
    /// `$VAR` / `${VAR}` (the whole text).
    BoolVar(String),
    /// `$VAR` directly followed by an assignment operator.
    BoolVarAssign(String),
    /// A permission string (`rw`, `Pix`, ...).
    Mode(String),
    /// A keyword.
    Kw(&'static str),
    /// `name=` / `name in (`: a condition name.
    CondId(String),
    /// `peer=(` / `xattrs=(`.
    CondListId(String),
    Priority,
    Flags,
    Profile,
    Hat,
    All,
    Le,
    // expression operators
    EqOp,
    NeOp,
    InOp,
    Gt,
    Ge,
    Lt,
    /// A lexical error (message).
    Error(String),
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Eof => "end of file".into(),
            Tok::Open => "'{'".into(),
            Tok::Close => "'}'".into(),
            Tok::Comma => "','".into(),
            Tok::Caret => "'^'".into(),
            Tok::Arrow => "'->'".into(),
            Tok::Equals => "'='".into(),
            Tok::Plus => "'+'".into(),
            Tok::AddAssign => "'+='".into(),
            Tok::CondAssign => "'?='".into(),
            Tok::OverrideAssign => "':='".into(),
            Tok::Colon => "':'".into(),
            Tok::OpenParen => "'('".into(),
            Tok::CloseParen => "')'".into(),
            Tok::Id(s) => format!("'{s}'"),
            Tok::SetVar(s) | Tok::BoolVar(s) | Tok::BoolVarAssign(s) => format!("variable '{s}'"),
            Tok::Mode(s) => format!("permissions '{s}'"),
            Tok::Kw(k) => format!("keyword '{k}'"),
            Tok::CondId(s) => format!("'{s}='"),
            Tok::CondListId(s) => format!("'{s}=('"),
            Tok::Priority => "'priority='".into(),
            Tok::Flags => "'flags='".into(),
            Tok::Profile => "keyword 'profile'".into(),
            Tok::Hat => "keyword 'hat'".into(),
            Tok::All => "keyword 'all'".into(),
            Tok::Le => "'<='".into(),
            Tok::EqOp => "'=='".into(),
            Tok::NeOp => "'!='".into(),
            Tok::InOp => "'in'".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Error(s) => s.clone(),
        }
    }
}

/// Keywords of the INITIAL state (upstream `keyword_table`).
pub(crate) const KEYWORDS: &[&str] = &[
    "network",
    "unix",
    "capability",
    "if",
    "else",
    "not",
    "defined",
    "change_profile",
    "unsafe",
    "safe",
    "link",
    "owner",
    "user",
    "other",
    "subset",
    "audit",
    "deny",
    "allow",
    "prompt",
    "set",
    "rlimit",
    "alias",
    "rewrite",
    "ptrace",
    "file",
    "mount",
    "remount",
    "umount",
    "unmount",
    "pivot_root",
    "in",
    "dbus",
    "signal",
    "send",
    "receive",
    "bind",
    "read",
    "write",
    "eavesdrop",
    "peer",
    "trace",
    "tracedby",
    "readby",
    "abi",
    "userns",
    "mqueue",
    "delete",
    "open",
    "io_uring",
    "override_creds",
    "sqpoll",
    "all",
    "priority",
    "and",
    "or",
];

fn keyword(s: &str) -> Option<&'static str> {
    KEYWORDS.iter().copied().find(|k| *k == s)
}

/// Permission words of each rule class's lexer state.
fn class_keyword(class: RuleClass, s: &str) -> Option<&'static str> {
    use RuleClass::*;
    let list: &[&'static str] = match class {
        Unix | Network => &[
            "listen", "accept", "connect", "getopt", "setopt", "shutdown", "create", "getattr",
            "setattr", "bind", "send", "receive", "read", "write",
        ],
        Userns => &["create"],
        Mqueue => &[
            "create", "open", "delete", "getattr", "setattr", "read", "write",
        ],
        Dbus => &["bind", "eavesdrop", "send", "receive", "read", "write"],
        Signal => &["send", "receive", "read", "write"],
        Ptrace => &["trace", "readby", "tracedby", "read", "write"],
        Mount => &[],
    };
    list.iter().copied().find(|k| *k == s)
}

pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r'
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\x0b' || c == '\x0c'
}

/// `ID_CHARS`: `[^ \t\r\n"!,]`
fn is_id_char(c: char) -> bool {
    !matches!(c, ' ' | '\t' | '\r' | '\n' | '"' | '!' | ',')
}

fn is_escapable(c: char) -> bool {
    matches!(c, ' ' | '\t' | '"' | '!' | ',')
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Is `s` a sequence of `MODE_CHARS`?
pub(crate) fn is_modes(s: &str) -> bool {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    if b.is_empty() {
        return false;
    }
    while i < b.len() {
        let c = b[i];
        let n = b.get(i + 1).copied();
        let nn = b.get(i + 2).copied();
        let is_x = |c: Option<char>| matches!(c, Some('x') | Some('X'));
        // ([Pp]|[Cc])?([IiUu])[Xx]
        if matches!(c, 'P' | 'p' | 'C' | 'c')
            && matches!(n, Some('I' | 'i' | 'U' | 'u'))
            && is_x(nn)
        {
            i += 3;
        } else if matches!(c, 'P' | 'p' | 'C' | 'c' | 'I' | 'i' | 'U' | 'u') && is_x(n) {
            i += 2;
        } else if matches!(
            c,
            'R' | 'r' | 'W' | 'w' | 'a' | 'L' | 'l' | 'M' | 'm' | 'k' | 'X' | 'x'
        ) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Undo the escapes of an unquoted id and strip the quotes of a quoted one
/// (upstream `processid`).
pub(crate) fn process_id(raw: &str) -> String {
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        let inner = &raw[1..raw.len() - 1];
        process_quoted(inner)
    } else {
        raw.to_string()
    }
}

fn process_quoted(s: &str) -> String {
    // Keep escapes for the AARE layer except the quote itself.
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.peek() {
                Some('"') => {
                    out.push('"');
                    it.next();
                }
                Some('n') => {
                    out.push('\n');
                    it.next();
                }
                Some('t') => {
                    out.push('\t');
                    it.next();
                }
                _ => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The lexer: a reader plus the character-level scanners of each state.
pub(crate) struct Lexer {
    pub r: Reader,
}

impl Lexer {
    pub fn skip_blanks(&mut self) {
        while let Some(c) = self.r.peek() {
            if is_blank(c) {
                self.r.bump();
            } else {
                break;
            }
        }
    }

    /// Skip spaces and newlines (not comments).
    pub fn skip_ws_nl(&mut self) {
        while let Some(c) = self.r.peek() {
            if is_blank(c) || c == '\n' {
                self.r.bump();
            } else {
                break;
            }
        }
    }

    fn len_quoted(&self, at: usize) -> Option<usize> {
        // `"` ([^"] | \")* `"`
        if self.r.peek_at(at) != Some('"') {
            return None;
        }
        let mut i = at + 1;
        loop {
            match self.r.peek_at(i) {
                None => return None,
                Some('\\') if self.r.peek_at(i + 1) == Some('"') => i += 2,
                Some('"') => return Some(i + 1 - at),
                Some('\0') => return None,
                Some(_) => i += 1,
            }
        }
    }

    /// Length of `{ID}*` starting at offset `at`.
    fn len_ids_tail(&self, at: usize) -> usize {
        let mut i = at;
        loop {
            match self.r.peek_at(i) {
                Some('\\') if self.r.peek_at(i + 1).is_some_and(is_escapable) => i += 2,
                Some(',') if self.r.peek_at(i + 1).is_some_and(is_id_char) => i += 2,
                Some(c) if is_id_char(c) => i += 1,
                _ => return i - at,
            }
        }
    }

    /// Length of `{IDS}` (ID_FIRST ID*) at offset 0.
    fn len_ids(&self) -> usize {
        match self.r.peek_at(0) {
            Some('#') => 0,
            Some(_) => self.len_ids_tail(0),
            None => 0,
        }
    }

    /// Length of a set variable `@{name}` / `@name` at `at`.
    fn len_set_var(&self, at: usize) -> Option<usize> {
        if self.r.peek_at(at) != Some('@') {
            return None;
        }
        if self.r.peek_at(at + 1) == Some('{') {
            if !self.r.peek_at(at + 2).is_some_and(is_name_start) {
                return None;
            }
            let mut i = at + 3;
            while self.r.peek_at(i).is_some_and(is_name_char) {
                i += 1;
            }
            if self.r.peek_at(i) == Some('}') {
                Some(i + 1 - at)
            } else {
                None
            }
        } else if self.r.peek_at(at + 1).is_some_and(is_name_start) {
            let mut i = at + 2;
            while self.r.peek_at(i).is_some_and(is_name_char) {
                i += 1;
            }
            Some(i - at)
        } else {
            None
        }
    }

    fn len_bool_var(&self) -> Option<usize> {
        if self.r.peek() != Some('$') {
            return None;
        }
        if self.r.peek_at(1) == Some('{') {
            if !self.r.peek_at(2).is_some_and(is_name_start) {
                return None;
            }
            let mut i = 3;
            while self.r.peek_at(i).is_some_and(is_name_char) {
                i += 1;
            }
            if self.r.peek_at(i) == Some('}') {
                Some(i + 1)
            } else {
                None
            }
        } else if self.r.peek_at(1).is_some_and(is_name_start) {
            let mut i = 2;
            while self.r.peek_at(i).is_some_and(is_name_char) {
                i += 1;
            }
            Some(i)
        } else {
            None
        }
    }

    /// `LABEL`: `(/|SET_VARIABLE POST_VAR_ID|:[^=]|&){ID}*`
    fn len_label(&self) -> Option<usize> {
        let c = self.r.peek()?;
        let head = match c {
            '/' | '&' => 1,
            ':' => match self.r.peek_at(1) {
                Some('=') | None => return None,
                Some(_) => 2,
            },
            '@' => {
                let v = self.len_set_var(0)?;
                // POST_VAR_ID
                match self.r.peek_at(v) {
                    Some('\\')
                        if self
                            .r
                            .peek_at(v + 1)
                            .is_some_and(|c| is_escapable(c) || c == '(' || c == ')') =>
                    {
                        v + 2
                    }
                    Some(',') => {
                        let n = self.r.peek_at(v + 1)?;
                        if is_id_char(n) && !matches!(n, '=' | '+' | '?') {
                            v + 2
                        } else {
                            return None;
                        }
                    }
                    Some(c) if is_id_char(c) && c != '\n' => {
                        if matches!(c, '=' | '+' | '?') {
                            return None;
                        }
                        v + 1
                    }
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(head + self.len_ids_tail(head))
    }

    fn take(&mut self, n: usize) -> String {
        let mut s = String::new();
        for _ in 0..n {
            if let Some(c) = self.r.bump() {
                s.push(c);
            }
        }
        s
    }

    /// Does a `name` at offset 0 (of length `n`) continue with `ws* =`?
    fn followed_by_eq(&self, n: usize) -> bool {
        let mut i = n;
        while self.r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        self.r.peek_at(i) == Some('=')
    }

    fn followed_by_eq_paren(&self, n: usize) -> bool {
        let mut i = n;
        while self.r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        if self.r.peek_at(i) != Some('=') {
            return false;
        }
        i += 1;
        while self.r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        self.r.peek_at(i) == Some('(')
    }

    fn followed_by_in_paren(&self, n: usize) -> bool {
        let mut i = n;
        if !self.r.peek_at(i).is_some_and(is_blank) {
            return false;
        }
        while self.r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        if !(self.r.peek_at(i) == Some('i') && self.r.peek_at(i + 1) == Some('n')) {
            return false;
        }
        i += 2;
        while self.r.peek_at(i).is_some_and(is_blank) {
            i += 1;
        }
        self.r.peek_at(i) == Some('(')
    }

    fn name_len(&self) -> usize {
        if !self.r.peek().is_some_and(is_name_start) {
            return 0;
        }
        let mut i = 1;
        while self.r.peek_at(i).is_some_and(is_name_char) {
            i += 1;
        }
        i
    }

    /// The `peer=(`, `priority=`, `flags=`, `name=` and `name in (` rules
    /// shared by INITIAL and the rule states.
    fn lex_cond_prefix(&mut self) -> Option<Tok> {
        let n = self.name_len();
        if n == 0 {
            return None;
        }
        let word: String = (0..n).filter_map(|i| self.r.peek_at(i)).collect();
        if (word == "peer" || word == "xattrs") && self.followed_by_eq_paren(n) {
            self.take(n);
            return Some(Tok::CondListId(word));
        }
        if word == "priority" && self.followed_by_eq(n) {
            self.take(n);
            return Some(Tok::Priority);
        }
        if word == "flags" && self.followed_by_eq(n) {
            self.take(n);
            return Some(Tok::Flags);
        }
        if self.followed_by_eq(n) || self.followed_by_in_paren(n) {
            self.take(n);
            return Some(Tok::CondId(word));
        }
        None
    }

    /// The next token in the INITIAL state, after trivia (which the caller
    /// skipped, handling includes). `Err` carries a lexical error message.
    pub fn lex_initial(&mut self) -> Tok {
        let Some(c) = self.r.peek() else {
            return Tok::Eof;
        };
        if let Some(t) = self.lex_cond_prefix() {
            return t;
        }
        match c {
            '{' => {
                self.r.bump();
                return Tok::Open;
            }
            '}' => {
                self.r.bump();
                return Tok::Close;
            }
            ',' => {
                self.r.bump();
                return Tok::Comma;
            }
            '^' => {
                self.r.bump();
                return Tok::Caret;
            }
            '(' => {
                self.r.bump();
                return Tok::OpenParen;
            }
            '-' if self.r.peek_at(1) == Some('>') => {
                self.r.bump_n(2);
                return Tok::Arrow;
            }
            '=' => {
                self.r.bump();
                return Tok::Equals;
            }
            '+' => {
                if self.r.peek_at(1) == Some('=') {
                    self.r.bump_n(2);
                    return Tok::AddAssign;
                }
                self.r.bump();
                return Tok::Plus;
            }
            '?' if self.r.peek_at(1) == Some('=') => {
                self.r.bump_n(2);
                return Tok::CondAssign;
            }
            ':' if self.r.peek_at(1) == Some('=') => {
                self.r.bump_n(2);
                return Tok::OverrideAssign;
            }
            _ => {}
        }
        if c == '$' {
            if let Some(n) = self.len_bool_var() {
                let mut i = n;
                while self.r.peek_at(i).is_some_and(is_blank) {
                    i += 1;
                }
                let a = self.r.peek_at(i);
                let b = self.r.peek_at(i + 1);
                let s = self.take(n);
                if a == Some('=') || (matches!(a, Some('+' | '?' | ':')) && b == Some('=')) {
                    return Tok::BoolVarAssign(s);
                }
                return Tok::BoolVar(s);
            }
        }
        if let Some(n) = self.len_label() {
            let s = self.take(n);
            return Tok::Id(process_id(&s));
        }
        if c == '@' {
            if let Some(n) = self.len_set_var(0) {
                return Tok::SetVar(self.take(n));
            }
        }
        if c == '"' {
            if matches!(self.r.peek_at(1), Some('/' | '@' | ':' | '&')) {
                if let Some(n) = self.len_quoted(0) {
                    let s = self.take(n);
                    return Tok::Id(process_id(&s));
                }
            }
            self.r.bump();
            return Tok::Error("unexpected character '\"'".into());
        }
        if c == ':' {
            self.r.bump();
            return Tok::Colon;
        }
        if is_name_start(c) {
            let n = self.name_len();
            let word: String = (0..n).filter_map(|i| self.r.peek_at(i)).collect();
            let next = self.r.peek_at(n);
            if word == "all" && !next.is_some_and(is_name_char) {
                self.take(n);
                return Tok::All;
            }
            if is_modes(&word) && next.is_some_and(|c| is_space(c) || c == ',') {
                self.take(n);
                return Tok::Mode(word);
            }
            self.take(n);
            if word == "hat" {
                self.skip_blanks();
                return Tok::Hat;
            }
            if word == "profile" {
                self.skip_blanks();
                return Tok::Profile;
            }
            if let Some(k) = keyword(&word) {
                return Tok::Kw(k);
            }
            return Tok::Id(word);
        }
        self.r.bump();
        Tok::Error(format!("unexpected character '{}'", c.escape_default()))
    }

    /// SUB_ID: `{IDS}|{QUOTED_ID}` with no leading whitespace.
    pub fn lex_sub_id(&mut self) -> Option<String> {
        if let Some(n) = self.len_quoted(0) {
            let s = self.take(n);
            return Some(process_id(&s));
        }
        let n = self.len_ids();
        if n == 0 {
            return None;
        }
        let s = self.take(n);
        Some(process_id(&s))
    }

    /// A value after `name=` (SUB_VALUE).
    pub fn lex_value(&mut self) -> Option<String> {
        self.lex_sub_id()
    }

    /// A value in a `( ... )` list (LIST_VAL_MODE): returns `None` at `)`
    /// (consumed) and `Some(Err)` on a bad character.
    pub fn lex_list_value(&mut self) -> Result<Option<String>, String> {
        loop {
            self.skip_ws_nl();
            match self.r.peek() {
                Some(',') => {
                    self.r.bump();
                }
                Some(')') => {
                    self.r.bump();
                    return Ok(None);
                }
                None => return Err("unexpected end of file in list".into()),
                Some('"') => {
                    if let Some(n) = self.len_quoted(0) {
                        let s = self.take(n);
                        return Ok(Some(process_id(&s)));
                    }
                    return Err("unterminated quoted string".into());
                }
                Some(_) => {
                    let mut i = 0;
                    loop {
                        match self.r.peek_at(i) {
                            Some('\\')
                                if self
                                    .r
                                    .peek_at(i + 1)
                                    .is_some_and(|c| is_escapable(c) || c == '(' || c == ')') =>
                            {
                                i += 2
                            }
                            Some(c) if is_id_char(c) && c != '(' && c != ')' => i += 1,
                            _ => break,
                        }
                    }
                    if i == 0 {
                        let c = self.r.bump().unwrap_or(' ');
                        return Err(format!(
                            "unexpected character '{}' in list",
                            c.escape_default()
                        ));
                    }
                    let s = self.take(i);
                    return Ok(Some(s));
                }
            }
        }
    }

    /// A token inside a rule class state (MOUNT_MODE, DBUS_MODE, ...).
    pub fn lex_rule(&mut self, class: RuleClass) -> Tok {
        self.skip_ws_nl();
        let Some(c) = self.r.peek() else {
            return Tok::Eof;
        };
        if let Some(t) = self.lex_cond_prefix() {
            return t;
        }
        match c {
            ',' => {
                self.r.bump();
                return Tok::Comma;
            }
            '(' if class != RuleClass::Mount && class != RuleClass::Userns => {
                self.r.bump();
                return Tok::OpenParen;
            }
            '-' if class == RuleClass::Mount && self.r.peek_at(1) == Some('>') => {
                self.r.bump_n(2);
                return Tok::Arrow;
            }
            _ => {}
        }
        if class == RuleClass::Userns {
            let n = self.name_len();
            let word: String = (0..n).filter_map(|i| self.r.peek_at(i)).collect();
            if word == "create" {
                self.take(n);
                return Tok::Kw("create");
            }
            self.r.bump();
            return Tok::Error(format!("unexpected character '{}'", c.escape_default()));
        }
        // keywords and r/w modes
        let n = self.name_len();
        if n > 0 {
            let word: String = (0..n).filter_map(|i| self.r.peek_at(i)).collect();
            let ids_len = self.len_noassign();
            if ids_len <= n {
                if let Some(k) = class_keyword(class, &word) {
                    self.take(n);
                    return Tok::Kw(k);
                }
                if class != RuleClass::Mount
                    && matches!(word.as_str(), "r" | "w" | "rw" | "wr")
                    && self.r.peek_at(n).is_some_and(|c| is_space(c) || c == ',')
                {
                    self.take(n);
                    return Tok::Mode(word);
                }
            }
        }
        if c == '"' {
            if let Some(n) = self.len_quoted(0) {
                let s = self.take(n);
                return Tok::Id(process_id(&s));
            }
        }
        let a = self.len_label().unwrap_or(0);
        let b = self.len_noassign();
        let n = a.max(b);
        if n == 0 {
            self.r.bump();
            return Tok::Error(format!("unexpected character '{}'", c.escape_default()));
        }
        let s = self.take(n);
        Tok::Id(process_id(&s))
    }

    /// `IDS_NOASSIGN` length.
    fn len_noassign(&self) -> usize {
        let bad_lead = |c: char| {
            matches!(
                c,
                ' ' | '\t' | '\n' | '"' | '!' | ',' | '=' | '(' | ')' | '+' | '&' | ':'
            )
        };
        let bad = |c: char| matches!(c, ' ' | '\t' | '\n' | '"' | '!' | ',' | '=' | ')');
        let mut i;
        match self.r.peek() {
            None => return 0,
            Some(':') if self.r.peek_at(1).is_some_and(|c| !bad(c)) => i = 2,
            Some(':') => return 0,
            Some(c) if !bad_lead(c) => i = 1,
            _ => return 0,
        }
        loop {
            match self.r.peek_at(i) {
                Some(':') if self.r.peek_at(i + 1).is_some_and(|c| !bad(c)) => i += 2,
                Some(',') if self.r.peek_at(i + 1).is_some_and(|c| !bad(c) && c != ':') => i += 2,
                Some(':' | ',') => return i,
                Some(c) if !bad(c) => i += 1,
                _ => return i,
            }
        }
    }

    /// A token in CHANGE_PROFILE_MODE.
    pub fn lex_change_profile(&mut self) -> Tok {
        self.skip_ws_nl();
        let Some(c) = self.r.peek() else {
            return Tok::Eof;
        };
        if c == ',' {
            self.r.bump();
            return Tok::Comma;
        }
        if c == '-' && self.r.peek_at(1) == Some('>') {
            self.r.bump_n(2);
            return Tok::Arrow;
        }
        let n = self.name_len();
        let ids = self.len_ids();
        if n > 0 && ids == n {
            let word: String = (0..n).filter_map(|i| self.r.peek_at(i)).collect();
            if word == "safe" || word == "unsafe" {
                self.take(n);
                return Tok::Kw(if word == "safe" { "safe" } else { "unsafe" });
            }
        }
        match self.lex_sub_id() {
            Some(s) => Tok::Id(s),
            None => {
                self.r.bump();
                Tok::Error(format!("unexpected character '{}'", c.escape_default()))
            }
        }
    }

    /// A token in RLIMIT_MODE: numbers and words are returned as `Id`.
    pub fn lex_rlimit(&mut self) -> Tok {
        self.skip_ws_nl();
        let Some(c) = self.r.peek() else {
            return Tok::Eof;
        };
        if c == ',' {
            self.r.bump();
            return Tok::Comma;
        }
        if c == '<' && self.r.peek_at(1) == Some('=') {
            self.r.bump_n(2);
            return Tok::Le;
        }
        if c == '-' || c.is_ascii_digit() {
            let mut i = if c == '-' { 1 } else { 0 };
            let start = i;
            while self.r.peek_at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            if i > start {
                return Tok::Id(self.take(i));
            }
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut i = 0;
            while self
                .r
                .peek_at(i)
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                i += 1;
            }
            return Tok::Id(self.take(i));
        }
        self.r.bump();
        Tok::Error(format!("unexpected character '{}'", c.escape_default()))
    }

    /// A token in EXPR_MODE / ASSIGN_EXPR_MODE. `stop_at_nl`: assignment
    /// expressions end at the end of the line (returned as `Comma`).
    pub fn lex_expr(&mut self, stop_at_nl: bool) -> Tok {
        loop {
            self.skip_blanks();
            match self.r.peek() {
                Some('\n') => {
                    self.r.bump();
                    if stop_at_nl {
                        return Tok::Comma;
                    }
                }
                Some('\\') if stop_at_nl && self.r.peek_at(1) == Some('\n') => {
                    self.r.bump_n(2);
                }
                Some('#') if stop_at_nl => {
                    while let Some(c) = self.r.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                    return Tok::Comma;
                }
                _ => break,
            }
        }
        let Some(c) = self.r.peek() else {
            return if stop_at_nl { Tok::Comma } else { Tok::Eof };
        };
        if stop_at_nl && c == ',' {
            self.r.bump();
            return Tok::Error("Variable declarations do not accept trailing commas".into());
        }
        if !stop_at_nl && c == '{' {
            self.r.bump();
            return Tok::Open;
        }
        let two = (c, self.r.peek_at(1));
        match two {
            ('(', _) => {
                self.r.bump();
                return Tok::OpenParen;
            }
            (')', _) => {
                self.r.bump();
                return Tok::CloseParen;
            }
            ('=', Some('=')) => {
                self.r.bump_n(2);
                return Tok::EqOp;
            }
            ('!', Some('=')) => {
                self.r.bump_n(2);
                return Tok::NeOp;
            }
            ('>', Some('=')) => {
                self.r.bump_n(2);
                return Tok::Ge;
            }
            ('<', Some('=')) => {
                self.r.bump_n(2);
                return Tok::Le;
            }
            ('>', _) => {
                self.r.bump();
                return Tok::Gt;
            }
            ('<', _) => {
                self.r.bump();
                return Tok::Lt;
            }
            _ => {}
        }
        if c == '@' {
            if let Some(n) = self.len_set_var(0) {
                // a label (set var followed by more) is an id
                let lab = self.len_label().unwrap_or(0);
                if lab <= n {
                    return Tok::SetVar(self.take(n));
                }
            }
        }
        if c == '$' {
            if let Some(n) = self.len_bool_var() {
                return Tok::BoolVar(self.take(n));
            }
        }
        let n = self.name_len();
        let a = self.len_label().unwrap_or(0);
        let b = self.len_noassign();
        let q = self.len_quoted(0).unwrap_or(0);
        let m = a.max(b).max(q);
        if n > 0 && n >= m {
            let word: String = (0..n).filter_map(|i| self.r.peek_at(i)).collect();
            match word.as_str() {
                "and" | "or" | "not" | "defined" => {
                    self.take(n);
                    return Tok::Kw(keyword(&word).unwrap_or("and"));
                }
                "in" => {
                    self.take(n);
                    return Tok::InOp;
                }
                _ => {}
            }
        }
        if m == 0 {
            self.r.bump();
            return Tok::Error(format!("unexpected character '{}'", c.escape_default()));
        }
        let s = self.take(m);
        Tok::Id(process_id(&s))
    }

    /// A condition name in a `peer=( ... )` list (IDS_NOASSIGN).
    pub fn lex_cond_name(&mut self) -> Option<String> {
        let n = self.len_noassign();
        if n == 0 {
            return None;
        }
        Some(self.take(n))
    }

    /// A single value after `name=` inside a condition list.
    pub fn lex_cond_list_value(&mut self) -> Option<String> {
        if let Some(n) = self.len_quoted(0) {
            let s = self.take(n);
            return Some(process_id(&s));
        }
        let mut i = 0;
        loop {
            match self.r.peek_at(i) {
                Some('\\')
                    if self
                        .r
                        .peek_at(i + 1)
                        .is_some_and(|c| is_escapable(c) || c == '(' || c == ')') =>
                {
                    i += 2
                }
                Some(c) if is_id_char(c) && c != '(' && c != ')' => i += 1,
                _ => break,
            }
        }
        if i == 0 {
            return None;
        }
        Some(self.take(i))
    }

    pub fn span(&self) -> Span {
        self.r.span()
    }
}
