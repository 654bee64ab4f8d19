//! `POST /auth`: checks credentials against the registry's `/v2/` endpoint (Basic or Bearer
//! token challenge), as `docker login` expects.

use crate::auth::AuthConfig;
use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::stream::{blocking, json};
use base64::Engine as _;
use hyper::{Response, StatusCode};
use std::time::Duration;

/// The registry host named by a login request (`https://host:port/v1/` -> `host:port`).
pub fn registry_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "docker.io" => "registry-1.docker.io".to_string(),
        h => h.to_string(),
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .map(|(h, p)| {
            if p.bytes().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

pub async fn check(cfg: AuthConfig, insecure: Vec<String>) -> ApiResult<Response<Body>> {
    let host = registry_host(&cfg.serveraddress);
    let res = blocking(move || login(&host, &cfg, &insecure)).await?;
    json(
        StatusCode::OK,
        &serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": res }),
    )
}

fn unauthorized(host: &str, detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        format!("login to {host} failed: {detail}"),
    )
}

/// Returns an identity token when the registry hands out a refresh token, else "".
fn login(host: &str, cfg: &AuthConfig, insecure: &[String]) -> ApiResult<String> {
    let scheme = if is_loopback(host) || insecure.iter().any(|r| r == host) {
        "http"
    } else {
        "https"
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let url = format!("{scheme}://{host}/v2/");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", cfg.username, cfg.password))
    );
    let challenge = match agent.get(&url).call() {
        // The registry asks for no authentication at all: any credentials "work".
        Ok(_) => return Ok(String::new()),
        Err(ureq::Error::Status(401, r)) => r.header("WWW-Authenticate").unwrap_or("").to_string(),
        Err(ureq::Error::Status(code, _)) => {
            return Err(ApiError::internal(format!(
                "login to {host}: GET {url} answered {code}"
            )))
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "login to {host}: GET {url}: {e}"
            )))
        }
    };
    let lower = challenge.to_ascii_lowercase();
    if lower.starts_with("basic") {
        return match agent.get(&url).set("Authorization", &basic).call() {
            Ok(_) => Ok(String::new()),
            Err(ureq::Error::Status(401, _)) => {
                Err(unauthorized(host, "incorrect username or password"))
            }
            Err(e) => Err(ApiError::internal(format!(
                "login to {host}: GET {url}: {e}"
            ))),
        };
    }
    if lower.starts_with("bearer") {
        let param = |k: &str| -> Option<String> {
            let idx = lower.find(&format!("{k}=\""))?;
            let start = idx + k.len() + 2;
            let end = challenge[start..].find('"')? + start;
            Some(challenge[start..end].to_string())
        };
        let realm =
            param("realm").ok_or_else(|| unauthorized(host, "bearer challenge without realm"))?;
        let mut req = agent
            .get(&realm)
            .query("account", &cfg.username)
            .query("client_id", "berth");
        if let Some(s) = param("service") {
            req = req.query("service", &s);
        }
        if !cfg.identitytoken.is_empty() {
            // Refresh-token logins go through the OAuth2 endpoint.
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", cfg.identitytoken.as_str()),
                ("client_id", "berth"),
            ];
            let svc = param("service");
            if let Some(s) = &svc {
                form.push(("service", s.as_str()));
            }
            return match agent.post(&realm).send_form(&form) {
                Ok(_) => Ok(cfg.identitytoken.clone()),
                Err(ureq::Error::Status(401, _)) => {
                    Err(unauthorized(host, "identity token rejected"))
                }
                Err(e) => Err(ApiError::internal(format!(
                    "login to {host}: token endpoint {realm}: {e}"
                ))),
            };
        }
        req = req.set("Authorization", &basic);
        return match req.call() {
            Ok(r) => {
                let v: serde_json::Value =
                    serde_json::from_reader(r.into_reader()).unwrap_or_default();
                Ok(v.get("refresh_token")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string())
            }
            Err(ureq::Error::Status(401 | 403, _)) => {
                Err(unauthorized(host, "incorrect username or password"))
            }
            Err(e) => Err(ApiError::internal(format!(
                "login to {host}: token endpoint {realm}: {e}"
            ))),
        };
    }
    Err(unauthorized(
        host,
        &format!("unsupported authentication challenge {challenge:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hosts() {
        assert_eq!(
            registry_host("https://index.docker.io/v1/"),
            "registry-1.docker.io"
        );
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_host("http://localhost:5000/"), "localhost:5000");
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("example.com:5000"));
    }
}
