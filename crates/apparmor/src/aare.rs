//! AppArmor regular expressions (AARE): validation, alternation expansion and
//! compilation to a matcher.
//!
//! The input is the AARE text of a rule (variables already expanded by the
//! parser, backslash escapes still in place). The syntax, as documented in
//! apparmor.d(5) and implemented by upstream's `convert_aaregex_to_pcre`:
//!
//! | AARE        | matches                                                         |
//! | ----------- | --------------------------------------------------------------- |
//! | `*`         | any run of bytes except `/`                                     |
//! | `**`        | any run of bytes, `/` included                                  |
//! | `?`         | one byte except `/`                                             |
//! | `[abc]`, `[a-c]` | one byte of the class                                      |
//! | `[^a-c]`    | one byte not in the class (`/` included)                        |
//! | `{a,b,c}`   | one of the alternatives; nestable, empty alternatives allowed   |
//! | `\c`        | `c` literally; `\n \t \r \a \e \f`, `\NNN` (octal), `\xHH`, `\dNNN` |
//!
//! AppArmor-specific rule: a `*` or `**` run that forms a whole path
//! component (it follows a literal `/` and is followed by `/` or the end of
//! the pattern) must match at least one byte, so `/foo/*` and `/foo/**` do
//! not match `/foo/` (nor `/foo`), and `/*/bar` does not match `//bar`.
//!
//! Matching is byte-wise (AppArmor's DFA works on bytes), and a path never
//! matches a NUL byte. Directories are named with a trailing `/` by the
//! kernel, so `/dir/` and `/dir` are different paths: the pattern `/dir/`
//! matches only the former.
//!
//! Compilation goes through the `regex` crate (a lazy DFA with bounded
//! cache, linear time in the path length); every pattern is translated into
//! a byte-oriented regex where each literal is written as `\xHH`, so nothing
//! of the AARE text can leak into regex syntax.

use std::fmt::Write as _;

use thiserror::Error;

/// Upstream rejects `{` nesting at this depth (`MAX_ALT_DEPTH` = 50, checked
/// with `>=`), so 49 levels are accepted.
pub const MAX_NESTING: usize = 49;

/// Limits that keep compilation and expansion bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted pattern, in bytes.
    pub max_len: usize,
    /// Deepest `{}` nesting.
    pub max_nesting: usize,
    /// Most patterns [`expand_alternations`] may produce.
    pub max_expansions: usize,
    /// Size limit of the compiled regex program, in bytes.
    pub max_program_size: usize,
    /// Cap on the lazy DFA's state cache, per compiled pattern, in bytes
    /// (past it the cache is cleared and rebuilt, so memory stays bounded).
    pub max_dfa_cache: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: 1024 * 1024,
            max_nesting: MAX_NESTING,
            max_expansions: 4096,
            max_program_size: 16 * 1024 * 1024,
            max_dfa_cache: 2 * 1024 * 1024,
        }
    }
}

/// Why a pattern was rejected. `offset` is the byte offset into the pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AareError {
    #[error("pattern is {len} bytes long, more than the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("NUL byte in pattern at offset {offset}")]
    NulByte { offset: usize },
    #[error("trailing '\\' escape character at offset {offset}")]
    TrailingEscape { offset: usize },
    #[error("unclosed '{{' opened at offset {offset}, expecting '}}'")]
    UnclosedBrace { offset: usize },
    #[error("'}}' at offset {offset} has no matching '{{'")]
    UnmatchedCloseBrace { offset: usize },
    #[error("'{{...}}' closed at offset {offset} has a single item; alternations need a ','")]
    SingleAlternative { offset: usize },
    #[error("'{{' nesting deeper than {max} at offset {offset}")]
    NestingTooDeep { offset: usize, max: usize },
    #[error("unclosed '[' opened at offset {offset}, expecting ']'")]
    UnclosedClass { offset: usize },
    #[error("']' at offset {offset} has no matching '['")]
    UnmatchedCloseBracket { offset: usize },
    #[error("empty character class at offset {offset}")]
    EmptyClass { offset: usize },
    #[error(
        "invalid range '{from}-{to}' in character class at offset {offset}: start is after end"
    )]
    InvalidRange { offset: usize, from: char, to: char },
    #[error("alternations expand to more than {max} patterns")]
    TooManyExpansions { max: usize },
    #[error("pattern too complex to compile: {reason}")]
    TooComplex { reason: String },
}

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// A literal byte. `escaped` records whether it was written with `\`,
    /// so that [`expand_alternations`] can re-emit it faithfully.
    Byte { byte: u8, escaped: bool },
    /// `?`
    AnyButSlash,
    /// `*`
    Star,
    /// `**`
    DoubleStar,
    /// The extra mandatory byte of a `*`/`**` that forms a whole path
    /// component (not written in the source; emitted before the star).
    ComponentByte,
    /// `[...]` / `[^...]`: the source text and the resulting byte set.
    Class { source: String, set: Box<ByteSet> },
    /// `{a,b,...}`
    Alt(Vec<Vec<Node>>),
}

/// A set of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn empty() -> Self {
        ByteSet([0; 4])
    }
    fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1 << (b & 63);
    }
    fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }
    fn negate(&mut self) {
        for w in &mut self.0 {
            *w = !*w;
        }
    }
}

/// Parses the AARE text into nodes.
struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl<'a> Parser<'a> {
    fn parse(src: &'a str, limits: Limits) -> Result<Vec<Node>, AareError> {
        if src.len() > limits.max_len {
            return Err(AareError::TooLong {
                len: src.len(),
                max: limits.max_len,
            });
        }
        if let Some(offset) = src.bytes().position(|b| b == 0) {
            return Err(AareError::NulByte { offset });
        }
        let mut p = Parser {
            src: src.as_bytes(),
            pos: 0,
            limits,
        };
        // Explicit stack instead of recursion: each frame is an open `{`.
        struct Frame {
            open: usize,
            alts: Vec<Vec<Node>>,
        }
        let mut stack: Vec<Frame> = Vec::new();
        let mut cur: Vec<Node> = Vec::new();
        while p.pos < p.src.len() {
            let c = p.src[p.pos];
            match c {
                b'\\' => {
                    let byte = p.escape()?;
                    cur.push(Node::Byte {
                        byte,
                        escaped: true,
                    });
                }
                b'*' => {
                    let double = p.src.get(p.pos + 1) == Some(&b'*');
                    if matches!(cur.last(), Some(Node::Byte { byte: b'/', .. })) {
                        let mut s = p.pos;
                        while p.src.get(s) == Some(&b'*') {
                            s += 1;
                        }
                        if s == p.src.len() || p.src[s] == b'/' {
                            cur.push(Node::ComponentByte);
                        }
                    }
                    if double {
                        cur.push(Node::DoubleStar);
                        p.pos += 2;
                    } else {
                        cur.push(Node::Star);
                        p.pos += 1;
                    }
                }
                b'?' => {
                    cur.push(Node::AnyButSlash);
                    p.pos += 1;
                }
                b'[' => {
                    let node = p.class()?;
                    cur.push(node);
                }
                b']' => return Err(AareError::UnmatchedCloseBracket { offset: p.pos }),
                b'{' => {
                    if stack.len() >= p.limits.max_nesting {
                        return Err(AareError::NestingTooDeep {
                            offset: p.pos,
                            max: p.limits.max_nesting,
                        });
                    }
                    stack.push(Frame {
                        open: p.pos,
                        alts: Vec::new(),
                    });
                    // The content before the group is kept in the frame's
                    // parent: push `cur` as a pseudo alternative holder.
                    stack.last_mut().expect("just pushed").alts.push(cur);
                    cur = Vec::new();
                    p.pos += 1;
                }
                b',' if !stack.is_empty() => {
                    let frame = stack.last_mut().expect("non-empty");
                    frame.alts.push(std::mem::take(&mut cur));
                    p.pos += 1;
                }
                b'}' => {
                    let Some(mut frame) = stack.pop() else {
                        return Err(AareError::UnmatchedCloseBrace { offset: p.pos });
                    };
                    frame.alts.push(std::mem::take(&mut cur));
                    // alts[0] is the enclosing sequence saved at `{`.
                    let mut alts = frame.alts;
                    let parent = alts.remove(0);
                    if alts.len() < 2 {
                        return Err(AareError::SingleAlternative { offset: p.pos });
                    }
                    cur = parent;
                    cur.push(Node::Alt(alts));
                    p.pos += 1;
                }
                _ => {
                    cur.push(Node::Byte {
                        byte: c,
                        escaped: false,
                    });
                    p.pos += 1;
                }
            }
        }
        if let Some(frame) = stack.first() {
            return Err(AareError::UnclosedBrace { offset: frame.open });
        }
        Ok(cur)
    }

    /// Parses an escape sequence at `self.pos` (which is on the `\`) and
    /// returns the byte it stands for.
    fn escape(&mut self) -> Result<u8, AareError> {
        let start = self.pos;
        self.pos += 1;
        let Some(&c) = self.src.get(self.pos) else {
            return Err(AareError::TrailingEscape { offset: start });
        };
        if (b'0'..=b'7').contains(&c) {
            return Ok(self.number(8, 3).unwrap_or(c));
        }
        self.pos += 1;
        let byte = match c {
            b'a' => 0x07,
            b'e' => 0x1b,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            // Upstream: a numeric escape without digits means the letter
            // was quoted unnecessarily, and the letter itself is kept.
            b'd' => self.number(10, 3).unwrap_or(b'd'),
            b'x' => self.number(16, 2).unwrap_or(b'x'),
            _ => {
                // Any other byte stands for itself. For a multi-byte UTF-8
                // character the lead byte is escaped and the continuation
                // bytes follow as literals, which is the same thing.
                c
            }
        };
        Ok(byte)
    }

    /// Reads up to `max_digits` digits in `radix` with a value of at most
    /// 255 (like upstream's `strntol(.., 255, n)`: a digit that would push
    /// the value over 255 ends the number).
    fn number(&mut self, radix: u32, max_digits: usize) -> Option<u8> {
        let mut value: u32 = 0;
        let mut n = 0;
        while n < max_digits {
            let Some(d) = self
                .src
                .get(self.pos)
                .and_then(|&b| (b as char).to_digit(radix))
            else {
                break;
            };
            let next = value * radix + d;
            if next > 255 {
                break;
            }
            value = next;
            n += 1;
            self.pos += 1;
        }
        (n > 0).then_some(value as u8)
    }

    /// Parses `[...]` at `self.pos` (on the `[`).
    fn class(&mut self) -> Result<Node, AareError> {
        let open = self.pos;
        self.pos += 1;
        let negated = self.src.get(self.pos) == Some(&b'^');
        if negated {
            self.pos += 1;
        }
        let mut set = ByteSet::empty();
        let mut items = 0usize;
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(AareError::UnclosedClass { offset: open });
            };
            if c == b']' {
                if items == 0 {
                    return Err(AareError::EmptyClass { offset: open });
                }
                self.pos += 1;
                break;
            }
            let item_offset = self.pos;
            let from = self.class_byte()?;
            // A range `a-b`; a `-` first or last in the class is literal.
            if self.src.get(self.pos) == Some(&b'-')
                && self.src.get(self.pos + 1).is_some_and(|&b| b != b']')
            {
                self.pos += 1;
                let to = self.class_byte()?;
                if from > to {
                    return Err(AareError::InvalidRange {
                        offset: item_offset,
                        from: from as char,
                        to: to as char,
                    });
                }
                for b in from..=to {
                    set.insert(b);
                }
            } else {
                set.insert(from);
            }
            items += 1;
        }
        if negated {
            set.negate();
        }
        let source = String::from_utf8_lossy(&self.src[open..self.pos]).into_owned();
        Ok(Node::Class {
            source,
            set: Box::new(set),
        })
    }

    fn class_byte(&mut self) -> Result<u8, AareError> {
        match self.src.get(self.pos) {
            Some(b'\\') => self.escape(),
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(AareError::UnclosedClass { offset: self.pos }),
        }
    }
}

/// Checks that `pattern` is a well-formed AARE (default [`Limits`]).
pub fn validate(pattern: &str) -> Result<(), AareError> {
    Parser::parse(pattern, Limits::default()).map(|_| ())
}

/// Is `pattern` free of glob operators (after escapes), i.e. does it match
/// exactly one path? Returns that path when it is.
pub fn literal(pattern: &str) -> Result<Option<Vec<u8>>, AareError> {
    let nodes = Parser::parse(pattern, Limits::default())?;
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        match n {
            Node::Byte { byte, .. } => out.push(byte),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Collapses runs of `/` into one, as upstream does to file, link, mount
/// and socket-address patterns before compiling them (variables often
/// produce `//`, e.g. `@{PROC}/sys` with `@{PROC}=/proc/`). A leading `//`
/// followed by something other than `/` is kept (a Linux namespace path).
pub fn filter_slashes(pattern: &str) -> String {
    let (head, rest) = match pattern.strip_prefix("//") {
        Some(r) if !r.starts_with('/') => ("//", r),
        _ => ("", pattern),
    };
    let mut out = String::with_capacity(pattern.len());
    out.push_str(head);
    let mut prev_slash = false;
    for c in rest.chars() {
        if c == '/' {
            if !prev_slash {
                out.push(c);
            }
            prev_slash = true;
        } else {
            out.push(c);
            prev_slash = false;
        }
    }
    out
}

/// Escapes a literal path so that it can be used as an AARE matching
/// exactly that path.
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | '{' | '}' | ',' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn push_regex(nodes: &[Node], out: &mut String) {
    for n in nodes {
        match n {
            Node::Byte { byte, .. } => {
                let _ = write!(out, "\\x{byte:02x}");
            }
            Node::AnyButSlash | Node::ComponentByte => out.push_str("[^/\\x00]"),
            Node::Star => out.push_str("[^/\\x00]*"),
            Node::DoubleStar => out.push_str("[^\\x00]*"),
            Node::Class { set, .. } => {
                out.push('[');
                let mut any = false;
                let mut b: u16 = 1; // NUL never matches
                while b <= 255 {
                    if set.contains(b as u8) {
                        let start = b;
                        while b < 255 && set.contains((b + 1) as u8) {
                            b += 1;
                        }
                        let _ = write!(out, "\\x{start:02x}");
                        if b > start {
                            let _ = write!(out, "-\\x{b:02x}");
                        }
                        any = true;
                    }
                    b += 1;
                }
                if !any {
                    // A class that can only match NUL (`[\0]`) matches
                    // nothing in a path; `[^\x00-\xff]` never matches.
                    out.push_str("^\\x00-\\xff");
                }
                out.push(']');
            }
            Node::Alt(alts) => {
                out.push_str("(?:");
                for (i, a) in alts.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    push_regex(a, out);
                }
                out.push(')');
            }
        }
    }
}

/// A compiled AARE.
#[derive(Debug, Clone)]
pub struct Aare {
    source: String,
    literal: Option<Vec<u8>>,
    regex: regex::bytes::Regex,
}

impl Aare {
    /// Compiles `pattern` with the default [`Limits`].
    pub fn new(pattern: &str) -> Result<Aare, AareError> {
        Aare::with_limits(pattern, Limits::default())
    }

    /// Compiles `pattern` with explicit limits.
    pub fn with_limits(pattern: &str, limits: Limits) -> Result<Aare, AareError> {
        let nodes = Parser::parse(pattern, limits)?;
        let literal = nodes
            .iter()
            .map(|n| match n {
                Node::Byte { byte, .. } => Some(*byte),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>();
        let re = to_regex(&nodes);
        let regex = regex::bytes::RegexBuilder::new(&re)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(limits.max_program_size)
            .dfa_size_limit(limits.max_dfa_cache)
            .build()
            .map_err(|e| AareError::TooComplex {
                reason: e.to_string(),
            })?;
        Ok(Aare {
            source: pattern.to_owned(),
            literal,
            regex,
        })
    }

    /// The AARE text this was compiled from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The path this pattern matches when it has no glob operator.
    pub fn literal(&self) -> Option<&[u8]> {
        self.literal.as_deref()
    }

    /// The anchored, byte-oriented regex this pattern compiles to.
    pub fn regex_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Does the whole of `path` match?
    pub fn is_match(&self, path: &str) -> bool {
        self.is_match_bytes(path.as_bytes())
    }

    /// Does the whole of `path` (raw bytes) match?
    pub fn is_match_bytes(&self, path: &[u8]) -> bool {
        match &self.literal {
            Some(l) => l == path,
            None => self.regex.is_match(path),
        }
    }
}

impl std::fmt::Display for Aare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

fn to_regex(nodes: &[Node]) -> String {
    let mut re = String::from("^(?:");
    push_regex(nodes, &mut re);
    re.push_str(")$");
    re
}

/// Many AAREs compiled into one automaton: one pass over a path tells which
/// of them match.
#[derive(Debug, Clone)]
pub struct AareSet {
    sources: Vec<String>,
    set: regex::bytes::RegexSet,
}

impl AareSet {
    /// Compiles every pattern (default [`Limits`] per pattern; the program
    /// size limit applies to the whole set).
    pub fn new<I, S>(patterns: I) -> Result<AareSet, AareError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let limits = Limits::default();
        let mut sources = Vec::new();
        let mut res = Vec::new();
        for p in patterns {
            let p = p.as_ref();
            res.push(to_regex(&Parser::parse(p, limits)?));
            sources.push(p.to_owned());
        }
        let set = regex::bytes::RegexSetBuilder::new(&res)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(limits.max_program_size)
            .dfa_size_limit(limits.max_dfa_cache)
            .build()
            .map_err(|e| AareError::TooComplex {
                reason: e.to_string(),
            })?;
        Ok(AareSet { sources, set })
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether the set has no pattern.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The AARE text of pattern `i`.
    pub fn pattern(&self, i: usize) -> &str {
        &self.sources[i]
    }

    /// Indices (in insertion order) of the patterns matching `path`.
    pub fn matches(&self, path: &[u8]) -> Vec<usize> {
        self.set.matches(path).into_iter().collect()
    }
}

fn push_source(nodes: &[Node], out: &mut Vec<u8>) {
    for n in nodes {
        match n {
            Node::Byte { byte, escaped } => {
                let special =
                    matches!(byte, b'\\' | b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b',');
                if *escaped && (special || !byte.is_ascii_graphic()) {
                    if byte.is_ascii_graphic() {
                        out.push(b'\\');
                        out.push(*byte);
                    } else {
                        out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
                    }
                } else {
                    out.push(*byte);
                }
            }
            Node::AnyButSlash => out.push(b'?'),
            Node::Star => out.push(b'*'),
            Node::DoubleStar => out.extend_from_slice(b"**"),
            Node::ComponentByte => {}
            Node::Class { source, .. } => out.extend_from_slice(source.as_bytes()),
            Node::Alt(_) => unreachable!("alternations are expanded before printing"),
        }
    }
}

/// Expands every `{a,b}` alternation of `pattern` into separate patterns
/// (the "expand to the rule set" view of apparmor.d(5)): `/{a,b}/{c,}` gives
/// `/a/c`, `/a/`, `/b/c`, `/b/`. The results keep the other glob operators
/// and escapes; duplicates are removed, order is the order of the
/// alternatives. Fails with [`AareError::TooManyExpansions`] past
/// `max_expansions` results (counted before de-duplication).
///
/// Matching an [`Aare`] never needs this: alternations compile into the
/// automaton. The one place the two views differ is the whole-component
/// rule for `*`: in `/{a/,}*` the `*` is not preceded by a literal `/` in
/// the source, while in the expansion `/a/*` it is.
pub fn expand_alternations(pattern: &str, max_expansions: usize) -> Result<Vec<String>, AareError> {
    let limits = Limits {
        max_expansions,
        ..Limits::default()
    };
    let nodes = Parser::parse(pattern, limits)?;
    let mut results: Vec<Vec<Node>> = vec![Vec::new()];
    expand_into(&nodes, &mut results, max_expansions)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in results {
        let mut bytes = Vec::new();
        push_source(&r, &mut bytes);
        let s = String::from_utf8_lossy(&bytes).into_owned();
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Appends the expansions of `nodes` to every partial result.
fn expand_into(nodes: &[Node], results: &mut Vec<Vec<Node>>, max: usize) -> Result<(), AareError> {
    for n in nodes {
        match n {
            Node::Alt(alts) => {
                let mut next = Vec::new();
                for prefix in results.iter() {
                    for a in alts {
                        let mut partial = vec![prefix.clone()];
                        expand_into(a, &mut partial, max)?;
                        if next.len() + partial.len() > max {
                            return Err(AareError::TooManyExpansions { max });
                        }
                        next.extend(partial);
                    }
                }
                *results = next;
            }
            other => {
                for r in results.iter_mut() {
                    r.push(other.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Aare::new(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .is_match(path)
    }

    #[test]
    fn star_does_not_cross_slash() {
        assert!(m("/foo/*", "/foo/bar"));
        assert!(!m("/foo/*", "/foo/bar/baz"));
        assert!(m("/foo/*.txt", "/foo/a.txt"));
        assert!(m("/foo/*.txt", "/foo/.txt"));
        assert!(!m("/foo/*.txt", "/foo/a/b.txt"));
        assert!(m("/foo/a*", "/foo/a"));
    }

    #[test]
    fn whole_component_star_needs_a_byte() {
        assert!(!m("/foo/*", "/foo/"));
        assert!(!m("/foo/*", "/foo"));
        assert!(!m("/foo/**", "/foo/"));
        assert!(!m("/foo/**", "/foo"));
        assert!(m("/foo/**", "/foo/a"));
        assert!(m("/foo/**", "/foo/a/"));
        assert!(m("/foo/**", "/foo/a/b/c"));
        assert!(!m("/*/bar", "//bar"));
        assert!(m("/*/bar", "/x/bar"));
        // Not a whole component: may match nothing.
        assert!(m("/foo/*bar", "/foo/bar"));
        assert!(m("/foo/**bar", "/foo/bar"));
        assert!(m("/foo/b*", "/foo/b"));
        // Inside an alternation the star does not follow a literal '/'.
        assert!(m("/foo/{*,x}", "/foo/"));
    }

    #[test]
    fn double_star_crosses_slash() {
        assert!(m("/**", "/a/b/c"));
        assert!(m("/**", "/a"));
        assert!(!m("/**", "/"));
        assert!(m("/a/**/z", "/a/b/c/z"));
        assert!(m("/a/**/z", "/a/b/z"));
        assert!(!m("/a/**/z", "/a/z"));
        assert!(m("/a**", "/a"));
        assert!(m("/a**", "/a/b/c"));
    }

    #[test]
    fn question_mark() {
        assert!(m("/a?c", "/abc"));
        assert!(!m("/a?c", "/ac"));
        assert!(!m("/a?c", "/a/c"));
        assert!(!m("/a?c", "/abbc"));
    }

    #[test]
    fn directories_and_files_differ() {
        assert!(m("/dir/", "/dir/"));
        assert!(!m("/dir/", "/dir"));
        assert!(!m("/dir", "/dir/"));
    }

    #[test]
    fn classes() {
        assert!(m("/[abc]", "/b"));
        assert!(!m("/[abc]", "/d"));
        assert!(m("/[a-c]x", "/cx"));
        assert!(!m("/[a-c]x", "/dx"));
        assert!(m("/[^a-c]", "/d"));
        assert!(!m("/[^a-c]", "/a"));
        // A negated class matches '/', as upstream's does.
        assert!(m("/x[^k]", "/x/"));
        assert!(m("/[-a]", "/-"));
        assert!(m("/[a-]", "/-"));
        assert!(m("/[\\]]", "/]"));
        assert!(m("/[*?{]", "/*"));
        assert!(m("/[*?{]", "/{"));
        assert!(!m("/[*?{]", "/a"));
        assert!(m("/[0-9][0-9]", "/42"));
        assert!(!m("/[0-9][0-9]", "/4x"));
        assert!(m("/[^^]", "/a"));
        assert!(!m("/[^^]", "/^"));
    }

    #[test]
    fn docker_default_proc_sys_kernel() {
        // deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w
        let p = "/proc/sys/kernel/{?,??,[^s][^h][^m]**}";
        assert!(m(p, "/proc/sys/kernel/a"));
        assert!(m(p, "/proc/sys/kernel/ab"));
        assert!(m(p, "/proc/sys/kernel/core_pattern"));
        assert!(!m(p, "/proc/sys/kernel/shmmax"));
        assert!(!m(p, "/proc/sys/kernel/shm"));
        // [^s][^h][^m] each reject one letter in place only.
        assert!(!m(p, "/proc/sys/kernel/sem"));
        assert!(m(p, "/proc/sys/kernel/xyzw"));
        assert!(
            !m(p, "/proc/sys/kernel/xhmx"),
            "'h' in second place fails [^h]"
        );
    }

    #[test]
    fn alternations() {
        assert!(m("/{a,b}/c", "/a/c"));
        assert!(m("/{a,b}/c", "/b/c"));
        assert!(!m("/{a,b}/c", "/ab/c"));
        assert!(m("/x{,y}", "/x"));
        assert!(m("/x{,y}", "/xy"));
        assert!(m("/{a,{b,c}d}", "/cd"));
        assert!(m("/{a,{b,c}d}", "/a"));
        assert!(!m("/{a,{b,c}d}", "/c"));
        assert!(m("/{a,b,}", "/"));
        assert!(m("/usr/{,local/}bin/*", "/usr/local/bin/ls"));
        assert!(m("/usr/{,local/}bin/*", "/usr/bin/ls"));
    }

    #[test]
    fn escapes_and_regex_metacharacters() {
        assert!(m("/a\\*b", "/a*b"));
        assert!(!m("/a\\*b", "/axb"));
        assert!(m("/a\\{b,c\\}", "/a{b,c}"));
        assert!(m("/a.b", "/a.b"));
        assert!(!m("/a.b", "/axb"));
        assert!(m("/a+(b)|c$^", "/a+(b)|c$^"));
        assert!(m("/a\\x41", "/aA"));
        assert!(m("/a\\101", "/aA"));
        assert!(m("/a\\d65", "/aA"));
        assert!(m("/a\\tb", "/a\tb"));
        assert!(m("/a\\\\b", "/a\\b"));
        assert!(m("/a\\qb", "/aqb"));
        assert!(m("/a\\xzz", "/axzz"));
        assert!(m("/a\\623", "/a23"), "octal stops before exceeding 255");
        assert!(m("/é*", "/éa"));
        assert!(m("/a,b", "/a,b"));
    }

    #[test]
    fn literal_fast_path() {
        let a = Aare::new("/etc/passwd").unwrap();
        assert_eq!(a.literal(), Some(&b"/etc/passwd"[..]));
        assert!(a.is_match("/etc/passwd"));
        assert!(!a.is_match("/etc/passwdx"));
        assert_eq!(Aare::new("/etc/*").unwrap().literal(), None);
        assert_eq!(literal("/a\\*").unwrap(), Some(b"/a*".to_vec()));
    }

    #[test]
    fn errors_name_the_offset() {
        assert_eq!(
            validate("/a{b,c"),
            Err(AareError::UnclosedBrace { offset: 2 })
        );
        assert_eq!(
            validate("/a}"),
            Err(AareError::UnmatchedCloseBrace { offset: 2 })
        );
        assert_eq!(
            validate("/{a}"),
            Err(AareError::SingleAlternative { offset: 3 })
        );
        assert_eq!(
            validate("/[ab"),
            Err(AareError::UnclosedClass { offset: 1 })
        );
        assert_eq!(
            validate("/ab]"),
            Err(AareError::UnmatchedCloseBracket { offset: 3 })
        );
        assert_eq!(validate("/[]"), Err(AareError::EmptyClass { offset: 1 }));
        assert_eq!(
            validate("/[z-a]"),
            Err(AareError::InvalidRange {
                offset: 2,
                from: 'z',
                to: 'a'
            })
        );
        assert_eq!(
            validate("/a\\"),
            Err(AareError::TrailingEscape { offset: 2 })
        );
        assert_eq!(validate("/a\0"), Err(AareError::NulByte { offset: 2 }));
        let msg = validate("/a{b,c").unwrap_err().to_string();
        assert!(msg.contains("unclosed '{'"), "{msg}");
    }

    #[test]
    fn nesting_is_bounded_like_upstream() {
        let ok = format!("/{}{}", "{a,".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert!(validate(&ok).is_ok());
        let deep = format!(
            "/{}{}",
            "{a,".repeat(MAX_NESTING + 1),
            "}".repeat(MAX_NESTING + 1)
        );
        assert!(matches!(
            validate(&deep),
            Err(AareError::NestingTooDeep { .. })
        ));
        let very_deep = "{".repeat(100_000);
        assert!(matches!(
            validate(&very_deep),
            Err(AareError::TooLong { .. }) | Err(AareError::NestingTooDeep { .. })
        ));
    }

    #[test]
    fn expansion() {
        assert_eq!(
            expand_alternations("/{a,b}/{c,}", 100).unwrap(),
            vec!["/a/c", "/a/", "/b/c", "/b/"]
        );
        assert_eq!(
            expand_alternations("/{a,{b,c}d}*", 100).unwrap(),
            vec!["/a*", "/bd*", "/cd*"]
        );
        assert_eq!(expand_alternations("/{a,a}", 100).unwrap(), vec!["/a"]);
        assert_eq!(
            expand_alternations("/\\{x\\}{\\,,[a-c]}", 100).unwrap(),
            vec!["/\\{x\\}\\,", "/\\{x\\}[a-c]"]
        );
        // 2^13 = 8192 > 4096
        let many = "/{a,b}".repeat(13);
        assert_eq!(
            expand_alternations(&many, 4096),
            Err(AareError::TooManyExpansions { max: 4096 })
        );
        assert_eq!(
            expand_alternations(&"/{a,b}".repeat(12), 4096)
                .unwrap()
                .len(),
            4096
        );
    }

    #[test]
    fn huge_alternation_compiles_within_limits() {
        // 2^40 expansions if expanded, but the automaton stays small.
        let p = "/{a,b}".repeat(40);
        let a = Aare::new(&p).unwrap();
        assert!(a.is_match(&"/a".repeat(40)));
        assert!(!a.is_match(&"/c".repeat(40)));
    }

    #[test]
    fn wide_alternation_compiles() {
        let alts: Vec<String> = (0..20_000).map(|i| format!("f{i}")).collect();
        let a = Aare::new(&format!("/data/{{{}}}", alts.join(","))).unwrap();
        assert!(a.is_match("/data/f19999"));
        assert!(!a.is_match("/data/f20000"));
    }

    #[test]
    fn program_size_limit_is_a_clear_error() {
        let limits = Limits {
            max_program_size: 1024,
            ..Limits::default()
        };
        let e = Aare::with_limits(&"/{a,b}*".repeat(200), limits).unwrap_err();
        assert!(matches!(e, AareError::TooComplex { .. }), "{e}");
        assert!(e.to_string().starts_with("pattern too complex to compile"));
    }

    #[test]
    fn set_reports_every_match() {
        let set = AareSet::new(["/**", "/tmp/*", "/etc/passwd", "/tmp/x"]).unwrap();
        assert_eq!(set.matches(b"/tmp/x"), vec![0, 1, 3]);
        assert_eq!(set.matches(b"/etc/passwd"), vec![0, 2]);
        assert_eq!(set.matches(b"/"), Vec::<usize>::new());
        assert_eq!(set.pattern(1), "/tmp/*");
        assert!(AareSet::new(["/ok", "/bad{"]).is_err());
    }

    #[test]
    fn slashes_are_filtered_like_upstream() {
        assert_eq!(filter_slashes("/proc//sys///kernel"), "/proc/sys/kernel");
        assert_eq!(filter_slashes("//ns/a//b"), "//ns/a/b");
        assert_eq!(filter_slashes("///a"), "/a");
        assert_eq!(
            filter_slashes("/{,usr/}etc//ld.so.cache"),
            "/{,usr/}etc/ld.so.cache"
        );
        assert_eq!(filter_slashes("a"), "a");
        assert_eq!(filter_slashes(""), "");
    }

    #[test]
    fn escape_round_trips() {
        for s in ["/a*b", "/{x,y}", "/[q]", "/a\\b", "/plain", "/c,d^"] {
            let a = Aare::new(&escape(s)).unwrap();
            assert!(a.is_match(s), "{s}");
            assert_eq!(a.literal(), Some(s.as_bytes()));
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// A small AARE generator that also yields a path matching it.
        fn component() -> impl Strategy<Value = (String, String)> {
            prop_oneof![
                "[a-z]{1,4}".prop_map(|s| (s.clone(), s)),
                "[a-z]{0,3}".prop_map(|s| ("*".to_string(), format!("x{s}"))),
                "[a-z]{1,3}".prop_map(|s| ("?".to_string(), s[..1].to_string())),
                "[a-c]".prop_map(|s| ("[a-c]".to_string(), s)),
                ("[a-z]{1,3}", "[a-z]{1,3}").prop_map(|(a, b)| (format!("{{{a},{b}}}"), b.clone())),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn never_panics_on_arbitrary_patterns(p in ".{0,64}", path in ".{0,32}") {
                if let Ok(a) = Aare::new(&p) {
                    let _ = a.is_match(&path);
                }
                let _ = expand_alternations(&p, 64);
            }

            #[test]
            fn escaped_literal_matches_only_itself(s in "/[ -~]{0,20}", t in "/[ -~]{0,20}") {
                let a = Aare::new(&escape(&s)).unwrap();
                prop_assert!(a.is_match(&s));
                prop_assert_eq!(a.is_match(&t), s == t);
            }

            #[test]
            fn generated_pattern_matches_generated_path(parts in prop::collection::vec(component(), 1..5)) {
                let pattern: String = parts.iter().map(|(p, _)| format!("/{p}")).collect();
                let path: String = parts.iter().map(|(_, s)| format!("/{s}")).collect();
                let a = Aare::new(&pattern).unwrap();
                prop_assert!(a.is_match(&path), "{} !~ {}", pattern, path);
                // '*', '?' and classes never match across '/'.
                let extra = format!("{path}/zz");
                prop_assert!(!a.is_match(&extra) || pattern.contains("**"));
            }

            #[test]
            fn expansion_agrees_with_matcher(
                parts in prop::collection::vec(component(), 1..4),
                probe in prop::collection::vec("[a-c]{1,3}", 1..4),
            ) {
                let pattern: String = parts.iter().map(|(p, _)| format!("/{p}")).collect();
                let path: String = probe.iter().map(|s| format!("/{s}")).collect();
                let whole = Aare::new(&pattern).unwrap().is_match(&path);
                let expanded = expand_alternations(&pattern, 1024).unwrap();
                let any = expanded.iter().any(|e| Aare::new(e).unwrap().is_match(&path));
                prop_assert_eq!(whole, any, "{} vs {:?} on {}", pattern, expanded, path);
            }

            #[test]
            fn double_star_tail_matches_any_descendant(base in "/[a-z]{1,5}", rest in "[a-z]{1,4}(/[a-z]{0,4}){0,3}") {
                let a = Aare::new(&format!("{base}/**")).unwrap();
                let descendant = format!("{base}/{rest}");
                let base_dir = format!("{base}/");
                prop_assert!(a.is_match(&descendant));
                prop_assert!(!a.is_match(&base));
                prop_assert!(!a.is_match(&base_dir));
            }
        }
    }
}
