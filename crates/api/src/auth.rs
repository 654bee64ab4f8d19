//! `X-Registry-Auth` (base64url JSON credentials) decoding.

use crate::error::{ApiError, ApiResult};
use base64::Engine as _;
use serde::Deserialize;

/// Credentials as Docker clients send them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub email: String,
    #[serde(default, alias = "serverAddress", alias = "ServerAddress")]
    pub serveraddress: String,
    #[serde(default, alias = "identityToken", alias = "IdentityToken")]
    pub identitytoken: String,
    #[serde(default, alias = "registryToken", alias = "RegistryToken")]
    pub registrytoken: String,
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
}

/// Decodes an `X-Registry-Auth` header value. Docker clients use URL-safe base64, some old
/// ones standard base64, with or without padding. An empty header means no credentials.
pub fn decode_registry_auth(header: &str) -> ApiResult<Option<AuthConfig>> {
    let h = header.trim();
    if h.is_empty() || h == "e30=" || h == "e30" {
        return Ok(None);
    }
    let trimmed = h.trim_end_matches('=');
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| {
            ApiError::bad_request(format!("invalid X-Registry-Auth header: not base64: {e}"))
        })?;
    let cfg: AuthConfig = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    let cfg = cfg.normalise();
    Ok(if cfg.is_empty() { None } else { Some(cfg) })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let tok = base64::engine::general_purpose::URL_SAFE.encode(r#"{"identitytoken":"abc"}"#);
        assert_eq!(
            decode_registry_auth(&tok).unwrap().unwrap().identitytoken,
            "abc"
        );
        let basic = base64::engine::general_purpose::URL_SAFE.encode(format!(
            r#"{{"auth":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode("me:secret")
        ));
        let c = decode_registry_auth(&basic).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "secret"));
    }
}
