//! login / logout and the X-Registry-Auth header, using ~/.docker/config.json like docker.

use crate::args::Matches;
use crate::{fail, CmdResult, Ctx};
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use std::path::Path;

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

fn b64(data: &[u8], alpha: &[u8; 64]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(alpha[(n >> 18) as usize & 63] as char);
        out.push(alpha[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            alpha[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            alpha[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    b64(data, STD)
}

/// URL-safe base64 with padding (what docker puts in X-Registry-Auth).
pub fn base64url_encode(data: &[u8]) -> String {
    b64(data, URL)
}

/// Decodes standard or URL-safe base64 (padding optional).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return Err(format!("invalid base64 character {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

fn config_path(ctx: &Ctx) -> std::path::PathBuf {
    ctx.config_dir.join("config.json")
}

fn read_config(path: &Path) -> Result<Map<String, Value>> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(o)) => Ok(o),
            Ok(_) => Err(anyhow!("{}: expected a JSON object", path.display())),
            Err(e) => Err(anyhow!("{}: invalid JSON: {e}", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(anyhow!("read {}: {e}", path.display())),
    }
}

fn write_config(path: &Path, cfg: &Map<String, Value>) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("bad config path {}", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let data = serde_json::to_vec_pretty(&Value::Object(cfg.clone()))?;
    let tmp = dir.join(format!(".config.json.tmp-{}", std::process::id()));
    let res = (|| -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(&data)
            .with_context(|| format!("write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// The config.json key for a registry (Docker Hub uses its legacy v1 URL).
pub fn config_key(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let host = s.split('/').next().unwrap_or(s);
    if matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) || server == DOCKER_HUB
    {
        DOCKER_HUB.to_string()
    } else {
        host.to_string()
    }
}

/// base64url(JSON auth config) for `registry`, or of `{}` when not logged in.
pub fn registry_auth_header(ctx: &Ctx, registry: &str) -> String {
    let key = config_key(registry);
    let cfg = read_config(&config_path(ctx)).unwrap_or_default();
    let entry = cfg.get("auths").and_then(|a| {
        a.get(&key)
            .or_else(|| a.get(format!("https://{key}").as_str()))
            .or_else(|| a.get(format!("http://{key}").as_str()))
    });
    if let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(Value::as_str) {
        if let Ok(raw) = base64_decode(auth) {
            let s = String::from_utf8_lossy(&raw).to_string();
            if let Some((u, p)) = s.split_once(':') {
                let j = json!({"username": u, "password": p, "serveraddress": key});
                return base64url_encode(j.to_string().as_bytes());
            }
        }
    }
    if let Some(tok) = entry
        .and_then(|e| e.get("identitytoken"))
        .and_then(Value::as_str)
    {
        let j = json!({"identitytoken": tok, "serveraddress": key});
        return base64url_encode(j.to_string().as_bytes());
    }
    base64url_encode(b"{}")
}

fn prompt(msg: &str) -> Result<String> {
    print!("{msg}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("read from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_password_noecho() -> Result<String> {
    print!("Password: ");
    std::io::stdout().flush()?;
    // SAFETY: termios is plain old data filled by tcgetattr for stdin, restored below.
    let saved = unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(0, &mut t) == 0 {
            let mut n = t;
            n.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &n);
            Some(t)
        } else {
            None
        }
    };
    let mut line = String::new();
    let r = std::io::stdin().lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restoring the attributes read above.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
    }
    println!();
    r.context("read password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(ctx: &Ctx, m: &Matches) -> CmdResult {
    let server = m
        .args
        .first()
        .cloned()
        .unwrap_or_else(|| DOCKER_HUB.to_string());
    let key = config_key(&server);
    let mut user = m.value("username").map(str::to_string);
    let mut pass = m.value("password").map(str::to_string);
    if m.flag("password-stdin") {
        if pass.is_some() {
            return Err(fail(
                1,
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        if user.is_none() {
            return Err(fail(1, "Must provide --username with --password-stdin"));
        }
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("read password from stdin")?;
        pass = Some(s.trim_end_matches(['\r', '\n']).to_string());
    } else if pass.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if user.is_none() {
        if !crate::term::is_tty(0) {
            return Err(fail(
                1,
                "Error: Cannot perform an interactive login from a non TTY device",
            ));
        }
        user = Some(prompt("Username: ")?);
    }
    let user = user.unwrap_or_default();
    if user.is_empty() {
        return Err(fail(1, "Error: Non-null Username Required"));
    }
    let pass = match pass {
        Some(p) => p,
        None => {
            if !crate::term::is_tty(0) {
                return Err(fail(
                    1,
                    "Error: Cannot perform an interactive login from a non TTY device",
                ));
            }
            read_password_noecho()?
        }
    };
    if pass.is_empty() {
        return Err(fail(1, "Error: Password Required"));
    }
    let v = ctx.client.post_json(
        "/auth",
        Some(&json!({"username": user, "password": pass, "serveraddress": key})),
    )?;
    let path = config_path(ctx);
    let mut cfg = read_config(&path)?;
    let auths = cfg.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    let mut entry = Map::new();
    entry.insert(
        "auth".into(),
        json!(base64_encode(format!("{user}:{pass}").as_bytes())),
    );
    if let Some(t) = v
        .get("IdentityToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        entry.insert("identitytoken".into(), json!(t));
    }
    if let Some(a) = auths.as_object_mut() {
        a.insert(key, Value::Object(entry));
    }
    write_config(&path, &cfg)?;
    println!(
        "{}",
        v.get("Status")
            .and_then(Value::as_str)
            .unwrap_or("Login Succeeded")
    );
    Ok(0)
}

pub fn logout(ctx: &Ctx, m: &Matches) -> CmdResult {
    let server = m
        .args
        .first()
        .cloned()
        .unwrap_or_else(|| DOCKER_HUB.to_string());
    let key = config_key(&server);
    let path = config_path(ctx);
    let mut cfg = read_config(&path)?;
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| a.remove(&key).is_some())
        .unwrap_or(false);
    if !removed {
        println!("Not logged in to {key}");
        return Ok(0);
    }
    println!("Removing login credentials for {key}");
    write_config(&path, &cfg)?;
    Ok(0)
}
