//! run, create, start, attach, exec: the commands that may attach to a container.

use crate::args::Matches;
use crate::client::Client;
use crate::cmd::image::pull_image;
use crate::http::enc;
use crate::stream::{pump, PumpEnd, PumpOpts};
use crate::term::{self, RawGuard};
use crate::{fail, CmdResult, Ctx};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::Write;

mod attach;
mod body;
mod flags;

pub use attach::{attach, exec};
pub use body::create_body;
pub use flags::{env_list, parse_port_spec};

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

fn normalize_for_pull(image: &str) -> String {
    let (repo, tag) = crate::output::split_repo_tag(image);
    if image.contains('@') {
        image.to_string()
    } else {
        format!("{repo}:{tag}")
    }
}

/// Creates the container, pulling the image when the daemon does not have it.
pub fn create_container(ctx: &Ctx, m: &Matches) -> Result<String> {
    let image = &m.args[0];
    let cmd = &m.args[1..];
    let body = create_body(m, image, cmd)?;
    let mut q = Vec::new();
    if let Some(n) = m.value("name") {
        q.push(format!("name={}", enc(n)));
    }
    if let Some(p) = m.value("platform") {
        q.push(format!("platform={}", enc(p)));
    }
    let path = if q.is_empty() {
        "/containers/create".to_string()
    } else {
        format!("/containers/create?{}", q.join("&"))
    };
    let pull = m.value("pull").unwrap_or("missing");
    if !matches!(pull, "always" | "missing" | "never") {
        bail!("invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\"");
    }
    let quiet = m.flag("quiet");
    if pull == "always" {
        pull_image(ctx, image, m.value("platform"), quiet, true)?;
    }
    let resp = match ctx.client.post_json(&path, Some(&body)) {
        Ok(v) => v,
        Err(e)
            if e.is_not_found() && e.message().contains("No such image") && pull == "missing" =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                normalize_for_pull(image)
            );
            pull_image(ctx, image, m.value("platform"), quiet, true)?;
            ctx.client.post_json(&path, Some(&body))?
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(ws) = resp.get("Warnings").and_then(Value::as_array) {
        for w in ws.iter().filter_map(Value::as_str) {
            eprintln!("WARNING: {w}");
        }
    }
    let id = resp
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("daemon's create response has no Id"))?
        .to_string();
    if let Some(f) = m.value("cidfile") {
        write_new_file(f, id.as_bytes()).with_context(|| format!("write container ID file {f}"))?;
    }
    Ok(id)
}

fn write_new_file(path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

pub fn create(ctx: &Ctx, m: &Matches) -> CmdResult {
    let id = create_container(ctx, m)?;
    println!("{id}");
    Ok(0)
}

/// docker's mapping of start errors to 126/127.
fn start_error_code(msg: &str) -> i32 {
    let l = msg.to_lowercase();
    if l.contains("executable file not found")
        || l.contains("no such file or directory")
        || l.contains("system cannot find the file specified")
    {
        127
    } else if l.contains("permission denied")
        || l.contains("cannot execute binary file")
        || l.contains("exec format error")
    {
        126
    } else {
        125
    }
}

pub(super) fn resize(client: &Client, path_prefix: &str) {
    if let Some((h, w)) = term::size(1).or_else(|| term::size(0)) {
        let _ = client.post_ok(&format!("{path_prefix}/resize?h={h}&w={w}"), None);
    }
}

/// Sets up the signal thread: SIGWINCH -> resize (tty), others -> kill (proxy).
pub(super) fn signals(
    ctx: &Ctx,
    id: &str,
    tty: bool,
    proxy: bool,
    resize_prefix: Option<String>,
) -> Result<()> {
    let mut sigs = Vec::new();
    if tty && resize_prefix.is_some() {
        sigs.push(libc::SIGWINCH);
    }
    if proxy {
        sigs.extend_from_slice(term::PROXY_SIGNALS);
    } else if tty {
        // not proxied: leave, but never with the terminal still in raw mode
        sigs.extend_from_slice(&[libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT]);
    }
    if sigs.is_empty() {
        return Ok(());
    }
    let client = ctx.client.fork();
    let id = id.to_string();
    term::spawn_signal_thread(&sigs, move |sig| {
        if sig == libc::SIGWINCH {
            if let Some(p) = &resize_prefix {
                resize(&client, p);
            }
        } else if proxy {
            let _ = client.post_ok(
                &format!("/containers/{id}/kill?signal={}", term::signal_name(sig)),
                None,
            );
        } else {
            term::restore();
            std::process::exit(128 + sig);
        }
    })
    .context("start the signal thread")
}

pub(super) fn detach_keys(m: &Matches) -> Result<(String, Vec<u8>)> {
    let s = m
        .value("detach-keys")
        .map(str::to_string)
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_string());
    let keys =
        term::parse_detach_keys(&s).map_err(|e| anyhow!("invalid detach keys ({s}): {e}"))?;
    Ok((s, keys))
}

pub fn run(ctx: &Ctx, m: &Matches) -> CmdResult {
    let detach = m.flag("detach");
    let tty = m.flag("tty");
    let interactive = m.flag("interactive");
    if detach && m.flag("rm") && !ctx.client.at_least("1.25") {
        bail!("conflicting options: --rm and -d");
    }
    if tty && interactive && !term::is_tty(0) {
        return Err(fail(1, "the input device is not a TTY"));
    }
    let (_, keys) = detach_keys(m)?;
    let id = create_container(ctx, m)?;
    if detach {
        if let Err(e) = ctx.client.post_ok(&format!("/containers/{id}/start"), None) {
            let code = start_error_code(&e.message());
            if m.flag("rm") {
                let _ = ctx
                    .client
                    .delete(&format!("/containers/{id}?force=1&v=1"))
                    .map(|r| r.bytes());
            }
            return Err(fail(
                code,
                format!("berth: {e}\n\nRun 'berth run --help' for more information"),
            ));
        }
        println!("{id}");
        return Ok(0);
    }
    let body = create_body(m, &m.args[0], &m.args[1..])?;
    let a_in = body["AttachStdin"].as_bool().unwrap_or(false);
    let a_out = body["AttachStdout"].as_bool().unwrap_or(true);
    let a_err = body["AttachStderr"].as_bool().unwrap_or(true);
    attach_start_wait(
        ctx,
        &id,
        tty,
        a_in,
        a_out,
        a_err,
        m.flag("sig-proxy"),
        keys,
        m.flag("rm"),
        "run",
    )
}

/// attach (hijack) -> wait -> start -> stream -> exit status, as docker's run/start -a do.
#[allow(clippy::too_many_arguments)]
fn attach_start_wait(
    ctx: &Ctx,
    id: &str,
    tty: bool,
    a_in: bool,
    a_out: bool,
    a_err: bool,
    sig_proxy: bool,
    keys: Vec<u8>,
    auto_remove: bool,
    cmd: &str,
) -> CmdResult {
    let attached = a_in || a_out || a_err;
    let mut conn = None;
    if attached {
        let q = format!(
            "/containers/{id}/attach?stream=1&stdin={}&stdout={}&stderr={}",
            a_in as u8, a_out as u8, a_err as u8
        );
        conn = Some(ctx.client.hijack("POST", &q, None)?);
    }
    let cond = if auto_remove && ctx.client.at_least("1.30") {
        "removed"
    } else {
        "next-exit"
    };
    let wait = ctx
        .client
        .post(&format!("/containers/{id}/wait?condition={cond}"), None)?;
    let raw = if tty && a_in && term::is_tty(0) {
        Some(RawGuard::enter().context("set terminal raw mode")?)
    } else {
        None
    };
    signals(
        ctx,
        id,
        tty,
        sig_proxy && !tty,
        if tty {
            Some(format!("/containers/{id}"))
        } else {
            None
        },
    )?;
    if let Err(e) = ctx.client.post_ok(&format!("/containers/{id}/start"), None) {
        drop(raw);
        let code = start_error_code(&e.message());
        if cmd == "run" {
            if auto_remove {
                let _ = ctx
                    .client
                    .delete(&format!("/containers/{id}?force=1&v=1"))
                    .map(|r| r.bytes());
            }
            return Err(fail(
                code,
                format!("berth: {e}\n\nRun 'berth run --help' for more information"),
            ));
        }
        return Err(e.into());
    }
    if tty {
        resize(&ctx.client, &format!("/containers/{id}"));
    }
    if let Some((r, w)) = conn {
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
        if end == PumpEnd::Detached {
            drop(raw);
            return Ok(0);
        }
    }
    drop(raw);
    exit_status(wait)
}

fn exit_status(wait: crate::http::Response) -> CmdResult {
    let v = crate::client::read_json(wait)?;
    if let Some(msg) = v
        .pointer("/Error/Message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Err(fail(125, format!("berth: {msg}")));
    }
    let code = v
        .get("StatusCode")
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("daemon's wait response has no StatusCode: {v}"))?;
    Ok(code as i32)
}

pub fn start(ctx: &Ctx, m: &Matches) -> CmdResult {
    let attach = m.flag("attach");
    let interactive = m.flag("interactive");
    if attach || interactive {
        if m.args.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let info = ctx
            .client
            .get_json(&format!("/containers/{}/json", enc(&m.args[0])))?;
        let id = info["Id"].as_str().unwrap_or(&m.args[0]).to_string();
        let tty = info
            .pointer("/Config/Tty")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let open_stdin = info
            .pointer("/Config/OpenStdin")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let (_, keys) = detach_keys(m)?;
        let a_in = interactive && open_stdin;
        if tty && a_in && !term::is_tty(0) {
            return Err(fail(1, "the input device is not a TTY"));
        }
        return attach_start_wait(ctx, &id, tty, a_in, true, true, !tty, keys, false, "start");
    }
    let mut failed = Vec::new();
    for c in &m.args {
        match ctx
            .client
            .post_ok(&format!("/containers/{}/start", enc(c)), None)
        {
            Ok(()) => println!("{c}"),
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish_multi(failed)
}

/// After a multi-target command: print collected errors, exit 1 if any.
pub fn finish_multi(failed: Vec<String>) -> CmdResult {
    if failed.is_empty() {
        return Ok(0);
    }
    Err(fail(1, failed.join("\n")))
}

/// Helper for tests: the API error mapping of start failures.
pub fn start_error_exit_code(msg: &str) -> i32 {
    start_error_code(msg)
}
