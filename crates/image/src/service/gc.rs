//! Garbage collection: the blobs stored images reference, and removing the rest.
use super::{layer_chains, ImageService};
use crate::digest::Digest;
use crate::error::Result;
use crate::model::{self};
use serde::Serialize;
use std::collections::HashSet;

/// What gc freed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub snapshots_removed: Vec<Digest>,
    pub bytes_freed: u64,
}

impl ImageService {
    /// Blobs the stored images reference: configs, manifests (and what they list), layers.
    pub(crate) fn referenced_blobs(&self) -> HashSet<Digest> {
        let mut keep = HashSet::new();
        for rec in self.meta.list() {
            keep.insert(rec.id.clone());
            if let Some(m) = &rec.manifest {
                keep.insert(m.clone());
                // manifests/indexes this image was pulled through
                if let Ok(b) = self.content.read_verified(m) {
                    if let Ok(model::ManifestKind::Image(man)) =
                        model::parse_manifest(&b, None, "manifest")
                    {
                        keep.insert(man.config.digest.clone());
                        keep.extend(man.layers.iter().map(|l| l.digest.clone()));
                    }
                }
            }
            for l in &rec.layers {
                keep.insert(l.blob.clone());
            }
        }
        keep
    }

    /// Remove blobs and committed snapshots no image uses. `in_use_snapshots`: chain IDs
    /// the caller still needs (build cache...); active snapshots (containers) always keep
    /// their parents. Blobs held by operations in flight (leases) stay.
    pub fn gc(&self, keep_blobs: &[Digest], keep_chains: &[Digest]) -> Result<GcReport> {
        // Under the leases' lock: an operation holds a blob or snapshot before it relies on it
        // and stores its image before it lets go, so what is not held now and no image in the
        // metadata read below references is needed by no one.
        let leases = self.leases.guard();
        let mut keep_snap: HashSet<Digest> = HashSet::new();
        let mark_chain = |c: &Digest, ks: &mut HashSet<Digest>| {
            let mut cur = Some(c.clone());
            while let Some(x) = cur {
                if !ks.insert(x.clone()) {
                    break;
                }
                cur = self
                    .snapshots
                    .committed_meta(&x)
                    .ok()
                    .and_then(|m| m.parent);
            }
        };
        for rec in self.meta.list() {
            if let Some(top) = self.top_chain_id(&rec) {
                mark_chain(&top, &mut keep_snap);
                // overlay layers of an image are all needed even if metadata parent chains differ
                for c in layer_chains(&rec) {
                    keep_snap.insert(c);
                }
            }
        }
        for c in keep_chains {
            mark_chain(c, &mut keep_snap);
        }
        for a in self.snapshots.list_active()? {
            if let Some(p) = &a.parent {
                mark_chain(p, &mut keep_snap);
            }
        }
        let mut rep = GcReport::default();
        for s in self.snapshots.list_committed()? {
            if !keep_snap.contains(&s.chain_id) && !leases.is_held(&s.chain_id) {
                self.snapshots.remove_committed(&s.chain_id)?;
                rep.bytes_freed += s.size;
                rep.snapshots_removed.push(s.chain_id);
            }
        }
        let mut keep = self.referenced_blobs();
        keep.extend(keep_blobs.iter().cloned());
        for b in self.content.list()? {
            if !keep.contains(&b) && !leases.is_held(&b) {
                rep.bytes_freed += self.content.size(&b).unwrap_or(0);
                self.content.delete(&b)?;
                rep.blobs_removed.push(b);
            }
        }
        self.content.clean_temps()?;
        Ok(rep)
    }
}
