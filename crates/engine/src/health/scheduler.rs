//! The one thread that runs every container's checks: a heap of timers (one per container
//! whose checks are armed) and a poll over the checks in flight. No thread or process per
//! container: a check is an exec (its own `berth-monitor`), its output read here.
use super::check::{self, Check, Launch};
use super::state::{HealthResult, HealthStatus, Judge};
use super::HealthConfig;
use crate::model::Status;
use crate::shared::Shared;
use crate::util::internal;
use crate::Result;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest the thread sleeps without looking at the engine's `closed` flag.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The owner of the health checks' timers (see the module's doc).
pub(crate) struct Scheduler {
    timers: Mutex<Timers>,
    /// A byte written here wakes the thread (new timer, a disarm, shutdown).
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

#[derive(Default)]
struct Timers {
    /// (due, generation, container): an entry whose generation is not the container's armed
    /// one any more is stale and dropped when it comes up.
    heap: BinaryHeap<Reverse<(Instant, u64, String)>>,
    /// Container -> the generation of its checks now; absent: no checks.
    armed: HashMap<String, u64>,
    next_gen: u64,
}

impl Scheduler {
    pub(crate) fn new() -> Result<Scheduler> {
        let (wake_tx, wake_rx) =
            UnixStream::pair().map_err(|e| internal("make the health scheduler's wake-up", e))?;
        for s in [&wake_tx, &wake_rx] {
            s.set_nonblocking(true)
                .map_err(|e| internal("make the health scheduler's wake-up non-blocking", e))?;
        }
        Ok(Scheduler {
            timers: Mutex::new(Timers::default()),
            wake_tx,
            wake_rx,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Timers> {
        match self.timers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn wake(&self) {
        // A full socket already wakes the thread.
        let _ = (&self.wake_tx).write(&[1]);
    }

    /// Checks of container `id` from now on, the first `after` from now (a check of an earlier
    /// arming still in flight is ended without a result).
    pub(crate) fn arm(&self, id: &str, after: Duration) {
        {
            let mut t = self.lock();
            t.next_gen += 1;
            let gen = t.next_gen;
            t.armed.insert(id.to_string(), gen);
            t.heap
                .push(Reverse((Instant::now() + after, gen, id.to_string())));
        }
        self.wake();
    }

    /// No more checks of container `id`; one in flight is ended.
    pub(crate) fn disarm(&self, id: &str) {
        if self.lock().armed.remove(id).is_some() {
            self.wake();
        }
    }

    pub(crate) fn is_armed(&self, id: &str, gen: u64) -> bool {
        self.lock().armed.get(id) == Some(&gen)
    }

    /// The next check of an arming still in force, `after` from now.
    fn again(&self, id: &str, gen: u64, after: Duration) {
        let mut t = self.lock();
        if t.armed.get(id) == Some(&gen) {
            t.heap
                .push(Reverse((Instant::now() + after, gen, id.to_string())));
        }
    }

    /// The checks due at `now`, and when the next one is.
    fn take_due(&self, now: Instant) -> (Vec<(String, u64)>, Option<Instant>) {
        let mut t = self.lock();
        let mut due = Vec::new();
        while let Some(Reverse((at, _, _))) = t.heap.peek() {
            if *at > now {
                return (due, Some(*at));
            }
            if let Some(Reverse((_, gen, id))) = t.heap.pop() {
                if t.armed.get(&id) == Some(&gen) {
                    due.push((id, gen));
                }
            }
        }
        (due, None)
    }

    fn drain_wake(&self) {
        let mut b = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut b), Ok(n) if n > 0) {}
    }
}

/// The wait before the next check (dockerd's `getInterval`): the start interval while the
/// container is starting within its start period, else the interval.
pub(super) fn next_interval(hc: &HealthConfig, status: HealthStatus, since_start: f64) -> Duration {
    if since_start < hc.start_period().as_secs_f64() && status == HealthStatus::Starting {
        hc.start_interval()
    } else {
        hc.interval()
    }
}

pub(crate) fn spawn(s: &Arc<Shared>) -> Result<()> {
    let ss = s.clone();
    std::thread::Builder::new()
        .name("health".into())
        .spawn(move || run(ss))
        .map_err(|e| internal("start the health check thread", e))?;
    Ok(())
}

fn run(s: Arc<Shared>) {
    let mut checks: Vec<Box<Check>> = Vec::new();
    while !s.closed.load(Ordering::SeqCst) {
        let (due, next) = s.health.take_due(Instant::now());
        for (id, gen) in due {
            match check::launch(&s, &id, gen) {
                Launch::Running(c) => checks.push(c),
                Launch::Failed(r) => conclude(&s, &id, gen, r, check::now().1),
                Launch::Nothing => {}
            }
        }
        // Checks of containers that stopped or paused meanwhile end without a result.
        let (keep, gone): (Vec<_>, Vec<_>) = checks
            .into_iter()
            .partition(|c| s.health.is_armed(&c.id, c.gen));
        checks = keep;
        for c in gone {
            c.cancel(&s);
        }
        let now = Instant::now();
        for c in checks.iter_mut().filter(|c| c.deadline <= now) {
            c.expire();
        }
        let until = checks
            .iter()
            .map(|c| c.deadline)
            .chain(next)
            .min()
            .map_or(MAX_SLEEP, |t| t.saturating_duration_since(now))
            .min(MAX_SLEEP);
        let ready = wait(&s, &checks, until);
        s.health.drain_wake();
        for (c, r) in checks.iter_mut().zip(ready) {
            if r {
                c.read();
            }
        }
        let (done, rest): (Vec<_>, Vec<_>) = checks.into_iter().partition(|c| c.done());
        checks = rest;
        for c in done {
            let (id, gen, start) = (c.id.clone(), c.gen, c.start_unix);
            let r = c.finish(&s);
            conclude(&s, &id, gen, r, start);
        }
    }
    for c in checks {
        c.cancel(&s);
    }
}

/// Poll the wake-up and the checks' outputs for up to `until`: which outputs are readable.
fn wait(s: &Shared, checks: &[Box<Check>], until: Duration) -> Vec<bool> {
    let mut fds = Vec::with_capacity(checks.len() + 1);
    fds.push(PollFd::new(s.health.wake_rx.as_fd(), PollFlags::POLLIN));
    for c in checks {
        fds.push(PollFd::new(c.fd(), PollFlags::POLLIN));
    }
    // Round up: a timer a few microseconds away must not spin.
    let ms = until.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    if let Err(e) = poll(&mut fds, timeout) {
        if e != nix::errno::Errno::EINTR {
            tracing::warn!("health checks: poll: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
        return vec![false; checks.len()];
    }
    fds[1..]
        .iter()
        .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
        .collect()
}

/// Account for a result of container `id`'s checks (if they are still the armed ones):
/// `State.Health`, the record written and `health_status` emitted when the status changed,
/// the next check scheduled.
fn conclude(s: &Arc<Shared>, id: &str, gen: u64, r: HealthResult, start_unix: f64) {
    let updated = s.containers.update_unsaved(id, |en| {
        if !s.health.is_armed(id, gen) || en.rec.state.status != Status::Running {
            return None;
        }
        let hc = en.rec.config.healthcheck.get()?.clone();
        let started = crate::util::parse_rfc3339(&en.rec.state.started_at).unwrap_or(start_unix);
        let j = Judge {
            retries: hc.retries(),
            start_period: hc.start_period(),
            since_start: start_unix - started,
        };
        let h = en.rec.state.health.get_or_insert_with(Default::default);
        let changed = h.record(r, &j);
        let after = next_interval(&hc, h.status, crate::util::now_f64() - started);
        Some((changed, after))
    });
    let Ok(Some((changed, after))) = updated else {
        return;
    };
    if let Some(st) = changed {
        // Written when the status changes; the log and streak go with the next write.
        match s.containers.update(id, |en| en.rec.clone()) {
            Ok(rec) => s.event(&rec, &format!("health_status: {}", st.as_str()), &[]),
            Err(e) => tracing::warn!("save the health of {id}: {e}"),
        }
    }
    s.health.again(id, gen, after);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_due_in_order_and_a_disarm_or_rearm_drops_the_old_ones() {
        let s = Scheduler::new().unwrap();
        s.arm("b", Duration::from_millis(20));
        s.arm("a", Duration::ZERO);
        s.arm("c", Duration::ZERO);
        s.disarm("c");
        let (due, next) = s.take_due(Instant::now());
        assert_eq!(due.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(next.is_some());
        // Re-armed: the first arming's timer is stale, its generation no longer armed.
        let gen_b = s.lock().armed["b"];
        s.arm("b", Duration::from_secs(60));
        let (due, _) = s.take_due(Instant::now() + Duration::from_millis(30));
        assert!(due.is_empty(), "{due:?}");
        assert!(!s.is_armed("b", gen_b));
        // A result of an arming in force schedules the next check; of an old one, nothing.
        let a_gen = s.lock().armed["a"];
        let b_gen = s.lock().armed["b"];
        s.again("a", a_gen, Duration::ZERO);
        s.again("b", gen_b, Duration::ZERO);
        let (due, _) = s.take_due(Instant::now());
        assert_eq!(due, [("a".to_string(), a_gen)]);
        assert!(s.is_armed("b", b_gen));
    }

    #[test]
    fn the_start_interval_applies_while_starting_in_the_start_period() {
        let hc: HealthConfig = crate::model::decode(
            "",
            &serde_json::json!({"Interval": 10_000_000_000i64, "StartPeriod": 60_000_000_000i64,
                "StartInterval": 1_000_000_000}),
        )
        .unwrap();
        let s = |st, t| next_interval(&hc, st, t).as_secs();
        assert_eq!(s(HealthStatus::Starting, 5.0), 1);
        assert_eq!(s(HealthStatus::Healthy, 5.0), 10);
        assert_eq!(s(HealthStatus::Starting, 61.0), 10);
    }
}
