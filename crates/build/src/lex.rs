//! Variable substitution and word splitting, as Docker's shell lexer does them for `ADD`,
//! `COPY`, `ENV`, `EXPOSE`, `FROM`, `LABEL`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR` and
//! `ARG` (not `RUN`/`CMD`/`ENTRYPOINT`/`SHELL`/`HEALTHCHECK`, whose shell does it, nor
//! `ONBUILD`, whose trigger is substituted when it runs in a later build).
//!
//! Supported, exactly the forms of the lexer Docker ships (classic builder and BuildKit):
//!
//! | form | value |
//! |---|---|
//! | `$V`, `${V}` | V's value, empty when unset |
//! | `${V:-w}` / `${V-w}` | V's value, or `w` when V is unset or empty / unset |
//! | `${V:+w}` / `${V+w}` | `w` when V is set and not empty / set, else empty |
//! | `${V:?msg}` / `${V?msg}` | V's value; an error (`V: msg`) when unset or empty / unset |
//! | `${V#pat}` / `${V##pat}` | V without its shortest / longest prefix matching `pat` |
//! | `${V%pat}` / `${V%%pat}` | V without its shortest / longest suffix matching `pat` |
//! | `${V/pat/rep}` / `${V//pat/rep}` | first / every longest match of `pat` replaced by `rep` |
//!
//! `w`, `msg`, `pat` and `rep` may themselves contain substitutions and quotes. Patterns know
//! `*` (any string), `?` (one character) and `\*`, `\?`, `\\` (no bracket classes, as in
//! Docker). Names are letters, digits and `_`; `$1` reads the name `1`, and `$@ $* $# $? $-
//! $$ $! $0` read one-character names (unset, so empty, unless the variables hold them). A `$`
//! followed by anything else is literal.
//!
//! Quotes: text in `'...'` is literal; in `"..."` substitution happens and the escape
//! character escapes only `"`, `$` and itself. Outside quotes the escape character (`\` or
//! `` ` `` per `# escape=`) makes the next character literal; at the end of the word it is
//! dropped. Word splitting (for `EXPOSE`) splits on blanks outside quotes, including blanks
//! that come out of a substitution.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::error::{ExpandError, ExpandErrorKind as K};
use crate::pattern::Pattern;

/// Where substitution finds variable values.
pub trait Vars {
    /// The value of `name`, `None` when unset (an empty value is set).
    fn var(&self, name: &str) -> Option<String>;
}

impl<S: BuildHasher> Vars for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Pairs, the last pair of a name winning (like an environment list).
impl Vars for [(String, String)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Vars for Vec<(String, String)> {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

/// No variables at all.
impl Vars for () {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// Variables from a closure.
pub struct VarFn<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars for VarFn<F> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

/// Substitutes variables in `word` with Docker's default escape character `\`.
pub fn expand(word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
    Lexer::new('\\').expand(word, vars)
}

/// The shell lexer, for one escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset: bool,
    skip_quotes: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keeps quote characters in the output (heredoc delimiter analysis).
    pub(crate) fn raw_quotes(mut self) -> Self {
        self.raw_quotes = true;
        self
    }

    /// Leaves unset variables as written instead of empty.
    pub(crate) fn skip_unset(mut self) -> Self {
        self.skip_unset = true;
        self
    }

    /// Substitutes variables in one word; quotes and escapes are removed, blanks kept.
    pub fn expand(&self, word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        self.run(word, vars).map(|(result, _)| result)
    }

    /// Substitutes and splits into words (`EXPOSE $PORTS` with `PORTS="80 443"` gives two).
    pub fn expand_words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
        self.run(word, vars).map(|(_, words)| words)
    }

    /// Substitutes variables in a heredoc body (`COPY <<EOF` with an unquoted delimiter):
    /// quotes are ordinary characters there and the escape character is `\`.
    pub fn expand_heredoc(&self, content: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        let lexer = Lexer {
            escape: '\\',
            skip_quotes: true,
            ..Lexer::new('\\')
        };
        lexer.expand(content, vars)
    }

    fn run(&self, word: &str, vars: &dyn Vars) -> Result<(String, Vec<String>), ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        let mut state = State {
            depth: 0,
            lexer: *self,
            chars: &chars,
            pos: 0,
            vars,
            raw_escapes: self.raw_escapes,
        };
        state
            .process(None, self.raw_escapes)
            .map_err(|reason| ExpandError {
                word: word.to_string(),
                reason,
            })
    }
}

/// Substitutions nested deeper than this are refused (no stack exhaustion on hostile input).
const MAX_NESTING: usize = 64;

struct State<'a> {
    depth: usize,
    lexer: Lexer,
    chars: &'a [char],
    pos: usize,
    vars: &'a dyn Vars,
    raw_escapes: bool,
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw_char(c);
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Processes up to `stop` (consumed) or the end; `(result, words)`.
    fn process(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), K> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.process_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), K> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.lexer.skip_quotes;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            if c == '$' {
                let value = self.dollar()?;
                words.add_string(&value);
                result.push_str(&value);
            } else if quotes && (c == '\'' || c == '"') {
                let value = if c == '\'' {
                    self.single_quoted()?
                } else {
                    self.double_quoted()?
                };
                words.add_raw_string(&value);
                result.push_str(&value);
            } else {
                self.pos += 1;
                if c != self.lexer.escape {
                    words.add_char(c);
                    result.push(c);
                    continue;
                }
                if self.raw_escapes {
                    words.add_raw_char(c);
                    result.push(c);
                }
                let Some(next) = self.peek() else { break };
                self.pos += 1;
                words.add_raw_char(next);
                result.push(next);
            }
        }
        match stop {
            Some('/') => Err(K::MissingSlash),
            Some(_) => Err(K::MissingBrace),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Result<String, K> {
        self.pos += 1;
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        loop {
            let Some(c) = self.peek() else {
                return Err(K::UnterminatedSingleQuote);
            };
            self.pos += 1;
            if c == '\'' {
                if self.lexer.raw_quotes {
                    out.push('\'');
                }
                return Ok(out);
            }
            out.push(c);
        }
    }

    fn double_quoted(&mut self) -> Result<String, K> {
        self.pos += 1;
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(K::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c != self.lexer.escape {
                        out.push(c);
                        continue;
                    }
                    if self.raw_escapes {
                        out.push(c);
                    }
                    match self.peek() {
                        None => {}
                        Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                            self.pos += 1;
                            out.push(n);
                        }
                        Some(_) if self.raw_escapes => {}
                        Some(_) => out.push(c),
                    }
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.var(name)
    }

    fn dollar(&mut self) -> Result<String, K> {
        self.depth += 1;
        let out = if self.depth > MAX_NESTING {
            Err(K::TooDeep)
        } else {
            self.dollar_inner()
        };
        self.depth -= 1;
        out
    }

    fn dollar_inner(&mut self) -> Result<String, K> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(K::MissingBrace),
            Some('{' | '}' | ':') => return Err(K::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(op) = self.peek() else {
            return Err(K::MissingBrace);
        };
        self.pos += 1;
        match op {
            '}' => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.modifier(&name, op),
            '/' => self.replace(&name),
            other => Err(K::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name:-w}` and friends; `op` has been consumed.
    fn modifier(&mut self, name: &str, op: char) -> Result<String, K> {
        let (colon, op) = if op == ':' {
            let Some(next) = self.peek() else {
                return Err(K::MissingBrace);
            };
            self.pos += 1;
            (true, next)
        } else {
            (false, op)
        };
        let text = if colon {
            format!(":{op}")
        } else {
            op.to_string()
        };
        let (word, _) = self.process(Some('}'), op == '#' || op == '%')?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset {
            return Ok(format!("${{{name}{text}{word}}}"));
        }
        let unset = value.is_none() || (colon && value.as_deref() == Some(""));
        match op {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => match value {
                Some(v) if !(colon && v.is_empty()) => Ok(v),
                _ => {
                    let default = if value.is_none() {
                        "is not allowed to be unset"
                    } else {
                        "is not allowed to be empty"
                    };
                    let message = if word.is_empty() {
                        default.to_string()
                    } else {
                        word
                    };
                    Err(K::Required {
                        name: name.to_string(),
                        message,
                    })
                }
            },
            '#' | '%' => {
                let greedy = word.starts_with(op);
                let pattern_text = if greedy {
                    &word[op.len_utf8()..]
                } else {
                    word.as_str()
                };
                let pattern = Pattern::compile(pattern_text)?;
                let value = value.unwrap_or_default();
                Ok(if op == '#' {
                    pattern.trim_prefix(&value, greedy)
                } else {
                    pattern.trim_suffix(&value, greedy)
                })
            }
            _ => Err(K::UnsupportedModifier(text)),
        }
    }

    /// `${name/pat/rep}` and `${name//pat/rep}`; the first `/` has been consumed.
    fn replace(&mut self, name: &str) -> Result<String, K> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let (pattern_text, _) = self.process(Some('/'), true)?;
        let (replacement, _) = self.process(Some('}'), true)?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset {
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern_text}/{replacement}}}"));
        }
        let pattern = Pattern::compile(&pattern_text)?;
        Ok(pattern.replace(&value.unwrap_or_default(), &replacement, all))
    }

    /// A variable name: letters, digits and `_`; or digits only when it starts with one; or
    /// one special-parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        let Some(first) = self.peek() else {
            return name;
        };
        if first.is_numeric() {
            while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                name.push(c);
                self.pos += 1;
            }
            return name;
        }
        if matches!(first, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
            self.pos += 1;
            name.push(first);
            return name;
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}
