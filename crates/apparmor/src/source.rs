//! Character sources with an include stack.
//!
//! AppArmor's `include` is textual: the lexer switches to the included file
//! and returns to the includer at its end. [`Reader`] models exactly that: a
//! stack of sources; a token never spans two sources.

use std::sync::Arc;

use crate::ast::Span;

/// Largest file accepted, in bytes.
pub const MAX_FILE_SIZE: usize = 8 * 1024 * 1024;
/// Deepest include nesting accepted (upstream has a similar bound).
pub const MAX_INCLUDE_DEPTH: usize = 64;

pub(crate) struct Source {
    pub file: Arc<str>,
    pub text: Vec<char>,
    pub pos: usize,
    pub line: u32,
    pub col: u32,
}

impl Source {
    pub fn new(file: &str, text: &str) -> Source {
        Source {
            file: Arc::from(file),
            text: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
        }
    }
}

pub(crate) struct Reader {
    pub stack: Vec<Source>,
}

impl Reader {
    pub fn new(src: Source) -> Reader {
        Reader { stack: vec![src] }
    }

    fn top(&self) -> &Source {
        // The stack is never empty: the root source is never popped.
        &self.stack[self.stack.len() - 1]
    }

    pub fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    pub fn peek_at(&self, k: usize) -> Option<char> {
        let s = self.top();
        s.text.get(s.pos + k).copied()
    }

    pub fn starts_with(&self, lit: &str) -> bool {
        lit.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    pub fn bump(&mut self) -> Option<char> {
        let n = self.stack.len() - 1;
        let s = &mut self.stack[n];
        let c = s.text.get(s.pos).copied()?;
        s.pos += 1;
        if c == '\n' {
            s.line += 1;
            s.col = 1;
        } else {
            s.col += 1;
        }
        Some(c)
    }

    pub fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    pub fn span(&self) -> Span {
        let s = self.top();
        Span {
            file: s.file.clone(),
            line: s.line,
            column: s.col,
        }
    }

    /// At the end of the current source.
    pub fn at_end(&self) -> bool {
        let s = self.top();
        s.pos >= s.text.len()
    }

    /// Pop a finished included source; false at the root.
    pub fn pop_finished(&mut self) -> bool {
        if self.stack.len() > 1 && self.at_end() {
            self.stack.pop();
            true
        } else {
            false
        }
    }

    pub fn push(&mut self, src: Source) {
        self.stack.push(src);
    }

    pub fn depth(&self) -> usize {
        self.stack.len()
    }
}
