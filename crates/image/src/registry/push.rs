//! `docker push` from the image service (manifest rewritten for gzip layers).
use super::blobs::copy_full_chunks;
use super::{Body, RegistryClient, RegistryOptions};
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use crate::model::{self, ManifestKind};
use crate::progress::{Progress, ProgressSink};
use crate::reference::Reference;
use crate::service::ImageService;
use std::sync::Mutex;

impl ImageService {
    /// The manifest to push: the stored one, with gzip-compressed layers (as docker pushes
    /// them) in place of uncompressed ones and of those whose blob the store dropped (kept as
    /// their unpacked snapshot, see [`crate::slim`]). Blobs compressed here are temporary:
    /// the lease removes them when the push ends.
    fn push_manifest(
        &self,
        rec: &crate::store::ImageRecord,
        stored: &Digest,
        lease: &crate::lease::Lease,
    ) -> Result<(Digest, Vec<u8>, model::Manifest)> {
        let mbytes = self.content.read_verified(stored)?;
        let mut man = match model::parse_manifest(&mbytes, None, "stored manifest")? {
            ManifestKind::Image(m) => m,
            ManifestKind::Index(_) => return Err(Error::Unsupported("pushing an index".into())),
        };
        let plain = |mt: &str| {
            mt == model::MEDIA_OCI_LAYER || mt == "application/vnd.docker.image.rootfs.diff.tar"
        };
        // held (so kept) from here to the upload when there
        let redo: Vec<bool> = man
            .layers
            .iter()
            .map(|l| !lease.hold(&l.digest) || plain(&l.media_type))
            .collect();
        if !redo.iter().any(|&r| r) {
            return Ok((stored.clone(), mbytes, man));
        }
        if man.layers.len() != rec.layers.len() {
            return Err(Error::invalid(
                format!("image {}", rec.id),
                "stored manifest and image record list different layers",
            ));
        }
        let chains = crate::service::layer_chains(rec);
        for ((l, c), _) in rec
            .layers
            .iter()
            .zip(&chains)
            .zip(&redo)
            .filter(|(_, r)| **r)
        {
            self.precheck_layer(l, c)?;
        }
        let docker = man.media_type.as_deref() == Some(model::MEDIA_DOCKER_MANIFEST);
        for (i, l) in man.layers.iter_mut().enumerate() {
            if !redo[i] {
                continue;
            }
            let (_, mut r) = self.layer_stream(&rec.layers[i], &chains[i])?;
            let w = lease.writer(None, None)?;
            let tmp = w.tmp_path().to_path_buf();
            let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
            // whole buffers, whatever the reader returns: the same tar always compresses to
            // the same bytes (a second push finds its blobs, a retry gets the same digest)
            copy_full_chunks(&mut r, &mut gz).map_err(|e| {
                Error::io(
                    "compress layer for push",
                    format!("{} ({})", rec.layers[i].diff_id, tmp.display()),
                    e,
                )
            })?;
            let w = gz.finish().ctx("compress layer", &tmp)?;
            let size = w.written();
            l.digest = w.commit()?;
            lease.temporary(&l.digest);
            l.size = size;
            l.media_type = if docker {
                model::MEDIA_DOCKER_LAYER_GZIP
            } else {
                model::MEDIA_OCI_LAYER_GZIP
            }
            .to_string();
        }
        let b = serde_json::to_vec(&man).map_err(|e| Error::json("manifest", e))?;
        let d = lease.write_bytes(&b, None)?;
        Ok((d, b, man))
    }

    /// `docker push NAME[:TAG]`. Returns the manifest digest.
    pub fn push(
        &self,
        name: &str,
        opts: &RegistryOptions,
        progress: &dyn ProgressSink,
    ) -> Result<Digest> {
        let r = Reference::parse_with_default_tag(name)?;
        let rec = self.resolve(name)?;
        let c = RegistryClient::new(r.registry_host(), opts.clone())?;
        let repo = r.path().to_string();
        let stored = rec
            .manifest
            .clone()
            .ok_or_else(|| Error::invalid(format!("image {}", rec.id), "no manifest stored"))?;
        let lease = self.lease();
        let (mdigest, mbytes, man) = self.push_manifest(&rec, &stored, &lease)?;
        // another repository on the same registry that has these blobs (cross-repo mount)
        let mount_from = rec
            .repo_digests
            .iter()
            .chain(rec.repo_tags.iter())
            .filter_map(|n| Reference::parse_normalized(n).ok())
            .find(|o| o.domain() == r.domain() && o.path() != r.path())
            .map(|o| o.path().to_string());
        let blobs: Vec<Digest> = man
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .chain(std::iter::once(man.config.digest.clone()))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..opts.parallel.clamp(1, 8).min(blobs.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= blobs.len() {
                        break;
                    }
                    if let Err(e) =
                        c.push_blob(self, &repo, &blobs[i], mount_from.as_deref(), progress)
                    {
                        if let Ok(mut g) = failed.lock() {
                            g.get_or_insert(e);
                        }
                        next.store(blobs.len(), std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().ok().flatten() {
            return Err(e);
        }
        let mt = man
            .media_type
            .clone()
            .unwrap_or_else(|| model::MEDIA_OCI_MANIFEST.into());
        let tag = r
            .digest()
            .map(|d| d.to_string())
            .or_else(|| r.tag().map(str::to_string))
            .unwrap_or_else(|| "latest".into());
        let scope = format!("repository:{repo}:pull,push");
        let resp = c.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &scope,
            &[("Content-Type", &mt)],
            &Body::Bytes(&mbytes),
            &[],
        )?;
        if let Some(h) = resp.header("Docker-Content-Digest") {
            if h != mdigest.to_string() {
                return Err(Error::DigestMismatch {
                    what: format!("pushed manifest of {}", r.familiar_string()),
                    expected: mdigest.to_string(),
                    actual: h.to_string(),
                });
            }
        }
        let mut rec2 = rec.clone();
        let rd = format!("{}@{}", r.name(), mdigest);
        if !rec2.repo_digests.contains(&rd) {
            rec2.repo_digests.push(rd);
        }
        self.meta.put(rec2)?;
        lease.succeed();
        progress.event(Progress::Done {
            reference: r.familiar_string(),
            digest: Some(mdigest.clone()),
        });
        Ok(mdigest)
    }
}
