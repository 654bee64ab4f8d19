//! Regressions found by the fault-injection test (tests/e2e/fault.py): berthd or a
//! berth-monitor killed at a bad moment (root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

fn exec_stdout(env: &Env, id: &str, cmd: &[&str]) -> String {
    let ex = env
        .engine
        .exec_create(id, &json!({"Cmd": cmd, "AttachStdout": true}))
        .unwrap();
    let a = env
        .engine
        .exec_start(ex["Id"].as_str().unwrap(), false, false)
        .unwrap()
        .unwrap();
    demux(&read_all(a.output)).0
}

fn state(env: &Env, id: &str) -> serde_json::Value {
    env.engine.container_inspect(id, false).unwrap()["State"].clone()
}

/// A container started again after an exit: its record on disk still says "exited" (the
/// start's "running" is written later), and a daemon lost right then must adopt the running
/// container at its restart, not take it for a leftover and kill it.
#[test]
fn restarted_container_survives_daemon_loss() {
    let mut env = Env::new();
    let id = env.create(json!({"Cmd": ["sleep", "1000"]}));
    env.engine.container_start(&id).unwrap();
    env.engine.container_stop(&id, Some(0), None).unwrap();
    assert_eq!(env.status(&id), "exited");
    env.engine.container_start(&id).unwrap();
    let pid = state(&env, &id)["Pid"].as_i64().unwrap();
    // "kill -9 berthd" before anything writes the record again.
    env.reopen();
    std::thread::sleep(Duration::from_millis(300));
    let st = state(&env, &id);
    assert_eq!(st["Status"], "running", "{st}");
    assert_eq!(st["Pid"].as_i64().unwrap(), pid);
    assert_eq!(exec_stdout(&env, &id, &["echo", "alive"]), "alive\n");
}

/// The same, when the restarted container exits while the daemon is away: its new exit is
/// accounted for (its code, not the previous run's).
#[test]
fn restarted_container_that_exits_while_away_reports_its_exit() {
    let mut env = Env::new();
    let id = env.create(json!({"Cmd": ["sh", "-c", "sleep 0.5; exit 7"]}));
    assert_eq!(env.start_wait(&id), 7);
    let first = state(&env, &id)["FinishedAt"].clone();
    env.engine.container_start(&id).unwrap();
    // The daemon is away (it stops acting) while the container exits.
    env.engine.shutdown();
    std::thread::sleep(Duration::from_millis(1000));
    env.reopen();
    env.wait_for("the second exit", || {
        let st = state(&env, &id);
        st["Status"] == "exited" && st["FinishedAt"] != first
    });
    assert_eq!(state(&env, &id)["ExitCode"], 7);
}
