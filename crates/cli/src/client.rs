//! Docker Engine API client: version negotiation, JSON helpers, error mapping.

use crate::http::{self, Body, Endpoint, Response};
use serde_json::Value;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufReader, Read};

/// Highest API version this client speaks.
pub const CLIENT_API_VERSION: &str = "1.51";
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Errors a command may hit talking to the daemon.
#[derive(Debug)]
pub enum ApiError {
    /// The daemon could not be reached.
    Connect {
        url: String,
        source: io::Error,
    },
    /// The daemon answered with an error status.
    Status {
        status: u16,
        message: String,
    },
    Io(io::Error),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Connect { url, source } => {
                if source.kind() == io::ErrorKind::PermissionDenied {
                    write!(f, "permission denied while trying to connect to the berth daemon socket at {url}: {source}")
                } else {
                    write!(f, "Cannot connect to the berth daemon at {url}. Is berthd running? Start it with: berthd &")
                }
            }
            ApiError::Status { message, .. } => write!(f, "Error response from daemon: {message}"),
            ApiError::Io(e) => write!(f, "error talking to the daemon: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn message(&self) -> String {
        match self {
            ApiError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

pub type Result<T> = std::result::Result<T, ApiError>;

pub struct Client {
    pub endpoint: Endpoint,
    /// `--debug`: trace every request on stderr
    pub debug: bool,
    version: RefCell<Option<String>>,
    fixed_version: Option<String>,
}

fn cmp_version(a: &str, b: &str) -> std::cmp::Ordering {
    let p = |s: &str| -> Vec<u64> { s.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    p(a).cmp(&p(b))
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        let fixed_version = std::env::var("BERTH_API_VERSION")
            .ok()
            .or_else(|| std::env::var("DOCKER_API_VERSION").ok())
            .filter(|v| !v.is_empty());
        Client {
            endpoint,
            debug: false,
            version: RefCell::new(None),
            fixed_version,
        }
    }

    /// A client for another thread, keeping the negotiated version (no new ping).
    pub fn fork(&self) -> Client {
        let v = self.version().ok();
        Client {
            endpoint: self.endpoint.clone(),
            debug: self.debug,
            version: RefCell::new(v),
            fixed_version: self.fixed_version.clone(),
        }
    }

    fn map_connect(&self, e: io::Error) -> ApiError {
        match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::AddrNotAvailable => ApiError::Connect {
                url: self.endpoint.url(),
                source: e,
            },
            _ if e.raw_os_error() == Some(libc::ENOTDIR)
                || e.raw_os_error() == Some(libc::EHOSTUNREACH) =>
            {
                ApiError::Connect {
                    url: self.endpoint.url(),
                    source: e,
                }
            }
            _ => ApiError::Io(e),
        }
    }

    /// Negotiated API version: min(client max, daemon's Api-Version).
    pub fn version(&self) -> Result<String> {
        if let Some(v) = &self.fixed_version {
            return Ok(v.clone());
        }
        if let Some(v) = self.version.borrow().as_ref() {
            return Ok(v.clone());
        }
        let resp = http::request(&self.endpoint, "GET", "/_ping", &[], Body::None, false)
            .map_err(|e| self.map_connect(e))?;
        let server = resp.header("Api-Version").map(str::to_string);
        let _ = resp.bytes();
        let v = match server {
            Some(s) if cmp_version(&s, CLIENT_API_VERSION).is_lt() => s,
            _ => CLIENT_API_VERSION.to_string(),
        };
        *self.version.borrow_mut() = Some(v.clone());
        Ok(v)
    }

    /// True when the negotiated version is at least `v`.
    pub fn at_least(&self, v: &str) -> bool {
        self.version()
            .map(|have| !cmp_version(&have, v).is_lt())
            .unwrap_or(false)
    }

    fn full_path(&self, path: &str) -> Result<String> {
        Ok(format!("/v{}{}", self.version()?, path))
    }

    /// Sends a request; error statuses become `ApiError::Status`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Response> {
        let p = self.full_path(path)?;
        if self.debug {
            eprintln!("DEBU {method} {}{p}", self.endpoint.url());
        }
        let resp = http::request(&self.endpoint, method, &p, headers, body, false)
            .map_err(|e| self.map_connect(e))?;
        if self.debug {
            eprintln!("DEBU <- {} {method} {p}", resp.status);
        }
        check(resp)
    }

    /// Sends a request asking to hijack the connection.
    pub fn hijack(
        &self,
        method: &str,
        path: &str,
        json: Option<&Value>,
    ) -> Result<(BufReader<http::Conn>, http::Conn)> {
        let p = self.full_path(path)?;
        if self.debug {
            eprintln!("DEBU {method} {}{p} (hijack)", self.endpoint.url());
        }
        let body_s = json.map(|j| j.to_string());
        let body = match &body_s {
            Some(s) => Body::Bytes(s.as_bytes(), "application/json"),
            None => Body::None,
        };
        let resp = http::request(&self.endpoint, method, &p, &[], body, true)
            .map_err(|e| self.map_connect(e))?;
        let resp = check(resp)?;
        resp.into_raw().map_err(ApiError::Io)
    }

    pub fn get(&self, path: &str) -> Result<Response> {
        self.send("GET", path, &[], Body::None)
    }

    pub fn get_json(&self, path: &str) -> Result<Value> {
        let r = self.get(path)?;
        read_json(r)
    }

    pub fn post(&self, path: &str, json: Option<&Value>) -> Result<Response> {
        match json {
            Some(j) => {
                let s = j.to_string();
                self.send(
                    "POST",
                    path,
                    &[],
                    Body::Bytes(s.as_bytes(), "application/json"),
                )
            }
            None => self.send("POST", path, &[], Body::None),
        }
    }

    /// POST and discard the body.
    pub fn post_ok(&self, path: &str, json: Option<&Value>) -> Result<()> {
        let r = self.post(path, json)?;
        r.bytes().map_err(ApiError::Io)?;
        Ok(())
    }

    pub fn post_json(&self, path: &str, json: Option<&Value>) -> Result<Value> {
        let r = self.post(path, json)?;
        read_json(r)
    }

    pub fn delete(&self, path: &str) -> Result<Response> {
        self.send("DELETE", path, &[], Body::None)
    }
}

/// Reads a JSON body (empty body -> Null).
pub fn read_json(r: Response) -> Result<Value> {
    let b = r.bytes().map_err(ApiError::Io)?;
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&b).map_err(|e| {
        ApiError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("daemon sent invalid JSON: {e}"),
        ))
    })
}

fn check(resp: Response) -> Result<Response> {
    if resp.status < 400 {
        return Ok(resp);
    }
    let status = resp.status;
    let mut body = Vec::new();
    let mut resp = resp;
    let _ = resp.read_to_end(&mut body);
    let message = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        Err(_) => {
            let s = String::from_utf8_lossy(&body).trim().to_string();
            if s.is_empty() {
                format!("HTTP status {status}")
            } else {
                s
            }
        }
    };
    Err(ApiError::Status { status, message })
}

/// Encodes a filters map `{"key":{"value":true}}` from `key=value` args.
pub fn filters_json(args: &[String]) -> std::result::Result<Option<String>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {a}"))?;
        let e = m
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(o) = e {
            o.insert(v.to_string(), Value::Bool(true));
        }
    }
    Ok(Some(Value::Object(m).to_string()))
}
