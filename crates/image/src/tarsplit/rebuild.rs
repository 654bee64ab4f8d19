//! The tar stream of a layer rebuilt from its description and unpacked dir.
use super::{open_in, open_root, MAGIC};
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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
