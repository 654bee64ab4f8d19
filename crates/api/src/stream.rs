//! Bridges from the engine's blocking calls to async responses: running on the blocking pool,
//! `Write` sinks that feed a streamed body, JSON progress streams with Docker's error rules.

use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

pub type Tx = mpsc::Sender<Result<Bytes, ApiError>>;
pub type Rx = mpsc::Receiver<Result<Bytes, ApiError>>;

/// Runs a blocking engine call on the blocking pool.
pub async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> ApiResult<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(format!("request handler failed: {e}"))),
    }
}

/// Starts a dedicated thread for work that may block for a long time (waiting for an exit,
/// pumping a stream, a pull). These never occupy the bounded blocking pool, so short engine
/// calls (start, create, ...) can always run even with thousands of open streams.
pub fn spawn_thread<F: FnOnce() + Send + 'static>(name: &'static str, f: F) -> ApiResult<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| ApiError::internal(format!("cannot start a {name} thread: {e}")))
}

/// Response with a content type.
pub fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON response.
pub fn json(status: StatusCode, v: &serde_json::Value) -> ApiResult<Response<Body>> {
    let b =
        serde_json::to_vec(v).map_err(|e| ApiError::internal(format!("encoding response: {e}")))?;
    Ok(response(status, "application/json", Body::full(b)))
}

/// An empty reply (204 and friends).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = status;
    r
}

/// One JSON document followed by a newline, as Docker's JSON streams carry them.
pub fn json_line(v: &serde_json::Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// A `Write` that forwards to a streamed body in chunks of up to 64 KiB (blocking thread side).
pub struct ChannelWriter {
    tx: Tx,
    buf: Vec<u8>,
    sent_any: bool,
}

const CHUNK: usize = 64 << 10;

impl ChannelWriter {
    pub fn new(tx: Tx) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::new(),
            sent_any: false,
        }
    }
    fn push(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::take(&mut self.buf));
        self.sent_any = true;
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
    /// Flushes what is buffered and reports an error in the way the client can see it:
    /// as the HTTP status if nothing was sent yet, else by aborting the transfer.
    pub fn finish(mut self, r: ApiResult<()>) {
        match r {
            Ok(()) => {
                let _ = self.push();
            }
            Err(e) => {
                if self.sent_any {
                    let _ = self.push();
                }
                let _ = self.tx.blocking_send(Err(e));
            }
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.tx.is_closed() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "client went away",
            ));
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(CHUNK);
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.push()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.push()
    }
}

/// Waits for the first message of a producer: an error before any data becomes the HTTP
/// status; otherwise a 200 streaming everything.
pub async fn commit_on_first(mut rx: Rx, content_type: &'static str) -> ApiResult<Response<Body>> {
    match rx.recv().await {
        None => Ok(response(StatusCode::OK, content_type, Body::Empty)),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(response(
            StatusCode::OK,
            content_type,
            Body::Stream(Some(first), rx),
        )),
    }
}

/// Streams what `f` writes (a tar, typically). Errors before the first byte become the HTTP
/// error; later ones abort the transfer.
pub async fn stream_writer<F>(content_type: &'static str, f: F) -> ApiResult<Response<Body>>
where
    F: FnOnce(&mut ChannelWriter) -> ApiResult<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(8);
    spawn_thread("berth-tar", move || {
        let mut w = ChannelWriter::new(tx);
        let r = f(&mut w);
        w.finish(r);
    })?;
    commit_on_first(rx, content_type).await
}

/// A Docker JSON progress stream (pull, push, load, import): each progress message is a JSON
/// line. An error before any message is the HTTP error (so the CLI prints "Error response from
/// daemon"); after that it is sent in-band as `{"errorDetail":{"message":..},"error":..}`.
pub async fn json_progress<F>(f: F) -> ApiResult<Response<Body>>
where
    F: FnOnce(&(dyn Fn(serde_json::Value) + Send + Sync)) -> ApiResult<()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    spawn_thread("berth-progress", move || {
        let sent = AtomicBool::new(false);
        let progress = |v: serde_json::Value| {
            sent.store(true, Ordering::Relaxed);
            let _ = tx.blocking_send(Ok(json_line(&v)));
        };
        let r = f(&progress);
        if let Err(e) = r {
            if sent.load(Ordering::Relaxed) {
                let _ = tx.blocking_send(Ok(json_line(&error_detail(&e.message))));
            } else {
                let _ = tx.blocking_send(Err(e));
            }
        }
    })?;
    commit_on_first(rx, "application/json").await
}

/// Docker's in-stream error message.
pub fn error_detail(msg: &str) -> serde_json::Value {
    serde_json::json!({ "errorDetail": { "message": msg }, "error": msg })
}
