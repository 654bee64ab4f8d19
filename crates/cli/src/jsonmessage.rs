//! Docker's terminal display of a JSON message stream (pull, push, load): one line per
//! layer id, rewritten in place with cursor movements as its status and progress change;
//! a message without progress (a digest, the final status) is printed below them and
//! starts a new block. The layout follows the docker CLI's `jsonmessage` rendering so that
//! what a user sees on a terminal is the same.

use crate::units::human_size;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, Write};

/// The rendering state of one stream on a terminal.
pub struct TtyDisplay<W: Write> {
    out: W,
    /// Terminal width in columns; the progress bar is drawn only on wide terminals.
    width: u16,
    /// The line (0-based, in order of first appearance) of each layer id in this block.
    lines: HashMap<String, u32>,
    /// Seconds since the epoch: the clock the time-left estimate uses.
    now: fn() -> i64,
}

/// The progress part of a message (`progressDetail`), as the daemon sends it.
#[derive(Debug, Default, PartialEq)]
struct Progress {
    current: i64,
    total: i64,
    start: i64,
    units: String,
    hide_counts: bool,
}

impl Progress {
    fn from_json(v: &Value) -> Progress {
        let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        Progress {
            current: n("current"),
            total: n("total"),
            start: n("start"),
            units: v.get("units").and_then(Value::as_str).unwrap_or("").into(),
            hide_counts: v
                .get("hidecounts")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// `[=====>    ]  1.2MB/3.4MB 5s`: bar on terminals wider than 110 columns, the
    /// counts, and the time left once the transfer has a start time.
    fn render(&self, width: u16, now: i64) -> String {
        if self.current <= 0 && self.total <= 0 {
            return String::new();
        }
        if self.total <= 0 {
            return match self.units.as_str() {
                "" => format!("{:>8}", human_size(self.current as f64)),
                u => format!("{} {u}", self.current),
            };
        }
        let pct = ((self.current as f64 / self.total as f64 * 100.0) as i64 / 2).min(50);
        let mut s = String::new();
        if width > 110 {
            let filled = usize::try_from(pct).unwrap_or(0);
            s = format!(
                "[{}>{}] ",
                "=".repeat(filled),
                " ".repeat(50 - filled.min(50))
            );
        }
        if !self.hide_counts {
            let cur = human_size(self.current as f64);
            if self.units.is_empty() {
                if self.current > self.total {
                    s.push_str(&format!("{cur:>8}"));
                } else {
                    s.push_str(&format!("{cur:>8}/{}", human_size(self.total as f64)));
                }
            } else {
                s.push_str(&format!("{}/{} {}", self.current, self.total, self.units));
            }
        }
        if self.current > 0 && self.start > 0 && pct < 50 && width > 50 {
            let elapsed = (now - self.start).max(0);
            let left = (self.total - self.current) * elapsed / self.current;
            s.push(' ');
            s.push_str(&go_duration_secs(left));
        }
        s
    }
}

/// Go's `time.Duration.String()` for a whole number of seconds: `0s`, `42s`, `1m5s`, `2h0m0s`.
fn go_duration_secs(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl<W: Write> TtyDisplay<W> {
    pub fn new(out: W, width: u16) -> TtyDisplay<W> {
        TtyDisplay {
            out,
            width,
            lines: HashMap::new(),
            now: unix_now,
        }
    }

    /// Shows one message of the stream (an error or aux message is the caller's).
    pub fn show(&mut self, m: &Value) -> io::Result<()> {
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
        let id = s("id");
        let progress = m.get("progressDetail").map(Progress::from_json);
        let progress_msg = s("progress");
        let mut diff = 0;
        if !id.is_empty() && (progress.is_some() || !progress_msg.is_empty()) {
            let count = u32::try_from(self.lines.len()).unwrap_or(u32::MAX);
            let line = match self.lines.get(id) {
                Some(l) => *l,
                None => {
                    self.lines.insert(id.to_string(), count);
                    self.out.write_all(b"\n")?;
                    count
                }
            };
            diff = u32::try_from(self.lines.len()).unwrap_or(u32::MAX) - line;
            if diff > 0 {
                write!(self.out, "\x1b[{diff}A")?;
            }
        } else {
            // Anything that is not a layer's progress ends the block: later layer lines
            // start below it rather than rewriting lines above.
            self.lines.clear();
        }
        self.line(m, id, progress.as_ref(), progress_msg)?;
        if !id.is_empty() && diff > 0 {
            write!(self.out, "\x1b[{diff}B")?;
        }
        self.out.flush()
    }

    fn line(&mut self, m: &Value, id: &str, p: Option<&Progress>, pmsg: &str) -> io::Result<()> {
        let stream = m.get("stream").and_then(Value::as_str).unwrap_or("");
        let status = m.get("status").and_then(Value::as_str).unwrap_or("");
        let endl = if stream.is_empty() && p.is_some() {
            self.out.write_all(b"\x1b[2K\r")?;
            "\r"
        } else {
            ""
        };
        if !id.is_empty() {
            write!(self.out, "{id}: ")?;
        }
        if let Some(from) = m
            .get("from")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
        {
            write!(self.out, "(from {from}) ")?;
        }
        match p {
            Some(p) => {
                let bar = p.render(self.width, (self.now)());
                write!(self.out, "{status} {bar}{endl}")
            }
            None if !pmsg.is_empty() => write!(self.out, "{status} {pmsg}{endl}"),
            None if !stream.is_empty() => write!(self.out, "{stream}{endl}"),
            None => writeln!(self.out, "{status}{endl}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(msgs: &[Value], width: u16) -> String {
        let mut d = TtyDisplay::new(Vec::new(), width);
        d.now = || 1_000;
        for m in msgs {
            d.show(m).unwrap();
        }
        String::from_utf8(d.out).unwrap()
    }

    #[test]
    fn layer_lines_are_rewritten_in_place_and_the_summary_goes_below() {
        let out = shown(
            &[
                json!({"status": "Pulling from library/busybox", "id": "latest"}),
                json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"}),
                json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"}),
                json!({"status": "Downloading", "progressDetail": {"current": 500, "total": 1000}, "id": "aaa"}),
                json!({"status": "Pull complete", "progressDetail": {}, "id": "bbb"}),
                json!({"status": "Digest: sha256:abc"}),
                json!({"status": "Status: Downloaded newer image for busybox:latest"}),
            ],
            80,
        );
        let want = concat!(
            "latest: Pulling from library/busybox\n",
            "\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B",
            "\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B",
            "\x1b[2A\x1b[2K\raaa: Downloading     500B/1kB\r\x1b[2B",
            "\x1b[1A\x1b[2K\rbbb: Pull complete \r\x1b[1B",
            "Digest: sha256:abc\n",
            "Status: Downloaded newer image for busybox:latest\n",
        );
        assert_eq!(out, want);
    }

    #[test]
    fn a_block_ends_at_a_message_without_progress() {
        let out = shown(
            &[
                json!({"status": "Waiting", "progressDetail": {}, "id": "aaa"}),
                json!({"status": "Digest: sha256:abc"}),
                json!({"status": "Waiting", "progressDetail": {}, "id": "aaa"}),
            ],
            80,
        );
        // The second "aaa" is a new line below the digest, not a rewrite above it.
        assert!(out.ends_with("Digest: sha256:abc\n\n\x1b[1A\x1b[2K\raaa: Waiting \r\x1b[1B"));
    }

    #[test]
    fn progress_matches_docker_on_wide_and_narrow_terminals() {
        let p = Progress {
            current: 1_000_000,
            total: 4_000_000,
            start: 990,
            ..Progress::default()
        };
        let wide = p.render(120, 1_000);
        assert_eq!(
            wide,
            format!("[{}>{}]      1MB/4MB 30s", "=".repeat(12), " ".repeat(38))
        );
        assert_eq!(p.render(80, 1_000), "     1MB/4MB 30s");
        assert_eq!(p.render(40, 1_000), "     1MB/4MB");
        let over = Progress {
            current: 5,
            total: 4,
            ..Progress::default()
        };
        assert_eq!(over.render(80, 0), "      5B");
        let unknown = Progress {
            current: 2048,
            ..Progress::default()
        };
        assert_eq!(unknown.render(80, 0), " 2.048kB");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_secs(0), "0s");
        assert_eq!(go_duration_secs(65), "1m5s");
        assert_eq!(go_duration_secs(7200), "2h0m0s");
    }
}
