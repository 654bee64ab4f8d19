//! The splitter: records a tar stream's description as it passes (see the parent module).
use super::{Description, FileRef, BLOCK, MAGIC, MAX_EXT};
use crate::error::{Error, Result};
use std::io::{Read, Write};

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
                Self::raw_then_header(data)
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
                    Self::raw_then_header(data)
                };
            }
            _ => self.state = Self::raw_then_header(size),
        }
    }

    /// `size` bytes of data and their padding kept as they are (a size past any real stream
    /// saturates: the stream then ends inside the entry, and there is no description).
    fn raw_then_header(size: u64) -> State {
        let n = size.saturating_add(round_pad(size));
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
