//! The image service the daemon talks to: one root dir holding the content store, the image
//! metadata and the snapshotter. All methods are blocking; call them from `spawn_blocking`.
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, IoCtx, Result};
use crate::layer::Compression;
use crate::layer::{unpack_layer, UnpackOptions};
use crate::model::{self, Descriptor, ImageConfig, Manifest};
use crate::progress::{Progress, ProgressSink};
use crate::reference::Reference;
use crate::snapshot::{MountSpec, Snapshotter, SnapshotterKind};
use crate::store::{ContentStore, ImageRecord, LayerRecord, MetadataStore};
use serde::Serialize;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

/// `docker image inspect` data, with Docker's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: Option<model::ContainerConfig>,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub root_f_s: RootFsInspect,
    pub metadata: InspectMetadata,
}
#[derive(Debug, Clone, Serialize)]
pub struct RootFsInspect {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}
#[derive(Debug, Clone, Serialize)]
pub struct InspectMetadata {
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

/// `docker image ls` row.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Labels")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "ParentId")]
    pub parent_id: String,
    #[serde(rename = "Containers")]
    pub containers: i64,
    #[serde(rename = "SharedSize")]
    pub shared_size: i64,
}

/// `docker history` row.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "CreatedBy")]
    pub created_by: String,
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Comment")]
    pub comment: String,
}

/// What `delete` did (Docker's `Untagged` / `Deleted` items).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteReport {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

/// What gc freed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub snapshots_removed: Vec<Digest>,
    pub bytes_freed: u64,
}

/// A layer to be registered: stored blob + its diff_id from the config.
pub(crate) struct PendingLayer {
    pub blob: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

type Slot = std::sync::Mutex<Option<Result<(LayerRecord, u64)>>>;

/// Whether `name` is one of the image's names (a tag or repo digest), rather than its ID.
pub(crate) fn names_image(rec: &ImageRecord, name: &str) -> bool {
    Reference::parse_with_default_tag(name)
        .map(|r| {
            rec.repo_tags.contains(&r.to_string()) || rec.repo_digests.contains(&r.to_string())
        })
        .unwrap_or(false)
}

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

    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for rec in self.meta.list() {
            let cfg = self.config_of(&rec).ok();
            out.push(ImageSummary {
                id: rec.id.to_string(),
                repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
                repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
                created: cfg
                    .as_ref()
                    .and_then(|c| c.created.as_deref())
                    .map(crate::util::parse_rfc3339)
                    .unwrap_or(0),
                size: rec.size,
                labels: cfg
                    .as_ref()
                    .and_then(|c| c.config.as_ref())
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default(),
                parent_id: String::new(),
                containers: -1,
                shared_size: -1,
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(out)
    }

    /// Each image (by ID) with its layers' chain IDs and unpacked sizes, bottom to top: what
    /// `system df` counts once per layer however many images share it.
    pub fn layer_sizes(&self) -> Vec<(String, Vec<(Digest, u64)>)> {
        self.meta
            .list()
            .into_iter()
            .map(|rec| {
                let sizes = layer_chains(&rec)
                    .into_iter()
                    .map(|c| {
                        let n = self.snapshots.committed_meta(&c).map_or(0, |m| m.size);
                        (c, n)
                    })
                    .collect();
                (rec.id.to_string(), sizes)
            })
            .collect()
    }

    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let rec = self.resolve(name)?;
        let cfg = self.config_of(&rec)?;
        Ok(ImageInspect {
            id: rec.id.to_string(),
            repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
            parent: String::new(),
            comment: cfg.comment.clone().unwrap_or_default(),
            created: cfg.created.clone().unwrap_or_default(),
            docker_version: cfg.docker_version.clone().unwrap_or_default(),
            author: cfg.author.clone().unwrap_or_default(),
            config: cfg.config.clone(),
            architecture: cfg.architecture.clone(),
            variant: cfg.variant.clone(),
            os: cfg.os.clone(),
            size: rec.size,
            root_f_s: RootFsInspect {
                kind: "layers".into(),
                layers: cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            metadata: InspectMetadata {
                last_tag_time: rec.stored_at.clone(),
            },
        })
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let rec = self.resolve(name)?;
        let cfg = self.config_of(&rec)?;
        let chains = layer_chains(&rec);
        let sizes: Vec<u64> = chains
            .iter()
            .map(|c| {
                self.snapshots
                    .committed_meta(c)
                    .map(|m| m.size)
                    .unwrap_or(0)
            })
            .collect();
        let mut li = 0;
        let mut out = Vec::new();
        let hist = if cfg.history.is_empty() {
            rec.layers
                .iter()
                .map(|_| model::History::default())
                .collect()
        } else {
            cfg.history.clone()
        };
        for h in &hist {
            let size = if h.empty_layer {
                0
            } else {
                li += 1;
                sizes.get(li - 1).copied().unwrap_or(0)
            };
            out.push(HistoryEntry {
                id: "<missing>".into(),
                created: h
                    .created
                    .as_deref()
                    .map(crate::util::parse_rfc3339)
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: None,
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        if let Some(first) = out.first_mut() {
            first.id = rec.id.to_string();
            let tags: Vec<String> = rec.repo_tags.iter().map(|t| familiar(t)).collect();
            first.tags = if tags.is_empty() { None } else { Some(tags) };
        }
        Ok(out)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference> {
        let rec = self.resolve(source)?;
        self.meta.tag(&rec.id, target)
    }

    /// `docker rmi`: a name removes that name (and the image when it was the last name and
    /// not in use); an ID removes the image (needs `force` when it has several names).
    /// `in_use` says whether a container uses the image (then it is refused without force).
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<DeleteReport> {
        let rec = self.resolve(name)?;
        let mut rep = DeleteReport::default();
        let by_id = !names_image(&rec, name);
        if !by_id {
            let (id, last) = self.meta.untag(name)?;
            rep.untagged.push(familiar(
                &Reference::parse_with_default_tag(name)?.to_string(),
            ));
            // Digest references that went with the repository's last tag.
            let left = self
                .meta
                .get(&id)
                .map(|r| r.repo_digests)
                .unwrap_or_default();
            for d in rec.repo_digests.iter().filter(|d| !left.contains(d)) {
                let f = familiar(d);
                if !rep.untagged.contains(&f) {
                    rep.untagged.push(f);
                }
            }
            if last && !in_use(&id) {
                self.meta.remove(&id)?;
                rep.deleted.push(id.to_string());
            }
            return Ok(rep);
        }
        if in_use(&rec.id) && !force {
            return Err(Error::Conflict(format!(
                "unable to delete {} (must be forced) - image is being used by a container",
                rec.id.short()
            )));
        }
        if rec.repo_tags.len() > 1 && !force {
            return Err(Error::Conflict(format!("unable to delete {} (must be forced) - image is referenced in multiple repositories", rec.id.short())));
        }
        for t in rec.repo_tags.iter().chain(rec.repo_digests.iter()) {
            rep.untagged.push(familiar(t));
        }
        self.meta.remove(&rec.id)?;
        rep.deleted.push(rec.id.to_string());
        Ok(rep)
    }

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

/// Chain IDs of an image's layers, bottom to top.
pub(crate) fn layer_chains(rec: &ImageRecord) -> Vec<Digest> {
    chain_ids(
        &rec.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    )
}
