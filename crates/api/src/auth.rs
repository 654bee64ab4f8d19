//! Registry credentials as clients send them: the `X-Registry-Auth` header (base64url JSON
//! `AuthConfig`), the `X-Registry-Config` header of builds (base64url JSON map of registry to
//! `AuthConfig`) and the `POST /auth` body.
//!
//! dockerd decodes these with Go's `encoding/json` into a struct of strings, and clients rely
//! on how lenient that is: docker-py sends `"email": null` (and `null` for any credential it
//! lacks), old clients send `"Username"`/`"serverAddress"` spellings, newer ones add fields
//! (`identitytoken`, `registrytoken`, ...). So, as Go does: a `null` leaves a field empty, keys
//! match field names case-insensitively, unknown keys are ignored, a later duplicate wins, and
//! only the first JSON value is read. What Go refuses is refused here too: a header that is
//! not base64, a payload that is not JSON, a value of the wrong type (`"username": 5`).

use crate::error::{ApiError, ApiResult};
use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// Credentials for one registry (Docker's `registry.AuthConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// `base64("user:pass")`, as stored in the CLI's config.json.
    pub auth: String,
    /// Deprecated by Docker; accepted and ignored.
    pub email: String,
    pub serveraddress: String,
    pub identitytoken: String,
    pub registrytoken: String,
}

/// The fields of [`AuthConfig`] by their JSON names (Docker's `json:"..."` tags).
#[derive(Debug, Clone, Copy)]
enum Field {
    Username,
    Password,
    Auth,
    Email,
    ServerAddress,
    IdentityToken,
    RegistryToken,
}

impl Field {
    /// Go's `encoding/json` key matching: the exact tag, else a case-insensitive match.
    fn from_key(key: &str) -> Option<Field> {
        let folded: String = key
            .chars()
            .flat_map(char::to_lowercase)
            // Go's case folding also equates U+017F (long s) with 's'.
            .map(|c| if c == '\u{17f}' { 's' } else { c })
            .collect();
        Some(match folded.as_str() {
            "username" => Field::Username,
            "password" => Field::Password,
            "auth" => Field::Auth,
            "email" => Field::Email,
            "serveraddress" => Field::ServerAddress,
            "identitytoken" => Field::IdentityToken,
            "registrytoken" => Field::RegistryToken,
            _ => return None,
        })
    }

    fn slot(self, c: &mut AuthConfig) -> &mut String {
        match self {
            Field::Username => &mut c.username,
            Field::Password => &mut c.password,
            Field::Auth => &mut c.auth,
            Field::Email => &mut c.email,
            Field::ServerAddress => &mut c.serveraddress,
            Field::IdentityToken => &mut c.identitytoken,
            Field::RegistryToken => &mut c.registrytoken,
        }
    }
}

impl<'de> Deserialize<'de> for AuthConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AuthConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AuthConfig object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AuthConfig, A::Error> {
                let mut c = AuthConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match Field::from_key(&key) {
                        // `null` leaves the field as it is (Go: no-op for a string).
                        Some(f) => {
                            if let Some(v) = map.next_value::<Option<String>>()? {
                                *f.slot(&mut c) = v;
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

impl AuthConfig {
    /// Fills username/password from `auth` ("user:pass" base64) when only that is given.
    fn normalise(mut self) -> Self {
        if self.username.is_empty() && !self.auth.is_empty() {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(self.auth.trim()) {
                if let Ok(s) = String::from_utf8(raw) {
                    if let Some((u, p)) = s.split_once(':') {
                        self.username = u.to_string();
                        self.password = p.to_string();
                    }
                }
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identitytoken.is_empty()
            && self.registrytoken.is_empty()
    }

    /// Parses a JSON `AuthConfig` (the `POST /auth` body): the first JSON value is read, as
    /// Go's `json.Decoder` does; `null` is an empty config, an empty body an error.
    pub fn from_json(raw: &[u8], what: &str) -> ApiResult<AuthConfig> {
        Ok(first_json_value::<Option<AuthConfig>>(raw, what)?
            .ok_or_else(|| ApiError::bad_request(format!("invalid {what}: got EOF")))?
            .unwrap_or_default()
            .normalise())
    }
}

/// Decodes the first JSON value of `raw` (`None` when there is none: empty or blank).
fn first_json_value<T: serde::de::DeserializeOwned>(
    raw: &[u8],
    what: &str,
) -> ApiResult<Option<T>> {
    serde_json::Deserializer::from_slice(raw)
        .into_iter::<T>()
        .next()
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

/// The bytes of a base64 header value: URL-safe (what Docker's clients send) or standard
/// (some old ones), padded or not.
fn base64_header(h: &str, what: &str) -> ApiResult<Vec<u8>> {
    let trimmed = h.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| ApiError::bad_request(format!("invalid {what}: not base64: {e}")))
}

/// Decodes an `X-Registry-Auth` header value. An empty header, `{}`, `null` or a config
/// without credentials means no credentials.
pub fn decode_registry_auth(header: &str) -> ApiResult<Option<AuthConfig>> {
    const WHAT: &str = "X-Registry-Auth header";
    if header.trim().is_empty() {
        return Ok(None);
    }
    let raw = base64_header(header, WHAT)?;
    let cfg = first_json_value::<Option<AuthConfig>>(&raw, WHAT)?
        .ok_or_else(|| ApiError::bad_request(format!("invalid {WHAT}: no JSON in it")))?
        .unwrap_or_default()
        .normalise();
    Ok(if cfg.is_empty() { None } else { Some(cfg) })
}

/// Decodes an `X-Registry-Config` header value (builds): credentials by registry host. An
/// empty header is an empty map; a `null` entry is an empty config. dockerd ignores a header
/// it cannot decode (pulls in a build then go without credentials); the caller decides.
pub fn decode_registry_config(header: &str) -> ApiResult<BTreeMap<String, AuthConfig>> {
    const WHAT: &str = "X-Registry-Config header";
    if header.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let raw = base64_header(header, WHAT)?;
    let map = first_json_value::<Option<BTreeMap<String, Option<AuthConfig>>>>(&raw, WHAT)?
        .ok_or_else(|| ApiError::bad_request(format!("invalid {WHAT}: no JSON in it")))?
        .unwrap_or_default();
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default().normalise()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    #[test]
    fn decodes_urlsafe_and_std() {
        let json = r#"{"username":"u>?","password":"p?>~","serveraddress":"127.0.0.1:5000"}"#;
        let url = base64::engine::general_purpose::URL_SAFE.encode(json);
        let std = base64::engine::general_purpose::STANDARD_NO_PAD.encode(json);
        let a = decode_registry_auth(&url).unwrap().unwrap();
        let b = decode_registry_auth(&std).unwrap().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.username, "u>?");
        assert_eq!(a.serveraddress, "127.0.0.1:5000");
        assert!(decode_registry_auth("").unwrap().is_none());
        assert!(decode_registry_auth("e30=").unwrap().is_none());
        assert!(decode_registry_auth("!!!").is_err());
        let tok = enc(r#"{"identitytoken":"abc"}"#);
        assert_eq!(
            decode_registry_auth(&tok).unwrap().unwrap().identitytoken,
            "abc"
        );
        let basic = enc(&format!(
            r#"{{"auth":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode("me:secret")
        ));
        let c = decode_registry_auth(&basic).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "secret"));
    }

    /// What docker-py sends after `docker login` (its `email` is None), and what Go's
    /// decoder accepts besides.
    #[test]
    fn accepts_what_gos_decoder_accepts() {
        let c = decode_registry_auth(&enc(
            r#"{"username":"e2e","password":"s3cret","email":null,"serveraddress":"127.0.0.1:5000"}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str(), c.email.as_str()),
            ("e2e", "s3cret", "")
        );
        assert_eq!(c.serveraddress, "127.0.0.1:5000");
        // null everywhere, missing fields, unknown fields of any type, other spellings.
        let c = decode_registry_auth(&enc(
            r#"{"Username":"u","PASSWORD":"p","serverAddress":"r","auth":null,"identitytoken":null,"registrytoken":"rt","extra":{"a":[1,2]},"n":5}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                c.username.as_str(),
                c.password.as_str(),
                c.serveraddress.as_str()
            ),
            ("u", "p", "r")
        );
        assert_eq!(c.registrytoken, "rt");
        // A later duplicate wins; a later null keeps the earlier value.
        let c = decode_registry_auth(&enc(
            r#"{"username":"a","username":"b","password":"p","password":null}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("b", "p"));
        // Only credentials-free configs are "no credentials".
        for none in [
            r#"null"#,
            r#"{}"#,
            r#"{"email":null,"serveraddress":"x"}"#,
            r#"{"username":null,"password":null}"#,
        ] {
            assert!(
                decode_registry_auth(&enc(none)).unwrap().is_none(),
                "{none}"
            );
        }
        // Go's json.Decoder reads the first value and leaves what follows.
        let c = decode_registry_auth(&enc(r#"{"username":"u","password":"p"} trailing"#))
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "u");
        // The /auth body goes through the same model.
        let c = AuthConfig::from_json(br#"{"username":"u","password":"p","email":null}"#, "auth")
            .unwrap();
        assert_eq!(c.password, "p");
        assert_eq!(
            AuthConfig::from_json(b"null", "auth").unwrap(),
            AuthConfig::default()
        );
        assert!(AuthConfig::from_json(b" ", "auth").is_err());
    }

    #[test]
    fn refuses_what_gos_decoder_refuses() {
        for bad in [
            "%%%",          // not base64
            "bm90IGpzb24=", // "not json"
        ] {
            let e = decode_registry_auth(bad).unwrap_err();
            assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains("X-Registry-Auth"), "{}", e.message);
        }
        for bad in [
            r#"{"username":5}"#,
            r#"{"password":["x"]}"#,
            r#"{"email":{}}"#,
            r#"["u","p"]"#,
            r#""str""#,
            r#"{"username":"u""#,
        ] {
            assert!(decode_registry_auth(&enc(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_config_maps_hosts_to_configs() {
        let m = decode_registry_config(&enc(
            r#"{"127.0.0.1:5000":{"username":"u","password":"p","email":null},"https://index.docker.io/v1/":null,"x":{"auth":"bWU6cHc="}}"#,
        ))
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["127.0.0.1:5000"].username, "u");
        assert!(m["https://index.docker.io/v1/"].is_empty());
        assert_eq!(
            (m["x"].username.as_str(), m["x"].password.as_str()),
            ("me", "pw")
        );
        assert!(decode_registry_config("").unwrap().is_empty());
        assert!(decode_registry_config(&enc("null")).unwrap().is_empty());
        assert!(decode_registry_config("%%%").is_err());
        assert!(decode_registry_config(&enc(r#"{"h":{"username":1}}"#)).is_err());
    }
}
