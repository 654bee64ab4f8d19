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

/// A process's parent and state letter, or None once it is gone.
fn stat_of(pid: i32) -> Option<(i32, char)> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &st[st.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    Some((f.next()?.parse().ok()?, state))
}

fn alive(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(_, s)| s != 'Z')
}

/// The init of container `id` made at its preparation (waiting for its start) and its parent,
/// the container's monitor: found by the init's cgroup.
fn prepared_init(id: &str) -> Option<(i32, i32)> {
    for ent in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if !cg.contains(&format!("/berth/{id}")) {
            continue;
        }
        let (ppid, _) = stat_of(pid)?;
        let exe = std::fs::read_link(format!("/proc/{ppid}/exe")).ok()?;
        if exe.to_string_lossy().ends_with("berth-monitor") {
            return Some((pid, ppid));
        }
    }
    None
}

fn kill_prepared_monitor(env: &Env, id: &str) -> i32 {
    env.wait_for("the container prepared", || prepared_init(id).is_some());
    let (init, mon) = prepared_init(id).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(mon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    env.wait_for("the monitor gone", || !alive(mon));
    init
}

/// A container prepared at create whose monitor died before the start: the start makes it
/// again instead of failing on the dead monitor.
#[test]
fn prepared_container_whose_monitor_died_is_made_again_at_start() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sleep", "1000"]}));
    let old_init = kill_prepared_monitor(&env, &id);
    env.engine.container_start(&id).unwrap();
    assert_eq!(env.status(&id), "running");
    assert_eq!(exec_stdout(&env, &id, &["echo", "alive"]), "alive\n");
    env.wait_for("the first init gone", || !alive(old_init));
}

/// A prepared container whose monitor died, taken down before any start (here by an update):
/// the init its monitor made does not stay behind.
#[test]
fn prepared_container_whose_monitor_died_leaves_no_process_when_taken_down() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sleep", "1000"]}));
    let init = kill_prepared_monitor(&env, &id);
    env.engine
        .container_update(&id, &json!({"CpuShares": 512}))
        .unwrap();
    env.wait_for("the prepared init gone", || !alive(init));
    assert_eq!(env.status(&id), "created");
}

/// Processes in a container's cgroup that no runtime state names (what a monitor killed in the
/// middle of its create leaves: an init waiting for its start) go when the container's run is
/// taken down: here one put there by hand, and a start that fails.
#[test]
fn processes_no_runtime_state_names_are_killed_with_the_cgroup() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["/no/such/command"]}));
    // Wait for the preparation (it fails the same way) to be over.
    std::thread::sleep(Duration::from_millis(500));
    let mut cg = berth_cgroups::Cgroup::new(Some(&format!("/berth/{id}")), &id, false).unwrap();
    cg.create().unwrap();
    let stray = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let pid = stray.id() as i32;
    cg.add_task(pid).unwrap();
    assert!(env.engine.container_start(&id).is_err());
    let stray = std::sync::Mutex::new(stray);
    env.wait_for("the stray process killed", || {
        matches!(stray.lock().unwrap().try_wait(), Ok(Some(_)))
    });
    let dirs: Vec<_> = cg.created_dirs().iter().filter(|d| d.exists()).collect();
    assert!(dirs.is_empty(), "cgroup directories left: {dirs:?}");
}
