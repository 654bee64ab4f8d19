//! `.dockerignore`: which paths of the build context are not sent to the builder.
//!
//! File format (as Docker reads it): one pattern per line; a line starting with `#` is a
//! comment (only at the very start of the line); blanks around a pattern are dropped, as are
//! empty lines; a UTF-8 byte-order mark is ignored. A pattern starting with `!` is an
//! exception (re-includes what it matches). Each pattern is cleaned like a path
//! (`./a//b/` → `a/b`, `a/../b` → `b`) and a leading `/` is dropped, so patterns are always
//! relative to the context root.
//!
//! Matching (Docker's rules): `*` matches any run of characters other than `/`, `?` one
//! character other than `/`, `[...]` a class as in Go's `filepath.Match` (ranges `a-z`,
//! negation with a leading `^` only, `\` escapes inside), `\x` the character `x`. `**`
//! matches any number of directories: `**/` (or `**` not at the end) matches zero or more
//! whole directories, a final `**` matches anything. A pattern matches a path when it
//! matches the whole path or any of its parent directories (`node_modules` excludes
//! `node_modules/x/y`). The last pattern that matches decides: excluded unless it is an
//! exception. Malformed patterns (unclosed `[`, empty class, bad range, trailing `\`) are
//! errors.

use crate::error::IgnoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `**` followed by more pattern: `(.*/)?`
    Dirs,
    /// `**` at the end: `.*`
    Rest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// One cleaned pattern of a `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern {
    /// The cleaned pattern, without the `!`.
    pub pattern: String,
    /// An exception line (`!pattern`).
    pub exception: bool,
    /// Its line in the file (1-based).
    pub line: usize,
    tokens: Vec<Token>,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<IgnorePattern>,
}

impl DockerIgnore {
    /// Parses the content of a `.dockerignore` file.
    pub fn parse(content: &str) -> Result<DockerIgnore, IgnoreError> {
        let content = content.strip_prefix('\u{feff}').unwrap_or(content);
        let lines = content.lines().enumerate().map(|(i, l)| (i + 1, l));
        Self::from_lines(lines.filter(|(_, l)| !l.starts_with('#')))
    }

    /// A matcher from patterns given one by one (as `--exclude` flags are).
    pub fn from_patterns<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<DockerIgnore, IgnoreError> {
        Self::from_lines(patterns.into_iter().enumerate().map(|(i, l)| (i + 1, l)))
    }

    fn from_lines<'a>(
        lines: impl Iterator<Item = (usize, &'a str)>,
    ) -> Result<DockerIgnore, IgnoreError> {
        let mut patterns = Vec::new();
        for (line, text) in lines {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let (exception, text) = match text.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, text),
            };
            if exception && text.is_empty() {
                return Err(IgnoreError::LoneExclamation { line });
            }
            let cleaned = clean(text);
            let pattern = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => cleaned,
            };
            let tokens = compile(&pattern).map_err(|reason| IgnoreError::BadPattern {
                line,
                pattern: pattern.clone(),
                reason,
            })?;
            patterns.push(IgnorePattern {
                pattern,
                exception,
                line,
                tokens,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    pub fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    /// Whether some line is an exception (`!`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `path` (relative to the context root, `/`-separated; cleaned here) is left
    /// out of the context. `is_dir` does not change the answer (Docker has no directory-only
    /// patterns: a trailing `/` is cleaned away); it is taken so that walkers state what
    /// they hold. The context root itself is never excluded.
    pub fn is_excluded(&self, path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let path = clean_relative(path);
        if path.is_empty() {
            return false;
        }
        let chars: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            if p.exception != excluded {
                continue;
            }
            let hit = matches(&p.tokens, &chars)
                || parents.iter().any(|&end| matches(&p.tokens, &chars[..end]));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether a walker must descend into directory `dir`: it is not excluded, or it is but
    /// an exception may re-include something below it (so the walker must look there).
    /// `false` means nothing below `dir` is in the context.
    pub fn should_descend(&self, dir: &str) -> bool {
        if !self.is_excluded(dir, true) {
            return true;
        }
        let mut prefix: Vec<char> = clean_relative(dir).chars().collect();
        prefix.push('/');
        self.patterns
            .iter()
            .any(|p| p.exception && viable(&p.tokens, &prefix))
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// A context path cleaned and made relative (`""` for the root).
fn clean_relative(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.trim_start_matches('/') {
        "." => String::new(),
        rest => rest.to_string(),
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::Rest
                } else {
                    Token::Dirs
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Any),
            '\\' => {
                let escaped = chars.get(i).ok_or("trailing backslash")?;
                tokens.push(Token::Lit(*escaped));
                i += 1;
            }
            '[' => {
                let (token, next) = class(&chars, i)?;
                tokens.push(token);
                i = next;
            }
            c => tokens.push(Token::Lit(c)),
        }
    }
    Ok(tokens)
}

/// A `[...]` class whose body starts at `i`; returns the token and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Result<(Token, usize), &'static str> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, next) = class_char(chars, i + 1)?;
            hi = h;
            i = next;
            if hi < lo {
                return Err("bad range in character class");
            }
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: usize) -> Result<(char, usize), &'static str> {
    match chars.get(i) {
        None => Err("unclosed character class"),
        Some('-' | ']') => Err("empty or malformed character class"),
        Some('\\') => chars
            .get(i + 1)
            .map(|c| (*c, i + 2))
            .ok_or("unclosed character class"),
        Some(c) => Ok((*c, i + 1)),
    }
}

fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated
}

/// Whether `tokens` match all of `text` (dynamic programming over positions, so `*` and
/// `**` never backtrack exponentially).
fn matches(tokens: &[Token], text: &[char]) -> bool {
    // reach[j]: the tokens so far can match text[..j].
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            if !reach[j] {
                continue;
            }
            match token {
                Token::Lit(l) => {
                    if text.get(j) == Some(l) {
                        next[j + 1] = true;
                    }
                }
                Token::Any => {
                    if text.get(j).is_some_and(|c| *c != '/') {
                        next[j + 1] = true;
                    }
                }
                Token::Class { negated, ranges } => {
                    if text
                        .get(j)
                        .is_some_and(|c| class_matches(*negated, ranges, *c))
                    {
                        next[j + 1] = true;
                    }
                }
                Token::Star => {
                    next[j] = true;
                    let mut k = j;
                    while k < text.len() && text[k] != '/' {
                        k += 1;
                        next[k] = true;
                    }
                }
                Token::Dirs => {
                    next[j] = true;
                    for k in j..text.len() {
                        if text[k] == '/' {
                            next[k + 1] = true;
                        }
                    }
                }
                Token::Rest => next[j..].iter_mut().for_each(|r| *r = true),
            }
        }
        reach = next;
    }
    reach[text.len()]
}

/// Whether `tokens` can match some path that starts with `prefix` (all of `prefix` consumed,
/// the rest of the pattern still to match something).
fn viable(tokens: &[Token], prefix: &[char]) -> bool {
    let mut reach = vec![false; prefix.len() + 1];
    reach[0] = true;
    for token in tokens {
        if reach[prefix.len()] {
            return true;
        }
        let mut next = vec![false; prefix.len() + 1];
        for j in 0..prefix.len() {
            if !reach[j] {
                continue;
            }
            let c = prefix[j];
            match token {
                Token::Lit(l) if *l == c => next[j + 1] = true,
                Token::Any if c != '/' => next[j + 1] = true,
                Token::Class { negated, ranges } if class_matches(*negated, ranges, c) => {
                    next[j + 1] = true
                }
                Token::Star => {
                    next[j] = true;
                    let mut k = j;
                    while k < prefix.len() && prefix[k] != '/' {
                        k += 1;
                        next[k] = true;
                    }
                }
                Token::Dirs => {
                    next[j] = true;
                    next[prefix.len()] = true;
                    for k in j..prefix.len() {
                        if prefix[k] == '/' {
                            next[k + 1] = true;
                        }
                    }
                }
                Token::Rest => next[j..].iter_mut().for_each(|r| *r = true),
                _ => {}
            }
        }
        reach = next;
    }
    reach[prefix.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean_relative("/"), "");
        assert_eq!(clean_relative("./x/"), "x");
    }

    #[test]
    fn classes() {
        let t = compile("[a-c]").unwrap();
        assert!(matches(&t, &['b']));
        assert!(!matches(&t, &['d']));
        let t = compile("[^a]").unwrap();
        assert!(matches(&t, &['!']));
        assert!(!matches(&t, &['a']));
        let t = compile("[!a]").unwrap();
        assert!(matches(&t, &['!']) && matches(&t, &['a']));
        let t = compile("[\\]]").unwrap();
        assert!(matches(&t, &[']']));
        for bad in ["[", "[]", "[^]", "[a-]", "[z-a]", "a\\", "[a"] {
            assert!(compile(bad).is_err(), "{bad}");
        }
    }
}
