//! Small helpers to read and write cgroup control files with errors that name the file and field.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

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

/// Like [`write`], but returns `Ok(false)` when the file does not exist.
pub(crate) fn write_if_exists(dir: &Path, file: &str, value: &str, field: &str) -> Result<bool> {
    match write(dir, file, value, field) {
        Ok(()) => Ok(true),
        Err(Error::Write { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Read a file that may legitimately be absent (controller or kernel feature missing).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
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
