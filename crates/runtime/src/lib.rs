//! berth-runtime: from an OCI bundle (config.json + rootfs) to an isolated process, with
//! runc's lifecycle semantics. See docs/ARCHITECTURE.md for where each kernel concept lives.
//!
//! The runtime is single-threaded on purpose: it forks (raw clone) and the child keeps running
//! ordinary Rust code, with no re-exec of the binary (the reason crun is fast).

pub mod capabilities;
pub mod container;
pub mod error;
pub mod execfifo;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;
pub mod truthful_proc;
pub mod tty;

pub use container::{CreateOpts, ExecOpts, Runtime};
pub use error::{Error, Result};
pub use state::{State, Status};

/// The runtime-spec version we implement and report.
pub const OCI_VERSION: &str = "1.2.0";

static WARN_SINK: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Route warnings (e.g. to the `--log` file). Defaults to stderr.
pub fn set_warn_sink(f: fn(&str)) {
    let _ = WARN_SINK.set(f);
}

pub fn warn(msg: &str) {
    match WARN_SINK.get() {
        Some(f) => f(msg),
        None => eprintln!("berth-runtime: warning: {msg}"),
    }
}

/// Run the calling thread at SCHED_IDLE (`idle` true: only on CPU time nothing else wants) or
/// back at SCHED_OTHER. For clean-up and get-ready work that must not slow down what a client
/// is waiting for on a small machine. Best effort.
pub fn idle_priority(idle: bool) {
    let p = libc::sched_param { sched_priority: 0 };
    let policy = if idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid sched_param.
    unsafe {
        libc::sched_setscheduler(0, policy, &p);
    }
}

/// `BERTH_TIMING=1`: print milestones of a run with elapsed microseconds to stderr (to find
/// where the milliseconds go without strace's distortion). `BERTH_TIMING=/some/file`: append
/// `<CLOCK_MONOTONIC us> <pid> <milestone>` lines to that file instead, so the milestones of
/// berthd, its monitors and the runtime can be merged into one timeline.
pub fn mark(what: &str) {
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;
    enum Sink {
        Off,
        Stderr(Instant),
        File(Mutex<std::fs::File>),
    }
    static SINK: OnceLock<Sink> = OnceLock::new();
    let sink = SINK.get_or_init(|| match std::env::var_os("BERTH_TIMING") {
        None => Sink::Off,
        Some(v) if v.to_string_lossy().starts_with('/') => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&v)
            .map(|f| Sink::File(Mutex::new(f)))
            .unwrap_or(Sink::Off),
        Some(_) => Sink::Stderr(Instant::now()),
    });
    match sink {
        Sink::Off => {}
        Sink::Stderr(t0) => eprintln!("[timing] {:>7} us  {what}", t0.elapsed().as_micros()),
        Sink::File(f) => {
            let us = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                .map(|t| t.tv_sec() * 1_000_000 + t.tv_nsec() / 1000)
                .unwrap_or(0);
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{us} {} {what}", std::process::id());
            }
        }
    }
}
