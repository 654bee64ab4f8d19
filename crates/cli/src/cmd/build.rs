//! `berth build`: the context directory sent as a tar (streamed while it is read, never held
//! in memory) to `POST /build`, and the builder's progress shown with each step's time.

use crate::args::Matches;
use crate::http::{enc, Body};
use crate::{fail, CmdResult, Ctx};
use anyhow::Context as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the Dockerfile is: its name inside the context, or a file outside it (added to the
/// tar under `name`, as docker does).
struct Dockerfile {
    name: String,
    outside: Option<PathBuf>,
}

fn dockerfile(ctx_dir: &Path, file: Option<&str>) -> anyhow::Result<Dockerfile> {
    let Some(f) = file else {
        return Ok(Dockerfile {
            name: "Dockerfile".into(),
            outside: None,
        });
    };
    let p = Path::new(f);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    let abs = abs.canonicalize().with_context(|| {
        format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: {f}")
    })?;
    let root = ctx_dir.canonicalize()?;
    match abs.strip_prefix(&root) {
        Ok(rel) => Ok(Dockerfile {
            name: rel.to_string_lossy().into_owned(),
            outside: None,
        }),
        Err(_) => Ok(Dockerfile {
            name: format!(".dockerfile.{:x}", std::process::id()),
            outside: Some(abs),
        }),
    }
}

/// `KEY=VALUE`, or `KEY` taking the value from the environment (left out when unset).
fn pairs(values: Vec<String>, env: bool) -> BTreeMap<String, Option<String>> {
    values
        .into_iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => {
                let v = if env {
                    std::env::var(&a).ok()
                } else {
                    Some(String::new())
                };
                (a, v)
            }
        })
        .collect()
}

fn query(m: &Matches, df: &Dockerfile) -> String {
    let mut q = vec![format!("dockerfile={}", enc(&df.name))];
    for t in m.values("tag") {
        q.push(format!("t={}", enc(&t)));
    }
    let args = pairs(m.values("build-arg"), true);
    if !args.is_empty() {
        q.push(format!(
            "buildargs={}",
            enc(&serde_json::json!(args).to_string())
        ));
    }
    let labels = pairs(m.values("label"), false);
    if !labels.is_empty() {
        q.push(format!(
            "labels={}",
            enc(&serde_json::json!(labels).to_string())
        ));
    }
    let cache_from = m.values("cache-from");
    if !cache_from.is_empty() {
        q.push(format!(
            "cachefrom={}",
            enc(&serde_json::json!(cache_from).to_string())
        ));
    }
    if let Some(t) = m.value("target") {
        q.push(format!("target={}", enc(t)));
    }
    q.push(format!("nocache={}", m.flag("no-cache") as u8));
    q.push(format!("q={}", m.flag("quiet") as u8));
    q.push(format!("rm={}", m.flag("rm") as u8));
    q.push(format!("forcerm={}", m.flag("force-rm") as u8));
    format!("/build?{}", q.join("&"))
}

/// Writes the context as a tar into `w` (symlinks kept as symlinks).
fn write_context(
    dir: &Path,
    df: &Dockerfile,
    stdin_df: Option<&[u8]>,
    w: impl Write,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    if let Some(content) = stdin_df {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, &df.name, content)?;
        return b.finish();
    }
    b.append_dir_all(".", dir)?;
    if let Some(p) = &df.outside {
        b.append_path_with_name(p, &df.name)?;
    }
    b.finish()
}

pub fn build(ctx: &Ctx, m: &Matches) -> CmdResult {
    let path = &m.args[0];
    let (dir, stdin_df) = if path == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("read the Dockerfile from stdin")?;
        (PathBuf::from("."), Some(v))
    } else {
        let d = PathBuf::from(path);
        if !d.is_dir() {
            return Err(fail(
                1,
                format!("unable to prepare context: path {path:?} not found"),
            ));
        }
        (d, None)
    };
    let df = if stdin_df.is_some() {
        Dockerfile {
            name: "Dockerfile".into(),
            outside: None,
        }
    } else {
        dockerfile(&dir, m.value("file"))?
    };
    let q = query(m, &df);
    let (mut rd, wr) = std::io::pipe().context("make a pipe for the build context")?;
    let writer = std::thread::spawn(move || write_context(&dir, &df, stdin_df.as_deref(), wr));
    let resp = ctx
        .client
        .send("POST", &q, &[], Body::Stream(&mut rd, "application/x-tar"));
    drop(rd);
    let sent = writer.join();
    let resp = resp?;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail(1, format!("send the build context: {e}"))),
        Err(_) => return Err(fail(1, "the build context writer panicked")),
    }
    let (id, error) = show(resp, m.flag("quiet"))?;
    if let Some(e) = error {
        return Err(fail(1, e));
    }
    if let (Some(f), Some(id)) = (m.value("iidfile"), &id) {
        std::fs::write(f, id).with_context(|| format!("write the image ID to {f}"))?;
    }
    Ok(0)
}

/// Prints the build's stream; on a terminal each step ends with its time. Returns the image
/// ID (from `aux`) and the error the build ended with.
fn show(resp: impl Read, quiet: bool) -> anyhow::Result<(Option<String>, Option<String>)> {
    let timed = !quiet && crate::term::is_tty(1);
    let mut out = std::io::stdout().lock();
    let mut step: Option<Instant> = None;
    let mut id = None;
    let end_step = |out: &mut dyn Write, step: &mut Option<Instant>| -> std::io::Result<()> {
        if let (true, Some(t)) = (timed, step.take()) {
            writeln!(out, " ---> done in {:.2}s", t.elapsed().as_secs_f64())?;
        }
        Ok(())
    };
    for line in BufReader::new(resp).lines() {
        let line = line.context("read the build output")?;
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            end_step(&mut out, &mut step)?;
            return Ok((id, Some(e.to_string())));
        }
        if let Some(i) = v["aux"]["ID"].as_str() {
            id = Some(i.to_string());
            continue;
        }
        if let Some(s) = v["stream"].as_str() {
            if s.starts_with("Step ") || s.starts_with("Successfully built") {
                end_step(&mut out, &mut step)?;
                if s.starts_with("Step ") {
                    step = Some(Instant::now());
                }
            }
            out.write_all(s.as_bytes())?;
            out.flush()?;
        }
    }
    end_step(&mut out, &mut step)?;
    Ok((id, None))
}
