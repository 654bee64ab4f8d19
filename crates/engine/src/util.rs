//! Small helpers: ids, time, atomic files, signals, filters.
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A 500: `ctx` (what failed) with `e` (why) kept as its source; displays as `ctx: e`.
pub(crate) fn internal(ctx: impl std::fmt::Display, e: impl Into<crate::BoxError>) -> Error {
    Error::Internal(crate::Internal::new(ctx.to_string(), e))
}

/// 64 hex chars from getrandom(2).
pub(crate) fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: the pointer/length pair designates the unfilled tail of `b`.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(internal("getrandom", e));
        }
        got += n as usize;
    }
    // Docker avoids all-numeric short ids (they would parse as numbers); retry then.
    let s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if s[..12].bytes().all(|c| c.is_ascii_digit()) {
        return random_id();
    }
    Ok(s)
}

pub(crate) fn now_rfc3339() -> String {
    berth_fsutil::rfc3339_nano_now()
}

pub(crate) fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) use berth_fsutil::parse_rfc3339;

/// Docker's `since`/`until` values: Unix seconds (with optional fraction), RFC 3339, or a
/// Go duration relative to now ("10m", "1h30m").
pub(crate) fn parse_time_arg(s: &str) -> Result<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    if let Some(v) = parse_rfc3339(s) {
        return Ok(v);
    }
    if let Some(d) = parse_duration(s) {
        return Ok(now_f64() - d);
    }
    Err(Error::BadParameter(format!(
        "invalid time value {s:?}: expected Unix seconds, RFC 3339 or a duration like 10m"
    )))
}

pub(crate) fn parse_duration(s: &str) -> Option<f64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

/// "Up 3 seconds" style durations (Docker's units.HumanDuration).
pub(crate) fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as i64;
    if s < 1 {
        return "Less than a second".into();
    } else if s == 1 {
        return "1 second".into();
    } else if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    } else if m < 60 {
        return format!("{m} minutes");
    }
    let h = (s as f64 / 3600.0).round() as i64;
    if h == 1 {
        return "About an hour".into();
    } else if h < 48 {
        return format!("{h} hours");
    } else if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    } else if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    } else if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

/// Atomic replace without fsync, for files that are regenerated from the persisted record
/// (bundle config, /etc files, monitor config): a crash leaves the old or the new file.
pub(crate) fn write_atomic_nosync(path: &Path, data: &[u8]) -> Result<()> {
    berth_fsutil::write_atomic_nosync(path, data)
        .map_err(|e| Error::Internal(crate::Internal::cause(e)))
}

pub(crate) fn write_json_nosync<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    let b = serde_json::to_vec(v).map_err(|e| internal(format!("encode {}", path.display()), e))?;
    write_atomic_nosync(path, &b)
}

/// Container records: written with write-then-rename at once (atomic against a crash of berthd:
/// the old or the new record, never a torn one), made durable against a power loss by the
/// background [`durable_later`] fsync a moment later, off the request's path. A record a power
/// loss tore anyway is treated like a half-created container at the next start (see
/// `reconcile`), the containers it described having died with the machine.
pub(crate) fn write_json_atomic<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    let b = serde_json::to_vec(v).map_err(|e| internal(format!("encode {}", path.display()), e))?;
    write_atomic_nosync(path, &b)?;
    durable_later(path);
    Ok(())
}

enum SyncMsg {
    Path(std::path::PathBuf),
    Flush(std::sync::mpsc::SyncSender<()>),
}

fn syncer() -> Option<&'static std::sync::Mutex<std::sync::mpsc::Sender<SyncMsg>>> {
    use std::sync::{mpsc, Mutex, OnceLock};
    static TX: OnceLock<Option<Mutex<mpsc::Sender<SyncMsg>>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SyncMsg>();
        std::thread::Builder::new()
            .name("berth-fsync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Let the request that queued it (and its client) finish first: a batch
                    // starts 20 ms after its first path (its I/O and writeback work otherwise
                    // lands in the middle of a `docker run`).
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    // Batch what queued up meanwhile: one fsync per file and per directory.
                    // In the order queued (a snapshot before the record naming it).
                    let mut files: Vec<std::path::PathBuf> = Vec::new();
                    let mut acks = Vec::new();
                    let mut take = |m: SyncMsg| match m {
                        SyncMsg::Path(p) => {
                            if !files.contains(&p) {
                                files.push(p);
                            }
                        }
                        SyncMsg::Flush(a) => acks.push(a),
                    };
                    take(first);
                    while let Ok(m) = rx.try_recv() {
                        take(m);
                    }
                    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
                    for f in &files {
                        // Gone already (replaced or removed): its successor is queued itself.
                        if let Ok(h) = std::fs::File::open(f) {
                            if let Err(e) = h.sync_all() {
                                tracing::warn!("fsync {}: {e}", f.display());
                            }
                        }
                        if let Some(d) = f.parent() {
                            if !dirs.iter().any(|x| x == d) {
                                dirs.push(d.to_path_buf());
                            }
                        }
                    }
                    for d in dirs {
                        if let Ok(h) = std::fs::File::open(&d) {
                            let _ = h.sync_all();
                        }
                    }
                    for a in acks {
                        let _ = a.send(());
                    }
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    })
    .as_ref()
}

/// Queue an fsync of `path` and of its directory on the background syncer (fsync at once if
/// the syncer thread could not be started).
pub(crate) fn durable_later(path: &Path) {
    let sent = syncer()
        .and_then(|m| m.lock().ok())
        .map(|tx| tx.send(SyncMsg::Path(path.to_path_buf())).is_ok())
        .unwrap_or(false);
    if !sent {
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.sync_all();
        }
        if let Some(d) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = d.sync_all();
        }
    }
}

/// Wait until every queued [`durable_later`] fsync is done (daemon shutdown, tests).
pub(crate) fn flush_durable() {
    let (ack, done) = std::sync::mpsc::sync_channel(1);
    let sent = syncer()
        .and_then(|m| m.lock().ok())
        .map(|tx| tx.send(SyncMsg::Flush(ack)).is_ok())
        .unwrap_or(false);
    if sent {
        let _ = done.recv_timeout(std::time::Duration::from_secs(30));
    }
}

/// Signal by name ("TERM", "SIGTERM", "sigkill") or number.
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::BadParameter(format!("Invalid signal: {s}")));
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        other => {
            if let Some(r) = other.strip_prefix("RTMIN+") {
                if let Ok(k) = r.parse::<i32>() {
                    if (0..=30).contains(&k) {
                        return Ok(34 + k);
                    }
                }
            }
            if let Some(r) = other.strip_prefix("RTMAX-") {
                if let Ok(k) = r.parse::<i32>() {
                    if (0..=30).contains(&k) {
                        return Ok(64 - k);
                    }
                }
            }
            return Err(Error::BadParameter(format!("Invalid signal: {s}")));
        }
    };
    Ok(n)
}

/// Docker filters, accepting `{"k":{"v":true}}` and `{"k":["v"]}` (and a JSON string of either).
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub(crate) fn parse(v: &Value) -> Result<Filters> {
        let v = match v {
            Value::String(s) if s.trim().is_empty() => return Ok(Filters::default()),
            Value::String(s) => serde_json::from_str(s)
                .map_err(|e| Error::BadParameter(format!("invalid filter: {e}")))?,
            Value::Null => return Ok(Filters::default()),
            o => o.clone(),
        };
        let obj = v
            .as_object()
            .ok_or_else(|| Error::BadParameter("invalid filter: expected a JSON object".into()))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect(),
                Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool() != Some(false))
                    .map(|(k, _)| k.clone())
                    .collect(),
                Value::String(s) => vec![s.clone()],
                Value::Bool(b) => vec![b.to_string()],
                _ => {
                    return Err(Error::BadParameter(format!(
                        "invalid filter {k:?}: expected a list or a map"
                    )))
                }
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    pub(crate) fn get(&self, k: &str) -> &[String] {
        self.0.get(k).map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub(crate) fn has(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| !v.is_empty())
    }

    /// Reject keys not in `allowed` ("invalid filter 'x'", as Docker).
    pub(crate) fn validate(&self, allowed: &[&str]) -> Result<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::BadParameter(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// `label` filters: "k" (present) or "k=v"; all must match.
    pub(crate) fn match_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }
}

pub(crate) fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// openat2(2) with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: `path` is resolved as if `root` were
/// "/" (symlinks and ".." cannot leave it; CVE-2018-15664).
pub(crate) fn open_in_root(
    root: std::os::fd::RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = std::ffi::CString::new(rel.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve: 0x10 | 0x02,
    };
    loop {
        // SAFETY: `c` is NUL-terminated and `how` a valid open_how; both outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: r is a new fd returned by the kernel.
            return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) });
        }
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
            continue;
        }
        return Err(e);
    }
}

/// Open the directory `root` itself (O_PATH).
pub(crate) fn open_root(root: &Path) -> Result<std::os::fd::OwnedFd> {
    let f = std::fs::File::options()
        .read(true)
        .custom_flags_dir()
        .open(root)
        .map_err(|e| internal(format!("open {}", root.display()), e))?;
    Ok(f.into())
}

trait DirFlags {
    fn custom_flags_dir(&mut self) -> &mut Self;
}
impl DirFlags for std::fs::OpenOptions {
    fn custom_flags_dir(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
    }
}

/// `mkdir -p` of `path` inside `root`, never leaving it; returns nothing if it exists.
pub(crate) fn mkdir_all_in_root(root: &Path, path: &Path, mode: u32) -> Result<()> {
    use std::os::fd::AsRawFd;
    let rootfd = open_root(root)?;
    let mut cur = std::path::PathBuf::from("/");
    for comp in path.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        let parent = open_in_root(
            rootfd.as_raw_fd(),
            &cur,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| Error::BadParameter(format!("{} in the container: {e}", cur.display())))?;
        let c = std::ffi::CString::new(name.as_encoded_bytes())
            .map_err(|_| Error::BadParameter("path contains NUL".into()))?;
        // SAFETY: mkdirat with a valid dirfd and NUL-terminated name.
        let r = unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(internal(
                    format!("mkdir {} in the container", cur.join(name).display()),
                    e,
                ));
            }
        }
        cur.push(name);
    }
    Ok(())
}

/// Read a file inside `root` (resolved in root); `None` if absent.
pub(crate) fn read_in_root(root: &Path, path: &Path) -> Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let rootfd = open_root(root)?;
    match open_in_root(rootfd.as_raw_fd(), path, libc::O_RDONLY, 0) {
        Ok(fd) => {
            let mut f = std::fs::File::from(fd);
            let mut v = Vec::new();
            use std::io::Read;
            f.by_ref()
                .take(16 << 20)
                .read_to_end(&mut v)
                .map_err(|e| internal(format!("read {} in the container", path.display()), e))?;
            Ok(Some(v))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(internal(
            format!("open {} in the container", path.display()),
            e,
        )),
    }
}

/// Marker in the root of a tmpfs berthd mounted itself (so it is unmounted by berthd only).
const TMPFS_MARK: &str = ".berth-tmpfs";

/// An engine's use of the tmpfs on its exec root: the marker file, open and share-locked for
/// the engine's life (so another engine on the same exec root sees it in use).
pub(crate) struct TmpfsHold {
    _marker: std::fs::File,
}

fn flock(f: &std::fs::File, op: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an fd we own.
    unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
}

/// Make `dir` a tmpfs unless it is on one already (`/run` usually is). Returns a hold when the
/// tmpfs is one berthd mounted (now or before a restart), None otherwise.
pub(crate) fn ensure_tmpfs(dir: &Path) -> Result<Option<TmpfsHold>> {
    std::fs::create_dir_all(dir).map_err(|e| internal(format!("create {}", dir.display()), e))?;
    let st = nix::sys::statfs::statfs(dir)
        .map_err(|e| internal(format!("statfs {}", dir.display()), e))?;
    let t = st.filesystem_type();
    // ramfs: 0x858458f6 (linux/magic.h)
    if t != nix::sys::statfs::TMPFS_MAGIC && t.0 as i64 != 0x8584_58f6 {
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some("mode=0700"),
        )
        .map_err(|e| internal(format!("mount a tmpfs on {}", dir.display()), e))?;
        std::fs::write(dir.join(TMPFS_MARK), b"")
            .map_err(|e| internal(format!("write {}", dir.join(TMPFS_MARK).display()), e))?;
        tracing::info!("mounted a tmpfs on {} (runtime state)", dir.display());
    }
    let Ok(f) = std::fs::File::open(dir.join(TMPFS_MARK)) else {
        return Ok(None);
    };
    flock(&f, libc::LOCK_SH);
    Ok(Some(TmpfsHold { _marker: f }))
}

/// Let go of `hold` and unmount the tmpfs on `dir` if no other engine holds it and nothing
/// uses it (busy: retried for up to `patience`, for monitors that are finishing). Anything
/// else is left alone.
pub(crate) fn release_tmpfs(dir: &Path, hold: TmpfsHold, patience: std::time::Duration) {
    drop(hold);
    if !berth_image::sys::is_mount_root(dir) {
        return;
    }
    let Ok(f) = std::fs::File::open(dir.join(TMPFS_MARK)) else {
        return;
    };
    if !flock(&f, libc::LOCK_EX | libc::LOCK_NB) {
        return; // another engine on this exec root
    }
    drop(f);
    let until = std::time::Instant::now() + patience;
    loop {
        match nix::mount::umount2(dir, nix::mount::MntFlags::empty()) {
            Ok(()) => return,
            Err(nix::errno::Errno::EBUSY) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => {
                tracing::info!("{} stays mounted: {e}", dir.display());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn time_roundtrip() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000.0)
        );
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert!(parse_time_arg("yesterday").is_err());
    }
    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
    }
    #[test]
    fn filters_both_shapes() {
        let a = Filters::parse(&serde_json::json!({"label": {"a=b": true}})).unwrap();
        let b = Filters::parse(&serde_json::json!({"label": ["a=b"]})).unwrap();
        assert_eq!(a.get("label"), b.get("label"));
        assert!(Filters::parse(&serde_json::json!([1])).is_err());
    }
    #[test]
    fn ids() {
        let id = random_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
