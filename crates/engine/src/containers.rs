//! Container records and lifecycle: create, start (through berth-monitor), stop, kill, wait,
//! remove, restart policies, reconciliation on open.
use crate::attach::Slot;
use crate::events::Bus;
use crate::proto::*;
use crate::state::{CState, Record};
use crate::util::*;
use crate::*;
use berth_image::ImageService;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) struct Entry {
    pub rec: Record,
    /// Serialises start/stop/remove of one container.
    pub op: Arc<Mutex<()>>,
    /// Attach sessions waiting for the container to start.
    pub pending: Vec<(AttachHello, Arc<Slot>)>,
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

#[derive(Default)]
pub(crate) struct Registry {
    pub containers: BTreeMap<String, Entry>,
    /// name (with "/") -> id
    pub names: HashMap<String, String>,
    /// exit codes of removed containers (for wait condition=removed)
    pub removed: HashMap<String, i64>,
}

pub(crate) struct Shared {
    pub cfg: EngineConfig,
    pub images: ImageService,
    pub rt: berth_runtime::Runtime,
    pub reg: Mutex<Registry>,
    pub cond: Condvar,
    pub events: Bus,
    pub execs: Mutex<HashMap<String, crate::exec::ExecRecord>>,
    pub monitor_bin: PathBuf,
    pub init_bin: Option<PathBuf>,
    pub closed: AtomicBool,
    /// Watch connections to monitors (shut down when the engine is dropped), by a serial.
    pub watchers: Mutex<HashMap<u64, UnixStream>>,
    /// Our use of the tmpfs berthd keeps on the exec root (see `EngineConfig::exec_root_tmpfs`).
    pub tmpfs: Mutex<Option<crate::util::TmpfsHold>>,
    pub watcher_serial: std::sync::atomic::AtomicU64,
    /// Image operations that change tags/images are serialised.
    pub image_lock: Mutex<()>,
    /// A berth-monitor started ahead of time (`--spare`): already exec'd and detached, waiting
    /// on this control socket for the path of its config. Starting a container through it
    /// skips the fork+exec of the monitor on the start path. Dropping the socket ends it.
    pub spare: Mutex<Option<UnixStream>>,
    /// When the spare keeper should make a new spare (None: not asked).
    pub spare_due: Mutex<Option<Instant>>,
    pub spare_cv: Condvar,
    /// Held by the keeper while it works: shutdown waits for the pass under way (a namespace
    /// it is making would otherwise outlive the daemon).
    pub keeper_busy: Mutex<()>,
    pub netns: crate::netns::NetnsPool,
    /// Ready container directories (`containers/.tmp-pool-*`, with `rootfs/` and the record's
    /// temporary file): a create renames one into place instead of making three inodes.
    pub record_pool: Mutex<Vec<PathBuf>>,
    /// An empty rootfs of the last created image's base, mounted ahead of the next create
    /// (see `fill_ready_rootfs`): that create finds its rootfs mounted.
    pub ready_rootfs: Mutex<Option<ReadyRootfs>>,
    /// The snapshot base of the last create (what the next ready rootfs is mounted for).
    pub last_base: Mutex<Option<berth_image::snapshot::SnapshotBase>>,
}

/// A ready container directory (`containers/.tmp-pool-*`) whose `rootfs/` has a ready
/// snapshot mounted.
pub(crate) struct ReadyRootfs {
    dir: PathBuf,
    mount: berth_image::snapshot::ReadyMount,
}

pub(crate) struct Inner(pub Arc<Shared>);

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Engine {
    /// Stop acting (containers keep running): watchers, the spare monitor, prepared
    /// containers and the ready network namespaces are let go, pending record fsyncs finished.
    /// Idempotent; also done when the engine is dropped.
    pub fn shutdown(&self) {
        let s = &self.inner.0;
        if s.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(_g) = s.spare_due.lock() {
            s.spare_cv.notify_all();
        }
        crate::util::flush_durable();
        // The spare monitor and those of prepared containers see EOF: they end (the latter
        // delete their runtime container first).
        drop(s.spare.lock().ok().and_then(|mut g| g.take()));
        let prepared: Vec<Task> = s
            .lock()
            .containers
            .values_mut()
            .filter_map(|en| en.prepared.take())
            .collect();
        drop(prepared);
        // The keeper's pass under way ends first (its fills stop at `closed`).
        drop(s.keeper_busy.lock());
        s.netns.drain();
        drain_ready_rootfs(s);
        s.images.snapshots.drain_pool();
        drain_record_pool(s);
        if let Ok(w) = s.watchers.lock() {
            for c in w.values() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        s.cond.notify_all();
        if let Some(hold) = s.tmpfs.lock().ok().and_then(|mut h| h.take()) {
            // Only when no container runs (their monitors keep it busy anyway): the monitors
            // of prepared containers may take a moment to finish.
            let running = s.lock().containers.values().any(|e| e.rec.running());
            if !running {
                crate::util::release_tmpfs(&s.cfg.exec_root, hold, Duration::from_secs(2));
            }
        }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        match self.reg.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
    pub(crate) fn cdir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }
    pub(crate) fn xdir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }
    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.cdir(id).join("rootfs")
    }
    /// Where the container's hostname, hosts and resolv.conf are (see `write_etc`).
    pub(crate) fn etc_dir(&self, id: &str) -> PathBuf {
        self.xdir(id)
    }
    pub(crate) fn attach_sock(&self, id: &str) -> PathBuf {
        self.xdir(id).join("attach.sock")
    }
    /// Persist the record (config.v2.json holds everything, the host config included).
    pub(crate) fn save(&self, rec: &Record) -> Result<()> {
        write_json_atomic(&self.cdir(&rec.id).join("config.v2.json"), rec)
    }

    /// Resolve a full id, a name (with or without "/") or a unique id prefix.
    pub(crate) fn resolve(&self, reg: &Registry, x: &str) -> Result<String> {
        if x.is_empty() {
            return Err(Error::NotFound("No such container: ".into()));
        }
        if reg.containers.contains_key(x) {
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
        let m: Vec<&String> = reg.containers.keys().filter(|k| k.starts_with(x)).collect();
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
        let op = reg.containers[&id].op.clone();
        Ok((id, op))
    }

    pub(crate) fn record(&self, id: &str) -> Result<Record> {
        let reg = self.lock();
        reg.containers
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
            .containers
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

    pub(crate) fn attrs(&self, rec: &Record) -> BTreeMap<String, String> {
        let mut a = labels_of(&rec.config["Labels"]);
        a.insert("name".into(), rec.name.trim_start_matches('/').to_string());
        a.insert(
            "image".into(),
            rec.config["Image"].as_str().unwrap_or("").to_string(),
        );
        a
    }

    pub(crate) fn event(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut a = self.attrs(rec);
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        self.events.publish("container", action, &rec.id, a);
    }

    /// `p` is the root of a mount (statx STATX_ATTR_MOUNT_ROOT, Linux 5.8): one syscall instead
    /// of reading a mountinfo that grows with every running container.
    pub(crate) fn is_mounted(&self, p: &Path) -> bool {
        berth_image::sys::is_mount_root(p)
    }

    pub(crate) fn ensure_mounted(&self, id: &str) -> Result<PathBuf> {
        let r = self.rootfs(id);
        if !self.is_mounted(&r) {
            std::fs::create_dir_all(&r)
                .map_err(|e| internal(format!("create {}", r.display()), e))?;
            self.images
                .mount(id, &r)
                .map_err(|e| internal(format!("mount the rootfs of {id}"), e))?;
        }
        Ok(r)
    }

    pub(crate) fn unmount(&self, id: &str) {
        let _ = self.unmount_at(&self.rootfs(id), id);
    }

    /// Unmount container `id`'s rootfs mounted at `r` (a few tries); an error if it stays.
    pub(crate) fn unmount_at(&self, r: &Path, id: &str) -> Result<()> {
        for _ in 0..3 {
            if !self.is_mounted(r) {
                return Ok(());
            }
            if let Err(e) = self.images.unmount(r) {
                tracing::warn!("unmount {}: {e}", r.display());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.is_mounted(r) {
            return Err(Error::Internal(format!(
                "cannot remove container {id}: its rootfs {} is still mounted (busy)",
                r.display()
            )));
        }
        Ok(())
    }

    /// Delete the runtime container `id` once its monitor is done with it (see
    /// [`wait_monitor_done`]).
    pub(crate) fn delete_runtime(&self, id: &str) {
        wait_monitor_done(self, id);
        let _ = self.rt.delete(id, true);
    }
}

fn img_err(name: &str, e: berth_image::Error) -> Error {
    match e {
        berth_image::Error::ImageNotFound(_) => {
            Error::NotFound(format!("No such image: {}", normalize_ref(name)))
        }
        berth_image::Error::InvalidReference { .. } => Error::BadParameter(e.to_string()),
        berth_image::Error::Conflict(m) => Error::Conflict(m),
        o => Error::Internal(o.to_string()),
    }
}

pub(crate) fn image_error(name: &str, e: berth_image::Error) -> Error {
    img_err(name, e)
}

fn normalize_ref(name: &str) -> String {
    if name.starts_with("sha256:") || name.contains('@') {
        return name.to_string();
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn find_monitor(cfg: &EngineConfig) -> Result<PathBuf> {
    if let Some(p) = &cfg.monitor_path {
        return Ok(p.clone());
    }
    if let Ok(exe) = std::env::current_exe() {
        for d in exe.ancestors().skip(1).take(2) {
            let p = d.join("berth-monitor");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    for d in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(d).join("berth-monitor");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Internal(
        "berth-monitor not found next to the daemon or in $PATH".into(),
    ))
}

const INIT_BIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

pub(crate) fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
    let tmpfs = if cfg.exec_root_tmpfs {
        crate::util::ensure_tmpfs(&cfg.exec_root)?
    } else {
        None
    };
    for d in [
        cfg.root.join("containers"),
        cfg.exec_root.join("containers"),
        cfg.root.join("bin"),
    ] {
        std::fs::create_dir_all(&d).map_err(|e| internal(format!("create {}", d.display()), e))?;
    }
    // Ready rootfs mounts a crash of berthd left (their upper dirs are removed with the
    // snapshotter's temporary dirs, the directories by the reconcile below).
    if let Ok(rd) = std::fs::read_dir(cfg.root.join("containers")) {
        for e in rd.flatten() {
            let r = e.path().join("rootfs");
            if e.file_name()
                .to_string_lossy()
                .starts_with(RECORD_POOL_PREFIX)
                && berth_image::sys::is_mount_root(&r)
            {
                let _ = nix::mount::umount2(&r, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
    let images = ImageService::open(&cfg.root.join("image"), None)
        .map_err(|e| internal(format!("open the image store in {}", cfg.root.display()), e))?;
    let rt = berth_runtime::Runtime::new(cfg.exec_root.join("runtime"));
    // The parent cgroup of every container ("/berth") is made here, once, so it is never in a
    // container's list of directories to remove: otherwise removing the last container could
    // rmdir it while another container is being created below it.
    match berth_cgroups::Cgroup::new(Some("/berth"), "berth", false) {
        Ok(mut cg) => {
            if let Err(e) = cg.create() {
                tracing::warn!("create the /berth parent cgroup: {e}");
            }
        }
        Err(e) => tracing::warn!("resolve the /berth parent cgroup: {e}"),
    }
    let monitor_bin = find_monitor(&cfg)?;
    let netns = crate::netns::NetnsPool::new(cfg.exec_root.join("netns"))?;
    let init_path = cfg.root.join("bin").join("docker-init");
    let init_bin = if std::fs::read(&init_path).ok().as_deref() != Some(INIT_BIN) {
        let tmp = cfg.root.join("bin").join(".docker-init.tmp");
        let r = std::fs::write(&tmp, INIT_BIN).and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
            std::fs::rename(&tmp, &init_path)
        });
        match r {
            Ok(()) => Some(init_path),
            Err(e) => {
                tracing::warn!("install docker-init: {e}");
                None
            }
        }
    } else {
        Some(init_path)
    };
    let shared = Arc::new(Shared {
        cfg,
        images,
        rt,
        reg: Mutex::new(Registry::default()),
        cond: Condvar::new(),
        events: Bus::default(),
        execs: Mutex::new(HashMap::new()),
        monitor_bin,
        init_bin,
        closed: AtomicBool::new(false),
        watchers: Mutex::new(HashMap::new()),
        watcher_serial: std::sync::atomic::AtomicU64::new(0),
        image_lock: Mutex::new(()),
        spare: Mutex::new(None),
        spare_due: Mutex::new(None),
        spare_cv: Condvar::new(),
        keeper_busy: Mutex::new(()),
        record_pool: Mutex::new(Vec::new()),
        ready_rootfs: Mutex::new(None),
        last_base: Mutex::new(None),
        netns,
        tmpfs: Mutex::new(tmpfs),
    });
    let engine = Arc::new(Engine {
        inner: Inner(shared.clone()),
    });
    reconcile(&shared)?;
    {
        // Namespaces no running container uses: the previous daemon's ready ones, a crash's.
        let keep: Vec<PathBuf> = shared
            .lock()
            .containers
            .values()
            .filter(|en| en.rec.running() && !en.rec.state.net_ns.is_empty())
            .map(|en| PathBuf::from(&en.rec.state.net_ns))
            .collect();
        shared.netns.release_unused(&keep);
    }
    {
        let ss = shared.clone();
        std::thread::Builder::new()
            .name("spare-keeper".into())
            .spawn(move || spare_keeper(ss))
            .map_err(|e| internal("start the spare keeper thread", e))?;
    }
    refill_spare(&shared);
    Ok(engine)
}

/// Load records, drop half-created ones, reconnect to live monitors, account for exits that
/// happened while we were away, unmount what is not running, resume restart policies.
fn reconcile(s: &Arc<Shared>) -> Result<()> {
    let dir = s.cfg.root.join("containers");
    let rd = std::fs::read_dir(&dir).map_err(|e| internal(format!("read {}", dir.display()), e))?;
    let mut to_check = Vec::new();
    for ent in rd.flatten() {
        let id = ent.file_name().to_string_lossy().into_owned();
        if let Some(rid) = id.strip_prefix(".rm-") {
            // A removal interrupted by a crash: finish it.
            let _ = s.rt.delete(rid, true);
            if let Err(e) = finish_removal(s, rid) {
                tracing::warn!("finish removal of {rid}: {e}");
            }
            continue;
        }
        if id.starts_with(RECORD_POOL_PREFIX) {
            let _ = std::fs::remove_dir_all(ent.path());
            continue;
        }
        if id.starts_with('.') {
            continue;
        }
        let p = ent.path().join("config.v2.json");
        let rec: Option<Record> = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(rec) = rec else {
            // Half-created (crash between snapshot and record) or corrupt: no ghost.
            tracing::warn!("removing incomplete container dir {}", ent.path().display());
            s.unmount(&id);
            let _ = s.images.remove_snapshot(&id);
            let _ = std::fs::remove_dir_all(ent.path());
            let _ = std::fs::remove_dir_all(s.xdir(&id));
            continue;
        };
        let mut reg = s.lock();
        if reg.names.contains_key(&rec.name) {
            tracing::warn!("duplicate name {} for {}; renaming", rec.name, rec.id);
        }
        reg.names.insert(rec.name.clone(), rec.id.clone());
        to_check.push(rec.id.clone());
        reg.containers.insert(
            rec.id.clone(),
            Entry {
                rec,
                op: Arc::new(Mutex::new(())),
                pending: vec![],
                exit_gen: 0,
                removing: false,
                prepared: None,
                preparing: false,
                start_req: None,
                version: 0,
                saved: Arc::new(Mutex::new(0)),
            },
        );
    }
    for id in to_check {
        let rec = s.record(&id)?;
        if matches!(
            rec.state.status.as_str(),
            "running" | "paused" | "restarting"
        ) {
            match connect_watch(s, &id) {
                Ok(w) => {
                    let ss = s.clone();
                    spawn_watcher(ss, id.clone(), w);
                }
                Err(_) => {
                    // Monitor gone: the exit record (if any) has the truth.
                    let ss = s.clone();
                    let idc = id.clone();
                    std::thread::spawn(move || handle_exit(&ss, &idc));
                }
            }
        } else {
            // Started, but the daemon stopped before it wrote "running" (the start does not
            // wait for that write): adopt it.
            if rec.state.status == "created" {
                if let Ok(st) = s.rt.load(&id) {
                    let live = matches!(
                        st.status(&s.rt.root),
                        berth_runtime::state::Status::Running
                            | berth_runtime::state::Status::Paused
                    );
                    if live {
                        if let Ok(w) = connect_watch(s, &id) {
                            let _ = s.update(&id, |en| {
                                en.rec.state.status = "running".into();
                                en.rec.state.pid = st.pid;
                                en.rec.state.started_at = st.created.clone();
                                en.rec.has_been_started = true;
                            });
                            spawn_watcher(s.clone(), id.clone(), w);
                            continue;
                        }
                    }
                }
            }
            // Started and exited meanwhile (its monitor left the exit record): account for it.
            if rec.state.status == "created" && s.cdir(&id).join("exit.json").exists() {
                let _ = s.update_unsaved(&id, |en| en.rec.state.status = "running".into());
                let ss = s.clone();
                let idc = id.clone();
                std::thread::spawn(move || handle_exit(&ss, &idc));
                continue;
            }
            // A container prepared by the previous daemon (its monitor ends at the EOF).
            let _ = s.rt.delete(&id, true);
            s.unmount(&id);
            if rec.state.status == "removing" {
                let _ = remove_files(s, &id, true);
                let mut reg = s.lock();
                reg.containers.remove(&id);
                reg.names.remove(&rec.name);
            }
        }
    }
    // Runtime states nobody owns (a crash between runtime create and our record).
    if let Ok(list) = s.rt.list() {
        let reg = s.lock();
        for st in list {
            if !reg.containers.contains_key(&st.id) {
                let _ = s.rt.delete(&st.id, true);
            }
        }
    }
    Ok(())
}

fn connect_watch(s: &Shared, id: &str) -> std::io::Result<UnixStream> {
    let c = crate::proto::connect(&s.attach_sock(id))?;
    let mut hello = serde_json::to_vec(&AttachHello {
        watch: true,
        ..Default::default()
    })
    .unwrap_or_default();
    hello.push(b'\n');
    (&c).write_all(&hello)?;
    Ok(c)
}

fn spawn_watcher(s: Arc<Shared>, id: String, w: UnixStream) {
    let serial = s.watcher_serial.fetch_add(1, Ordering::SeqCst);
    if let Ok(c) = w.try_clone() {
        if let Ok(mut l) = s.watchers.lock() {
            l.insert(serial, c);
        }
    }
    std::thread::spawn(move || {
        // Until EOF: the monitor's `exit <record>` line, if it got that far.
        let mut got = Vec::new();
        let mut b = [0u8; 512];
        loop {
            match std::io::Read::read(&mut &w, &mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) if got.len() < 64 * 1024 => got.extend_from_slice(&b[..n]),
                Ok(_) => {}
            }
        }
        if let Ok(mut l) = s.watchers.lock() {
            l.remove(&serial);
        }
        drop(w);
        if s.closed.load(Ordering::SeqCst) {
            return;
        }
        handle_exit_with(&s, &id, exit_line(&got));
    });
}

/// The exit record in a watch connection's data (`exit <json>\n`).
fn exit_line(data: &[u8]) -> Option<ExitRecord> {
    let rest = data.strip_prefix(format!("{WATCH_EXIT} ").as_bytes())?;
    let end = rest.iter().position(|&c| c == b'\n')?;
    serde_json::from_slice(&rest[..end]).ok()
}

/// Whether the container is removed when it exits (AutoRemove; Docker never restarts those).
fn auto_removes(r: &Record) -> bool {
    r.host_config["AutoRemove"].as_bool().unwrap_or(false)
        && matches!(
            r.host_config["RestartPolicy"]["Name"]
                .as_str()
                .unwrap_or(""),
            "" | "no"
        )
}

/// How long the clean-up after an AutoRemove container's exit (runtime delete, cgroup and
/// mount removal) waits: past the moments the client that waited for the exit needs to finish
/// (the docker CLI: ~3 ms), which it otherwise shares the CPU with; short enough to be done
/// before such a client's next run gets going. Measured: -1 ms per `run --rm`, none lost in a
/// loop of them.
const CLIENT_GRACE: Duration = Duration::from_millis(5);

/// [`handle_exit`], reading the exit record from the monitor's file.
pub(crate) fn handle_exit(s: &Arc<Shared>, id: &str) {
    handle_exit_with(s, id, None)
}

/// The container's process has exited (or its monitor vanished): record it, emit "die",
/// apply the restart policy or AutoRemove.
fn handle_exit_with(s: &Arc<Shared>, id: &str, told: Option<ExitRecord>) {
    crate::mark("engine: watcher saw exit");
    let exit_file = s.cdir(id).join("exit.json");
    let mut rec_exit: Option<ExitRecord> = told;
    // Not told (a monitor of an older berth, or berthd was away): its file.
    for _ in 0..20 {
        if rec_exit.is_some() {
            break;
        }
        rec_exit = std::fs::read(&exit_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<ExitRecord>(&b).ok());
        if rec_exit.is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let ex = match rec_exit {
        Some(r) => r,
        None => {
            // The monitor died without an exit record: the container lost its stdio and exit
            // capture; end it (Docker reports such containers as exited with an error).
            let _ = s.rt.delete(id, true);
            ExitRecord {
                exit_code: 137,
                finished_at: now_rfc3339(),
                oom_killed: false,
                error: "container monitor exited unexpectedly".into(),
                pid: 0,
            }
        }
    };
    crate::mark("engine: exit record read");
    // An AutoRemove container (which Docker never restarts) is cleaned up by its removal,
    // after the waiters for `removed` have their answer: its monitor deletes the runtime
    // container meanwhile, the removal's cleanup waits for that and unmounts.
    let auto_remove = s.record(id).map(|r| auto_removes(&r)).unwrap_or(false);
    if !auto_remove {
        s.delete_runtime(id);
        s.unmount(id);
    }
    // (An AutoRemove container's record is about to go: not written again. A crash before it
    // goes leaves it "running", and the restart's reconcile comes here again.)
    let apply = |e: &mut Entry| {
        e.rec.state.status = "exited".into();
        e.rec.state.pid = 0;
        e.rec.state.monitor_pid = 0;
        e.rec.state.exit_code = ex.exit_code as i64;
        e.rec.state.finished_at = ex.finished_at.clone();
        e.rec.state.oom_killed = ex.oom_killed;
        e.rec.state.error = ex.error.clone();
        let net_ns = std::mem::take(&mut e.rec.state.net_ns);
        e.exit_gen += 1;
        (e.rec.clone(), e.removing, net_ns)
    };
    let updated = if auto_remove {
        s.update_unsaved(id, apply)
    } else {
        s.update(id, apply)
    };
    let Ok((rec, removing, net_ns)) = updated else {
        return;
    };
    if !net_ns.is_empty() {
        // Off this path (the keeper releases it).
        s.netns.release_later(PathBuf::from(net_ns));
        refill_spare_after(s, Duration::from_millis(10));
    }
    if ex.oom_killed {
        s.event(&rec, "oom", &[]);
    }
    s.event(&rec, "die", &[("exitCode", ex.exit_code.to_string())]);
    if removing || s.closed.load(Ordering::SeqCst) {
        return;
    }
    let policy = rec.host_config["RestartPolicy"]["Name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let max = rec.host_config["RestartPolicy"]["MaximumRetryCount"]
        .as_i64()
        .unwrap_or(0);
    let restart = !rec.manually_stopped
        && match policy.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => ex.exit_code != 0 && (max == 0 || rec.restart_count < max),
            _ => false,
        };
    if restart {
        let delay =
            Duration::from_millis((100u64 << rec.restart_count.clamp(0, 4) as u32).min(1000));
        let _ = s.update(id, |e| {
            e.rec.state.status = "restarting".into();
        });
        std::thread::sleep(delay);
        let still = s
            .record(id)
            .map(|r| r.state.status == "restarting" && !r.manually_stopped)
            .unwrap_or(false);
        if still && !s.closed.load(Ordering::SeqCst) {
            let _ = s.update(id, |e| e.rec.restart_count += 1);
            if let Ok((_, op)) = s.find(id) {
                let _g = op.lock();
                if let Err(e) = start_locked(s, id) {
                    tracing::warn!("restart {id}: {e}");
                    let _ = s.update(id, |en| {
                        en.rec.state.status = "exited".into();
                        en.rec.state.error = e.to_string();
                    });
                }
            }
        }
        return;
    }
    if rec.host_config["AutoRemove"].as_bool().unwrap_or(false) {
        if let Err(e) = remove_inner_opt(s, id, true) {
            tracing::warn!("auto-remove {id}: {e}");
        }
        crate::mark("engine: auto-removed");
    }
    // Soon, not now: the client that waited for this exit is finishing (`docker run --rm`).
    refill_spare_after(s, Duration::from_millis(10));
}

const NAME_LEFT: [&str; 24] = [
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
const NAME_RIGHT: [&str; 24] = [
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

fn random_name(reg: &Registry) -> Result<String> {
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

fn conflict_msg(name: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

pub(crate) fn create(e: &Engine, name: Option<&str>, body: &Value) -> Result<Value> {
    let s = &e.inner.0;
    if !body.is_object() {
        return Err(Error::BadParameter(
            "invalid JSON: container config must be an object".into(),
        ));
    }
    let image = body["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        return Err(Error::BadParameter(
            "no image specified (Config.Image is empty)".into(),
        ));
    }
    let mut host = body.get("HostConfig").cloned().unwrap_or_else(|| json!({}));
    if host.is_null() {
        host = json!({});
    }
    if !host.is_object() {
        return Err(Error::BadParameter("HostConfig must be an object".into()));
    }
    crate::spec::validate(&host)?;
    if host["NetworkMode"].as_str().unwrap_or("").is_empty() {
        host["NetworkMode"] = json!("none");
    }
    if let crate::spec::NetMode::Container(c) = crate::spec::net_mode(&host)? {
        let reg = s.lock();
        s.resolve(&reg, &c)
            .map_err(|_| Error::NotFound(format!("No such container: {c}")))?;
    }
    if host.get("RestartPolicy").is_none_or(|v| v.is_null()) {
        host["RestartPolicy"] = json!({"Name": "no", "MaximumRetryCount": 0});
    }
    if host["LogConfig"]["Type"].as_str().unwrap_or("").is_empty() {
        let cfg = host["LogConfig"]["Config"].clone();
        host["LogConfig"] =
            json!({"Type": "json-file", "Config": if cfg.is_object() { cfg } else { json!({}) }});
    } else if host["LogConfig"]["Type"] != "json-file" && host["LogConfig"]["Type"] != "none" {
        return Err(Error::BadParameter(format!(
            "logging driver {} is not supported (use json-file)",
            host["LogConfig"]["Type"]
        )));
    }
    crate::mark("engine: create: validated");
    let img = s.images.resolve(&image).map_err(|er| img_err(&image, er))?;
    let icfg = s
        .images
        .config_of(&img)
        .map_err(|er| internal(format!("image config of {image}"), er))?;
    let ic = icfg.config.clone().unwrap_or_default();
    crate::mark("engine: create: image config read");

    // Merge (Docker stores the merged config).
    let mut config = body.clone();
    if let Some(m) = config.as_object_mut() {
        for k in ["HostConfig", "NetworkingConfig"] {
            m.remove(k);
        }
    }
    let (ep, cmd) = crate::spec::merge_cmd(
        body.get("Entrypoint"),
        body.get("Cmd"),
        ic.entrypoint.as_deref().unwrap_or(&[]),
        ic.cmd.as_deref().unwrap_or(&[]),
    );
    if ep.is_empty() && cmd.is_empty() {
        return Err(Error::BadParameter("No command specified".into()));
    }
    config["Entrypoint"] = if ep.is_empty() {
        Value::Null
    } else {
        json!(ep)
    };
    config["Cmd"] = json!(cmd);
    config["Env"] = json!(crate::spec::merge_env(
        ic.env.as_deref().unwrap_or(&[]),
        &strs(&body["Env"])
    ));
    if config["WorkingDir"].as_str().unwrap_or("").is_empty() {
        config["WorkingDir"] = json!(ic.working_dir.clone().unwrap_or_default());
    }
    if config["User"].as_str().unwrap_or("").is_empty() {
        config["User"] = json!(ic.user.clone().unwrap_or_default());
    }
    let mut labels: BTreeMap<String, String> = ic.labels.clone().unwrap_or_default();
    labels.extend(labels_of(&body["Labels"]));
    config["Labels"] = json!(labels);
    if config["StopSignal"].as_str().unwrap_or("").is_empty() {
        if let Some(sig) = &ic.stop_signal {
            config["StopSignal"] = json!(sig);
        }
    }
    if let Some(sig) = config["StopSignal"].as_str() {
        parse_signal(sig)?;
    }
    if config.get("ExposedPorts").is_none_or(|v| v.is_null()) {
        if let Some(p) = &ic.exposed_ports {
            config["ExposedPorts"] = json!(p);
        }
    }
    if config.get("Volumes").is_none_or(|v| v.is_null()) {
        if let Some(v) = &ic.volumes {
            config["Volumes"] = json!(v);
        }
    }
    for k in [
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
    ] {
        if !config[k].is_boolean() {
            config[k] = json!(false);
        }
    }
    let mut all: Vec<String> = ep.clone();
    all.extend(cmd.iter().cloned());
    let id = random_id()?;
    if config["Hostname"].as_str().unwrap_or("").is_empty() {
        config["Hostname"] = json!(id[..12].to_string());
    }
    if config["Domainname"].is_null() {
        config["Domainname"] = json!("");
    }
    config["Image"] = json!(image);

    let op = Arc::new(Mutex::new(()));
    let cname;
    {
        let mut reg = s.lock();
        cname = match name {
            Some(n) if !n.is_empty() => validate_name(n)?,
            _ => format!("/{}", random_name(&reg)?),
        };
        if let Some(other) = reg.names.get(&cname) {
            return Err(conflict_msg(&cname, other));
        }
        // Reserve the name while we prepare.
        reg.names.insert(cname.clone(), id.clone());
    }
    let unreserve = |s: &Shared| {
        let mut reg = s.lock();
        if reg.names.get(&cname) == Some(&id) {
            reg.names.remove(&cname);
        }
    };
    let d = s.cdir(&id);
    let r = (|| -> Result<Record> {
        // A rootfs mounted ahead for this image is used as it is; one for another image is
        // let go of.
        let mut ready = take_ready_rootfs(s, &d)?;
        let prepared = s.images.prepare_snapshot_deferred_ready(
            &id,
            Some(&img.id.to_string()),
            &crate::spec::MOUNT_TARGETS,
            &mut ready,
        );
        if let Some(other) = ready.take() {
            s.images.snapshots.discard_ready(other, &d.join("rootfs"));
        }
        let (_, sync, base) =
            prepared.map_err(|er| internal(format!("prepare the rootfs of {id}"), er))?;
        if let Ok(mut b) = s.last_base.lock() {
            *b = Some(base);
        }
        for p in &sync {
            crate::util::durable_later(p);
        }
        crate::mark("engine: create: snapshot prepared");
        let rec = Record {
            id: id.clone(),
            name: cname.clone(),
            created: now_rfc3339(),
            path: all[0].clone(),
            args: all[1..].to_vec(),
            config,
            host_config: host,
            image_id: img.id.to_string(),
            state: CState {
                status: "created".into(),
                ..Default::default()
            },
            restart_count: 0,
            has_been_started: false,
            manually_stopped: false,
            log_path: d
                .join(format!("{id}-json.log"))
                .to_string_lossy()
                .into_owned(),
            driver: s.images.snapshotter_kind_name(),
        };
        s.save(&rec)?;
        crate::mark("engine: create: record saved");
        Ok(rec)
    })();
    let rec = match r {
        Ok(r) => r,
        Err(er) => {
            // (Its rootfs may be mounted already: a ready one.)
            let _ = s.unmount_at(&d.join("rootfs"), &id);
            let _ = s.images.remove_snapshot(&id);
            let _ = std::fs::remove_dir_all(&d);
            unreserve(s);
            return Err(er);
        }
    };
    {
        let mut reg = s.lock();
        reg.containers.insert(
            id.clone(),
            Entry {
                rec: rec.clone(),
                op,
                pending: vec![],
                exit_gen: 0,
                removing: false,
                prepared: None,
                preparing: false,
                start_req: None,
                version: 0,
                saved: Arc::new(Mutex::new(0)),
            },
        );
    }
    s.event(&rec, "create", &[]);
    if !matches!(
        crate::spec::net_mode(&rec.host_config),
        Ok(crate::spec::NetMode::Container(_))
    ) {
        prepare_later(s, &id);
    }
    Ok(json!({"Id": id, "Warnings": []}))
}

trait KindName {
    fn snapshotter_kind_name(&self) -> String;
}
impl KindName for ImageService {
    fn snapshotter_kind_name(&self) -> String {
        format!("{:?}", self.snapshotter_kind()).to_lowercase()
    }
}

/// A start handed to the prepare thread (see [`Entry::start_req`]).
#[derive(Default)]
pub(crate) struct StartReq {
    /// None while pending; Some(None): not done, start it yourself; Some(Some(r)): done.
    done: Mutex<Option<Option<Result<()>>>>,
    cv: Condvar,
}

impl StartReq {
    fn finish(&self, r: Option<Result<()>>) {
        if let Ok(mut d) = self.done.lock() {
            *d = Some(r);
        }
        self.cv.notify_all();
    }

    /// The prepare thread's answer: Some(result), or None when the caller must start.
    fn wait(&self) -> Option<Result<()>> {
        let mut d = match self.done.lock() {
            Ok(d) => d,
            Err(_) => return None,
        };
        loop {
            if let Some(r) = d.take() {
                return r;
            }
            d = match self.cv.wait(d) {
                Ok(g) => g,
                Err(_) => return None,
            };
        }
    }
}

pub(crate) fn start(e: &Engine, x: &str) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    // Being prepared right now: the prepare thread starts it the moment it is ready.
    let req = {
        let mut reg = s.lock();
        match reg.containers.get_mut(&id) {
            Some(en) if en.preparing && en.start_req.is_none() => {
                let r = Arc::new(StartReq::default());
                en.start_req = Some(r.clone());
                Some(r)
            }
            _ => None,
        }
    };
    if let Some(r) = req {
        if let Some(res) = r.wait() {
            return res;
        }
    }
    let _g = op
        .lock()
        .map_err(|_| Error::Internal("container lock poisoned".into()))?;
    start_checked(s, &id)
}

/// `start` under the container's op lock: refused in states Docker refuses it in.
fn start_checked(s: &Arc<Shared>, id: &str) -> Result<()> {
    let rec = s.record(id)?;
    match rec.state.status.as_str() {
        "running" | "restarting" => return Err(Error::NotModified),
        "paused" => {
            return Err(Error::Conflict(
                "cannot start a paused container, try unpause instead".into(),
            ))
        }
        "removing" | "dead" => {
            return Err(Error::Conflict(format!(
                "container {id} is marked for removal and cannot be started"
            )))
        }
        _ => {}
    }
    start_locked(s, id)
}

/// The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, made anew at every start
/// (as Docker's are): they live with the runtime state, not the persistent record.
fn write_etc(s: &Shared, rec: &Record) -> Result<()> {
    let d = s.etc_dir(&rec.id);
    let hostname = rec.config["Hostname"].as_str().unwrap_or("").to_string();
    let net = crate::spec::net_mode(&rec.host_config)?;
    let (hosts, resolv) = if net == crate::spec::NetMode::Host {
        (
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        )
    } else {
        let hosts = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n");
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut r = String::new();
        for l in host_resolv.lines() {
            let t = l.trim();
            if let Some(ns) = t.strip_prefix("nameserver") {
                let ns = ns.trim();
                if ns.starts_with("127.") || ns == "::1" {
                    continue;
                }
            }
            r.push_str(l);
            r.push('\n');
        }
        let dns = strs(&rec.host_config["Dns"]);
        if !dns.is_empty() {
            r = r
                .lines()
                .filter(|l| !l.trim_start().starts_with("nameserver"))
                .map(|l| format!("{l}\n"))
                .collect();
            for d in dns {
                r.push_str(&format!("nameserver {d}\n"));
            }
        }
        (hosts, r)
    };
    let mut hosts = hosts;
    for h in strs(&rec.host_config["ExtraHosts"]) {
        if let Some((n, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{n}\n"));
        }
    }
    write_atomic_nosync(&d.join("hostname"), format!("{hostname}\n").as_bytes())?;
    write_atomic_nosync(&d.join("hosts"), hosts.as_bytes())?;
    write_atomic_nosync(&d.join("resolv.conf"), resolv.as_bytes())?;
    Ok(())
}

fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1024u64),
        'm' => (&t[..t.len() - 1], 1024 * 1024),
        'g' => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        'b' => (&t[..t.len() - 1], 1),
        _ => (&t[..], 1),
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

/// Hand the monitor its config (the spare one if there is one, else a fresh one) and read its
/// first answer: "created" (container) / "ready" (exec) or an error.
pub(crate) fn spawn_monitor(
    s: &Arc<Shared>,
    mcfg: &MonitorConfig,
    cfg_path: &Path,
) -> Result<(UnixStream, String)> {
    use std::os::unix::ffi::OsStrExt;
    write_json_nosync(cfg_path, mcfg)?;
    let mut msg = cfg_path.as_os_str().as_bytes().to_vec();
    msg.push(b'\n');
    let spare = if msg.iter().filter(|&&b| b == b'\n').count() == 1 {
        s.spare.lock().ok().and_then(|mut g| g.take())
    } else {
        None
    };
    // A spare that died meanwhile fails the write (EPIPE): start a fresh monitor instead.
    let ours = match spare.filter(|c| (&*c).write_all(&msg).is_ok()) {
        Some(c) => {
            crate::mark("engine: config handed to the spare monitor");
            c
        }
        None => launch_monitor(s, Some(cfg_path))?,
    };
    ours.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| internal("control socket", e))?;
    let line = read_line(&ours)?;
    Ok((ours, line))
}

/// Run berth-monitor with its stdin = one end of a socketpair (the control channel; no other
/// fd plumbing, so std spawns it with posix_spawn = vfork instead of copying berthd's page
/// tables); `cfg_path` None = a spare. Returns once the monitor has detached (its intermediate
/// process is reaped).
fn launch_monitor(s: &Shared, cfg_path: Option<&Path>) -> Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| internal("socketpair", e))?;
    let mut cmd = std::process::Command::new(&s.monitor_bin);
    match cfg_path {
        Some(p) => cmd.arg(p),
        None => cmd.arg("--spare"),
    };
    cmd.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
        theirs,
    )))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| internal(format!("spawn {}", s.monitor_bin.display()), e))?;
    drop(cmd);
    let _ = child.wait();
    Ok(ours)
}

/// Ready empty container snapshots and directories kept: a create takes one of each instead
/// of making its directories.
const SNAPSHOT_POOL: usize = 2;

/// Top up what the next containers take ready: network namespaces, snapshot and container
/// directories, the rootfs mounted ahead.
fn fill_ready(s: &Shared) {
    s.netns.fill();
    fill_dir_pools(s);
    fill_ready_rootfs(s);
}

fn fill_dir_pools(s: &Shared) {
    if s.closed.load(Ordering::SeqCst) {
        return;
    }
    if let Err(e) = s.images.snapshots.fill_pool(SNAPSHOT_POOL) {
        tracing::warn!("make ready container snapshots: {e}");
    }
    while s
        .record_pool
        .lock()
        .map(|p| p.len())
        .unwrap_or(SNAPSHOT_POOL)
        < SNAPSHOT_POOL
    {
        let Ok(rid) = random_id() else { return };
        let d = s
            .cfg
            .root
            .join("containers")
            .join(format!("{RECORD_POOL_PREFIX}{}", &rid[..16]));
        let made = std::fs::create_dir(&d)
            .and_then(|()| std::fs::create_dir(d.join("rootfs")))
            .and_then(|()| {
                let tmp = berth_runtime::state::atomic_tmp_path(&d.join("config.v2.json"))
                    .map_err(std::io::Error::other)?;
                std::fs::File::create(tmp).map(drop)
            });
        match (made, s.record_pool.lock()) {
            (Ok(()), Ok(mut p)) => p.push(d),
            (made, _) => {
                let _ = std::fs::remove_dir_all(&d);
                if let Err(e) = made {
                    tracing::warn!("make ready container directories: {e}");
                }
                return;
            }
        }
    }
}

/// Mount an empty rootfs for the base of the last create, in a ready container directory,
/// unless one is ready for it already (one for another base is let go of).
fn fill_ready_rootfs(s: &Shared) {
    if s.closed.load(Ordering::SeqCst)
        || s.images.snapshots.kind() != berth_image::snapshot::SnapshotterKind::Overlay
    {
        return;
    }
    let Some(base) = s.last_base.lock().ok().and_then(|b| b.clone()) else {
        return;
    };
    // Image removals (which take the layers away) wait for us; while one (or a pull) holds
    // the lock, this is left for the next pass.
    let Ok(_g) = s.image_lock.try_lock() else {
        return;
    };
    let stale = match s.ready_rootfs.lock() {
        Ok(mut r) => match r.as_ref() {
            Some(x) if x.mount.base == base => return,
            Some(_) => r.take(),
            None => None,
        },
        Err(_) => return,
    };
    if let Some(r) = stale {
        discard_ready_rootfs(s, r);
    }
    let dir = match s.record_pool.lock().ok().and_then(|mut p| p.pop()) {
        Some(d) => d,
        None => return, // made by the pool fill before us; next time
    };
    match s.images.snapshots.mount_ready(&base, &dir.join("rootfs")) {
        Ok(mount) => {
            let r = ReadyRootfs { dir, mount };
            match s.ready_rootfs.lock() {
                Ok(mut g) if g.is_none() && !s.closed.load(Ordering::SeqCst) => *g = Some(r),
                _ => discard_ready_rootfs(s, r),
            }
        }
        Err(e) => {
            tracing::warn!("mount a rootfs ahead: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            if let Ok(mut b) = s.last_base.lock() {
                *b = None;
            }
        }
    }
}

fn discard_ready_rootfs(s: &Shared, r: ReadyRootfs) {
    s.images
        .snapshots
        .discard_ready(r.mount, &r.dir.join("rootfs"));
    if !berth_image::sys::is_mount_root(&r.dir.join("rootfs")) {
        let _ = std::fs::remove_dir_all(&r.dir);
    }
}

/// Let go of the ready rootfs (at shutdown, before image removals).
pub(crate) fn drain_ready_rootfs(s: &Shared) {
    let r = s.ready_rootfs.lock().ok().and_then(|mut r| r.take());
    if let Some(r) = r {
        discard_ready_rootfs(s, r);
    }
}

/// Container `d`'s directory from the ready rootfs (returned, to be used or let go of by the
/// snapshot's prepare), else as [`make_record_dir`] makes it.
fn take_ready_rootfs(s: &Shared, d: &Path) -> Result<Option<berth_image::snapshot::ReadyMount>> {
    let r = s.ready_rootfs.lock().ok().and_then(|mut r| r.take());
    if let Some(r) = r {
        match std::fs::rename(&r.dir, d) {
            Ok(()) => return Ok(Some(r.mount)),
            Err(e) => {
                tracing::warn!("ready rootfs {}: {e}", r.dir.display());
                discard_ready_rootfs(s, r);
            }
        }
    }
    make_record_dir(s, d)?;
    Ok(None)
}

/// Name prefix of the ready container directories (removed when found at start-up).
const RECORD_POOL_PREFIX: &str = ".tmp-pool-";

/// Container `d`'s directory: a ready one renamed into place, else made.
fn make_record_dir(s: &Shared, d: &Path) -> Result<()> {
    let ready = s.record_pool.lock().ok().and_then(|mut p| p.pop());
    if let Some(r) = ready {
        match std::fs::rename(&r, d) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!("ready container directory {}: {e}", r.display());
                let _ = std::fs::remove_dir_all(&r);
            }
        }
    }
    std::fs::create_dir_all(d).map_err(|er| internal(format!("create {}", d.display()), er))
}

/// Remove the ready container directories (at shutdown).
fn drain_record_pool(s: &Shared) {
    let ready: Vec<PathBuf> = s
        .record_pool
        .lock()
        .map(|mut p| p.drain(..).collect())
        .unwrap_or_default();
    for r in ready {
        let _ = std::fs::remove_dir_all(r);
    }
}

/// Have a spare monitor ready again (see [`Shared::spare`]) as soon as possible.
pub(crate) fn refill_spare(s: &Shared) {
    refill_spare_after(s, Duration::ZERO)
}

/// Have the keeper thread run no later than `delay` from now (an earlier request wins): it
/// starts a spare monitor if there is none, releases the network namespaces of finished runs
/// and tops up the ready ones.
pub(crate) fn refill_spare_after(s: &Shared, delay: Duration) {
    let at = Instant::now() + delay;
    if let Ok(mut due) = s.spare_due.lock() {
        if due.is_none_or(|d| at < d) {
            *due = Some(at);
            s.spare_cv.notify_one();
        }
    }
}

/// The keeper: when due, releases finished runs' network namespaces, starts a spare monitor
/// if there is none, tops up the ready network namespaces.
fn spare_keeper(s: Arc<Shared>) {
    // Getting ready for the next container never competes with the current one.
    berth_runtime::idle_priority(true);
    loop {
        {
            let Ok(mut due) = s.spare_due.lock() else {
                return;
            };
            loop {
                if s.closed.load(Ordering::SeqCst) {
                    return;
                }
                match *due {
                    None => {
                        due = match s.spare_cv.wait(due) {
                            Ok(g) => g,
                            Err(_) => return,
                        }
                    }
                    Some(t) if Instant::now() < t => {
                        due = match s.spare_cv.wait_timeout(due, t - Instant::now()) {
                            Ok((g, _)) => g,
                            Err(_) => return,
                        }
                    }
                    Some(_) => {
                        *due = None;
                        break;
                    }
                }
            }
        }
        let Ok(_busy) = s.keeper_busy.lock() else {
            return;
        };
        if s.closed.load(Ordering::SeqCst) {
            return;
        }
        s.netns.release_queued();
        if s.spare.lock().map(|g| g.is_some()).unwrap_or(true) {
            fill_ready(&s);
            continue;
        }
        let r = launch_monitor(&s, None);
        fill_ready(&s);
        match r {
            Ok(c) => {
                if let Ok(mut g) = s.spare.lock() {
                    if g.is_none() && !s.closed.load(Ordering::SeqCst) {
                        *g = Some(c);
                    }
                }
            }
            Err(e) => {
                tracing::warn!("start a spare monitor: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

pub(crate) fn read_line(c: &UnixStream) -> Result<String> {
    let mut r = BufReader::new(c);
    let mut l = String::new();
    // One line at a time; BufReader may over-read but the monitor never sends two lines before
    // we answer.
    r.read_line(&mut l)
        .map_err(|e| internal("read from berth-monitor", e))?;
    if l.is_empty() {
        return Err(Error::Internal(
            "berth-monitor exited without an answer (see its log)".into(),
        ));
    }
    Ok(l.trim_end().to_string())
}

pub(crate) fn monitor_error(line: &str) -> Error {
    let msg = line.strip_prefix(CTL_ERROR).unwrap_or(line).trim();
    let low = msg.to_ascii_lowercase();
    if low.contains("executable file not found")
        || low.contains("no such file")
        || low.contains("not found")
        || low.contains("permission denied")
    {
        Error::BadParameter(format!("failed to create task for container: {msg}"))
    } else {
        Error::Internal(format!("failed to create task for container: {msg}"))
    }
}

pub(crate) fn hello_line(h: &AttachHello) -> Vec<u8> {
    let mut v = serde_json::to_vec(h).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Wait (up to 10 s) until the container's monitor, if any, has exited: it holds
/// [`monitor_lock_path`] until its runtime cleanup is over.
pub(crate) fn wait_monitor_done(s: &Shared, id: &str) {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(monitor_lock_path(&s.attach_sock(id))) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: flock on an fd we own; closing the file releases it.
    while unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if Instant::now() > deadline {
            tracing::warn!("the monitor of {id} is still cleaning up after 10 s");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A container whose runtime side is made and waits for "start": its monitor answered
/// "created" on `ctl`; `pid` is its init.
pub(crate) struct Task {
    ctl: UnixStream,
    pid: i32,
    /// Its network namespace (`--network none`); dropping the task releases it.
    netns: Option<crate::netns::Netns>,
}

/// How long a container prepared at create time (see [`prepare_later`]) waits for its start
/// before it is taken down again.
const PREPARED_TTL: Duration = Duration::from_secs(10);

/// Make the runtime side of a container up to "created": rootfs mounted, /etc files, OCI
/// spec, monitor, runtime create. Changes no record state; on error the caller cleans up.
fn create_task(s: &Arc<Shared>, id: &str, rec: &Record) -> Result<Task> {
    let xdir = s.xdir(id);
    let cdir = s.cdir(id);
    let bundle = xdir.join("bundle");
    std::fs::create_dir_all(&bundle)
        .map_err(|e| internal(format!("create {}", bundle.display()), e))?;
    // Leftovers of a previous run (once its monitor is done with them).
    s.delete_runtime(id);
    let _ = std::fs::remove_file(cdir.join("exit.json"));
    let rootfs = s.ensure_mounted(id)?;
    crate::mark("engine: rootfs mounted");
    write_etc(s, rec)?;
    // (Released again, by its drop, if anything below fails.)
    let mut netns = None;
    let join_net = match crate::spec::net_mode(&rec.host_config)? {
        crate::spec::NetMode::None => {
            let n = s.netns.take()?;
            let js = n.path().to_string_lossy().into_owned();
            netns = Some(n);
            Some(js)
        }
        crate::spec::NetMode::Container(c) => {
            let reg = s.lock();
            let oid = s.resolve(&reg, &c)?;
            let other = &reg.containers[&oid].rec;
            if other.state.status != "running" || other.state.pid <= 0 {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {c}"
                )));
            }
            Some(format!("/proc/{}/ns/net", other.state.pid))
        }
        _ => None,
    };
    let spec = crate::spec::build(&crate::spec::SpecInput {
        id,
        config: &rec.config,
        host: &rec.host_config,
        rootfs: &rootfs,
        etc_dir: &s.etc_dir(id),
        init_path: s.init_bin.clone(),
        join_net,
        hostname: rec.config["Hostname"].as_str().unwrap_or("").to_string(),
    })?;
    crate::mark("engine: spec built");
    write_json_nosync(&bundle.join("config.json"), &spec)?;
    crate::mark("engine: config.json written");
    let lc = &rec.host_config["LogConfig"];
    let log_none = lc["Type"] == "none";
    let mcfg = MonitorConfig {
        mode: Mode::Container,
        id: id.to_string(),
        runtime_root: s.rt.root.clone(),
        bundle: bundle.clone(),
        process: None,
        tty: rec.config["Tty"].as_bool().unwrap_or(false),
        open_stdin: rec.config["OpenStdin"].as_bool().unwrap_or(false),
        stdin_once: rec.config["StdinOnce"].as_bool().unwrap_or(false),
        attach_socket: s.attach_sock(id),
        log_path: if log_none {
            None
        } else {
            Some(PathBuf::from(&rec.log_path))
        },
        log_max_size: lc["Config"]["max-size"]
            .as_str()
            .and_then(parse_size)
            .unwrap_or(0),
        log_max_file: lc["Config"]["max-file"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        exit_file: cdir.join("exit.json"),
        // (Its removal's clean-up waits for the monitor's, nothing else does.)
        cleanup_delay_ms: if auto_removes(rec) {
            CLIENT_GRACE.as_millis() as u64
        } else {
            0
        },
        initial_size: rec.host_config["ConsoleSize"].as_array().and_then(|a| {
            let h = a.first()?.as_u64()? as u16;
            let w = a.get(1)?.as_u64()? as u16;
            if h > 0 && w > 0 {
                Some((h, w))
            } else {
                None
            }
        }),
        monitor_log: Some(cdir.join("monitor.log")),
    };
    let (ctl, line) = spawn_monitor(s, &mcfg, &xdir.join("monitor.json"))?;
    crate::mark("engine: monitor says created");
    if !line.starts_with(CTL_CREATED) {
        return Err(monitor_error(&line));
    }
    let pid: i32 = line[CTL_CREATED.len()..].trim().parse().unwrap_or(0);
    Ok(Task { ctl, pid, netns })
}

/// Take a prepared task down (op lock held): the monitor deletes the runtime container when
/// told anything but "start", answers and exits.
fn abort_task(s: &Shared, id: &str, t: Task) {
    let _ = (&t.ctl).write_all(b"abort\n");
    let _ = t.ctl.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = read_line(&t.ctl);
    drop(t);
    s.unmount(id);
}

/// Take down the task prepared at create time, if any (op lock held): before anything that
/// changes what the start would have made (resources, removal).
pub(crate) fn discard_prepared(s: &Shared, id: &str) {
    let t = s
        .lock()
        .containers
        .get_mut(id)
        .and_then(|en| en.prepared.take());
    if let Some(t) = t {
        abort_task(s, id, t);
    }
}

/// Right after a create, make the runtime side of the container in the background: `docker
/// run` sends attach, wait and start next, and the start then only has to say "go". Taken
/// down again if no start comes within [`PREPARED_TTL`] or the container is changed first.
/// A failure here is not reported: the start redoes the work and reports it.
fn prepare_later(s: &Arc<Shared>, id: &str) {
    let ss = s.clone();
    let id = id.to_string();
    let r = std::thread::Builder::new()
        .name("prepare".into())
        .spawn(move || {
            let s = &ss;
            let Ok((_, op)) = s.find(&id) else { return };
            let pid = {
                let Ok(_g) = op.lock() else { return };
                let Ok(rec) = s.record(&id) else { return };
                if rec.state.status != "created"
                    || rec.has_been_started
                    || s.closed.load(Ordering::SeqCst)
                {
                    return;
                }
                if let Some(en) = s.lock().containers.get_mut(&id) {
                    en.preparing = true;
                }
                let made = create_task(s, &id, &rec);
                // A start that came meanwhile is ours to do (or to hand back).
                let req = s.lock().containers.get_mut(&id).and_then(|en| {
                    en.preparing = false;
                    en.start_req.take()
                });
                let give_back = |req: Option<Arc<StartReq>>| {
                    if let Some(r) = req {
                        r.finish(None);
                    }
                };
                match made {
                    Ok(t) => {
                        let pid = t.pid;
                        let mut reg = s.lock();
                        match reg.containers.get_mut(&id) {
                            // (Not after a shutdown, which let go of the prepared ones.)
                            Some(en)
                                if en.prepared.is_none() && !s.closed.load(Ordering::SeqCst) =>
                            {
                                en.prepared = Some(t)
                            }
                            _ => {
                                drop(reg);
                                abort_task(s, &id, t);
                                give_back(req);
                                return;
                            }
                        }
                        drop(reg);
                        if let Some(r) = req {
                            r.finish(Some(start_checked(s, &id)));
                            return;
                        }
                        pid
                    }
                    Err(e) => {
                        tracing::debug!("prepare {id}: {e} (the start will redo and report it)");
                        let _ = s.rt.delete(&id, true);
                        s.unmount(&id);
                        give_back(req);
                        return;
                    }
                }
            };
            std::thread::sleep(PREPARED_TTL);
            let Ok(_g) = op.lock() else { return };
            let t = {
                let mut reg = s.lock();
                match reg.containers.get_mut(&id) {
                    Some(en) if en.prepared.as_ref().is_some_and(|t| t.pid == pid) => {
                        en.prepared.take()
                    }
                    _ => None,
                }
            };
            if let Some(t) = t {
                abort_task(s, &id, t);
            }
        });
    if let Err(e) = r {
        tracing::debug!("prepare a container: {e}");
    }
}

/// Start with the op lock held.
pub(crate) fn start_locked(s: &Arc<Shared>, id: &str) -> Result<()> {
    crate::mark("engine: start");
    let rec = s.record(id)?;
    let fail = |e: Error| -> Error {
        s.unmount(id);
        let pend: Vec<Arc<Slot>> = s
            .lock()
            .containers
            .get_mut(id)
            .map(|en| en.pending.drain(..).map(|p| p.1).collect())
            .unwrap_or_default();
        for p in pend {
            p.close();
        }
        let msg = e.to_string();
        let low = msg.to_ascii_lowercase();
        // Docker: 127 when the command is not found, 126 when it cannot be run.
        let code = if low.contains("executable file not found")
            || low.contains("no such file")
            || low.contains("not a directory")
        {
            127
        } else if low.contains("permission denied") {
            126
        } else {
            128
        };
        let _ = s.update(id, |en| {
            en.rec.state.error = msg.clone();
            if en.rec.state.status != "exited" && en.rec.state.status != "created" {
                en.rec.state.status = "exited".into();
            }
            en.rec.state.exit_code = code;
            en.rec.state.finished_at = now_rfc3339();
            // Waiters for the next exit learn about the failure.
            en.exit_gen += 1;
        });
        // Docker removes an AutoRemove container whose start failed, so a
        // `wait?condition=removed` (what `docker run --rm` blocks on) answers.
        if rec.host_config["AutoRemove"].as_bool().unwrap_or(false) {
            if let Err(re) = remove_inner(s, id, true) {
                tracing::warn!("auto-remove {id} after failed start: {re}");
            }
        }
        e
    };
    let prepared = s
        .lock()
        .containers
        .get_mut(id)
        .and_then(|en| en.prepared.take());
    let task = match prepared {
        Some(t) => {
            crate::mark("engine: using the prepared container");
            t
        }
        None => match create_task(s, id, &rec) {
            Ok(t) => t,
            Err(e) => return Err(fail(e)),
        },
    };
    // A failure from here on drops the namespace (released); success hands it to the record.
    let Task {
        ctl,
        pid,
        mut netns,
    } = task;
    // Connect the watcher and the pending attach sessions before the process runs.
    let watch = match connect_watch(s, id) {
        Ok(w) => w,
        Err(e) => {
            drop(ctl);
            return Err(fail(internal("connect to the monitor", e)));
        }
    };
    let pend: Vec<(AttachHello, Arc<Slot>)> = s
        .lock()
        .containers
        .get_mut(id)
        .map(|en| en.pending.drain(..).collect())
        .unwrap_or_default();
    for (h, slot) in pend {
        match crate::proto::connect(&s.attach_sock(id))
            .and_then(|c| (&c).write_all(&hello_line(&h)).map(|_| c))
        {
            Ok(c) => slot.connect(c),
            Err(_) => slot.close(),
        }
    }
    crate::mark("engine: watch+attach connected");
    // Our specs have no poststart hooks: what the runtime's start does is releasing the init
    // through its exec fifo, which we do here, then tell the monitor to carry on (no answer
    // to wait for). If the init is gone, the monitor learns from the closed channel.
    if let Err(e) = s.rt.release(id) {
        drop(ctl);
        drop(watch);
        return Err(fail(monitor_error(&e.to_string())));
    }
    crate::mark("engine: released");
    if let Err(e) = (&ctl).write_all(format!("{CTL_GO}\n").as_bytes()) {
        // Running already: the monitor, without its go, ends it and reports the exit.
        tracing::warn!("tell berth-monitor of {id} to go on: {e}");
    }
    // In memory only: the next write of the record (stop, exit, update...) carries it, and a
    // daemon that stops before that finds the container running and adopts it (reconcile).
    let rec = s.update_unsaved(id, |en| {
        en.rec.state.status = "running".into();
        en.rec.state.pid = pid;
        en.rec.state.started_at = now_rfc3339();
        en.rec.state.error = String::new();
        en.rec.state.exit_code = 0;
        en.rec.state.oom_killed = false;
        en.rec.state.net_ns = netns
            .take()
            .map(|n| n.keep().to_string_lossy().into_owned())
            .unwrap_or_default();
        en.rec.has_been_started = true;
        en.rec.manually_stopped = false;
        en.rec.clone()
    })?;
    crate::mark("engine: running state saved");
    s.event(&rec, "start", &[]);
    spawn_watcher(s.clone(), id.to_string(), watch);
    // Not now: a new monitor starting up would compete for the CPU with the container's first
    // moments (and, for a short-lived one, with its exit handling, which refills at once).
    refill_spare_after(s, Duration::from_millis(50));
    Ok(())
}

/// Wait until the container's exit_gen passes `gen` or it is gone, up to `timeout`.
pub(crate) fn wait_exit(s: &Shared, id: &str, gen: u64, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut reg = s.lock();
    loop {
        match reg.containers.get(id) {
            None => return true,
            Some(e) if e.exit_gen > gen => return true,
            Some(e) if !e.rec.running() && e.rec.state.status != "restarting" => return true,
            _ => {}
        }
        let wait = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                d - now
            }
            None => Duration::from_secs(1),
        };
        reg = match s.cond.wait_timeout(reg, wait.min(Duration::from_secs(1))) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

pub(crate) fn stop(
    e: &Engine,
    x: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
    _restart: bool,
) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    let _g = op
        .lock()
        .map_err(|_| Error::Internal("container lock poisoned".into()))?;
    stop_locked(s, &id, timeout, signal)
}

fn stop_locked(
    s: &Arc<Shared>,
    id: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
) -> Result<()> {
    let rec = s.record(id)?;
    if rec.state.status == "restarting" {
        s.update(id, |en| {
            en.rec.manually_stopped = true;
            en.rec.state.status = "exited".into();
        })?;
        s.event(&rec, "stop", &[]);
        return Ok(());
    }
    if !rec.running() {
        return Err(Error::NotModified);
    }
    let gen = s.update(id, |en| {
        en.rec.manually_stopped = true;
        en.exit_gen
    })?;
    let sig_name = signal
        .map(String::from)
        .or_else(|| {
            rec.config["StopSignal"]
                .as_str()
                .filter(|x| !x.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| "SIGTERM".into());
    let sig = parse_signal(&sig_name)?;
    let t = timeout
        .or_else(|| rec.config["StopTimeout"].as_i64())
        .unwrap_or(10);
    let paused = rec.state.status == "paused";
    if let Ok(sg) = nix::sys::signal::Signal::try_from(sig) {
        if s.rt.kill(id, sg as i32, false).is_ok() {
            s.event(&rec, "kill", &[("signal", sig.to_string())]);
        }
    }
    if paused {
        let _ = s.rt.resume(id);
    }
    let exited = wait_exit(
        s,
        id,
        gen,
        if t < 0 {
            None
        } else {
            Some(Duration::from_secs(t as u64))
        },
    );
    if !exited {
        let _ = s.rt.kill(id, libc::SIGKILL, true);
        s.event(&rec, "kill", &[("signal", "9".into())]);
        if !wait_exit(s, id, gen, Some(Duration::from_secs(30))) {
            return Err(Error::Internal(format!(
                "container {id} did not exit after SIGKILL"
            )));
        }
    }
    s.event(&rec, "stop", &[]);
    Ok(())
}

pub(crate) fn restart(
    e: &Engine,
    x: &str,
    timeout: Option<i64>,
    signal: Option<&str>,
) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    let _g = op
        .lock()
        .map_err(|_| Error::Internal("container lock poisoned".into()))?;
    match stop_locked(s, &id, timeout, signal) {
        Ok(()) | Err(Error::NotModified) => {}
        Err(e) => return Err(e),
    }
    // Let the watcher finish the exit bookkeeping.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.record(&id)?.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    start_locked(s, &id)?;
    let rec = s.record(&id)?;
    s.event(&rec, "restart", &[]);
    Ok(())
}

pub(crate) fn kill(e: &Engine, x: &str, signal: Option<&str>) -> Result<()> {
    let s = &e.inner.0;
    let (id, _) = s.find(x)?;
    let rec = s.record(&id)?;
    let sig = parse_signal(signal.filter(|x| !x.is_empty()).unwrap_or("SIGKILL"))?;
    if !matches!(rec.state.status.as_str(), "running" | "paused") {
        return Err(Error::Conflict(format!(
            "Cannot kill container: {x}: container {id} is not running"
        )));
    }
    let sg = nix::sys::signal::Signal::try_from(sig)
        .map_err(|_| Error::BadParameter(format!("Invalid signal: {sig}")))?;
    s.rt.kill(&id, sg as i32, sig == 9)
        .map_err(|er| internal(format!("kill {id}"), er))?;
    if rec.state.status == "paused" && sig == 9 {
        let _ = s.rt.resume(&id);
    }
    s.event(&rec, "kill", &[("signal", sig.to_string())]);
    Ok(())
}

pub(crate) fn pause(e: &Engine, x: &str) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    let _g = op.lock();
    let rec = s.record(&id)?;
    match rec.state.status.as_str() {
        "running" => {}
        "paused" => return Err(Error::Conflict(format!("container {id} is already paused"))),
        _ => return Err(Error::Conflict(format!("container {id} is not running"))),
    }
    s.rt.pause(&id)
        .map_err(|er| internal(format!("pause {id}"), er))?;
    let rec = s.update(&id, |en| {
        en.rec.state.status = "paused".into();
        en.rec.clone()
    })?;
    s.event(&rec, "pause", &[]);
    Ok(())
}

pub(crate) fn unpause(e: &Engine, x: &str) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    let _g = op.lock();
    let rec = s.record(&id)?;
    if rec.state.status != "paused" {
        return Err(Error::Conflict(format!("container {id} is not paused")));
    }
    s.rt.resume(&id)
        .map_err(|er| internal(format!("unpause {id}"), er))?;
    let rec = s.update(&id, |en| {
        en.rec.state.status = "running".into();
        en.rec.clone()
    })?;
    s.event(&rec, "unpause", &[]);
    Ok(())
}

pub(crate) fn rename(e: &Engine, x: &str, new_name: &str) -> Result<()> {
    let s = &e.inner.0;
    let n = validate_name(new_name)?;
    let (old, rec, v, saved) = {
        let mut reg = s.lock();
        let id = s.resolve(&reg, x)?;
        let old = reg.containers[&id].rec.name.clone();
        if old == n {
            return Err(Error::Conflict(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        if let Some(other) = reg.names.get(&n) {
            return Err(conflict_msg(&n, other));
        }
        reg.names.remove(&old);
        reg.names.insert(n.clone(), id.clone());
        let en = reg
            .containers
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("No such container: {x}")))?;
        en.rec.name = n.clone();
        en.version += 1;
        (old, en.rec.clone(), en.version, en.saved.clone())
    };
    s.save_version(&rec, v, &saved)?;
    s.event(&rec, "rename", &[("oldName", old)]);
    Ok(())
}

pub(crate) fn update(e: &Engine, x: &str, body: &Value) -> Result<Value> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    let _g = op.lock();
    // A container prepared at create has its cgroup made with the old values.
    discard_prepared(s, &id);
    let rec = s.record(&id)?;
    let mut host = rec.host_config.clone();
    let keys = [
        "CpuShares",
        "Memory",
        "MemorySwap",
        "MemoryReservation",
        "NanoCpus",
        "CpuQuota",
        "CpuPeriod",
        "CpusetCpus",
        "CpusetMems",
        "PidsLimit",
        "BlkioWeight",
        "KernelMemory",
    ];
    let obj = body
        .as_object()
        .ok_or_else(|| Error::BadParameter("update body must be a JSON object".into()))?;
    for k in keys {
        if let Some(v) = obj.get(k) {
            if !(v.is_null() || v.as_i64() == Some(0) && k != "PidsLimit" || v.as_str() == Some(""))
            {
                host[k] = v.clone();
            }
        }
    }
    if let Some(rp) = obj.get("RestartPolicy") {
        if !rp.is_null() && !rp["Name"].as_str().unwrap_or("").is_empty() {
            host["RestartPolicy"] = rp.clone();
        }
    }
    crate::spec::validate(&host)?;
    let mut warnings = Vec::new();
    if rec.running() {
        // Build the resources through the same code path as the spec.
        let mut tmp = host.clone();
        tmp["Devices"] = json!([]);
        let res = resources_of(&tmp)?;
        let lr: oci_spec::runtime::LinuxResources =
            serde_json::from_value(res).map_err(|er| internal("resources", er))?;
        warnings =
            s.rt.update(&id, &lr)
                .map_err(|er| Error::BadParameter(format!("Cannot update container {id}: {er}")))?;
    }
    let rec = s.update(&id, |en| {
        en.rec.host_config = host;
        en.rec.clone()
    })?;
    s.event(&rec, "update", &[]);
    Ok(json!({"Warnings": warnings}))
}

/// The cgroup resources of a HostConfig (without device rules).
fn resources_of(host: &Value) -> Result<Value> {
    let mut r = json!({});
    let i = |k: &str| host[k].as_i64().unwrap_or(0);
    let mem = i("Memory");
    if mem > 0 {
        r["memory"] = json!({"limit": mem});
        let sw = i("MemorySwap");
        if sw != 0 {
            r["memory"]["swap"] = json!(sw);
        }
    }
    let mut cpu = serde_json::Map::new();
    if i("CpuShares") > 0 {
        cpu.insert("shares".into(), json!(i("CpuShares")));
    }
    if i("NanoCpus") > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert(
            "quota".into(),
            json!(i("NanoCpus") * 100_000 / 1_000_000_000),
        );
    }
    if i("CpuQuota") != 0 {
        cpu.insert("quota".into(), json!(i("CpuQuota")));
    }
    if i("CpuPeriod") != 0 {
        cpu.insert("period".into(), json!(i("CpuPeriod")));
    }
    if let Some(c) = host["CpusetCpus"].as_str().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = host["PidsLimit"].as_i64() {
        if p != 0 {
            r["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
        }
    }
    if i("BlkioWeight") > 0 {
        r["blockIO"] = json!({"weight": i("BlkioWeight")});
    }
    Ok(r)
}

pub(crate) fn remove(e: &Engine, x: &str, force: bool, _volumes: bool) -> Result<()> {
    let s = &e.inner.0;
    let (id, op) = s.find(x)?;
    let _g = op.lock();
    let rec = s.record(&id)?;
    if rec.running() && !force {
        let what = if rec.state.status == "paused" {
            "paused"
        } else {
            "running"
        };
        return Err(Error::Conflict(format!(
            "cannot remove container \"{}\": container is {what}: stop the container before removing or force remove",
            rec.name
        )));
    }
    remove_inner(s, &id, force)
}

pub(crate) fn remove_inner(s: &Arc<Shared>, id: &str, _force: bool) -> Result<()> {
    remove_inner_opt(s, id, false)
}

/// `remove_inner`; with `defer_cleanup` the tombstoned files (rootfs snapshot, exec-root dir)
/// are deleted on a background thread after the container is gone from the registry and its
/// waiters are answered (a crash before that leaves a tombstone that `open` finishes).
fn remove_inner_opt(s: &Arc<Shared>, id: &str, defer_cleanup: bool) -> Result<()> {
    discard_prepared(s, id);
    let (gen, rec) = {
        let mut reg = s.lock();
        let Some(en) = reg.containers.get_mut(id) else {
            return Ok(());
        };
        if en.removing {
            return Err(Error::Conflict(format!(
                "removal of container {id} is already in progress"
            )));
        }
        en.removing = true;
        (en.exit_gen, en.rec.clone())
    };
    if rec.running() || rec.state.status == "restarting" {
        let _ = s.rt.resume(id);
        let _ = s.rt.kill(id, libc::SIGKILL, true);
        if rec.state.status != "restarting" && !wait_exit(s, id, gen, Some(Duration::from_secs(30)))
        {
            let _ = s.update(id, |en| en.removing = false);
            return Err(Error::Internal(format!(
                "could not kill running container {id}, cannot remove"
            )));
        }
    }
    {
        let mut reg = s.lock();
        if let Some(en) = reg.containers.get_mut(id) {
            en.rec.state.status = "removing".into();
        }
    }
    if let Err(e) = remove_files(s, id, !defer_cleanup) {
        let mut reg = s.lock();
        if let Some(en) = reg.containers.get_mut(id) {
            en.removing = false;
            en.rec.state.status = "dead".into();
            en.rec.state.error = e.to_string();
        }
        return Err(e);
    }
    {
        let mut reg = s.lock();
        if let Some(en) = reg.containers.remove(id) {
            reg.names.remove(&en.rec.name);
            reg.removed.insert(id.to_string(), en.rec.state.exit_code);
            if reg.removed.len() > 1000 {
                if let Some(k) = reg.removed.keys().next().cloned() {
                    reg.removed.remove(&k);
                }
            }
            for (_, p) in en.pending {
                p.close();
            }
        }
    }
    s.cond.notify_all();
    if let Ok(mut ex) = s.execs.lock() {
        ex.retain(|_, r| r.container != id);
    }
    s.event(&rec, "destroy", &[]);
    if defer_cleanup {
        let ss = s.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            berth_runtime::idle_priority(true);
            if let Err(e) = finish_removal(&ss, &id) {
                tracing::warn!("remove the files of {id}: {e} (retried at the next start)");
            }
        });
    }
    Ok(())
}

/// Remove everything of a container. Crash-safe: the record directory is first renamed to a
/// `.rm-<id>` tombstone (one atomic step: the container is gone), and `open` finishes
/// tombstones left by a crash.
/// With `finish` false only the atomic step is done; the caller runs `finish_removal` later.
/// With `finish` false the rootfs may still be mounted: the directory holding the mount point
/// is renamed (allowed), `finish_removal` unmounts it from the tombstone.
fn remove_files(s: &Shared, id: &str, finish: bool) -> Result<()> {
    if finish {
        s.delete_runtime(id);
        s.unmount_at(&s.rootfs(id), id)?;
    }
    let tomb = s.cfg.root.join("containers").join(format!(".rm-{id}"));
    match std::fs::rename(s.cdir(id), &tomb) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(internal(format!("remove {}", s.cdir(id).display()), e)),
    }
    if !finish {
        return Ok(());
    }
    finish_removal(s, id)
}

fn finish_removal(s: &Shared, id: &str) -> Result<()> {
    s.delete_runtime(id);
    let tomb = s.cfg.root.join("containers").join(format!(".rm-{id}"));
    s.unmount_at(&tomb.join("rootfs"), id)?;
    match s.images.remove_snapshot(id) {
        Ok(()) | Err(berth_image::Error::SnapshotNotFound(_)) => {}
        Err(e) => return Err(internal(format!("remove the rootfs of {id}"), e)),
    }
    for d in [s.xdir(id), tomb] {
        match std::fs::remove_dir_all(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(format!("remove {}", d.display()), e)),
        }
    }
    Ok(())
}

pub(crate) struct WaitInner {
    s: Arc<Shared>,
    id: String,
    cond: WaitCondition,
    gen: u64,
}

impl WaitInner {
    pub(crate) fn wait(self) -> WaitResult {
        let s = &self.s;
        let mut reg = s.lock();
        loop {
            if s.closed.load(Ordering::SeqCst) {
                return WaitResult {
                    status_code: -1,
                    error: Some("daemon shutting down".into()),
                };
            }
            match reg.containers.get(&self.id) {
                None => {
                    let code = reg.removed.get(&self.id).copied().unwrap_or(0);
                    return WaitResult {
                        status_code: code,
                        error: None,
                    };
                }
                Some(e) => {
                    let done = match self.cond {
                        WaitCondition::NotRunning => {
                            !e.rec.running() && e.rec.state.status != "restarting"
                        }
                        WaitCondition::NextExit => e.exit_gen > self.gen,
                        WaitCondition::Removed => false,
                    };
                    if done {
                        let err = if e.rec.state.error.is_empty() {
                            None
                        } else {
                            Some(e.rec.state.error.clone())
                        };
                        return WaitResult {
                            status_code: e.rec.state.exit_code,
                            error: err,
                        };
                    }
                }
            }
            reg = match s.cond.wait_timeout(reg, Duration::from_secs(1)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

pub(crate) fn wait(e: &Engine, x: &str, c: WaitCondition) -> Result<WaitHandle> {
    let s = &e.inner.0;
    let reg = s.lock();
    let id = s.resolve(&reg, x)?;
    let gen = reg.containers[&id].exit_gen;
    Ok(WaitHandle {
        inner: WaitInner {
            s: s.clone(),
            id,
            cond: c,
            gen,
        },
    })
}

pub(crate) fn prune(e: &Engine, filters: &Value) -> Result<Value> {
    let s = &e.inner.0;
    let f = Filters::parse(filters)?;
    f.validate(&["until", "label", "label!"])?;
    let until = match f.get("until").first() {
        Some(u) => Some(parse_time_arg(u)?),
        None => None,
    };
    let cands: Vec<Record> = s
        .lock()
        .containers
        .values()
        .map(|e| e.rec.clone())
        .collect();
    let mut deleted = Vec::new();
    let mut space = 0u64;
    for r in cands {
        if r.running() || r.state.status == "restarting" {
            continue;
        }
        let labels = labels_of(&r.config["Labels"]);
        if !f.match_labels("label", &labels) {
            continue;
        }
        if f.has("label!")
            && f.get("label!").iter().any(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l.as_str()),
            })
        {
            continue;
        }
        if let Some(u) = until {
            if parse_rfc3339(&r.created).unwrap_or(0.0) >= u {
                continue;
            }
        }
        space += crate::archive::size_rw(s, &r.id).unwrap_or(0);
        if remove_inner(s, &r.id, true).is_ok() {
            deleted.push(r.id.clone());
        }
    }
    s.events.publish(
        "container",
        "prune",
        "",
        BTreeMap::from([("reclaimed".to_string(), space.to_string())]),
    );
    Ok(json!({"ContainersDeleted": deleted, "SpaceReclaimed": space}))
}

fn status_string(r: &Record) -> String {
    let now = now_f64();
    let since = |t: &str| human_duration(now - parse_rfc3339(t).unwrap_or(now));
    match r.state.status.as_str() {
        "running" => format!("Up {}", since(&r.state.started_at)),
        "paused" => format!("Up {} (Paused)", since(&r.state.started_at)),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        "exited" if r.has_been_started => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        "exited" | "created" => "Created".into(),
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        o => o.to_string(),
    }
}

fn docker_state(r: &Record) -> &str {
    match r.state.status.as_str() {
        "exited" if !r.has_been_started => "created",
        o => o,
    }
}

pub(crate) fn list(e: &Engine, o: &ListOptions) -> Result<Vec<Value>> {
    let s = &e.inner.0;
    let f = Filters::parse(&o.filters)?;
    f.validate(&[
        "id",
        "name",
        "label",
        "label!",
        "status",
        "ancestor",
        "exited",
        "before",
        "since",
        "health",
        "isolation",
        "network",
        "publish",
        "expose",
        "volume",
        "is-task",
    ])?;
    for st in f.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&st.as_str())
        {
            return Err(Error::BadParameter(format!("invalid filter 'status={st}'")));
        }
    }
    let mut recs: Vec<Record> = s
        .lock()
        .containers
        .values()
        .map(|e| e.rec.clone())
        .collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let reg_snapshot = recs.clone();
    let pos_of = |x: &str| -> Result<String> {
        reg_snapshot
            .iter()
            .find(|r| {
                r.id == x
                    || r.name == format!("/{}", x.trim_start_matches('/'))
                    || r.id.starts_with(x)
            })
            .map(|r| r.created.clone())
            .ok_or_else(|| Error::NotFound(format!("No such container: {x}")))
    };
    let before = match f.get("before").first() {
        Some(b) => Some(pos_of(b)?),
        None => None,
    };
    let since = match f.get("since").first() {
        Some(b) => Some(pos_of(b)?),
        None => None,
    };
    let ancestors: Vec<String> = f
        .get("ancestor")
        .iter()
        .filter_map(|a| {
            s.images
                .resolve(a)
                .ok()
                .map(|r| r.id.to_string())
                .or_else(|| Some(format!("missing:{a}")))
        })
        .collect();
    let mut out = Vec::new();
    let all = o.all
        || o.limit.is_some()
        || f.has("status")
        || f.has("exited")
        || before.is_some()
        || since.is_some();
    for r in recs {
        let st = docker_state(&r).to_string();
        if !all && !matches!(st.as_str(), "running" | "paused" | "restarting") {
            continue;
        }
        if f.has("id") && !f.get("id").iter().any(|x| r.id.starts_with(x.as_str())) {
            continue;
        }
        let short = r.name.trim_start_matches('/');
        if f.has("name")
            && !f
                .get("name")
                .iter()
                .any(|x| short.contains(x.trim_start_matches('/')))
        {
            continue;
        }
        let labels = labels_of(&r.config["Labels"]);
        if !f.match_labels("label", &labels) {
            continue;
        }
        if f.has("status") && !f.get("status").contains(&st) {
            continue;
        }
        if f.has("exited")
            && !(st == "exited"
                && f.get("exited")
                    .iter()
                    .any(|x| x.parse::<i64>().ok() == Some(r.state.exit_code)))
        {
            continue;
        }
        if f.has("ancestor") {
            let img_name = r.config["Image"].as_str().unwrap_or("");
            if !f.get("ancestor").iter().any(|a| a == img_name) && !ancestors.contains(&r.image_id)
            {
                continue;
            }
        }
        if let Some(b) = &before {
            if r.created >= *b {
                continue;
            }
        }
        if let Some(b) = &since {
            if r.created <= *b {
                continue;
            }
        }
        out.push(summary(s, &r, o.size));
        if let Some(l) = o.limit {
            if l > 0 && out.len() >= l {
                break;
            }
        }
    }
    Ok(out)
}

fn summary(s: &Shared, r: &Record, size: bool) -> Value {
    let mut cmd = vec![r.path.clone()];
    cmd.extend(r.args.iter().cloned());
    let mut v = json!({
        "Id": r.id,
        "Names": [r.name],
        "Image": r.config["Image"],
        "ImageID": r.image_id,
        "Command": cmd.join(" "),
        "Created": parse_rfc3339(&r.created).unwrap_or(0.0) as i64,
        "Ports": [],
        "Labels": r.config["Labels"],
        "State": docker_state(r),
        "Status": status_string(r),
        "HostConfig": {"NetworkMode": r.host_config["NetworkMode"]},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts_json(r),
    });
    if size {
        v["SizeRw"] = json!(crate::archive::size_rw(s, &r.id).unwrap_or(0));
        v["SizeRootFs"] = json!(
            s.images.resolve(&r.image_id).map(|i| i.size).unwrap_or(0)
                + v["SizeRw"].as_u64().unwrap_or(0)
        );
    }
    v
}

fn mounts_json(r: &Record) -> Value {
    let mut out = Vec::new();
    for b in strs(&r.host_config["Binds"]) {
        if let Ok((src, dst, opts)) = crate::spec::parse_bind(&b) {
            let ro = opts.iter().any(|o| o == "ro");
            out.push(json!({"Type": "bind", "Source": src, "Destination": dst, "Mode": if ro { "ro" } else { "" }, "RW": !ro, "Propagation": opts.get(1).cloned().unwrap_or_default()}));
        }
    }
    if let Some(Value::Array(ms)) = r.host_config.get("Mounts") {
        for m in ms {
            let ro = m["ReadOnly"].as_bool().unwrap_or(false);
            out.push(json!({"Type": m["Type"], "Source": m["Source"].as_str().unwrap_or(""), "Destination": m["Target"], "Mode": "", "RW": !ro, "Propagation": if m["Type"] == "bind" { "rprivate" } else { "" }}));
        }
    }
    if let Some(Value::Object(t)) = r.host_config.get("Tmpfs") {
        for (d, _) in t {
            out.push(json!({"Type": "tmpfs", "Source": "", "Destination": d, "Mode": "", "RW": true, "Propagation": ""}));
        }
    }
    Value::Array(out)
}

pub(crate) fn inspect(e: &Engine, x: &str, size: bool) -> Result<Value> {
    let s = &e.inner.0;
    let (id, _) = s.find(x)?;
    let r = s.record(&id)?;
    let st = &r.state;
    let zero = "0001-01-01T00:00:00Z";
    let status = docker_state(&r);
    let mut host = r.host_config.clone();
    for (k, d) in [
        ("Binds", Value::Null),
        ("Privileged", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("AutoRemove", json!(false)),
        ("ShmSize", json!(67108864)),
        ("Memory", json!(0)),
        ("MemorySwap", json!(0)),
        ("NanoCpus", json!(0)),
        ("CpuShares", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpuPeriod", json!(0)),
        ("CpusetCpus", json!("")),
        ("PidsLimit", Value::Null),
        ("BlkioWeight", json!(0)),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        ("Init", Value::Null),
        ("PortBindings", json!({})),
        ("IpcMode", json!("private")),
        ("PidMode", json!("")),
        ("Ulimits", Value::Null),
        ("Devices", json!([])),
        ("SecurityOpt", Value::Null),
        ("Tmpfs", Value::Null),
        ("Mounts", Value::Null),
        ("OomKillDisable", json!(false)),
        ("Isolation", json!("")),
        ("Runtime", json!("berth")),
        ("MaskedPaths", Value::Null),
        ("ReadonlyPaths", Value::Null),
    ] {
        if host.get(k).is_none() {
            host[k] = d;
        }
    }
    if host["ShmSize"].as_i64() == Some(0) {
        host["ShmSize"] = json!(67108864);
    }
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
            "Status": status,
            "Running": matches!(st.status.as_str(), "running" | "paused"),
            "Paused": st.status == "paused",
            "Restarting": st.status == "restarting",
            "OOMKilled": st.oom_killed,
            "Dead": st.status == "dead",
            "Pid": if matches!(st.status.as_str(), "running" | "paused") { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": if st.started_at.is_empty() { zero } else { &st.started_at },
            "FinishedAt": if st.finished_at.is_empty() { zero } else { &st.finished_at },
        },
        "Image": r.image_id,
        "ResolvConfPath": s.etc_dir(&r.id).join("resolv.conf"),
        "HostnamePath": s.etc_dir(&r.id).join("hostname"),
        "HostsPath": s.etc_dir(&r.id).join("hosts"),
        "LogPath": r.log_path,
        "Name": r.name,
        "RestartCount": r.restart_count,
        "Driver": r.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids(s, &r.id),
        "HostConfig": host,
        "GraphDriver": {"Name": r.driver, "Data": {"MergedDir": s.rootfs(&r.id)}},
        "Mounts": mounts_json(&r),
        "Config": r.config,
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
            "EndpointID": "", "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "Networks": network_entry(&r),
        },
    });
    if size {
        let rw = crate::archive::size_rw(s, &r.id).unwrap_or(0);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(s.images.resolve(&r.image_id).map(|i| i.size).unwrap_or(0) + rw);
    }
    Ok(v)
}

fn network_entry(r: &Record) -> Value {
    let m = r.host_config["NetworkMode"].as_str().unwrap_or("none");
    let name = if m == "default" { "none" } else { m };
    if name.starts_with("container:") {
        return json!({});
    }
    json!({ name: {
        "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "NetworkID": "",
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null,
    }})
}

fn exec_ids(s: &Shared, id: &str) -> Value {
    let ids: Vec<String> = s
        .execs
        .lock()
        .map(|m| {
            m.values()
                .filter(|x| x.container == id)
                .map(|x| x.id.clone())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        Value::Null
    } else {
        json!(ids)
    }
}

pub(crate) fn running_id(s: &Shared, x: &str) -> Result<Record> {
    let (id, _) = s.find(x)?;
    let r = s.record(&id)?;
    if !matches!(r.state.status.as_str(), "running" | "paused") {
        return Err(Error::Conflict(format!("Container {id} is not running")));
    }
    Ok(r)
}

pub(crate) fn top(e: &Engine, x: &str, ps_args: Option<&str>) -> Result<Value> {
    let s = &e.inner.0;
    let r = running_id(s, x)?;
    let pids =
        s.rt.pids(&r.id)
            .map_err(|er| internal(format!("list the processes of {}", r.id), er))?;
    let args: Vec<String> = ps_args
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("-ef")
        .split_whitespace()
        .map(String::from)
        .collect();
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|er| internal("run ps", er))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "Error running ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::BadParameter("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|x| x.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

fn system_cpu_usage() -> u64 {
    // /proc/stat "cpu" line in clock ticks -> nanoseconds (Docker's formula).
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(l) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let ticks: u64 = l
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}

pub(crate) fn stats(e: &Engine, x: &str, prev: Option<&Value>, one_shot: bool) -> Result<Value> {
    let s = &e.inner.0;
    let (id, _) = s.find(x)?;
    let r = s.record(&id)?;
    let zero_time = "0001-01-01T00:00:00Z";
    if !matches!(r.state.status.as_str(), "running" | "paused") {
        // Docker returns an all-zero sample for a stopped container.
        return Ok(json!({
            "name": r.name, "id": r.id, "read": zero_time, "preread": zero_time,
            "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null},
            "num_procs": 0, "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {},
        }));
    }
    let sample = |s: &Shared| -> Result<(Value, Value, String)> {
        let st =
            s.rt.stats(&id)
                .map_err(|er| internal(format!("stats of {id}"), er))?;
        let cpu = json!({
            "cpu_usage": {
                "total_usage": st.cpu.usage.total,
                "percpu_usage": st.cpu.usage.percpu,
                "usage_in_kernelmode": st.cpu.usage.kernel,
                "usage_in_usermode": st.cpu.usage.user,
            },
            "system_cpu_usage": system_cpu_usage(),
            "online_cpus": online_cpus(),
            "throttling_data": {"periods": st.cpu.throttling.periods, "throttled_periods": st.cpu.throttling.throttled_periods, "throttled_time": st.cpu.throttling.throttled_time},
        });
        let mem_raw = &st.memory.raw;
        let mut memory = json!({
            "usage": st.memory.usage.usage,
            "max_usage": st.memory.usage.max,
            "limit": if st.memory.usage.limit == 0 || st.memory.usage.limit > (1u64 << 62) { host_mem() } else { st.memory.usage.limit },
            "failcnt": st.memory.usage.failcnt,
            "stats": mem_raw,
        });
        if st.memory.usage.usage == 0 && mem_raw.is_empty() {
            memory = json!({});
        }
        let blk = |v: &Vec<berth_cgroups::stats::BlkioEntry>| -> Value {
            if v.is_empty() {
                return Value::Null;
            }
            json!(v
                .iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect::<Vec<_>>())
        };
        let blkio = json!({
            "io_service_bytes_recursive": blk(&st.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blk(&st.blkio.io_serviced_recursive),
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null,
        });
        let rest = json!({"memory_stats": memory, "blkio_stats": blkio, "pids_stats": {"current": st.pids.current, "limit": if st.pids.limit == 0 { Value::Null } else { json!(st.pids.limit) }}});
        Ok((cpu, rest, now_rfc3339()))
    };
    let (precpu, preread) = match prev {
        Some(p) => (
            p["cpu_stats"].clone(),
            p["read"].as_str().unwrap_or(zero_time).to_string(),
        ),
        None if !one_shot => {
            let (c, _, t) = sample(s)?;
            std::thread::sleep(Duration::from_millis(100));
            (c, t)
        }
        None => (
            json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}),
            zero_time.to_string(),
        ),
    };
    let (cpu, rest, read) = sample(s)?;
    let mut v = json!({
        "name": r.name,
        "id": r.id,
        "read": read,
        "preread": preread,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": precpu,
        "networks": {},
    });
    for (k, val) in rest.as_object().into_iter().flatten() {
        v[k] = val.clone();
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("networks");
    }
    Ok(v)
}

fn host_mem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod exit_line_tests {
    use super::*;

    #[test]
    fn reads_the_record_a_monitor_sends_and_nothing_else() {
        let rec = ExitRecord {
            exit_code: 3,
            finished_at: "2026-11-25T00:00:00.1Z".into(),
            oom_killed: true,
            error: String::new(),
            pid: 42,
        };
        let mut line = format!("{WATCH_EXIT} ").into_bytes();
        line.extend_from_slice(&serde_json::to_vec(&rec).unwrap());
        line.push(b'\n');
        assert_eq!(exit_line(&line), Some(rec));
        // cut short (the monitor died mid-line), other data, nothing: not told
        assert_eq!(exit_line(&line[..line.len() - 3]), None);
        assert_eq!(exit_line(b"exit {not json}\n"), None);
        assert_eq!(exit_line(b""), None);
    }
}
