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
mod rebuild;
mod split;
pub use rebuild::TarSplitReader;
pub use split::{SplitTee, Splitter};

use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Name of the description file in a committed snapshot dir.
pub const FILE_NAME: &str = "tarsplit.zst";
pub(crate) const MAGIC: &[u8; 8] = b"BERTHTS1";
pub(crate) const BLOCK: u64 = 512;
/// Extension records (PAX, GNU long names) longer than this are not parsed (kept raw).
pub(crate) const MAX_EXT: u64 = 1 << 20;

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

pub(crate) fn open_root(dir: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open layer dir", dir, e))
}

/// Open a referenced file as the unpacker made it: resolved inside `root`, not a symlink.
pub(crate) fn open_in(root: &OwnedFd, path: &[u8]) -> std::result::Result<File, String> {
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
    fn a_huge_size_field_is_no_panic_and_no_description() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        // base-256: u64::MAX
        h.as_gnu_mut().unwrap().size = [0x80, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255];
        h.set_cksum();
        let mut s = Splitter::new().unwrap();
        s.feed(h.as_bytes());
        s.feed(&[0u8; 1024]);
        assert!(s.finish().is_err());
    }

    #[test]
    fn truncated_stream_has_no_description() {
        let tar = sample_tar();
        let mut s = Splitter::new().unwrap();
        s.feed(&tar[..700]);
        assert!(s.finish().is_err());
    }
}
