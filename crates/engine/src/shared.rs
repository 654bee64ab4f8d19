//! The engine's shared state and its owners, opening and shutting down.
use crate::containers::*;
use crate::events::Bus;
use crate::monitor::*;
use crate::prepare::*;
use crate::ready::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use berth_image::ImageService;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the engine holds, by owner: each owner keeps its own locks, so a new kind of object
/// (networks, volumes) gets an owner of its own next to `containers`, not a field inside it.
pub(crate) struct Shared {
    pub cfg: EngineConfig,
    pub images: ImageService,
    /// Image operations that change tags/images are serialised.
    pub image_lock: Mutex<()>,
    pub rt: berth_runtime::Runtime,
    /// Container records, names and the lock that serialises changes to them.
    pub containers: Containers,
    /// Watch connections to the containers' monitors.
    pub watchers: Watchers,
    /// What the next containers take ready (spare monitor, directories, a mounted rootfs).
    pub ready: Ready,
    /// The network namespaces of `--network none` runs (held by fd), a few made ahead.
    pub netns: crate::netns::NetnsPool,
    /// The health checks' timers (and their thread).
    pub health: crate::health::Scheduler,
    /// The networks containers connect to (the default bridge).
    pub networks: crate::networks::Networks,
    /// Named volumes (`<root>/volumes`), with the lock that serialises their changes.
    pub volumes: crate::volumes::Volumes,
    /// Project quotas on the root's filesystem (`--storage-opt size`, volumes' `size`).
    pub quota: crate::quota::Quotas,
    pub events: Bus,
    pub execs: Mutex<HashMap<String, crate::exec::ExecRecord>>,
    pub monitor_bin: PathBuf,
    pub init_bin: Option<PathBuf>,
    pub closed: AtomicBool,
    /// Our use of the tmpfs berthd keeps on the exec root (see `EngineConfig::exec_root_tmpfs`).
    pub tmpfs: Mutex<Option<crate::util::TmpfsHold>>,
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
        if let Ok(_g) = s.ready.spare_due.lock() {
            s.ready.spare_cv.notify_all();
        }
        s.health.wake();
        crate::util::flush_durable();
        // The spare monitor and those of prepared containers see EOF: they end (the latter
        // delete their runtime container first).
        drop(s.ready.spare.lock().ok().and_then(|mut g| g.take()));
        let prepared: Vec<Task> = s
            .containers
            .lock()
            .by_id
            .values_mut()
            .filter_map(|en| en.prepared.take())
            .collect();
        drop(prepared);
        // The keeper's pass under way ends first (its fills stop at `closed`).
        drop(s.ready.keeper_busy.lock());
        s.netns.drain();
        drain_ready_rootfs(s);
        s.images.snapshots.drain_pool();
        drain_record_pool(s);
        s.watchers.shutdown();
        s.containers.cond.notify_all();
        let any_running = s.containers.lock().by_id.values().any(|e| e.rec.running());
        s.networks.shutdown(any_running);
        if let Some(hold) = s.tmpfs.lock().ok().and_then(|mut h| h.take()) {
            // Only when no container runs (their monitors keep it busy anyway): the monitors
            // of prepared containers may take a moment to finish.
            let running = s.containers.lock().by_id.values().any(|e| e.rec.running());
            if !running {
                crate::util::release_tmpfs(&s.cfg.exec_root, hold, Duration::from_secs(2));
            }
        }
    }
}

impl Shared {
    pub(crate) fn cdir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }
    pub(crate) fn xdir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }
    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.cdir(id).join("rootfs")
    }
    /// Where the container's hostname, hosts and resolv.conf are (see `etc::write`).
    pub(crate) fn etc_dir(&self, id: &str) -> PathBuf {
        self.xdir(id)
    }
    pub(crate) fn attach_sock(&self, id: &str) -> PathBuf {
        self.xdir(id).join("attach.sock")
    }
    pub(crate) fn attrs(&self, rec: &Record) -> BTreeMap<String, String> {
        let mut a = rec.config.labels();
        a.insert("name".into(), rec.name.trim_start_matches('/').to_string());
        a.insert("image".into(), rec.config.image.str().to_string());
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
            return Err(Error::internal_msg(format!(
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

pub(crate) fn find_monitor(cfg: &EngineConfig) -> Result<PathBuf> {
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

pub(crate) const INIT_BIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// Keep host users out of the store (moby CVE-2021-41091's class): image layers and container
/// upper dirs hold setuid binaries and the records hold secrets (Env), so nobody but root may
/// reach below the root. The root itself stays traversable (0711) as dockerd's; what is below
/// it is 0700. Applied to existing roots at every start as well.
fn restrict_access(cfg: &EngineConfig) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dirs = [
        (cfg.root.clone(), 0o711),
        (cfg.root.join("containers"), 0o700),
        (cfg.root.join("image"), 0o700),
        (cfg.root.join("bin"), 0o700),
        // (Containers reach a volume through its bind mount, not this path.)
        (cfg.root.join("volumes"), 0o700),
        (cfg.exec_root.join("containers"), 0o700),
        (cfg.exec_root.join("runtime"), 0o700),
    ];
    for (d, mode) in dirs {
        std::fs::create_dir_all(&d).map_err(|e| internal(format!("create {}", d.display()), e))?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))
            .map_err(|e| internal(format!("chmod {:o} {}", mode, d.display()), e))?;
    }
    Ok(())
}

pub(crate) fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
    let mut tmpfs = if cfg.exec_root_tmpfs {
        crate::util::ensure_tmpfs(&cfg.exec_root)?
    } else {
        None
    };
    let exec_root = cfg.exec_root.clone();
    let opened = open_with(cfg, &mut tmpfs);
    // An engine that failed to open leaves no tmpfs it mounted behind (a second daemon refused
    // its bridge, an unreadable store...); an opened one took the hold.
    if let (Err(_), Some(hold)) = (&opened, tmpfs) {
        crate::util::release_tmpfs(&exec_root, hold, Duration::from_secs(1));
    }
    opened
}

/// [`open`] once the exec root's tmpfs is there: `tmpfs`, berthd's hold on it, is taken into
/// the engine when it opens.
fn open_with(cfg: EngineConfig, tmpfs: &mut Option<crate::util::TmpfsHold>) -> Result<Arc<Engine>> {
    for d in [
        cfg.root.join("containers"),
        cfg.exec_root.join("containers"),
        cfg.root.join("bin"),
    ] {
        std::fs::create_dir_all(&d).map_err(|e| internal(format!("create {}", d.display()), e))?;
    }
    restrict_access(&cfg)?;
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
    let netns = crate::netns::NetnsPool::new(cfg.exec_root.join("netns"));
    let networks = crate::networks::Networks::open(&cfg)?;
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
    let containers = Containers::new(cfg.root.join("containers"));
    let volumes = crate::volumes::Volumes::open(cfg.root.join("volumes"))?;
    let quota = crate::quota::Quotas::open(&cfg.root);
    let shared = Arc::new(Shared {
        cfg,
        images,
        image_lock: Mutex::new(()),
        rt,
        containers,
        watchers: Watchers::new()?,
        ready: Ready::default(),
        netns,
        health: crate::health::Scheduler::new()?,
        networks,
        volumes,
        quota,
        events: Bus::default(),
        execs: Mutex::new(HashMap::new()),
        monitor_bin,
        init_bin,
        closed: AtomicBool::new(false),
        tmpfs: Mutex::new(tmpfs.take()),
    });
    let engine = Arc::new(Engine {
        inner: Inner(shared.clone()),
    });
    reconcile(&shared)?;
    {
        // Old-style (bind-mounted) namespaces no running container uses: an older daemon's.
        let keep: Vec<PathBuf> = shared
            .containers
            .lock()
            .by_id
            .values()
            .filter(|en| en.rec.running() && !en.rec.state.net_ns.is_empty())
            .map(|en| PathBuf::from(&en.rec.state.net_ns))
            .collect();
        shared.netns.release_unused(&keep);
        let reg = shared.containers.lock();
        shared
            .networks
            .restore(&|id| reg.by_id.get(id).is_some_and(|en| en.rec.running()));
        // Bandwidth limits stay on a running container's veth; made again in case a crash
        // left them half made.
        for en in reg
            .by_id
            .values()
            .filter(|en| en.rec.running() && !en.rec.host_config.annotations.map().is_empty())
        {
            if let Err(e) = shared.networks.reshape(&en.rec.id, &en.rec.host_config) {
                tracing::warn!("bandwidth limits of {}: {e}", en.rec.id);
            }
        }
    }
    {
        let ss = shared.clone();
        std::thread::Builder::new()
            .name("spare-keeper".into())
            .spawn(move || spare_keeper(ss))
            .map_err(|e| internal("start the spare keeper thread", e))?;
    }
    crate::health::spawn(&shared)?;
    refill_spare(&shared);
    Ok(engine)
}

/// Kill what is left in container `id`'s cgroup (`/berth/<id>`) and remove its directories:
/// what the runtime's delete does not know of. A monitor killed in the middle of its create
/// leaves an init (forked, waiting for its start) and no runtime state naming it.
pub(crate) fn sweep_cgroup(id: &str) {
    let Ok(cg) = berth_cgroups::Cgroup::new(Some(&format!("/berth/{id}")), id, false) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = cg
        .unified_dir()
        .map(Path::to_path_buf)
        .into_iter()
        .collect();
    dirs.extend(cg.v1_dirs().values().cloned());
    dirs.extend(cg.v1_hierarchies().iter().map(|(_, d)| d.clone()));
    dirs.sort();
    dirs.dedup();
    dirs.retain(|d| d.is_dir());
    if dirs.is_empty() {
        return;
    }
    tracing::debug!("container {id}: removing what is left of its cgroup");
    let _ = cg.kill_all(libc::SIGKILL);
    for _ in 0..400 {
        if cg.pids().map_or(true, |p| p.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for d in dirs {
        if let Err(e) = std::fs::remove_dir(&d) {
            tracing::warn!("remove the cgroup {}: {e}", d.display());
        }
    }
}
