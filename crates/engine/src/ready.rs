//! What the next containers take ready: the spare monitor, network namespaces, snapshot and
//! container directories, a rootfs mounted ahead; the keeper thread that tops them up.
use crate::monitor::*;
use crate::shared::*;
use crate::util::*;
use crate::*;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the next containers take ready, and the keeper thread's schedule.
#[derive(Default)]
pub(crate) struct Ready {
    /// A berth-monitor started ahead of time (`--spare`): already exec'd and detached, waiting
    /// on this control socket for the path of its config. Starting a container through it
    /// skips the fork+exec of the monitor on the start path. Dropping the socket ends it.
    pub spare: Mutex<Option<UnixStream>>,
    /// When the keeper should run next (None: not asked).
    pub spare_due: Mutex<Option<Instant>>,
    pub spare_cv: Condvar,
    /// Held by the keeper while it works: shutdown waits for the pass under way (a namespace
    /// it is making would otherwise outlive the daemon).
    pub keeper_busy: Mutex<()>,
    /// Ready container directories (`containers/.tmp-pool-*`, with `rootfs/` and the record's
    /// temporary file): a create renames one into place instead of making three inodes.
    pub record_pool: Mutex<Vec<PathBuf>>,
    /// An empty rootfs of the last created image's base, mounted ahead of the next create
    /// (see `fill_ready_rootfs`): that create finds its rootfs mounted.
    pub rootfs: Mutex<Option<ReadyRootfs>>,
    /// The snapshot base of the last create (what the next ready rootfs is mounted for).
    pub last_base: Mutex<Option<berth_image::snapshot::SnapshotBase>>,
    /// When the keeper gives freed heap memory back (see [`trim_heap_later`]), and whether
    /// that is the second pass.
    pub trim_at: Mutex<Option<(Instant, bool)>>,
}

/// How long after the last exit or removal the heap is trimmed: once a burst (`rm -f` of a
/// thousand containers) is over, not during it.
const TRIM_QUIET: Duration = Duration::from_secs(2);
/// When the second pass follows the first (past the API blocking pool's 10 s keep-alive).
const TRIM_AGAIN: Duration = Duration::from_secs(11);

/// Have the keeper give the memory freed by exits and removals back to the kernel once they
/// have been quiet for [`TRIM_QUIET`]. glibc keeps free pages between live chunks resident
/// (measured: 1 MB in use, 10 MB resident after a churn of 300); `malloc_trim` returns them.
/// The API trims when its connections end, but exits and removal clean-ups run after that.
/// A second pass follows [`TRIM_AGAIN`] later: the API's idle blocking threads end 10 s after
/// a burst, and a thread's end gives its cached chunks back to the heap.
pub(crate) fn trim_heap_later(s: &Shared) {
    if let Ok(mut t) = s.ready.trim_at.lock() {
        *t = Some((Instant::now() + TRIM_QUIET, false));
    }
    refill_spare_after(s, TRIM_QUIET);
}

/// Trim the heap if it is due (keeper thread); re-arm the keeper if it is not due yet.
fn trim_heap_if_due(s: &Shared) {
    let due = {
        let Ok(mut t) = s.ready.trim_at.lock() else {
            return;
        };
        let now = Instant::now();
        match *t {
            Some((at, second)) if at <= now => {
                *t = (!second).then_some((now + TRIM_AGAIN, true));
                if !second {
                    refill_spare_after(s, TRIM_AGAIN);
                }
                true
            }
            Some((at, _)) => {
                refill_spare_after(s, at - now);
                false
            }
            None => false,
        }
    };
    if due {
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// A ready container directory (`containers/.tmp-pool-*`) whose `rootfs/` has a ready
/// snapshot mounted.
pub(crate) struct ReadyRootfs {
    dir: PathBuf,
    mount: berth_image::snapshot::ReadyMount,
}

/// Ready empty container snapshots and directories kept: a create takes one of each instead
/// of making its directories.
pub(crate) const SNAPSHOT_POOL: usize = 2;

/// Top up what the next containers take ready: network namespaces, snapshot and container
/// directories, the rootfs mounted ahead.
pub(crate) fn fill_ready(s: &Shared) {
    s.netns.fill();
    fill_dir_pools(s);
    fill_ready_rootfs(s);
}

pub(crate) fn fill_dir_pools(s: &Shared) {
    if s.closed.load(Ordering::SeqCst) {
        return;
    }
    if let Err(e) = s.images.snapshots.fill_pool(SNAPSHOT_POOL) {
        tracing::warn!("make ready container snapshots: {e}");
    }
    while s
        .ready
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
                let tmp = berth_fsutil::nosync_tmp_path(&d.join("config.v2.json"))
                    .map_err(std::io::Error::other)?;
                std::fs::File::create(tmp).map(drop)
            });
        match (made, s.ready.record_pool.lock()) {
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
pub(crate) fn fill_ready_rootfs(s: &Shared) {
    if s.closed.load(Ordering::SeqCst)
        || s.images.snapshots.kind() != berth_image::snapshot::SnapshotterKind::Overlay
    {
        return;
    }
    let Some(base) = s.ready.last_base.lock().ok().and_then(|b| b.clone()) else {
        return;
    };
    // Image removals (which take the layers away) wait for us; while one (or a pull) holds
    // the lock, this is left for the next pass.
    let Ok(_g) = s.image_lock.try_lock() else {
        return;
    };
    let stale = match s.ready.rootfs.lock() {
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
    let dir = match s.ready.record_pool.lock().ok().and_then(|mut p| p.pop()) {
        Some(d) => d,
        None => return, // made by the pool fill before us; next time
    };
    match s.images.snapshots.mount_ready(&base, &dir.join("rootfs")) {
        Ok(mount) => {
            let r = ReadyRootfs { dir, mount };
            match s.ready.rootfs.lock() {
                Ok(mut g) if g.is_none() && !s.closed.load(Ordering::SeqCst) => *g = Some(r),
                _ => discard_ready_rootfs(s, r),
            }
        }
        Err(e) => {
            tracing::warn!("mount a rootfs ahead: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            if let Ok(mut b) = s.ready.last_base.lock() {
                *b = None;
            }
        }
    }
}

pub(crate) fn discard_ready_rootfs(s: &Shared, r: ReadyRootfs) {
    s.images
        .snapshots
        .discard_ready(r.mount, &r.dir.join("rootfs"));
    if !berth_image::sys::is_mount_root(&r.dir.join("rootfs")) {
        let _ = std::fs::remove_dir_all(&r.dir);
    }
}

/// Let go of the ready rootfs (at shutdown, before image removals).
pub(crate) fn drain_ready_rootfs(s: &Shared) {
    let r = s.ready.rootfs.lock().ok().and_then(|mut r| r.take());
    if let Some(r) = r {
        discard_ready_rootfs(s, r);
    }
}

/// Container `d`'s directory from the ready rootfs (returned, to be used or let go of by the
/// snapshot's prepare), else as [`make_record_dir`] makes it.
pub(crate) fn take_ready_rootfs(
    s: &Shared,
    d: &Path,
) -> Result<Option<berth_image::snapshot::ReadyMount>> {
    let r = s.ready.rootfs.lock().ok().and_then(|mut r| r.take());
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
pub(crate) const RECORD_POOL_PREFIX: &str = ".tmp-pool-";

/// Container `d`'s directory: a ready one renamed into place, else made.
pub(crate) fn make_record_dir(s: &Shared, d: &Path) -> Result<()> {
    let ready = s.ready.record_pool.lock().ok().and_then(|mut p| p.pop());
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
pub(crate) fn drain_record_pool(s: &Shared) {
    let ready: Vec<PathBuf> = s
        .ready
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
    if let Ok(mut due) = s.ready.spare_due.lock() {
        if due.is_none_or(|d| at < d) {
            *due = Some(at);
            s.ready.spare_cv.notify_one();
        }
    }
}

/// The keeper: when due, releases finished runs' network namespaces, starts a spare monitor
/// if there is none, tops up the ready network namespaces.
pub(crate) fn spare_keeper(s: Arc<Shared>) {
    // Getting ready for the next container never competes with the current one.
    berth_runtime::idle_priority(true);
    loop {
        {
            let Ok(mut due) = s.ready.spare_due.lock() else {
                return;
            };
            loop {
                if s.closed.load(Ordering::SeqCst) {
                    return;
                }
                match *due {
                    None => {
                        due = match s.ready.spare_cv.wait(due) {
                            Ok(g) => g,
                            Err(_) => return,
                        }
                    }
                    Some(t) if Instant::now() < t => {
                        due = match s.ready.spare_cv.wait_timeout(due, t - Instant::now()) {
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
        let Ok(_busy) = s.ready.keeper_busy.lock() else {
            return;
        };
        if s.closed.load(Ordering::SeqCst) {
            return;
        }
        s.netns.release_queued();
        trim_heap_if_due(&s);
        if s.ready.spare.lock().map(|g| g.is_some()).unwrap_or(true) {
            fill_ready(&s);
            continue;
        }
        let r = launch_monitor(&s, None);
        fill_ready(&s);
        match r {
            Ok(c) => {
                if let Ok(mut g) = s.ready.spare.lock() {
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
