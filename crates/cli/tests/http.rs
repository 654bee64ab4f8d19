#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use berth_cli::client::{ApiError, Client};
use berth_cli::http::{self, demux_copy, Body, Demux, Endpoint};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// Serves `n` connections; for each, reads the request head (and a body if
/// Content-Length is set) and calls `reply(request_line, body, stream)`.
fn serve(
    n: usize,
    reply: impl Fn(&str, Vec<u8>, &mut UnixStream) + Send + 'static,
) -> (
    PathBuf,
    tempfile::TempDir,
    std::thread::JoinHandle<Vec<String>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let l = UnixListener::bind(&path).unwrap();
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut cl = 0usize;
            let mut chunked = false;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    cl = v.trim().parse().unwrap();
                }
                if lower.starts_with("transfer-encoding: chunked") {
                    chunked = true;
                }
            }
            let mut body = vec![0u8; cl];
            r.read_exact(&mut body).unwrap();
            if chunked {
                loop {
                    let mut sz = String::new();
                    r.read_line(&mut sz).unwrap();
                    let n = usize::from_str_radix(sz.trim(), 16).unwrap();
                    let mut c = vec![0u8; n + 2];
                    r.read_exact(&mut c).unwrap();
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&c[..n]);
                }
            }
            seen.push(line.trim().to_string());
            reply(line.trim(), body, &mut s);
        }
        seen
    });
    (path, dir, h)
}

#[test]
fn chunked_and_length_bodies() {
    let (path, _d, h) = serve(2, |line, _b, s| {
        if line.contains("/chunked") {
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n").unwrap();
        } else {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA")
                .unwrap();
        }
    });
    let ep = Endpoint::Unix(path.to_string_lossy().into());
    let r = http::request(&ep, "GET", "/chunked", &[], Body::None, false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.bytes().unwrap(), b"hello, world");
    let r = http::request(&ep, "GET", "/len", &[], Body::None, false).unwrap();
    assert_eq!(r.bytes().unwrap(), b"abc");
    h.join().unwrap();
}

#[test]
fn streamed_request_body_is_chunked() {
    let (path, _d, h) = serve(1, |_l, body, s| {
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        s.write_all(reply.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
    });
    let ep = Endpoint::Unix(path.to_string_lossy().into());
    let data = vec![7u8; 200_000];
    let mut src: &[u8] = &data;
    let r = http::request(
        &ep,
        "POST",
        "/load",
        &[],
        Body::Stream(&mut src, "application/x-tar"),
        false,
    )
    .unwrap();
    assert_eq!(r.bytes().unwrap(), data);
    h.join().unwrap();
}

#[test]
fn negotiates_version_and_maps_errors() {
    let (path, _d, h) = serve(3, |line, _b, s| {
        if line.starts_with("GET /_ping") {
            s.write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK")
                .unwrap();
        } else if line.contains("/containers/nope/json") {
            let b = r#"{"message":"No such container: nope"}"#;
            s.write_all(format!("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()).as_bytes()).unwrap();
        } else {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n")
                .unwrap();
        }
    });
    let c = Client::new(Endpoint::Unix(path.to_string_lossy().into()));
    assert_eq!(c.version().unwrap(), "1.41");
    let e = c.get_json("/containers/nope/json").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "Error response from daemon: No such container: nope"
    );
    assert_eq!(c.get_json("/info").unwrap()["a"], 1);
    let seen = h.join().unwrap();
    assert_eq!(seen[1], "GET /v1.41/containers/nope/json HTTP/1.1");
}

#[test]
fn missing_daemon_tells_user_how_to_start_it() {
    let c = Client::new(Endpoint::Unix("/nonexistent/berth.sock".into()));
    let e = c.get_json("/info").unwrap_err();
    assert!(matches!(e, ApiError::Connect { .. }));
    assert_eq!(
        e.to_string(),
        "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is berthd running? Start it with: berthd &"
    );
}

#[test]
fn hijack_keeps_bytes_sent_with_the_101() {
    let (path, _d, h) = serve(1, |_l, _b, s| {
        let mut frame = vec![1u8, 0, 0, 0, 0, 0, 0, 3];
        frame.extend_from_slice(b"out");
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        frame.extend_from_slice(b"err\n");
        let mut all = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".to_vec();
        all.extend_from_slice(&frame);
        s.write_all(&all).unwrap();
        // then read what the client sends until it half-closes
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"input");
    });
    let ep = Endpoint::Unix(path.to_string_lossy().into());
    let r = http::request(&ep, "POST", "/containers/x/attach", &[], Body::None, true).unwrap();
    assert_eq!(r.status, 101);
    let (reader, mut w) = r.into_raw().unwrap();
    w.write_all(b"input").unwrap();
    w.shutdown_write().unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    demux_copy(reader, &mut out, &mut err).unwrap();
    assert_eq!(out, b"out");
    assert_eq!(err, b"err\n");
    h.join().unwrap();
}

#[test]
fn demux_rejects_garbage_and_truncation() {
    let mut d =
        Demux::new(&b"\x01\x00\x00\x00\x00\x00\x00\x02hi\x02\x00\x00\x00\x00\x00\x00\x01!"[..]);
    assert_eq!(d.next_frame().unwrap(), Some((1, b"hi".to_vec())));
    assert_eq!(d.next_frame().unwrap(), Some((2, b"!".to_vec())));
    assert_eq!(d.next_frame().unwrap(), None);
    let mut bad = Demux::new(&b"HTTP/1.1 garbage"[..]);
    assert!(bad.next_frame().is_err());
    let mut short = Demux::new(&b"\x01\x00\x00\x00\x00\x00\x00\x09abc"[..]);
    assert!(short.next_frame().is_err());
    let mut half = Demux::new(&b"\x01\x00\x00"[..]);
    assert!(half.next_frame().is_err());
}

#[test]
fn endpoints_parse() {
    assert_eq!(
        Endpoint::parse("unix:///run/x.sock").unwrap(),
        Endpoint::Unix("/run/x.sock".into())
    );
    assert_eq!(
        Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
        Endpoint::Tcp("127.0.0.1:2375".into())
    );
    assert_eq!(
        Endpoint::parse("tcp://localhost").unwrap(),
        Endpoint::Tcp("localhost:2375".into())
    );
    assert!(Endpoint::parse("ssh://host").is_err());
    assert!(Endpoint::parse("unix://").is_err());
}

#[test]
fn progress_plain_lines_match_docker() {
    use berth_cli::progress::plain_line;
    use serde_json::json;
    assert_eq!(
        plain_line(&json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"}))
            .unwrap(),
        "abc: Pulling fs layer\n"
    );
    assert_eq!(
        plain_line(&json!({"status": "Digest: sha256:1"})).unwrap(),
        "Digest: sha256:1\n"
    );
    assert!(plain_line(
        &json!({"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "id": "abc"})
    )
    .is_none());
    assert_eq!(
        plain_line(&json!({"stream": "Loaded image: a:b\n"})).unwrap(),
        "Loaded image: a:b\n"
    );
}
