//! Physical lines to logical lines, as Docker's parser reads a Dockerfile.
//!
//! - A UTF-8 byte-order mark on the first line is dropped; `\r\n` endings are accepted.
//! - Parser directives (`# escape=`, `# syntax=`, `# check=`) are recognised only before any
//!   other line (a blank line, a comment, an unknown directive or an instruction ends them);
//!   keys are case-insensitive and each may appear once.
//! - A line whose first non-blank character is `#` is a comment; inside a continuation,
//!   comment lines are skipped and blank lines are skipped with a warning, as Docker does.
//! - The escape character at the end of a line (trailing blanks allowed) continues the
//!   instruction on the next line, unless it is itself escaped (`\\`).
//! - Heredoc bodies are read raw (comments and blanks included) after the logical line,
//!   once the instruction's parser has found `<<WORD` in it.

use crate::ast::Directives;
use crate::error::{ErrorKind, ParseError};

/// One instruction's text with its physical line span (1-based, inclusive).
#[derive(Debug)]
pub(crate) struct Logical {
    pub start: usize,
    pub text: String,
}

pub(crate) struct Scanner<'a> {
    lines: Vec<&'a str>,
    pos: usize,
    pub directives: Directives,
    directives_done: bool,
    seen: Vec<String>,
    pub warnings: Vec<String>,
}

const VALID_DIRECTIVES: [&str; 3] = ["escape", "syntax", "check"];

impl<'a> Scanner<'a> {
    pub fn new(src: &'a str) -> Self {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        Scanner {
            lines: src.split_inclusive('\n').collect(),
            pos: 0,
            directives: Directives::default(),
            directives_done: false,
            seen: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A scanner for a lone instruction (an `ONBUILD` trigger): no directives, given escape.
    pub fn for_instruction(src: &'a str, escape: char) -> Self {
        let mut scanner = Scanner::new(src);
        scanner.directives.escape = escape;
        scanner.directives_done = true;
        scanner
    }

    /// The number of physical lines consumed so far (the current line, 1-based).
    pub fn line(&self) -> usize {
        self.pos
    }

    /// The next logical line, or `None` at the end of the input.
    pub fn next_logical(&mut self) -> Result<Option<Logical>, ParseError> {
        while self.pos < self.lines.len() {
            let raw = trim_newline(self.lines[self.pos]);
            let trimmed = raw.trim_start();
            self.directive(trimmed, self.pos + 1)?;
            self.pos += 1;
            let start = self.pos;
            let content = if trimmed.starts_with('#') {
                ""
            } else {
                trimmed
            };
            let escape = self.directives.escape;
            let (mut text, mut end_of_line) = trim_continuation(content, escape);
            if end_of_line && text.is_empty() {
                continue;
            }
            let mut empty_continuation = false;
            while !end_of_line && self.pos < self.lines.len() {
                let raw = trim_newline(self.lines[self.pos]);
                self.directive(raw, self.pos + 1)?;
                self.pos += 1;
                if raw.trim_start().starts_with('#') {
                    continue;
                }
                if raw.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (more, eol) = trim_continuation(raw, escape);
                text.push_str(&more);
                end_of_line = eol;
            }
            if empty_continuation {
                self.warnings.push(format!(
                    "line {start}: empty continuation line found in: {text}"
                ));
            }
            if text.trim().is_empty() {
                continue;
            }
            return Ok(Some(Logical { start, text }));
        }
        Ok(None)
    }

    /// Reads a heredoc body up to the line equal to `name` (after leading tabs when
    /// `strip_tabs`); the body keeps its line endings.
    pub fn read_heredoc(&mut self, name: &str, strip_tabs: bool) -> Result<String, ErrorKind> {
        let mut content = String::new();
        while self.pos < self.lines.len() {
            let raw = self.lines[self.pos];
            self.pos += 1;
            let mut candidate = trim_newline(raw);
            if strip_tabs {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == name {
                return Ok(content);
            }
            content.push_str(raw);
        }
        Err(ErrorKind::UnterminatedHeredoc(name.to_string()))
    }

    fn directive(&mut self, line: &str, number: usize) -> Result<(), ParseError> {
        if self.directives_done {
            return Ok(());
        }
        let Some((key, value)) = split_directive(line) else {
            self.directives_done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !VALID_DIRECTIVES.contains(&key.as_str()) {
            self.directives_done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(ParseError::new(number, ErrorKind::RepeatedDirective(key)));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value {
                "\\" => self.directives.escape = '\\',
                "`" => self.directives.escape = '`',
                other => {
                    let kind = ErrorKind::InvalidEscape(other.to_string());
                    return Err(ParseError::new(number, kind));
                }
            },
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(())
    }
}

/// Go's regexp `\s`: ASCII blanks.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// `# key = value` → `(key, value)`; `key` is `[a-zA-Z][a-zA-Z0-9]*`, `value` non-empty.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = rest.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

pub(crate) fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Removes a trailing line-continuation escape (and the blanks after it); `true` when the
/// line ends the instruction.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_forms() {
        assert_eq!(split_directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(split_directive("#escape = \\ "), Some(("escape", "\\")));
        assert_eq!(
            split_directive("# syntax=docker/dockerfile:1"),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(split_directive("# just a comment"), None);
        assert_eq!(split_directive("# 1abc=x"), None);
        assert_eq!(split_directive("# key="), None);
        assert_eq!(split_directive("FROM x"), None);
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(
            trim_continuation("RUN a \\", '\\'),
            ("RUN a ".to_string(), false)
        );
        assert_eq!(
            trim_continuation("RUN a \\  \t", '\\'),
            ("RUN a ".to_string(), false)
        );
        assert_eq!(trim_continuation("\\", '\\'), (String::new(), false));
        assert_eq!(
            trim_continuation("RUN a \\\\", '\\'),
            ("RUN a \\\\".to_string(), true)
        );
        assert_eq!(
            trim_continuation("RUN a `", '`'),
            ("RUN a ".to_string(), false)
        );
        assert_eq!(
            trim_continuation("RUN a \\", '`'),
            ("RUN a \\".to_string(), true)
        );
    }
}
