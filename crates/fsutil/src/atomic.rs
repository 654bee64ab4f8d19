//! Write-temp-then-rename file replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed step of an atomic write: the step (`op`), the file it was done to, and the OS error.
///
/// Its `Display` is `"{op} {path}: {io error}"`, complete on its own (so `source()` is `None`);
/// callers that keep typed errors take it apart with [`Error::into_parts`].
#[derive(Debug)]
pub struct Error {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl Error {
    fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error {
            op,
            path: path.into(),
            source,
        }
    }
    /// The step that failed: `"create"`, `"write"`, `"read data for"`, `"fsync"`,
    /// `"rename into place"`, `"open directory for fsync"`, `"fsync directory"`, `"replace"`.
    pub fn op(&self) -> &'static str {
        self.op
    }
    /// The file the step was done to (the temporary file, the target or its directory).
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
    pub fn into_parts(self) -> (&'static str, PathBuf, io::Error) {
        (self.op, self.path, self.source)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.source.kind(), e)
    }
}

/// The directory `path` lives in ("." for a bare file name).
fn parent_dir(path: &Path) -> Result<&Path, Error> {
    match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(d) if path.file_name().is_some() => Ok(d),
        _ => Err(Error::new(
            "replace",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a path to a file"),
        )),
    }
}

/// Options of a durable atomic replacement; [`write_atomic`] is `AtomicFile::new().write(..)`.
///
/// The data goes to a new temporary file `.tmp-<name>.<pid>-<n>-<nanos>` next to the target
/// (created with `O_EXCL`; `.tmp-` like the image store's other temporary files, which its
/// cleanup of an unclean shutdown sweeps), which is fsynced, renamed over the target, and then
/// the directory is fsynced, unless [`AtomicFile::sync_dir`] turned that off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicFile {
    mode: u32,
    sync_dir: bool,
}

impl Default for AtomicFile {
    fn default() -> Self {
        AtomicFile::new()
    }
}

impl AtomicFile {
    /// Mode 0o666 (less the umask, like `File::create`), fsync of the file and the directory.
    pub const fn new() -> AtomicFile {
        AtomicFile {
            mode: 0o666,
            sync_dir: true,
        }
    }
    /// The new file's permission bits (the umask still applies).
    pub const fn mode(self, mode: u32) -> AtomicFile {
        AtomicFile { mode, ..self }
    }
    /// Whether to fsync the directory after the rename (default true): without it the new
    /// content is durable, but a power loss may still bring back the old name's target.
    pub const fn sync_dir(self, sync_dir: bool) -> AtomicFile {
        AtomicFile { sync_dir, ..self }
    }

    /// Replace `path` with `data`.
    pub fn write(&self, path: &Path, data: &[u8]) -> Result<(), Error> {
        self.replace(path, |f, tmp| {
            f.write_all(data).map_err(|e| Error::new("write", tmp, e))
        })
    }

    /// Replace `path` with everything `r` yields; returns the byte count. A read error fails
    /// the write (op `"read data for"` the target) and leaves the target as it was.
    pub fn write_from(&self, path: &Path, r: &mut dyn Read) -> Result<u64, Error> {
        let mut n = 0;
        self.replace(path, |f, tmp| {
            let mut src = Tracked { r, failed: false };
            n = io::copy(&mut src, f).map_err(|e| match src.failed {
                true => Error::new("read data for", path, e),
                false => Error::new("write", tmp, e),
            })?;
            Ok(())
        })?;
        Ok(n)
    }

    fn replace(
        &self,
        path: &Path,
        fill: impl FnOnce(&mut File, &Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let dir = parent_dir(path)?;
        let tmp = dir.join(unique_tmp_name(path));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.mode)
            .open(&tmp)
            .map_err(|e| Error::new("create", &tmp, e))?;
        let res = (|| {
            fill(&mut f, &tmp)?;
            f.sync_all().map_err(|e| Error::new("fsync", &tmp, e))?;
            drop(f);
            fs::rename(&tmp, path).map_err(|e| Error::new("rename into place", path, e))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
            return res;
        }
        if self.sync_dir {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Replace `path` with `data` durably: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    AtomicFile::new().write(path, data)
}

/// Replace `path` with `data` atomically but without any fsync: a crash of the process leaves
/// the old or the new file, a power loss may leave either or an empty one. For state that does
/// not outlive the machine's processes anyway (runtime state) and for callers that fsync later
/// in batches (berthd's records: fsync the file, then its directory).
///
/// The temporary file is this process's own [`nosync_tmp_path`]; one that exists already is
/// truncated and reused (its inode, mode and owner with it), which saves making an inode when
/// the caller made it ahead of time. Not for concurrent writers of one path in one process.
pub fn write_atomic_nosync(path: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = nosync_tmp_path(path)?;
    let res = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::new("create", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| Error::new("write", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::new("rename into place", path, e))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// The temporary file [`write_atomic_nosync`] writes `path` through: `.<name>.tmp<pid>` in the
/// same directory (`state` stands for a name that is not UTF-8).
pub fn nosync_tmp_path(path: &Path) -> Result<PathBuf, Error> {
    let dir = parent_dir(path)?;
    Ok(dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("state"),
        std::process::id()
    )))
}

/// fsync a directory (after a rename in it).
fn sync_dir(dir: &Path) -> Result<(), Error> {
    let d = File::open(dir).map_err(|e| Error::new("open directory for fsync", dir, e))?;
    d.sync_all()
        .map_err(|e| Error::new("fsync directory", dir, e))
}

/// `.tmp-<name>.<pid>-<counter>-<nanos>`: unique in this process by the counter, and against a
/// stale file of an earlier process with the same pid by the time. The target's name is cut to
/// 100 bytes, so the whole stays well under NAME_MAX.
fn unique_tmp_name(path: &Path) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let mut cut = name.len().min(100);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".tmp-{}.{}-{n}-{t}", &name[..cut], std::process::id())
}

/// A reader that remembers whether an error came from it (and not from the writer).
struct Tracked<'a> {
    r: &'a mut dyn Read,
    failed: bool,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let res = self.r.read(buf);
        if let Err(e) = &res {
            // io::copy retries an interrupted read itself.
            self.failed = e.kind() != io::ErrorKind::Interrupted;
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn umask() -> u32 {
        let s = fs::read_to_string("/proc/self/status").unwrap();
        let l = s.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(l["Umask:".len()..].trim(), 8).unwrap()
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        write_atomic(&p, b"old content").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        AtomicFile::new()
            .sync_dir(false)
            .write(&p, b"newer")
            .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"newer");
        write_atomic_nosync(&p, b"newest").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"newest");
        let n = AtomicFile::new()
            .write_from(&p, &mut &b"streamed"[..])
            .unwrap();
        assert_eq!(n, 8);
        assert_eq!(fs::read(&p).unwrap(), b"streamed");
        assert_eq!(names(d.path()), ["f.json"]);
    }

    #[test]
    fn the_target_is_a_new_inode() {
        // rename, not an in-place rewrite: a reader holding the old file keeps the old content.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one").unwrap();
        let held = File::open(&p).unwrap();
        let ino = held.metadata().unwrap().ino();
        write_atomic(&p, b"two").unwrap();
        assert_ne!(fs::metadata(&p).unwrap().ino(), ino);
        let mut s = String::new();
        (&held).read_to_string(&mut s).unwrap();
        assert_eq!(s, "one");
    }

    #[test]
    fn concurrent_readers_never_see_a_torn_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let a = vec![b'a'; 256 * 1024];
        let b = vec![b'b'; 256 * 1024];
        write_atomic_nosync(&p, &a).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let r = s.spawn(|| {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read(&p).unwrap();
                    assert_eq!(got.len(), a.len());
                    assert!(got.iter().all(|&c| c == got[0]), "torn read");
                    reads += 1;
                }
                reads
            });
            for i in 0..100 {
                let data = if i % 2 == 0 { &b } else { &a };
                if i % 3 == 0 {
                    write_atomic_nosync(&p, data).unwrap();
                } else {
                    AtomicFile::new().sync_dir(false).write(&p, data).unwrap();
                }
            }
            stop.store(true, Ordering::Relaxed);
            assert!(r.join().unwrap() > 0);
        });
    }

    #[test]
    fn mode_is_set_and_defaults_like_file_create() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        AtomicFile::new().mode(0o600).write(&p, b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600 & !umask());
        // the new file's mode, not the replaced one's
        let q = d.path().join("plain");
        fs::write(&q, b"").unwrap();
        fs::set_permissions(&q, fs::Permissions::from_mode(0o700)).unwrap();
        write_atomic(&q, b"y").unwrap();
        assert_eq!(mode(&q), 0o666 & !umask());
        AtomicFile::new()
            .mode(0o640)
            .write_from(&q, &mut &b"z"[..])
            .unwrap();
        assert_eq!(mode(&q), 0o640 & !umask());
    }

    #[test]
    fn a_failed_read_leaves_the_target_and_no_temp() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.tar");
        fs::write(&p, b"old").unwrap();
        let e = AtomicFile::new()
            .write_from(&p, &mut Failing(3))
            .unwrap_err();
        assert_eq!(e.op(), "read data for");
        assert_eq!(e.path(), p);
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(
            e.to_string(),
            format!("read data for {}: gone", p.display())
        );
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(d.path()), ["out.tar"]);
    }

    #[test]
    fn write_errors_are_told_from_read_errors() {
        // An interrupted read (retried by io::copy) is no read error; /dev/full fails the write.
        struct Once(u8);
        impl Read for Once {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += 1;
                match self.0 {
                    1 => Err(io::ErrorKind::Interrupted.into()),
                    2 => {
                        buf[0] = b'x';
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let mut full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut r = Once(0);
        let mut t = Tracked {
            r: &mut r,
            failed: false,
        };
        let e = io::copy(&mut t, &mut full).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
        assert!(!t.failed);
    }

    #[test]
    fn a_failed_rename_removes_the_temp() {
        let d = tempfile::tempdir().unwrap();
        // the target is a non-empty directory: rename(2) fails after the temp is written
        let p = d.path().join("taken");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("inside"), b"").unwrap();
        for e in [
            write_atomic(&p, b"x").unwrap_err(),
            AtomicFile::new()
                .write_from(&p, &mut &b"x"[..])
                .unwrap_err(),
            write_atomic_nosync(&p, b"x").unwrap_err(),
        ] {
            assert_eq!(e.op(), "rename into place", "{e}");
            assert_eq!(e.path(), p);
        }
        assert_eq!(names(d.path()), ["taken"]);
        assert!(p.join("inside").exists());
    }

    #[test]
    fn a_missing_directory_fails_at_create() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("no-such-dir").join("f");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert_eq!((e.op(), e.kind()), ("create", io::ErrorKind::NotFound));
        assert!(e.path().starts_with(d.path().join("no-such-dir")));
        let e = write_atomic_nosync(&p, b"x").unwrap_err();
        assert_eq!((e.op(), e.kind()), ("create", io::ErrorKind::NotFound));
        let e: io::Error = e.into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("create "), "{e}");
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        for p in ["/", "", "a/.."] {
            let e = write_atomic(Path::new(p), b"x").unwrap_err();
            assert_eq!((e.op(), e.kind()), ("replace", io::ErrorKind::InvalidInput));
            let e = write_atomic_nosync(Path::new(p), b"x").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(
            nosync_tmp_path(Path::new("state.json")).unwrap(),
            Path::new(".").join(format!(".state.json.tmp{}", std::process::id()))
        );
        assert_eq!(parent_dir(Path::new("out.tar")).unwrap(), Path::new("."));
    }

    #[test]
    fn nosync_reuses_a_temp_made_ahead() {
        // berthd makes the temp of a ready container's record ahead of time: the write then
        // makes no inode and the record is that file.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.v2.json");
        let tmp = nosync_tmp_path(&p).unwrap();
        assert_eq!(
            tmp,
            d.path()
                .join(format!(".config.v2.json.tmp{}", std::process::id()))
        );
        fs::write(&tmp, b"a longer stale content").unwrap();
        let ino = fs::metadata(&tmp).unwrap().ino();
        write_atomic_nosync(&p, b"{}").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        assert_eq!(fs::read(&p).unwrap(), b"{}");
        assert!(!tmp.exists());
    }

    #[test]
    fn temp_names_are_unique_hidden_and_short() {
        let p = Path::new("/x").join("é".repeat(200));
        let a = unique_tmp_name(&p);
        let b = unique_tmp_name(&p);
        assert_ne!(a, b);
        assert!(a.starts_with(".tmp-é"));
        assert!(a.len() < 160, "{}", a.len());
        assert!(unique_tmp_name(Path::new("/d/images.json")).starts_with(".tmp-images.json."));
    }
}
