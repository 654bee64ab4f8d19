//! OCI distribution client (blocking, `ureq`): pull with manifest negotiation and platform
//! selection, parallel verified layer downloads with retry, push with existence checks,
//! cross-repository mount, monolithic or chunked upload; anonymous, basic and bearer auth.
use crate::error::Error;
use base64::Engine as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

mod blobs;
mod client;
mod pull;
mod push;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (host[:port]) to reach over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Explicit credentials (e.g. from the API's X-Registry-Auth); else ~/.docker/config.json.
    pub credentials: Option<Credentials>,
    /// Path of a docker config.json (default `$HOME/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// Layers downloaded at once.
    pub parallel: usize,
    /// Attempts per blob download.
    pub retries: usize,
    /// Upload blobs larger than this in chunks (PATCH); 0 = always monolithic.
    pub chunk_size: u64,
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: vec![],
            credentials: None,
            docker_config: None,
            parallel: 3,
            retries: 3,
            chunk_size: 32 << 20,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Read `auths` from a docker config.json for `host`.
pub fn docker_config_credentials(path: &std::path::Path, host: &str) -> Option<Credentials> {
    let b = std::fs::read(path).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let keys: Vec<String> =
        if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
            vec![
                "https://index.docker.io/v1/".into(),
                "index.docker.io".into(),
                "docker.io".into(),
                "registry-1.docker.io".into(),
            ]
        } else {
            vec![
                host.to_string(),
                format!("https://{host}"),
                format!("http://{host}"),
                format!("https://{host}/v1/"),
                format!("https://{host}/v2/"),
            ]
        };
    for k in keys {
        if let Some(a) = auths.get(&k) {
            if let Some(enc) = a.get("auth").and_then(|x| x.as_str()) {
                let dec = base64::engine::general_purpose::STANDARD
                    .decode(enc.trim())
                    .ok()?;
                let s = String::from_utf8(dec).ok()?;
                let (u, p) = s.split_once(':')?;
                return Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                });
            }
            if let (Some(u), Some(p)) = (
                a.get("username").and_then(|x| x.as_str()),
                a.get("password").and_then(|x| x.as_str()),
            ) {
                return Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                });
            }
        }
    }
    None
}

fn is_loopback(host: &str) -> bool {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map(|(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            })
            .unwrap_or(host)
    };
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[derive(Debug, Clone)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

pub(crate) fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest;
    while !s.is_empty() {
        let (k, r) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let r = r.trim_start();
        let (v, r) = if let Some(q) = r.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = r.find(',').unwrap_or(r.len());
            (&r[..end], &r[end..])
        };
        params.insert(k, v.to_string());
        s = r.trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
    })
}

enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    File(PathBuf, u64),
}

/// A client for one registry host.
pub struct RegistryClient {
    opts: RegistryOptions,
    agent: ureq::Agent,
    base: String,
    host: String,
    creds: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
}

fn status_err(host: &str, what: &str, code: u16, body: &str) -> Error {
    let msg = format!(
        "{what}: HTTP {code}: {}",
        body.chars().take(400).collect::<String>().trim()
    );
    if code == 401 || code == 403 {
        Error::Unauthorized {
            registry: host.into(),
            message: msg,
        }
    } else {
        Error::Registry {
            registry: host.into(),
            message: msg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn challenge_parsing() {
        match parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        ) {
            Some(Challenge::Bearer { realm, service }) => {
                assert_eq!(realm, "https://auth.docker.io/token");
                assert_eq!(service.as_deref(), Some("registry.docker.io"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        ));
    }
    #[test]
    fn loopback_is_plain_http() {
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["registry-1.docker.io", "10.0.0.1:5000", "quay.io"] {
            assert!(!is_loopback(h), "{h}");
        }
        let c = RegistryClient::new("quay.io", RegistryOptions::default()).unwrap();
        assert!(c.base.starts_with("https://"));
        let c = RegistryClient::new(
            "myreg:5000",
            RegistryOptions {
                insecure_registries: vec!["myreg:5000".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(c.base.starts_with("http://"));
    }
    #[test]
    fn docker_config_auths() {
        let td = tempfile::tempdir().unwrap();
        let p = td.path().join("config.json");
        let enc = base64::engine::general_purpose::STANDARD.encode("user:pa:ss");
        std::fs::write(&p, format!(r#"{{"auths":{{"localhost:5000":{{"auth":"{enc}"}},"https://index.docker.io/v1/":{{"auth":"{enc}"}}}}}}"#)).unwrap();
        assert_eq!(
            docker_config_credentials(&p, "localhost:5000"),
            Some(Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert!(docker_config_credentials(&p, "docker.io").is_some());
        assert!(docker_config_credentials(&p, "other:1").is_none());
    }
}
