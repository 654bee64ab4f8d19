//! Response bodies (empty, whole, or streamed through a channel) and request-body helpers.

use crate::error::{ApiError, ApiResult};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Largest JSON request body accepted (64 MiB). Tar uploads are streamed and unlimited.
pub const JSON_BODY_LIMIT: usize = 64 << 20;

/// Queued chunks are merged into frames of up to this many bytes.
const COALESCE_LIMIT: usize = 64 << 10;

/// Every response body berthd produces.
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    /// Chunks produced by a task or a blocking thread; the stream ends when the sender is
    /// dropped. An `Err` item aborts the response (the connection is closed without the final
    /// chunk, so the client sees a truncated transfer rather than a silently short one).
    Stream(Option<Bytes>, mpsc::Receiver<Result<Bytes, ApiError>>),
}

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Self {
        Body::Full(Some(b.into()))
    }
    /// A streamed body and the sender that feeds it.
    pub fn channel(cap: usize) -> (mpsc::Sender<Result<Bytes, ApiError>>, Self) {
        let (tx, rx) = mpsc::channel(cap);
        (tx, Body::Stream(None, rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = ApiError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ApiError>>> {
        match &mut *self {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(first, rx) => {
                let head = match first.take() {
                    Some(b) => b,
                    None => match rx.poll_recv(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(None) => return Poll::Ready(None),
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                        Poll::Ready(Some(Ok(b))) => b,
                    },
                };
                // Coalesce what is already queued (many small log lines) into one frame, so
                // the client gets few large chunks instead of millions of tiny ones.
                if head.len() >= COALESCE_LIMIT {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                let mut buf: Option<BytesMut> = None;
                let mut len = head.len();
                while len < COALESCE_LIMIT {
                    match rx.try_recv() {
                        Ok(Ok(b)) => {
                            len += b.len();
                            buf.get_or_insert_with(|| {
                                let mut m = BytesMut::with_capacity(
                                    COALESCE_LIMIT.max(head.len() + b.len()),
                                );
                                m.extend_from_slice(&head);
                                m
                            })
                            .extend_from_slice(&b);
                        }
                        Ok(Err(e)) => {
                            // Deliver the data first; the error follows on the next poll.
                            *first = None;
                            let data = buf.map(BytesMut::freeze).unwrap_or(head);
                            let (tx, nrx) = mpsc::channel(1);
                            let _ = tx.try_send(Err(e));
                            *rx = nrx;
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Err(_) => break,
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(
                    buf.map(BytesMut::freeze).unwrap_or(head),
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(..) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(..) => SizeHint::default(),
        }
    }
}

/// A request body as handlers see it. The server keeps a second handle on the same body, so
/// that what a handler refused without reading (an unknown route, a 4xx before the upload)
/// is still read: see [`RequestBody::drain_refused`].
pub struct ReqBody(Arc<Mutex<Incoming>>);

/// The server's handle on a request's body.
pub struct RequestBody(Arc<Mutex<Incoming>>);

/// Largest remainder of a request's body that is read (and discarded) when nothing consumes it
/// any more: a refused request, or an upload whose consumer stopped (it is done, or it failed
/// early: a full disk, a refused archive). A client sending a body may read the reply only
/// once it has written it all (docker-py), or it stops at the first write error (the docker
/// CLI): closing the connection with the body unread leaves it with `write: broken pipe`
/// instead of the message. Past this bound the connection is closed. Large enough for an image
/// archive or a build context that was refused.
pub const DRAIN_LIMIT: u64 = 8 << 30;
/// How long draining a body may take (a client that stalls keeps no task).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a refused request's body may stay with a task that was reading it.
pub const RELEASE_WAIT: Duration = Duration::from_secs(2);

fn lock(m: &Mutex<Incoming>) -> MutexGuard<'_, Incoming> {
    // A panic while polling cannot leave an `Incoming` half-updated in a way we care about.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RequestBody {
    /// Splits `incoming` into the handler's body and the server's handle on it.
    pub fn new(incoming: Incoming) -> (RequestBody, ReqBody) {
        let shared = Arc::new(Mutex::new(incoming));
        (RequestBody(shared.clone()), ReqBody(shared))
    }

    /// After a refusal, while the answer goes out: reads and discards what is left of the body
    /// (up to [`DRAIN_LIMIT`] bytes within [`DRAIN_TIMEOUT`]) in the background, so that the
    /// client can finish sending and read the answer, and the connection can serve the next
    /// request. Returns false when the body is known to exceed the bound (its Content-Length):
    /// the answer must then close the connection.
    pub fn drain_refused(self) -> bool {
        {
            let body = lock(&self.0);
            if hyper::body::Body::is_end_stream(&*body) {
                return true;
            }
        }
        let fits = hyper::body::Body::size_hint(&*lock(&self.0)).lower() <= DRAIN_LIMIT;
        tokio::spawn(async move {
            // A task that was streaming the body to a failed handler lets go of it when it
            // sees its reader dropped: give it a moment.
            let mut shared = self.0;
            let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
            let m = loop {
                match Arc::try_unwrap(shared) {
                    Ok(m) => break m,
                    Err(still) => {
                        if tokio::time::Instant::now() >= deadline {
                            return;
                        }
                        shared = still;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            };
            let body = m.into_inner().unwrap_or_else(|p| p.into_inner());
            if !drain(body, DRAIN_LIMIT, DRAIN_TIMEOUT).await {
                tracing::debug!("refused request: body not drained, closing the connection");
            }
        });
        fits
    }
}

/// Reads and discards `body` up to `limit` bytes within `timeout`; true when it ended.
pub async fn drain<B>(mut body: B, limit: u64, timeout: Duration) -> bool
where
    B: hyper::body::Body + Unpin,
{
    if body.is_end_stream() {
        return true;
    }
    let read = async {
        let mut seen = 0u64;
        loop {
            match body.frame().await {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        seen += bytes::Buf::remaining(d) as u64;
                        if seen > limit {
                            return false;
                        }
                    }
                }
            }
        }
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(false)
}

impl hyper::body::Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut *lock(&self.0)).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.0).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.0).size_hint()
    }
}

/// Reads a whole request body, refusing more than `limit` bytes with 413.
pub async fn read_limited(body: ReqBody, limit: usize) -> ApiResult<Bytes> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    hyper::StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than the {} MiB limit", limit >> 20),
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "error reading request body: {e}"
                )))
            }
        }
    }
}

/// Parses a JSON request body; an empty body yields `T::default()`-like `null` handling by the caller.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in {what} request body: {e}")))
}

/// Parses a JSON body that must be an object; an empty body is `{}`.
pub fn parse_json_object(bytes: &[u8], what: &str) -> ApiResult<serde_json::Value> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let v: serde_json::Value = parse_json(bytes, what)?;
    match v {
        serde_json::Value::Object(_) => Ok(v),
        serde_json::Value::Null => Ok(serde_json::Value::Object(Default::default())),
        other => Err(ApiError::bad_request(format!(
            "invalid JSON in {what} request body: expected an object, got {}",
            kind(&other)
        ))),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A blocking `Read` over a request body that an async task pumps in; for tar uploads handed
/// to the engine on a blocking thread.
pub struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
    done: bool,
}

impl BodyReader {
    /// Starts pumping `body` on the runtime; returns the blocking reader end. When the reader
    /// is dropped before the body ended, the rest is drained (see [`DRAIN_LIMIT`]).
    pub fn spawn(mut body: ReqBody) -> Self {
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
        tokio::spawn(async move {
            if pump(&mut body, &tx).await == Pumped::ReaderGone {
                // The reader stopped (it is done, or it failed early: a full disk, a refused
                // archive): the rest is read and thrown away here while the answer goes out
                // (the server's `drain_refused` finds the body held by this task and leaves it
                // to it).
                drop(tx);
                if !drain(body, DRAIN_LIMIT, DRAIN_TIMEOUT).await {
                    tracing::warn!(
                        "an upload went on after its reader stopped: closing the connection"
                    );
                }
            }
        });
        BodyReader {
            rx,
            cur: Bytes::new(),
            done: false,
        }
    }
}

#[derive(PartialEq)]
enum Pumped {
    /// The body ended (or failed: the reader was told).
    Ended,
    ReaderGone,
}

/// Feeds `body` to `tx` until it ends or the reader is gone.
async fn pump(body: &mut ReqBody, tx: &mpsc::Sender<std::io::Result<Bytes>>) -> Pumped {
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = tx.closed() => return Pumped::ReaderGone,
        };
        match frame {
            None => return Pumped::Ended,
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    if !d.is_empty() && tx.send(Ok(d)).await.is_err() {
                        return Pumped::ReaderGone;
                    }
                }
            }
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(std::io::Error::other(format!(
                        "reading request body: {e}"
                    ))))
                    .await;
                return Pumped::Ended;
            }
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                None => {
                    self.done = true;
                    return Ok(0);
                }
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(flavor = "current_thread")]
    async fn drain_reads_to_the_end_or_stops_past_the_limit() {
        let chunks = || {
            let (tx, body) = Body::channel(8);
            tokio::spawn(async move {
                for _ in 0..4 {
                    let _ = tx.send(Ok(Bytes::from(vec![0u8; 1000]))).await;
                }
            });
            body
        };
        let t = Duration::from_secs(10);
        assert!(drain(chunks(), 4000, t).await);
        assert!(!drain(chunks(), 2500, t).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn queued_chunks_are_merged_and_errors_come_after_the_data() {
        let (tx, mut body) = Body::channel(8);
        for c in ["a", "bb", "ccc"] {
            tx.send(Ok(Bytes::from(c))).await.unwrap();
        }
        tx.send(Err(ApiError::internal("boom"))).await.unwrap();
        drop(tx);
        let f = body.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), Bytes::from("abbccc"));
        let e = body.frame().await.unwrap().err().unwrap();
        assert_eq!(e.message, "boom");
        assert!(body.frame().await.is_none());

        let (tx, mut body) = Body::channel(8);
        tx.send(Ok(Bytes::from(vec![1u8; COALESCE_LIMIT])))
            .await
            .unwrap();
        tx.send(Ok(Bytes::from("x"))).await.unwrap();
        drop(tx);
        assert_eq!(
            body.frame()
                .await
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
            COALESCE_LIMIT
        );
        assert_eq!(
            body.frame().await.unwrap().unwrap().into_data().unwrap(),
            Bytes::from("x")
        );
        assert!(body.frame().await.is_none());
    }
}
