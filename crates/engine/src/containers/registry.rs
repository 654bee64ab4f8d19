//! The container registry: records in memory (with their versions on disk), names, and the
//! lock that serialises changes to them.
use crate::attach::Slot;
use crate::prepare::*;
use crate::proto::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub(crate) struct Entry {
    pub rec: Record,
    /// Serialises start/stop/remove of one container.
    pub op: Arc<Mutex<()>>,
    /// Attach sessions waiting for the container to start.
    pub pending: Vec<(AttachHello, Arc<Slot>)>,
    /// A start took `pending` and has not set the status yet: a new attach session connects
    /// to the monitor itself.
    pub starting: bool,
    /// Incremented at every exit.
    pub exit_gen: u64,
    /// Being removed: no restart.
    pub removing: bool,
    /// Runtime side made ahead of the start (see `prepare_later`).
    pub prepared: Option<Task>,
    /// The prepare thread is making `prepared` now (under the op lock).
    pub preparing: bool,
    /// A start that came meanwhile: the prepare thread does it as soon as the container is
    /// created (no wake-up of the waiting request in between) and hands over the result.
    pub start_req: Option<Arc<StartReq>>,
    /// Bumped at every change of `rec`; `saved` holds the version on disk. Writes happen
    /// outside the registry lock, so without this an older copy could land after a newer one.
    pub version: u64,
    pub saved: Arc<Mutex<u64>>,
}

impl Entry {
    /// A record's entry as it enters the registry (at create, or loaded at start-up).
    pub(crate) fn new(rec: Record) -> Entry {
        Entry {
            rec,
            op: Arc::new(Mutex::new(())),
            pending: vec![],
            starting: false,
            exit_gen: 0,
            removing: false,
            prepared: None,
            preparing: false,
            start_req: None,
            version: 0,
            saved: Arc::new(Mutex::new(0)),
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    pub by_id: BTreeMap<String, Entry>,
    /// name (with "/") -> id
    pub names: HashMap<String, String>,
    /// exit codes of removed containers (for wait condition=removed)
    pub removed: HashMap<String, i64>,
}

/// The owner of the container records: the registry under its lock, the condition its
/// waiters wait on, and the directory the records are persisted in.
pub(crate) struct Containers {
    /// `<root>/containers`
    dir: PathBuf,
    reg: Mutex<Registry>,
    pub cond: Condvar,
}

impl Containers {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Containers {
            dir,
            reg: Mutex::new(Registry::default()),
            cond: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        match self.reg.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    /// Persist the record (config.v2.json holds everything, the host config included).
    pub(crate) fn save(&self, rec: &Record) -> Result<()> {
        write_json_atomic(&self.dir.join(&rec.id).join("config.v2.json"), rec)
    }

    /// Resolve a full id, a name (with or without "/") or a unique id prefix.
    pub(crate) fn resolve(&self, reg: &Registry, x: &str) -> Result<String> {
        if x.is_empty() {
            return Err(Error::NotFound("No such container: ".into()));
        }
        if reg.by_id.contains_key(x) {
            return Ok(x.to_string());
        }
        let n = if x.starts_with('/') {
            x.to_string()
        } else {
            format!("/{x}")
        };
        if let Some(id) = reg.names.get(&n) {
            return Ok(id.clone());
        }
        let m: Vec<&String> = reg.by_id.keys().filter(|k| k.starts_with(x)).collect();
        match m.len() {
            1 => Ok(m[0].clone()),
            0 => Err(Error::NotFound(format!("No such container: {x}"))),
            _ => Err(Error::NotFound(format!(
                "Multiple IDs found with provided prefix: {x}"
            ))),
        }
    }

    pub(crate) fn find(&self, x: &str) -> Result<(String, Arc<Mutex<()>>)> {
        let reg = self.lock();
        let id = self.resolve(&reg, x)?;
        let op = reg.by_id[&id].op.clone();
        Ok((id, op))
    }

    pub(crate) fn record(&self, id: &str) -> Result<Record> {
        let reg = self.lock();
        reg.by_id
            .get(id)
            .map(|e| e.rec.clone())
            .ok_or_else(|| Error::NotFound(format!("No such container: {id}")))
    }

    /// Apply `f` to the entry under the registry lock and bump its version; `then` takes what
    /// the caller needs of the updated entry, still under the lock.
    fn modify<T, S>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Entry) -> T,
        then: impl FnOnce(&Entry) -> S,
    ) -> Result<(T, S)> {
        let mut reg = self.lock();
        let e = reg
            .by_id
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("No such container: {id}")))?;
        let r = f(e);
        e.version += 1;
        Ok((r, then(e)))
    }

    /// Like `update`, in memory only.
    pub(crate) fn update_unsaved<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> Result<T> {
        let (r, ()) = self.modify(id, f, |_| ())?;
        self.cond.notify_all();
        Ok(r)
    }

    pub(crate) fn update<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> Result<T> {
        let (r, (rec, v, saved)) =
            self.modify(id, f, |e| (e.rec.clone(), e.version, e.saved.clone()))?;
        self.save_version(&rec, v, &saved)?;
        self.cond.notify_all();
        Ok(r)
    }

    /// Persist the entry as it is in memory now (after an `update_unsaved`).
    pub(crate) fn save_now(&self, id: &str) -> Result<()> {
        let (rec, v, saved) = {
            let reg = self.lock();
            let e = reg
                .by_id
                .get(id)
                .ok_or_else(|| Error::NotFound(format!("No such container: {id}")))?;
            (e.rec.clone(), e.version, e.saved.clone())
        };
        self.save_version(&rec, v, &saved)
    }

    /// Write `rec` (version `v`) unless a newer version is on disk already.
    pub(crate) fn save_version(&self, rec: &Record, v: u64, saved: &Mutex<u64>) -> Result<()> {
        let mut g = saved
            .lock()
            .map_err(|_| Error::Internal("record save lock poisoned".into()))?;
        if *g < v {
            self.save(rec)?;
            *g = v;
        }
        Ok(())
    }
}

pub(crate) const NAME_LEFT: [&str; 24] = [
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "focused",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "loving",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];
pub(crate) const NAME_RIGHT: [&str; 24] = [
    "albattani",
    "bell",
    "curie",
    "darwin",
    "euler",
    "fermi",
    "galileo",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "volhard",
    "wozniak",
    "yalow",
    "zhukovsky",
];

pub(crate) fn random_name(reg: &Registry) -> Result<String> {
    for attempt in 0..100 {
        let id = random_id()?;
        let n = u64::from_str_radix(&id[..8], 16).unwrap_or(0);
        let mut name = format!(
            "{}_{}",
            NAME_LEFT[(n % 24) as usize],
            NAME_RIGHT[((n / 24) % 24) as usize]
        );
        if attempt > 0 {
            name.push_str(&format!("{}", n % 10));
        }
        if !reg.names.contains_key(&format!("/{name}")) {
            return Ok(name);
        }
    }
    Err(Error::Internal(
        "could not generate a unique container name".into(),
    ))
}

pub(crate) fn validate_name(n: &str) -> Result<String> {
    let n = n.strip_prefix('/').unwrap_or(n);
    let ok = n.len() >= 2
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(Error::BadParameter(format!(
            "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(format!("/{n}"))
}

pub(crate) fn conflict_msg(name: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}
