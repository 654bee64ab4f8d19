//! Content store (sha256-addressed blobs, verified before visible) and the image metadata
//! store (images by ID, tags, repo digests) persisted crash-safely.
use crate::digest::Digest;
use crate::error::{Error, IoCtx, Result};
use crate::reference::Reference;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temp-file name (pid + counter + time) with the given prefix.
pub(crate) fn tmp_name(prefix: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{t}", std::process::id())
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open directory for fsync", dir)?;
    f.sync_all().ctx("fsync directory", dir)
}

/// Write `data` to `path` atomically: temp file (0600) in the same dir, fsync, rename, fsync
/// dir; the dir is made first if missing.
pub(crate) fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    Ok(berth_fsutil::AtomicFile::new()
        .mode(0o600)
        .write(path, data)?)
}

/// Content-addressed blob store under `<root>/content/sha256/<hex>`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<ContentStore> {
        let dir = root.join("content").join("sha256");
        fs::create_dir_all(&dir).ctx("create content dir", &dir)?;
        Ok(ContentStore { dir })
    }
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }
    pub fn exists(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }
    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(d.to_string()))
            }
            Err(e) => Err(Error::io("stat blob", p, e)),
        }
    }
    /// Open a blob for reading (not verified; see [`ContentStore::read_verified`]).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.path(d);
        File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::BlobNotFound(d.to_string())
            } else {
                Error::io("open blob", p, e)
            }
        })
    }
    /// Read a whole blob and check its digest (for small blobs: configs, manifests).
    pub fn read_verified(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut buf)
            .ctx("read blob", self.path(d))?;
        let actual = Digest::of(&buf);
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", self.path(d).display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(buf)
    }
    /// Re-hash a blob on disk and compare with its name.
    pub fn verify(&self, d: &Digest) -> Result<()> {
        let mut r = crate::digest::HashingReader::new(self.open_blob(d)?);
        std::io::copy(&mut r, &mut std::io::sink()).ctx("read blob", self.path(d))?;
        let (actual, _) = r.finish();
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", self.path(d).display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }
    /// Start writing a blob. `expected` (digest, size) are checked at commit.
    pub fn writer(
        &self,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter> {
        let tmp = self.dir.join(tmp_name(".tmp-"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .ctx("create temp blob", &tmp)?;
        Ok(BlobWriter {
            store: self.clone(),
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            flushed: 0,
            expected,
            expected_size,
            lease: None,
        })
    }
    /// Store bytes; returns the digest. Verifies `expected` if given.
    pub fn write_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let d = Digest::of(data);
        if let Some(e) = expected {
            if e != &d {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: e.to_string(),
                    actual: d.to_string(),
                });
            }
        }
        if self.exists(&d) {
            return Ok(d);
        }
        let mut w = self.writer(Some(d.clone()), Some(data.len() as u64))?;
        w.write_all(data).ctx("write blob", &w.tmp)?;
        w.commit()
    }
    /// Copy a reader into the store, verifying `expected` if given.
    pub fn write_from(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Digest> {
        let mut w = self.writer(expected.cloned(), expected_size)?;
        let tmp = w.tmp.clone();
        copy_buf(r, &mut w).ctx("copy into blob", &tmp)?;
        w.commit()
    }
    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", p, e)),
        }
    }
    /// All committed blobs.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).ctx("read content dir", &self.dir)? {
            let e = e.ctx("read content dir", &self.dir)?;
            if let Some(name) = e.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(name) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
    /// Remove stale temp files (interrupted writes).
    pub fn clean_temps(&self) -> Result<u64> {
        let mut n = 0;
        for e in fs::read_dir(&self.dir).ctx("read content dir", &self.dir)? {
            let e = e.ctx("read content dir", &self.dir)?;
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(e.path());
                n += 1;
            }
        }
        Ok(n)
    }
}

pub(crate) fn copy_buf(r: &mut dyn Read, w: &mut dyn Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// A blob being written: hashed while written to a temp file in the blob dir; `commit`
/// fsyncs, verifies and renames. Dropping without commit removes the temp file.
pub struct BlobWriter {
    store: ContentStore,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
    flushed: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    /// The operation the blob is written for: the commit holds the blob for it.
    lease: Option<std::sync::Arc<crate::lease::LeaseState>>,
}

const WRITEBACK_CHUNK: u64 = 8 << 20;

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("blob writer already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        // start writeback early so the fsync at commit has little left to do
        if self.size - self.flushed >= WRITEBACK_CHUNK {
            use std::os::fd::AsRawFd;
            // SAFETY: the fd is open for the lifetime of `f`; sync_file_range only schedules
            // writeback of the given range and has no memory-safety preconditions.
            unsafe {
                libc::sync_file_range(
                    f.as_raw_fd(),
                    self.flushed as i64,
                    (self.size - self.flushed) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            self.flushed = self.size;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.size
    }
    /// The temp file being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }
    pub(crate) fn leased(mut self, lease: std::sync::Arc<crate::lease::LeaseState>) -> Self {
        self.lease = Some(lease);
        self
    }
    pub fn commit(mut self) -> Result<Digest> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::invalid("blob writer", "committed twice"))?;
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(es) = self.expected_size {
            if es != self.size {
                let _ = fs::remove_file(&self.tmp);
                return Err(Error::SizeMismatch {
                    what: format!("blob {}", self.expected.as_ref().unwrap_or(&actual)),
                    expected: es,
                    actual: self.size,
                });
            }
        }
        if let Some(e) = &self.expected {
            if e != &actual {
                let _ = fs::remove_file(&self.tmp);
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: e.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        file.sync_all().ctx("fsync blob", &self.tmp)?;
        drop(file);
        let dst = self.store.path(&actual);
        // Held before it becomes visible, so no failed operation or gc removes it meanwhile.
        let existed = self.lease.as_ref().map(|l| l.hold(&self.store, &actual));
        // rename(2) is atomic: a concurrent writer of the same content just replaces an
        // identical file, readers see either the old or the new inode, never a partial one.
        fs::rename(&self.tmp, &dst).ctx("rename blob into place", &dst)?;
        if let (Some(l), Some(false)) = (&self.lease, existed) {
            l.created(&actual);
        }
        fsync_dir(&self.store.dir)?;
        Ok(actual)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// One layer of an image as recorded in the metadata store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest of the blob in the content store (compressed or not).
    pub blob: Digest,
    pub media_type: String,
    /// Size of the blob.
    pub size: u64,
    /// Length of the uncompressed tar (for docker-archive save).
    #[serde(default)]
    pub tar_size: u64,
}

/// An image as recorded in the metadata store; ID = config digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    pub id: Digest,
    #[serde(default)]
    pub repo_tags: Vec<String>,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub layers: Vec<LayerRecord>,
    /// Digest of the manifest the image was stored with (in the content store).
    #[serde(default)]
    pub manifest: Option<Digest>,
    /// RFC 3339 time the image was stored here.
    #[serde(default)]
    pub stored_at: String,
    /// Sum of the unpacked layer sizes (Docker's `Size`).
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MetaFile {
    images: BTreeMap<String, ImageRecord>,
}

/// Image metadata: images by ID, tags, repo digests. `<root>/images.json`, rewritten atomically.
/// Clones share the same state.
#[derive(Clone)]
pub struct MetadataStore {
    path: PathBuf,
    state: std::sync::Arc<Mutex<MetaFile>>,
}

impl MetadataStore {
    pub fn open(root: &Path) -> Result<MetadataStore> {
        let path = root.join("images.json");
        let state = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::json(path.display().to_string(), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetaFile::default(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        Ok(MetadataStore {
            path,
            state: std::sync::Arc::new(Mutex::new(state)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut MetaFile) -> Result<(T, bool)>) -> Result<T> {
        let mut g = self
            .state
            .lock()
            .map_err(|_| Error::Conflict("image metadata lock poisoned".into()))?;
        let mut copy = MetaFile {
            images: g.images.clone(),
        };
        let (t, dirty) = f(&mut copy)?;
        if dirty {
            let data =
                serde_json::to_vec_pretty(&copy).map_err(|e| Error::json("images.json", e))?;
            atomic_write(&self.path, &data)?;
            *g = copy;
        }
        Ok(t)
    }

    pub fn list(&self) -> Vec<ImageRecord> {
        self.state
            .lock()
            .map(|g| g.images.values().cloned().collect())
            .unwrap_or_default()
    }
    pub fn get(&self, id: &Digest) -> Option<ImageRecord> {
        self.state
            .lock()
            .ok()
            .and_then(|g| g.images.get(id.hex()).cloned())
    }

    /// Resolve a name as docker does: full/short ID (with or without `sha256:`), `name:tag`,
    /// `name@digest`.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let g = self
            .state
            .lock()
            .map_err(|_| Error::Conflict("image metadata lock poisoned".into()))?;
        let hexpart = name.strip_prefix("sha256:").unwrap_or(name);
        if let Some(r) = g.images.get(hexpart) {
            return Ok(r.clone());
        }
        if let Ok(r) = Reference::parse_normalized(name) {
            let key = r.clone().with_default_tag().to_string();
            for img in g.images.values() {
                if img.repo_tags.contains(&key) || img.repo_digests.contains(&r.to_string()) {
                    return Ok(img.clone());
                }
            }
            if let (Some(d), None) = (r.digest(), r.tag()) {
                let want = format!("{}@{}", r.name(), d);
                if let Some(img) = g.images.values().find(|i| i.repo_digests.contains(&want)) {
                    return Ok(img.clone());
                }
            }
        }
        if hexpart.len() >= 4 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = g
                .images
                .values()
                .filter(|i| i.id.hex().starts_with(hexpart))
                .collect();
            if hits.len() == 1 {
                return Ok(hits[0].clone());
            }
            if hits.len() > 1 {
                return Err(Error::Conflict(format!("short ID {name} is ambiguous")));
            }
        }
        Err(Error::ImageNotFound(name.to_string()))
    }

    /// Insert or merge an image; its tags are moved from any other image.
    pub fn put(&self, mut rec: ImageRecord) -> Result<()> {
        self.with(|m| {
            for t in rec.repo_tags.clone() {
                for other in m.images.values_mut() {
                    if other.id != rec.id {
                        other.repo_tags.retain(|x| x != &t);
                    }
                }
            }
            if let Some(old) = m.images.get(rec.id.hex()) {
                for t in &old.repo_tags {
                    if !rec.repo_tags.contains(t) {
                        rec.repo_tags.push(t.clone());
                    }
                }
                for d in &old.repo_digests {
                    if !rec.repo_digests.contains(d) {
                        rec.repo_digests.push(d.clone());
                    }
                }
                if rec.manifest.is_none() {
                    rec.manifest = old.manifest.clone();
                }
            }
            m.images.insert(rec.id.hex().to_string(), rec);
            Ok(((), true))
        })
    }

    /// Tag an image (`reference` normalised, default tag latest). Moves the tag if held elsewhere.
    pub fn tag(&self, id: &Digest, reference: &str) -> Result<Reference> {
        let r = Reference::parse_with_default_tag(reference)?;
        if r.digest().is_some() {
            return Err(Error::InvalidReference {
                reference: reference.into(),
                reason: "refusing to create a tag with a digest reference".into(),
            });
        }
        let t = r.to_string();
        self.with(|m| {
            if !m.images.contains_key(id.hex()) {
                return Err(Error::ImageNotFound(id.to_string()));
            }
            for img in m.images.values_mut() {
                img.repo_tags.retain(|x| x != &t);
            }
            if let Some(img) = m.images.get_mut(id.hex()) {
                img.repo_tags.push(t.clone());
            }
            Ok(((), true))
        })?;
        Ok(r)
    }

    /// Remove a tag; returns the image it pointed at and whether the image has no names left.
    pub fn untag(&self, reference: &str) -> Result<(Digest, bool)> {
        let r = Reference::parse_with_default_tag(reference)?;
        let t = r.to_string();
        self.with(|m| {
            for img in m.images.values_mut() {
                let before = img.repo_tags.len() + img.repo_digests.len();
                img.repo_tags.retain(|x| x != &t);
                img.repo_digests.retain(|x| x != &t);
                if img.repo_tags.len() + img.repo_digests.len() != before {
                    // Docker drops the repository's digest references when the image's last
                    // tag in that repository goes (other repositories keep theirs).
                    let name = r.name();
                    let tag_in_repo = |x: &String| {
                        x.strip_prefix(name.as_str())
                            .and_then(|rest| rest.strip_prefix(':'))
                            .is_some_and(|tag| !tag.contains('/'))
                    };
                    if !img.repo_tags.iter().any(tag_in_repo) {
                        img.repo_digests
                            .retain(|x| !x.starts_with(&format!("{name}@")));
                    }
                    return Ok((
                        (
                            img.id.clone(),
                            img.repo_tags.is_empty() && img.repo_digests.is_empty(),
                        ),
                        true,
                    ));
                }
            }
            Err(Error::ImageNotFound(reference.to_string()))
        })
    }

    pub fn remove(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        self.with(|m| {
            let r = m.images.remove(id.hex());
            let dirty = r.is_some();
            Ok((r, dirty))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_write_verify_and_mismatch() {
        let td = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(td.path()).unwrap();
        let d = cs.write_bytes(b"hello", None).unwrap();
        assert_eq!(cs.read_verified(&d).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        let mut w = cs.writer(Some(wrong.clone()), None).unwrap();
        w.write_all(b"hello!").unwrap();
        assert!(matches!(w.commit(), Err(Error::DigestMismatch { .. })));
        assert!(!cs.exists(&wrong));
        let names: Vec<_> = fs::read_dir(td.path().join("content/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp left behind: {names:?}");
        // corrupt on disk -> read_verified fails
        fs::write(cs.path(&d), b"jello").unwrap();
        assert!(matches!(
            cs.read_verified(&d),
            Err(Error::DigestMismatch { .. })
        ));
    }

    #[test]
    fn concurrent_writers_same_blob() {
        let td = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(td.path()).unwrap();
        let data = vec![7u8; 1 << 20];
        let d = Digest::of(&data);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut w = cs.writer(Some(d.clone()), Some(data.len() as u64)).unwrap();
                    for c in data.chunks(4096) {
                        w.write_all(c).unwrap();
                        // readers never see a partial blob
                        if cs.exists(&d) {
                            assert_eq!(cs.size(&d).unwrap(), data.len() as u64);
                        }
                    }
                    w.commit().unwrap();
                });
            }
        });
        cs.verify(&d).unwrap();
        assert_eq!(cs.list().unwrap(), vec![d]);
    }

    #[test]
    fn metadata_tags_move_and_persist() {
        let td = tempfile::tempdir().unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        {
            let m = MetadataStore::open(td.path()).unwrap();
            for id in [&a, &b] {
                m.put(ImageRecord {
                    id: id.clone(),
                    repo_tags: vec![],
                    repo_digests: vec![],
                    layers: vec![],
                    manifest: None,
                    stored_at: String::new(),
                    size: 0,
                })
                .unwrap();
            }
            m.tag(&a, "busybox").unwrap();
            m.tag(&a, "other:1").unwrap();
            m.tag(&b, "busybox:latest").unwrap();
        }
        let m = MetadataStore::open(td.path()).unwrap();
        assert_eq!(m.resolve("busybox").unwrap().id, b);
        assert_eq!(m.resolve("docker.io/library/other:1").unwrap().id, a);
        assert_eq!(m.resolve(&a.hex()[..8]).unwrap().id, a);
        assert_eq!(m.resolve(&a.to_string()).unwrap().id, a);
        assert_eq!(
            m.get(&a).unwrap().repo_tags,
            vec!["docker.io/library/other:1".to_string()]
        );
        let (id, gone) = m.untag("other:1").unwrap();
        assert_eq!(id, a);
        assert!(gone);
        // Digest references of a repository go with the image's last tag in that repository,
        // even when the image keeps tags elsewhere.
        let dg = format!("docker.io/library/busybox@{}", Digest::of(b"manifest"));
        let dg2 = format!("docker.io/library/keep@{}", Digest::of(b"manifest"));
        m.with(|md| {
            let img = md.images.get_mut(b.hex()).unwrap();
            img.repo_digests = vec![dg.clone(), dg2.clone()];
            Ok(((), true))
        })
        .unwrap();
        m.tag(&b, "busybox:two").unwrap();
        m.tag(&b, "keep:1").unwrap();
        m.tag(&b, "localhost:5000/busybox:1").unwrap();
        let (_, gone) = m.untag("busybox:latest").unwrap();
        assert!(!gone);
        assert_eq!(
            m.get(&b).unwrap().repo_digests,
            vec![dg.clone(), dg2.clone()]
        );
        let (_, gone) = m.untag("busybox:two").unwrap();
        assert!(!gone);
        assert_eq!(m.get(&b).unwrap().repo_digests, vec![dg2.clone()]);
        assert!(matches!(m.resolve("nothere"), Err(Error::ImageNotFound(_))));
    }
}
