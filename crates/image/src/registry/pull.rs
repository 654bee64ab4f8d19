//! `docker pull` into the image service.
use super::{RegistryClient, RegistryOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::model::{self, ManifestKind, Platform};
use crate::progress::{Progress, ProgressSink};
use crate::reference::Reference;
use crate::service::{ImageService, PendingLayer};
use crate::store::ImageRecord;
use std::sync::Mutex;

impl ImageService {
    /// `docker pull`. Returns the stored image. Layers download in parallel and (overlay)
    /// are unpacked as they arrive; nothing becomes visible unless everything verified.
    pub fn pull(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        opts: &RegistryOptions,
        progress: &dyn ProgressSink,
    ) -> Result<ImageRecord> {
        let r = Reference::parse_with_default_tag(reference)?;
        let c = RegistryClient::new(r.registry_host(), opts.clone())?;
        let repo = r.path().to_string();
        let want = platform.cloned().unwrap_or_else(Platform::linux_amd64);
        progress.event(Progress::Resolving {
            reference: r.familiar_string(),
        });
        let tag_or_digest = r
            .digest()
            .map(|d| d.to_string())
            .or_else(|| r.tag().map(str::to_string))
            .unwrap_or_else(|| "latest".into());
        let (top_bytes, top_ct, top_digest) = c.get_manifest(&repo, &tag_or_digest)?;
        let what = format!("manifest of {}", r.familiar_string());
        let (man_bytes, man) = match model::parse_manifest(&top_bytes, Some(&top_ct), &what)? {
            ManifestKind::Image(m) => (top_bytes.clone(), m),
            ManifestKind::Index(idx) => {
                let d = model::select_platform(&idx, &want, &r.familiar_string())?;
                let (b, ct, _) = c.get_manifest(&repo, &d.digest.to_string())?;
                match model::parse_manifest(&b, Some(&ct), &what)? {
                    ManifestKind::Image(m) => (b, m),
                    ManifestKind::Index(_) => {
                        return Err(Error::Unsupported(format!("{what}: nested index")))
                    }
                }
            }
        };
        // Everything this pull stores is held by its lease; on failure what it brought in
        // and no image uses goes again.
        let lease = self.lease();
        // config
        c.fetch_blob(
            &repo,
            &man.config.digest,
            man.config.size,
            false,
            &crate::progress::NoProgress,
            &lease,
        )?;
        let cfg = model::ImageConfig::parse(
            &self.content.read_verified(&man.config.digest)?,
            &format!("config of {}", r.familiar_string()),
        )?;
        if cfg.rootfs.diff_ids.len() != man.layers.len() {
            return Err(Error::invalid(
                what,
                "layer count differs between manifest and config",
            ));
        }
        let layers: Vec<PendingLayer> = man
            .layers
            .iter()
            .zip(cfg.rootfs.diff_ids.iter())
            .map(|(l, d)| PendingLayer {
                blob: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: d.clone(),
            })
            .collect();
        for l in &layers {
            progress.event(Progress::Waiting {
                layer: l.blob.clone(),
            });
        }
        let chains = crate::digest::chain_ids(&cfg.rootfs.diff_ids);
        let overlay = self.snapshots.kind() == crate::snapshot::SnapshotterKind::Overlay;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let fresh: Mutex<std::collections::HashSet<Digest>> = Mutex::new(Default::default());
        std::thread::scope(|s| {
            for _ in 0..opts.parallel.clamp(1, 8).min(layers.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= layers.len() {
                        break;
                    }
                    let l = &layers[i];
                    // held before looking: a blob or snapshot found here is not removed
                    // under this pull; an unpacked layer needs no blob (see crate::slim)
                    lease.hold(&l.blob);
                    lease.hold_snapshot(&chains[i]);
                    if self.snapshots.has(&chains[i]) {
                        continue; // register() reports AlreadyExists
                    }
                    if let Ok(mut g) = fresh.lock() {
                        g.insert(l.blob.clone());
                    }
                    let mut res = c.fetch_blob(&repo, &l.blob, l.size, overlay, progress, &lease);
                    if res.is_ok() && overlay {
                        res = self
                            .unpack_layers_at(&layers, &chains, i, progress)
                            .map(drop);
                    }
                    if let Err(e) = res {
                        if let Ok(mut g) = failed.lock() {
                            g.get_or_insert(e);
                        }
                        next.store(layers.len(), std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                });
            }
        });
        for l in &layers {
            self.drop_staged_blob(&l.blob); // anything staged but not adopted (after a failure)
        }
        if let Some(e) = failed.into_inner().ok().flatten() {
            return Err(e);
        }
        let mdigest = lease.write_bytes(&man_bytes, None)?;
        if top_digest != mdigest {
            lease.write_bytes(&top_bytes, Some(&top_digest))?;
        }
        let tags: Vec<Reference> = if r.tag().is_some() && r.digest().is_none() {
            vec![r.clone()]
        } else {
            vec![]
        };
        let repo_digest = format!("{}@{}", r.name(), top_digest);
        let fresh: std::collections::HashSet<Digest> = fresh.into_inner().unwrap_or_default();
        let quiet = |p: Progress| match &p {
            Progress::AlreadyExists { layer } | Progress::Complete { layer }
                if fresh.contains(layer) => {}
            _ => progress.event(p),
        };
        let rec = self.register(
            &man.config.digest,
            layers,
            Some(mdigest),
            &tags,
            &[repo_digest],
            &quiet,
            &lease,
        )?;
        lease.succeed();
        progress.event(Progress::Done {
            reference: r.familiar_string(),
            digest: Some(top_digest),
        });
        Ok(rec)
    }
}
