//! No output is lost by a logs stream opened around a short container's start and exit
//! (issue 17): docker-py's `containers.run(..., remove=True)` opens `logs?follow=1` right after
//! the start, waits, removes the container, and only then reads the stream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn create(d: &Daemon, cmd: &str) -> String {
    let body = serde_json::json!({"Image": "lograce:1", "Cmd": ["sh", "-c", cmd]});
    let r = d.post_json("/v1.47/containers/create", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["Id"].as_str().unwrap().to_string()
}

/// Sends a GET and reads only the reply's head: the body is read later by the caller.
fn open_stream(d: &Daemon, path: &str) -> (UnixStream, Vec<u8>) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (head, rest) = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (s, rest)
}

/// The rest of a chunked body of multiplexed frames: (stdout, stderr).
fn read_frames(mut s: UnixStream, mut got: Vec<u8>) -> (String, String) {
    s.read_to_end(&mut got).unwrap();
    let mut b = &dechunk(&got)[..];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while b.len() >= 8 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let to = if b[0] == 1 { &mut out } else { &mut err };
        to.extend_from_slice(&b[8..8 + len]);
        b = &b[8 + len..];
    }
    let s = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
    (s(out), s(err))
}

#[test]
fn a_follow_stream_read_after_the_removal_has_all_the_output() {
    let d = Daemon::start();
    import_busybox(&d, "lograce:1");
    let mut lost = Vec::new();
    for i in 0..200 {
        let id = create(&d, "echo hello; echo err >&2");
        let r = d.req("POST", &format!("/v1.47/containers/{id}/start"), b"");
        assert_eq!(r.status, 204, "{}", r.text());
        let (s, rest) = open_stream(
            &d,
            &format!("/v1.47/containers/{id}/logs?follow=1&stdout=1&stderr=1"),
        );
        let w = d.req("POST", &format!("/v1.47/containers/{id}/wait"), b"");
        assert_eq!(w.status, 200, "{}", w.text());
        let r = d.req("DELETE", &format!("/v1.47/containers/{id}"), b"");
        assert_eq!(r.status, 204, "{}", r.text());
        let got = read_frames(s, rest);
        if got != ("hello\n".into(), "err\n".into()) {
            lost.push((i, got));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 200 runs lost output: {lost:?}",
        lost.len()
    );
}

#[test]
fn follow_of_a_container_that_is_not_running_ends_at_once() {
    let d = Daemon::start();
    import_busybox(&d, "lograce:1");
    let id = create(&d, "echo hello");
    // Not started: nothing to follow (dockerd ends such a stream at once too).
    let (s, rest) = open_stream(
        &d,
        &format!("/v1.47/containers/{id}/logs?follow=1&stdout=1"),
    );
    assert_eq!(read_frames(s, rest), (String::new(), String::new()));
    d.req("POST", &format!("/v1.47/containers/{id}/start"), b"");
    d.req("POST", &format!("/v1.47/containers/{id}/wait"), b"");
    let (s, rest) = open_stream(
        &d,
        &format!("/v1.47/containers/{id}/logs?follow=1&stdout=1"),
    );
    assert_eq!(read_frames(s, rest), ("hello\n".into(), String::new()));
}

#[test]
fn tail_counts_the_lines_of_both_streams_before_the_stream_filter() {
    let d = Daemon::start();
    import_busybox(&d, "lograce:1");
    let id = create(
        &d,
        "echo o1; sleep 0.1; echo e1 >&2; sleep 0.1; echo o2; sleep 0.1; echo e2 >&2",
    );
    d.req("POST", &format!("/v1.47/containers/{id}/start"), b"");
    d.req("POST", &format!("/v1.47/containers/{id}/wait"), b"");
    let logs = |q: &str| {
        let (s, rest) = open_stream(&d, &format!("/v1.47/containers/{id}/logs?{q}"));
        read_frames(s, rest)
    };
    // o1 e1 o2 e2: the last 3 are e1 o2 e2, of which stdout has o2.
    assert_eq!(logs("stdout=1&tail=3"), ("o2\n".into(), String::new()));
    assert_eq!(logs("stderr=1&tail=3"), (String::new(), "e1\ne2\n".into()));
    assert_eq!(logs("stdout=1&tail=1"), (String::new(), String::new()));
    assert_eq!(
        logs("stdout=1&stderr=1&tail=0"),
        (String::new(), String::new())
    );
    assert_eq!(
        logs("stdout=1&stderr=1&tail=all"),
        ("o1\no2\n".into(), "e1\ne2\n".into())
    );
}
