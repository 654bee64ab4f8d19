//! Requests to a registry: auth challenges and bearer tokens, sends with re-auth, manifests.
use super::{
    docker_config_credentials, is_loopback, parse_challenge, status_err, Body, Challenge,
    RegistryClient, RegistryOptions,
};
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1";

impl RegistryClient {
    pub fn new(host: &str, opts: RegistryOptions) -> Result<RegistryClient> {
        let insecure = is_loopback(host) || opts.insecure_registries.iter().any(|r| r == host);
        let base = format!("{}://{}", if insecure { "http" } else { "https" }, host);
        let creds = opts.credentials.clone().or_else(|| {
            let p = opts.docker_config.clone().or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            })?;
            docker_config_credentials(&p, host)
        });
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(opts.timeout)
            .redirects(5)
            .build();
        Ok(RegistryClient {
            opts,
            agent,
            base,
            host: host.to_string(),
            creds,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    fn auth_header(&self, scope: &str) -> Option<String> {
        let ch = self.challenge.lock().ok()?.clone()?;
        match ch {
            Challenge::Basic => self.creds.as_ref().map(|c| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", c.username, c.password))
                )
            }),
            Challenge::Bearer { .. } => self
                .tokens
                .lock()
                .ok()?
                .get(scope)
                .map(|t| format!("Bearer {t}")),
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        for sc in scope.split(' ').filter(|s| !s.is_empty()) {
            req = req.query("scope", sc);
        }
        if let Some(c) = &self.creds {
            req = req.set(
                "Authorization",
                &format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", c.username, c.password))
                ),
            );
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                return Err(status_err(
                    &self.host,
                    &format!("token from {realm}"),
                    code,
                    &r.into_string().unwrap_or_default(),
                ))
            }
            Err(e) => {
                return Err(Error::Registry {
                    registry: self.host.clone(),
                    message: format!("token from {realm}: {e}"),
                })
            }
        };
        let v: serde_json::Value = serde_json::from_reader(resp.into_reader())
            .map_err(|e| Error::json(format!("token response from {realm}"), e))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| Error::Registry {
                registry: self.host.clone(),
                message: format!("token response from {realm} has no token"),
            })
    }

    /// Send a request, answering an auth challenge once. Non-2xx statuses are returned as
    /// `Ok(resp)` only when listed in `ok_codes`.
    pub(super) fn send(
        &self,
        method: &str,
        path: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: &Body,
        ok_codes: &[u16],
    ) -> Result<ureq::Response> {
        let url = self.url(path);
        for attempt in 0..2 {
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = self.auth_header(scope) {
                req = req.set("Authorization", &a);
            }
            let res = match body {
                Body::None => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File(p, len) => {
                    let f = std::fs::File::open(p).ctx("open blob for upload", p)?;
                    req.set("Content-Length", &len.to_string()).send(f)
                }
            };
            match res {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if attempt == 0 => {
                    let ch = r.header("WWW-Authenticate").and_then(parse_challenge);
                    match ch {
                        Some(Challenge::Basic) => {
                            if self.creds.is_none() {
                                return Err(Error::Unauthorized { registry: self.host.clone(), message: format!("{method} {url}: basic authentication required and no credentials (docker login / ~/.docker/config.json)") });
                            }
                            if let Ok(mut g) = self.challenge.lock() {
                                *g = Some(Challenge::Basic);
                            }
                        }
                        Some(Challenge::Bearer { realm, service }) => {
                            let t = self.fetch_token(&realm, service.as_deref(), scope)?;
                            if let Ok(mut g) = self.tokens.lock() {
                                g.insert(scope.to_string(), t);
                            }
                            if let Ok(mut g) = self.challenge.lock() {
                                *g = Some(Challenge::Bearer { realm, service });
                            }
                        }
                        None => {
                            return Err(status_err(
                                &self.host,
                                &format!("{method} {url}"),
                                401,
                                &r.into_string().unwrap_or_default(),
                            ))
                        }
                    }
                }
                Err(ureq::Error::Status(code, r)) if ok_codes.contains(&code) => return Ok(r),
                Err(ureq::Error::Status(code, r)) => {
                    return Err(status_err(
                        &self.host,
                        &format!("{method} {url}"),
                        code,
                        &r.into_string().unwrap_or_default(),
                    ))
                }
                Err(e) => {
                    return Err(Error::Registry {
                        registry: self.host.clone(),
                        message: format!("{method} {url}: {e}"),
                    })
                }
            }
        }
        Err(Error::Unauthorized {
            registry: self.host.clone(),
            message: format!("{method} {url}: credentials rejected"),
        })
    }

    /// GET a manifest; returns (bytes, content type, digest).
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
        let scope = format!("repository:{repo}:pull");
        let r = self.send(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &scope,
            &[("Accept", ACCEPT_MANIFESTS)],
            &Body::None,
            &[404],
        );
        let r = match r {
            Ok(r) if r.status() == 404 => {
                return Err(Error::ManifestUnknown {
                    registry: self.host.clone(),
                    reference: format!("{repo}:{reference}"),
                })
            }
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        let ct = r.content_type().to_string();
        let mut b = Vec::new();
        r.into_reader()
            .take(16 << 20)
            .read_to_end(&mut b)
            .ctx("read manifest", format!("{repo}:{reference}"))?;
        let d = Digest::of(&b);
        if let Ok(want) = Digest::parse(reference) {
            if want != d {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {repo}@{reference}"),
                    expected: want.to_string(),
                    actual: d.to_string(),
                });
            }
        }
        Ok((b, ct, d))
    }
}
