//! Hijacked connections for attach and exec start: `101 Switching Protocols` (`Upgrade: tcp`)
//! then raw bytes both ways; or, for clients that did not ask to upgrade, a 200 whose body is
//! the output while the request body feeds stdin.

use crate::body::Body;
use crate::body::ReqBody;
use crate::error::ApiResult;
use crate::stream::spawn_thread;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::io::{Read, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Did the client ask for a protocol upgrade (`Connection: Upgrade` + `Upgrade: ...`)?
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    let conn_upgrade = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    conn_upgrade && h.contains_key(UPGRADE)
}

pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// What one hijacked session pumps.
pub struct Session {
    pub tty: bool,
    /// Sent before live output (log replay for `attach?logs=1`).
    pub prelude: Vec<Bytes>,
    pub output: Option<berth_engine::AttachOutput>,
    pub input: Option<berth_engine::AttachInput>,
}

/// Builds the reply and starts the pumps. `upgrade` is `Some` when the client asked to
/// upgrade; otherwise `body` (the request body) feeds stdin and output is the response body.
pub fn start(
    session: Session,
    upgrade: Option<OnUpgrade>,
    body: Option<ReqBody>,
) -> ApiResult<Response<Body>> {
    let ct = content_type(session.tty);
    let (otx, orx) = mpsc::channel::<Bytes>(16);
    let Session {
        prelude,
        output,
        input,
        ..
    } = session;
    if let Some(mut output) = output {
        spawn_thread("berth-attach-out", move || {
            let mut buf = vec![0u8; 32 << 10];
            loop {
                match output.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if otx
                            .blocking_send(Bytes::copy_from_slice(&buf[..n]))
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!("attach output: {e}");
                        break;
                    }
                }
            }
        })?;
    } else {
        drop(otx);
    }
    let itx = match input {
        Some(i) => Some(spawn_stdin_writer(i)?),
        None => None,
    };

    match upgrade {
        Some(on_upgrade) => {
            tokio::spawn(pump_upgraded(on_upgrade, prelude, orx, itx));
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = r.headers_mut();
            h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(UPGRADE, HeaderValue::from_static("tcp"));
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            Ok(r)
        }
        None => {
            if let (Some(itx), Some(mut body)) = (itx, body) {
                tokio::spawn(async move {
                    while let Some(Ok(f)) = body.frame().await {
                        if let Ok(d) = f.into_data() {
                            if itx.send(d).await.is_err() {
                                break;
                            }
                        }
                    }
                });
            }
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(async move {
                for p in prelude {
                    if tx.send(Ok(p)).await.is_err() {
                        return;
                    }
                }
                let mut orx = orx;
                while let Some(b) = orx.recv().await {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
            });
            let mut r = Response::new(Body::Stream(None, rx));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            Ok(r)
        }
    }
}

/// A blocking thread writing client input to the process; dropping the sender = half-close.
fn spawn_stdin_writer(mut input: berth_engine::AttachInput) -> ApiResult<mpsc::Sender<Bytes>> {
    let (itx, mut irx) = mpsc::channel::<Bytes>(16);
    spawn_thread("berth-attach-in", move || {
        while let Some(b) = irx.blocking_recv() {
            if let Err(e) = input.write_all(&b).and_then(|_| input.flush()) {
                tracing::debug!("attach input: {e}");
                return;
            }
        }
        if let Err(e) = input.close() {
            tracing::debug!("attach input close: {e}");
        }
    })?;
    Ok(itx)
}

async fn pump_upgraded(
    on_upgrade: OnUpgrade,
    prelude: Vec<Bytes>,
    orx: mpsc::Receiver<Bytes>,
    itx: Option<mpsc::Sender<Bytes>>,
) {
    let up = match on_upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!("upgrade failed: {e}");
            return;
        }
    };
    // On a unix socket (the usual case), take the stream back from hyper to see when the
    // client has read the `101` (below); bytes it sent after its request go to stdin first.
    match up.downcast::<TokioIo<tokio::net::UnixStream>>() {
        Ok(parts) => {
            let io = parts.io.into_inner();
            await_peer_read(&io).await;
            pump(io, parts.read_buf, prelude, orx, itx).await
        }
        Err(up) => pump(TokioIo::new(up), Bytes::new(), prelude, orx, itx).await,
    }
}

/// Wait (at most 100 ms) until the client has read everything sent so far, i.e. the `101`
/// response. Clients that read the response head through a buffered reader and then switch to
/// the raw socket (docker-py) lose output that arrives in the same read as the head; with a
/// fast exec that happens. SIOCOUTQ on a unix stream socket counts the bytes the peer has not
/// read yet.
async fn await_peer_read(io: &tokio::net::UnixStream) {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    loop {
        let mut unread: libc::c_int = 0;
        // (SIOCOUTQ is TIOCOUTQ on Linux.)
        // SAFETY: SIOCOUTQ writes one int through the pointer we pass; the fd is the open
        // socket borrowed from `io`.
        let r = unsafe { libc::ioctl(io.as_raw_fd(), libc::TIOCOUTQ, &mut unread) };
        if r != 0 || unread == 0 || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
}

async fn pump<IO>(
    io: IO,
    early: Bytes,
    prelude: Vec<Bytes>,
    mut orx: mpsc::Receiver<Bytes>,
    itx: Option<mpsc::Sender<Bytes>>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    // Client -> stdin. When the client half-closes (no more input) the sender is dropped,
    // which closes the process's stdin; output keeps flowing.
    let reader = tokio::spawn(async move {
        if let Some(itx) = &itx {
            if !early.is_empty() && itx.send(early).await.is_err() {
                return;
            }
        }
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(itx) = &itx {
                        if itx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        drop(itx);
    });
    for p in prelude {
        if wr.write_all(&p).await.is_err() {
            reader.abort();
            return;
        }
    }
    let _ = wr.flush().await;
    while let Some(b) = orx.recv().await {
        if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
    berth_engine::mark("api: attach stream closed");
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_upgrade() {
        let mut h = HeaderMap::new();
        assert!(!wants_upgrade(&h));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(!wants_upgrade(&h));
        h.insert(UPGRADE, HeaderValue::from_static("tcp"));
        assert!(wants_upgrade(&h));
    }
}
