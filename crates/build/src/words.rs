//! Splitting a logical line into keyword, `--flags` and arguments, and the argument shapes
//! Docker's line parsers produce (JSON arrays, blank-separated lists, quoted words).

use crate::error::ErrorKind;

/// The blanks that separate a keyword from its arguments and list items: `[\t\v\f\r ]`.
pub(crate) fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// `KEYWORD --flag=x --flag2 rest` → `("KEYWORD", ["--flag=x", "--flag2"], "rest")`.
pub(crate) fn split_command(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim();
    match line.find(is_separator) {
        None => (line.to_string(), Vec::new(), String::new()),
        Some(i) => {
            let rest = line[i..].trim_start_matches(is_separator);
            let (args, flags) = extract_flags(rest);
            (line[..i].to_string(), flags, args.trim().to_string())
        }
    }
}

/// Leading `--name[=value]` words (quotes and `\` processed inside them) up to the first word
/// that does not start with `--`; a lone `--` ends the flags.
fn extract_flags(line: &str) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return (String::new(), flags);
        }
        let is_flag = chars[i].1 == '-' && chars.get(i + 1).is_some_and(|c| c.1 == '-');
        if !is_flag {
            return (line[chars[i].0..].to_string(), flags);
        }
        let (word, next) = flag_word(&chars, i);
        i = next;
        if word == "--" {
            let rest = chars.get(i).map_or("", |c| &line[c.0..]);
            return (rest.to_string(), flags);
        }
        flags.push(word);
    }
}

/// One flag word starting at `i`: up to an unquoted blank; returns the word and the index
/// after it.
fn flag_word(chars: &[(usize, char)], mut i: usize) -> (String, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i].1;
        match quote {
            None if c.is_whitespace() => break,
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ if c == '\\' => {
                if let Some(&(_, next)) = chars.get(i + 1) {
                    word.push(next);
                    i += 1;
                }
            }
            _ => word.push(c),
        }
        i += 1;
    }
    (word, i)
}

/// Blank-separated words where quotes group and the escape character protects the next
/// character; quotes and escapes are kept (substitution removes them later).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let last = i + 1 == chars.len();
        i += 1;
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            if c == escape && q != '\'' {
                if last {
                    quote = None;
                    continue;
                }
                word.push(c);
                word.push(chars[i]);
                i += 1;
                continue;
            }
            word.push(c);
            continue;
        }
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if c.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        }
        if c == escape {
            if last {
                continue;
            }
            word.push(c);
            word.push(chars[i]);
            i += 1;
            continue;
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `rest` split on runs of blanks.
pub(crate) fn split_blanks(rest: &str) -> Vec<String> {
    rest.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A JSON array of strings (`Ok(Some)`), not JSON (`Ok(None)`), or a JSON array holding
/// something other than strings (an error, as in Docker).
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ErrorKind> {
    if !rest.trim_start().starts_with('[') {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(rest) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ErrorKind::JsonNotStrings),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK shape: a JSON array, or the whole rest as one item.
/// Returns the items and whether they came from JSON.
pub(crate) fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match parse_json(rest)? {
        Some(items) => (items, true),
        None => (vec![rest.to_string()], false),
    })
}

/// COPY/ADD/VOLUME shape: a JSON array, or blank-separated words.
pub(crate) fn maybe_json_list(rest: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    Ok(match parse_json(rest)? {
        Some(items) => (items, true),
        None => (split_blanks(rest), false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_and_flags() {
        let (cmd, flags, args) = split_command("  COPY --from=build --chown='a b' src dst ");
        assert_eq!(cmd, "COPY");
        assert_eq!(flags, s(&["--from=build", "--chown=a b"]));
        assert_eq!(args, "src dst");
        let (_, flags, args) = split_command("RUN -- --not-a-flag");
        assert!(flags.is_empty());
        assert_eq!(args, "--not-a-flag");
        let (_, flags, args) = split_command("RUN --a=\\x\\ y -b");
        assert_eq!(flags, s(&["--a=x y"]));
        assert_eq!(args, "-b");
        let (cmd, flags, args) = split_command("CMD");
        assert_eq!((cmd.as_str(), flags.len(), args.as_str()), ("CMD", 0, ""));
        let (_, flags, args) = split_command("CMD --help");
        assert_eq!((flags, args.as_str()), (s(&["--help"]), ""));
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"A="a b" B=c\ d  C"#, '\\'),
            s(&[r#"A="a b""#, r"B=c\ d", "C"])
        );
        assert_eq!(parse_words(r#"A='x\' B"#, '\\'), s(&[r#"A='x\'"#, "B"]));
        assert_eq!(parse_words(r#""" x"#, '\\'), s(&[r#""""#, "x"]));
        assert_eq!(parse_words("a\\", '\\'), s(&["a"]));
        assert_eq!(parse_words("   ", '\\'), Vec::<String>::new());
        assert_eq!(parse_words("\"unterminated", '\\'), s(&["\"unterminated"]));
    }

    #[test]
    fn json_shapes() {
        assert_eq!(parse_json(r#"["a", "b"]"#), Ok(Some(s(&["a", "b"]))));
        assert_eq!(parse_json(r#"[1]"#), Err(ErrorKind::JsonNotStrings));
        assert_eq!(parse_json(r#"[a]"#), Ok(None));
        assert_eq!(parse_json(r#"["a"] x"#), Ok(None));
        assert_eq!(maybe_json("echo [x]"), Ok((s(&["echo [x]"]), false)));
        assert_eq!(maybe_json_list("a  b\tc"), Ok((s(&["a", "b", "c"]), false)));
    }
}
