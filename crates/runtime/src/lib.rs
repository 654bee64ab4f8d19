//! berth-runtime: from an OCI bundle (config.json + rootfs) to an isolated process, with
//! runc's lifecycle semantics. See docs/ARCHITECTURE.md for where each kernel concept lives.
//!
//! The runtime is single-threaded on purpose: it forks (raw clone) and the child keeps running
//! ordinary Rust code, with no re-exec of the binary (the reason crun is fast).

pub mod capabilities;
pub mod container;
pub mod error;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;
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

/// `BERTH_TIMING=1`: print milestones of a run with elapsed microseconds to stderr (to find
/// where the milliseconds go without strace's distortion).
pub fn mark(what: &str) {
    use std::sync::OnceLock;
    use std::time::Instant;
    static T0: OnceLock<Option<Instant>> = OnceLock::new();
    if let Some(t0) = T0.get_or_init(|| std::env::var_os("BERTH_TIMING").map(|_| Instant::now())) {
        eprintln!("[timing] {:>7} us  {what}", t0.elapsed().as_micros());
    }
}
