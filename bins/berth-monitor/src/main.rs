//! berth-monitor: one per running container (and per exec), started by berthd. This binary
//! takes its arguments and control channel, detaches, and runs the monitor of
//! `berth_monitor_core` (where the protocol and the work are).
use berth_monitor_core::proto::MonitorConfig;
use berth_monitor_core::{read_ctl_line, report_failure, ErrorKind, TaskError};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

fn main() {
    berth_runtime::mark("monitor: main");
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: berth-monitor <config.json> | --spare  (started by berthd)");
        std::process::exit(2);
    }
    let ctl = take_control_socket();
    // A spare detaches at once and waits for the path of its config on the control socket
    // (berthd gone = EOF = exit).
    let spare = args[1] == "--spare";
    let cfg_path = if spare {
        spare_config_path(&ctl)
    } else {
        args[1].clone()
    };
    let cfg: MonitorConfig = match std::fs::read(&cfg_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("monitor config {cfg_path}: {e}");
            fail(&ctl, &TaskError::new(ErrorKind::Other, None, msg));
        }
    };
    if !spare {
        detach(&ctl);
    }
    berth_runtime::mark("monitor: detached");
    let mut ctl = Some(ctl);
    if let Err(e) = berth_monitor_core::run(&cfg, &mut ctl) {
        report_failure(&cfg, ctl.as_ref(), &e);
        std::process::exit(1);
    }
}

/// The control socket comes as stdin: move it off fd 0 (to a close-on-exec fd) and put
/// /dev/null in its place.
fn take_control_socket() -> UnixStream {
    // SAFETY: fcntl/open/dup2 on fd numbers; the new fd is owned by the UnixStream below.
    unsafe {
        let fd = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            eprintln!("berth-monitor: no control socket on stdin");
            std::process::exit(2);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        UnixStream::from_raw_fd(fd)
    }
}

/// A spare: detach, rehearse, then wait for the path of the config (exit if berthd goes).
fn spare_config_path(ctl: &UnixStream) -> String {
    // A spare starts up on idle CPU time only, and works at normal priority once it has a
    // container (before anything is forked from it).
    berth_runtime::idle_priority(true);
    detach(ctl);
    berth_runtime::mark("monitor: spare detached");
    warm_up();
    // Back to normal before we sleep: woken at idle priority, the spare would wait for the
    // CPU behind every runnable task (the client of the `docker run` it serves).
    berth_runtime::idle_priority(false);
    match read_ctl_line(ctl) {
        Ok(p) if !p.is_empty() => {
            berth_runtime::mark("monitor: spare got its config");
            p
        }
        _ => std::process::exit(0),
    }
}

/// A spare's idle-time rehearsal of its first steps with a container: parsing a spec like
/// berthd's (`config.json` of a `docker run`) and the cgroup mounts maps that code and grows
/// the heap before a container waits on it (the first parse in a fresh process took ~0.15 ms
/// more than a warm one).
fn warm_up() {
    const SPEC: &[u8] = include_bytes!("warmup-config.json");
    let _ = berth_runtime::spec::parse(SPEC);
    let _ = berth_cgroups::detect();
}

/// Tell berthd why we give up, and exit.
fn fail(ctl: &UnixStream, e: &TaskError) -> ! {
    let _ = (&*ctl).write_all(e.to_line().as_bytes());
    std::process::exit(1);
}

/// Leave berthd: the parent exits at once (berthd reaps it), the child carries on in its own
/// session, reparented to init (or the nearest subreaper), as a subreaper itself.
fn detach(ctl: &UnixStream) {
    // SAFETY: single-threaded at this point; the child only continues ordinary code.
    match unsafe { libc::fork() } {
        -1 => {
            let e = std::io::Error::last_os_error();
            let errno = e.raw_os_error();
            let t = TaskError::new(ErrorKind::of_errno(errno), errno, format!("fork: {e}"));
            fail(ctl, &t);
        }
        0 => {}
        _ => {
            // SAFETY: plain process exit of the intermediate parent.
            unsafe { libc::_exit(0) }
        }
    }
    // SAFETY: setsid and prctl take no pointers.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}
