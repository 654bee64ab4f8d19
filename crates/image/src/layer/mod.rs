//! Layer tars: unpack (gzip/zstd/plain, detected by magic) with whiteout handling and
//! containment of every path inside the target directory, and the reverse: a directory
//! (an overlay upper dir or a whole rootfs) back to a layer tar.
//!
//! Safety model: every entry's parent directory is opened with
//! `openat2(root, parent, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)`, so
//! `..`, absolute symlinks and symlink chains resolve inside the root; the final component is
//! then created/changed with `*at` calls that never follow it (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
//! fchmod on an fd opened O_NOFOLLOW). Paths containing `..` are refused outright.
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoCtx, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

mod diff;
mod pack;
mod unpack;

pub use diff::{diff_into, diff_to_store, diff_trees};
pub use pack::{pack_dir, pack_into, pack_to_store, HashingWriter, PackMode, PackedLayer};
use unpack::Unpacker;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Detect by magic bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Wrap a reader in the right decompressor, chosen by the first bytes of the stream.
pub fn decompress<'a, R: Read + Send + 'a>(r: R) -> Result<Box<dyn Read + Send + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().ctx("read layer header", "layer")?.to_vec();
    Ok(match Compression::detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(br)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(br).ctx("zstd init", "layer")?)
        }
        Compression::None => Box::new(br),
    })
}

/// How whiteouts are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Keep them as overlayfs whiteouts (0/0 char devices, `trusted.overlay.opaque=y`):
    /// for a layer dir that will be an overlay lower.
    Overlay,
    /// Apply them: delete the named files (for the copy snapshotter / flattening).
    Apply,
}

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub whiteouts: WhiteoutMode,
    /// Name of the layer, for error messages.
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of file content written.
    pub size: u64,
    pub entries: u64,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// The stream's tar-split description (see [`crate::tarsplit`]), or why there is none.
    pub split: std::result::Result<crate::tarsplit::Description, String>,
}

/// A reader over chunks sent through a channel (the consuming end of a 2-thread pipeline).
pub struct ChanReader {
    pub(crate) rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    pub(crate) cur: Vec<u8>,
    pub(crate) pos: usize,
}
impl ChanReader {
    /// Read the chunks `rx` delivers, in order; an `Err` chunk is returned to the reader, and a
    /// closed channel is end of file.
    pub fn new(rx: mpsc::Receiver<std::io::Result<Vec<u8>>>) -> ChanReader {
        ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}
impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Unpack a (possibly compressed) layer stream into `dest` (which must exist).
/// Decompression and hashing run on a second thread, unpacking on this one.
pub fn unpack_layer<R: Read + Send>(
    input: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats> {
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(16);
    std::thread::scope(|s| {
        let producer = s.spawn(|| -> Result<(Digest, u64, SplitResult)> {
            let dec = decompress(input)?;
            let mut h = HashingReader::new(crate::tarsplit::SplitTee {
                inner: dec,
                split: Some(crate::tarsplit::Splitter::new()?),
            });
            let mut sent_ok = true;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled(opts.name.clone()));
                }
                let mut buf = vec![0u8; 256 * 1024];
                let mut filled = 0;
                while filled < buf.len() {
                    match h.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let msg = e.to_string();
                            let _ = tx.send(Err(e));
                            return Err(Error::invalid(
                                opts.name.clone(),
                                format!("reading layer stream: {msg}"),
                            ));
                        }
                    }
                }
                if filled == 0 {
                    break;
                }
                buf.truncate(filled);
                if sent_ok && tx.send(Ok(buf)).is_err() {
                    // the tar reader is done (end-of-archive); keep hashing the rest
                    sent_ok = false;
                }
            }
            drop(tx);
            let split = finish_split(h.inner.split.take());
            let (d, n) = h.finish();
            Ok((d, n, split))
        });
        let mut u = Unpacker::new(dest, opts)?;
        let res = u.run(ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        });
        if res.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        // dropping the receiver happens when `run` consumed it
        let prod = producer
            .join()
            .map_err(|_| Error::invalid(opts.name.clone(), "decompressor thread panicked"))?;
        res?;
        let (diff_id, tar_size, split) = prod?;
        u.finish_dirs();
        Ok(UnpackStats {
            diff_id,
            size: u.size,
            entries: u.entries,
            tar_size,
            split,
        })
    })
}

/// Unpack an uncompressed tar stream on this thread without hashing it: for callers that
/// hash the very same bytes themselves. The returned `diff_id` is a placeholder the caller
/// must replace with its own digest.
pub(crate) fn unpack_unhashed<R: Read>(
    input: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats> {
    let mut counted = HashingCount {
        inner: crate::tarsplit::SplitTee {
            inner: input,
            split: Some(crate::tarsplit::Splitter::new()?),
        },
        count: 0,
    };
    let mut u = Unpacker::new(dest, opts)?;
    u.run(&mut counted)?;
    // drain the end-of-archive padding so the count is the stream length
    std::io::copy(&mut counted, &mut std::io::sink()).ctx("read layer", dest)?;
    u.finish_dirs();
    Ok(UnpackStats {
        diff_id: Digest::of(b""),
        size: u.size,
        entries: u.entries,
        tar_size: counted.count,
        split: finish_split(counted.inner.split.take()),
    })
}

type SplitResult = std::result::Result<crate::tarsplit::Description, String>;

fn finish_split(s: Option<crate::tarsplit::Splitter>) -> SplitResult {
    s.ok_or_else(|| "no splitter".to_string())
        .and_then(|s| s.finish())
}

struct HashingCount<R> {
    inner: R,
    count: u64,
}
impl<R: Read> Read for HashingCount<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Clean a tar path: strip leading `/` and `./`, drop `.` components, refuse `..`.
/// Returns the components (empty = the root itself).
pub fn clean_path(name: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path contains '..'"),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Remove `name` in `dir` recursively without following symlinks. Missing is fine.
pub fn remove_all_at<Fd: AsFd>(dir: &Fd, name: &str) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let names: Vec<String> = d
        .iter()
        .filter_map(|x| x.ok())
        .map(|x| String::from_utf8_lossy(x.file_name().to_bytes()).into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    let sub = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for n in names {
        remove_all_at(&sub, &n)?;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}
