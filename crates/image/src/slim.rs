//! One copy per layer: once a layer's unpacked snapshot has a tar-split description on disk
//! for good (see [`crate::tarsplit`]), its blob (the uncompressed tar of a load, the
//! compressed one of a pull or commit) is deleted; save and push rebuild the tar from the
//! snapshot. Order for crash safety: the description is written and fsynced inside the
//! snapshot before the snapshot becomes visible, the snapshot is flushed (`syncfs`, journal
//! cleared) before the blob goes, so a kill -9 at any point leaves the blob or the description.
//! [`ImageService::open`] runs the same pass again (a crash between flush and delete).
use crate::digest::{chain_ids, Digest};
use crate::lease::Leases;
use crate::snapshot::Snapshotter;
use crate::store::{ContentStore, MetadataStore};
use std::collections::HashMap;
use std::sync::Arc;

/// What the pass needs, cloned off the service (it runs on a background thread).
pub(crate) struct BlobDropper {
    pub(crate) content: ContentStore,
    pub(crate) meta: MetadataStore,
    pub(crate) snapshots: Snapshotter,
    pub(crate) leases: Arc<Leases>,
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SlimReport {
    pub blobs_removed: Vec<Digest>,
    pub bytes_freed: u64,
}

impl BlobDropper {
    /// Flush the snapshots, then delete every layer blob that all its users (image layers, by
    /// chain ID) can rebuild from a durable description and no operation in flight holds.
    pub(crate) fn run(&self) -> crate::Result<SlimReport> {
        self.snapshots.sync()?;
        let unsynced = self.snapshots.unsynced();
        // Under the leases' lock: an operation holds a blob before it relies on it.
        let leases = self.leases.guard();
        let mut users: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for rec in self.meta.list() {
            let diff_ids: Vec<Digest> = rec.layers.iter().map(|l| l.diff_id.clone()).collect();
            for (l, chain) in rec.layers.iter().zip(chain_ids(&diff_ids)) {
                users.entry(l.blob.clone()).or_default().push(chain);
            }
        }
        let mut rep = SlimReport::default();
        let mut skipped = false;
        for (blob, chains) in users {
            if !self.content.exists(&blob) {
                continue;
            }
            if leases.is_held(&blob) {
                skipped = true; // the holder's lease runs the pass again when it ends
                continue;
            }
            if chains
                .iter()
                .all(|c| self.snapshots.has_durable_split(c, &unsynced))
            {
                let size = self.content.size(&blob).unwrap_or(0);
                self.content.delete(&blob)?;
                rep.bytes_freed += size;
                rep.blobs_removed.push(blob);
            }
        }
        if skipped {
            self.leases
                .retry_drop
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(rep)
    }

    /// Image layers that have neither their blob nor a description (should never happen:
    /// logged, named).
    pub(crate) fn check(&self) {
        let unsynced = self.snapshots.unsynced();
        for rec in self.meta.list() {
            let diff_ids: Vec<Digest> = rec.layers.iter().map(|l| l.diff_id.clone()).collect();
            for (l, chain) in rec.layers.iter().zip(chain_ids(&diff_ids)) {
                if !self.content.exists(&l.blob)
                    && !self.snapshots.has_durable_split(&chain, &unsynced)
                {
                    tracing::error!(
                        "image {}: layer {} has neither its blob nor a tar-split description; save/push of this image will fail",
                        rec.id,
                        l.diff_id
                    );
                }
            }
        }
    }
}
