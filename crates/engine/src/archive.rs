//! Filesystem views of a container: changes, export, `docker cp` (archive), RW size.
//! Every user path is resolved inside the container root (openat2 RESOLVE_IN_ROOT).
use crate::shared::Shared;
use crate::util::{internal, open_in_root, open_root};
use crate::*;
use serde_json::{json, Value};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Keeps the rootfs mounted for the duration of an operation on a stopped container.
struct Mounted<'a> {
    s: &'a Shared,
    id: String,
    temp: bool,
    pub root: PathBuf,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if self.temp {
            let running = self
                .s
                .containers
                .record(&self.id)
                .map(|r| r.running())
                .unwrap_or(false);
            if !running {
                self.s.unmount(&self.id);
            }
        }
    }
}

fn mounted<'a>(s: &'a Shared, x: &str) -> Result<Mounted<'a>> {
    let (id, _) = s.containers.find(x)?;
    let r = s.rootfs(&id);
    let was = s.is_mounted(&r);
    let root = s.ensure_mounted(&id)?;
    Ok(Mounted {
        s,
        id,
        temp: !was,
        root,
    })
}

/// Bytes in the container's writable layer.
pub(crate) fn size_rw(s: &Shared, id: &str) -> Result<u64> {
    let (dir, _) = s
        .images
        .snapshots
        .changes_dir(id)
        .map_err(|e| internal(format!("changes of {id}"), e))?;
    Ok(crate::du::disk_usage(&dir))
}

pub(crate) fn changes(e: &Engine, x: &str) -> Result<Value> {
    let s = &e.inner.0;
    let (id, _) = s.containers.find(x)?;
    let (upper, kind) = s
        .images
        .snapshots
        .changes_dir(&id)
        .map_err(|er| internal(format!("changes of {id}"), er))?;
    if kind != berth_image::snapshot::SnapshotterKind::Overlay {
        return Err(Error::Internal(
            "changes are only available with the overlay snapshotter".into(),
        ));
    }
    // Lower layers: the image's committed snapshots, top first.
    let mut lowers = Vec::new();
    let meta = s
        .images
        .snapshots
        .active_meta(&id)
        .map_err(|er| internal(format!("snapshot of {id}"), er))?;
    let mut cur = meta.parent.clone();
    while let Some(c) = cur {
        lowers.push(s.images.snapshots.committed_fs(&c));
        cur = s
            .images
            .snapshots
            .committed_meta(&c)
            .ok()
            .and_then(|m| m.parent);
    }
    let in_lower = |rel: &Path| {
        lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok())
    };
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(upper.join(&rel)) else {
            continue;
        };
        let mut ents: Vec<_> = rd.flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for ent in ents {
            let r = rel.join(ent.file_name());
            let Ok(m) = ent.path().symlink_metadata() else {
                continue;
            };
            let path = format!("/{}", r.display());
            if m.file_type().is_char_device() && m.rdev() == 0 {
                out.push(json!({"Path": path, "Kind": 2}));
                continue;
            }
            let kind = if in_lower(&r) { 0 } else { 1 };
            out.push(json!({"Path": path, "Kind": kind}));
            if m.is_dir() {
                stack.push(r);
            }
        }
    }
    out.sort_by(|a, b| a["Path"].as_str().cmp(&b["Path"].as_str()));
    Ok(Value::Array(out))
}

pub(crate) fn export(e: &Engine, x: &str, w: &mut dyn Write) -> Result<()> {
    let s = &e.inner.0;
    let m = mounted(s, x)?;
    let rec = s.containers.record(&m.id)?;
    s.images
        .export_fs(&m.root, w)
        .map_err(|er| internal(format!("export {}", m.id), er))?;
    s.event(&rec, "export", &[]);
    Ok(())
}

/// Go's os.FileMode bits (what the docker CLI decodes from the path-stat header).
fn go_mode(m: &std::fs::Metadata) -> u32 {
    let ft = m.file_type();
    let mut mode = m.mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    } else if ft.is_symlink() {
        mode |= 1 << 27;
    } else if ft.is_block_device() {
        mode |= 1 << 26;
    } else if ft.is_char_device() {
        mode |= (1 << 26) | (1 << 21);
    } else if ft.is_fifo() {
        mode |= 1 << 25;
    } else if ft.is_socket() {
        mode |= 1 << 24;
    }
    if m.mode() & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if m.mode() & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if m.mode() & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// Resolve `path` inside the container root; returns the host path of the resolved object.
fn resolve(root: &Path, path: &str, follow: bool) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(Error::BadParameter("path must not be empty".into()));
    }
    let rootfd = open_root(root)?;
    let flags = libc::O_PATH | if follow { 0 } else { libc::O_NOFOLLOW };
    let fd = open_in_root(rootfd.as_raw_fd(), Path::new(path), flags, 0).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
                Error::NotFound(format!("Could not find the file {path} in container"))
            }
            _ => internal(format!("resolve {path} in the container"), e),
        }
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| internal("readlink /proc/self/fd", e))?;
    if !real.starts_with(root) {
        return Err(Error::BadParameter(format!(
            "{path} resolves outside the container root"
        )));
    }
    Ok(real)
}

fn path_stat(root: &Path, path: &str) -> Result<(Value, PathBuf)> {
    let real = resolve(root, path, false)?;
    let m = real
        .symlink_metadata()
        .map_err(|e| internal(format!("stat {path}"), e))?;
    let link = if m.file_type().is_symlink() {
        std::fs::read_link(&real)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let mtime = berth_fsutil::rfc3339_nano(m.mtime(), m.mtime_nsec() as u32);
    Ok((
        json!({"name": name, "size": m.len(), "mode": go_mode(&m), "mtime": mtime, "linkTarget": link}),
        real,
    ))
}

pub(crate) fn stat(e: &Engine, x: &str, path: &str) -> Result<Value> {
    let s = &e.inner.0;
    let m = mounted(s, x)?;
    Ok(path_stat(&m.root, path)?.0)
}

pub(crate) fn get(e: &Engine, x: &str, path: &str, w: &mut dyn Write) -> Result<()> {
    let s = &e.inner.0;
    let m = mounted(s, x)?;
    // Docker follows a symlink in the last component only when the path ends with "/" or "/.".
    let follow = path.ends_with('/') || path.ends_with("/.");
    let real = resolve(&m.root, path, follow)?;
    let md = real
        .symlink_metadata()
        .map_err(|er| internal(format!("stat {path}"), er))?;
    let base = Path::new(path.trim_end_matches("/.").trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let ft = md.file_type();
    if ft.is_socket() {
        return Err(Error::BadParameter(format!(
            "cannot copy {path}: it is a socket, which an archive cannot hold"
        )));
    }
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let res = if md.is_dir() {
        b.append_dir_all(&base, &real)
    } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        append_special(&mut b, &base, &md)
    } else {
        b.append_path_with_name(&real, &base)
    };
    res.and_then(|_| b.finish())
        .map_err(|er| internal(format!("archive {path}"), er))?;
    Ok(())
}

/// A FIFO or device node as its own tar entry under `name` (as dockerd archives them: type,
/// mode, owner, device numbers; no data).
fn append_special<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    md: &std::fs::Metadata,
) -> std::io::Result<()> {
    let ft = md.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(md, tar::HeaderMode::Complete);
    h.set_entry_type(if ft.is_fifo() {
        tar::EntryType::Fifo
    } else if ft.is_char_device() {
        tar::EntryType::Char
    } else {
        tar::EntryType::Block
    });
    h.set_size(0);
    let dev = md.rdev();
    h.set_device_major(libc::major(dev))?;
    h.set_device_minor(libc::minor(dev))?;
    b.append_data(&mut h, name, std::io::empty())
}

pub(crate) fn put(
    e: &Engine,
    x: &str,
    path: &str,
    r: &mut dyn Read,
    _no_overwrite_dir_non_dir: bool,
    _copy_uid_gid: bool,
) -> Result<()> {
    let s = &e.inner.0;
    let m = mounted(s, x)?;
    let rec = s.containers.record(&m.id)?;
    if rec.host_config.readonly_rootfs.val() {
        return Err(Error::Forbidden(
            "container rootfs is marked read-only".into(),
        ));
    }
    let real = resolve(&m.root, path, true)?;
    if !real.is_dir() {
        return Err(Error::BadParameter(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(8);
    let opts = berth_image::layer::UnpackOptions {
        whiteouts: berth_image::layer::WhiteoutMode::Apply,
        name: format!("archive for {path}"),
    };
    let result = std::thread::scope(|sc| {
        let h = sc.spawn(move || {
            berth_image::layer::unpack_layer(berth_image::layer::ChanReader::new(rx), &real, &opts)
        });
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        break;
                    }
                }
                Err(er) => {
                    let _ = tx.send(Err(er));
                    break;
                }
            }
        }
        drop(tx);
        h.join()
    });
    match result {
        Ok(Ok(_)) => {}
        Ok(Err(er)) => {
            return Err(Error::BadParameter(format!(
                "extract archive into {path}: {er}"
            )))
        }
        Err(_) => return Err(Error::Internal("archive extraction thread panicked".into())),
    }
    Ok(())
}
