//! Tar-split: a layer tar kept as its unpacked directory plus a compact description of
//! everything else in the stream, so the store holds one copy of a layer and still gives back
//! the exact tar (same bytes, same diff_id) on save and push.
//!
//! The [`Splitter`] watches the uncompressed stream as it is unpacked and records, zstd
//! compressed, every byte that is not the content of a regular file (headers, PAX and GNU
//! extension records, padding, end-of-archive blocks, trailing bytes) and, in place of each
//! file's content, a reference: its path in the unpacked dir, its size and a CRC32. After the
//! unpack, [`verify`] reads every referenced file back: a layer whose files are not all there
//! as they were in the stream (a name written twice in the same tar, GNU sparse files...)
//! gets no description and keeps its tar blob. [`TarSplitReader`] streams the tar back,
//! checking each file's CRC and the whole stream's sha256 against the diff_id.
//!
//! Description format (inside zstd): `BERTHTS1`, then records: `R` u64-le len + raw bytes,
//! `F` u32-le path len + path + u64-le size + u32-le crc32, and `E` at the end.
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Name of the description file in a committed snapshot dir.
pub const FILE_NAME: &str = "tarsplit.zst";
const MAGIC: &[u8; 8] = b"BERTHTS1";
const BLOCK: u64 = 512;
/// Extension records (PAX, GNU long names) longer than this are not parsed (kept raw).
const MAX_EXT: u64 = 1 << 20;

/// One regular file's content, replaced by a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The entry's name as the tar gives it (resolved inside the unpacked dir).
    pub path: Vec<u8>,
    pub size: u64,
    pub crc: u32,
}

/// A finished description: the compressed bytes and the files it references.
#[derive(Debug, Clone)]
pub struct Description {
    pub data: Vec<u8>,
    pub files: Vec<FileRef>,
    /// Length of the tar stream it describes.
    pub tar_size: u64,
}

enum State {
    Header,
    /// Content of a regular file: `left` bytes, then `pad` bytes of padding.
    Content {
        left: u64,
        pad: u64,
    },
    /// An extension record being collected (`keep`: its data is parsed), then padding.
    Ext {
        kind: u8,
        left: u64,
        pad: u64,
    },
    /// GNU sparse extension headers follow (one block each).
    SparseExt {
        data: u64,
    },
    /// Bytes kept as they are.
    Raw {
        left: u64,
    },
    /// After the first zero block: the rest is kept as it is.
    Trailing,
}

/// Records the description of a tar stream fed to it in order (see the module docs).
pub struct Splitter {
    enc: zstd::stream::write::Encoder<'static, Vec<u8>>,
    state: State,
    block: Vec<u8>,
    raw: Vec<u8>,
    ext: Vec<u8>,
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
    cur: Option<(Vec<u8>, u64, flate2::Crc)>,
    files: Vec<FileRef>,
    total: u64,
    failed: Option<String>,
}

fn round_pad(n: u64) -> u64 {
    (BLOCK - n % BLOCK) % BLOCK
}

fn truncate_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// A header's size field: octal, or base-256 when the top bit of the first byte is set.
fn parse_size(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(truncate_nul(f)).ok()?.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The name of a header as the tar crate reads it (ustar prefix joined, else the name).
fn header_path(h: &[u8]) -> Vec<u8> {
    let name = truncate_nul(&h[0..100]);
    if &h[257..263] == b"ustar\0" && &h[263..265] == b"00" {
        let prefix = truncate_nul(&h[345..500]);
        if !prefix.is_empty() {
            let mut v = prefix.to_vec();
            v.push(b'/');
            v.extend_from_slice(name);
            return v;
        }
    }
    name.to_vec()
}

/// `path` and `size` of a PAX extended header's records.
fn parse_pax(data: &[u8]) -> (Option<Vec<u8>>, Option<u64>) {
    let (mut path, mut size) = (None, None);
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&c| c == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&c| c == b'=') {
            match &rec[..eq] {
                b"path" => path = Some(rec[eq + 1..].to_vec()),
                b"size" => {
                    size = std::str::from_utf8(&rec[eq + 1..])
                        .ok()
                        .and_then(|s| s.parse().ok())
                }
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    (path, size)
}

impl Splitter {
    pub fn new() -> Result<Splitter> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3)
            .map_err(|e| Error::io("zstd init", "tar-split", e))?;
        enc.write_all(MAGIC)
            .map_err(|e| Error::io("zstd", "tar-split", e))?;
        Ok(Splitter {
            enc,
            state: State::Header,
            block: Vec::with_capacity(BLOCK as usize),
            raw: Vec::new(),
            ext: Vec::new(),
            long_name: None,
            pax_path: None,
            pax_size: None,
            cur: None,
            files: Vec::new(),
            total: 0,
            failed: None,
        })
    }

    fn flush_raw(&mut self) {
        if self.raw.is_empty() || self.failed.is_some() {
            return;
        }
        let mut hdr = [0u8; 9];
        hdr[0] = b'R';
        hdr[1..].copy_from_slice(&(self.raw.len() as u64).to_le_bytes());
        if let Err(e) = self
            .enc
            .write_all(&hdr)
            .and_then(|()| self.enc.write_all(&self.raw))
        {
            self.failed = Some(format!("compressing: {e}"));
        }
        self.raw.clear();
    }

    fn keep(&mut self, b: &[u8]) {
        self.raw.extend_from_slice(b);
        if self.raw.len() >= 256 * 1024 {
            self.flush_raw();
        }
    }

    /// Feed the next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() && self.failed.is_none() {
            match &mut self.state {
                State::Trailing => {
                    self.keep(data);
                    return;
                }
                State::Raw { left } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::Header;
                    }
                    self.keep(&data[..n]);
                    data = &data[n..];
                }
                State::Content { left, pad } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let (l, p) = (*left, *pad);
                    if let Some((_, _, crc)) = self.cur.as_mut() {
                        crc.update(&data[..n]);
                    }
                    data = &data[n..];
                    if l == 0 {
                        if let Some((path, size, crc)) = self.cur.take() {
                            self.files.push(FileRef {
                                path: path.clone(),
                                size,
                                crc: crc.sum(),
                            });
                            self.write_file(&path, size, crc.sum());
                        }
                        self.state = if p == 0 {
                            State::Header
                        } else {
                            State::Raw { left: p }
                        };
                    }
                }
                State::Ext { kind, left, pad } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let (k, l, p) = (*kind, *left, *pad);
                    self.ext.extend_from_slice(&data[..n]);
                    self.keep(&data[..n]);
                    data = &data[n..];
                    if l == 0 {
                        let ext = std::mem::take(&mut self.ext);
                        match k {
                            b'x' => {
                                let (path, size) = parse_pax(&ext);
                                self.pax_path = path.or(self.pax_path.take());
                                self.pax_size = size.or(self.pax_size);
                            }
                            b'L' => {
                                let v = ext.strip_suffix(b"\0").unwrap_or(&ext).to_vec();
                                self.long_name = Some(v);
                            }
                            _ => {}
                        }
                        self.state = if p == 0 {
                            State::Header
                        } else {
                            State::Raw { left: p }
                        };
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    let n = (BLOCK as usize - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.block.len() == BLOCK as usize {
                        let b = std::mem::take(&mut self.block);
                        self.keep(&b);
                        self.block_done(&b);
                        self.block = b;
                        self.block.clear();
                    }
                }
            }
        }
    }

    fn write_file(&mut self, path: &[u8], size: u64, crc: u32) {
        self.flush_raw();
        let mut rec = Vec::with_capacity(path.len() + 17);
        rec.push(b'F');
        rec.extend_from_slice(&(path.len() as u32).to_le_bytes());
        rec.extend_from_slice(path);
        rec.extend_from_slice(&size.to_le_bytes());
        rec.extend_from_slice(&crc.to_le_bytes());
        if let Err(e) = self.enc.write_all(&rec) {
            self.failed = Some(format!("compressing: {e}"));
        }
    }

    /// A whole header block was read (and kept).
    fn block_done(&mut self, b: &[u8]) {
        if let State::SparseExt { data } = self.state {
            // byte 504: more sparse extension headers follow
            self.state = if b[504] != 0 {
                State::SparseExt { data }
            } else {
                Self::raw_then_header(data + round_pad(data))
            };
            return;
        }
        if b.iter().all(|&c| c == 0) {
            self.state = State::Trailing;
            return;
        }
        let kind = b[156];
        let Some(hsize) = parse_size(&b[124..136]) else {
            self.failed = Some("bad size field in a tar header".into());
            return;
        };
        match kind {
            b'x' | b'g' | b'L' | b'K' => {
                if hsize > MAX_EXT {
                    self.failed = Some("extension record too long".into());
                    return;
                }
                self.ext.clear();
                self.state = if hsize == 0 {
                    State::Header
                } else {
                    State::Ext {
                        kind,
                        left: hsize,
                        pad: round_pad(hsize),
                    }
                };
                return;
            }
            _ => {}
        }
        let size = self.pax_size.take().unwrap_or(hsize);
        let long = self.long_name.take();
        let pax_path = self.pax_path.take();
        match kind {
            b'0' | 0 | b'7' if size > 0 => {
                let path = long.or(pax_path).unwrap_or_else(|| header_path(b));
                self.cur = Some((path, size, flate2::Crc::new()));
                self.state = State::Content {
                    left: size,
                    pad: round_pad(size),
                };
            }
            b'S' => {
                // GNU sparse: kept as it is, with its extension headers (byte 482)
                let data = hsize;
                self.state = if b[482] != 0 {
                    State::SparseExt { data }
                } else {
                    Self::raw_then_header(data + round_pad(data))
                };
            }
            _ => self.state = Self::raw_then_header(size + round_pad(size)),
        }
    }

    fn raw_then_header(n: u64) -> State {
        if n == 0 {
            State::Header
        } else {
            State::Raw { left: n }
        }
    }

    /// The description of everything fed, or why there is none.
    pub fn finish(mut self) -> std::result::Result<Description, String> {
        if let Some(f) = self.failed.take() {
            return Err(f);
        }
        match self.state {
            State::Header if self.block.is_empty() => {}
            State::Trailing => {}
            _ => return Err("the tar stream ends inside an entry".into()),
        }
        self.flush_raw();
        if let Some(f) = self.failed.take() {
            return Err(f);
        }
        self.enc
            .write_all(b"E")
            .map_err(|e| format!("compressing: {e}"))?;
        let data = self.enc.finish().map_err(|e| format!("compressing: {e}"))?;
        Ok(Description {
            data,
            files: self.files,
            tar_size: self.total,
        })
    }
}

/// A reader that feeds what passes through to a [`Splitter`].
pub struct SplitTee<R> {
    pub inner: R,
    pub split: Option<Splitter>,
}
impl<R: Read> Read for SplitTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(s) = self.split.as_mut() {
            s.feed(&buf[..n]);
        }
        Ok(n)
    }
}

fn open_root(dir: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open layer dir", dir, e))
}

/// Open a referenced file as the unpacker made it: resolved inside `root`, not a symlink.
fn open_in(root: &OwnedFd, path: &[u8]) -> std::result::Result<File, String> {
    let name = String::from_utf8_lossy(path);
    let comps = crate::layer::clean_path(&name).map_err(|r| format!("{name}: {r}"))?;
    if comps.is_empty() {
        return Err(format!("{name}: names the layer root"));
    }
    let rel = comps.join("/");
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root, rel.as_str(), how).map_err(|e| format!("{rel}: {e}"))?;
    let f = File::from(fd);
    let md = f.metadata().map_err(|e| format!("{rel}: {e}"))?;
    if !md.is_file() {
        return Err(format!("{rel}: not a regular file"));
    }
    Ok(f)
}

/// Check that every file of `d` is in `dir` with the content the stream had. `Err` says which
/// one is not (the layer then keeps its tar); `Ok` gives each file's ctime, for [`precheck`].
pub fn verify(dir: &Path, d: &Description) -> Result<std::result::Result<Vec<u8>, String>> {
    use std::os::unix::fs::MetadataExt;
    let mut ctimes = Vec::with_capacity(d.files.len() * 16);
    let root = open_root(dir)?;
    let mut buf = vec![0u8; 256 * 1024];
    for f in &d.files {
        let mut file = match open_in(&root, &f.path) {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        let md = file.metadata().ctx("stat", dir)?;
        let len = md.len();
        if len != f.size {
            return Ok(Err(format!(
                "{}: {len} bytes unpacked, {} in the tar",
                String::from_utf8_lossy(&f.path),
                f.size
            )));
        }
        let mut crc = flate2::Crc::new();
        let shown = dir.join(String::from_utf8_lossy(&f.path).trim_start_matches('/'));
        loop {
            let n = file.read(&mut buf).ctx("read", &shown)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
        }
        if crc.sum() != f.crc {
            return Ok(Err(format!(
                "{}: content differs from the tar's (written twice?)",
                String::from_utf8_lossy(&f.path)
            )));
        }
        ctimes.extend_from_slice(&md.ctime().to_le_bytes());
        ctimes.extend_from_slice(&md.ctime_nsec().to_le_bytes());
    }
    let z = zstd::stream::encode_all(&ctimes[..], 3).ctx("compress", dir)?;
    Ok(Ok(z))
}

/// Name of the file holding the referenced files' ctimes at unpack (next to [`FILE_NAME`]).
pub const STAT_NAME: &str = "tarsplit.ctime.zst";

/// Before a tar is rebuilt and streamed (once bytes are sent, an error can only cut the
/// stream): every referenced file must be there with its size, and one whose ctime changed
/// since the unpack must still have its content (CRC). The error names the layer and file.
pub fn precheck(desc: &Path, stat: &Path, dir: &Path, diff_id: &Digest) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let ctimes = match std::fs::read(stat) {
        Ok(z) => zstd::stream::decode_all(&z[..]).ctx("decompress", stat)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("read", stat, e)),
    };
    let bad = |what: String| {
        Error::invalid(
            format!("layer {diff_id} (unpacked in {})", dir.display()),
            format!("{what}: the unpacked layer was modified, it cannot be saved or pushed"),
        )
    };
    let f = File::open(desc).ctx("open tar-split", desc)?;
    let mut dec = zstd::stream::read::Decoder::new(f).ctx("zstd init", desc)?;
    let mut m = [0u8; 8];
    dec.read_exact(&mut m).ctx("read tar-split", desc)?;
    let root = open_root(dir)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut i = 0usize;
    loop {
        let mut tag = [0u8; 1];
        dec.read_exact(&mut tag).ctx("read tar-split", desc)?;
        match tag[0] {
            b'R' => {
                let mut n = [0u8; 8];
                dec.read_exact(&mut n).ctx("read tar-split", desc)?;
                let n = u64::from_le_bytes(n);
                let skipped = std::io::copy(&mut (&mut dec).take(n), &mut std::io::sink())
                    .ctx("read tar-split", desc)?;
                if skipped != n {
                    return Err(Error::invalid(desc.display().to_string(), "truncated"));
                }
            }
            b'F' => {
                let mut n = [0u8; 4];
                dec.read_exact(&mut n).ctx("read tar-split", desc)?;
                let mut path = vec![0u8; (u32::from_le_bytes(n) as usize).min(1 << 20)];
                dec.read_exact(&mut path).ctx("read tar-split", desc)?;
                let mut sc = [0u8; 12];
                dec.read_exact(&mut sc).ctx("read tar-split", desc)?;
                let size = u64::from_le_bytes(sc[..8].try_into().unwrap_or_default());
                let want = u32::from_le_bytes(sc[8..].try_into().unwrap_or_default());
                let name = String::from_utf8_lossy(&path).into_owned();
                let mut file = open_in(&root, &path).map_err(bad)?;
                let md = file.metadata().ctx("stat", dir.join(&name))?;
                if md.len() != size {
                    return Err(bad(format!(
                        "{name} is {} bytes, {size} recorded",
                        md.len()
                    )));
                }
                let rec = ctimes.get(i * 16..i * 16 + 16);
                let same = rec.is_some_and(|r| {
                    r[..8] == md.ctime().to_le_bytes() && r[8..] == md.ctime_nsec().to_le_bytes()
                });
                if !same {
                    let mut crc = flate2::Crc::new();
                    loop {
                        let n = file.read(&mut buf).ctx("read", dir.join(&name))?;
                        if n == 0 {
                            break;
                        }
                        crc.update(&buf[..n]);
                    }
                    if crc.sum() != want {
                        return Err(bad(format!("{name} was modified (content differs)")));
                    }
                }
                i += 1;
            }
            b'E' => return Ok(()),
            _ => return Err(Error::invalid(desc.display().to_string(), "corrupt")),
        }
    }
}

enum Cur {
    Raw(u64),
    File {
        f: File,
        path: Vec<u8>,
        left: u64,
        size: u64,
        want: u32,
        crc: flate2::Crc,
    },
    Next,
    End,
}

/// The tar stream of a layer rebuilt from its description and unpacked dir, verified as it
/// streams: each file's CRC, the length, and the sha256 against `diff_id` at the end. Errors
/// name the layer and the file at fault.
pub struct TarSplitReader {
    desc: zstd::stream::read::Decoder<'static, BufReader<File>>,
    root: OwnedFd,
    dir: PathBuf,
    diff_id: Digest,
    hasher: Sha256,
    cur: Cur,
}

impl TarSplitReader {
    /// Open the description `desc` of layer `diff_id` unpacked in `dir`.
    pub fn open(desc: &Path, dir: &Path, diff_id: &Digest) -> Result<TarSplitReader> {
        let f = File::open(desc).ctx("open tar-split", desc)?;
        let mut dec = zstd::stream::read::Decoder::new(f).ctx("zstd init", desc)?;
        let mut m = [0u8; 8];
        dec.read_exact(&mut m).ctx("read tar-split", desc)?;
        if &m != MAGIC {
            return Err(Error::invalid(
                desc.display().to_string(),
                "not a berth tar-split description",
            ));
        }
        Ok(TarSplitReader {
            desc: dec,
            root: open_root(dir)?,
            dir: dir.to_path_buf(),
            diff_id: diff_id.clone(),
            hasher: Sha256::new(),
            cur: Cur::Next,
        })
    }

    fn bad(&self, what: String) -> std::io::Error {
        std::io::Error::other(format!(
            "layer {} (unpacked in {}): {what}",
            self.diff_id,
            self.dir.display()
        ))
    }

    fn next_record(&mut self) -> std::io::Result<()> {
        let mut tag = [0u8; 1];
        self.desc.read_exact(&mut tag)?;
        self.cur = match tag[0] {
            b'R' => {
                let mut n = [0u8; 8];
                self.desc.read_exact(&mut n)?;
                Cur::Raw(u64::from_le_bytes(n))
            }
            b'F' => {
                let mut n = [0u8; 4];
                self.desc.read_exact(&mut n)?;
                let len = u32::from_le_bytes(n) as usize;
                if len > 1 << 20 {
                    return Err(self.bad("corrupt tar-split description".into()));
                }
                let mut path = vec![0u8; len];
                self.desc.read_exact(&mut path)?;
                let mut s = [0u8; 8];
                self.desc.read_exact(&mut s)?;
                let mut c = [0u8; 4];
                self.desc.read_exact(&mut c)?;
                let f = open_in(&self.root, &path).map_err(|e| {
                    self.bad(format!("a file of the layer is gone or changed: {e}"))
                })?;
                let size = u64::from_le_bytes(s);
                Cur::File {
                    f,
                    path,
                    left: size,
                    size,
                    want: u32::from_le_bytes(c),
                    crc: flate2::Crc::new(),
                }
            }
            b'E' => {
                let got = Digest::from_hasher(std::mem::take(&mut self.hasher));
                if got != self.diff_id {
                    return Err(self.bad(format!(
                        "the rebuilt tar has digest {got}, not its diff_id: the unpacked layer was modified"
                    )));
                }
                Cur::End
            }
            _ => return Err(self.bad("corrupt tar-split description".into())),
        };
        Ok(())
    }
}

impl Read for TarSplitReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = match &mut self.cur {
                Cur::End => return Ok(0),
                Cur::Next => {
                    self.next_record()?;
                    continue;
                }
                Cur::Raw(0) => {
                    self.cur = Cur::Next;
                    continue;
                }
                Cur::Raw(left) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = self.desc.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(self.bad("tar-split description is truncated".into()));
                    }
                    *left -= n as u64;
                    n
                }
                Cur::File {
                    f,
                    path,
                    left,
                    size,
                    want,
                    crc,
                } => {
                    if *left == 0 {
                        let mut extra = [0u8; 1];
                        let grown = f.read(&mut extra)? != 0;
                        if grown || crc.sum() != *want {
                            let msg = format!(
                                "{} was modified since the layer was unpacked ({} bytes recorded{})",
                                String::from_utf8_lossy(path),
                                size,
                                if grown { ", file is longer" } else { ", content differs" }
                            );
                            return Err(self.bad(msg));
                        }
                        self.cur = Cur::Next;
                        continue;
                    }
                    let k = (*left).min(buf.len() as u64) as usize;
                    let n = f.read(&mut buf[..k])?;
                    if n == 0 {
                        let msg = format!(
                            "{} was modified since the layer was unpacked (shorter than the {} bytes recorded)",
                            String::from_utf8_lossy(path),
                            size
                        );
                        return Err(self.bad(msg));
                    }
                    crc.update(&buf[..n]);
                    *left -= n as u64;
                    n
                }
            };
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "d/", std::io::empty()).unwrap();
        let long = format!("d/{}", "n".repeat(150));
        for (p, data) in [("d/a", &b"hello"[..]), (long.as_str(), &[7u8; 1500][..])] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, p, data).unwrap();
        }
        b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v"[..])])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o600);
        h.set_size(3);
        b.append_data(&mut h, "d/x", &b"abc"[..]).unwrap();
        let mut v = b.into_inner().unwrap();
        v.extend_from_slice(b"trailing junk");
        v
    }

    #[test]
    fn split_verify_and_rebuild_byte_identical() {
        let tar = sample_tar();
        let td = tempfile::tempdir().unwrap();
        let dir = td.path().join("fs");
        std::fs::create_dir(&dir).unwrap();
        tar::Archive::new(&tar[..]).unpack(&dir).unwrap();
        let mut s = Splitter::new().unwrap();
        for c in tar.chunks(100) {
            s.feed(c);
        }
        let d = s.finish().unwrap();
        assert_eq!(d.files.len(), 3);
        assert_eq!(d.tar_size, tar.len() as u64);
        assert!(
            d.data.len() < tar.len() / 2,
            "{} of {}",
            d.data.len(),
            tar.len()
        );
        let ctimes = verify(&dir, &d).unwrap().unwrap();
        let desc = td.path().join(FILE_NAME);
        std::fs::write(&desc, &d.data).unwrap();
        let stat = td.path().join(STAT_NAME);
        std::fs::write(&stat, &ctimes).unwrap();
        let id = Digest::of(&tar);
        precheck(&desc, &stat, &dir, &id).unwrap();
        let mut out = Vec::new();
        TarSplitReader::open(&desc, &dir, &id)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar);
        // a changed file is named
        std::fs::write(dir.join("d/a"), b"jello").unwrap();
        let err = TarSplitReader::open(&desc, &dir, &id)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("d/a was modified"), "{err}");
        assert!(err.to_string().contains(&id.to_string()), "{err}");
        let err = precheck(&desc, &stat, &dir, &id).unwrap_err().to_string();
        assert!(
            err.contains("d/a was modified") && err.contains(&id.to_string()),
            "{err}"
        );
        assert!(verify(&dir, &d).unwrap().is_err());
    }

    #[test]
    fn truncated_stream_has_no_description() {
        let tar = sample_tar();
        let mut s = Splitter::new().unwrap();
        s.feed(&tar[..700]);
        assert!(s.finish().is_err());
    }
}
