//! Snapshotters: committed (read-only) layer snapshots keyed by chain ID, shared between
//! images, and active (per-container) snapshots on top of them.
//!
//! Layout under `<root>`:
//! - `snapshots/<chain-hex>/fs` (+ `meta.json`): one dir per layer chain, unpacked once.
//! - `active/<key>/{upper,work}` (overlay) or `active/<key>/fs` (copy) + `meta.json`.
//! - `init/<chain-hex>-<list>`: the mountpoints an image lacks (see [`mountpoints`]), made once
//!   per image and target list, the top lower layer of its containers.
pub mod copy;
pub mod mountpoints;
pub mod overlay;

pub use mountpoints::MountTarget;

use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use crate::layer::{UnpackStats, WhiteoutMode};
use crate::store::{atomic_write, tmp_name};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotterKind {
    Overlay,
    Copy,
}

impl std::fmt::Display for SnapshotterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotterKind::Overlay => "overlayfs",
            SnapshotterKind::Copy => "copy",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommittedMeta {
    pub chain_id: Digest,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    /// Bytes of file content in this layer.
    pub size: u64,
    /// Length of the uncompressed layer tar.
    #[serde(default)]
    pub tar_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveMeta {
    pub key: String,
    pub parent: Option<Digest>,
    pub kind: SnapshotterKind,
    /// Name of the mountpoint layer under `init/` (top lower layer), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
}

/// What an active snapshot is made on: the committed chain and the mountpoint layer. Two
/// snapshots with the same base mount the same lower layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBase {
    pub parent: Option<Digest>,
    pub init: Option<String>,
}

/// A ready active snapshot (`active/.tmp-pool-*`) already mounted, by [`Snapshotter::mount_ready`],
/// for containers of `base`: a prepare of that base takes it and the rootfs mount is done.
#[derive(Debug)]
pub struct ReadyMount {
    pub dir: PathBuf,
    pub base: SnapshotBase,
}

/// How to mount an active snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum MountSpec {
    Overlay(overlay::OverlayMount),
    Bind { source: PathBuf },
}

impl MountSpec {
    pub fn mount(&self, target: &Path) -> Result<()> {
        match self {
            MountSpec::Overlay(o) => o.mount(target),
            MountSpec::Bind { source } => nix::mount::mount(
                Some(source.as_path()),
                target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| Error::sys("bind mount", target, e)),
        }
    }
}

pub struct Snapshotter {
    root: PathBuf,
    kind: SnapshotterKind,
    journal: std::sync::Arc<std::sync::Mutex<()>>,
    /// Ready empty active snapshots (overlay): `active/.tmp-pool-*` with `upper/`, `work/` and
    /// an empty `meta.json`, made ahead by [`Snapshotter::fill_pool`] so that a prepare makes
    /// no inode (each costs 0.1-0.25 ms on a busy ext4). Removed at open like every `.tmp-`.
    pool: std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

/// Committed snapshots are not fsynced file by file (as docker does not); instead each is
/// listed in `snapshots/.unsynced` (fsynced) before it becomes visible, and the list is
/// cleared after a `syncfs`. After a crash, listed snapshots may be torn: `open` removes
/// them, and they are unpacked again from their (fsynced, verified) blobs when needed.
const JOURNAL: &str = ".unsynced";

impl Snapshotter {
    /// Open; `force` picks a kind, otherwise overlay is probed on the root's filesystem and
    /// copy is used when it does not work (overlay on overlay, no privileges...).
    pub fn open(root: &Path, force: Option<SnapshotterKind>) -> Result<Snapshotter> {
        for d in ["snapshots", "active", "init"] {
            fs::create_dir_all(root.join(d)).ctx("create dir", root.join(d))?;
        }
        let kind = match force {
            Some(k) => k,
            None => {
                if probe_overlay(&root.join("snapshots")) {
                    SnapshotterKind::Overlay
                } else {
                    tracing::warn!(
                        "overlayfs not usable under {}; using the copy snapshotter",
                        root.display()
                    );
                    SnapshotterKind::Copy
                }
            }
        };
        let s = Snapshotter {
            root: root.to_path_buf(),
            kind,
            journal: Default::default(),
            pool: Default::default(),
        };
        s.clean_temps();
        s.recover()?;
        Ok(s)
    }
    /// Another handle on the same snapshotter (shares the journal lock), e.g. for syncing
    /// on a background thread.
    pub fn handle(&self) -> Snapshotter {
        Snapshotter {
            root: self.root.clone(),
            kind: self.kind,
            journal: self.journal.clone(),
            pool: self.pool.clone(),
        }
    }

    /// Make ready empty active snapshots until `n` wait in the pool (overlay only).
    pub fn fill_pool(&self, n: usize) -> Result<()> {
        if self.kind != SnapshotterKind::Overlay {
            return Ok(());
        }
        while self.pool.lock().map(|p| p.len()).unwrap_or(n) < n {
            let tmp = self.root.join("active").join(tmp_name(".tmp-pool-"));
            let made = (|| {
                fs::create_dir(&tmp).ctx("create", &tmp)?;
                for d in ["upper", "work"] {
                    fs::create_dir(tmp.join(d)).ctx("create", tmp.join(d))?;
                }
                fs::File::create(tmp.join("meta.json")).ctx("create", tmp.join("meta.json"))?;
                Ok(())
            })();
            if let Err(e) = made {
                let _ = remove_tree(&tmp);
                return Err(e);
            }
            match self.pool.lock() {
                Ok(mut p) => p.push(tmp),
                Err(_) => {
                    let _ = remove_tree(&tmp);
                    return Err(Error::Conflict("snapshot pool lock poisoned".into()));
                }
            }
        }
        Ok(())
    }

    /// Remove the pool's ready snapshots (at shutdown).
    pub fn drain_pool(&self) {
        let taken: Vec<PathBuf> = self
            .pool
            .lock()
            .map(|mut p| p.drain(..).collect())
            .unwrap_or_default();
        for t in taken {
            let _ = remove_tree(&t);
        }
    }

    /// Whether a prepare on `parent` with `targets` finds everything made (no layer to unpack,
    /// the mountpoint layer there): then it only renames and writes small files.
    pub fn ready_for(&self, parent: Option<&Digest>, targets: &[MountTarget]) -> bool {
        let Some(p) = parent else { return true };
        if !self.has(p) {
            return false;
        }
        if targets.is_empty() || self.kind != SnapshotterKind::Overlay {
            return true;
        }
        self.root.join("init").join(init_name(p, targets)).is_dir()
    }

    /// Mount an empty snapshot of `base` at `target` ahead of its container (overlay only):
    /// a later prepare of the same base passed the result uses it as is.
    pub fn mount_ready(&self, base: &SnapshotBase, target: &Path) -> Result<ReadyMount> {
        if self.kind != SnapshotterKind::Overlay {
            return Err(Error::invalid("ready mount", "overlay snapshots only"));
        }
        if let Some(p) = &base.parent {
            if !self.has(p) {
                return Err(Error::SnapshotNotFound(p.to_string()));
            }
        }
        self.fill_pool(1)?;
        let dir = self
            .pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .ok_or_else(|| Error::Conflict("snapshot pool empty".into()))?;
        let meta = ActiveMeta {
            key: String::new(),
            parent: base.parent.clone(),
            kind: self.kind,
            init: base.init.clone(),
        };
        if let Err(e) = self.mount_spec(&meta, &dir).and_then(|m| m.mount(target)) {
            let _ = remove_tree(&dir);
            return Err(e);
        }
        Ok(ReadyMount {
            dir,
            base: base.clone(),
        })
    }

    /// Let go of a ready mount nobody took: `target` (where it is mounted) is unmounted.
    pub fn discard_ready(&self, r: ReadyMount, target: &Path) {
        if crate::sys::is_mount_root(target) && overlay::unmount(target).is_err() {
            let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = remove_tree(&r.dir);
    }

    /// A ready snapshot dir from the pool whose meta.json now holds `data` (fsynced with
    /// `durable`), or None when the pool is empty.
    fn take_pooled(&self, data: &[u8], durable: bool) -> Option<PathBuf> {
        let tmp = self.pool.lock().ok()?.pop()?;
        match write_meta(&tmp, data, durable) {
            Ok(()) => Some(tmp),
            Err(e) => {
                tracing::warn!("pooled snapshot {}: {e}", tmp.display());
                let _ = remove_tree(&tmp);
                None
            }
        }
    }

    fn journal_path(&self) -> PathBuf {
        self.root.join("snapshots").join(JOURNAL)
    }

    fn journal_add(&self, chain: &Digest) -> Result<()> {
        use std::io::Write;
        let _g = self
            .journal
            .lock()
            .map_err(|_| Error::Conflict("snapshot journal lock poisoned".into()))?;
        let p = self.journal_path();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .ctx("open", &p)?;
        writeln!(f, "{}", chain.hex()).ctx("write", &p)?;
        f.sync_all().ctx("fsync", &p)
    }

    fn journal_read(&self) -> Vec<Digest> {
        fs::read_to_string(self.journal_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Digest::from_hex(l.trim()).ok())
            .collect()
    }

    /// Flush committed snapshots to disk (`syncfs`) and clear the journal of what was flushed.
    pub fn sync(&self) -> Result<()> {
        let listed = {
            let _g = self
                .journal
                .lock()
                .map_err(|_| Error::Conflict("snapshot journal lock poisoned".into()))?;
            self.journal_read()
        };
        if listed.is_empty() {
            return Ok(());
        }
        let dir = self.root.join("snapshots");
        let f = fs::File::open(&dir).ctx("open", &dir)?;
        use std::os::fd::AsRawFd;
        // SAFETY: f is an open fd for the duration of the call; syncfs has no other preconditions.
        let r = unsafe { libc::syncfs(f.as_raw_fd()) };
        if r != 0 {
            return Err(Error::io("syncfs", &dir, std::io::Error::last_os_error()));
        }
        let _g = self
            .journal
            .lock()
            .map_err(|_| Error::Conflict("snapshot journal lock poisoned".into()))?;
        let rest: Vec<String> = self
            .journal_read()
            .into_iter()
            .filter(|d| !listed.contains(d))
            .map(|d| format!("{}\n", d.hex()))
            .collect();
        atomic_write(&self.journal_path(), rest.concat().as_bytes())
    }

    /// After a crash: drop snapshots that may not have reached the disk whole.
    fn recover(&self) -> Result<()> {
        let listed = self.journal_read();
        for d in &listed {
            if self.committed_dir(d).exists() {
                tracing::warn!("removing snapshot {d}: not synced before an unclean shutdown; it will be unpacked again");
                self.remove_committed(d)?;
            }
        }
        if !listed.is_empty() {
            atomic_write(&self.journal_path(), b"")?;
        }
        Ok(())
    }

    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }
    /// How layers must be unpacked for this snapshotter.
    pub fn whiteout_mode(&self) -> WhiteoutMode {
        match self.kind {
            SnapshotterKind::Overlay => WhiteoutMode::Overlay,
            SnapshotterKind::Copy => WhiteoutMode::Apply,
        }
    }
    fn committed_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain.hex())
    }
    fn active_dir(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty()
            || key.len() > 128
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            || key.starts_with('.')
        {
            return Err(Error::invalid(
                format!("snapshot key {key:?}"),
                "must be 1-128 chars of [A-Za-z0-9_.-], not starting with '.'",
            ));
        }
        Ok(self.root.join("active").join(key))
    }
    pub fn has(&self, chain: &Digest) -> bool {
        self.committed_dir(chain).join("meta.json").is_file()
    }
    pub fn committed_fs(&self, chain: &Digest) -> PathBuf {
        self.committed_dir(chain).join("fs")
    }
    /// The tar-split description of committed snapshot `chain` (may not exist).
    pub fn split_path(&self, chain: &Digest) -> PathBuf {
        self.committed_dir(chain).join(crate::tarsplit::FILE_NAME)
    }
    /// Whether `chain` can give back its layer tar without the blob: it has a description and
    /// is on disk for good (not listed as unsynced; `unsynced` from [`Snapshotter::unsynced`]).
    pub fn has_durable_split(
        &self,
        chain: &Digest,
        unsynced: &std::collections::HashSet<Digest>,
    ) -> bool {
        !unsynced.contains(chain) && self.has(chain) && self.split_path(chain).is_file()
    }
    /// Committed snapshots not yet flushed to disk (see [`JOURNAL`]).
    pub fn unsynced(&self) -> std::collections::HashSet<Digest> {
        let _g = self.journal.lock();
        self.journal_read().into_iter().collect()
    }
    pub fn committed_meta(&self, chain: &Digest) -> Result<CommittedMeta> {
        read_meta(&self.committed_dir(chain).join("meta.json"), || {
            Error::SnapshotNotFound(chain.to_string())
        })
    }

    /// Create committed snapshot `chain` (on `parent`) by running `unpack` into a fresh dir;
    /// the snapshot becomes visible (renamed into place) only if `unpack` succeeds and the
    /// resulting diff_id equals `diff_id`. Concurrent commits of the same chain are safe.
    pub fn commit_layer(
        &self,
        chain: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        unpack: impl FnOnce(&Path, WhiteoutMode) -> Result<UnpackStats>,
    ) -> Result<CommittedMeta> {
        if self.has(chain) {
            return self.committed_meta(chain);
        }
        if let Some(p) = parent {
            // overlay layers are independent dirs (may be unpacked in parallel); a copy
            // snapshot starts from its parent's full tree
            if self.kind == SnapshotterKind::Copy && !self.has(p) {
                return Err(Error::SnapshotNotFound(format!("parent {p} of {chain}")));
            }
        }
        let tmp = self.root.join("snapshots").join(tmp_name(".tmp-"));
        let fsdir = tmp.join("fs");
        fs::create_dir_all(&fsdir).ctx("create snapshot dir", &fsdir)?;
        let res = (|| {
            if self.kind == SnapshotterKind::Copy {
                if let Some(p) = parent {
                    copy::copy_tree(&self.committed_fs(p), &fsdir)?;
                }
            }
            let st = unpack(&fsdir, self.whiteout_mode())?;
            if &st.diff_id != diff_id {
                return Err(Error::DigestMismatch {
                    what: format!("layer {chain} (uncompressed)"),
                    expected: diff_id.to_string(),
                    actual: st.diff_id.to_string(),
                });
            }
            let meta = CommittedMeta {
                chain_id: chain.clone(),
                parent: parent.cloned(),
                diff_id: diff_id.clone(),
                size: st.size,
                tar_size: st.tar_size,
            };
            write_split(&tmp, chain, &st)?;
            atomic_write(
                &tmp.join("meta.json"),
                &serde_json::to_vec(&meta).map_err(|e| Error::json("snapshot meta", e))?,
            )?;
            let dst = self.committed_dir(chain);
            self.journal_add(chain)?;
            match fs::rename(&tmp, &dst) {
                Ok(()) => {}
                Err(e) if self.has(chain) => {
                    tracing::debug!("snapshot {chain} committed concurrently ({e})");
                    let _ = remove_tree(&tmp);
                }
                Err(e) => return Err(Error::io("rename snapshot into place", dst, e)),
            }
            crate::store::fsync_dir(&self.root.join("snapshots"))?;
            Ok(meta)
        })();
        if res.is_err() {
            let _ = remove_tree(&tmp);
        }
        res
    }

    /// A fresh staging dir (`<tmp>/fs` to unpack into) for speculative unpacking of a layer
    /// whose chain ID is not known yet (overlay only: layers are independent dirs).
    pub fn stage_dir(&self) -> Result<PathBuf> {
        let tmp = self.root.join("snapshots").join(tmp_name(".tmp-stage-"));
        fs::create_dir_all(tmp.join("fs")).ctx("create staging dir", &tmp)?;
        Ok(tmp)
    }

    /// Turn a staged unpack into committed snapshot `chain` (diff_id verified).
    pub fn adopt(
        &self,
        chain: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        staged: &Path,
        st: &UnpackStats,
    ) -> Result<CommittedMeta> {
        if self.kind != SnapshotterKind::Overlay {
            return Err(Error::Unsupported(
                "adopting staged layers needs the overlay snapshotter".into(),
            ));
        }
        if &st.diff_id != diff_id {
            let _ = remove_tree(staged);
            return Err(Error::DigestMismatch {
                what: format!("layer {chain} (uncompressed)"),
                expected: diff_id.to_string(),
                actual: st.diff_id.to_string(),
            });
        }
        if self.has(chain) {
            let _ = remove_tree(staged);
            return self.committed_meta(chain);
        }
        let meta = CommittedMeta {
            chain_id: chain.clone(),
            parent: parent.cloned(),
            diff_id: diff_id.clone(),
            size: st.size,
            tar_size: st.tar_size,
        };
        let res = (|| {
            write_split(staged, chain, st)?;
            atomic_write(
                &staged.join("meta.json"),
                &serde_json::to_vec(&meta).map_err(|e| Error::json("snapshot meta", e))?,
            )?;
            let dst = self.committed_dir(chain);
            self.journal_add(chain)?;
            match fs::rename(staged, &dst) {
                Ok(()) => {}
                Err(_) if self.has(chain) => {
                    let _ = remove_tree(staged);
                }
                Err(e) => return Err(Error::io("rename snapshot into place", dst, e)),
            }
            crate::store::fsync_dir(&self.root.join("snapshots"))
        })();
        if res.is_err() {
            let _ = remove_tree(staged);
        }
        res.map(|_| meta)
    }

    /// The lower dirs of `chain`, top-most first.
    fn lowers(&self, chain: &Digest) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut cur = Some(chain.clone());
        while let Some(c) = cur {
            let m = self.committed_meta(&c)?;
            out.push(self.committed_fs(&c));
            cur = m.parent;
            if out.len() > 10_000 {
                return Err(Error::invalid(
                    format!("snapshot {chain}"),
                    "parent chain loops",
                ));
            }
        }
        Ok(out)
    }

    /// Create an active (writable) snapshot `key` on top of `parent` (None: empty).
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<MountSpec> {
        self.prepare_opt(key, parent, true, &[], &mut None)
            .map(|(m, _)| m)
    }

    /// `prepare` without the fsyncs: the snapshot appears atomically (directory rename), and
    /// the caller makes `sync_paths(key)` durable itself (off its latency path). `targets`:
    /// what the runtime will mount over; those the image lacks come from a shared mountpoint
    /// layer instead of being created in this snapshot at every start.
    pub fn prepare_deferred(
        &self,
        key: &str,
        parent: Option<&Digest>,
        targets: &[MountTarget],
    ) -> Result<MountSpec> {
        self.prepare_opt(key, parent, false, targets, &mut None)
            .map(|(m, _)| m)
    }

    /// [`Snapshotter::prepare_deferred`] that takes `ready` (leaving None) when it was
    /// mounted for the same base: the snapshot is then mounted where `ready` was. Also
    /// returns the base (to mount the next ready one).
    pub fn prepare_deferred_ready(
        &self,
        key: &str,
        parent: Option<&Digest>,
        targets: &[MountTarget],
        ready: &mut Option<ReadyMount>,
    ) -> Result<(MountSpec, SnapshotBase)> {
        self.prepare_opt(key, parent, false, targets, ready)
    }

    /// The mountpoint layer of `chain` for `targets` (made on first use); None when the image
    /// has them all.
    fn init_layer(&self, chain: &Digest, targets: &[MountTarget]) -> Result<Option<String>> {
        if targets.is_empty() || self.kind != SnapshotterKind::Overlay {
            return Ok(None);
        }
        let name = init_name(chain, targets);
        let dir = self.root.join("init").join(&name);
        match fs::read_dir(&dir) {
            Ok(mut rd) => return Ok(rd.next().is_some().then_some(name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read dir", &dir, e)),
        }
        let lowers = self.lowers(chain)?;
        let tmp = self.root.join("init").join(tmp_name(".tmp-"));
        let view_mnt = self.root.join("init").join(tmp_name(".tmp-view-"));
        let res = (|| -> Result<()> {
            fs::create_dir(&tmp).ctx("create", &tmp)?;
            // The image's merged tree: its only layer, or a read-only overlay of its layers.
            let view = match lowers.as_slice() {
                [one] => one.clone(),
                _ => {
                    fs::create_dir(&view_mnt).ctx("create", &view_mnt)?;
                    overlay::OverlayMount {
                        lowers: lowers.clone(),
                        upper: None,
                        work: None,
                    }
                    .mount(&view_mnt)?;
                    view_mnt.clone()
                }
            };
            let built = mountpoints::build(&view, &tmp, targets);
            if view == view_mnt {
                overlay::unmount(&view_mnt)?;
            }
            built?;
            match fs::rename(&tmp, &dir) {
                Ok(()) => crate::store::fsync_dir(&self.root.join("init")),
                // made meanwhile by a concurrent create of the same image: use that one
                Err(_) if dir.is_dir() => remove_tree(&tmp),
                Err(e) => Err(Error::io("rename into place", &dir, e)),
            }
        })();
        if view_mnt.exists() && !crate::sys::is_mount_root(&view_mnt) {
            let _ = fs::remove_dir(&view_mnt);
        }
        if let Err(e) = res {
            if tmp.exists() {
                let _ = remove_tree(&tmp);
            }
            return Err(e);
        }
        Ok(fs::read_dir(&dir)
            .ctx("read dir", &dir)?
            .next()
            .is_some()
            .then_some(name))
    }

    /// What must be fsynced (in this order) for a `prepare_deferred` snapshot to survive a
    /// power loss: its metadata, its directory (and, by the caller, the parent of each).
    pub fn sync_paths(&self, key: &str) -> Result<Vec<PathBuf>> {
        let dir = self.active_dir(key)?;
        Ok(vec![dir.join("meta.json"), dir])
    }

    fn prepare_opt(
        &self,
        key: &str,
        parent: Option<&Digest>,
        durable: bool,
        targets: &[MountTarget],
        ready: &mut Option<ReadyMount>,
    ) -> Result<(MountSpec, SnapshotBase)> {
        let dir = self.active_dir(key)?;
        if dir.exists() {
            return Err(Error::Conflict(format!(
                "active snapshot {key} already exists"
            )));
        }
        if let Some(p) = parent {
            if !self.has(p) {
                return Err(Error::SnapshotNotFound(p.to_string()));
            }
        }
        let init = match parent {
            Some(p) => self.init_layer(p, targets)?,
            None => None,
        };
        let meta = ActiveMeta {
            key: key.into(),
            parent: parent.cloned(),
            kind: self.kind,
            init,
        };
        let data = serde_json::to_vec(&meta).map_err(|e| Error::json("active meta", e))?;
        let base = SnapshotBase {
            parent: meta.parent.clone(),
            init: meta.init.clone(),
        };
        let same_base = ready
            .as_ref()
            .is_some_and(|r| r.base.parent.as_ref() == parent && r.base.init == meta.init);
        if same_base {
            if let Some(r) = ready.take() {
                let written = write_meta(&r.dir, &data, durable)
                    .and_then(|()| fs::rename(&r.dir, &dir).ctx("rename active snapshot", &dir));
                if let Err(e) = written {
                    *ready = Some(r);
                    return Err(e);
                }
                return Ok((self.mount_spec(&meta, &dir)?, base));
            }
        }
        if self.kind == SnapshotterKind::Overlay {
            if let Some(tmp) = self.take_pooled(&data, durable) {
                if let Err(e) = fs::rename(&tmp, &dir).ctx("rename active snapshot", &dir) {
                    let _ = remove_tree(&tmp);
                    return Err(e);
                }
                return Ok((self.mount_spec(&meta, &dir)?, base));
            }
        }
        let tmp = self.root.join("active").join(tmp_name(".tmp-"));
        let res = (|| {
            match self.kind {
                SnapshotterKind::Overlay => {
                    for d in ["upper", "work"] {
                        fs::create_dir_all(tmp.join(d)).ctx("create", tmp.join(d))?;
                    }
                }
                SnapshotterKind::Copy => {
                    fs::create_dir_all(tmp.join("fs")).ctx("create", tmp.join("fs"))?;
                    if let Some(p) = parent {
                        copy::copy_tree(&self.committed_fs(p), &tmp.join("fs"))?;
                    }
                }
            }
            if durable {
                atomic_write(&tmp.join("meta.json"), &data)?;
            } else {
                fs::write(tmp.join("meta.json"), &data).ctx("write", tmp.join("meta.json"))?;
            }
            fs::rename(&tmp, &dir).ctx("rename active snapshot", &dir)
        })();
        if let Err(e) = res {
            let _ = remove_tree(&tmp);
            return Err(e);
        }
        Ok((self.mount_spec(&meta, &self.active_dir(key)?)?, base))
    }

    pub fn active_meta(&self, key: &str) -> Result<ActiveMeta> {
        read_meta(&self.active_dir(key)?.join("meta.json"), || {
            Error::SnapshotNotFound(key.into())
        })
    }

    /// Mount description of an active snapshot.
    pub fn mounts(&self, key: &str) -> Result<MountSpec> {
        self.mount_spec(&self.active_meta(key)?, &self.active_dir(key)?)
    }

    fn mount_spec(&self, m: &ActiveMeta, dir: &Path) -> Result<MountSpec> {
        Ok(match m.kind {
            SnapshotterKind::Overlay => {
                let mut lowers = match &m.parent {
                    Some(p) => self.lowers(p)?,
                    None => Vec::new(),
                };
                if let Some(init) = &m.init {
                    lowers.insert(0, self.root.join("init").join(init));
                }
                if lowers.is_empty() {
                    let empty = self.root.join("snapshots").join("empty");
                    fs::create_dir_all(&empty).ctx("create", &empty)?;
                    lowers.push(empty);
                }
                MountSpec::Overlay(overlay::OverlayMount {
                    lowers,
                    upper: Some(dir.join("upper")),
                    work: Some(dir.join("work")),
                })
            }
            SnapshotterKind::Copy => MountSpec::Bind {
                source: dir.join("fs"),
            },
        })
    }

    /// Mount active snapshot `key` at `target`.
    pub fn mount(&self, key: &str, target: &Path) -> Result<()> {
        self.mounts(key)?.mount(target)
    }

    /// Unmount `target` (a mount made by [`Snapshotter::mount`]).
    pub fn unmount(&self, target: &Path) -> Result<()> {
        overlay::unmount(target)
    }

    /// The directory holding the container's changes (overlay upper) or full tree (copy).
    pub fn changes_dir(&self, key: &str) -> Result<(PathBuf, SnapshotterKind)> {
        let m = self.active_meta(key)?;
        let dir = self.active_dir(key)?;
        Ok(match m.kind {
            SnapshotterKind::Overlay => (dir.join("upper"), m.kind),
            SnapshotterKind::Copy => (dir.join("fs"), m.kind),
        })
    }

    /// Remove an active snapshot (must be unmounted).
    pub fn remove(&self, key: &str) -> Result<()> {
        let dir = self.active_dir(key)?;
        if !dir.exists() {
            return Err(Error::SnapshotNotFound(key.into()));
        }
        remove_tree(&dir)
    }

    pub fn remove_committed(&self, chain: &Digest) -> Result<()> {
        // its mountpoint layers go first (nothing uses them without the chain)
        if let Ok(rd) = fs::read_dir(self.root.join("init")) {
            let prefix = format!("{}-", chain.hex());
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    remove_tree(&e.path())?;
                }
            }
        }
        let dir = self.committed_dir(chain);
        // make it invisible first (rename), then delete
        let tmp = self.root.join("snapshots").join(tmp_name(".tmp-rm-"));
        fs::rename(&dir, &tmp).ctx("rename snapshot for removal", &dir)?;
        remove_tree(&tmp)
    }

    pub fn list_committed(&self) -> Result<Vec<CommittedMeta>> {
        let dir = self.root.join("snapshots");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx("read dir", &dir)? {
            let e = e.ctx("read dir", &dir)?;
            if let Some(n) = e.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(n) {
                    if let Ok(m) = self.committed_meta(&d) {
                        out.push(m);
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn list_active(&self) -> Result<Vec<ActiveMeta>> {
        let dir = self.root.join("active");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).ctx("read dir", &dir)? {
            let e = e.ctx("read dir", &dir)?;
            if let Some(n) = e.file_name().to_str() {
                if !n.starts_with('.') {
                    if let Ok(m) = self.active_meta(n) {
                        out.push(m);
                    }
                }
            }
        }
        Ok(out)
    }

    fn clean_temps(&self) {
        for sub in ["snapshots", "active", "init"] {
            if let Ok(rd) = fs::read_dir(self.root.join(sub)) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().starts_with(".tmp-") {
                        let p = e.path();
                        // an image view left mounted by a crash: never remove through it
                        if crate::sys::is_mount_root(&p) {
                            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
                        }
                        if !crate::sys::is_mount_root(&p) {
                            let _ = remove_tree(&p);
                        }
                    }
                }
            }
        }
    }
}

/// Write the tar-split description of a layer unpacked in `dir/fs` to `dir` (fsynced), once
/// every file it references reads back as the stream had it; a layer whose files do not (a
/// name written twice in its tar...) gets none and keeps its tar blob.
fn write_split(dir: &Path, chain: &Digest, st: &UnpackStats) -> Result<()> {
    let d = match &st.split {
        Ok(d) => d,
        Err(why) => {
            tracing::info!("layer {chain} keeps its tar blob: {why}");
            return Ok(());
        }
    };
    match crate::tarsplit::verify(&dir.join("fs"), d)? {
        Ok(ctimes) => {
            // the description last: its presence says the layer needs no blob
            atomic_write(&dir.join(crate::tarsplit::STAT_NAME), &ctimes)?;
            atomic_write(&dir.join(crate::tarsplit::FILE_NAME), &d.data)
        }
        Err(why) => {
            tracing::info!("layer {chain} keeps its tar blob: {why}");
            Ok(())
        }
    }
}

/// Name of the mountpoint layer of `chain` for `targets` under `init/`.
fn init_name(chain: &Digest, targets: &[MountTarget]) -> String {
    format!("{}-{}", chain.hex(), mountpoints::list_id(targets))
}

/// Write `data` to the `meta.json` of a snapshot dir made ahead (the file exists: no inode is
/// made), fsynced with `durable`.
fn write_meta(dir: &Path, data: &[u8], durable: bool) -> Result<()> {
    let meta = dir.join("meta.json");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&meta)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, data)?;
            if durable {
                f.sync_all()?;
            }
            Ok(())
        })
        .ctx("write", &meta)
}

/// A snapshot's meta.json; `missing()` when there is none.
fn read_meta<T: serde::de::DeserializeOwned>(
    p: &Path,
    missing: impl FnOnce() -> Error,
) -> Result<T> {
    let b = fs::read(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing()
        } else {
            Error::io("read", p, e)
        }
    })?;
    serde_json::from_slice(&b).map_err(|e| Error::json(p.display().to_string(), e))
}

/// Remove a tree without following symlinks.
pub fn remove_tree(p: &Path) -> Result<()> {
    let parent = p
        .parent()
        .ok_or_else(|| Error::invalid(p.display().to_string(), "no parent"))?;
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(p.display().to_string(), "bad name"))?;
    let pfd = nix::fcntl::open(
        parent,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open", parent)?;
    crate::layer::remove_all_at(&pfd, name).map_err(|e| Error::sys("remove tree", p, e))
}

fn probe_overlay(dir: &Path) -> bool {
    let p = dir.join(tmp_name(".tmp-probe-"));
    let ok = (|| -> Result<bool> {
        for d in ["l1", "l2", "u", "w", "m"] {
            fs::create_dir_all(p.join(d)).ctx("create", p.join(d))?;
        }
        fs::write(p.join("l1/f"), b"x").ctx("write", &p)?;
        let m = overlay::OverlayMount {
            lowers: vec![p.join("l2"), p.join("l1")],
            upper: Some(p.join("u")),
            work: Some(p.join("w")),
        };
        if m.mount(&p.join("m")).is_err() {
            return Ok(false);
        }
        let ok = p.join("m/f").is_file();
        overlay::unmount(&p.join("m"))?;
        // the upper must accept whiteouts + trusted xattrs (overlay-on-overlay does not)
        let xa = crate::sys::lsetxattr(
            p.join("u").as_os_str().as_encoded_bytes(),
            b"trusted.overlay.opaque",
            b"y",
        )
        .is_ok();
        Ok(ok && xa)
    })()
    .unwrap_or(false);
    let _ = remove_tree(&p);
    ok
}
