//! The runtime side of a container up to "created" (rootfs, /etc files, OCI spec, monitor),
//! made right after create so that start only says "go".
use crate::containers::*;
use crate::model::Status;
use crate::monitor::*;
use crate::proto::*;
use crate::shared::*;
use crate::state::Record;
use crate::util::*;
use crate::*;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub(crate) fn parse_size(s: &str) -> Option<u64> {
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

/// A container whose runtime side is made and waits for "start": its monitor answered
/// "created" on `ctl`; `pid` is its init.
pub(crate) struct Task {
    pub ctl: UnixStream,
    pub pid: i32,
    /// Its network namespace (`--network none`, bridge), held until the container runs (the
    /// runtime was given its `/proc/<berthd>/fd/<n>` path; the init joined it at create).
    pub netns: Option<crate::netns::Netns>,
    /// Its endpoint on the default bridge; dropping the task disconnects it.
    pub endpoint: Option<crate::networks::Attached>,
}

impl Task {
    /// Whether its monitor is still there: a monitor that died (killed, OOM) closed its end
    /// of the control channel, which then reads EOF. Nothing is consumed.
    pub(crate) fn monitor_alive(&self) -> bool {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let mut b = [0u8; 1];
        match recv(
            self.ctl.as_raw_fd(),
            &mut b,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e == nix::errno::Errno::EAGAIN,
        }
    }
}

/// How long a container prepared at create time (see [`prepare_later`]) waits for its start
/// before it is taken down again.
pub(crate) const PREPARED_TTL: Duration = Duration::from_secs(10);

/// Make the runtime side of a container up to "created": rootfs mounted, /etc files, OCI
/// spec, monitor, runtime create. Changes no record state; on error the caller cleans up.
pub(crate) fn create_task(s: &Arc<Shared>, id: &str, rec: &Record) -> Result<Task> {
    let xdir = s.xdir(id);
    let cdir = s.cdir(id);
    let bundle = xdir.join("bundle");
    std::fs::create_dir_all(&bundle)
        .map_err(|e| internal(format!("create {}", bundle.display()), e))?;
    // Leftovers of a previous run (once its monitor is done with them).
    s.delete_runtime(id);
    let _ = std::fs::remove_file(cdir.join("exit.json"));
    let rootfs = s.ensure_mounted(id)?;
    crate::volumes::mount_for(s, rec.mounts())?;
    crate::mark("engine: rootfs mounted");
    // (Released again, by their drops, if anything below fails.)
    let (join_net, netns, endpoint) = network_of(s, rec)?;
    let dns = crate::etc::write(s, rec)?;
    let spec = crate::spec::build(&crate::spec::SpecInput {
        id,
        config: &rec.config,
        host: &rec.host_config,
        mounts: rec.mounts(),
        rootfs: &rootfs,
        etc_dir: &s.etc_dir(id),
        init_path: s.init_bin.clone(),
        join_net,
        hostname: rec.config.hostname.str().to_string(),
        truthful_proc: s.cfg.truthful_proc,
    })?;
    crate::mark("engine: spec built");
    write_json_nosync(&bundle.join("config.json"), &spec)?;
    crate::mark("engine: config.json written");
    let h = &rec.host_config;
    let log_none = h.log_type() == "none";
    let mcfg = MonitorConfig {
        mode: Mode::Container,
        id: id.to_string(),
        runtime_root: s.rt.root.clone(),
        bundle: bundle.clone(),
        process: None,
        tty: rec.config.tty.val(),
        open_stdin: rec.config.open_stdin.val(),
        stdin_once: rec.config.stdin_once.val(),
        attach_socket: s.attach_sock(id),
        log_path: if log_none {
            None
        } else {
            Some(PathBuf::from(&rec.log_path))
        },
        log_max_size: h.log_opt("max-size").and_then(parse_size).unwrap_or(0),
        log_max_file: h
            .log_opt("max-file")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        exit_file: cdir.join("exit.json"),
        // (Its removal's clean-up waits for the monitor's, nothing else does.)
        cleanup_delay_ms: if auto_removes(rec) {
            CLIENT_GRACE.as_millis() as u64
        } else {
            0
        },
        initial_size: h.console(),
        monitor_log: Some(cdir.join("monitor.log")),
        dns,
    };
    let (ctl, line) = spawn_monitor(s, &mcfg, &xdir.join("monitor.json"))?;
    crate::mark("engine: monitor says created");
    if !line.starts_with(CTL_CREATED) {
        return Err(monitor_error(&line));
    }
    let pid: i32 = line[CTL_CREATED.len()..].trim().parse().unwrap_or(0);
    Ok(Task {
        ctl,
        pid,
        netns,
        endpoint,
    })
}

type NetworkOf = (
    Option<String>,
    Option<crate::netns::Netns>,
    Option<crate::networks::Attached>,
);

/// The network namespace the container joins: one made ahead (`--network none`, bridge; the
/// task holds it, and its bridge endpoint), or another container's.
fn network_of(s: &Shared, rec: &Record) -> Result<NetworkOf> {
    Ok(match crate::spec::net_mode(&rec.host_config)? {
        crate::spec::NetMode::None => {
            let n = s.netns.take()?;
            (Some(n.path().to_string_lossy().into_owned()), Some(n), None)
        }
        crate::spec::NetMode::Bridge => {
            let n = s.netns.take()?;
            let f = std::fs::File::open(n.path())
                .map_err(|e| internal(format!("open {}", n.path().display()), e))?;
            let ep = attach_network(s, rec, std::os::fd::AsFd::as_fd(&f))?;
            (Some(n.path().to_string_lossy().into_owned()), Some(n), ep)
        }
        crate::spec::NetMode::Container(c) => {
            let reg = s.containers.lock();
            let oid = s.containers.resolve(&reg, &c)?;
            let other = &reg.by_id[&oid].rec;
            if other.state.status != Status::Running || other.state.pid <= 0 {
                return Err(Error::Conflict(format!(
                    "cannot join network of a non running container: {c}"
                )));
            }
            (
                Some(format!("/proc/{}/ns/net", other.state.pid)),
                None,
                None,
            )
        }
        crate::spec::NetMode::Host => (None, None, None),
    })
}

/// Connect the container's network namespace `netns` to its network (the one attach point).
fn attach_network(
    s: &Shared,
    rec: &Record,
    netns: std::os::fd::BorrowedFd<'_>,
) -> Result<Option<crate::networks::Attached>> {
    s.networks
        .connect(&rec.id, &rec.name, &rec.config, &rec.host_config, netns)
}

/// Take a prepared task down (op lock held): the monitor deletes the runtime container when
/// told anything but "start", answers and exits.
pub(crate) fn abort_task(s: &Shared, id: &str, t: Task) {
    let _ = (&t.ctl).write_all(b"abort\n");
    let _ = t.ctl.set_read_timeout(Some(Duration::from_secs(10)));
    let answered = read_line(&t.ctl).is_ok();
    drop(t);
    if !answered {
        // Its monitor died: the runtime container it made (an init waiting for its start)
        // is ours to delete.
        s.delete_runtime(id);
        sweep_cgroup(id);
    }
    s.unmount(id);
}

/// Take down the task prepared at create time, if any (op lock held): before anything that
/// changes what the start would have made (resources, removal).
pub(crate) fn discard_prepared(s: &Shared, id: &str) {
    let t = s
        .containers
        .lock()
        .by_id
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
pub(crate) fn prepare_later(s: &Arc<Shared>, id: &str) {
    let ss = s.clone();
    let id = id.to_string();
    let r = std::thread::Builder::new()
        .name("prepare".into())
        .spawn(move || {
            let s = &ss;
            let Ok((_, op)) = s.containers.find(&id) else {
                return;
            };
            let pid = {
                let Ok(_g) = op.lock() else { return };
                let Ok(rec) = s.containers.record(&id) else {
                    return;
                };
                if rec.state.status != Status::Created
                    || rec.has_been_started
                    || s.closed.load(Ordering::SeqCst)
                {
                    return;
                }
                if let Some(en) = s.containers.lock().by_id.get_mut(&id) {
                    en.preparing = true;
                }
                let made = create_task(s, &id, &rec);
                // A start that came meanwhile is ours to do (or to hand back).
                let req = s.containers.lock().by_id.get_mut(&id).and_then(|en| {
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
                        let mut reg = s.containers.lock();
                        match reg.by_id.get_mut(&id) {
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
                        s.delete_runtime(&id);
                        sweep_cgroup(&id);
                        s.unmount(&id);
                        give_back(req);
                        return;
                    }
                }
            };
            std::thread::sleep(PREPARED_TTL);
            let Ok(_g) = op.lock() else { return };
            let t = {
                let mut reg = s.containers.lock();
                match reg.by_id.get_mut(&id) {
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

/// A start handed to the prepare thread (see [`Entry::start_req`]).
#[derive(Default)]
pub(crate) struct StartReq {
    /// None while pending; Some(None): not done, start it yourself; Some(Some(r)): done.
    done: Mutex<Option<Option<Result<()>>>>,
    cv: Condvar,
}

impl StartReq {
    pub(crate) fn finish(&self, r: Option<Result<()>>) {
        if let Ok(mut d) = self.done.lock() {
            *d = Some(r);
        }
        self.cv.notify_all();
    }

    /// The prepare thread's answer: Some(result), or None when the caller must start.
    pub(crate) fn wait(&self) -> Option<Result<()>> {
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
