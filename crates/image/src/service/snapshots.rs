//! Container snapshots, and the images made from them (commit, derive).
use super::{layer_chains, ImageService, PendingLayer};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::model::{self, ImageConfig};
use crate::reference::Reference;
use crate::snapshot::{MountSpec, SnapshotterKind};
use crate::store::{ImageRecord, LayerRecord};
use std::path::{Path, PathBuf};

impl ImageService {
    // ---- container snapshots ----

    /// Create a container's writable snapshot `key` on top of `image` (None: empty rootfs).
    pub fn prepare_snapshot(&self, key: &str, image: Option<&str>) -> Result<MountSpec> {
        let parent = self.snapshot_parent(image)?;
        self.snapshots.prepare(key, parent.as_ref())
    }
    /// `prepare_snapshot` without fsyncs on the caller's path: returns the paths the caller
    /// must fsync (in order, each with its directory) for the snapshot to survive a power loss.
    /// `targets`: the paths the runtime mounts over (see [`crate::snapshot::mountpoints`]).
    pub fn prepare_snapshot_deferred(
        &self,
        key: &str,
        image: Option<&str>,
        targets: &[crate::snapshot::MountTarget],
    ) -> Result<(MountSpec, Vec<PathBuf>)> {
        let parent = self.snapshot_parent(image)?;
        let m = self
            .snapshots
            .prepare_deferred(key, parent.as_ref(), targets)?;
        Ok((m, self.snapshots.sync_paths(key)?))
    }
    /// [`ImageService::prepare_snapshot_deferred`] that uses `ready` (taking it) when it was
    /// mounted for this image; also returns the snapshot's base.
    pub fn prepare_snapshot_deferred_ready(
        &self,
        key: &str,
        image: Option<&str>,
        targets: &[crate::snapshot::MountTarget],
        ready: &mut Option<crate::snapshot::ReadyMount>,
    ) -> Result<(MountSpec, Vec<PathBuf>, crate::snapshot::SnapshotBase)> {
        let parent = self.snapshot_parent(image)?;
        let (m, base) =
            self.snapshots
                .prepare_deferred_ready(key, parent.as_ref(), targets, ready)?;
        Ok((m, self.snapshots.sync_paths(key)?, base))
    }
    /// Whether a container snapshot of `image` can be prepared without unpacking layers or
    /// building its mountpoint layer (true too when `image` is unknown: that fails at once).
    pub fn snapshot_ready(&self, image: &str, targets: &[crate::snapshot::MountTarget]) -> bool {
        let Ok(rec) = self.resolve(image) else {
            return true;
        };
        let chains = layer_chains(&rec);
        chains.iter().all(|c| self.snapshots.has(c))
            && self.snapshots.ready_for(chains.last(), targets)
    }
    fn snapshot_parent(&self, image: Option<&str>) -> Result<Option<Digest>> {
        Ok(match image {
            Some(n) => {
                let rec = self.resolve(n)?;
                self.ensure_unpacked(&rec)?;
                self.top_chain_id(&rec)
            }
            None => None,
        })
    }
    /// Mount snapshot `key` at `target`.
    pub fn mount(&self, key: &str, target: &Path) -> Result<()> {
        self.snapshots.mount(key, target)
    }
    pub fn unmount(&self, target: &Path) -> Result<()> {
        self.snapshots.unmount(target)
    }
    /// Remove a container snapshot (after unmount): nothing of it is left behind.
    pub fn remove_snapshot(&self, key: &str) -> Result<()> {
        self.snapshots.remove(key)
    }

    /// Re-create missing committed snapshots of an image from its blobs (after gc of snapshots
    /// or a snapshotter change).
    pub fn ensure_unpacked(&self, rec: &ImageRecord) -> Result<()> {
        let chains = layer_chains(rec);
        if chains.iter().all(|c| self.snapshots.has(c)) {
            return Ok(());
        }
        let pending: Vec<PendingLayer> = rec
            .layers
            .iter()
            .map(|l| PendingLayer {
                blob: l.blob.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: l.diff_id.clone(),
            })
            .collect();
        self.unpack_layers(&pending, &crate::progress::NoProgress)
            .map(drop)
    }

    /// Commit a container's changes (snapshot `key`) as a new image on top of `parent_image`
    /// with `config` (its rootfs/history are extended here).
    pub fn commit(
        &self,
        key: &str,
        parent_image: Option<&str>,
        mut config: ImageConfig,
        created_by: &str,
        tag: Option<&str>,
    ) -> Result<ImageRecord> {
        let (dir, kind) = self.snapshots.changes_dir(key)?;
        let lease = self.lease();
        let packed = match kind {
            SnapshotterKind::Overlay => crate::layer::pack_into(
                &dir,
                crate::layer::PackMode::OverlayDiff,
                lease.writer(None, None)?,
            )?,
            SnapshotterKind::Copy => {
                // the container dir is a full tree: diff it against its parent's full tree
                let base = match self.snapshots.active_meta(key)?.parent {
                    Some(p) => self.snapshots.committed_fs(&p),
                    None => {
                        let e = self.root.join("snapshots").join("empty");
                        std::fs::create_dir_all(&e).map_err(|err| Error::io("create", &e, err))?;
                        e
                    }
                };
                crate::layer::diff_into(&base, &dir, lease.writer(None, None)?)?
            }
        };
        let mut layers: Vec<PendingLayer> = Vec::new();
        let mut diff_ids = Vec::new();
        if let Some(p) = parent_image {
            let rec = self.resolve(p)?;
            for l in &rec.layers {
                layers.push(PendingLayer {
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    diff_id: l.diff_id.clone(),
                });
                diff_ids.push(l.diff_id.clone());
            }
        }
        layers.push(PendingLayer {
            blob: packed.blob.clone(),
            media_type: packed.media_type.clone(),
            size: packed.size,
            diff_id: packed.diff_id.clone(),
        });
        diff_ids.push(packed.diff_id.clone());
        let now = berth_fsutil::rfc3339_nano_fixed_now();
        config.rootfs = model::RootFs {
            kind: "layers".into(),
            diff_ids,
        };
        config.created = Some(now.clone());
        // Docker: the commit's history entry carries the commit message and author.
        let (comment, author) = (config.comment.clone(), config.author.clone());
        config.history.push(model::History {
            created: Some(now),
            created_by: Some(created_by.into()),
            comment,
            author,
            ..Default::default()
        });
        let b = serde_json::to_vec(&config).map_err(|e| Error::json("image config", e))?;
        let cfg = lease.write_bytes(&b, None)?;
        let tags = match tag {
            Some(t) => vec![Reference::parse_with_default_tag(t)?],
            None => vec![],
        };
        let rec = self.register(
            &cfg,
            layers,
            None,
            &tags,
            &[],
            &crate::progress::NoProgress,
            &lease,
        )?;
        lease.succeed();
        Ok(rec)
    }

    /// An image with `parent`'s layers (none without one) and `config` as given (its
    /// history already extended by the caller; rootfs set here): a build's metadata-only step.
    pub fn derive(&self, parent: Option<&str>, config: ImageConfig) -> Result<ImageRecord> {
        self.derive_with(parent, None, config)
    }

    /// As [`ImageService::derive`], with `parent`'s layers followed by the layer at index
    /// `borrowed.1` of image `borrowed.0` (a build's `--cache-from` source restores the
    /// intermediate image of a step it matched).
    pub fn derive_with(
        &self,
        parent: Option<&str>,
        borrowed: Option<(&str, usize)>,
        mut config: ImageConfig,
    ) -> Result<ImageRecord> {
        let lease = self.lease();
        let pending = |l: &LayerRecord| PendingLayer {
            blob: l.blob.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id: l.diff_id.clone(),
        };
        let mut layers = Vec::new();
        if let Some(p) = parent {
            layers.extend(self.resolve(p)?.layers.iter().map(pending));
        }
        if let Some((image, n)) = borrowed {
            let rec = self.resolve(image)?;
            let l = rec.layers.get(n).ok_or_else(|| {
                Error::invalid(
                    format!("image {image}"),
                    format!("it has no layer {n} (it has {})", rec.layers.len()),
                )
            })?;
            layers.push(pending(l));
        }
        config.rootfs = model::RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        let b = serde_json::to_vec(&config).map_err(|e| Error::json("image config", e))?;
        let cfg = lease.write_bytes(&b, None)?;
        let rec = self.register(
            &cfg,
            layers,
            None,
            &[],
            &[],
            &crate::progress::NoProgress,
            &lease,
        )?;
        lease.succeed();
        Ok(rec)
    }
}
