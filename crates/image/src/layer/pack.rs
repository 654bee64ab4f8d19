//! Directory -> layer tar (sorted, deterministic), and into a gzip blob of the content store.
use super::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use crate::sys;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

// ---------------------------------------------------------------------------------------
// Directory -> tar

/// What to do with overlayfs whiteouts when packing a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackMode {
    /// An overlay upper dir: 0/0 char devices -> `.wh.NAME`, opaque dirs -> `.wh..wh..opq`.
    OverlayDiff,
    /// A plain tree (export): everything as-is.
    Plain,
}

/// Write `dir` as a tar stream (sorted, deterministic, PAX xattrs, hard links preserved).
pub fn pack_dir<W: Write>(dir: &Path, mode: PackMode, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(&mut b, dir, "", mode, &mut links)?;
    b.into_inner().ctx("finish tar", dir)
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    mode: PackMode,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let d = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(&d)
        .ctx("read dir", &d)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .ctx("read dir", &d)?;
    names.sort();
    for n in names {
        let name = n.to_string_lossy().into_owned();
        let crel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let p = root.join(&crel);
        let md = std::fs::symlink_metadata(&p).ctx("lstat", &p)?;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let ft = md.file_type();
        if mode == PackMode::OverlayDiff && ft.is_char_device() && md.rdev() == 0 {
            let wh = if rel.is_empty() {
                format!("{WHITEOUT_PREFIX}{name}")
            } else {
                format!("{rel}/{WHITEOUT_PREFIX}{name}")
            };
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o600);
            h.set_mtime(md.mtime().max(0) as u64);
            b.append_data(&mut h, &wh, std::io::empty())
                .ctx("write tar", &p)?;
            continue;
        }
        append_one(b, root, &crel, &md, mode, links, true)?;
    }
    Ok(())
}

/// Append one entry (a dir's own header; its children too when `recurse`).
pub(super) fn append_one<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    crel: &str,
    md: &std::fs::Metadata,
    mode: PackMode,
    links: &mut HashMap<(u64, u64), String>,
    recurse: bool,
) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let crel = crel.to_string();
    let p = root.join(&crel);
    let ft = md.file_type();
    let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut opaque = false;
    for k in
        sys::llistxattr(p.as_os_str().as_bytes()).map_err(|e| Error::sys("llistxattr", &p, e))?
    {
        if k.starts_with(b"trusted.overlay.") {
            if k == b"trusted.overlay.opaque" {
                opaque = sys::lgetxattr(p.as_os_str().as_bytes(), &k)
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(b"y");
            }
            continue;
        }
        if let Some(v) = sys::lgetxattr(p.as_os_str().as_bytes(), &k)
            .map_err(|e| Error::sys("lgetxattr", &p, e))?
        {
            xattrs.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k)), v));
        }
    }
    if !xattrs.is_empty() {
        b.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .ctx("write tar", &p)?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid() as u64);
    h.set_gid(md.gid() as u64);
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, format!("{crel}/"), std::io::empty())
            .ctx("write tar", &p)?;
        if opaque && mode == PackMode::OverlayDiff {
            let mut oh = tar::Header::new_gnu();
            oh.set_entry_type(tar::EntryType::Regular);
            oh.set_size(0);
            oh.set_mode(0o600);
            b.append_data(
                &mut oh,
                format!("{crel}/{OPAQUE_WHITEOUT}"),
                std::io::empty(),
            )
            .ctx("write tar", &p)?;
        }
        if recurse {
            walk(b, root, &crel, mode, links)?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(&p).ctx("readlink", &p)?;
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, &crel, &target).ctx("write tar", &p)?;
    } else if ft.is_file() {
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, &crel, first).ctx("write tar", &p)?;
                return Ok(());
            }
            links.insert((md.dev(), md.ino()), crel.clone());
        }
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(md.len());
        let f = File::open(&p).ctx("open", &p)?;
        b.append_data(&mut h, &crel, f).ctx("write tar", &p)?;
    } else {
        let (t, dev) = if ft.is_char_device() {
            (tar::EntryType::Char, md.rdev())
        } else if ft.is_block_device() {
            (tar::EntryType::Block, md.rdev())
        } else if ft.is_fifo() {
            (tar::EntryType::Fifo, 0)
        } else {
            return Ok(()); // sockets are not archived
        };
        h.set_entry_type(t);
        h.set_device_major(nix::sys::stat::major(dev) as u32)
            .ctx("tar header", &p)?;
        h.set_device_minor(nix::sys::stat::minor(dev) as u32)
            .ctx("tar header", &p)?;
        b.append_data(&mut h, &crel, std::io::empty())
            .ctx("write tar", &p)?;
    }
    Ok(())
}

/// A writer that hashes what passes through.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: sha2::Sha256,
    pub count: u64,
}
impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        use sha2::Digest as _;
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}
impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Result of turning a directory into a stored layer blob.
#[derive(Debug, Clone)]
pub struct PackedLayer {
    pub diff_id: Digest,
    pub blob: Digest,
    pub size: u64,
    pub media_type: String,
}

/// Pack `dir` into a gzip-compressed layer blob in the content store.
pub fn pack_to_store(
    dir: &Path,
    mode: PackMode,
    store: &crate::store::ContentStore,
) -> Result<PackedLayer> {
    pack_into(dir, mode, store.writer(None, None)?)
}

/// [`pack_to_store`] into a given blob writer (e.g. one of a [`crate::lease::Lease`]).
pub fn pack_into(dir: &Path, mode: PackMode, w: crate::store::BlobWriter) -> Result<PackedLayer> {
    let gz = flate2::write::GzEncoder::new(HashingWriter::new(w), flate2::Compression::fast());
    let tarw = HashingWriter::new(gz);
    let tarw = pack_dir(dir, mode, tarw)?;
    let (gz, diff_id, _) = tarw.finish();
    let hw = gz.finish().ctx("finish gzip", dir)?;
    let (w, _blob, size) = hw.finish();
    let blob = w.commit()?;
    Ok(PackedLayer {
        diff_id,
        blob,
        size,
        media_type: crate::model::MEDIA_OCI_LAYER_GZIP.to_string(),
    })
}
