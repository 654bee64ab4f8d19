//! json-file logs: reading (tail, since/until, follow across rotation). The format (entries,
//! rotated file names) is `berth_monitor_core::jsonlog`, beside the monitor's writer.
use crate::model::Status;
use crate::shared::Shared;
use crate::util::{internal, now_f64, parse_rfc3339};
use crate::{Engine, Error, LogsOptions, Result};
use berth_monitor_core::jsonlog::{log_files, parse_line};
pub use berth_monitor_core::jsonlog::{LogEntry, StreamKind};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Blocking iterator over log entries. With `follow` it waits for new entries until the
/// container stops (then drains and ends).
pub struct LogStream {
    /// The container has a TTY: send raw (no multiplexing headers).
    pub tty: bool,
    pub(crate) inner: Box<dyn Iterator<Item = Result<LogEntry>> + Send>,
}

impl Iterator for LogStream {
    type Item = Result<LogEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

#[derive(Clone)]
struct Filter {
    stdout: bool,
    stderr: bool,
    since: f64,
    until: f64,
}

impl Filter {
    fn keep(&self, e: &LogEntry) -> bool {
        let ok_stream = match e.stream {
            StreamKind::Stdout => self.stdout,
            StreamKind::Stderr => self.stderr,
        };
        if !ok_stream {
            return false;
        }
        if self.since > 0.0 || self.until > 0.0 {
            let t = parse_rfc3339(&e.time).unwrap_or(0.0);
            if self.since > 0.0 && t < self.since {
                return false;
            }
            if self.until > 0.0 && t > self.until {
                return false;
            }
        }
        true
    }
}

/// Follows the current log file: polls for growth, reopens after rotation, ends when the
/// container is no longer running and everything was read.
struct Follower {
    s: Arc<Shared>,
    id: String,
    path: PathBuf,
    reader: Option<BufReader<File>>,
    ino: u64,
    pos: u64,
    filter: Filter,
    partial: Vec<u8>,
    until: f64,
    /// Keep waiting for more at EOF (else end there).
    follow: bool,
}

/// Entries of complete (rotated) log files, read lazily, oldest file first.
struct FileLines {
    files: std::vec::IntoIter<PathBuf>,
    cur: Option<(PathBuf, BufReader<File>)>,
    filter: Filter,
}

impl Iterator for FileLines {
    type Item = Result<LogEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur.is_none() {
                let p = self.files.next()?;
                if let Ok(f) = File::open(&p) {
                    self.cur = Some((p, BufReader::new(f)));
                }
                continue;
            }
            let (p, r) = self.cur.as_mut()?;
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) => self.cur = None,
                Ok(_) => {
                    if let Some(e) = parse_line(&line) {
                        if self.filter.keep(&e) {
                            return Some(Ok(e));
                        }
                    }
                }
                Err(er) => {
                    let e = internal(format!("read {}", p.display()), er);
                    self.cur = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The entries of the complete log files `files` (oldest first) that the stream filter keeps
/// (`since`/`until`: seconds since the epoch, 0 = unset). For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn file_entries(
    files: Vec<PathBuf>,
    stdout: bool,
    stderr: bool,
    since: f64,
    until: f64,
) -> Vec<Result<LogEntry>> {
    FileLines {
        files: files.into_iter(),
        cur: None,
        filter: Filter {
            stdout,
            stderr,
            since,
            until,
        },
    }
    .collect()
}

impl Iterator for Follower {
    type Item = Result<LogEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut idle_after_stop = 0;
        loop {
            if self.reader.is_none() {
                if let Ok(f) = File::open(&self.path) {
                    self.ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    let mut r = BufReader::new(f);
                    let _ = r.seek(SeekFrom::Start(self.pos));
                    self.reader = Some(r);
                }
            }
            if let Some(r) = self.reader.as_mut() {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(n) if n > 0 => {
                        self.pos += n as u64;
                        self.partial.extend_from_slice(&line);
                        if self.partial.ends_with(b"\n") {
                            let l = std::mem::take(&mut self.partial);
                            if let Some(e) = parse_line(&l) {
                                if self.until > 0.0
                                    && parse_rfc3339(&e.time).unwrap_or(0.0) > self.until
                                {
                                    return None;
                                }
                                if self.filter.keep(&e) {
                                    return Some(Ok(e));
                                }
                            }
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Some(Err(internal(format!("read {}", self.path.display()), e)))
                    }
                }
            }
            if !self.follow {
                return None;
            }
            // EOF: rotated?
            if let Ok(m) = std::fs::metadata(&self.path) {
                if m.ino() != self.ino || m.len() < self.pos {
                    self.reader = None;
                    self.pos = 0;
                    continue;
                }
            }
            if self.s.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            let running = self
                .s
                .containers
                .record(&self.id)
                .map(|r| r.running() || r.state.status == Status::Restarting)
                .unwrap_or(false);
            if !running {
                // One more pass after the stop to pick up the last lines.
                idle_after_stop += 1;
                if idle_after_stop > 2 {
                    return None;
                }
            }
            if self.until > 0.0 && now_f64() > self.until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub(crate) fn open(e: &Engine, x: &str, o: &LogsOptions) -> Result<LogStream> {
    let s = &e.inner.0;
    let (id, _) = s.containers.find(x)?;
    let rec = s.containers.record(&id)?;
    if rec.host_config.log_type() == "none" {
        return Err(Error::BadParameter(
            "configured logging driver does not support reading".into(),
        ));
    }
    let tty = rec.config.tty.val();
    let (stdout, stderr) = if !o.stdout && !o.stderr {
        (true, true)
    } else {
        (o.stdout, o.stderr)
    };
    let filter = Filter {
        stdout,
        stderr,
        since: o.since,
        until: o.until,
    };
    let path = PathBuf::from(&rec.log_path);
    let mut files = log_files(&path);
    files.pop(); // the current file is read by the follower
    let follower = |pos: u64, follow: bool, filter: Filter| Follower {
        s: s.clone(),
        id: id.clone(),
        path: path.clone(),
        reader: None,
        ino: 0,
        pos,
        filter,
        partial: Vec::new(),
        until: o.until,
        follow,
    };
    let inner: Box<dyn Iterator<Item = Result<LogEntry>> + Send> = match o.tail {
        None => {
            let old = FileLines {
                files: files.into_iter(),
                cur: None,
                filter: filter.clone(),
            };
            Box::new(old.chain(follower(0, o.follow, filter)))
        }
        Some(n) => {
            // Keep only the last n entries in memory while reading what is there now.
            let mut ring: std::collections::VecDeque<LogEntry> =
                std::collections::VecDeque::with_capacity(n.min(4096));
            let old = FileLines {
                files: files.into_iter(),
                cur: None,
                filter: filter.clone(),
            };
            let mut cur = follower(0, false, filter.clone());
            for e in old.chain(&mut cur) {
                let e = e?;
                if n == 0 {
                    continue;
                }
                if ring.len() == n {
                    ring.pop_front();
                }
                ring.push_back(e);
            }
            // Drop a partial last line: the follower re-reads it complete.
            let pos = cur.pos - cur.partial.len() as u64;
            let head = ring.into_iter().map(Ok);
            if o.follow {
                let mut f = follower(pos, true, filter);
                f.ino = cur.ino;
                Box::new(head.chain(f))
            } else {
                Box::new(head)
            }
        }
    };
    Ok(LogStream { tty, inner })
}
