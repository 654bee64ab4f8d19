//! `RUN --mount=...` and `RUN --network=...`.
//!
//! A mount is a CSV list of `key=value` fields (quoted fields as in CSV): `type` (`bind`,
//! the default, `cache`, `tmpfs`, `secret`, `ssh`), `target`/`dst`/`destination`,
//! `source`/`src`, `from`, `id`, `sharing` (`shared`, `private`, `locked`; cache only),
//! `readonly`/`ro` and `readwrite`/`rw` (alone or `=bool`), `required` (secret/ssh),
//! `mode` (octal), `uid`, `gid` (cache/secret/ssh), `size` (tmpfs), `env` (secret). Bind
//! mounts are read-only unless `rw`; cache and tmpfs mounts are writable unless `ro`.

use crate::error::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a `RUN`. Values are as written (not substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub readonly: bool,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// secret exposed as this environment variable.
    pub env: Option<String>,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

impl Network {
    pub(crate) fn parse(value: &str) -> Result<Network, ErrorKind> {
        match value {
            "default" => Ok(Network::Default),
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            other => Err(ErrorKind::Network(other.to_string())),
        }
    }
}

fn fail(value: &str, reason: impl Into<String>) -> ErrorKind {
    ErrorKind::Mount {
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Mount {
    pub(crate) fn parse(value: &str) -> Result<Mount, ErrorKind> {
        let fields = split_csv(value).map_err(|reason| fail(value, reason))?;
        let mut m = Mount {
            kind: MountType::Bind,
            target: None,
            source: None,
            from: None,
            id: None,
            sharing: None,
            readonly: true,
            required: false,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            env: None,
        };
        let mut readonly: Option<bool> = None;
        for field in &fields {
            m.field(field, &mut readonly)
                .map_err(|reason| fail(value, reason))?;
        }
        m.readonly = readonly.unwrap_or(!matches!(m.kind, MountType::Cache | MountType::Tmpfs));
        m.check().map_err(|reason| fail(value, reason))?;
        Ok(m)
    }

    fn field(&mut self, field: &str, readonly: &mut Option<bool>) -> Result<(), String> {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let secretish = matches!(self.kind, MountType::Secret | MountType::Ssh);
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => *readonly = Some(true),
                "readwrite" | "rw" => *readonly = Some(false),
                "required" if secretish => self.required = true,
                "required" => {
                    return Err(format!(
                        "unexpected key 'required' for mount type '{}'",
                        self.kind_name()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            return Ok(());
        };
        let set = |v: &str| Some(v.to_string());
        match key.as_str() {
            "type" => self.kind = mount_type(value)?,
            "from" => self.from = set(value),
            "source" | "src" => self.source = set(value),
            "target" | "dst" | "destination" => self.target = set(value),
            "readonly" | "ro" => *readonly = Some(parse_bool(&key, value)?),
            "readwrite" | "rw" => *readonly = Some(!parse_bool(&key, value)?),
            "required" if secretish => self.required = parse_bool(&key, value)?,
            "id" => self.id = set(value),
            "env" => self.env = set(value),
            "sharing" => self.sharing = Some(sharing(value)?),
            "mode" => self.mode = Some(number(&key, value, 8)?),
            "uid" => self.uid = Some(number(&key, value, 10)?),
            "gid" => self.gid = Some(number(&key, value, 10)?),
            "size" => {
                self.size =
                    Some(parse_size(value).ok_or(format!("invalid value {value} for size"))?)
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
        Ok(())
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }

    fn check(&self) -> Result<(), String> {
        let kind = self.kind_name();
        let file_info = matches!(
            self.kind,
            MountType::Secret | MountType::Ssh | MountType::Cache
        );
        for (name, set) in [
            ("mode", self.mode.is_some()),
            ("uid", self.uid.is_some()),
            ("gid", self.gid.is_some()),
        ] {
            if set && !file_info {
                return Err(format!("{name} not allowed for \"{kind}\" type mounts"));
            }
        }
        if self.sharing.is_some() && self.kind != MountType::Cache {
            return Err(format!("invalid cache sharing set for {kind} mount"));
        }
        if self.size.is_some() && self.kind != MountType::Tmpfs {
            return Err(format!("size not allowed for \"{kind}\" type mounts"));
        }
        if self.env.is_some() && self.kind != MountType::Secret {
            return Err(format!("env not allowed for \"{kind}\" type mounts"));
        }
        match self.kind {
            MountType::Bind | MountType::Cache | MountType::Tmpfs if self.target.is_none() => {
                Err(format!("{kind} mount requires a target"))
            }
            MountType::Secret if self.from.is_some() => {
                Err("secret mount should not have a from".into())
            }
            MountType::Secret
                if self.source.is_none()
                    && self.target.is_none()
                    && self.id.is_none()
                    && self.env.is_none() =>
            {
                Err("invalid secret mount. one of source, target required".into())
            }
            MountType::Secret if self.source.is_some() && self.id.is_some() => {
                Err("both source and id can't be set".into())
            }
            _ => Ok(()),
        }
    }
}

fn mount_type(value: &str) -> Result<MountType, String> {
    match value.to_ascii_lowercase().as_str() {
        "bind" => Ok(MountType::Bind),
        "cache" => Ok(MountType::Cache),
        "tmpfs" => Ok(MountType::Tmpfs),
        "secret" => Ok(MountType::Secret),
        "ssh" => Ok(MountType::Ssh),
        _ => Err(format!("unsupported mount type {value:?}")),
    }
}

fn sharing(value: &str) -> Result<Sharing, String> {
    match value.to_ascii_lowercase().as_str() {
        "shared" => Ok(Sharing::Shared),
        "private" => Ok(Sharing::Private),
        "locked" => Ok(Sharing::Locked),
        _ => Err(format!("unsupported sharing value {value:?}")),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {value}")),
    }
}

fn number(key: &str, value: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(value, radix).map_err(|_| format!("invalid value {value} for {key}"))
}

/// `64m`, `1g`, `512k`, `1024` (bytes); binary multiples, optional `b`/`ib`, any case.
fn parse_size(value: &str) -> Option<u64> {
    let lower = value.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().ok()?;
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// One CSV record (Go's `encoding/csv` rules: `"` quotes a whole field, `""` inside is a
/// quote, a bare `"` inside an unquoted field is an error).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv() {
        assert_eq!(split_csv("a,b=c").unwrap(), vec!["a", "b=c"]);
        assert_eq!(split_csv("\"a,b\",c").unwrap(), vec!["a,b", "c"]);
        assert_eq!(split_csv("\"a\"\"b\"").unwrap(), vec!["a\"b"]);
        assert_eq!(split_csv("").unwrap(), vec![""]);
        assert!(split_csv("a\"b").is_err());
        assert!(split_csv("\"ab").is_err());
        assert!(split_csv("\"a\"b").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("1e400"), None);
    }
}
