//! Instruction flags (`--name=value`, `--bool`), checked against what each instruction
//! accepts, with Docker's rules: unknown flags and repeats are refused (except list flags
//! such as `--mount`), a string flag needs `=value`, a bool flag takes nothing or
//! `=true`/`=false` (any case).

use crate::error::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    List,
}

pub(crate) struct Flags {
    values: Vec<(&'static str, Vec<String>)>,
}

impl Flags {
    /// Parses `raw` (`--name[=value]` words) against `spec`.
    pub fn parse(raw: &[String], spec: &[(&'static str, Kind)]) -> Result<Flags, ErrorKind> {
        let mut values: Vec<(&'static str, Vec<String>)> = Vec::new();
        for flag in raw {
            let body = flag.strip_prefix("--").unwrap_or(flag);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(known, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(ErrorKind::UnknownFlag(name.to_string()));
            };
            let existing = values.iter().position(|(n, _)| *n == known);
            if existing.is_some() && kind != Kind::List {
                return Err(ErrorKind::DuplicateFlag(name.to_string()));
            }
            let value = check_value(name, kind, value)?;
            match existing {
                Some(i) => values[i].1.push(value),
                None => values.push((known, vec![value])),
            }
        }
        Ok(Flags { values })
    }

    fn get(&self, name: &str) -> Option<&Vec<String>> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A string flag's value, `None` when not given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| v.last().cloned())
    }

    /// A bool flag's value, `false` when not given.
    pub fn bool(&self, name: &str) -> bool {
        self.get(name)
            .and_then(|v| v.last())
            .is_some_and(|v| v == "true")
    }

    /// A list flag's values in order.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name).cloned().unwrap_or_default()
    }
}

fn check_value(name: &str, kind: Kind, value: Option<&str>) -> Result<String, ErrorKind> {
    match (kind, value) {
        (Kind::Bool, None) => Ok("true".to_string()),
        (Kind::Bool, Some("")) | (Kind::Str | Kind::List, None) => {
            Err(ErrorKind::MissingFlagValue(name.to_string()))
        }
        (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
            b @ ("true" | "false") => Ok(b.to_string()),
            _ => Err(ErrorKind::NotBool {
                flag: name.to_string(),
                value: v.to_string(),
            }),
        },
        (_, Some(v)) => Ok(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[(&str, Kind)] = &[
        ("from", Kind::Str),
        ("link", Kind::Bool),
        ("mount", Kind::List),
    ];

    fn raw(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn accepted_forms() {
        let f = Flags::parse(
            &raw(&["--from=a", "--link", "--mount=x", "--mount=y"]),
            SPEC,
        )
        .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.list("mount"), raw(&["x", "y"]));
        let f = Flags::parse(&raw(&["--link=FALSE", "--from="]), SPEC).unwrap();
        assert!(!f.bool("link"));
        assert_eq!(f.string("from").as_deref(), Some(""));
    }

    #[test]
    fn refused_forms() {
        let err = |v: &[&str]| Flags::parse(&raw(v), SPEC).err().unwrap();
        assert_eq!(err(&["--chown=x"]), ErrorKind::UnknownFlag("chown".into()));
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            ErrorKind::DuplicateFlag("from".into())
        );
        assert_eq!(err(&["--from"]), ErrorKind::MissingFlagValue("from".into()));
        assert_eq!(
            err(&["--link="]),
            ErrorKind::MissingFlagValue("link".into())
        );
        assert_eq!(
            err(&["--mount"]),
            ErrorKind::MissingFlagValue("mount".into())
        );
        assert_eq!(
            err(&["--link=yes"]),
            ErrorKind::NotBool {
                flag: "link".into(),
                value: "yes".into()
            }
        );
    }
}
