//! Disk quotas (`--storage-opt size=`, a local volume's `--opt size=`) as project quotas, as
//! dockerd's overlay2 does: a directory gets a project id with the inherit flag
//! (`FS_IOC_FSSETXATTR`; what is made below it is charged to that project) and the project a
//! block limit (`quotactl(Q_XSETQLIM, PRJQUOTA)` on the root's block device, through a device
//! node berthd makes under `<root>/quota/`). xfs mounted with `prjquota`/`pquota` and ext4
//! with the `project` feature and `prjquota` take the same calls. Support is found out once,
//! at start-up, for the root's filesystem; a limit asked for on a host that cannot enforce it
//! is a 400 at create, never accepted silently. Project ids are persisted in
//! `<root>/quota/projects.json` (key -> id and the directory); an entry whose directory is
//! gone is dropped at start-up, and removal frees the id (its limit set back to none).
use crate::util::internal;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PRJQUOTA: i32 = 2;
const Q_XSETQLIM: i32 = (b'X' as i32) << 8 | 4;
const Q_XGETQSTAT: i32 = (b'X' as i32) << 8 | 5;
const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;
const FS_DQUOT_VERSION: i8 = 1;
const FS_PROJ_QUOTA: i8 = 2;
const FS_DQ_BSOFT: u16 = 1 << 2;
const FS_DQ_BHARD: u16 = 1 << 3;
const FS_XFLAG_PROJINHERIT: u32 = 0x200;
/// `_IOR('X', 31, struct fsxattr)` and `_IOW('X', 32, struct fsxattr)`.
const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801c_581f;
const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401c_5820;
/// The first project id berth hands out (below: left to the host's own projects).
const FIRST_ID: u32 = 100_000;

fn qcmd(cmd: i32, typ: i32) -> i32 {
    (cmd << 8) | (typ & 0xff)
}

/// `struct fsxattr`.
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

/// `struct fs_disk_quota`.
#[repr(C)]
#[derive(Default)]
struct FsDiskQuota {
    version: i8,
    flags: i8,
    fieldmask: u16,
    id: u32,
    blk_hardlimit: u64,
    blk_softlimit: u64,
    ino_hardlimit: u64,
    ino_softlimit: u64,
    bcount: u64,
    icount: u64,
    itimer: i32,
    btimer: i32,
    iwarns: u16,
    bwarns: u16,
    itimer_hi: i8,
    btimer_hi: i8,
    rtbtimer_hi: i8,
    padding2: i8,
    rtb_hardlimit: u64,
    rtb_softlimit: u64,
    rtbcount: u64,
    rtbtimer: i32,
    rtbwarns: u16,
    padding3: i16,
    padding4: [u8; 8],
}

#[derive(Default, Serialize, Deserialize)]
struct Project {
    id: u32,
    dir: PathBuf,
}

/// The quotas owner.
pub(crate) struct Quotas {
    /// The block device node quotactl is given; `None`: no project quotas on the root.
    dev: Option<CString>,
    /// The root's filesystem (named in errors).
    fs: String,
    file: PathBuf,
    projects: Mutex<BTreeMap<String, Project>>,
}

impl Quotas {
    /// Finds out whether `root`'s filesystem enforces project quotas.
    pub(crate) fn open(root: &Path) -> Quotas {
        let dir = root.join("quota");
        let fs = fs_name(root);
        let dev = match probe(root, &dir) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::info!("no disk quotas (--storage-opt size): {e}");
                None
            }
        };
        let file = dir.join("projects.json");
        let mut projects: BTreeMap<String, Project> = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        projects.retain(|_, p| p.dir.exists());
        Quotas {
            dev,
            fs,
            file,
            projects: Mutex::new(projects),
        }
    }

    pub(crate) fn supported(&self) -> bool {
        self.dev.is_some()
    }

    /// The 400 for a limit this host cannot enforce.
    pub(crate) fn unsupported(&self, what: &str) -> Error {
        Error::BadParameter(format!(
            "{what} is supported only for overlay over xfs with 'pquota' mount option, or ext4 with project quotas ('prjquota'); berth's root is on {} without them",
            self.fs
        ))
    }

    /// Limits what `dirs` (and all made below them) take to `bytes`, as project `key`.
    pub(crate) fn limit(&self, key: &str, dirs: &[&Path], bytes: u64) -> Result<()> {
        let Some(dev) = &self.dev else {
            return Err(self.unsupported("a disk quota"));
        };
        let mut p = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        let id = match p.get(key) {
            Some(pr) => pr.id,
            None => (FIRST_ID..)
                .find(|i| p.values().all(|pr| pr.id != *i))
                .unwrap_or(FIRST_ID),
        };
        let first = dirs.first().map(|d| d.to_path_buf()).unwrap_or_default();
        p.insert(key.to_string(), Project { id, dir: first });
        self.save(&p)?;
        for d in dirs {
            set_project(d, id)?;
        }
        set_limit(dev, id, bytes)
    }

    /// Frees `key`'s project id (its limit set back to none).
    pub(crate) fn release(&self, key: &str) {
        let Some(dev) = &self.dev else { return };
        let mut p = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        let Some(pr) = p.remove(key) else { return };
        if let Err(e) = set_limit(dev, pr.id, 0) {
            tracing::warn!("clear the quota of {key}: {e}");
        }
        if let Err(e) = self.save(&p) {
            tracing::warn!("{e}");
        }
    }

    fn save(&self, p: &BTreeMap<String, Project>) -> Result<()> {
        let b = serde_json::to_vec(p).map_err(|e| internal("encode quota projects", e))?;
        berth_fsutil::write_atomic(&self.file, &b)
            .map_err(|e| internal(format!("write {}", self.file.display()), e))
    }
}

/// The root's filesystem type, by its statfs magic.
fn fs_name(root: &Path) -> String {
    match nix::sys::statfs::statfs(root) {
        Ok(st) => match st.filesystem_type().0 as u64 {
            0x5846_5342 => "xfs".into(),
            0xEF53 => "ext4".into(),
            0x0102_1994 => "tmpfs".into(),
            0x9123_683E => "btrfs".into(),
            0x794C_7630 => "overlay".into(),
            m => format!("a filesystem of type {m:#x}"),
        },
        Err(e) => format!("an unknown filesystem ({e})"),
    }
}

/// The device node for quotactl, once project quotas are seen accounted and enforced.
fn probe(root: &Path, dir: &Path) -> Result<CString> {
    std::fs::create_dir_all(dir).map_err(|e| internal(format!("create {}", dir.display()), e))?;
    // (The device node is the root filesystem's: nothing below the roots for host users.)
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| internal(format!("chmod {}", dir.display()), e))?;
    let st =
        std::fs::metadata(root).map_err(|e| internal(format!("stat {}", root.display()), e))?;
    let node = dir.join("backingFsBlockDev");
    let _ = std::fs::remove_file(&node);
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        st.dev(),
    )
    .map_err(|e| internal(format!("mknod {}", node.display()), e))?;
    let dev =
        CString::new(node.as_os_str().as_bytes()).map_err(|e| internal("device node path", e))?;
    let mut buf = [0u64; 32];
    // SAFETY: dev is NUL-terminated; buf (256 bytes) is larger than struct fs_quota_stat.
    let r = unsafe {
        libc::quotactl(
            qcmd(Q_XGETQSTAT, PRJQUOTA),
            dev.as_ptr(),
            0,
            buf.as_mut_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(internal(
            "quotactl Q_XGETQSTAT (project quotas)",
            std::io::Error::last_os_error(),
        ));
    }
    // (qs_flags: the u16 at offset 2, after qs_version and its padding.)
    let flags = (buf[0] >> 16) as u16;
    if flags & FS_QUOTA_PDQ_ACCT == 0 || flags & FS_QUOTA_PDQ_ENFD == 0 {
        return Err(Error::internal_msg(
            "project quotas are not accounted and enforced on the root's filesystem".to_string(),
        ));
    }
    Ok(dev)
}

/// Gives `dir` project `id`, inherited by what is made below it.
fn set_project(dir: &Path, id: u32) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|e| internal(format!("open {}", dir.display()), e))?;
    let mut x = FsXattr::default();
    // SAFETY: f is an open fd; x is a valid struct fsxattr for the ioctl to fill.
    if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FSGETXATTR, &mut x) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(internal(format!("FS_IOC_FSGETXATTR {}", dir.display()), e));
    }
    x.projid = id;
    x.xflags |= FS_XFLAG_PROJINHERIT;
    // SAFETY: as above; the kernel only reads x.
    if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FSSETXATTR, &x) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(internal(format!("FS_IOC_FSSETXATTR {}", dir.display()), e));
    }
    Ok(())
}

/// Project `id`'s block limit (hard and soft) to `bytes` (0: none).
fn set_limit(dev: &CString, id: u32, bytes: u64) -> Result<()> {
    let mut q = FsDiskQuota {
        version: FS_DQUOT_VERSION,
        flags: FS_PROJ_QUOTA,
        fieldmask: FS_DQ_BSOFT | FS_DQ_BHARD,
        id,
        blk_hardlimit: bytes.div_ceil(512),
        blk_softlimit: bytes.div_ceil(512),
        ..Default::default()
    };
    // SAFETY: dev is NUL-terminated; q is a valid struct fs_disk_quota the kernel reads.
    let r = unsafe {
        libc::quotactl(
            qcmd(Q_XSETQLIM, PRJQUOTA),
            dev.as_ptr(),
            id as i32,
            (&mut q as *mut FsDiskQuota).cast(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(internal(format!("quotactl Q_XSETQLIM project {id}"), e));
    }
    Ok(())
}

/// `HostConfig.StorageOpt` as dockerd's overlay2 takes it: only `size`, a byte count.
pub(crate) fn storage_size(opts: &BTreeMap<String, String>) -> Result<Option<u64>> {
    let mut size = None;
    for (k, v) in opts {
        match k.to_ascii_lowercase().as_str() {
            "size" => {
                size = Some(crate::prepare::parse_size(v).ok_or_else(|| {
                    Error::BadParameter(format!("invalid storage option size: {v:?}"))
                })?)
            }
            _ => return Err(Error::BadParameter(format!("Unknown option {k}"))),
        }
    }
    Ok(size.filter(|n| *n > 0))
}

/// Limits container `id`'s read-write layer (its overlay upper and work dirs) to `bytes`.
pub(crate) fn limit_rw(s: &crate::shared::Shared, id: &str, bytes: u64) -> Result<()> {
    let (upper, kind) = s
        .images
        .snapshots
        .changes_dir(id)
        .map_err(|e| internal(format!("the read-write layer of {id}"), e))?;
    if kind != berth_image::snapshot::SnapshotterKind::Overlay {
        return Err(s.quota.unsupported("--storage-opt"));
    }
    let work = upper.with_file_name("work");
    s.quota.limit(&format!("c:{id}"), &[&upper, &work], bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<FsXattr>(), 28);
        assert_eq!(std::mem::size_of::<FsDiskQuota>(), 112);
    }

    #[test]
    fn storage_opt_takes_size_only() {
        let m = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert_eq!(storage_size(&m("size", "20M")).unwrap(), Some(20 << 20));
        assert_eq!(
            storage_size(&m("foo", "1")).unwrap_err().to_string(),
            "Unknown option foo"
        );
        assert!(storage_size(&m("size", "x")).is_err());
    }
}
