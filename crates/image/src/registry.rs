//! OCI distribution client (blocking, `ureq`): pull with manifest negotiation and platform
//! selection, parallel verified layer downloads with retry, push with existence checks,
//! cross-repository mount, monolithic or chunked upload; anonymous, basic and bearer auth.
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use crate::model::{self, ManifestKind, Platform};
use crate::progress::{Progress, ProgressSink};
use crate::reference::Reference;
use crate::service::{ImageService, PendingLayer};
use crate::store::ImageRecord;
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1";

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
    fn send(
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

    /// Download a blob into the content store (verified), with retries and progress.
    /// With `stage`, a layer is unpacked (speculatively, into a staging dir) while it downloads.
    ///
    /// At most `size` + 1 bytes are read: a registry sending more than the descriptor says is
    /// cut off there (a Content-Length announcing more fails before any byte is read). Only
    /// transport errors are retried; a size or digest mismatch is what the registry serves,
    /// so it fails at once. Nothing of a failed download is left in the store.
    pub fn fetch_blob(
        &self,
        repo: &str,
        d: &Digest,
        size: u64,
        stage: bool,
        progress: &dyn ProgressSink,
        lease: &crate::lease::Lease,
    ) -> Result<()> {
        let svc = lease.service();
        if lease.hold(d) {
            return Ok(());
        }
        let scope = format!("repository:{repo}:pull");
        let mut last_err = None;
        for attempt in 0..self.opts.retries.max(1) {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * attempt as u64));
            }
            let res = (|| -> Result<()> {
                let r = self.send(
                    "GET",
                    &format!("/v2/{repo}/blobs/{d}"),
                    &scope,
                    &[],
                    &Body::None,
                    &[],
                )?;
                if let Some(announced) = r
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|&n| n > size)
                {
                    return Err(Error::SizeMismatch {
                        what: format!("blob {d} from {} (its Content-Length)", self.host),
                        expected: size,
                        actual: announced,
                    });
                }
                let mut rd = DownloadReader {
                    // one byte more than the descriptor says tells "too long" from "right"
                    inner: r.into_reader().take(size.saturating_add(1)),
                    done: 0,
                    last: 0,
                    total: size,
                    layer: d,
                    sink: progress,
                    host: &self.host,
                };
                if stage {
                    // one pass: the download is hashed into the store and unpacked meanwhile
                    svc.write_blob_and_stage(
                        &mut rd,
                        &format!("blob {d}"),
                        Some(d),
                        Some(size),
                        lease,
                    )?;
                } else {
                    let mut w = lease.writer(Some(d.clone()), Some(size))?;
                    crate::store::copy_buf(&mut rd, &mut w).map_err(|e| Error::Registry {
                        registry: self.host.clone(),
                        message: format!("download {d}: {e}"),
                    })?;
                    w.commit()?;
                }
                Ok(())
            })();
            match res {
                Ok(()) => {
                    progress.event(Progress::DownloadComplete { layer: d.clone() });
                    return Ok(());
                }
                Err(Error::SizeMismatch {
                    what,
                    expected,
                    actual,
                }) => {
                    let what = if what.contains(&self.host) {
                        what
                    } else if actual > expected {
                        format!(
                            "blob {d} from {} (reading stopped one byte past the descriptor's size)",
                            self.host
                        )
                    } else {
                        format!("blob {d} from {}", self.host)
                    };
                    return Err(Error::SizeMismatch {
                        what,
                        expected,
                        actual,
                    });
                }
                Err(Error::DigestMismatch {
                    expected, actual, ..
                }) => {
                    return Err(Error::DigestMismatch {
                        what: format!("blob {d} from {}", self.host),
                        expected,
                        actual,
                    })
                }
                Err(e @ Error::Unauthorized { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("download of {d} failed (attempt {}): {e}", attempt + 1);
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Registry {
            registry: self.host.clone(),
            message: format!("download {d} failed"),
        }))
    }

    fn blob_exists(&self, repo: &str, d: &Digest, scope: &str) -> Result<bool> {
        let r = self.send(
            "HEAD",
            &format!("/v2/{repo}/blobs/{d}"),
            scope,
            &[],
            &Body::None,
            &[404],
        )?;
        Ok(r.status() == 200)
    }

    /// Upload one blob from the content store (skipped if present; mounted from `mount_from`
    /// when possible).
    fn push_blob(
        &self,
        svc: &ImageService,
        repo: &str,
        d: &Digest,
        mount_from: Option<&str>,
        progress: &dyn ProgressSink,
    ) -> Result<()> {
        let scope = match mount_from {
            Some(f) => format!("repository:{repo}:pull,push repository:{f}:pull"),
            None => format!("repository:{repo}:pull,push"),
        };
        if self.blob_exists(repo, d, &scope)? {
            progress.event(Progress::AlreadyExists { layer: d.clone() });
            return Ok(());
        }
        let mut start = format!("/v2/{repo}/blobs/uploads/");
        if let Some(f) = mount_from {
            start = format!("{start}?mount={d}&from={f}");
        }
        let r = self.send(
            "POST",
            &start,
            &scope,
            &[("Content-Length", "0")],
            &Body::Bytes(&[]),
            &[],
        )?;
        if r.status() == 201 {
            progress.event(Progress::Mounted {
                layer: d.clone(),
                from: mount_from.unwrap_or_default().to_string(),
            });
            return Ok(());
        }
        let mut loc = r
            .header("Location")
            .ok_or_else(|| Error::Registry {
                registry: self.host.clone(),
                message: format!("upload of {d}: no Location"),
            })?
            .to_string();
        let path = svc.content.path(d);
        let size = svc.content.size(d)?;
        let sep = |l: &str| if l.contains('?') { '&' } else { '?' };
        if self.opts.chunk_size > 0 && size > self.opts.chunk_size {
            let mut f = std::fs::File::open(&path).ctx("open blob", &path)?;
            let mut off = 0u64;
            let mut buf = vec![0u8; self.opts.chunk_size as usize];
            while off < size {
                let n = read_full(&mut f, &mut buf).ctx("read blob", &path)?;
                let range = format!("{}-{}", off, off + n as u64 - 1);
                let r = self.send(
                    "PATCH",
                    &loc,
                    &scope,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", &range),
                    ],
                    &Body::Bytes(&buf[..n]),
                    &[],
                )?;
                loc = r.header("Location").map(str::to_string).unwrap_or(loc);
                off += n as u64;
                progress.event(Progress::Pushing {
                    layer: d.clone(),
                    current: off,
                    total: size,
                });
            }
            let url = format!("{loc}{}digest={d}", sep(&loc));
            self.send(
                "PUT",
                &url,
                &scope,
                &[("Content-Length", "0")],
                &Body::Bytes(&[]),
                &[],
            )?;
        } else {
            let url = format!("{loc}{}digest={d}", sep(&loc));
            self.send(
                "PUT",
                &url,
                &scope,
                &[("Content-Type", "application/octet-stream")],
                &Body::File(path, size),
                &[],
            )?;
            progress.event(Progress::Pushing {
                layer: d.clone(),
                current: size,
                total: size,
            });
        }
        progress.event(Progress::Pushed { layer: d.clone() });
        Ok(())
    }
}

struct DownloadReader<'a, R> {
    inner: R,
    done: u64,
    last: u64,
    total: u64,
    layer: &'a Digest,
    sink: &'a dyn ProgressSink,
    host: &'a str,
}
impl<R: Read> Read for DownloadReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("download {} from {}: {e}", self.layer, self.host),
            )
        })?;
        self.done += n as u64;
        if self.done - self.last >= 512 * 1024 || (n == 0 && self.done != self.last) {
            self.last = self.done;
            self.sink.event(Progress::Downloading {
                layer: self.layer.clone(),
                current: self.done,
                total: self.total,
            });
        }
        if n == 0 {
            self.sink.event(Progress::Verifying {
                layer: self.layer.clone(),
            });
        }
        Ok(n)
    }
}

fn copy_full_chunks(r: &mut dyn Read, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = read_full(r, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n])?;
    }
}

fn read_full(f: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl ImageService {
    /// `docker pull`. Returns the stored image. Layers download in parallel and (overlay)
    /// are unpacked as they arrive; nothing becomes visible unless everything verified.
    pub fn pull(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        opts: &RegistryOptions,
        progress: &dyn ProgressSink,
    ) -> Result<ImageRecord> {
        let r = Reference::parse_with_default_tag(reference)?;
        let c = RegistryClient::new(r.registry_host(), opts.clone())?;
        let repo = r.path().to_string();
        let want = platform.cloned().unwrap_or_else(Platform::linux_amd64);
        progress.event(Progress::Resolving {
            reference: r.familiar_string(),
        });
        let tag_or_digest = r
            .digest()
            .map(|d| d.to_string())
            .or_else(|| r.tag().map(str::to_string))
            .unwrap_or_else(|| "latest".into());
        let (top_bytes, top_ct, top_digest) = c.get_manifest(&repo, &tag_or_digest)?;
        let what = format!("manifest of {}", r.familiar_string());
        let (man_bytes, man) = match model::parse_manifest(&top_bytes, Some(&top_ct), &what)? {
            ManifestKind::Image(m) => (top_bytes.clone(), m),
            ManifestKind::Index(idx) => {
                let d = model::select_platform(&idx, &want, &r.familiar_string())?;
                let (b, ct, _) = c.get_manifest(&repo, &d.digest.to_string())?;
                match model::parse_manifest(&b, Some(&ct), &what)? {
                    ManifestKind::Image(m) => (b, m),
                    ManifestKind::Index(_) => {
                        return Err(Error::Unsupported(format!("{what}: nested index")))
                    }
                }
            }
        };
        // Everything this pull stores is held by its lease; on failure what it brought in
        // and no image uses goes again.
        let lease = self.lease();
        // config
        c.fetch_blob(
            &repo,
            &man.config.digest,
            man.config.size,
            false,
            &crate::progress::NoProgress,
            &lease,
        )?;
        let cfg = model::ImageConfig::parse(
            &self.content.read_verified(&man.config.digest)?,
            &format!("config of {}", r.familiar_string()),
        )?;
        if cfg.rootfs.diff_ids.len() != man.layers.len() {
            return Err(Error::invalid(
                what,
                "layer count differs between manifest and config",
            ));
        }
        let layers: Vec<PendingLayer> = man
            .layers
            .iter()
            .zip(cfg.rootfs.diff_ids.iter())
            .map(|(l, d)| PendingLayer {
                blob: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: d.clone(),
            })
            .collect();
        for l in &layers {
            progress.event(Progress::Waiting {
                layer: l.blob.clone(),
            });
        }
        let chains = crate::digest::chain_ids(&cfg.rootfs.diff_ids);
        let overlay = self.snapshots.kind() == crate::snapshot::SnapshotterKind::Overlay;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let fresh: Mutex<std::collections::HashSet<Digest>> = Mutex::new(Default::default());
        std::thread::scope(|s| {
            for _ in 0..opts.parallel.clamp(1, 8).min(layers.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= layers.len() {
                        break;
                    }
                    let l = &layers[i];
                    // held before looking: a blob or snapshot found here is not removed
                    // under this pull; an unpacked layer needs no blob (see crate::slim)
                    lease.hold(&l.blob);
                    lease.hold_snapshot(&chains[i]);
                    if self.snapshots.has(&chains[i]) {
                        continue; // register() reports AlreadyExists
                    }
                    if let Ok(mut g) = fresh.lock() {
                        g.insert(l.blob.clone());
                    }
                    let mut res = c.fetch_blob(&repo, &l.blob, l.size, overlay, progress, &lease);
                    if res.is_ok() && overlay {
                        res = self
                            .unpack_layers_at(&layers, &chains, i, progress)
                            .map(drop);
                    }
                    if let Err(e) = res {
                        if let Ok(mut g) = failed.lock() {
                            g.get_or_insert(e);
                        }
                        next.store(layers.len(), std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                });
            }
        });
        for l in &layers {
            self.drop_staged_blob(&l.blob); // anything staged but not adopted (after a failure)
        }
        if let Some(e) = failed.into_inner().ok().flatten() {
            return Err(e);
        }
        let mdigest = lease.write_bytes(&man_bytes, None)?;
        if top_digest != mdigest {
            lease.write_bytes(&top_bytes, Some(&top_digest))?;
        }
        let tags: Vec<Reference> = if r.tag().is_some() && r.digest().is_none() {
            vec![r.clone()]
        } else {
            vec![]
        };
        let repo_digest = format!("{}@{}", r.name(), top_digest);
        let fresh: std::collections::HashSet<Digest> = fresh.into_inner().unwrap_or_default();
        let quiet = |p: Progress| match &p {
            Progress::AlreadyExists { layer } | Progress::Complete { layer }
                if fresh.contains(layer) => {}
            _ => progress.event(p),
        };
        let rec = self.register(
            &man.config.digest,
            layers,
            Some(mdigest),
            &tags,
            &[repo_digest],
            &quiet,
            &lease,
        )?;
        lease.succeed();
        progress.event(Progress::Done {
            reference: r.familiar_string(),
            digest: Some(top_digest),
        });
        Ok(rec)
    }

    /// The manifest to push: the stored one, with gzip-compressed layers (as docker pushes
    /// them) in place of uncompressed ones and of those whose blob the store dropped (kept as
    /// their unpacked snapshot, see [`crate::slim`]). Blobs compressed here are temporary:
    /// the lease removes them when the push ends.
    fn push_manifest(
        &self,
        rec: &crate::store::ImageRecord,
        stored: &Digest,
        lease: &crate::lease::Lease,
    ) -> Result<(Digest, Vec<u8>, model::Manifest)> {
        let mbytes = self.content.read_verified(stored)?;
        let mut man = match model::parse_manifest(&mbytes, None, "stored manifest")? {
            ManifestKind::Image(m) => m,
            ManifestKind::Index(_) => return Err(Error::Unsupported("pushing an index".into())),
        };
        let plain = |mt: &str| {
            mt == model::MEDIA_OCI_LAYER || mt == "application/vnd.docker.image.rootfs.diff.tar"
        };
        // held (so kept) from here to the upload when there
        let redo: Vec<bool> = man
            .layers
            .iter()
            .map(|l| !lease.hold(&l.digest) || plain(&l.media_type))
            .collect();
        if !redo.iter().any(|&r| r) {
            return Ok((stored.clone(), mbytes, man));
        }
        if man.layers.len() != rec.layers.len() {
            return Err(Error::invalid(
                format!("image {}", rec.id),
                "stored manifest and image record list different layers",
            ));
        }
        let chains = crate::service::layer_chains(rec);
        for ((l, c), _) in rec
            .layers
            .iter()
            .zip(&chains)
            .zip(&redo)
            .filter(|(_, r)| **r)
        {
            self.precheck_layer(l, c)?;
        }
        let docker = man.media_type.as_deref() == Some(model::MEDIA_DOCKER_MANIFEST);
        for (i, l) in man.layers.iter_mut().enumerate() {
            if !redo[i] {
                continue;
            }
            let (_, mut r) = self.layer_stream(&rec.layers[i], &chains[i])?;
            let w = lease.writer(None, None)?;
            let tmp = w.tmp_path().to_path_buf();
            let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
            // whole buffers, whatever the reader returns: the same tar always compresses to
            // the same bytes (a second push finds its blobs, a retry gets the same digest)
            copy_full_chunks(&mut r, &mut gz).map_err(|e| {
                Error::io(
                    "compress layer for push",
                    format!("{} ({})", rec.layers[i].diff_id, tmp.display()),
                    e,
                )
            })?;
            let w = gz.finish().ctx("compress layer", &tmp)?;
            let size = w.written();
            l.digest = w.commit()?;
            lease.temporary(&l.digest);
            l.size = size;
            l.media_type = if docker {
                model::MEDIA_DOCKER_LAYER_GZIP
            } else {
                model::MEDIA_OCI_LAYER_GZIP
            }
            .to_string();
        }
        let b = serde_json::to_vec(&man).map_err(|e| Error::json("manifest", e))?;
        let d = lease.write_bytes(&b, None)?;
        Ok((d, b, man))
    }

    /// `docker push NAME[:TAG]`. Returns the manifest digest.
    pub fn push(
        &self,
        name: &str,
        opts: &RegistryOptions,
        progress: &dyn ProgressSink,
    ) -> Result<Digest> {
        let r = Reference::parse_with_default_tag(name)?;
        let rec = self.resolve(name)?;
        let c = RegistryClient::new(r.registry_host(), opts.clone())?;
        let repo = r.path().to_string();
        let stored = rec
            .manifest
            .clone()
            .ok_or_else(|| Error::invalid(format!("image {}", rec.id), "no manifest stored"))?;
        let lease = self.lease();
        let (mdigest, mbytes, man) = self.push_manifest(&rec, &stored, &lease)?;
        // another repository on the same registry that has these blobs (cross-repo mount)
        let mount_from = rec
            .repo_digests
            .iter()
            .chain(rec.repo_tags.iter())
            .filter_map(|n| Reference::parse_normalized(n).ok())
            .find(|o| o.domain() == r.domain() && o.path() != r.path())
            .map(|o| o.path().to_string());
        let blobs: Vec<Digest> = man
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .chain(std::iter::once(man.config.digest.clone()))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..opts.parallel.clamp(1, 8).min(blobs.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= blobs.len() {
                        break;
                    }
                    if let Err(e) =
                        c.push_blob(self, &repo, &blobs[i], mount_from.as_deref(), progress)
                    {
                        if let Ok(mut g) = failed.lock() {
                            g.get_or_insert(e);
                        }
                        next.store(blobs.len(), std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().ok().flatten() {
            return Err(e);
        }
        let mt = man
            .media_type
            .clone()
            .unwrap_or_else(|| model::MEDIA_OCI_MANIFEST.into());
        let tag = r
            .digest()
            .map(|d| d.to_string())
            .or_else(|| r.tag().map(str::to_string))
            .unwrap_or_else(|| "latest".into());
        let scope = format!("repository:{repo}:pull,push");
        let resp = c.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &scope,
            &[("Content-Type", &mt)],
            &Body::Bytes(&mbytes),
            &[],
        )?;
        if let Some(h) = resp.header("Docker-Content-Digest") {
            if h != mdigest.to_string() {
                return Err(Error::DigestMismatch {
                    what: format!("pushed manifest of {}", r.familiar_string()),
                    expected: mdigest.to_string(),
                    actual: h.to_string(),
                });
            }
        }
        let mut rec2 = rec.clone();
        let rd = format!("{}@{}", r.name(), mdigest);
        if !rec2.repo_digests.contains(&rd) {
            rec2.repo_digests.push(rd);
        }
        self.meta.put(rec2)?;
        lease.succeed();
        progress.event(Progress::Done {
            reference: r.familiar_string(),
            digest: Some(mdigest.clone()),
        });
        Ok(mdigest)
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
