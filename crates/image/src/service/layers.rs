//! Layers into the store: blobs written and verified, unpacked into snapshots, images registered.
use super::ImageService;
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, IoCtx, Result};
use crate::layer::Compression;
use crate::layer::{unpack_layer, UnpackOptions};
use crate::model::{self, Descriptor, ImageConfig, Manifest};
use crate::progress::{Progress, ProgressSink};
use crate::reference::Reference;
use crate::snapshot::SnapshotterKind;
use crate::store::{ImageRecord, LayerRecord};
use std::io::{Read, Write};

/// A layer to be registered: stored blob + its diff_id from the config.
pub(crate) struct PendingLayer {
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

type Slot = std::sync::Mutex<Option<Result<(LayerRecord, u64)>>>;

fn member_err(err: Error, path: &str) -> Error {
    match err {
        Error::DigestMismatch {
            expected, actual, ..
        } => Error::DigestMismatch {
            what: path.to_string(),
            expected,
            actual,
        },
        other => other,
    }
}

impl ImageService {
    /// Unpack (once) every layer of an image into committed snapshots, verifying diff_ids.
    /// Overlay layers are unpacked two at a time.
    pub(crate) fn unpack_layers(
        &self,
        layers: &[PendingLayer],
        progress: &dyn ProgressSink,
    ) -> Result<Vec<(LayerRecord, u64)>> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let parallel = self.snapshots.kind() == SnapshotterKind::Overlay;
        let results: Vec<Slot> = layers.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = |i: usize| self.unpack_layers_at(layers, &chains, i, progress);
        let workers = if parallel {
            2.min(layers.len()).max(1)
        } else {
            1
        };
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= layers.len() {
                        break;
                    }
                    let r = work(i);
                    let failed = r.is_err();
                    if let Ok(mut g) = results[i].lock() {
                        *g = Some(r);
                    }
                    if failed {
                        next.store(layers.len(), std::sync::atomic::Ordering::SeqCst);
                        break;
                    }
                });
            }
        });
        let mut out = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r.into_inner().ok().flatten() {
                Some(r) => out.push(r?),
                None => {
                    return Err(Error::Cancelled(format!(
                        "layer {} not unpacked",
                        layers[i].blob
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Store a stream as a blob and, when it looks like a layer, unpack it at the
    /// same time into a staging dir on another thread (adopted later if it is a layer whose
    /// diff_id matches; removed otherwise).
    pub(crate) fn write_blob_and_stage(
        &self,
        e: &mut dyn Read,
        path: &str,
        exp: Option<&Digest>,
        size: Option<u64>,
        lease: &crate::lease::Lease,
    ) -> Result<(Digest, bool)> {
        let mut w = lease.writer(exp.cloned(), size)?;
        let mut head = vec![0u8; 512];
        let mut n = 0;
        while n < head.len() {
            match e.read(&mut head[n..]).ctx("read archive member", path)? {
                0 => break,
                k => n += k,
            }
        }
        head.truncate(n);
        let looks_layer = Compression::detect(&head) != Compression::None
            || (n >= 262 && &head[257..262] == b"ustar");
        let plain = Compression::detect(&head) == Compression::None;
        w.write_all(&head).ctx("write blob", path)?;
        if !looks_layer {
            crate::store::copy_buf(e, &mut w).ctx("copy", path)?;
            return w
                .commit()
                .map_err(|err| member_err(err, path))
                .map(|d| (d, false));
        }
        let stage = self.snapshots.stage_dir()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(32);
        let mode = self.snapshots.whiteout_mode();
        let res = std::thread::scope(|s| {
            let fsdir = stage.join("fs");
            let h = s.spawn(move || {
                let rd = crate::layer::ChanReader {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                };
                let o = crate::layer::UnpackOptions {
                    whiteouts: mode,
                    name: path.to_string(),
                };
                if plain {
                    // the blob digest computed on this same stream is the diff_id
                    crate::layer::unpack_unhashed(rd, &fsdir, &o)
                } else {
                    crate::layer::unpack_layer(rd, &fsdir, &o)
                }
            });
            let mut alive = tx.send(Ok(head)).is_ok();
            let r = (|| -> Result<()> {
                loop {
                    let mut buf = vec![0u8; 256 * 1024];
                    let k = e.read(&mut buf).ctx("read archive member", path)?;
                    if k == 0 {
                        return Ok(());
                    }
                    buf.truncate(k);
                    w.write_all(&buf).ctx("write blob", path)?;
                    if alive && tx.send(Ok(buf)).is_err() {
                        alive = false;
                    }
                }
            })();
            drop(tx);
            // verify + fsync the blob while the unpacker finishes
            let committed = r.and_then(|()| w.commit().map_err(|err| member_err(err, path)));
            let st = h.join();
            (committed, st)
        });
        let (committed, st) = res;
        let cleanup = || {
            let _ = crate::snapshot::remove_tree(&stage);
        };
        let d = match committed {
            Ok(d) => d,
            Err(err) => {
                cleanup();
                return Err(err);
            }
        };
        match st {
            Ok(Ok(mut st)) => {
                if plain {
                    st.diff_id = d.clone();
                }
                let mut g = self
                    .staged
                    .lock()
                    .map_err(|_| Error::Conflict("staging lock poisoned".into()))?;
                if g.contains_key(&d) {
                    cleanup();
                    return Ok((d, false));
                }
                g.insert(d.clone(), (stage, st));
                Ok((d, true))
            }
            _ => {
                cleanup(); // not a (valid) layer: the regular unpack will report it if needed
                Ok((d, false))
            }
        }
    }

    /// Remove a staged unpack that will not be adopted.
    pub(crate) fn drop_staged_blob(&self, d: &Digest) {
        if let Ok(mut g) = self.staged.lock() {
            if let Some((dir, _)) = g.remove(d) {
                let _ = crate::snapshot::remove_tree(&dir);
            }
        }
    }

    /// Unpack layer `i` of `layers` (chain IDs `chains`) into its committed snapshot.
    pub(crate) fn unpack_layers_at(
        &self,
        layers: &[PendingLayer],
        chains: &[Digest],
        i: usize,
        progress: &dyn ProgressSink,
    ) -> Result<(LayerRecord, u64)> {
        let l = &layers[i];
        let chain = &chains[i];
        let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
        let tar_size;
        if self.snapshots.has(chain) {
            progress.event(Progress::AlreadyExists {
                layer: l.blob.clone(),
            });
            let m = self.snapshots.committed_meta(chain)?;
            tar_size = m.tar_size;
            return Ok((
                LayerRecord {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    tar_size,
                },
                m.size,
            ));
        }
        let staged = self.staged.lock().ok().and_then(|mut g| g.remove(&l.blob));
        if let Some((dir, st)) = staged {
            let m = self.snapshots.adopt(chain, parent, &l.diff_id, &dir, &st)?;
            progress.event(Progress::Complete {
                layer: l.blob.clone(),
            });
            return Ok((
                LayerRecord {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    tar_size: m.tar_size,
                },
                m.size,
            ));
        }
        let total = l.size;
        let m = self
            .snapshots
            .commit_layer(chain, parent, &l.diff_id, |dir, mode| {
                let f = self.content.open_blob(&l.blob)?;
                let r = ProgressReader {
                    inner: f,
                    done: 0,
                    total,
                    layer: &l.blob,
                    sink: progress,
                    last: 0,
                };
                unpack_layer(
                    r,
                    dir,
                    &UnpackOptions {
                        whiteouts: mode,
                        name: format!("layer {}", l.blob),
                    },
                )
            })?;
        tar_size = m.tar_size;
        progress.event(Progress::Complete {
            layer: l.blob.clone(),
        });
        Ok((
            LayerRecord {
                diff_id: l.diff_id.clone(),
                blob: l.blob.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                tar_size,
            },
            m.size,
        ))
    }

    /// Store an image whose config and layer blobs are already in the content store:
    /// unpack its layers, write a manifest for it, record it with `tags`.
    #[allow(clippy::too_many_arguments)] // the image's parts, its names, and the operation's lease
    pub(crate) fn register(
        &self,
        config: &Digest,
        layers: Vec<PendingLayer>,
        manifest: Option<Digest>,
        tags: &[Reference],
        repo_digests: &[String],
        progress: &dyn ProgressSink,
        lease: &crate::lease::Lease,
    ) -> Result<ImageRecord> {
        // Everything the record will reference is held until the record is stored.
        for d in std::iter::once(config)
            .chain(manifest.iter())
            .chain(layers.iter().map(|l| &l.blob))
        {
            lease.hold(d);
        }
        let cfg_bytes = self.content.read_verified(config)?;
        let cfg = ImageConfig::parse(&cfg_bytes, &format!("image config {config}"))?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::invalid(
                format!("image {config}"),
                format!(
                    "config lists {} layers (diff_ids) but the manifest has {}",
                    cfg.rootfs.diff_ids.len(),
                    layers.len()
                ),
            ));
        }
        let mut layers = layers;
        for (l, d) in layers.iter_mut().zip(cfg.rootfs.diff_ids.iter()) {
            l.diff_id = d.clone();
        }
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        for chain in chain_ids(&diff_ids) {
            lease.hold_snapshot(&chain);
        }
        let unpacked = self.unpack_layers(&layers, progress)?;
        let size: u64 = unpacked.iter().map(|(_, s)| *s).sum();
        let recs: Vec<LayerRecord> = unpacked.into_iter().map(|(l, _)| l).collect();
        let manifest = match manifest {
            Some(m) => m,
            None => {
                let m = Manifest {
                    schema_version: 2,
                    media_type: Some(model::MEDIA_OCI_MANIFEST.into()),
                    config: Descriptor::new(
                        model::MEDIA_OCI_CONFIG,
                        config.clone(),
                        cfg_bytes.len() as u64,
                    ),
                    layers: recs
                        .iter()
                        .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.size))
                        .collect(),
                    annotations: None,
                };
                let b = serde_json::to_vec(&m).map_err(|e| Error::json("manifest", e))?;
                lease.write_bytes(&b, None)?
            }
        };
        let rec = ImageRecord {
            id: config.clone(),
            repo_tags: tags
                .iter()
                .map(|t| t.clone().with_default_tag().to_string())
                .collect(),
            repo_digests: repo_digests.to_vec(),
            layers: recs,
            manifest: Some(manifest),
            stored_at: berth_fsutil::rfc3339_nano_fixed_now(),
            size,
        };
        self.meta.put(rec)?;
        // flush the new snapshots in the background (see snapshot::JOURNAL for crash safety)
        // then drop the layer blobs the snapshots can rebuild (see crate::slim)
        let d = self.dropper();
        std::thread::spawn(move || {
            if let Err(e) = d.run() {
                tracing::warn!("syncing snapshots and dropping their layer blobs: {e}");
            }
        });
        self.meta
            .get(config)
            .ok_or_else(|| Error::ImageNotFound(config.to_string()))
    }
}

struct ProgressReader<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    layer: &'a Digest,
    sink: &'a dyn ProgressSink,
    last: u64,
}
impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.last >= 1 << 20 || (n == 0 && self.done != self.last) {
            self.last = self.done;
            self.sink.event(Progress::Extracting {
                layer: self.layer.clone(),
                current: self.done,
                total: self.total,
            });
        }
        Ok(n)
    }
}
