//! The per-image mountpoint layer (Docker's "init layer"): empty files and directories that
//! every container mounts over (`/etc/hosts`, `/proc`, ...) but the image lacks. Without it the
//! runtime creates them in each container's writable layer at start, which copies up their
//! parent directory and allocates inodes on every run; with it they are found in a shared,
//! read-only lower layer and nothing is written.
//!
//! The layer holds only what the image's merged view is missing, under real directories (a
//! symlink or file on the way is left to the runtime, which resolves it inside the rootfs).
//! Parent directories it must hold (`/etc` for `/etc/hosts`) copy the mode, owner and times of
//! the image's, so the merged view shows the image's own metadata.
use crate::error::{Error, IoCtx, Result};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// A path (relative to the rootfs) the runtime mounts over in every container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountTarget {
    pub path: &'static str,
    pub dir: bool,
}

/// Short, stable name of a target list (part of the layer's directory name).
pub fn list_id(targets: &[MountTarget]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for t in targets {
        h.update(t.path.as_bytes());
        h.update(if t.dir { &b"/\n"[..] } else { &b"\n"[..] });
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

enum Need {
    /// Exists (or cannot be made here): nothing to do.
    Nothing,
    /// Missing: create it, and the missing parents from this component index on; the
    /// parents before that exist as real directories in the view.
    Create { missing_parents_from: usize },
}

fn assess(view: &Path, comps: &[&std::ffi::OsStr]) -> Result<Need> {
    let mut cur = view.to_path_buf();
    let last = comps.len() - 1;
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(_) if i == last => return Ok(Need::Nothing),
            Ok(m) if m.file_type().is_dir() => {}
            // A symlink or file on the way: the runtime resolves it inside the rootfs.
            Ok(_) => return Ok(Need::Nothing),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Need::Create {
                    missing_parents_from: i,
                });
            }
            Err(e) => return Err(Error::io("inspect", &cur, e)),
        }
    }
    Ok(Need::Nothing)
}

/// Fill `out` (an empty directory) with the targets `view` (the image's merged tree) lacks.
/// Returns whether anything was created.
pub fn build(view: &Path, out: &Path, targets: &[MountTarget]) -> Result<bool> {
    // Directories copied from the view get their times set last (creating entries in them
    // changes their mtime).
    let mut copied: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    let mut made: Vec<PathBuf> = Vec::new();
    let mut any = false;
    for t in targets {
        let rel = Path::new(t.path);
        let comps: Vec<&std::ffi::OsStr> = rel
            .components()
            .map(|c| match c {
                Component::Normal(n) => Ok(n),
                _ => Err(Error::invalid(
                    t.path.to_string(),
                    "mount target must be a plain relative path",
                )),
            })
            .collect::<Result<_>>()?;
        if comps.is_empty() {
            continue;
        }
        let Need::Create {
            missing_parents_from,
        } = assess(view, &comps)?
        else {
            continue;
        };
        any = true;
        let mut cur = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let dst = out.join(&cur);
            let is_target = i == comps.len() - 1;
            if fs::symlink_metadata(&dst).is_ok() {
                continue;
            }
            if is_target && !t.dir {
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&dst)
                    .ctx("create", &dst)?;
                made.push(dst);
                continue;
            }
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&dst)
                .ctx("create", &dst)?;
            // mkdir's mode is filtered by the umask
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).ctx("chmod", &dst)?;
            if !is_target && i < missing_parents_from {
                let src = view.join(&cur);
                let m = fs::symlink_metadata(&src).ctx("inspect", &src)?;
                std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid())).ctx("chown", &dst)?;
                fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode() & 0o7777))
                    .ctx("chmod", &dst)?;
                copied.push((dst.clone(), m));
            }
            made.push(dst);
        }
    }
    for (p, m) in copied.iter().rev() {
        let times = fs::FileTimes::new()
            .set_accessed(m.accessed().ctx("atime", p)?)
            .set_modified(m.modified().ctx("mtime", p)?);
        fs::File::open(p)
            .and_then(|f| f.set_times(times))
            .ctx("set times", p)?;
    }
    // Durable before the layer is renamed into place: it is used for every later container.
    for p in made.iter().rev() {
        fs::File::open(p)
            .and_then(|f| f.sync_all())
            .ctx("fsync", p)?;
    }
    fs::File::open(out)
        .and_then(|f| f.sync_all())
        .ctx("fsync", out)?;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: [MountTarget; 4] = [
        MountTarget {
            path: "etc/hosts",
            dir: false,
        },
        MountTarget {
            path: "etc/hostname",
            dir: false,
        },
        MountTarget {
            path: "proc",
            dir: true,
        },
        MountTarget {
            path: "run/x/y",
            dir: false,
        },
    ];

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-mp-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn creates_only_what_the_image_lacks_with_the_images_parent_metadata() {
        let d = tmp("lacks");
        let (view, out) = (d.join("view"), d.join("out"));
        fs::create_dir_all(view.join("etc")).unwrap();
        fs::create_dir_all(&out).unwrap();
        fs::write(view.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::set_permissions(view.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::lchown(view.join("etc"), Some(12), Some(34)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::open(view.join("etc"))
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
            .unwrap();
        assert!(build(&view, &out, &T).unwrap());
        // present in the image: not shadowed
        assert!(!out.join("etc/hosts").exists());
        let f = fs::symlink_metadata(out.join("etc/hostname")).unwrap();
        assert!(f.is_file() && f.len() == 0 && f.mode() & 0o7777 == 0o644);
        assert!(fs::symlink_metadata(out.join("proc")).unwrap().is_dir());
        assert!(out.join("run/x/y").is_file());
        let e = fs::symlink_metadata(out.join("etc")).unwrap();
        assert_eq!((e.mode() & 0o7777, e.uid(), e.gid()), (0o750, 12, 34));
        assert_eq!(e.modified().unwrap(), old);
        // a missing parent is made plain
        assert_eq!(
            fs::symlink_metadata(out.join("run")).unwrap().mode() & 0o7777,
            0o755
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn leaves_symlinked_and_present_paths_to_the_runtime() {
        let d = tmp("links");
        let (view, out) = (d.join("view"), d.join("out"));
        fs::create_dir_all(view.join("real")).unwrap();
        fs::create_dir_all(view.join("proc")).unwrap();
        fs::create_dir_all(&out).unwrap();
        // /etc is a symlink (to somewhere the runtime resolves inside the rootfs)
        std::os::unix::fs::symlink("/real", view.join("etc")).unwrap();
        // /run is a file
        fs::write(view.join("run"), "").unwrap();
        assert!(!build(&view, &out, &T).unwrap());
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_targets_that_are_not_plain_relative_paths() {
        let d = tmp("bad");
        fs::create_dir_all(d.join("out")).unwrap();
        let bad = [MountTarget {
            path: "../etc/hosts",
            dir: false,
        }];
        let e = build(&d, &d.join("out"), &bad).unwrap_err().to_string();
        assert!(e.contains("../etc/hosts"), "{e}");
        let abs = [MountTarget {
            path: "/etc/hosts",
            dir: false,
        }];
        assert!(build(&d, &d.join("out"), &abs).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn list_id_depends_on_the_list() {
        assert_ne!(list_id(&T), list_id(&T[..3]));
        assert_eq!(list_id(&T), list_id(&T));
    }
}
