//! Shell patterns of `${V#pat}`, `${V%pat}` and `${V/pat/rep}`: `*` matches any string, `?`
//! one character, `\*` `\?` `\\` are literal, `\}` and `\/` stand for `}` and `/`; anything
//! else after `\` is an error (as in Docker). Matching runs a small NFA over characters, so
//! it never backtracks exponentially.

use crate::error::ExpandErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Lit(char),
    Any,
    Star,
}

#[derive(Debug)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    pub fn compile(text: &str) -> Result<Pattern, ExpandErrorKind> {
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::Any),
                '\\' => match chars.get(i) {
                    Some('}' | '/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        tokens.push(Token::Lit(n));
                        i += 1;
                    }
                    other => {
                        let escaped = other.map(|c| c.to_string()).unwrap_or_default();
                        return Err(ExpandErrorKind::InvalidPattern {
                            pattern: text.to_string(),
                            escaped,
                        });
                    }
                },
                c => tokens.push(Token::Lit(c)),
            }
        }
        Ok(Pattern { tokens })
    }

    /// Every end position `e` such that the pattern matches `s[start..e]`, ascending.
    fn ends(&self, s: &[char], start: usize) -> Vec<usize> {
        let m = self.tokens.len();
        let mut states = vec![false; m + 1];
        states[0] = true;
        self.close(&mut states);
        let mut ends = Vec::new();
        let mut pos = start;
        loop {
            if states[m] {
                ends.push(pos);
            }
            let Some(&c) = s.get(pos) else { break };
            let mut next = vec![false; m + 1];
            let mut alive = false;
            for (i, token) in self.tokens.iter().enumerate() {
                if !states[i] {
                    continue;
                }
                let target = match token {
                    Token::Lit(l) if *l == c => i + 1,
                    Token::Any => i + 1,
                    Token::Star => i,
                    Token::Lit(_) => continue,
                };
                next[target] = true;
                alive = true;
            }
            if !alive {
                break;
            }
            self.close(&mut next);
            states = next;
            pos += 1;
        }
        ends
    }

    /// Stars may match nothing: a state before a star also stands after it.
    fn close(&self, states: &mut [bool]) {
        for (i, token) in self.tokens.iter().enumerate() {
            if states[i] && *token == Token::Star {
                states[i + 1] = true;
            }
        }
    }

    pub fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let ends = self.ends(&chars, 0);
        let cut = if longest { ends.last() } else { ends.first() };
        match cut {
            Some(&e) => chars[e..].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Suffixes are prefixes of the reversed value matched by the reversed pattern.
    pub fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let reversed: Vec<char> = value.chars().rev().collect();
        let pattern = Pattern {
            tokens: self.tokens.iter().rev().copied().collect(),
        };
        let ends = pattern.ends(&reversed, 0);
        let cut = if longest { ends.last() } else { ends.first() };
        match cut {
            Some(&len) => reversed[len..].iter().rev().collect(),
            None => value.to_string(),
        }
    }

    /// The leftmost match at or after `from`, longest at that start: `(start, end)`. One pass
    /// over `s`: every NFA state remembers the earliest start that reached it.
    fn find(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        let m = self.tokens.len();
        let mut states: Vec<Option<usize>> = vec![None; m + 1];
        let mut best: Option<(usize, usize)> = None;
        let mut pos = from;
        loop {
            if best.is_none() && states[0].is_none() {
                states[0] = Some(pos);
            }
            self.close_starts(&mut states);
            if let Some(start) = states[m] {
                if !matches!(best, Some((b, _)) if start > b) {
                    best = Some((start, pos));
                }
            }
            if let Some((b, _)) = best {
                states
                    .iter_mut()
                    .filter(|st| st.is_some_and(|st| st > b))
                    .for_each(|st| *st = None);
            }
            let Some(&c) = s.get(pos) else { break };
            let mut next: Vec<Option<usize>> = vec![None; m + 1];
            for (i, token) in self.tokens.iter().enumerate() {
                let Some(start) = states[i] else { continue };
                let target = match token {
                    Token::Lit(l) if *l == c => i + 1,
                    Token::Any => i + 1,
                    Token::Star => i,
                    Token::Lit(_) => continue,
                };
                next[target] = Some(next[target].map_or(start, |t| t.min(start)));
            }
            states = next;
            pos += 1;
            if best.is_some() && states.iter().all(Option::is_none) {
                break;
            }
        }
        best
    }

    fn close_starts(&self, states: &mut [Option<usize>]) {
        for (i, token) in self.tokens.iter().enumerate() {
            if let (Token::Star, Some(start)) = (token, states[i]) {
                states[i + 1] = Some(states[i + 1].map_or(start, |t| t.min(start)));
            }
        }
    }

    /// Replaces the first (or every non-overlapping) longest match with `replacement`;
    /// an empty match right after a previous match is not replaced.
    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= chars.len() {
            let Some((start, end)) = self.find(&chars, search) else {
                break;
            };
            out.extend(&chars[last_end..start]);
            if end > last_end || start == 0 {
                out.push_str(replacement);
            }
            last_end = end;
            search = if end > search { end } else { search + 1 };
            if !all {
                break;
            }
        }
        out.extend(&chars[last_end.min(chars.len())..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::compile(s).unwrap()
    }

    #[test]
    fn prefix_and_suffix() {
        assert_eq!(p("*/").trim_prefix("a/b/c", false), "b/c");
        assert_eq!(p("*/").trim_prefix("a/b/c", true), "c");
        assert_eq!(p(".*").trim_suffix("f.tar.gz", false), "f.tar");
        assert_eq!(p(".*").trim_suffix("f.tar.gz", true), "f");
        assert_eq!(p("x").trim_prefix("abc", true), "abc");
        assert_eq!(p("a?c").trim_prefix("abcd", false), "d");
        assert_eq!(p("\\*").trim_prefix("*x", false), "x");
    }

    #[test]
    fn replacement() {
        assert_eq!(p("o").replace("foo", "0", false), "f0o");
        assert_eq!(p("o").replace("foo", "0", true), "f00");
        assert_eq!(p("o*").replace("foo bar", "X", false), "fX");
        assert_eq!(p("x*").replace("abc", "-", true), "abc");
        assert_eq!(p("*").replace("ab", "-", true), "-");
        assert_eq!(p("").replace("ab", "-", true), "-a-b-");
        assert_eq!(p("b*c").replace("abxcbc", "-", false), "a-");
        assert_eq!(p("?c").replace("abcbc", "-", true), "a--");
        assert_eq!(p("x?").replace("axbx", "-", true), "a-x");
    }

    #[test]
    fn linear_on_long_values() {
        let long = "a".repeat(200_000);
        assert_eq!(p("*x").replace(&long, "-", true), long);
        assert_eq!(p("a*b").trim_suffix(&long, false), long);
        assert_eq!(p("*a").trim_suffix(&long, true), "");
    }

    #[test]
    fn bad_escapes() {
        assert!(Pattern::compile("\\a").is_err());
        assert!(Pattern::compile("a\\").is_err());
        assert_eq!(p("a\\}").tokens, vec![Token::Lit('a'), Token::Lit('}')]);
    }
}
