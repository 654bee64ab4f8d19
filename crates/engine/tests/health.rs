//! Healthchecks (root): checks run as execs in the container by the engine's scheduler,
//! State.Health, health_status events, the ps suffix and the health filter, timeouts,
//! resumption after a daemon restart, NONE.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::*;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SEC: i64 = 1_000_000_000;

fn health(env: &Env, id: &str) -> Value {
    env.engine.container_inspect(id, false).unwrap()["State"]["Health"].clone()
}

fn status_of(env: &Env, id: &str) -> String {
    health(env, id)["Status"].as_str().unwrap_or("").to_string()
}

fn ps_status(env: &Env, id: &str) -> String {
    let l = env.engine.container_list(&ListOptions::default()).unwrap();
    let c = l.iter().find(|c| c["Id"] == id).unwrap();
    c["Status"].as_str().unwrap().to_string()
}

fn listed(env: &Env, health: &str) -> Vec<String> {
    env.engine
        .container_list(&ListOptions {
            all: true,
            filters: json!({"health": [health]}),
            ..Default::default()
        })
        .unwrap()
        .iter()
        .map(|c| c["Id"].as_str().unwrap().to_string())
        .collect()
}

fn exec(env: &Env, id: &str, cmd: &[&str]) {
    let ex = env
        .engine
        .exec_create(id, &json!({"Cmd": cmd, "AttachStdout": true}))
        .unwrap();
    let a = env
        .engine
        .exec_start(ex["Id"].as_str().unwrap(), false, false)
        .unwrap()
        .unwrap();
    read_all(a.output);
}

fn wait_status(env: &Env, id: &str, want: &str) {
    env.wait_for(&format!("health {want}"), || status_of(env, id) == want);
}

/// Actions of the events seen within `d`.
fn actions(ev: &mut EventStream, d: Duration) -> Vec<String> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match ev.next_timeout(left) {
            Ok(Some(v)) => out.push(v["Action"].as_str().unwrap().to_string()),
            _ => break,
        }
    }
    out
}

#[test]
fn starting_unhealthy_healthy_events_ps_and_filter() {
    let env = Env::new();
    let mut ev = env
        .engine
        .events(Some(0.0), None, &json!({"type": ["container"]}))
        .unwrap();
    let id = env.create(json!({"Cmd": ["sleep", "300"], "Healthcheck": {
        "Test": ["CMD-SHELL", "echo checked; test -f /ok"], "Interval": SEC, "Retries": 1,
        "Timeout": null, "StartPeriod": null}}));
    // Not started: no health yet.
    assert!(health(&env, &id).is_null());
    assert_eq!(listed(&env, "none"), [id.as_str()]);
    env.engine.container_start(&id).unwrap();
    assert_eq!(status_of(&env, &id), "starting");
    assert!(
        ps_status(&env, &id).ends_with("(health: starting)"),
        "{}",
        ps_status(&env, &id)
    );
    assert_eq!(listed(&env, "starting"), [id.as_str()]);
    wait_status(&env, &id, "unhealthy");
    let h = health(&env, &id);
    assert_eq!(h["FailingStreak"], 1);
    assert_eq!(h["Log"][0]["ExitCode"], 1);
    assert_eq!(h["Log"][0]["Output"], "checked\n");
    assert!(h["Log"][0]["Start"].as_str().unwrap() <= h["Log"][0]["End"].as_str().unwrap());
    assert!(ps_status(&env, &id).ends_with("(unhealthy)"));
    assert_eq!(listed(&env, "unhealthy"), [id.as_str()]);
    exec(&env, &id, &["touch", "/ok"]);
    wait_status(&env, &id, "healthy");
    assert!(ps_status(&env, &id).ends_with("(healthy)"));
    assert_eq!(listed(&env, "healthy"), [id.as_str()]);
    assert!(listed(&env, "unhealthy").is_empty());
    assert_eq!(health(&env, &id)["FailingStreak"], 0);
    // The last five results only.
    env.wait_for("five results", || {
        health(&env, &id)["Log"].as_array().unwrap().len() == 5
    });
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(health(&env, &id)["Log"].as_array().unwrap().len(), 5);
    let e = env
        .engine
        .container_list(&ListOptions {
            filters: json!({"health": ["fine"]}),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.status_code(), 400);
    // Events as dockerd's: the checks are execs, status changes are health_status.
    let seen = actions(&mut ev, Duration::from_millis(200));
    let has = |a: &str| seen.iter().any(|x| x == a);
    assert!(has("health_status: unhealthy"), "{seen:?}");
    assert!(has("health_status: healthy"), "{seen:?}");
    assert!(
        has("exec_create: /bin/sh -c echo checked; test -f /ok"),
        "{seen:?}"
    );
    assert!(
        has("exec_start: /bin/sh -c echo checked; test -f /ok"),
        "{seen:?}"
    );
    assert!(has("exec_die"), "{seen:?}");
    // Pause and stop end the checks: unhealthy, as dockerd.
    env.engine.container_pause(&id).unwrap();
    assert_eq!(status_of(&env, &id), "unhealthy");
    env.engine.container_unpause(&id).unwrap();
    wait_status(&env, &id, "healthy");
    env.engine.container_stop(&id, Some(1), None).unwrap();
    let h = health(&env, &id);
    assert_eq!(h["Status"], "unhealthy");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        health(&env, &id)["Log"],
        h["Log"],
        "a check ran after the stop"
    );
    // A restart starts over.
    env.engine.container_start(&id).unwrap();
    assert_eq!(status_of(&env, &id), "starting");
    // (The upper dir keeps /ok.)
    wait_status(&env, &id, "healthy");
}

#[test]
fn a_check_past_its_timeout_is_killed() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sleep", "300"], "Healthcheck": {
        "Test": ["CMD", "sleep", "100"], "Interval": SEC, "Timeout": SEC / 2, "Retries": 1}}));
    env.engine.container_start(&id).unwrap();
    wait_status(&env, &id, "unhealthy");
    let h = health(&env, &id);
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(
        h["Log"][0]["Output"],
        "Health check exceeded timeout (500ms)"
    );
    let took = parse_time(&h["Log"][0]["End"]) - parse_time(&h["Log"][0]["Start"]);
    assert!((0.5..3.0).contains(&took), "the check took {took} s");
    // Its process is gone (only the one of the check running now may be there).
    let top = env.engine.container_top(&id, None).unwrap();
    let n = top["Processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.to_string().contains("sleep 100"))
        .count();
    assert!(n <= 1, "{top}");
    // No check outlives its container.
    env.engine.container_stop(&id, Some(1), None).unwrap();
}

fn parse_time(v: &Value) -> f64 {
    // "2026-12-05T07:00:00.123456789Z"
    let s = v.as_str().unwrap();
    let t = s.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + sec
}

#[test]
fn checks_resume_after_a_daemon_restart() {
    let mut env = Env::new();
    let id = env.create(json!({"Cmd": ["sleep", "300"], "Healthcheck": {
        "Test": ["CMD", "true"], "Interval": SEC}}));
    env.engine.container_start(&id).unwrap();
    wait_status(&env, &id, "healthy");
    env.reopen();
    // Persisted: healthy at once, not starting.
    assert_eq!(status_of(&env, &id), "healthy");
    let before = health(&env, &id)["Log"].as_array().unwrap().len();
    let reopened = berth_fsutil::rfc3339_nano_now();
    env.wait_for("a check after the restart", || {
        health(&env, &id)["Log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["Start"].as_str().unwrap() > reopened.as_str())
    });
    assert!(before >= 1);
    env.engine.container_stop(&id, Some(1), None).unwrap();
}

#[test]
fn image_healthcheck_is_inherited_merged_or_disabled() {
    let env = Env::new();
    // An image with a HEALTHCHECK (a commit carries the container's Config).
    let src = env.create(json!({"Cmd": ["true"], "Healthcheck": {
        "Test": ["CMD-SHELL", "exit 3"], "Interval": SEC, "Retries": 1}}));
    env.engine
        .container_commit(
            &src,
            &CommitOptions {
                repo: Some("hc".into()),
                tag: Some("1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let cfg = env.engine.image_inspect("hc:1").unwrap()["Config"]["Healthcheck"].clone();
    assert_eq!(cfg["Test"], json!(["CMD-SHELL", "exit 3"]));
    let inherit = env.create(json!({"Image": "hc:1", "Cmd": ["sleep", "300"]}));
    let merged = env.create(json!({"Image": "hc:1", "Cmd": ["sleep", "300"],
        "Healthcheck": {"Test": ["CMD", "true"]}}));
    let off = env.create(json!({"Image": "hc:1", "Cmd": ["sleep", "300"],
        "Healthcheck": {"Test": ["NONE"]}}));
    let c = env.engine.container_inspect(&merged, false).unwrap()["Config"]["Healthcheck"].clone();
    assert_eq!(
        (c["Interval"].clone(), c["Retries"].clone()),
        (json!(SEC), json!(1))
    );
    for id in [&inherit, &merged, &off] {
        env.engine.container_start(id).unwrap();
    }
    wait_status(&env, &inherit, "unhealthy");
    assert_eq!(health(&env, &inherit)["Log"][0]["ExitCode"], 3);
    wait_status(&env, &merged, "healthy");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(health(&env, &off).is_null());
    assert!(
        !ps_status(&env, &off).contains('('),
        "{}",
        ps_status(&env, &off)
    );
    assert!(listed(&env, "none").contains(&off));
    // Docker's checks of the values.
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "Healthcheck": {"Interval": 5}}),
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert_eq!(
        e.to_string(),
        "Interval in Healthcheck cannot be less than 1ms"
    );
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "Healthcheck": {"Retries": "3"}}),
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("Healthcheck.Retries"), "{e}");
}
