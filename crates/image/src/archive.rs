//! docker-archive load/save (classic `<id>/layer.tar` form and the OCI-layout-inside form of
//! Docker 25+), OCI image layout import/export, `docker import` of a rootfs tar and export of
//! a container filesystem.
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoCtx, Result};
use crate::layer::{decompress, Compression};
use crate::lease::Lease;
use crate::model::{self, Descriptor, ImageConfig, Index, Manifest, ManifestKind, Platform};
use crate::progress::{Progress, ProgressSink};
use crate::reference::Reference;
use crate::service::{familiar, ImageService, PendingLayer};
use crate::store::ImageRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const SMALL: u64 = 4 << 20;

#[derive(Debug, Deserialize, Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Files of an archive/layout, ingested: small metadata files in memory, the rest as blobs.
#[derive(Default)]
struct Ingested {
    small: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Digest>,
    links: HashMap<String, String>,
    staged: Vec<Digest>,
}

fn norm_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl Ingested {
    fn resolve(&self, p: &str) -> String {
        let mut cur = norm_path(p);
        for _ in 0..16 {
            match self.links.get(&cur) {
                Some(t) => cur = t.clone(),
                None => break,
            }
        }
        cur
    }
    fn has(&self, p: &str) -> bool {
        let r = self.resolve(p);
        self.small.contains_key(&r) || self.blobs.contains_key(&r)
    }
    fn bytes(&self, svc: &ImageService, p: &str) -> Result<Vec<u8>> {
        let r = self.resolve(p);
        if let Some(b) = self.small.get(&r) {
            return Ok(b.clone());
        }
        match self.blobs.get(&r) {
            Some(d) => svc.content.read_verified(d),
            None => Err(Error::invalid("archive", format!("missing file {p:?}"))),
        }
    }
    fn digest(&self, lease: &Lease, p: &str) -> Result<Digest> {
        let r = self.resolve(p);
        if let Some(d) = self.blobs.get(&r) {
            return Ok(d.clone());
        }
        match self.small.get(&r) {
            Some(b) => lease.write_bytes(b, None),
            None => Err(Error::invalid("archive", format!("missing file {p:?}"))),
        }
    }
}

fn expected_from_path(p: &str) -> Option<Digest> {
    p.strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok())
}

fn is_small_meta(p: &str, size: u64) -> bool {
    size <= SMALL
        && (p.ends_with(".json")
            || p == "repositories"
            || p == "oci-layout"
            || p == "index.json"
            || p.ends_with("/json")
            || p.ends_with("VERSION"))
}

fn media_type_of_blob(svc: &ImageService, d: &Digest) -> Result<String> {
    let mut head = [0u8; 8];
    let mut f = svc.content.open_blob(d)?;
    let n = f.read(&mut head).ctx("read blob", svc.content.path(d))?;
    Ok(match Compression::detect(&head[..n]) {
        Compression::Gzip => model::MEDIA_OCI_LAYER_GZIP,
        Compression::Zstd => model::MEDIA_OCI_LAYER_ZSTD,
        Compression::None => model::MEDIA_OCI_LAYER,
    }
    .to_string())
}

/// Tar/dir writer used by save/export.
trait Sink {
    fn dir(&mut self, path: &str) -> Result<()>;
    fn file(&mut self, path: &str, size: u64, r: &mut dyn Read) -> Result<()>;
}

struct TarSink<W: Write> {
    b: tar::Builder<W>,
}
impl<W: Write> Sink for TarSink<W> {
    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        self.b
            .append_data(&mut h, path, std::io::empty())
            .ctx("write archive", path)
    }
    fn file(&mut self, path: &str, size: u64, r: &mut dyn Read) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(0);
        self.b
            .append_data(&mut h, path, r)
            .ctx("write archive", path)
    }
}

struct DirSink {
    root: PathBuf,
}
impl Sink for DirSink {
    fn dir(&mut self, path: &str) -> Result<()> {
        let p = self.root.join(path);
        std::fs::create_dir_all(&p).ctx("create dir", &p)
    }
    fn file(&mut self, path: &str, _size: u64, r: &mut dyn Read) -> Result<()> {
        let p = self.root.join(path);
        if path.starts_with("blobs/") && p.exists() {
            return Ok(()); // content-addressed: already there
        }
        let tmp = p.with_extension("tmp-berth");
        let mut f = std::fs::File::create(&tmp).ctx("create", &tmp)?;
        crate::store::copy_buf(r, &mut f).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        std::fs::rename(&tmp, &p).ctx("rename", &p)
    }
}

/// A loaded image.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub id: Digest,
    /// Familiar names (`busybox:latest`).
    pub tags: Vec<String>,
}

impl ImageService {
    fn ingest_tar(
        &self,
        r: &mut (dyn Read + Send),
        ing: &mut Ingested,
        lease: &Lease,
    ) -> Result<()> {
        // docker load accepts compressed archives too
        let dec = decompress(r)?;
        let mut ar = tar::Archive::new(dec);
        for e in ar.entries().ctx("read archive", "archive")? {
            let mut e =
                e.map_err(|err| Error::invalid("archive", format!("corrupt tar: {err}")))?;
            let path = norm_path(&String::from_utf8_lossy(&e.path_bytes()));
            let kind = e.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let t = e
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() {
                    let base = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    norm_path(&format!("{base}/{t}"))
                } else {
                    norm_path(&t)
                };
                ing.links.insert(path, target);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = e.size();
            if is_small_meta(&path, size) {
                let mut b = Vec::with_capacity(size as usize);
                e.read_to_end(&mut b).ctx("read archive entry", &path)?;
                ing.small.insert(path, b);
            } else if self.snapshots.kind() == crate::snapshot::SnapshotterKind::Overlay
                && size > 1024
            {
                let exp = expected_from_path(&path);
                let d = self.ingest_and_stage(&mut e, &path, exp.as_ref(), size, ing, lease)?;
                ing.blobs.insert(path, d);
            } else {
                let exp = expected_from_path(&path);
                let d = lease.write_from(&mut e, exp.as_ref(), Some(size)).map_err(
                    |err| match err {
                        Error::DigestMismatch {
                            expected, actual, ..
                        } => Error::DigestMismatch {
                            what: format!("archive member {path}"),
                            expected,
                            actual,
                        },
                        other => other,
                    },
                )?;
                ing.blobs.insert(path, d);
            }
        }
        Ok(())
    }

    fn ingest_and_stage(
        &self,
        e: &mut dyn Read,
        path: &str,
        exp: Option<&Digest>,
        size: u64,
        ing: &mut Ingested,
        lease: &Lease,
    ) -> Result<Digest> {
        let (d, staged) = self.write_blob_and_stage(
            e,
            &format!("archive member {path}"),
            exp,
            Some(size),
            lease,
        )?;
        if staged {
            ing.staged.push(d.clone());
        }
        Ok(d)
    }

    /// Remove staged unpacks that no image adopted.
    fn drop_staged(&self, ing: &Ingested) {
        if let Ok(mut g) = self.staged.lock() {
            for d in &ing.staged {
                if let Some((dir, _)) = g.remove(d) {
                    let _ = crate::snapshot::remove_tree(&dir);
                }
            }
        }
    }

    fn ingest_dir(&self, dir: &Path, lease: &Lease) -> Result<Ingested> {
        let mut ing = Ingested::default();
        fn rec(lease: &Lease, root: &Path, d: &Path, ing: &mut Ingested) -> Result<()> {
            for e in std::fs::read_dir(d).ctx("read dir", d)? {
                let e = e.ctx("read dir", d)?;
                let p = e.path();
                let md = std::fs::metadata(&p).ctx("stat", &p)?;
                let rel = p
                    .strip_prefix(root)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if md.is_dir() {
                    rec(lease, root, &p, ing)?;
                } else if md.is_file() {
                    if is_small_meta(&rel, md.len()) {
                        ing.small.insert(rel, std::fs::read(&p).ctx("read", &p)?);
                    } else {
                        let exp = expected_from_path(&rel);
                        let mut f = std::fs::File::open(&p).ctx("open", &p)?;
                        let d = lease.write_from(&mut f, exp.as_ref(), Some(md.len()))?;
                        ing.blobs.insert(rel, d);
                    }
                }
            }
            Ok(())
        }
        rec(lease, dir, dir, &mut ing)?;
        Ok(ing)
    }

    /// `docker load`: a docker-archive (either form) or an OCI layout tar, maybe compressed.
    pub fn load(
        &self,
        mut r: impl Read + Send,
        progress: &dyn ProgressSink,
    ) -> Result<Vec<LoadedImage>> {
        let lease = self.lease();
        let mut ing = Ingested::default();
        let res = self
            .ingest_tar(&mut r, &mut ing, &lease)
            .and_then(|()| self.load_ingested(&ing, None, progress, &lease));
        self.drop_staged(&ing);
        if res.is_ok() {
            lease.succeed();
        } // else dropping the lease removes the blobs this load brought in
        res
    }

    /// Import an OCI image layout directory (`oci-layout`, `index.json`, `blobs/`), tagging
    /// the image as `tag` when given (else by its `io.containerd.image.name` annotation).
    pub fn import_oci_dir(
        &self,
        dir: &Path,
        tag: Option<&str>,
        progress: &dyn ProgressSink,
    ) -> Result<Vec<LoadedImage>> {
        let tag = tag.map(Reference::parse_with_default_tag).transpose()?;
        let lease = self.lease();
        let ing = self.ingest_dir(dir, &lease)?;
        if !ing.has("index.json") {
            return Err(Error::invalid(
                dir.display().to_string(),
                "not an OCI image layout (no index.json)",
            ));
        }
        let out = self.load_ingested(&ing, tag, progress, &lease)?;
        lease.succeed();
        Ok(out)
    }

    fn load_ingested(
        &self,
        ing: &Ingested,
        tag: Option<Reference>,
        progress: &dyn ProgressSink,
        lease: &Lease,
    ) -> Result<Vec<LoadedImage>> {
        let mut out = Vec::new();
        if ing.has("manifest.json") && tag.is_none() {
            let mf = ing.bytes(self, "manifest.json")?;
            let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&mf)
                .map_err(|e| Error::json("manifest.json in archive", e))?;
            for ent in entries {
                let cfg_bytes = ing.bytes(self, &ent.config)?;
                let cfg = lease.write_bytes(&cfg_bytes, None)?;
                let mut layers = Vec::new();
                for lp in &ent.layers {
                    let d = ing.digest(lease, lp)?;
                    layers.push(PendingLayer {
                        media_type: media_type_of_blob(self, &d)?,
                        size: self.content.size(&d)?,
                        blob: d.clone(),
                        diff_id: d,
                    });
                }
                let mut tags = Vec::new();
                for t in ent.repo_tags.unwrap_or_default() {
                    tags.push(Reference::parse_with_default_tag(&t)?);
                }
                let rec = self.register(&cfg, layers, None, &tags, &[], progress, lease)?;
                out.push(self.loaded(&rec, &tags, progress));
            }
            return Ok(out);
        }
        if !ing.has("index.json") {
            return Err(Error::invalid(
                "archive",
                "neither manifest.json (docker-archive) nor index.json (OCI layout) found",
            ));
        }
        let idx: Index = serde_json::from_slice(&ing.bytes(self, "index.json")?)
            .map_err(|e| Error::json("index.json", e))?;
        for desc in &idx.manifests {
            let name = tag.clone().or_else(|| {
                let ann = desc.annotations.as_ref()?;
                ann.get("io.containerd.image.name")
                    .cloned()
                    .or_else(|| {
                        ann.get("org.opencontainers.image.ref.name")
                            .filter(|n| n.contains(':') || n.contains('/'))
                            .cloned()
                    })
                    .and_then(|n| Reference::parse_with_default_tag(&n).ok())
            });
            let (man, mdigest) = self.resolve_layout_manifest(ing, desc, lease)?;
            let cfg_bytes =
                ing.bytes(self, &format!("blobs/sha256/{}", man.config.digest.hex()))?;
            let cfg = lease.write_bytes(&cfg_bytes, Some(&man.config.digest))?;
            let mut layers = Vec::new();
            for l in &man.layers {
                let d = ing.digest(lease, &format!("blobs/sha256/{}", l.digest.hex()))?;
                if d != l.digest {
                    return Err(Error::DigestMismatch {
                        what: "layer blob in layout".into(),
                        expected: l.digest.to_string(),
                        actual: d.to_string(),
                    });
                }
                layers.push(PendingLayer {
                    media_type: l.media_type.clone(),
                    size: l.size,
                    blob: d.clone(),
                    diff_id: d,
                });
            }
            let tags: Vec<Reference> = name.into_iter().collect();
            let rec = self.register(&cfg, layers, Some(mdigest), &tags, &[], progress, lease)?;
            out.push(self.loaded(&rec, &tags, progress));
        }
        Ok(out)
    }

    fn loaded(
        &self,
        rec: &ImageRecord,
        tags: &[Reference],
        progress: &dyn ProgressSink,
    ) -> LoadedImage {
        let names: Vec<String> = tags
            .iter()
            .map(|t| t.clone().with_default_tag().familiar_string())
            .collect();
        if names.is_empty() {
            progress.event(Progress::Loaded {
                name: format!("ID: {}", rec.id),
            });
        }
        for n in &names {
            progress.event(Progress::Loaded { name: n.clone() });
        }
        LoadedImage {
            id: rec.id.clone(),
            tags: names,
        }
    }

    fn resolve_layout_manifest(
        &self,
        ing: &Ingested,
        desc: &Descriptor,
        lease: &Lease,
    ) -> Result<(Manifest, Digest)> {
        let mut d = desc.clone();
        for _ in 0..4 {
            let b = ing.bytes(self, &format!("blobs/sha256/{}", d.digest.hex()))?;
            let got = lease.write_bytes(&b, Some(&d.digest))?;
            match model::parse_manifest(&b, Some(&d.media_type), &format!("manifest {}", d.digest))?
            {
                ManifestKind::Image(m) => return Ok((m, got)),
                ManifestKind::Index(i) => {
                    d = model::select_platform(&i, &Platform::linux_amd64(), "OCI layout")?.clone()
                }
            }
        }
        Err(Error::invalid("OCI layout", "index nesting too deep"))
    }

    /// Images to save, with the tags requested for each (Docker semantics: a name saves that
    /// tag, an ID saves the image with no tag).
    fn save_set(&self, names: &[&str]) -> Result<Vec<(ImageRecord, Vec<Reference>)>> {
        let mut out: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
        for n in names {
            let rec = self.resolve(n)?;
            let by_id = !crate::service::names_image(&rec, n);
            let tags: Vec<Reference> = if by_id {
                vec![]
            } else {
                let r = Reference::parse_with_default_tag(n)?;
                if r.digest().is_some() {
                    vec![]
                } else {
                    vec![r]
                }
            };
            match out.iter_mut().find(|(r, _)| r.id == rec.id) {
                Some((_, t)) => t.extend(tags),
                None => out.push((rec, tags)),
            }
        }
        Ok(out)
    }

    /// `docker save`: writes the Docker 25+ form (OCI layout + manifest.json + repositories),
    /// layers uncompressed, readable by docker, skopeo (`docker-archive:`) and `berth load`.
    pub fn save(&self, names: &[&str], w: impl Write) -> Result<()> {
        let set = self.save_set(names)?;
        let mut sink = TarSink {
            b: tar::Builder::new(w),
        };
        self.write_layout(&set, &mut sink, true)?;
        sink.b
            .into_inner()
            .ctx("finish archive", "save")?
            .flush()
            .ctx("flush", "save")
    }

    /// Export images as an OCI image layout directory (stored blobs as-is).
    pub fn export_oci_dir(&self, names: &[&str], dir: &Path) -> Result<()> {
        let set = self.save_set(names)?;
        std::fs::create_dir_all(dir).ctx("create dir", dir)?;
        let mut sink = DirSink {
            root: dir.to_path_buf(),
        };
        self.write_layout(&set, &mut sink, false)
    }

    /// Export images as an OCI image layout tar.
    pub fn export_oci_tar(&self, names: &[&str], w: impl Write) -> Result<()> {
        let set = self.save_set(names)?;
        let mut sink = TarSink {
            b: tar::Builder::new(w),
        };
        self.write_layout(&set, &mut sink, false)?;
        sink.b
            .into_inner()
            .ctx("finish archive", "export")?
            .flush()
            .ctx("flush", "export")
    }

    fn write_layout(
        &self,
        set: &[(ImageRecord, Vec<Reference>)],
        sink: &mut dyn Sink,
        docker: bool,
    ) -> Result<()> {
        sink.dir("blobs/")?;
        sink.dir("blobs/sha256/")?;
        let mut written: std::collections::HashSet<Digest> = Default::default();
        let mut index = Index {
            schema_version: 2,
            media_type: Some(model::MEDIA_OCI_INDEX.into()),
            manifests: vec![],
            annotations: None,
        };
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        // The layer blobs are held while the save reads them (no tar-split pass drops one
        // between the look and the read), and a layer that cannot be given back fails the save
        // before anything is written.
        let lease = self.lease();
        for (rec, _) in set {
            let chains = crate::service::layer_chains(rec);
            for (l, chain) in rec.layers.iter().zip(&chains) {
                lease.hold(&l.blob);
                self.precheck_layer(l, chain)?;
            }
        }
        for (rec, tags) in set {
            let cfg = self.content.read_verified(&rec.id)?;
            let mut man_layers = Vec::new();
            let mut layer_paths = Vec::new();
            let chains = crate::service::layer_chains(rec);
            for (l, chain) in rec.layers.iter().zip(&chains) {
                // a layer kept only as its unpacked snapshot goes out uncompressed
                let plain = docker || !self.content.exists(&l.blob);
                let (digest, size) = if plain {
                    // a tar rebuilt from tar-split checks its diff_id itself as it streams
                    let from_blob = self.content.exists(&l.blob);
                    let (size, mut r) = self.layer_stream(l, chain)?;
                    if written.insert(l.diff_id.clone()) {
                        let path = format!("blobs/sha256/{}", l.diff_id.hex());
                        if !from_blob {
                            sink.file(&path, size, &mut r)?;
                            (l.diff_id.clone(), size)
                        } else {
                            let mut hr = HashingReader::new(&mut r);
                            sink.file(&path, size, &mut hr)?;
                            let (got, _) = hr.finish();
                            if got != l.diff_id {
                                return Err(Error::DigestMismatch {
                                    what: format!("layer {} while saving", l.blob),
                                    expected: l.diff_id.to_string(),
                                    actual: got.to_string(),
                                });
                            }
                            (l.diff_id.clone(), size)
                        }
                    } else {
                        (l.diff_id.clone(), size)
                    }
                } else {
                    let size = self.content.size(&l.blob)?;
                    if written.insert(l.blob.clone()) {
                        let mut f = self.content.open_blob(&l.blob)?;
                        sink.file(&format!("blobs/sha256/{}", l.blob.hex()), size, &mut f)?;
                    }
                    (l.blob.clone(), size)
                };
                let mt = if plain {
                    model::MEDIA_OCI_LAYER.to_string()
                } else {
                    l.media_type.clone()
                };
                man_layers.push(Descriptor::new(&mt, digest.clone(), size));
                layer_paths.push(format!("blobs/sha256/{}", digest.hex()));
            }
            if written.insert(rec.id.clone()) {
                sink.file(
                    &format!("blobs/sha256/{}", rec.id.hex()),
                    cfg.len() as u64,
                    &mut &cfg[..],
                )?;
            }
            // manifest: reuse the stored one when its layers are what we wrote
            let stored = rec
                .manifest
                .as_ref()
                .and_then(|m| self.content.read_verified(m).ok().map(|b| (m.clone(), b)));
            let (mdigest, mbytes) = match stored {
                Some((d, b)) if matches!(model::parse_manifest(&b, None, "manifest"), Ok(ManifestKind::Image(ref m)) if m.layers.iter().map(|x| &x.digest).eq(man_layers.iter().map(|x| &x.digest))) => {
                    (d, b)
                }
                _ => {
                    let m = Manifest {
                        schema_version: 2,
                        media_type: Some(model::MEDIA_OCI_MANIFEST.into()),
                        config: Descriptor::new(
                            model::MEDIA_OCI_CONFIG,
                            rec.id.clone(),
                            cfg.len() as u64,
                        ),
                        layers: man_layers.clone(),
                        annotations: None,
                    };
                    let b = serde_json::to_vec(&m).map_err(|e| Error::json("manifest", e))?;
                    (Digest::of(&b), b)
                }
            };
            let mt = match model::parse_manifest(&mbytes, None, "manifest") {
                Ok(_) => serde_json::from_slice::<serde_json::Value>(&mbytes)
                    .ok()
                    .and_then(|v| {
                        v.get("mediaType")
                            .and_then(|x| x.as_str())
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| model::MEDIA_OCI_MANIFEST.into()),
                Err(e) => return Err(e),
            };
            if written.insert(mdigest.clone()) {
                sink.file(
                    &format!("blobs/sha256/{}", mdigest.hex()),
                    mbytes.len() as u64,
                    &mut &mbytes[..],
                )?;
            }
            let base = Descriptor::new(&mt, mdigest.clone(), mbytes.len() as u64);
            if tags.is_empty() {
                index.manifests.push(base.clone());
            }
            for t in tags {
                let mut d = base.clone();
                let mut ann = BTreeMap::new();
                ann.insert("io.containerd.image.name".to_string(), t.to_string());
                ann.insert(
                    "org.opencontainers.image.ref.name".to_string(),
                    t.tag().unwrap_or("latest").to_string(),
                );
                d.annotations = Some(ann);
                index.manifests.push(d);
                repositories.entry(t.familiar_name()).or_default().insert(
                    t.tag().unwrap_or("latest").into(),
                    rec.layers
                        .last()
                        .map(|l| l.diff_id.hex().to_string())
                        .unwrap_or_default(),
                );
            }
            docker_manifest.push(DockerManifestEntry {
                config: format!("blobs/sha256/{}", rec.id.hex()),
                repo_tags: if tags.is_empty() {
                    None
                } else {
                    Some(tags.iter().map(|t| t.familiar_string()).collect())
                },
                layers: layer_paths,
            });
        }
        let idx = serde_json::to_vec(&index).map_err(|e| Error::json("index.json", e))?;
        sink.file("index.json", idx.len() as u64, &mut &idx[..])?;
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        sink.file("oci-layout", layout.len() as u64, &mut &layout[..])?;
        if docker {
            let m = serde_json::to_vec(&docker_manifest)
                .map_err(|e| Error::json("manifest.json", e))?;
            sink.file("manifest.json", m.len() as u64, &mut &m[..])?;
            if !repositories.is_empty() {
                let r = serde_json::to_vec(&repositories)
                    .map_err(|e| Error::json("repositories", e))?;
                sink.file("repositories", r.len() as u64, &mut &r[..])?;
            }
        }
        Ok(())
    }

    /// `docker import`: a rootfs tar (plain/gzip/zstd) as a one-layer image, with `changes`
    /// (Dockerfile instructions CMD ENTRYPOINT ENV WORKDIR USER EXPOSE LABEL VOLUME STOPSIGNAL).
    pub fn import(
        &self,
        mut r: impl Read + Send,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<ImageRecord> {
        let tagref = tag.map(Reference::parse_with_default_tag).transpose()?;
        let mut cc = model::ContainerConfig::default();
        for c in changes {
            apply_change(&mut cc, c)?;
        }
        let lease = self.lease();
        let blob = lease.write_from(&mut r, None, None)?;
        // diff_id: hash of the uncompressed stream
        let mut h = HashingReader::new(decompress(self.content.open_blob(&blob)?)?);
        std::io::copy(&mut h, &mut std::io::sink())
            .ctx("read imported tar", self.content.path(&blob))?;
        let (diff_id, _) = h.finish();
        let p = platform.cloned().unwrap_or_else(Platform::linux_amd64);
        let now = berth_fsutil::rfc3339_nano_fixed_now();
        let cfg = ImageConfig {
            created: Some(now.clone()),
            author: None,
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
            config: Some(cc),
            rootfs: model::RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id.clone()],
            },
            history: vec![model::History {
                created: Some(now),
                created_by: None,
                comment: Some(message.unwrap_or("Imported from -").to_string()),
                author: None,
                empty_layer: false,
            }],
            comment: message.map(str::to_string),
            docker_version: None,
        };
        let cb = serde_json::to_vec(&cfg).map_err(|e| Error::json("image config", e))?;
        let cd = lease.write_bytes(&cb, None)?;
        let layer = PendingLayer {
            media_type: media_type_of_blob(self, &blob)?,
            size: self.content.size(&blob)?,
            blob,
            diff_id,
        };
        let tags: Vec<Reference> = tagref.into_iter().collect();
        let rec = self.register(
            &cd,
            vec![layer],
            None,
            &tags,
            &[],
            &crate::progress::NoProgress,
            &lease,
        )?;
        lease.succeed();
        Ok(rec)
    }

    /// `docker export`: a mounted (or copy-snapshot) container filesystem as a tar.
    pub fn export_fs(&self, rootfs: &Path, w: impl Write) -> Result<()> {
        crate::layer::pack_dir(rootfs, crate::layer::PackMode::Plain, w)?
            .flush()
            .ctx("flush", rootfs)
    }

    /// Familiar names of an image (for messages).
    pub fn names(&self, rec: &ImageRecord) -> Vec<String> {
        rec.repo_tags.iter().map(|t| familiar(t)).collect()
    }
}

/// Split a Dockerfile-ish argument list: JSON array or shell words (with double quotes).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    let mut any = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                q = !q;
                any = true;
            }
            c if c.is_whitespace() && !q => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn exec_form(arg: &str) -> Vec<String> {
    let t = arg.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), t.to_string()]
}

/// Apply one `--change` instruction.
pub fn apply_change(c: &mut model::ContainerConfig, change: &str) -> Result<()> {
    let t = change.trim();
    let (ins, arg) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let arg = arg.trim();
    let bad = |why: &str| Error::invalid(format!("change {change:?}"), why.to_string());
    match ins.to_ascii_uppercase().as_str() {
        "CMD" => c.cmd = Some(exec_form(arg)),
        "ENTRYPOINT" => c.entrypoint = Some(exec_form(arg)),
        "WORKDIR" => c.working_dir = Some(arg.to_string()),
        "USER" => c.user = Some(arg.to_string()),
        "STOPSIGNAL" => c.stop_signal = Some(arg.to_string()),
        "ENV" => {
            let env = c.env.get_or_insert_with(Vec::new);
            let mut set = |k: &str, v: &str| {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
                env.push(format!("{k}={v}"));
            };
            let ws = words(arg);
            if ws.first().map(|w| w.contains('=')).unwrap_or(false) {
                for w in ws {
                    let (k, v) = w.split_once('=').ok_or_else(|| bad("ENV expects key=value pairs"))?;
                    set(k, v);
                }
            } else {
                let (k, v) = arg.split_once(char::is_whitespace).ok_or_else(|| bad("ENV expects KEY VALUE or KEY=VALUE"))?;
                set(k, v.trim());
            }
        }
        "LABEL" => {
            let l = c.labels.get_or_insert_with(BTreeMap::new);
            for w in words(arg) {
                let (k, v) = w.split_once('=').ok_or_else(|| bad("LABEL expects key=value"))?;
                l.insert(k.to_string(), v.to_string());
            }
        }
        "EXPOSE" => {
            let p = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for w in words(arg) {
                let key = if w.contains('/') { w.to_lowercase() } else { format!("{w}/tcp") };
                let num = key.split('/').next().unwrap_or("");
                if num.parse::<u16>().is_err() && !num.contains('-') {
                    return Err(bad("invalid port"));
                }
                p.insert(key, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let v = c.volumes.get_or_insert_with(BTreeMap::new);
            let list = if arg.starts_with('[') { serde_json::from_str::<Vec<String>>(arg).map_err(|_| bad("bad JSON list"))? } else { words(arg) };
            for p in list {
                v.insert(p, serde_json::json!({}));
            }
        }
        other => return Err(bad(&format!("{other} is not a valid change command (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR)"))),
    }
    Ok(())
}
