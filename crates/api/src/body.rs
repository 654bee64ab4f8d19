//! Response bodies (empty, whole, or streamed through a channel) and request-body helpers.

use crate::error::{ApiError, ApiResult};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Largest JSON request body accepted (64 MiB). Tar uploads are streamed and unlimited.
pub const JSON_BODY_LIMIT: usize = 64 << 20;

/// Queued chunks are merged into frames of up to this many bytes.
const COALESCE_LIMIT: usize = 64 << 10;

/// When the consumer of an upload stops reading (it is done, or it failed early: a full
/// disk, a refused archive), the rest of the body is still read and thrown away, up to this
/// many bytes: a client that sends its whole body before it reads the answer (docker-py),
/// or that is still sending when the answer comes (the docker CLI), would otherwise get a
/// broken pipe instead of the answer. Beyond the limit the connection is closed.
pub const DRAIN_LIMIT: u64 = 8 << 30;

/// How long the rest of an upload is drained at most (a client that stalls keeps no task).
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(600);

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

/// Reads a whole request body, refusing more than `limit` bytes with 413.
pub async fn read_limited(body: Incoming, limit: usize) -> ApiResult<Bytes> {
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
    /// Starts pumping `body` on the runtime; returns the blocking reader end. Once the
    /// reader is dropped, the rest of the body is drained (see [`DRAIN_LIMIT`]).
    pub fn spawn(body: Incoming) -> Self {
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
        tokio::spawn(pump(body, tx));
        BodyReader {
            rx,
            cur: Bytes::new(),
            done: false,
        }
    }
}

/// Feeds `body` to `tx`; when the receiver is gone, drains the rest.
async fn pump(mut body: Incoming, tx: mpsc::Sender<std::io::Result<Bytes>>) {
    loop {
        match body.frame().await {
            None => return,
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    if !d.is_empty() && tx.send(Ok(d)).await.is_err() {
                        break; // the consumer stopped reading
                    }
                }
            }
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(std::io::Error::other(format!(
                        "reading request body: {e}"
                    ))))
                    .await;
                return;
            }
        }
    }
    drop(tx);
    let drained = tokio::time::timeout(DRAIN_TIME, drain(&mut body, DRAIN_LIMIT)).await;
    match drained {
        Ok(Ok(n)) if n > 0 => tracing::debug!("drained {n} bytes of an upload after its reader"),
        Ok(Ok(_)) => {}
        Ok(Err(n)) => tracing::warn!(
            "an upload went on past {n} bytes after its reader stopped: closing the connection"
        ),
        Err(_) => tracing::warn!(
            "an upload went on for {}s after its reader stopped: closing the connection",
            DRAIN_TIME.as_secs()
        ),
    }
}

/// Reads and discards the rest of `body`: `Ok(bytes)` at its end (or a read error: the
/// client went), `Err(bytes)` past `limit`.
async fn drain<B>(body: &mut B, limit: u64) -> Result<u64, u64>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut n = 0u64;
    while let Some(f) = body.frame().await {
        let Ok(f) = f else { break };
        if let Ok(d) = f.into_data() {
            n += d.len() as u64;
            if n > limit {
                return Err(n);
            }
        }
    }
    Ok(n)
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
        assert_eq!(drain(&mut chunks(), 4000).await, Ok(4000));
        assert!(matches!(drain(&mut chunks(), 2500).await, Err(n) if n > 2500));
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
