//! Rendering of the daemon's JSON message streams (pull, push, load, import):
//! docker's per-layer lines updated in place on a terminal (`jsonmessage`), docker's plain
//! lines otherwise.

use crate::jsonmessage::TtyDisplay;
use serde_json::Value;
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
    let fd = if to_stderr { 2 } else { 1 };
    let sink: Box<dyn Write> = if to_stderr {
        Box::new(io::stderr())
    } else {
        Box::new(io::stdout())
    };
    // docker assumes 200 columns when the width is unknown
    let width = crate::term::size(fd).map_or(200, |(_, cols)| cols);
    let mut tty = (mode == Mode::Bars).then(|| TtyDisplay::new(sink, width));
    let mut out = Outcome::default();
    for line in BufReader::new(r).lines() {
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
                    emit(&format!("{t}\n"), to_stderr)?;
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
            continue;
        }
        if let Some(s) = m.get("status").and_then(Value::as_str) {
            out.last_status = Some(s.to_string());
        }
        match (&mut tty, mode) {
            (Some(d), _) => d.show(&m)?,
            (None, Mode::Plain) => {
                if let Some(l) = plain_line(&m) {
                    emit(&l, to_stderr)?;
                }
            }
            (None, _) => {}
        }
    }
    Ok(out)
}

fn emit(l: &str, to_stderr: bool) -> io::Result<()> {
    if to_stderr {
        io::stderr().lock().write_all(l.as_bytes())
    } else {
        let mut o = io::stdout().lock();
        o.write_all(l.as_bytes())?;
        o.flush()
    }
}
