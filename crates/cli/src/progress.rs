//! Rendering of the daemon's JSON message streams (pull, push, load, import):
//! per-layer progress bars on a terminal, docker's plain lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Plain,
    Bars,
}

/// What a stream ended with.
#[derive(Debug, Default)]
pub struct Outcome {
    pub aux: Vec<Value>,
    pub last_status: Option<String>,
    pub error: Option<String>,
}

/// One line of plain (non-terminal) output for a message, or None when docker
/// would not print it without a terminal (byte progress updates).
pub fn plain_line(m: &Value) -> Option<String> {
    if let Some(s) = m.get("stream").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    let status = m.get("status").and_then(Value::as_str)?;
    let has_progress = m
        .get("progressDetail")
        .and_then(|p| p.get("current"))
        .is_some();
    if has_progress {
        return None;
    }
    let id = m.get("id").and_then(Value::as_str).unwrap_or("");
    Some(if id.is_empty() {
        format!("{status}\n")
    } else {
        format!("{id}: {status}\n")
    })
}

fn error_of(m: &Value) -> Option<String> {
    if let Some(e) = m
        .get("errorDetail")
        .and_then(|d| d.get("message"))
        .and_then(Value::as_str)
    {
        return Some(e.to_string());
    }
    m.get("error").and_then(Value::as_str).map(str::to_string)
}

/// Reads a JSON message stream to its end, rendering it to `out` (stdout).
/// With `to_stderr` the output goes to stderr (used by `run` while pulling).
pub fn render(r: impl Read, mode: Mode, to_stderr: bool) -> io::Result<Outcome> {
    let mut out = Outcome::default();
    let reader = BufReader::new(r);
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mp = if mode == Mode::Bars {
        Some(MultiProgress::with_draw_target(if to_stderr {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::stdout()
        }))
    } else {
        None
    };
    let text_style = ProgressStyle::with_template("{prefix}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar_style =
        ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:40}] {bytes}/{total_bytes}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let stdout = io::stdout();
    for line in reader.lines() {
        let line = line?;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let m: Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(_) => {
                // not JSON: show as is
                if mode != Mode::Quiet {
                    println_any(&mp, t);
                }
                continue;
            }
        };
        if let Some(e) = error_of(&m) {
            out.error = Some(e);
            break;
        }
        if let Some(a) = m.get("aux") {
            out.aux.push(a.clone());
        }
        if let Some(s) = m.get("status").and_then(Value::as_str) {
            out.last_status = Some(s.to_string());
        }
        match mode {
            Mode::Quiet => {}
            Mode::Plain => {
                if let Some(l) = plain_line(&m) {
                    if to_stderr {
                        let mut o = io::stderr().lock();
                        o.write_all(l.as_bytes())?;
                    } else {
                        let mut o = stdout.lock();
                        o.write_all(l.as_bytes())?;
                        o.flush()?;
                    }
                }
            }
            Mode::Bars => {
                let mp = match &mp {
                    Some(mp) => mp,
                    None => continue,
                };
                let id = m.get("id").and_then(Value::as_str).unwrap_or("");
                let status = m.get("status").and_then(Value::as_str).unwrap_or("");
                if let Some(s) = m.get("stream").and_then(Value::as_str) {
                    let line = s.trim_end_matches('\n').to_string();
                    mp.suspend(|| emit_line(&line, to_stderr));
                    continue;
                }
                // a status with an id that is not a layer (e.g. "latest: Pulling from x")
                if status.is_empty() {
                    continue; // aux-only messages have nothing to show
                }
                let layerish = m.get("progressDetail").is_some();
                if id.is_empty() || !layerish {
                    let l = if id.is_empty() {
                        status.to_string()
                    } else {
                        format!("{id}: {status}")
                    };
                    mp.suspend(|| emit_line(&l, to_stderr));
                    continue;
                }
                let pb = bars.entry(id.to_string()).or_insert_with(|| {
                    let pb = mp.add(ProgressBar::new(0));
                    pb.set_style(text_style.clone());
                    pb.set_prefix(id.to_string());
                    pb
                });
                let detail = m.get("progressDetail");
                let cur = detail
                    .and_then(|d| d.get("current"))
                    .and_then(Value::as_u64);
                let total = detail.and_then(|d| d.get("total")).and_then(Value::as_u64);
                match (cur, total) {
                    (Some(c), Some(t)) if t > 0 => {
                        pb.set_style(bar_style.clone());
                        pb.set_length(t);
                        pb.set_position(c.min(t));
                    }
                    _ => pb.set_style(text_style.clone()),
                }
                pb.set_message(status.to_string());
            }
        }
    }
    for pb in bars.values() {
        pb.finish();
    }
    Ok(out)
}

fn emit_line(l: &str, to_stderr: bool) {
    if to_stderr {
        eprintln!("{l}");
    } else {
        println!("{l}");
        let _ = io::stdout().flush();
    }
}

fn println_any(mp: &Option<MultiProgress>, s: &str) {
    match mp {
        Some(mp) => {
            let _ = mp.println(s);
        }
        None => println!("{s}"),
    }
}
