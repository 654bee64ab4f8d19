//! The process, through the runtime library: a container's create (berthd then releases it
//! and says "go"), or an exec (on berthd's "start"), and the answers on the control channel.
use crate::error::{Error, IoContext, Result};
use crate::proto::*;
use crate::setup::Setup;
use berth_runtime::Runtime;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// The process the monitor watches.
pub(crate) struct Task {
    /// 0 until an exec's process exists.
    pub main_pid: i32,
    /// The state `create` returned (the exit path takes its cgroup from it).
    pub created: Option<berth_runtime::State>,
    /// The container's mount namespace, held until after the exit record (see [`create`]).
    pub mntns: Option<File>,
    /// Its embedded DNS resolver (see [`crate::dns`]).
    pub dns: Option<crate::dns::Resolver>,
}

/// One line of the control channel, without its newline.
pub fn read_ctl_line(ctl: &UnixStream) -> Result<String> {
    let mut r = BufReader::new(ctl);
    let mut s = String::new();
    r.read_line(&mut s).ctx("read control channel")?;
    Ok(s.trim().to_string())
}

fn send(ctl: &UnixStream, line: String) -> Result<()> {
    (&*ctl)
        .write_all(line.as_bytes())
        .ctx("write control channel")
}

/// Container mode: create the container (answer `created <pid>`); exec mode: answer `ready`.
pub(crate) fn prepare(
    cfg: &MonitorConfig,
    rt: &Runtime,
    io: &mut Setup,
    ctl: &UnixStream,
) -> Result<Task> {
    match cfg.mode {
        Mode::Container => {
            let t = create(cfg, rt, io)?;
            send(ctl, format!("{CTL_CREATED} {}\n", t.main_pid))?;
            berth_runtime::mark("monitor: sent created");
            Ok(t)
        }
        Mode::Exec => {
            send(ctl, format!("{CTL_READY}\n"))?;
            Ok(Task {
                main_pid: 0,
                created: None,
                mntns: None,
                dns: None,
            })
        }
    }
}

fn create(cfg: &MonitorConfig, rt: &Runtime, io: &mut Setup) -> Result<Task> {
    let opts = berth_runtime::CreateOpts {
        id: cfg.id.clone(),
        bundle: cfg.bundle.clone(),
        console_socket: io.console_path(),
        ..Default::default()
    };
    berth_runtime::mark("monitor: runtime create");
    let r = rt.create(&opts);
    io.restore_stdio();
    let st = r?;
    let main_pid = st.pid;
    // Hold the container's mount namespace: when its last process exits, the kernel then has
    // no mount table to take down (an unmount of every mount and an RCU grace period) before
    // it tells us of the exit. We drop it after the exit record, at idle priority.
    let mntns = File::open(format!("/proc/{main_pid}/ns/mnt")).ok();
    io.receive_pty()?;
    // The resolver listens before the process runs (berthd releases it after "created").
    let dns = match &cfg.dns {
        Some(d) => {
            let p = format!("/proc/{main_pid}/ns/net");
            let ns = File::open(&p).with_ctx(|| format!("open {p}"))?;
            Some(crate::dns::Resolver::open(d, &ns)?)
        }
        None => None,
    };
    Ok(Task {
        main_pid,
        created: Some(st),
        mntns,
        dns,
    })
}

/// Wait for berthd's word. Container mode: "go" (berthd released the init itself through the
/// runtime's exec fifo: the start is berthd's step; no answer). Exec mode: "start" (we run the
/// process and answer `started <pid>`). Anything else takes the container down.
pub(crate) fn start(
    cfg: &MonitorConfig,
    rt: &Runtime,
    io: &mut Setup,
    ctl: &UnixStream,
    task: &mut Task,
) -> Result<()> {
    let cmd = read_ctl_line(ctl)?;
    match cfg.mode {
        Mode::Container if cmd == CTL_GO => {}
        Mode::Exec if cmd == CTL_START => task.main_pid = exec(cfg, rt, io)?,
        _ => {
            if cfg.mode == Mode::Container {
                let _ = rt.delete(&cfg.id, true);
            }
            return Err(Error::Protocol(format!(
                "berthd did not ask to start (got {cmd:?})"
            )));
        }
    }
    io.close_console();
    if cfg.tty {
        if let (Some(m), Some((r, c))) = (&io.out_fd, cfg.initial_size) {
            crate::sys::set_winsize(std::os::fd::AsRawFd::as_raw_fd(m), r, c);
        }
    }
    if cfg.mode == Mode::Exec {
        send(ctl, format!("{CTL_STARTED} {}\n", task.main_pid))?;
        berth_runtime::mark("monitor: sent started");
    }
    Ok(())
}

/// Exec mode: run the process in the container; its pid.
fn exec(cfg: &MonitorConfig, rt: &Runtime, io: &mut Setup) -> Result<i32> {
    let pv = cfg
        .process
        .clone()
        .ok_or_else(|| Error::Protocol("exec without a process".into()))?;
    let process: oci_spec::runtime::Process =
        serde_json::from_value(pv).map_err(|e| Error::Protocol(format!("exec process: {e}")))?;
    let pid_file = cfg.attach_socket.with_extension("pid");
    let opts = berth_runtime::ExecOpts {
        console_socket: io.console_path(),
        detach: true,
        pid_file: Some(pid_file.clone()),
        preserve_fds: 0,
    };
    let r = rt.exec(&cfg.id, &process, &opts);
    io.restore_stdio();
    r?;
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Protocol(format!("exec: no pid in {}", pid_file.display())))?;
    let _ = std::fs::remove_file(&pid_file);
    io.receive_pty()?;
    Ok(pid)
}
