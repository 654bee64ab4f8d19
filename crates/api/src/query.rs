//! URL query strings, percent-decoding and Docker's boolean conventions.

use crate::error::{ApiError, ApiResult};
use std::collections::BTreeMap;

/// Decodes `%XX` escapes (and `+` as space when `plus` is set). Invalid escapes are kept verbatim.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed query string; repeated keys keep all their values in order.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut pairs = Vec::new();
        if let Some(q) = q {
            for part in q.split('&') {
                if part.is_empty() {
                    continue;
                }
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                pairs.push((percent_decode(k, true), percent_decode(v, true)));
            }
        }
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key (`?ps_args=a&ps_args=b`).
    pub fn get_all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// A non-empty string value.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// Docker's `BoolValue`: absent, "", "0", "no", "false", "none" are false; anything else true.
    pub fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => is_true(v),
        }
    }

    /// Docker's `BoolValueOrDefault`: the default applies when the key is absent or empty.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None | Some("") => default,
            Some(v) => is_true(v),
        }
    }

    /// An integer parameter; a value that is not a number is a 400 naming the parameter.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// The `filters` parameter, normalised (see [`parse_filters`]).
    pub fn filters(&self) -> ApiResult<BTreeMap<String, Vec<String>>> {
        match self.get("filters") {
            None => Ok(BTreeMap::new()),
            Some(s) => parse_filters(s),
        }
    }
}

fn is_true(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    !(v.is_empty() || v == "0" || v == "no" || v == "false" || v == "none")
}

/// Parses a `filters` JSON value in either form clients send:
/// the map form `{"label":{"k=v":true}}` (docker CLI, compose v2) or the list form
/// `{"label":["k=v"]}` (docker-py, compose v1). Returns `key -> values`, sorted and deduplicated.
pub fn parse_filters(s: &str) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    let v: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        ApiError::bad_request("invalid filters: expected a JSON object of filter names")
    })?;
    for (key, val) in obj {
        let mut values: Vec<String> = match val {
            serde_json::Value::Object(m) => {
                let mut vs = Vec::with_capacity(m.len());
                for (k, b) in m {
                    match b {
                        serde_json::Value::Bool(_) => vs.push(k.clone()),
                        other => {
                            return Err(ApiError::bad_request(format!(
                            "invalid filters: value of {key}[{k}] must be a boolean, got {other}"
                        )))
                        }
                    }
                }
                vs
            }
            serde_json::Value::Array(a) => {
                let mut vs = Vec::with_capacity(a.len());
                for item in a {
                    match item {
                        serde_json::Value::String(s) => vs.push(s.clone()),
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filters: values of {key} must be strings, got {other}"
                            )))
                        }
                    }
                }
                vs
            }
            // docker-py accepts `{"dangling": true}` and `{"name": "x"}` shorthands.
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Bool(b) => vec![b.to_string()],
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid filters: value of {key} must be a map or a list, got {other}"
                )))
            }
        };
        values.sort();
        values.dedup();
        out.insert(key.clone(), values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%2Fb+c", true), "a/b c");
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
        assert_eq!(percent_decode("%", false), "%");
        assert_eq!(percent_decode("x%41", false), "xA");
    }

    #[test]
    fn query_bools() {
        let q = Query::parse(Some("a=1&b=false&c=&d=True&e=none&f"));
        assert!(q.bool("a"));
        assert!(!q.bool("b"));
        assert!(!q.bool("c"));
        assert!(q.bool("d"));
        assert!(!q.bool("e"));
        assert!(!q.bool("f"));
        assert!(q.bool_or("c", true));
        assert!(q.bool_or("zz", true));
        assert!(q.int("a").unwrap() == Some(1));
        assert!(q.int("b").is_err());
    }

    #[test]
    fn filters_both_forms() {
        let a =
            parse_filters(r#"{"label":{"k=v":true,"x":true},"status":{"running":true}}"#).unwrap();
        let b = parse_filters(r#"{"label":["x","k=v"],"status":["running"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["label"], vec!["k=v".to_string(), "x".to_string()]);
        assert!(parse_filters("{nope").is_err());
        assert!(parse_filters("[1]").is_err());
        assert!(parse_filters(r#"{"label":[1]}"#).is_err());
        assert!(parse_filters("").unwrap().is_empty());
    }
}
