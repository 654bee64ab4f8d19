//! The build cache as `system df` and `POST /build/prune` see it. Two kinds of entries:
//! - `regular`: a step's cache record, `<root>/build/cache/<key>` (JSON: the image the step
//!   made, when, last use, uses; an older record holds only the image ID). Its image is an
//!   image (counted, and removed, as images are); the entry is the record.
//! - `exec.cachemount`: a `RUN --mount=type=cache` directory, `<root>/build/mounts/<hex>`,
//!   with `<hex>.json` beside it (id, target, times, uses). In use while a build that mounts
//!   it runs (then neither counted reclaimable nor pruned).
//!
//! Sizes are disk use (`du`); `Reclaimable` is what `builder prune` frees, and prune's
//! `SpaceReclaimed` is the sum of the sizes of what it removed, measured as `df` measures.
//! As BuildKit behind dockerd, prune without `all` keeps only internal and frontend records,
//! which berth does not have: `all` changes nothing here.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::util::{internal, parse_time_arg, Filters};
use crate::{Error, Result};

/// A step's cache record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    image: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    last_used: Option<String>,
    #[serde(default)]
    uses: u64,
}

/// A cache mount's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MountMeta {
    id: String,
    target: String,
    created: String,
    #[serde(default)]
    last_used: Option<String>,
    #[serde(default)]
    uses: u64,
}

fn now() -> String {
    berth_fsutil::rfc3339_nano_now()
}

fn read_record(p: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(p).ok()?;
    let t = text.trim();
    if t.starts_with('{') {
        return serde_json::from_str(t).ok();
    }
    // An older record: the image ID only; its file's time stands for both times.
    let m = std::fs::metadata(p).ok()?;
    let at = berth_fsutil::rfc3339_nano(m.mtime(), m.mtime_nsec() as u32);
    Some(Record {
        image: t.to_string(),
        created: Some(at.clone()),
        last_used: Some(at),
        uses: 0,
    })
}

/// The image recorded for `key`, if any; the record notes the use.
pub(crate) fn get(dir: &Path, key: &str) -> Option<String> {
    let p = dir.join(key);
    let mut r = read_record(&p)?;
    r.uses += 1;
    r.last_used = Some(now());
    if let Ok(b) = serde_json::to_vec(&r) {
        if let Err(er) = replace(&p, &b) {
            tracing::warn!("note the use of build cache record {key}: {er}");
        }
    }
    Some(r.image)
}

/// Records that the step with `key` made `image`.
pub(crate) fn put(dir: &Path, key: &str, image: &str) -> Result<()> {
    let at = now();
    let r = Record {
        image: image.to_string(),
        created: Some(at.clone()),
        last_used: Some(at),
        uses: 0,
    };
    let b = serde_json::to_vec(&r).map_err(|er| internal("encode a build cache record", er))?;
    let p = dir.join(key);
    replace(&p, &b).map_err(|er| internal(format!("write {}", p.display()), er))
}

/// Replaces `p` with `data` through a temporary file of this write's own (`.NAME.tmp-PID-N`:
/// builds running at once may note uses of one record), without fsync: a record lost to a
/// power cut is a cache miss.
fn replace(p: &Path, data: &[u8]) -> std::io::Result<()> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = p
        .file_name()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let tmp = p.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let r = std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, p));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The cache mounts builds running now use, by directory (a count per build using it).
static IN_USE: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

fn in_use(dir: &Path) -> bool {
    IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .is_some_and(|m| m.contains_key(dir))
}

/// A build's hold on a cache mount directory: in use until dropped (the build's end).
pub(crate) struct MountHold(PathBuf);

impl Drop for MountHold {
    fn drop(&mut self) {
        let mut g = IN_USE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(m) = g.as_mut() {
            if let Some(n) = m.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.0);
                }
            }
        }
    }
}

/// Marks the cache mount `dir` (id `id`, mounted on `target`) used by a build: held in use
/// and its metadata updated (made for a new one).
pub(crate) fn use_mount(dir: &Path, id: &str, target: &str) -> MountHold {
    *IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .entry(dir.to_path_buf())
        .or_insert(0) += 1;
    let meta_path = dir.with_extension("json");
    let at = now();
    let mut meta = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<MountMeta>(&b).ok())
        .unwrap_or_else(|| MountMeta {
            id: id.to_string(),
            target: target.to_string(),
            created: at.clone(),
            last_used: None,
            uses: 0,
        });
    meta.uses += 1;
    meta.last_used = Some(at);
    if let Ok(b) = serde_json::to_vec(&meta) {
        if let Err(er) = replace(&meta_path, &b) {
            tracing::warn!("note the use of cache mount {id}: {er}");
        }
    }
    MountHold(dir.to_path_buf())
}

/// One entry, as the API shows it, with what removing it takes.
struct Entry {
    json: Value,
    size: u64,
    in_use: bool,
    last_used: f64,
    /// Removed in this order (a mount's directory, then its metadata).
    paths: Vec<PathBuf>,
}

fn file_size(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).map_or(0, |m| m.blocks() * 512)
}

fn time_of(s: &Option<String>) -> f64 {
    s.as_deref()
        .and_then(berth_fsutil::parse_rfc3339)
        .unwrap_or(0.0)
}

/// Every entry of the build cache under `<root>/build`.
fn entries(e: &crate::Engine) -> Vec<Entry> {
    let build = e.inner.0.cfg.root.join("build");
    let images = &e.inner.0.images;
    let mut out = Vec::new();
    let mut records: Vec<(String, Record, PathBuf)> = std::fs::read_dir(build.join("cache"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let key = d.file_name().to_string_lossy().into_owned();
            // A write in flight (`.tmp-*`) is not a record yet.
            if key.starts_with('.') {
                return None;
            }
            read_record(&d.path()).map(|r| (key, r, d.path()))
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let parents = crate::build::parent_map(&e.inner.0.cfg.root);
    let key_of: HashMap<&str, &str> = records
        .iter()
        .map(|(k, r, _)| (r.image.as_str(), k.as_str()))
        .collect();
    for (key, r, path) in &records {
        let rec = images.resolve(&r.image).ok();
        let description = rec
            .as_ref()
            .and_then(|rec| images.config_of(rec).ok())
            .and_then(|c| c.history.last().and_then(|h| h.created_by.clone()))
            .unwrap_or_else(|| format!("{} (removed)", r.image));
        let parent_keys: Vec<&str> = parents
            .get(r.image.as_str())
            .and_then(|p| key_of.get(p.as_str()).copied())
            .into_iter()
            .collect();
        let size = file_size(path);
        out.push(Entry {
            json: json!({
                "ID": key, "Parents": if parent_keys.is_empty() { Value::Null } else { json!(parent_keys) },
                "Type": "regular", "Description": description, "InUse": false, "Shared": false,
                "Size": size, "CreatedAt": r.created, "LastUsedAt": r.last_used,
                "UsageCount": r.uses,
            }),
            size,
            in_use: false,
            last_used: time_of(&r.last_used).max(time_of(&r.created)),
            paths: vec![path.clone()],
        });
    }
    let mounts = build.join("mounts");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&mounts)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .map(|d| d.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let meta_path = dir.with_extension("json");
        let meta = std::fs::read(&meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<MountMeta>(&b).ok());
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = crate::du::disk_usage(&dir) + file_size(&dir) + file_size(&meta_path);
        let busy = in_use(&dir);
        let (description, created, last_used, uses) = match &meta {
            Some(m) => (
                format!("cached mount {} (id {})", m.target, m.id),
                Some(m.created.clone()),
                m.last_used.clone(),
                m.uses,
            ),
            None => ("cached mount".to_string(), None, None, 0),
        };
        out.push(Entry {
            json: json!({
                "ID": name, "Parents": null, "Type": "exec.cachemount",
                "Description": description, "InUse": busy, "Shared": false, "Size": size,
                "CreatedAt": created, "LastUsedAt": last_used, "UsageCount": uses,
            }),
            size,
            in_use: busy,
            last_used: time_of(&last_used).max(time_of(&created)),
            paths: vec![dir, meta_path],
        });
    }
    out
}

/// `system df`'s build cache: the entries (`BuildCache`), how many are in use, their total
/// size and what `builder prune` would free.
pub(crate) fn df(e: &crate::Engine) -> (Vec<Value>, usize, u64, u64) {
    let all = entries(e);
    let active = all.iter().filter(|x| x.in_use).count();
    let total = all.iter().map(|x| x.size).sum();
    let reclaim = all.iter().filter(|x| !x.in_use).map(|x| x.size).sum();
    (
        all.into_iter().map(|x| x.json).collect(),
        active,
        total,
        reclaim,
    )
}

/// `POST /build/prune`'s options.
#[derive(Debug, Clone, Default)]
pub struct BuildPruneOptions {
    /// `all`: internal and frontend records too (BuildKit's; berth has none).
    pub all: bool,
    /// `filters` (a JSON map of lists, or `null`).
    pub filters: Value,
    /// `reserved-space` (or the older `keep-storage`): prune, oldest use first, only down to
    /// this many bytes of cache.
    pub reserved_space: Option<u64>,
    /// `max-used-space`: the same, as a ceiling.
    pub max_used_space: Option<u64>,
    /// `min-free-space`: prune, oldest use first, only until the filesystem has this many
    /// bytes free.
    pub min_free_space: Option<u64>,
}

fn matches(f: &Filters, x: &Entry, until: Option<f64>) -> bool {
    let s = |k: &str| x.json[k].as_str().unwrap_or("").to_string();
    let b = |k: &str| x.json[k].as_bool().unwrap_or(false);
    until.is_none_or(|u| x.last_used < u)
        && f.get("id").iter().all(|v| s("ID").starts_with(v.as_str()))
        && f.get("type").iter().all(|v| s("Type") == *v)
        && f.get("description")
            .iter()
            .all(|v| s("Description").contains(v.as_str()))
        && f.get("parent").iter().all(|v| {
            x.json["Parents"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(v.as_str())))
        })
        && (!f.has("inuse") || b("InUse"))
        && (!f.has("shared") || b("Shared"))
        && (!f.has("private") || !b("Shared"))
}

fn free_bytes(p: &Path) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(p)
        .map_err(|er| internal(format!("statvfs {}", p.display()), er))?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// `POST /build/prune`: removes the entries not in use that the options select, oldest use
/// first while a size limit asks for more room.
pub(crate) fn prune(e: &crate::Engine, o: &BuildPruneOptions) -> Result<Value> {
    let f = Filters::parse(&o.filters)?;
    f.validate(&[
        "until",
        "unused-for",
        "id",
        "parent",
        "type",
        "description",
        "inuse",
        "shared",
        "private",
    ])?;
    let until = match f.get("until").first().or(f.get("unused-for").first()) {
        Some(u) => Some(parse_time_arg(u)?),
        None => None,
    };
    let mut all = entries(e);
    let mut total: u64 = all.iter().map(|x| x.size).sum();
    all.sort_by(|a, b| a.last_used.total_cmp(&b.last_used));
    let keep = [o.reserved_space, o.max_used_space]
        .into_iter()
        .flatten()
        .min();
    let root = e.inner.0.cfg.root.clone();
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for x in all {
        if x.in_use || !matches(&f, &x, until) {
            continue;
        }
        let over = keep.is_some_and(|k| total > k);
        let short = match o.min_free_space {
            Some(m) => free_bytes(&root)? < m,
            None => false,
        };
        let limited = keep.is_some() || o.min_free_space.is_some();
        if limited && !over && !short {
            break;
        }
        for p in &x.paths {
            let r = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            match r {
                Ok(()) => {}
                Err(er) if er.kind() == std::io::ErrorKind::NotFound => {}
                Err(er) => return Err(internal(format!("remove {}", p.display()), er)),
            }
        }
        total = total.saturating_sub(x.size);
        reclaimed += x.size;
        deleted.push(x.json["ID"].clone());
    }
    Ok(json!({"CachesDeleted": deleted, "SpaceReclaimed": reclaimed}))
}

/// A byte count query value (`reserved-space=`...): a number.
pub fn parse_bytes(name: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| Error::BadParameter(format!("invalid {name}: {v:?} is not a byte count")))
}
