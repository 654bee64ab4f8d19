//! berthd: the berth daemon — the Docker Engine API on a unix socket over berth-engine.

use anyhow::{bail, Context, Result};
use berth_api::{Host, ServerConfig};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: Docker Engine API on a unix socket"
)]
struct Args {
    /// Address to listen on: unix:///path or tcp://127.0.0.1:PORT (repeatable).
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    hosts: Vec<String>,
    /// Persistent state (images, containers, logs).
    #[arg(long, default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Runtime state (monitor sockets, bundles); a tmpfs is mounted there unless it is on
    /// one already.
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Group (name or number) owning the unix sockets; they are mode 0660.
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Log level: debug, info, warn, error (fatal is an alias of error).
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// Debug logging (same as --log-level debug).
    #[arg(short = 'D', long)]
    debug: bool,
    /// Write the daemon's pid to this file (removed at exit).
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Registry reached over plain HTTP, host:port (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// The default bridge network's device (made if missing, with a subnet from Docker's
    /// default pools that overlaps no host route); `none`: no bridge network, containers get
    /// loopback only unless they ask for host or container:<id>.
    #[arg(short = 'b', long, default_value = "berth0", value_name = "NAME")]
    bridge: String,
    /// Containers see the host's /proc/meminfo, cpuinfo, stat, uptime, loadavg... instead of
    /// their own (no per-container berth-procview provider). Per container: the annotation
    /// `run.berth.truthful-proc=false` (`docker run --annotation ...`).
    #[arg(long = "no-truthful-proc")]
    no_truthful_proc: bool,
}

fn level(args: &Args) -> Result<tracing::Level> {
    if args.debug {
        return Ok(tracing::Level::DEBUG);
    }
    Ok(match args.log_level.to_ascii_lowercase().as_str() {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        "error" | "fatal" | "panic" => tracing::Level::ERROR,
        other => bail!("invalid --log-level {other:?}: expected debug, info, warn or error"),
    })
}

/// Refuses when the pid file names a live berthd.
fn refuse_if_running(path: &Path) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if let Ok(pid) = old.trim().parse::<i32>() {
            // SAFETY: kill with signal 0 only checks for the process' existence.
            if pid > 0 && pid != std::process::id() as i32 && unsafe { libc::kill(pid, 0) } == 0 {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "berthd" {
                    bail!("pid file {} names a running berthd (pid {pid}); is another daemon running?", path.display());
                }
            }
        }
    }
    Ok(())
}

/// Writes the pid file (write-then-rename), refusing when it names a live berthd.
fn write_pidfile(path: &Path) -> Result<()> {
    refuse_if_running(path)?;
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create directory {}", dir.display()))?;
        }
    }
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Holds `lock` (made if missing) for the life of the process: a second berthd on the same
/// root or exec root would remove the first one's ready network namespaces, mounts and
/// runtime state at its start-up. Refused with the holder's pid, which the lock file carries.
fn lock_exclusive(lock: &Path, what: &str) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create directory {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(lock)
        .with_context(|| format!("open {}", lock.display()))?;
    // A berthd that died (SIGKILL) in the middle of starting a process leaves its lock with
    // that child until the child's exec closes it: a moment. Only a live holder refuses us.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    // SAFETY: flock on an fd we own; the lock lives as long as the file stays open.
    while unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err).with_context(|| format!("lock {}", lock.display()));
        }
        let mut holder = String::new();
        f.rewind()
            .with_context(|| format!("rewind {}", lock.display()))?;
        let _ = f.read_to_string(&mut holder);
        let holder = holder.trim();
        let gone = holder
            .parse::<i32>()
            .is_ok_and(|pid| pid > 0 && !Path::new(&format!("/proc/{pid}")).exists());
        if !gone || std::time::Instant::now() > deadline {
            bail!(
                "{what} is in use by another berthd (pid {holder}, lock {}): one daemon per root and exec root",
                lock.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f.set_len(0)
        .with_context(|| format!("truncate {}", lock.display()))?;
    f.rewind()
        .with_context(|| format!("rewind {}", lock.display()))?;
    writeln!(f, "{}", std::process::id()).with_context(|| format!("write {}", lock.display()))?;
    Ok(f)
}

/// The exec root's lock sits beside it, not in it: the engine mounts a tmpfs on the exec
/// root, which would hide a lock file inside from the next daemon.
fn exec_root_lock(exec_root: &Path) -> PathBuf {
    let mut name = exec_root.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    // Streams run on their own threads; glibc would give each busy thread its own malloc
    // arena (64 MB reservations, RSS that never returns). Two arenas are plenty here.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let args = Args::parse();
    let lvl = level(&args)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_max_level(lvl)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();

    let mut hosts = Vec::new();
    for h in if args.hosts.is_empty() {
        vec!["unix:///run/berth/berth.sock".to_string()]
    } else {
        args.hosts.clone()
    } {
        hosts.push(h.parse::<Host>().with_context(|| format!("-H {h}"))?);
    }
    let gid = match &args.group {
        Some(g) => Some(
            berth_api::resolve_group(g)
                .map_err(anyhow::Error::msg)
                .context("--group")?,
        ),
        None => None,
    };
    let cfg = ServerConfig {
        hosts,
        gid,
        insecure_registries: args.insecure_registries.clone(),
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(256)
        .thread_keep_alive(Duration::from_secs(10))
        .build()
        .context("start the async runtime")?;

    // Checked before the engine touches any state; written once it is open: the default pid
    // file (/run/berth/berthd.pid) is in the exec root, where the engine may mount a tmpfs.
    if let Some(p) = &args.pidfile {
        refuse_if_running(p)?;
    }
    let _root_lock = lock_exclusive(
        &args.root.join("berthd.lock"),
        &format!("root {}", args.root.display()),
    )?;
    let _exec_lock = lock_exclusive(
        &exec_root_lock(&args.exec_root),
        &format!("exec root {}", args.exec_root.display()),
    )?;
    let result = rt.block_on(async {
        let ecfg = berth_engine::EngineConfig {
            root: args.root.clone(),
            exec_root: args.exec_root.clone(),
            insecure_registries: args.insecure_registries.clone(),
            exec_root_tmpfs: true,
            bridge: Some(args.bridge.clone()),
            truthful_proc: !args.no_truthful_proc,
            ..Default::default()
        };
        let engine = tokio::task::spawn_blocking(move || berth_engine::Engine::open(ecfg))
            .await
            .context("engine start-up")?
            .with_context(|| format!("open the engine (root {})", args.root.display()))?;
        if let Some(p) = &args.pidfile {
            write_pidfile(p)?;
        }
        let bound = berth_api::bind(&cfg)?;
        for h in &cfg.hosts {
            tracing::info!("API listening on {h}");
        }
        tracing::info!(
            "berthd {} ready (API {}..{})",
            env!("CARGO_PKG_VERSION"),
            berth_api::MIN_VERSION,
            berth_api::MAX_VERSION
        );
        berth_api::serve(engine.clone(), bound, shutdown_signal()).await;
        tracing::info!("shutting down; containers keep running");
        anyhow::Ok(engine)
    });
    // Do not wait for blocking threads parked in long streams (logs -f, wait): the
    // containers' monitors own the containers, nothing here needs to finish.
    rt.shutdown_timeout(Duration::from_millis(200));
    // After the runtime: its listeners and connections are closed now (a socket in the exec
    // root keeps the tmpfs there busy, see EngineConfig::exec_root_tmpfs).
    if let Ok(engine) = &result {
        engine.shutdown();
    }
    if let Some(p) = &args.pidfile {
        let _ = std::fs::remove_file(p);
    }
    result.map(drop)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => tracing::info!("SIGTERM received"),
                _ = i.recv() => tracing::info!("SIGINT received"),
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("cannot install signal handlers: {e}; stop with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test
    use super::*;
    use std::os::fd::AsRawFd;

    /// Holds `path`'s flock through a file description of its own, after writing `pid` as
    /// the holder.
    fn hold(path: &Path, pid: u32) -> std::fs::File {
        std::fs::write(path, format!("{pid}\n")).unwrap();
        let f = std::fs::File::open(path).unwrap();
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0);
        f
    }

    /// The lock of a berthd that was killed while a child it was starting still held it (in
    /// the moment before the child's exec): the next berthd waits for it instead of failing.
    #[test]
    fn lock_left_with_a_dead_daemons_child_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berthd.lock");
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        let held = hold(&path, dead.id());
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        lock_exclusive(&path, "root").unwrap();
        t.join().unwrap();
    }

    /// A live holder refuses the second daemon at once, naming it.
    #[test]
    fn lock_of_a_live_daemon_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berthd.lock");
        let _held = hold(&path, std::process::id());
        let t = std::time::Instant::now();
        let e = lock_exclusive(&path, "root").unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
