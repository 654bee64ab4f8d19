//! `attach` and `exec`: streams to a running container.
use super::{detach_keys, env_list, resize, signals};

use crate::args::Matches;
use crate::http::enc;
use crate::stream::{pump, PumpEnd, PumpOpts};
use crate::term::{self, RawGuard};
use crate::{fail, CmdResult, Ctx};
use anyhow::{anyhow, Context};
use serde_json::{json, Value};

pub fn attach(ctx: &Ctx, m: &Matches) -> CmdResult {
    let name = &m.args[0];
    let info = ctx
        .client
        .get_json(&format!("/containers/{}/json", enc(name)))?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    if !info
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(fail(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if info
        .pointer("/State/Paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(fail(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let a_in = !m.flag("no-stdin")
        && info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if tty && a_in && !term::is_tty(0) {
        return Err(fail(1, "the input device is not a TTY"));
    }
    let (_, keys) = detach_keys(m)?;
    let (r, w) = ctx.client.hijack(
        "POST",
        &format!(
            "/containers/{id}/attach?stream=1&stdin={}&stdout=1&stderr=1",
            a_in as u8
        ),
        None,
    )?;
    let raw = if tty && a_in {
        Some(RawGuard::enter().context("set terminal raw mode")?)
    } else {
        None
    };
    signals(
        ctx,
        &id,
        tty,
        m.flag("sig-proxy") && !tty,
        if tty {
            Some(format!("/containers/{id}"))
        } else {
            None
        },
    )?;
    if tty {
        resize(&ctx.client, &format!("/containers/{id}"));
    }
    let end = pump(
        r,
        w,
        PumpOpts {
            tty,
            stdin: a_in,
            detach_keys: keys,
        },
    )
    .context("stream container output")?;
    drop(raw);
    if end == PumpEnd::Detached {
        return Ok(0);
    }
    let v = ctx
        .client
        .post_json(&format!("/containers/{id}/wait"), None)?;
    Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}

pub fn exec(ctx: &Ctx, m: &Matches) -> CmdResult {
    let container = &m.args[0];
    let cmd = &m.args[1..];
    let detach = m.flag("detach");
    let tty = m.flag("tty");
    let interactive = m.flag("interactive");
    if tty && interactive && !detach && !term::is_tty(0) {
        return Err(fail(1, "the input device is not a TTY"));
    }
    let (keys_s, keys) = detach_keys(m)?;
    let mut body = json!({
        "User": m.value("user").unwrap_or(""),
        "Privileged": m.flag("privileged"),
        "Tty": tty,
        "AttachStdin": interactive && !detach,
        "AttachStdout": !detach,
        "AttachStderr": !detach,
        "Detach": detach,
        "DetachKeys": if m.changed("detach-keys") { keys_s } else { String::new() },
        "Env": env_list(m)?,
        "WorkingDir": m.value("workdir").unwrap_or(""),
        "Cmd": cmd,
    });
    if let Some((r, c)) = term::size(1).or_else(|| term::size(0)).filter(|_| tty) {
        body["ConsoleSize"] = json!([r, c]);
    }
    let created = ctx
        .client
        .post_json(&format!("/containers/{}/exec", enc(container)), Some(&body))?;
    let exec_id = created
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("daemon's exec create response has no Id"))?
        .to_string();
    if detach {
        ctx.client.post_ok(
            &format!("/exec/{exec_id}/start"),
            Some(&json!({"Detach": true, "Tty": tty})),
        )?;
        return Ok(0);
    }
    let (r, w) = ctx.client.hijack(
        "POST",
        &format!("/exec/{exec_id}/start"),
        Some(&json!({"Detach": false, "Tty": tty})),
    )?;
    let a_in = interactive;
    let raw = if tty && a_in && term::is_tty(0) {
        Some(RawGuard::enter().context("set terminal raw mode")?)
    } else {
        None
    };
    if tty {
        signals(ctx, container, tty, false, Some(format!("/exec/{exec_id}")))?;
        resize(&ctx.client, &format!("/exec/{exec_id}"));
    }
    let end = pump(
        r,
        w,
        PumpOpts {
            tty,
            stdin: a_in,
            detach_keys: keys,
        },
    )
    .context("stream exec output")?;
    drop(raw);
    if end == PumpEnd::Detached {
        return Ok(0);
    }
    let info = ctx.client.get_json(&format!("/exec/{exec_id}/json"))?;
    match info.get("ExitCode").and_then(Value::as_i64) {
        Some(c) => Ok(c as i32),
        None => Err(fail(126, "exec did not report an exit code")),
    }
}
