//! The volumes' directory: one `<name>/` per volume (`_data/`, `volume.json`).
use super::{io_err, valid_name, Meta};
use crate::shared::Shared;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

const META: &str = "volume.json";
const TMP_PREFIX: &str = ".tmp-";
/// In a volume a container create made and fills from the image until the fill is done: such
/// a volume is not shown, and one found at start-up is deleted (its create never finished).
const FILLING: &str = "filling";

/// The volumes owner: its directory and the lock that serialises create/remove (a container
/// create holds it from the volume's making to its record, so no remove comes between).
pub(crate) struct Volumes {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl Volumes {
    /// Opens (makes) `dir`; `.tmp-*` leftovers of a crash are deleted.
    pub(crate) fn open(dir: PathBuf) -> Result<Volumes> {
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let rd = std::fs::read_dir(&dir).map_err(|e| io_err("read", &dir, e))?;
        for en in rd.flatten() {
            if en.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let p = en.path();
                if let Err(e) = std::fs::remove_dir_all(&p) {
                    tracing::warn!("remove {}: {e}", p.display());
                }
            }
        }
        let v = Volumes {
            dir,
            lock: Mutex::new(()),
        };
        v.drop_half_filled();
        Ok(v)
    }

    /// Deletes the volumes whose fill a crash interrupted.
    fn drop_half_filled(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for en in rd.flatten() {
            let n = en.file_name().to_string_lossy().into_owned();
            if !valid_name(&n) || !en.path().join(FILLING).exists() {
                continue;
            }
            let gone = super::driver::unmount(&n, &self.data(&n)).and_then(|()| self.remove(&n));
            match gone {
                Ok(()) => {
                    tracing::info!("volume {n}: its fill from the image was interrupted: deleted")
                }
                Err(e) => tracing::warn!("volume {n} (half filled): {e}"),
            }
        }
    }

    /// The volumes a create made are filled: they are shown from now on.
    pub(crate) fn filled(&self, names: &[String]) -> Result<()> {
        for n in names {
            let m = self.dir.join(n).join(FILLING);
            match std::fs::remove_file(&m) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &m, e)),
            }
        }
        sync_dir(&self.dir);
        Ok(())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The volume's data directory (its `Mountpoint`).
    pub(crate) fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Docker's Volume JSON.
    pub(crate) fn api(&self, m: &Meta) -> Value {
        let opts = (!m.options.is_empty()).then_some(&m.options);
        json!({"CreatedAt": m.created_at, "Driver": "local", "Labels": m.labels,
            "Mountpoint": self.data(&m.name), "Name": m.name, "Options": opts, "Scope": "local"})
    }

    /// The volume `name` (404 when there is none).
    pub(crate) fn get(&self, name: &str) -> Result<Meta> {
        let missing = || Error::NotFound(format!("get {name}: no such volume"));
        if !valid_name(name) {
            return Err(missing());
        }
        if self.dir.join(name).join(FILLING).exists() {
            return Err(missing());
        }
        let p = self.dir.join(name).join(META);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| crate::util::internal(format!("parse {}", p.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing()),
            Err(e) => Err(io_err("read", &p, e)),
        }
    }

    /// Every volume, by name.
    pub(crate) fn all(&self) -> Result<Vec<Meta>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| io_err("read", &self.dir, e))?;
        let mut out = Vec::new();
        for en in rd.flatten() {
            let n = en.file_name().to_string_lossy().into_owned();
            if !valid_name(&n) {
                continue;
            }
            match self.get(&n) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!("volume {n} left out: {e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The volume `name`, made if missing (`true`: made by this call). The caller holds
    /// [`Volumes::lock`].
    pub(crate) fn ensure(
        &self,
        s: &Shared,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        filling: bool,
    ) -> Result<(Meta, bool)> {
        match self.get(name) {
            Ok(m) => return Ok((m, false)),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let meta = Meta {
            name: name.to_string(),
            created_at: berth_fsutil::rfc3339(berth_fsutil::unix_now().0),
            labels,
            options,
        };
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}", crate::util::random_id()?));
        let made = self.make_at(&tmp, &meta, filling);
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Some(n) = meta
            .options
            .get("size")
            .and_then(|v| crate::prepare::parse_size(v))
        {
            let limited = s.quota.limit(&format!("v:{name}"), &[&self.data(name)], n);
            if let Err(e) = limited {
                let _ = self.delete(s, name);
                return Err(e);
            }
        }
        let mut attrs = BTreeMap::from([("driver".to_string(), "local".to_string())]);
        attrs.extend(meta.labels.clone());
        s.events.publish("volume", "create", name, attrs);
        Ok((meta, true))
    }

    /// Makes the volume in `tmp`, then renames it to its name.
    fn make_at(&self, tmp: &Path, meta: &Meta, filling: bool) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let data = tmp.join("_data");
        std::fs::DirBuilder::new()
            .mode(0o701)
            .create(tmp)
            .map_err(|e| io_err("create", tmp, e))?;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&data)
            .map_err(|e| io_err("create", &data, e))?;
        let b = serde_json::to_vec(meta)
            .map_err(|e| crate::util::internal("encode volume metadata", e))?;
        berth_fsutil::write_atomic(&tmp.join(META), &b)
            .map_err(|e| Error::Internal(crate::Internal::cause(e)))?;
        if filling {
            std::fs::File::create(tmp.join(FILLING))
                .map_err(|e| io_err("create", &tmp.join(FILLING), e))?;
        }
        let dst = self.dir.join(&meta.name);
        std::fs::rename(tmp, &dst).map_err(|e| io_err("rename into place", &dst, e))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Deletes the volume: renamed away first (gone at once, also after a crash), then its
    /// files. The caller holds [`Volumes::lock`].
    pub(crate) fn delete(&self, s: &Shared, name: &str) -> Result<()> {
        // (Never a remove through a mount: a bind-backed volume's host files stay.)
        super::driver::unmount(name, &self.data(name))?;
        s.quota.release(&format!("v:{name}"));
        self.remove(name)
    }

    /// Renames the (unmounted) volume away, then removes its files.
    fn remove(&self, name: &str) -> Result<()> {
        let p = self.dir.join(name);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}rm-{}", crate::util::random_id()?));
        std::fs::rename(&p, &tmp).map_err(|e| io_err("remove", &p, e))?;
        sync_dir(&self.dir);
        std::fs::remove_dir_all(&tmp).map_err(|e| io_err("remove", &tmp, e))
    }
}

fn sync_dir(d: &Path) {
    if let Err(e) = std::fs::File::open(d).and_then(|f| f.sync_all()) {
        tracing::warn!("fsync {}: {e}", d.display());
    }
}
