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
                        return Err(ExpandErrorKind::InvalidPattern { pattern: text.to_string(), escaped });
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

    fn full_match(&self, s: &[char], start: usize) -> bool {
        self.ends(s, start).last() == Some(&s.len())
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

    pub fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut starts = (0..=chars.len()).filter(|&s| self.full_match(&chars, s));
        let cut = if longest { starts.next() } else { starts.next_back() };
        match cut {
            Some(s) => chars[..s].iter().collect(),
            None => value.to_string(),
        }
    }

    /// The leftmost match at or after `from`, longest at that start: `(start, end)`.
    fn find(&self, s: &[char], from: usize) -> Option<(usize, usize)> {
        let first = self.tokens.first();
        (from..=s.len())
            .filter(|&i| match first {
                Some(Token::Lit(l)) => s.get(i) == Some(l),
                _ => true,
            })
            .find_map(|i| self.ends(s, i).last().map(|&e| (i, e)))
    }

    /// Replaces the first (or every non-overlapping) longest match with `replacement`;
    /// an empty match right after a previous match is not replaced.
    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= chars.len() {
            let Some((start, end)) = self.find(&chars, search) else { break };
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
    }

    #[test]
    fn bad_escapes() {
        assert!(Pattern::compile("\\a").is_err());
        assert!(Pattern::compile("a\\").is_err());
        assert_eq!(p("a\\}").tokens, vec![Token::Lit('a'), Token::Lit('}')]);
    }
}
