//! Drives berth's command flows against a scripted fake daemon and checks the
//! requests it makes (order, paths, bodies) and the exit status it returns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

type Handler = Box<dyn Fn(&str, &[u8]) -> Vec<u8> + Send>;

struct Fake {
    _dir: tempfile::TempDir,
    host: String,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

fn json_reply(status: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nApi-Version: 1.45\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn fake(handler: Handler) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let l = UnixListener::bind(&path).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = match s {
                Ok(s) => s,
                Err(_) => return,
            };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut cl = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    cl = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; cl];
            r.read_exact(&mut body).unwrap();
            let req = line.trim().to_string();
            log2.lock()
                .unwrap()
                .push((req.clone(), String::from_utf8_lossy(&body).into_owned()));
            let reply = handler(&req, &body);
            let _ = s.write_all(&reply);
        }
    });
    Fake {
        host: format!("unix://{}", path.display()),
        _dir: dir,
        log,
    }
}

fn berth(f: &Fake, args: &[&str]) -> i32 {
    let mut argv = vec!["-H".to_string(), f.host.clone()];
    argv.extend(args.iter().map(|s| s.to_string()));
    berth_cli::run_args(argv)
}

fn paths(f: &Fake) -> Vec<String> {
    f.log
        .lock()
        .unwrap()
        .iter()
        .map(|(l, _)| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn run_pulls_missing_image_then_attaches_waits_starts_in_docker_order() {
    let created = Arc::new(Mutex::new(0));
    let c2 = created.clone();
    let f = fake(Box::new(move |req, _b| {
        if req.starts_with("GET /_ping") {
            return json_reply("200 OK", "OK");
        }
        if req.contains("/containers/create") {
            let mut n = c2.lock().unwrap();
            *n += 1;
            if *n == 1 {
                return json_reply(
                    "404 Not Found",
                    r#"{"message":"No such image: img:latest"}"#,
                );
            }
            return json_reply("201 Created", r#"{"Id":"abc123","Warnings":[]}"#);
        }
        if req.contains("/images/create") {
            let stream = "{\"status\":\"Pulling from img\",\"id\":\"latest\"}\n{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"l1\"}\n{\"status\":\"Status: Downloaded newer image for img:latest\"}\n";
            return json_reply("200 OK", stream);
        }
        if req.contains("/attach") {
            let mut v =
                b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".to_vec();
            v.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 3]);
            v.extend_from_slice(b"hi\n");
            return v;
        }
        if req.contains("/wait") {
            return json_reply("200 OK", r#"{"StatusCode":7,"Error":null}"#);
        }
        if req.contains("/start") {
            return b"HTTP/1.1 204 No Content\r\n\r\n".to_vec();
        }
        json_reply("500 Internal Server Error", r#"{"message":"unexpected"}"#)
    }));
    let code = berth(
        &f,
        &[
            "run", "--rm", "-e", "A=1", "--memory", "8m", "img", "echo", "hi",
        ],
    );
    assert_eq!(code, 7, "exit status comes from wait");
    let p = paths(&f);
    assert_eq!(
        p,
        vec![
            "GET /_ping",
            "POST /v1.45/containers/create",
            "POST /v1.45/images/create?fromImage=img&tag=latest",
            "POST /v1.45/containers/create",
            "POST /v1.45/containers/abc123/attach?stream=1&stdin=0&stdout=1&stderr=1",
            "POST /v1.45/containers/abc123/wait?condition=removed",
            "POST /v1.45/containers/abc123/start",
        ]
    );
    let log = f.log.lock().unwrap();
    let body: serde_json::Value = serde_json::from_str(&log[1].1).unwrap();
    assert_eq!(body["Env"], serde_json::json!(["A=1"]));
    assert_eq!(body["HostConfig"]["Memory"], 8 << 20);
    assert_eq!(body["HostConfig"]["AutoRemove"], true);
    assert_eq!(body["Cmd"], serde_json::json!(["echo", "hi"]));
}

#[test]
fn start_failure_maps_to_127_and_detach_prints_nothing_else() {
    let f = fake(Box::new(|req, _b| {
        if req.starts_with("GET /_ping") {
            return json_reply("200 OK", "OK");
        }
        if req.contains("/containers/create") {
            return json_reply("201 Created", r#"{"Id":"def456"}"#);
        }
        if req.contains("/start") {
            return json_reply(
                "400 Bad Request",
                r#"{"message":"exec: \"nope\": executable file not found in $PATH"}"#,
            );
        }
        json_reply("404 Not Found", r#"{"message":"no"}"#)
    }));
    assert_eq!(berth(&f, &["run", "-d", "img", "nope"]), 127);
    let p = paths(&f);
    assert_eq!(p.last().unwrap(), "POST /v1.45/containers/def456/start");
    assert!(
        !p.iter().any(|x| x.contains("/attach")),
        "-d must not attach: {p:?}"
    );
}

#[test]
fn usage_errors_exit_125_without_contacting_the_daemon() {
    let f = fake(Box::new(|_r, _b| {
        json_reply("500 Internal Server Error", "{}")
    }));
    assert_eq!(berth(&f, &["ps", "--bogus"]), 125);
    assert_eq!(berth(&f, &["run"]), 125);
    assert_eq!(berth(&f, &["logs"]), 125);
    assert_eq!(berth(&f, &["run", "--memory", "x", "img"]), 125);
    assert_eq!(berth(&f, &["nosuchcommand"]), 125);
    assert_eq!(berth(&f, &["run", "--help"]), 0);
    assert!(
        paths(&f).is_empty(),
        "usage errors must not reach the daemon"
    );
}

#[test]
fn daemon_errors_exit_1_and_multi_target_commands_continue() {
    let f = fake(Box::new(|req, _b| {
        if req.starts_with("GET /_ping") {
            return json_reply("200 OK", "OK");
        }
        if req.contains("/containers/bad/stop") {
            return json_reply("404 Not Found", r#"{"message":"No such container: bad"}"#);
        }
        b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()
    }));
    assert_eq!(berth(&f, &["stop", "bad", "good"]), 1);
    let p = paths(&f);
    assert!(
        p.contains(&"POST /v1.45/containers/good/stop".to_string()),
        "{p:?}"
    );
    assert_eq!(berth(&f, &["stop", "-t", "3", "good"]), 0);
    assert!(paths(&f).contains(&"POST /v1.45/containers/good/stop?t=3".to_string()));
}

#[test]
fn daemon_down_exits_1_for_ps_and_125_for_run() {
    let host = "unix:///nonexistent/berth-test.sock".to_string();
    assert_eq!(
        berth_cli::run_args(vec!["-H".into(), host.clone(), "ps".into()]),
        1
    );
    assert_eq!(
        berth_cli::run_args(vec!["-H".into(), host, "run".into(), "img".into()]),
        125
    );
}

#[test]
fn cp_from_container_refuses_archives_escaping_through_symlinks() {
    let outside = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    // d/, d/esc -> <outside>, d/esc/owned
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "d", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "d/esc", outside.path()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(6);
    b.append_data(&mut h, "d/esc/owned", &b"pwned\n"[..])
        .unwrap();
    let evil = b.into_inner().unwrap();
    let f = fake(Box::new(move |req, _b| {
        if req.starts_with("GET /_ping") {
            return json_reply("200 OK", "OK");
        }
        if req.contains("/archive") {
            let mut v = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
                evil.len()
            )
            .into_bytes();
            v.extend_from_slice(&evil);
            return v;
        }
        json_reply("404 Not Found", r#"{"message":"no"}"#)
    }));
    let dst = format!("{}/", out_dir.path().display());
    let code = berth(&f, &["cp", "c1:/d", &dst]);
    assert_ne!(code, 0, "hostile archive must be refused");
    assert!(
        !outside.path().join("owned").exists(),
        "wrote through a symlink out of the destination"
    );
    // the symlink itself may exist, but nothing was written through it
    assert!(out_dir.path().join("d").is_dir());
}
