//! The image service the daemon talks to: one root dir holding the content store, the image
//! metadata and the snapshotter. All methods are blocking; call them from `spawn_blocking`.
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, IoCtx, Result};
use crate::model::ImageConfig;
use crate::reference::Reference;
use crate::snapshot::{Snapshotter, SnapshotterKind};
use crate::store::{ContentStore, ImageRecord, LayerRecord, MetadataStore};
use std::io::Read;
use std::path::{Path, PathBuf};

mod gc;
mod images;
mod layers;
mod snapshots;

pub use gc::GcReport;
pub use images::{
    DeleteReport, HistoryEntry, ImageInspect, ImageSummary, InspectMetadata, RootFsInspect,
};
pub(crate) use layers::PendingLayer;

pub struct ImageService {
    root: PathBuf,
    /// Layers unpacked speculatively while a load streamed them in (blob digest -> staging dir).
    pub(crate) staged:
        std::sync::Mutex<std::collections::HashMap<Digest, (PathBuf, crate::layer::UnpackStats)>>,
    pub content: ContentStore,
    pub meta: MetadataStore,
    pub snapshots: Snapshotter,
    /// Blobs held by operations in flight (see [`crate::lease`]).
    pub leases: std::sync::Arc<crate::lease::Leases>,
}

/// Whether `name` is one of the image's names (a tag or repo digest), rather than its ID.
pub(crate) fn names_image(rec: &ImageRecord, name: &str) -> bool {
    Reference::parse_with_default_tag(name)
        .map(|r| {
            rec.repo_tags.contains(&r.to_string()) || rec.repo_digests.contains(&r.to_string())
        })
        .unwrap_or(false)
}

pub(crate) fn familiar(full: &str) -> String {
    Reference::parse_normalized(full)
        .map(|r| r.familiar_string())
        .unwrap_or_else(|_| full.to_string())
}

impl ImageService {
    /// Open (creating) the store at `root`; the snapshotter is chosen automatically
    /// (overlay when it works on `root`'s filesystem, else copy) unless `force` says.
    pub fn open(root: &Path, force: Option<SnapshotterKind>) -> Result<ImageService> {
        std::fs::create_dir_all(root).map_err(|e| Error::io("create root", root, e))?;
        let content = ContentStore::open(root)?;
        content.clean_temps()?;
        let svc = ImageService {
            staged: Default::default(),
            root: root.to_path_buf(),
            content,
            meta: MetadataStore::open(root)?,
            snapshots: Snapshotter::open(root, force)?,
            leases: Default::default(),
        };
        // finish what a crash interrupted: blobs whose layers have a durable description
        let d = svc.dropper();
        if let Err(e) = d.run() {
            tracing::warn!("dropping layer blobs kept as tar-split: {e}");
        }
        d.check();
        Ok(svc)
    }

    pub(crate) fn dropper(&self) -> crate::slim::BlobDropper {
        crate::slim::BlobDropper {
            content: self.content.clone(),
            meta: self.meta.clone(),
            snapshots: self.snapshots.handle(),
            leases: self.leases.clone(),
        }
    }

    /// Flush the unpacked layers and delete the layer blobs they can rebuild (what every
    /// load/pull/import/commit does in the background once it stored its image).
    pub fn slim(&self) -> Result<crate::slim::SlimReport> {
        self.dropper().run()
    }

    /// Check, before anything is streamed, that layer `l` (chain `chain`) can be given back:
    /// its blob is there, or its unpacked files are as unpacked ([`crate::tarsplit::precheck`]).
    pub fn precheck_layer(&self, l: &LayerRecord, chain: &Digest) -> Result<()> {
        if self.content.exists(&l.blob) {
            return Ok(());
        }
        let desc = self.snapshots.split_path(chain);
        if !desc.is_file() {
            return Err(Error::BlobNotFound(format!(
                "{} (layer {}: no blob and no tar-split description)",
                l.blob, l.diff_id
            )));
        }
        crate::tarsplit::precheck(
            &desc,
            &desc.with_file_name(crate::tarsplit::STAT_NAME),
            &self.snapshots.committed_fs(chain),
            &l.diff_id,
        )
    }

    /// The uncompressed tar of layer `l` (chain ID `chain` in its image) and its length:
    /// from its blob when the store has it, else rebuilt from the unpacked snapshot and its
    /// tar-split description, verified against the diff_id as it streams.
    pub fn layer_stream(
        &self,
        l: &LayerRecord,
        chain: &Digest,
    ) -> Result<(u64, Box<dyn Read + Send>)> {
        if self.content.exists(&l.blob) {
            if l.blob == l.diff_id {
                return Ok((
                    self.content.size(&l.blob)?,
                    Box::new(self.content.open_blob(&l.blob)?),
                ));
            }
            let size = if l.tar_size > 0 {
                l.tar_size
            } else {
                let mut r = crate::layer::decompress(self.content.open_blob(&l.blob)?)?;
                std::io::copy(&mut r, &mut std::io::sink())
                    .ctx("decompress layer", self.content.path(&l.blob))?
            };
            let r = crate::layer::decompress(self.content.open_blob(&l.blob)?)?;
            return Ok((size, r));
        }
        let desc = self.snapshots.split_path(chain);
        if !desc.is_file() {
            return Err(Error::BlobNotFound(format!(
                "{} (layer {}: no blob and no tar-split description)",
                l.blob, l.diff_id
            )));
        }
        let size = match l.tar_size {
            0 => self.snapshots.committed_meta(chain)?.tar_size,
            n => n,
        };
        let r = crate::tarsplit::TarSplitReader::open(
            &desc,
            &self.snapshots.committed_fs(chain),
            &l.diff_id,
        )?;
        Ok((size, Box::new(r)))
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn snapshotter_kind(&self) -> SnapshotterKind {
        self.snapshots.kind()
    }

    /// A lease for an operation that writes blobs: what it writes under the lease is removed
    /// again unless [`crate::lease::Lease::succeed`] is called (and no image references it).
    pub fn lease(&self) -> crate::lease::Lease<'_> {
        crate::lease::Lease::new(self)
    }

    /// Resolve a user-given name (ID, short ID, name:tag, name@digest).
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        self.meta.resolve(name)
    }

    pub fn config_of(&self, rec: &ImageRecord) -> Result<ImageConfig> {
        let b = self.content.read_verified(&rec.id)?;
        ImageConfig::parse(&b, &format!("config of image {}", rec.id))
    }
    pub fn config_bytes(&self, rec: &ImageRecord) -> Result<Vec<u8>> {
        self.content.read_verified(&rec.id)
    }

    /// Chain ID of the image's top layer (the parent for a container snapshot).
    pub fn top_chain_id(&self, rec: &ImageRecord) -> Option<Digest> {
        layer_chains(rec).pop()
    }
}

/// Chain IDs of an image's layers, bottom to top.
pub(crate) fn layer_chains(rec: &ImageRecord) -> Vec<Digest> {
    chain_ids(
        &rec.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    )
}
