//! One logical line (keyword, flags, arguments, heredoc bodies) to a typed [`Instruction`].

use std::time::Duration;

use crate::ast::*;
use crate::duration::parse_go_duration;
use crate::error::ErrorKind;
use crate::flags::{Flags, Kind};
use crate::heredoc::{parse_marker, strip_leading_tabs};
use crate::mount::{Mount, Network};
use crate::words::{
    maybe_json, maybe_json_list, parse_json, parse_words, split_blanks, split_command,
};

/// Every instruction keyword, upper case.
pub(crate) const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// What one line holds once split.
pub(crate) struct Parts<'a> {
    pub keyword: &'a str,
    pub flags: &'a [String],
    pub args: &'a str,
    pub heredocs: &'a [Heredoc],
    pub escape: char,
    /// The whole logical line (for ONBUILD's expression).
    pub line: &'a str,
}

/// Whether this line's instruction takes heredocs (`RUN`/`COPY`/`ADD` in shell form, also
/// as an `ONBUILD` trigger).
pub(crate) fn takes_heredocs(keyword: &str, args: &str) -> bool {
    match keyword.to_ascii_lowercase().as_str() {
        "run" | "copy" | "add" => !matches!(parse_json(args), Ok(Some(_))),
        "onbuild" => {
            let (inner, _, inner_args) = split_command(args);
            !inner.eq_ignore_ascii_case("onbuild") && takes_heredocs(&inner, &inner_args)
        }
        _ => false,
    }
}

pub(crate) fn parse_parts(p: &Parts) -> Result<Instruction, ErrorKind> {
    let no_flags = || Flags::parse(p.flags, &[]);
    Ok(match p.keyword.to_ascii_lowercase().as_str() {
        "from" => Instruction::From(parse_from(p)?),
        "run" => Instruction::Run(parse_run(p)?),
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(command_line(maybe_json(p.args)?))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(command_line(maybe_json(p.args)?))
        }
        "shell" => {
            no_flags()?;
            match maybe_json(p.args)? {
                (items, _) if items.is_empty() => {
                    return Err(ErrorKind::AtLeastOneArgument("SHELL"))
                }
                (items, true) => Instruction::Shell(items),
                (_, false) => return Err(ErrorKind::NotJson("SHELL")),
            }
        }
        "env" => {
            no_flags()?;
            Instruction::Env(parse_key_values(p.args, p.escape, "ENV")?)
        }
        "label" => {
            no_flags()?;
            Instruction::Label(parse_key_values(p.args, p.escape, "LABEL")?)
        }
        "arg" => {
            no_flags()?;
            Instruction::Arg(parse_arg(p.args, p.escape)?)
        }
        "expose" => {
            let ports = split_blanks(p.args);
            if ports.is_empty() {
                return Err(ErrorKind::AtLeastOneArgument("EXPOSE"));
            }
            no_flags()?;
            Instruction::Expose(ports)
        }
        "user" => Instruction::User(one_argument(p, "USER")?),
        "workdir" => Instruction::Workdir(one_argument(p, "WORKDIR")?),
        "stopsignal" => Instruction::StopSignal(one_argument(p, "STOPSIGNAL")?),
        "maintainer" => Instruction::Maintainer(one_argument(p, "MAINTAINER")?),
        "volume" => Instruction::Volume(parse_volume(p)?),
        "copy" => Instruction::Copy(parse_copy(p)?),
        "add" => Instruction::Add(parse_add(p)?),
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(p)?),
        "onbuild" => Instruction::Onbuild(parse_onbuild(p)?),
        _ => {
            let suggestion = suggest(p.keyword);
            return Err(ErrorKind::UnknownInstruction {
                word: p.keyword.to_string(),
                suggestion,
            });
        }
    })
}

/// The closest keyword to a misspelt one (edit distance at most 2, transpositions count 1).
fn suggest(word: &str) -> Option<&'static str> {
    let upper: Vec<char> = word.to_ascii_uppercase().chars().collect();
    if upper.len() < 3 || upper.len() > 20 {
        return None;
    }
    KEYWORDS
        .iter()
        .map(|k| (distance(&upper, &k.chars().collect::<Vec<_>>()), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal-string-alignment distance.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn command_line((items, json): (Vec<String>, bool)) -> CommandLine {
    if json || items.is_empty() {
        CommandLine::Exec(items)
    } else {
        CommandLine::Shell(items.into_iter().next().unwrap_or_default())
    }
}

/// USER, WORKDIR, STOPSIGNAL, MAINTAINER: the whole rest of the line is the one argument.
fn one_argument(p: &Parts, keyword: &'static str) -> Result<String, ErrorKind> {
    if p.args.is_empty() {
        return Err(ErrorKind::ExactlyOneArgument(keyword));
    }
    Flags::parse(p.flags, &[])?;
    Ok(p.args.to_string())
}

fn parse_from(p: &Parts) -> Result<From, ErrorKind> {
    let words = split_blanks(p.args);
    let name = match words.as_slice() {
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            if !valid_stage_name(&lower) {
                return Err(ErrorKind::InvalidStageName(name.clone()));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err(ErrorKind::FromArguments),
    };
    let flags = Flags::parse(p.flags, &[("platform", Kind::Str)])?;
    Ok(From {
        image: words[0].clone(),
        name,
        platform: flags.string("platform"),
    })
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn parse_run(p: &Parts) -> Result<Run, ErrorKind> {
    let flags = Flags::parse(p.flags, &[("mount", Kind::List), ("network", Kind::Str)])?;
    let mounts = flags
        .list("mount")
        .iter()
        .map(|m| Mount::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    let network = flags
        .string("network")
        .map(|n| Network::parse(&n))
        .transpose()?;
    Ok(Run {
        command: command_line(maybe_json(p.args)?),
        heredocs: p.heredocs.to_vec(),
        mounts,
        network,
    })
}

/// ENV and LABEL: `k=v k2="v 2"...` or the legacy `k value with blanks`.
fn parse_key_values(
    args: &str,
    escape: char,
    keyword: &'static str,
) -> Result<Vec<KeyValue>, ErrorKind> {
    let words = parse_words(args, escape);
    let Some(first) = words.first() else {
        return Err(ErrorKind::AtLeastOneArgument(keyword));
    };
    if !first.contains('=') {
        let mut parts = args.splitn(2, crate::words::is_separator);
        let key = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .map(|v| v.trim_start_matches(crate::words::is_separator));
        return match value {
            Some(value) => Ok(vec![KeyValue {
                key: key.to_string(),
                value: value.to_string(),
                legacy: true,
            }]),
            None => Err(ErrorKind::TwoArguments(keyword)),
        };
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            None => Err(ErrorKind::MissingEquals(word.clone())),
            Some(("", _)) => Err(ErrorKind::BlankName(keyword)),
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
                legacy: false,
            }),
        })
        .collect()
}

fn parse_arg(args: &str, escape: char) -> Result<Arg, ErrorKind> {
    let words = parse_words(args, escape);
    if words.is_empty() {
        return Err(ErrorKind::AtLeastOneArgument("ARG"));
    }
    let args = words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err(ErrorKind::BlankName("ARG")),
            Some((k, v)) => Ok(ArgDecl {
                name: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: word,
                default: None,
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arg { args })
}

fn parse_volume(p: &Parts) -> Result<Vec<String>, ErrorKind> {
    let (items, _) = maybe_json_list(p.args)?;
    if items.is_empty() {
        return Err(ErrorKind::AtLeastOneArgument("VOLUME"));
    }
    Flags::parse(p.flags, &[])?;
    items
        .into_iter()
        .map(|v| match v.trim() {
            "" => Err(ErrorKind::EmptyVolume),
            t => Ok(t.to_string()),
        })
        .collect()
}

/// Sources and destination of COPY/ADD; heredoc markers among the sources become inline
/// sources with the bodies read for this line.
fn sources_and_dest(
    p: &Parts,
    keyword: &'static str,
) -> Result<(Vec<Source>, String, bool), ErrorKind> {
    let (mut items, json) = maybe_json_list(p.args)?;
    if items.len() < 2 {
        return Err(ErrorKind::NoDestination(keyword));
    }
    let dest = items.pop().unwrap_or_default();
    let marker = |w: &str| {
        if json {
            None
        } else {
            parse_marker(w).ok().flatten()
        }
    };
    if marker(&dest).is_some() {
        return Err(ErrorKind::HeredocDestination(keyword));
    }
    let sources = items
        .into_iter()
        .map(|src| match marker(&src) {
            None => Source::Path(src),
            Some(m) => {
                let body = p.heredocs.iter().find(|h| h.name == m.name);
                let content = body.map(|h| h.content.clone()).unwrap_or_default();
                Source::Heredoc(Heredoc {
                    name: m.name,
                    content,
                    expand: m.expand,
                    strip_tabs: m.strip_tabs,
                    fd: m.fd,
                })
            }
        })
        .collect();
    Ok((sources, dest, json))
}

fn parse_copy(p: &Parts) -> Result<Copy, ErrorKind> {
    let (sources, dest, json) = sources_and_dest(p, "COPY")?;
    let spec = [
        ("from", Kind::Str),
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("parents", Kind::Bool),
        ("exclude", Kind::List),
    ];
    let f = Flags::parse(p.flags, &spec)?;
    Ok(Copy {
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        parents: f.bool("parents"),
        exclude: f.list("exclude"),
        sources,
        dest,
        json,
    })
}

fn parse_add(p: &Parts) -> Result<Add, ErrorKind> {
    let (sources, dest, json) = sources_and_dest(p, "ADD")?;
    let spec = [
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("checksum", Kind::Str),
        ("keep-git-dir", Kind::Bool),
        ("exclude", Kind::List),
    ];
    let f = Flags::parse(p.flags, &spec)?;
    Ok(Add {
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        exclude: f.list("exclude"),
        sources,
        dest,
        json,
    })
}

fn parse_healthcheck(p: &Parts) -> Result<Healthcheck, ErrorKind> {
    let args = p.args;
    let type_end = args
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(args.len());
    if type_end == 0 {
        return Err(ErrorKind::AtLeastOneArgument("HEALTHCHECK"));
    }
    let kind = args[..type_end].to_ascii_uppercase();
    let (command, json) =
        maybe_json(args[type_end..].trim_start_matches(|c: char| c.is_ascii_whitespace()))?;
    if kind == "NONE" {
        // Docker ignores options given with NONE.
        return if command.is_empty() {
            Ok(Healthcheck::None)
        } else {
            Err(ErrorKind::HealthcheckNoneArgs)
        };
    }
    let spec = [
        ("interval", Kind::Str),
        ("timeout", Kind::Str),
        ("start-period", Kind::Str),
        ("start-interval", Kind::Str),
        ("retries", Kind::Str),
    ];
    let f = Flags::parse(p.flags, &spec)?;
    if kind != "CMD" {
        return Err(ErrorKind::HealthcheckType(args[..type_end].to_string()));
    }
    if command.is_empty() {
        return Err(ErrorKind::HealthcheckNoCommand);
    }
    Ok(Healthcheck::Check(HealthCheck {
        command: command_line((command, json)),
        interval: interval(&f, "interval")?,
        timeout: interval(&f, "timeout")?,
        start_period: interval(&f, "start-period")?,
        start_interval: interval(&f, "start-interval")?,
        retries: retries(f.string("retries"))?,
    }))
}

/// A duration option: absent or zero is `None`; below 1ms is refused.
fn interval(f: &Flags, name: &'static str) -> Result<Option<Duration>, ErrorKind> {
    let Some(value) = f.string(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let nanos = parse_go_duration(&value).map_err(|reason| ErrorKind::BadDuration {
        flag: name,
        value: value.clone(),
        reason,
    })?;
    match nanos {
        0 => Ok(None),
        n if n < 1_000_000 => Err(ErrorKind::DurationTooShort(name)),
        n => Ok(Some(Duration::from_nanos(
            u64::try_from(n).unwrap_or(u64::MAX),
        ))),
    }
}

fn retries(value: Option<String>) -> Result<Option<u32>, ErrorKind> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let n: i32 = value
        .parse()
        .map_err(|_| ErrorKind::BadRetries(value.clone()))?;
    match u32::try_from(n) {
        Err(_) => Err(ErrorKind::NegativeRetries(value)),
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
    }
}

fn parse_onbuild(p: &Parts) -> Result<Onbuild, ErrorKind> {
    if p.args.is_empty() {
        return Err(ErrorKind::AtLeastOneArgument("ONBUILD"));
    }
    Flags::parse(p.flags, &[])?;
    let (keyword, flags, args) = split_command(p.args);
    match keyword.to_ascii_uppercase().as_str() {
        "ONBUILD" => return Err(ErrorKind::OnbuildOnbuild),
        "MAINTAINER" => return Err(ErrorKind::OnbuildTrigger("MAINTAINER")),
        "FROM" => return Err(ErrorKind::OnbuildTrigger("FROM")),
        _ => {}
    }
    let trigger = parse_parts(&Parts {
        keyword: &keyword,
        flags: &flags,
        args: &args,
        heredocs: p.heredocs,
        escape: p.escape,
        line: p.args,
    })?;
    let mut expression = strip_onbuild(p.line).to_string();
    for h in p.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild {
        expression,
        trigger: Box::new(trigger),
    })
}

/// The line without its leading `ONBUILD` keyword and blanks.
fn strip_onbuild(line: &str) -> &str {
    let line = line.trim_start();
    match line.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => line[7..].trim_start(),
        _ => line,
    }
}

/// A heredoc body as the instruction keeps it.
pub(crate) fn heredoc(marker: crate::heredoc::Marker, body: String) -> Heredoc {
    let content = if marker.strip_tabs {
        strip_leading_tabs(&body)
    } else {
        body
    };
    Heredoc {
        name: marker.name,
        content,
        expand: marker.expand,
        strip_tabs: marker.strip_tabs,
        fd: marker.fd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("FORM"), Some("FROM"));
        assert_eq!(suggest("rnu"), Some("RUN"));
        assert_eq!(suggest("COPPY"), Some("COPY"));
        assert_eq!(suggest("XYZZY"), None);
        assert_eq!(suggest("a"), None);
    }

    #[test]
    fn stage_names() {
        assert!(valid_stage_name("build-1.x_y"));
        assert!(!valid_stage_name("1build"));
        assert!(!valid_stage_name("bu/ild"));
        assert!(!valid_stage_name(""));
    }
}
