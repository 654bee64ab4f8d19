//! Heredoc markers in `RUN`, `COPY` and `ADD` lines (shell form only).
//!
//! A marker is a whole word `[fd]<<[-]WORD` (`WORD` without `<`). The delimiter is `WORD`
//! with its quotes removed; a delimiter with any quoted part (`<<"EOF"`, `<<'EOF'`,
//! `<<E"O"F`) disables substitution in the body. `<<-` strips leading tabs from the body
//! lines and from the delimiter line. Several markers on one line take their bodies in
//! order. `<<<` (a here-string) is not a marker.

use crate::error::ExpandError;
use crate::lex::Lexer;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub name: String,
    pub expand: bool,
    pub strip_tabs: bool,
    pub fd: Option<u32>,
}

/// `Some(marker)` when `word` is a heredoc marker.
pub(crate) fn parse_marker(word: &str) -> Result<Option<Marker>, ExpandError> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let (fd_text, rest) = word.split_at(digits);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lexer = Lexer::new('\\').skip_unset();
    let words = lexer.expand_words(rest, &())?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lexer.raw_quotes().expand_words(rest, &())?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.len() == 1 && quotes(&raw[0]) == quotes(name);
    Ok(Some(Marker {
        name: name.clone(),
        expand,
        strip_tabs,
        fd: fd_text.parse().ok(),
    }))
}

/// The markers among the blank-separated words of a line, in order. Quotes and escapes
/// group words (`"<<EOF"` is not a marker); a line that does not lex has none.
pub(crate) fn markers_in_line(line: &str) -> Result<Vec<Marker>, ExpandError> {
    let mut markers = Vec::new();
    for word in raw_words(line) {
        if let Some(marker) = parse_marker(&word)? {
            markers.push(marker);
        }
    }
    Ok(markers)
}

/// Blank-separated words keeping quotes and `\` escapes as written.
fn raw_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == '\\' && q == '"' {
                    word.extend(chars.next());
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                word.push(c);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                } else if c == '\\' {
                    word.extend(chars.next());
                }
            }
        }
    }
    if quote.is_some() {
        return Vec::new();
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Removes the leading tabs of every line (`<<-`).
pub(crate) fn strip_leading_tabs(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, expand: bool, strip_tabs: bool, fd: Option<u32>) -> Option<Marker> {
        Some(Marker {
            name: name.into(),
            expand,
            strip_tabs,
            fd,
        })
    }

    #[test]
    fn markers() {
        assert_eq!(parse_marker("<<EOF").unwrap(), m("EOF", true, false, None));
        assert_eq!(parse_marker("<<-EOF").unwrap(), m("EOF", true, true, None));
        assert_eq!(
            parse_marker("<<\"EOF\"").unwrap(),
            m("EOF", false, false, None)
        );
        assert_eq!(
            parse_marker("<<'EOF'").unwrap(),
            m("EOF", false, false, None)
        );
        assert_eq!(
            parse_marker("<<E\"O\"F").unwrap(),
            m("EOF", false, false, None)
        );
        assert_eq!(
            parse_marker("3<<EOF").unwrap(),
            m("EOF", true, false, Some(3))
        );
        assert_eq!(parse_marker("<<$X").unwrap(), m("$X", true, false, None));
        assert_eq!(parse_marker("<<<EOF").unwrap(), None);
        assert_eq!(parse_marker("<<").unwrap(), None);
        assert_eq!(parse_marker("a<<EOF").unwrap(), None);
        assert_eq!(
            parse_marker("<<\"A B\"").unwrap(),
            m("A B", false, false, None)
        );
        assert!(parse_marker("<<\"EOF").is_err());
    }

    #[test]
    fn line_scan() {
        let names = |l: &str| {
            markers_in_line(l)
                .unwrap()
                .into_iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("RUN <<A cat - <<-B > /x"), vec!["A", "B"]);
        assert_eq!(names("RUN echo \"<<EOF\""), Vec::<String>::new());
        assert_eq!(names("RUN echo '<<EOF' \"x"), Vec::<String>::new());
        assert_eq!(names("COPY <<EOF /dest"), vec!["EOF"]);
        assert_eq!(strip_leading_tabs("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
