//! OCI hooks: each runs with the container state JSON on stdin, its own args/env, and an
//! optional timeout after which it is killed.
//!
//! Two policies, as the runtime spec gives them (config.md, "POSIX-platform Hooks"): a failing
//! prestart, createRuntime, createContainer or startContainer hook fails the operation
//! ([`run`]: the first failure ends the phase); a failing poststart or poststop hook is logged
//! as a warning and the remaining hooks and the lifecycle go on ([`run_all_warn`]).

use crate::error::{Error, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run the hooks of a phase whose failure fails the operation; stops at the first failure.
pub fn run(phase: &str, hooks: &[Hook], state_json: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json).map_err(|m| failure(phase, i, h, m))?;
    }
    Ok(())
}

/// Run every hook of a phase whose failures are warnings (poststart, poststop): each failure
/// goes to [`crate::warn`] and the next hook still runs. Returns how many failed.
pub fn run_all_warn(phase: &str, hooks: &[Hook], state_json: &str) -> usize {
    let mut failed = 0;
    for (i, h) in hooks.iter().enumerate() {
        if let Err(m) = run_one(h, state_json) {
            crate::warn(&failure(phase, i, h, m).to_string());
            failed += 1;
        }
    }
    failed
}

fn failure(phase: &str, i: usize, h: &Hook, m: String) -> Error {
    Error::Hook(format!("{phase}[{i}] {}: {m}", h.path().display()))
}

fn run_one(h: &Hook, state_json: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    let args = h.args().as_deref().unwrap_or(&[]);
    if let Some(a0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, a0);
        cmd.args(&args[1..]);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut nap = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("failed: {st}")),
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "timed out after {} s and was killed",
                    h.timeout().unwrap_or(0)
                ));
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}
