//! The library entry points (`bind` + `serve`) in-process: several listeners (unix and TCP)
//! serve the same API, and the shutdown future stops accepting and removes the socket files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

use berth_api::{Host, ServerConfig};
use std::io::{Read, Write};
use std::time::Duration;

fn ping_over<S: Read + Write>(mut s: S) -> String {
    s.write_all(b"GET /v1.30/_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn unix_and_tcp_listeners_then_clean_shutdown() {
    let dir = tempfile::Builder::new()
        .prefix("berth-api-serve")
        .tempdir_in("/tmp")
        .unwrap();
    let a = dir.path().join("a.sock");
    let b = dir.path().join("nested/b.sock");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = ServerConfig {
        hosts: vec![
            format!("unix://{}", a.display()).parse::<Host>().unwrap(),
            format!("unix://{}", b.display()).parse::<Host>().unwrap(),
            format!("tcp://127.0.0.1:{port}").parse::<Host>().unwrap(),
        ],
        gid: Some(0),
        insecure_registries: vec![],
    };
    let engine = berth_engine::Engine::open(berth_engine::EngineConfig {
        root: dir.path().join("root"),
        exec_root: dir.path().join("exec"),
        ..Default::default()
    })
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = std::thread::spawn(move || {
        rt.block_on(async move {
            let bound = berth_api::bind(&cfg).unwrap();
            berth_api::serve(engine, bound, async move {
                let _ = stop_rx.await;
            })
            .await;
        })
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(a.exists() && b.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "sockets never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in [&a, &b] {
        let r = ping_over(std::os::unix::net::UnixStream::connect(p).unwrap());
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            r.contains("api-version: 1.47") || r.contains("Api-Version: 1.47"),
            "{r}"
        );
        assert!(r.ends_with("OK"), "{r}");
    }
    let mut tcp = None;
    while tcp.is_none() {
        tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok();
        assert!(
            std::time::Instant::now() < deadline,
            "tcp listener never came up"
        );
    }
    let r = ping_over(tcp.unwrap());
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");

    stop_tx.send(()).unwrap();
    server.join().unwrap();
    assert!(!a.exists() && !b.exists(), "socket files left behind");
    assert!(std::os::unix::net::UnixStream::connect(&a).is_err());
}
