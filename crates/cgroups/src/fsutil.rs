//! Small helpers to read and write cgroup control files with errors that name the file and field.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Write `value` to `dir/file` in a single write(2), as the kernel expects for cgroup files.
/// `field` is the spec field (e.g. `linux.resources.memory.limit`) named in the error.
pub(crate) fn write(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let path = dir.join(file);
    let res = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| Error::Write {
        field: field.to_string(),
        path,
        value: value.trim_end().to_string(),
        source,
    })
}

/// One control file kept open for several writes (each write(2) is one command to the
/// kernel, e.g. one device rule), saving a path walk per value.
pub(crate) struct Writer {
    file: fs::File,
    path: PathBuf,
    field: String,
}

impl Writer {
    pub(crate) fn open(dir: &Path, file: &str, field: &str) -> Result<Writer> {
        let path = dir.join(file);
        match fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => Ok(Writer {
                file: f,
                path,
                field: field.to_string(),
            }),
            Err(source) => Err(Error::Io {
                op: "open",
                path,
                source,
            }),
        }
    }

    pub(crate) fn write(&mut self, value: &str) -> Result<()> {
        // One write(2) per value: the kernel parses each call as one command.
        match self.file.write(value.as_bytes()) {
            Ok(n) if n == value.len() => Ok(()),
            Ok(n) => Err(Error::Write {
                field: self.field.clone(),
                path: self.path.clone(),
                value: value.to_string(),
                source: std::io::Error::other(format!("short write: {n} bytes")),
            }),
            Err(source) => Err(Error::Write {
                field: self.field.clone(),
                path: self.path.clone(),
                value: value.to_string(),
                source,
            }),
        }
    }
}

/// Like [`write`], but returns `Ok(false)` when the file does not exist.
pub(crate) fn write_if_exists(dir: &Path, file: &str, value: &str, field: &str) -> Result<bool> {
    match write(dir, file, value, field) {
        Ok(()) => Ok(true),
        Err(Error::Write { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    // procfs and cgroupfs report a size of 0: with an empty buffer the reads would start at
    // 32 bytes and double, and every read of a seq file (mountinfo) walks it again.
    let mut buf = Vec::with_capacity(16 * 1024);
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut buf))
        .map_err(|source| Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
    String::from_utf8(buf).map_err(|e| Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source: std::io::Error::new(ErrorKind::InvalidData, e),
    })
}

/// Read a file that may legitimately be absent (controller or kernel feature missing).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match read(path) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        reason: format!("expected an unsigned integer, got {t:?}"),
    })
}

/// Read a single unsigned integer ("max" reads as u64::MAX); 0 when the file is absent.
pub(crate) fn read_u64_or0(path: &Path) -> Result<u64> {
    match read_opt(path)? {
        Some(s) => parse_u64(path, &s),
        None => Ok(0),
    }
}

/// Parse "key value" lines (memory.stat, cpu.stat, memory.events...). Lines that do not parse
/// are skipped: the kernel adds keys over time and we only look up the ones we know.
pub(crate) fn flat_keyed(s: &str) -> Vec<(String, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse::<u64>().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

pub(crate) fn keyed(pairs: &[(String, u64)], key: &str) -> u64 {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .unwrap_or(0)
}

/// mkdir -p, returning the directories this call created (parents first).
pub(crate) fn mkdir_all(dir: &Path) -> Result<Vec<PathBuf>> {
    // Another container's destroy may remove an empty shared parent between our check and our
    // mkdir (ENOENT): walk again a few times before giving up.
    let mut attempt = 0;
    loop {
        match mkdir_all_once(dir) {
            Err(Error::Io { ref source, .. })
                if source.kind() == ErrorKind::NotFound && attempt < 10 =>
            {
                attempt += 1;
            }
            r => return r,
        }
    }
}

fn mkdir_all_once(dir: &Path) -> Result<Vec<PathBuf>> {
    // Usually only the leaf is missing: one mkdir, no walk.
    match fs::create_dir(dir) {
        Ok(()) => return Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(Vec::new()),
        Err(_) => {}
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for d in missing {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                // Undo what we did so nothing is left half-made.
                for c in created.iter().rev() {
                    let _ = fs::remove_dir(c);
                }
                return Err(Error::Io {
                    op: "mkdir",
                    path: d,
                    source,
                });
            }
        }
    }
    Ok(created)
}

/// Poll `check` until it returns true or `limit` passes; the error names `what` and `path`.
pub(crate) fn wait_until(
    what: &'static str,
    path: &Path,
    limit: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_micros(200);
    loop {
        if check()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(Error::Timeout {
                what,
                path: path.to_path_buf(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}
