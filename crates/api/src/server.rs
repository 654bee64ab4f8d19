//! Accept loops, per-connection HTTP/1 serving (with upgrades for hijacked streams), and the
//! headers every reply carries.

use crate::body::{Body, RequestBody};
use crate::error::ApiError;
use crate::listener::{bind_tcp, bind_unix, Host, ListenError};
use crate::router;
#[cfg(test)]
use crate::version::MAX_VERSION;
use crate::version::{split_version, ApiVersion, Versioned};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// State shared by every request.
pub struct Ctx {
    pub engine: Arc<berth_engine::Engine>,
    /// Registries reached over plain HTTP (for `/auth`).
    pub insecure_registries: Vec<String>,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hosts: Vec<Host>,
    /// Group owning the unix sockets (mode 0660).
    pub gid: Option<u32>,
    /// Registries reached over plain HTTP (`host:port`).
    pub insecure_registries: Vec<String>,
}

/// Listeners bound up-front so that errors surface before the daemon reports readiness.
pub struct Bound {
    insecure_registries: Vec<String>,
    unix: Vec<(PathBuf, tokio::net::UnixListener)>,
    tcp: Vec<tokio::net::TcpListener>,
}

/// Binds every host of `cfg` (must be called inside a tokio runtime).
pub fn bind(cfg: &ServerConfig) -> Result<Bound, ListenError> {
    let mut b = Bound {
        insecure_registries: cfg.insecure_registries.clone(),
        unix: Vec::new(),
        tcp: Vec::new(),
    };
    for h in &cfg.hosts {
        match h {
            Host::Unix(p) => {
                let l = bind_unix(p, cfg.gid)?;
                b.unix.push((p.clone(), l));
            }
            Host::Tcp(a) => b.tcp.push(bind_tcp(*a)?),
        }
    }
    Ok(b)
}

/// Serves until `shutdown` resolves; then stops accepting and removes the socket files.
/// Connections in flight are abandoned with the process (containers are not touched).
pub async fn serve(
    engine: Arc<berth_engine::Engine>,
    bound: Bound,
    shutdown: impl Future<Output = ()>,
) {
    let ctx = Arc::new(Ctx {
        engine,
        insecure_registries: bound.insecure_registries,
    });
    let mut tasks = Vec::new();
    let mut paths = Vec::new();
    for (path, l) in bound.unix {
        paths.push(path);
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, _)) => spawn_conn(ctx.clone(), s),
                    Err(e) => accept_error(e).await,
                }
            }
        }));
    }
    for l in bound.tcp {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        spawn_conn(ctx.clone(), s)
                    }
                    Err(e) => accept_error(e).await,
                }
            }
        }));
    }
    shutdown.await;
    for t in &tasks {
        t.abort();
    }
    for p in paths {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!("remove socket {}: {e}", p.display());
        }
    }
}

async fn accept_error(e: std::io::Error) {
    // EMFILE and friends: back off briefly instead of spinning.
    tracing::warn!("accept: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// Connections being served; when the last one ends the allocator is asked to give freed
/// memory back (a burst of requests otherwise leaves the daemon's RSS high while idle).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static TRIM_GEN: AtomicUsize = AtomicUsize::new(0);

fn conn_finished() {
    if ACTIVE.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    let gen = TRIM_GEN.fetch_add(1, Ordering::AcqRel) + 1;
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if ACTIVE.load(Ordering::Acquire) == 0 && TRIM_GEN.load(Ordering::Acquire) == gen {
            let _ = tokio::task::spawn_blocking(trim_heap).await;
        }
    });
}

fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn spawn_conn<S>(ctx: Arc<Ctx>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    ACTIVE.fetch_add(1, Ordering::AcqRel);
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| handle(ctx.clone(), req));
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .max_buf_size(1 << 20)
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!("connection: {e}");
        }
        conn_finished();
    });
}

/// Every request goes through here: version check, routing, error shaping, common headers.
pub async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let t0 = std::time::Instant::now();
    berth_engine::mark(&format!("api: {method} {path}"));
    tracing::debug!("{method} {}", req.uri());
    let (parts, incoming) = req.into_parts();
    let (held, body) = RequestBody::new(incoming);
    let req = Request::from_parts(parts, body);
    let (version, result) = match split_version(&path) {
        Versioned::Rejected { version, message } => {
            drop(req);
            (version, Err(ApiError::bad_request(message)))
        }
        Versioned::Ok { version, route } => {
            (version, router::route(&ctx, version, route, req).await)
        }
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!("{method} {path}: {}", e.message);
            } else {
                tracing::debug!("{method} {path}: {} {}", e.status, e.message);
            }
            let mut r = error_response_at(version, &e);
            // The client may still be sending the body it meant for this request: keep
            // reading it, or it sees a broken pipe instead of the message.
            if !held.drain_refused() {
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    };
    berth_engine::mark(&format!(
        "api: {method} {path} -> {}",
        resp.status().as_u16()
    ));
    tracing::debug!(
        "{method} {path} -> {} in {:?} (head)",
        resp.status().as_u16(),
        t0.elapsed()
    );
    Ok(with_common_headers(resp))
}

/// The error reply for a request at `version`: JSON `{"message": ...}`, or, for clients at
/// API 1.23 and older, the message as plain text (dockerd's `http.Error`: the message and a
/// newline), which is what those clients show.
pub fn error_response_at(version: ApiVersion, e: &ApiError) -> Response<Body> {
    if version.json_errors() || e.status == hyper::StatusCode::NOT_MODIFIED {
        return error_response(e);
    }
    let mut r = Response::new(Body::full(format!("{}\n", e.message)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    *r.status_mut() = e.status;
    r
}

/// `{"message": ...}` with the error's status (304 has no body).
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = if e.status == hyper::StatusCode::NOT_MODIFIED {
        Response::new(Body::Empty)
    } else {
        let mut r = Response::new(Body::full(e.body()));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    *r.status_mut() = e.status;
    r
}

fn with_common_headers(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(max_version_str()));
    h.insert("Server", HeaderValue::from_static(SERVER_NAME));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    r
}

fn max_version_str() -> &'static str {
    // Kept in sync with MAX_VERSION by the unit test below.
    "1.47"
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_header_matches_constant() {
        assert_eq!(super::max_version_str(), super::MAX_VERSION.to_string());
    }
}
