//! Tree-to-tree diff as a layer tar (the copy snapshotter's commit).
use super::pack::append_one;
use super::WHITEOUT_PREFIX;
use super::{HashingWriter, PackMode, PackedLayer};
use crate::error::{Error, IoCtx, Result};
use crate::sys;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Write the changes from tree `old` to tree `new` as a layer tar (for the copy snapshotter,
/// whose container dir is a full copy): entries added or changed in `new` (by type, mode,
/// owner, size, mtime, link target, xattrs), and `.wh.NAME` for entries gone from `new`.
pub fn diff_trees<W: Write>(old: &Path, new: &Path, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    diff_walk(&mut b, old, new, "", &mut links)?;
    b.into_inner().ctx("finish tar", new)
}

fn sorted_names(d: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = match std::fs::read_dir(d) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .ctx("read dir", d)?,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Vec::new()
        }
        Err(e) => return Err(Error::io("read dir", d, e)),
    };
    v.sort();
    Ok(v)
}

fn xattrs_of(p: &Path) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let b = p.as_os_str().as_bytes();
    let mut v: Vec<_> = sys::llistxattr(b)
        .unwrap_or_default()
        .into_iter()
        .map(|k| {
            let val = sys::lgetxattr(b, &k).ok().flatten();
            (k, val)
        })
        .collect();
    v.sort();
    v
}

fn same_entry(op: &Path, om: &std::fs::Metadata, np: &Path, nm: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    if om.mode() != nm.mode()
        || om.uid() != nm.uid()
        || om.gid() != nm.gid()
        || om.rdev() != nm.rdev()
    {
        return false;
    }
    if !nm.is_dir()
        && (om.len() != nm.len() || om.mtime() != nm.mtime() || om.mtime_nsec() != nm.mtime_nsec())
    {
        return false;
    }
    if nm.file_type().is_symlink() && std::fs::read_link(op).ok() != std::fs::read_link(np).ok() {
        return false;
    }
    xattrs_of(op) == xattrs_of(np)
}

fn diff_walk<W: Write>(
    b: &mut tar::Builder<W>,
    old: &Path,
    new: &Path,
    rel: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let join = |n: &str| {
        if rel.is_empty() {
            n.to_string()
        } else {
            format!("{rel}/{n}")
        }
    };
    let od = if rel.is_empty() {
        old.to_path_buf()
    } else {
        old.join(rel)
    };
    let nd = if rel.is_empty() {
        new.to_path_buf()
    } else {
        new.join(rel)
    };
    let on = sorted_names(&od)?;
    let nn = sorted_names(&nd)?;
    let nset: HashSet<&String> = nn.iter().collect();
    for n in &on {
        if !nset.contains(n) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o600);
            b.append_data(
                &mut h,
                join(&format!("{WHITEOUT_PREFIX}{n}")),
                std::io::empty(),
            )
            .ctx("write tar", &nd)?;
        }
    }
    let oset: HashSet<&String> = on.iter().collect();
    for n in &nn {
        let crel = join(n);
        let np = new.join(&crel);
        let nm = std::fs::symlink_metadata(&np).ctx("lstat", &np)?;
        let old_md = if oset.contains(n) {
            std::fs::symlink_metadata(old.join(&crel)).ok()
        } else {
            None
        };
        match old_md {
            Some(om) if om.is_dir() && nm.is_dir() => {
                if !same_entry(&old.join(&crel), &om, &np, &nm) {
                    append_one(b, new, &crel, &nm, PackMode::Plain, links, false)?;
                }
                diff_walk(b, old, new, &crel, links)?;
            }
            Some(om)
                if om.file_type() == nm.file_type()
                    && same_entry(&old.join(&crel), &om, &np, &nm) => {}
            _ => append_one(b, new, &crel, &nm, PackMode::Plain, links, true)?,
        }
    }
    Ok(())
}

/// Pack the changes from `old` to `new` into a gzip layer blob in the content store.
pub fn diff_to_store(
    old: &Path,
    new: &Path,
    store: &crate::store::ContentStore,
) -> Result<PackedLayer> {
    diff_into(old, new, store.writer(None, None)?)
}

/// [`diff_to_store`] into a given blob writer (e.g. one of a [`crate::lease::Lease`]).
pub fn diff_into(old: &Path, new: &Path, w: crate::store::BlobWriter) -> Result<PackedLayer> {
    let gz = flate2::write::GzEncoder::new(HashingWriter::new(w), flate2::Compression::fast());
    let tarw = diff_trees(old, new, HashingWriter::new(gz))?;
    let (gz, diff_id, _) = tarw.finish();
    let hw = gz.finish().ctx("finish gzip", new)?;
    let (w, _blob, size) = hw.finish();
    let blob = w.commit()?;
    Ok(PackedLayer {
        diff_id,
        blob,
        size,
        media_type: crate::model::MEDIA_OCI_LAYER_GZIP.to_string(),
    })
}
