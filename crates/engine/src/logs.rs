//! json-file logs: reading (tail, since/until, follow across rotation). The format (entries,
//! rotated file names) is `berth_monitor_core::jsonlog`, beside the monitor's writer.
//!
//! No output is lost: every file is opened when the request comes (its fd keeps it readable
//! after a rotation renames it or a removal deletes it; the monitor makes the current file
//! before the container is created), and a follow stream ends only once the engine's exit
//! record for the container came (the monitor writes its last entry before it sends that
//! record) and the file was read to its end after that.
use crate::containers::wait_exit;
use crate::shared::Shared;
use crate::util::{internal, now_f64, parse_rfc3339};
use crate::{Engine, Error, LogsOptions, Result};
use berth_monitor_core::jsonlog::{log_files, parse_line};
pub use berth_monitor_core::jsonlog::{LogEntry, StreamKind};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often a follow stream looks for growth (an exit wakes it at once).
const POLL: Duration = Duration::from_millis(50);

/// Blocking iterator over log entries. With `follow` it waits for new entries until the
/// container exits (then reads what is left and ends).
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

/// One log file, opened once, read entry by entry (a partial last line waits for its end).
struct LogFile {
    path: PathBuf,
    r: BufReader<File>,
    ino: u64,
    pos: u64,
    partial: Vec<u8>,
}

impl LogFile {
    fn open(path: PathBuf) -> Option<LogFile> {
        let f = File::open(&path).ok()?;
        let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
        Some(LogFile {
            path,
            r: BufReader::new(f),
            ino,
            pos: 0,
            partial: Vec::new(),
        })
    }

    /// The next entry; `None` at the end of what is written now.
    fn next_entry(&mut self) -> Result<Option<LogEntry>> {
        loop {
            let mut line = Vec::new();
            let n = self
                .r
                .read_until(b'\n', &mut line)
                .map_err(|e| internal(format!("read {}", self.path.display()), e))?;
            if n == 0 {
                return Ok(None);
            }
            self.pos += n as u64;
            self.partial.extend_from_slice(&line);
            if !self.partial.ends_with(b"\n") {
                continue;
            }
            if let Some(e) = parse_line(&std::mem::take(&mut self.partial)) {
                return Ok(Some(e));
            }
        }
    }

    /// The writer went on in another file at our path (rotation: renamed, or emptied).
    fn replaced(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.ino() != self.ino || m.len() < self.pos)
    }
}

/// Every entry of the files, oldest first, unfiltered.
fn entries(files: Vec<LogFile>) -> impl Iterator<Item = Result<LogEntry>> {
    files
        .into_iter()
        .flat_map(|mut f| std::iter::from_fn(move || f.next_entry().transpose()))
}

/// The current log file, read to its end and then, when following, as it grows (across
/// rotations) until the container's exit.
struct Follower {
    s: Arc<Shared>,
    id: String,
    path: PathBuf,
    cur: Option<LogFile>,
    /// The container's exit generation when the request came: a higher one (or the record
    /// gone) is its exit.
    gen: u64,
    follow: bool,
    /// The exit came: what is in the file now is all there is.
    exited: bool,
    /// A rotation was seen: the old file is read to its end once more, then left.
    rotated: bool,
    until: f64,
}

impl Follower {
    fn read(&mut self) -> Result<Option<LogEntry>> {
        if self.cur.is_none() {
            self.cur = LogFile::open(self.path.clone());
        }
        match self.cur.as_mut() {
            Some(f) => f.next_entry(),
            None => Ok(None),
        }
    }

    /// At the end of the file: whether to end, after waiting for growth or the exit.
    fn at_end(&mut self) -> bool {
        if !self.follow || self.exited || self.s.closed.load(Ordering::SeqCst) {
            return true;
        }
        if self.cur.as_ref().is_some_and(LogFile::replaced) {
            if self.rotated {
                self.cur = None;
                self.rotated = false;
            } else {
                self.rotated = true;
            }
            return false;
        }
        if self.until > 0.0 && now_f64() > self.until {
            return true;
        }
        // Exited: one more read to the end (the monitor wrote its last entry before the exit).
        self.exited = wait_exit(&self.s, &self.id, self.gen, Some(POLL));
        false
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
    let filter = Filter {
        stdout,
        stderr,
        since,
        until,
    };
    let files = files.into_iter().filter_map(LogFile::open).collect();
    entries(files)
        .filter(|r| r.as_ref().map_or(true, |e| filter.keep(e)))
        .collect()
}

impl Iterator for Follower {
    type Item = Result<LogEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.read() {
                Ok(Some(e)) => {
                    if self.until > 0.0 && parse_rfc3339(&e.time).unwrap_or(0.0) > self.until {
                        return None;
                    }
                    return Some(Ok(e));
                }
                Ok(None) => {
                    if self.at_end() {
                        return None;
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

pub(crate) fn open(e: &Engine, x: &str, o: &LogsOptions) -> Result<LogStream> {
    let s = &e.inner.0;
    // One look under the registry lock: the record and its exit generation go together.
    let (id, rec, gen) = {
        let reg = s.containers.lock();
        let id = s.containers.resolve(&reg, x)?;
        let en = &reg.by_id[&id];
        (id, en.rec.clone(), en.exit_gen)
    };
    if rec.host_config.log_type() == "none" {
        return Err(Error::BadParameter(
            "configured logging driver does not support reading".into(),
        ));
    }
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
    // Opened now: a rotation or a removal after this request takes nothing from it.
    let mut files: Vec<LogFile> = log_files(&path)
        .into_iter()
        .filter_map(LogFile::open)
        .collect();
    let cur = match files.last() {
        Some(f) if f.path == path => files.pop(),
        _ => None,
    };
    let mut follower = Follower {
        s: s.clone(),
        id,
        path,
        cur,
        gen,
        // As dockerd: a container that is not running is not followed.
        follow: o.follow && rec.running(),
        exited: false,
        rotated: false,
        until: o.until,
    };
    let inner: Box<dyn Iterator<Item = Result<LogEntry>> + Send> = match o.tail {
        None => {
            let f = filter.clone();
            let old = entries(files).filter(move |e| e.as_ref().map_or(true, |e| f.keep(e)));
            let f = filter;
            Box::new(old.chain(follower.filter(move |e| e.as_ref().map_or(true, |e| f.keep(e)))))
        }
        Some(n) => {
            let head = tail(files, &mut follower, n, &filter)?;
            let f = filter;
            let rest = follower.filter(move |e| e.as_ref().map_or(true, |e| f.keep(e)));
            Box::new(head.into_iter().map(Ok).chain(rest))
        }
    };
    Ok(LogStream {
        tty: rec.config.tty.val(),
        inner,
    })
}

/// The last `n` lines of the log as it is now, then `filter` (as dockerd: the tail counts
/// every line, of both streams, before since and the stream selection apply). The follower
/// is left where the file ended.
fn tail(
    files: Vec<LogFile>,
    cur: &mut Follower,
    n: usize,
    filter: &Filter,
) -> Result<Vec<LogEntry>> {
    let mut ring: VecDeque<LogEntry> = VecDeque::with_capacity(n.min(4096));
    let mut push = |e: LogEntry| {
        if n == 0 {
            return;
        }
        if ring.len() == n {
            ring.pop_front();
        }
        ring.push_back(e);
    };
    for e in entries(files) {
        push(e?);
    }
    while let Some(e) = cur.read()? {
        push(e);
    }
    Ok(ring.into_iter().filter(|e| filter.keep(e)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_monitor_core::jsonlog::{rotated_name, LogWriter};
    use std::io::Write;

    fn data(e: Option<LogEntry>) -> Option<String> {
        e.map(|e| String::from_utf8_lossy(&e.data).into_owned())
    }

    #[test]
    fn a_partial_line_waits_for_its_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(StreamKind::Stdout, b"one\n");
        let mut f = LogFile::open(p.clone()).unwrap();
        assert_eq!(data(f.next_entry().unwrap()), Some("one\n".into()));
        // Half an entry on disk (as a reader may see a write under way).
        let mut raw = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        raw.write_all(b"{\"log\":\"two\\n\",\"stream\":\"stdout\",")
            .unwrap();
        assert_eq!(data(f.next_entry().unwrap()), None);
        raw.write_all(b"\"time\":\"2026-01-01T00:00:00Z\"}\n")
            .unwrap();
        assert_eq!(data(f.next_entry().unwrap()), Some("two\n".into()));
        assert!(!f.replaced());
    }

    #[test]
    fn an_opened_file_is_read_after_rotation_and_removal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = LogWriter::open(&p, 60, 2).unwrap();
        w.write(StreamKind::Stdout, b"first\n");
        let mut f = LogFile::open(p.clone()).unwrap();
        // The next entry does not fit: the file is rotated, the entry goes to a new one.
        w.write(StreamKind::Stderr, b"second line\n");
        assert!(rotated_name(&p, 1).exists());
        assert!(f.replaced(), "a rotation is seen");
        assert_eq!(data(f.next_entry().unwrap()), Some("first\n".into()));
        let mut g = LogFile::open(p.clone()).unwrap();
        std::fs::remove_dir_all(d.path()).unwrap();
        assert_eq!(data(g.next_entry().unwrap()), Some("second line\n".into()));
        assert!(!g.replaced(), "a removed file is not a rotation");
    }

    #[test]
    fn every_entry_of_the_files_in_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let mut w = LogWriter::open(&p, 100, 3).unwrap();
        for i in 0..6 {
            w.write(StreamKind::Stdout, format!("line {i}\n").as_bytes());
        }
        let files: Vec<LogFile> = log_files(&p)
            .into_iter()
            .filter_map(LogFile::open)
            .collect();
        assert!(files.len() > 1);
        let got: Vec<String> = entries(files)
            .map(|e| String::from_utf8_lossy(&e.unwrap().data).into_owned())
            .collect();
        let n = got.len();
        let want: Vec<String> = (6 - n..6).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, want);
    }
}
