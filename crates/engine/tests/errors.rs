//! Failed starts are typed end to end (root): the container's init reports its failure with a
//! kind and errno, the monitor sends them as `error {"kind":...}`, the engine returns
//! `Error::Task` and derives the HTTP status and Docker's exit code from the kind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::proto::ErrorKind;
use berth_engine::*;
use common::*;
use serde_json::json;

const PREFIX: &str = "failed to create task for container: ";

#[test]
fn failed_container_starts_are_typed_with_docker_exit_codes() {
    let env = Env::new();
    let cases = [
        (
            "no-such-command-xyz",
            ErrorKind::ExecNotFound,
            libc::ENOENT,
            127,
            "exec: \"no-such-command-xyz\": executable file not found in $PATH",
        ),
        (
            "/no/such/cmd",
            ErrorKind::ExecNotFound,
            libc::ENOENT,
            127,
            "exec: \"/no/such/cmd\": no such file or directory",
        ),
        (
            "/etc/passwd",
            ErrorKind::ExecPermission,
            libc::EACCES,
            126,
            "exec: \"/etc/passwd\": permission denied",
        ),
        (
            "/etc",
            ErrorKind::ExecPermission,
            libc::EACCES,
            126,
            "exec: \"/etc\": permission denied",
        ),
    ];
    for (cmd, kind, errno, code, msg) in cases {
        let id = env.create(json!({"Cmd": [cmd]}));
        let w = env
            .engine
            .container_wait(&id, WaitCondition::NextExit)
            .unwrap();
        let e = env.engine.container_start(&id).unwrap_err();
        match &e {
            Error::Task(t) => assert_eq!((t.kind, t.errno), (kind, Some(errno)), "{cmd}: {t:?}"),
            other => panic!("{cmd}: not a task error: {other:?}"),
        }
        assert_eq!(e.status_code(), 400, "{cmd}");
        let text = e.to_string();
        assert!(
            text.starts_with(PREFIX) && text.ends_with(msg),
            "{cmd}: {text}"
        );
        assert_eq!(w.wait().status_code, code, "{cmd}");
        let j = env.engine.container_inspect(&id, false).unwrap();
        assert_eq!(j["State"]["ExitCode"], json!(code), "{cmd}: {j}");
        assert_eq!(j["State"]["Error"], json!(text), "{cmd}");
        env.engine.container_remove(&id, true, false).unwrap();
    }
}

#[test]
fn failed_exec_starts_are_typed_with_docker_exit_codes() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sh", "-c", "while true; do sleep 0.1; done"]}));
    env.engine.container_start(&id).unwrap();
    for (cmd, kind, code) in [
        ("no-such-exec-cmd", ErrorKind::ExecNotFound, 127),
        ("/etc/passwd", ErrorKind::ExecPermission, 126),
    ] {
        let ex = env
            .engine
            .exec_create(&id, &json!({"Cmd": [cmd], "AttachStdout": true}))
            .unwrap();
        let eid = ex["Id"].as_str().unwrap().to_string();
        let e = match env.engine.exec_start(&eid, false, false) {
            Err(e) => e,
            Ok(_) => panic!("{cmd}: exec start succeeded"),
        };
        assert!(
            matches!(&e, Error::Task(t) if t.kind == kind),
            "{cmd}: {e:?}"
        );
        assert!(e.to_string().contains(cmd), "{e}");
        let i = env.engine.exec_inspect(&eid).unwrap();
        assert_eq!(i["ExitCode"], json!(code), "{cmd}: {i}");
    }
    env.engine.container_remove(&id, true, false).unwrap();
}

#[test]
fn refused_working_directories_are_400_and_say_so() {
    let env = Env::new();
    for (wd, says) in [
        ("/proc/self/fd/6", "is refused: it is below /proc"),
        ("/etc/passwd/sub", "cannot be made in the container"),
    ] {
        let id = env.create(json!({"Cmd": ["true"], "WorkingDir": wd}));
        let e = env.engine.container_start(&id).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.status_code(), 400, "{wd}: {text}");
        assert!(
            text.contains(&format!("the working directory '{wd}'")) && text.contains(says),
            "{wd}: {text}"
        );
        env.engine.container_remove(&id, true, false).unwrap();
    }
    // /proc itself is a directory like another.
    let (code, out, _) = env.run(json!({"Cmd": ["pwd"], "WorkingDir": "/proc"}));
    assert_eq!((code, out.trim()), (0, "/proc"));
}
