//! berth-monitor as a library. One monitor runs per container (and per exec), not a child of
//! berthd (it detaches: double fork + setsid), a child subreaper, a single-threaded poll(2)
//! loop. Here:
//! * [`proto`]: what berthd and the monitor exchange (config, control lines, attach hello,
//!   exit record), and [`TaskError`]: a failure typed across the process boundary;
//! * [`jsonlog`]: the json-file log format, its writer (the monitor) and parser (berthd);
//! * [`run`]: the monitor's work, in parts: `setup` (sockets, signalfd, stdio), `task`
//!   (create / exec / start through the runtime library, control answers), `pump` (the poll
//!   loop: `output` copying, `clients`), `exit` (exit code, record, who is told in which order).
//!
//! The binary (`bins/berth-monitor`) handles its arguments, detaches and calls [`run`].
pub mod dns;
pub mod error;
pub mod jsonlog;
pub mod proto;
pub mod task_error;

mod clients;
mod exit;
mod memory;
mod output;
mod pump;
mod setup;
mod sys;
mod task;

pub use error::{Error, Result};
pub use task::read_ctl_line;
pub use task_error::{ErrorKind, TaskError};

use proto::{monitor_lock_path, Mode, MonitorConfig};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Serve one container or exec from its config to its end. `ctl` is the control channel to
/// berthd, set to None once berthd no longer listens (after the start): an error after that
/// goes to the monitor's log only (see [`report_failure`]).
pub fn run(cfg: &MonitorConfig, ctl: &mut Option<UnixStream>) -> Result<()> {
    let rt = berth_runtime::Runtime::new(&cfg.runtime_root);
    // Container mode: held until we exit, so berthd knows when our runtime cleanup (after the
    // exit record) is over before it reuses the container's runtime id.
    let _lock = match cfg.mode {
        Mode::Container => Some(sys::hold_lock(&monitor_lock_path(&cfg.attach_socket))?),
        Mode::Exec => None,
    };
    let mut io = setup::Setup::new(cfg)?;
    // The log file exists before berthd hears "created": a logs request from then on opens
    // it (and keeps it open through an AutoRemove), whatever the container writes lands in it.
    let log = match &cfg.log_path {
        Some(p) => Some(jsonlog::LogWriter::open(
            p,
            cfg.log_max_size,
            cfg.log_max_file,
        )?),
        None => None,
    };
    let ctl_sock = ctl
        .as_ref()
        .ok_or_else(|| Error::Protocol("no control channel".into()))?;
    let mut task = task::prepare(cfg, &rt, &mut io, ctl_sock)?;
    task::start(cfg, &rt, &mut io, ctl_sock, &mut task)?;
    // The clients berthd connected before start see all output: the process may run already,
    // but nothing of its output is read before the loop below, which has them.
    let mut clients = Vec::new();
    io.listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("attach listener", e))?;
    clients::accept_clients(&io.listener, &mut clients, cfg.tty, io.out_fd.as_ref());
    // Only the cgroup is needed from here on (the spec in the state is big).
    let cgroup = task.created.take().and_then(|st| st.cgroup);
    *ctl = None;
    let mut pump = pump::Pump::new(cfg, &rt, &mut io, clients, task.main_pid);
    pump.log = log;
    pump.dns = task.dns.take();
    pump.run()?;
    let (code, deleted, clients) = (pump.exit.map(|e| e.0), pump.deleted, pump.clients);
    let oom = cfg.mode == Mode::Container
        && cgroup
            .as_ref()
            .is_some_and(|cg| cg.oom_kill_count().map(|n| n > 0).unwrap_or(false));
    if cfg.mode == Mode::Container {
        berth_runtime::mark("monitor: oom count read");
    }
    let rec = exit::record(code.unwrap_or(255), task.main_pid, oom);
    exit::report(cfg, &io.exit_dir, &clients, &rec)?;
    if cfg.mode == Mode::Container && !deleted {
        cleanup(cfg, &rt, task.mntns.take());
    }
    Ok(())
}

/// Clean-up nobody waits for, on idle CPU time (the client that waited for the exit is
/// finishing now): the container's mount namespace, the runtime container (its cgroup).
fn cleanup(cfg: &MonitorConfig, rt: &berth_runtime::Runtime, mntns: Option<std::fs::File>) {
    berth_runtime::idle_priority(true);
    std::thread::sleep(Duration::from_millis(cfg.cleanup_delay_ms));
    drop(mntns);
    if let Err(e) = rt.delete(&cfg.id, true) {
        sys::log_line(
            cfg.monitor_log.as_deref(),
            &format!("delete {}: {e}", cfg.id),
        );
    }
    berth_runtime::mark("monitor: runtime state deleted");
}

/// Tell berthd (while it listens) and the monitor's log why the monitor failed.
pub fn report_failure(cfg: &MonitorConfig, ctl: Option<&UnixStream>, e: &Error) {
    let t = e.task_error();
    if let Some(c) = ctl {
        let _ = std::io::Write::write_all(&mut &*c, t.to_line().as_bytes());
    }
    let now = berth_fsutil::rfc3339_nano_now();
    sys::log_line(cfg.monitor_log.as_deref(), &format!("{now} {e}"));
}
