//! The lifecycle operations with runc's semantics: create, start, run, state, list, kill,
//! delete, exec, pause, resume, ps, update, stats. Everything here runs in the runtime's own
//! (host) namespaces; the code that runs inside the new process is in `process`.

use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::process::{self, GoInfo, InitCtx};
use crate::state::{self, State, Status};
use crate::sync::{self, Channel};
use crate::sys::{self, Forked};
use crate::{hooks, tty, warn};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// A runtime instance: where state lives and how cgroups are driven.
pub struct Runtime {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
}

#[derive(Debug, Default, Clone)]
pub struct ExecOpts {
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

enum StartMode {
    /// `create`: the init waits on exec.fifo for a later `start`.
    Fifo,
    /// `run`: the init waits for a START message from us.
    Direct,
}

struct Created {
    state: State,
    chan: Channel,
    /// Our end of the console socketpair when `run` proxies a terminal itself.
    console_local: Option<UnixStream>,
}

/// Removes what a failed create made. Disarmed on success.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<berth_cgroups::Cgroup>,
    pid: Option<i32>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            if let Err(e) = destroy_cgroup(cg) {
                warn(&format!("cleanup: {e}"));
            }
        }
        if let Some(d) = &self.dir {
            crate::truthful_proc::remove(d);
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn destroy_cgroup(cg: &berth_cgroups::Cgroup) -> Result<()> {
    // The init may take a moment to leave the cgroup after SIGKILL.
    let mut last = None;
    for i in 0..200 {
        match cg.destroy() {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(if i < 20 {
            1
        } else {
            10
        }));
    }
    Err(last
        .map(Error::from)
        .unwrap_or_else(|| Error::Other("cgroup destroy".into())))
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx("getcwd")?.join(path)
    };
    Ok(berth_fsutil::write_atomic_nosync(
        &path,
        pid.to_string().as_bytes(),
    )?)
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            systemd_cgroup: false,
        }
    }

    fn ensure_root(&self) -> Result<()> {
        if !self.root.exists() {
            std::fs::create_dir_all(&self.root)
                .with_ctx(|| format!("create state root {}", self.root.display()))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700));
        }
        Ok(())
    }

    pub fn load(&self, id: &str) -> Result<State> {
        State::load(&self.root, id)
    }

    /// `create`: everything up to (not including) the user's program, which waits on exec.fifo.
    pub fn create(&self, o: &CreateOpts) -> Result<State> {
        let c = self.create_inner(o, StartMode::Fifo)?;
        Ok(c.state)
    }

    fn create_inner(&self, o: &CreateOpts, mode: StartMode) -> Result<Created> {
        crate::mark("create: start");
        state::validate_id(&o.id)?;
        self.ensure_root()?;
        let dir = state::container_dir(&self.root, &o.id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(o.id.clone()))
            }
            Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
        }
        let mut cleanup = Cleanup {
            dir: Some(dir.clone()),
            cgroup: None,
            pid: None,
        };
        let bundle = std::fs::canonicalize(&o.bundle)
            .with_ctx(|| format!("bundle {}", o.bundle.display()))?;
        crate::mark("state dir made");
        let mut spec = crate::spec::load(&bundle)?;
        crate::mark("spec parsed");
        let rootfs = crate::spec::validate(&spec, &bundle)?;
        crate::mark("spec loaded and validated");
        let ns = Plan::from_spec(&spec);
        if !ns.has(LinuxNamespaceType::Mount) {
            warn("no mount namespace in the spec: the container shares the host's mount table");
        }
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(berth_seccomp::compile_cached(
                s,
                &self.root.join(".seccomp-cache"),
            )?),
            None => None,
        };
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| Error::Config("field process: missing".into()))?;
        let terminal = process.terminal().unwrap_or(false);

        // cgroup
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        let mut cg =
            berth_cgroups::Cgroup::new(cgroups_path.as_deref(), &o.id, self.systemd_cgroup)?;
        let res = effective_resources(&spec);
        // On v2 the child is cloned straight into its cgroup, which must exist first. On v1
        // the cgroup is built while the child sets up its mounts (CGROUP_READY).
        let deferred_cgroup = cg.mode() != berth_cgroups::Mode::V2;
        if !deferred_cgroup {
            let r = cg.create();
            cleanup.cgroup = Some(cg.clone());
            r?;
            for w in cg.apply(&res)? {
                warn(&w);
            }
            crate::mark("cgroup created and configured");
        }

        // exec fifo: the init holds it O_RDWR and blocks reading one byte (`execfifo`).
        let fifo = match mode {
            StartMode::Fifo => Some(crate::execfifo::make(&self.root, &o.id)?),
            StartMode::Direct => None,
        };
        let mut console_local = None;
        let console: Option<OwnedFd> = match &o.console_socket {
            Some(p) => {
                let s = UnixStream::connect(p)
                    .with_ctx(|| format!("connect to console socket {}", p.display()))?;
                Some(OwnedFd::from(s))
            }
            None if terminal => match mode {
                StartMode::Direct => {
                    let (a, b) = UnixStream::pair().ctx("socketpair for the console")?;
                    console_local = Some(a);
                    Some(OwnedFd::from(b))
                }
                StartMode::Fifo => {
                    return Err(Error::Config(
                        "field process.terminal: a terminal needs --console-socket when the runtime does not stay attached".into(),
                    ))
                }
            },
            None => None,
        };

        let (parent_chan, child_chan) = sync::pair()?;
        // Network, IPC and UTS namespaces given by path (berthd's network namespace, say) the
        // init can join itself, first thing: no intermediate process needed for them.
        let child_joins = namespaces::child_can_join(&ns);
        let provider = crate::truthful_proc::wanted(&spec)
            .then(|| crate::truthful_proc::start(&dir, &cg, seccomp.as_ref()))
            .flatten();
        let procview_dir = provider.as_ref().map(|p| p.provider.dir().to_path_buf());
        let sysinfo_sock = provider.as_ref().and_then(|p| p.sysinfo.as_ref());
        let ctx = InitCtx {
            spec: &spec,
            bundle: &bundle,
            rootfs: &rootfs,
            ns: &ns,
            chan: &child_chan,
            fifo: fifo.as_ref(),
            console: console.as_ref(),
            seccomp: seccomp.as_ref(),
            no_pivot: o.no_pivot,
            preserve_fds: o.preserve_fds,
            keyring: if o.no_new_keyring {
                None
            } else {
                Some(o.id.as_str())
            },
            join_first: if child_joins { &ns.join } else { &[] },
            procview: procview_dir.as_deref(),
            sysinfo: sysinfo_sock.map(|s| s.as_raw_fd()),
        };
        let v2fd = cg.v2_dir_fd()?;
        // Computed before the clone so the child does not wait for it.
        let go_info_pre = go_info(&cg);
        let (pid, in_cgroup) = spawn(
            &ns,
            child_joins,
            v2fd.as_ref().map(|f| f.as_raw_fd()),
            &parent_chan,
            &child_chan,
            || process::init_main(ctx),
        )?;
        cleanup.pid = Some(pid);
        crate::mark("cloned");
        if let Some(p) = provider {
            crate::truthful_proc::attach(p.provider, pid);
        }
        drop(child_chan);
        drop(fifo);
        drop(console);

        if ns.has_new(LinuxNamespaceType::User) {
            namespaces::write_id_maps(pid, &spec)?;
        }
        // Born in its cgroup (clone3 CLONE_INTO_CGROUP) the child may unshare its cgroup
        // namespace at once; otherwise it waits until we moved it (HOOKS_DONE), so the
        // namespace is rooted at the container's cgroup, not ours.
        let cgroupns = ns.has_new(LinuxNamespaceType::Cgroup);
        let mut go = go_info_pre;
        // Moving another process between cgroups takes the global threadgroup rwsem for
        // writing, which waits for an RCU grace period (10-20 ms here). A single-threaded
        // process moving *itself* through the v1 `tasks` file skips that lock, so the child
        // joins its cgroup itself when it can (no user namespace: the files are the host's).
        let self_join = !in_cgroup
            && !ns.has_new(LinuxNamespaceType::User)
            && cg.mode() != berth_cgroups::Mode::V2;
        if self_join {
            let mut dirs: Vec<PathBuf> = cg.v1_dirs().values().cloned().collect();
            dirs.sort();
            dirs.dedup();
            go.self_join_tasks = dirs.into_iter().map(|d| d.join("tasks")).collect();
        }
        go.late_cgroupns = cgroupns && !in_cgroup;
        go.cgroupns_at_mount = cgroupns && (in_cgroup || self_join) && !deferred_cgroup;
        go.wait_cgroup_ready = deferred_cgroup;
        // The state JSON (HOOKS_DONE) is for hooks and the seccomp listener; the message is
        // also the barrier after the parent moved the child into its cgroup.
        let wants_state = spec.hooks().as_ref().is_some_and(|h| {
            #[allow(deprecated)]
            let prestart = h.prestart().as_ref().is_some_and(|l| !l.is_empty());
            prestart
                || [
                    h.create_runtime(),
                    h.create_container(),
                    h.start_container(),
                ]
                .iter()
                .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
        }) || spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .is_some_and(|s| s.listener_path().is_some());
        go.no_hooks_done = !wants_state && (in_cgroup || self_join);
        let go_no_hooks_done = go.no_hooks_done;
        parent_chan.send(
            sync::GO,
            &serde_json::to_vec(&go).map_err(|e| Error::Other(format!("encode go info: {e}")))?,
        )?;
        if deferred_cgroup {
            let r = cg.create();
            cleanup.cgroup = Some(cg.clone());
            r?;
            for w in cg.apply(&res)? {
                warn(&w);
            }
            crate::mark("cgroup created and configured");
            parent_chan.send(sync::CGROUP_READY, b"")?;
        }
        // Otherwise move it while it builds its mounts: it cannot run the user's program
        // before HOOKS_DONE, which we send only after this.
        if !in_cgroup && !self_join {
            cg.add_task(pid)?;
        }
        parent_chan.expect(sync::MOUNTS_DONE, "the container's mounts were set up")?;
        crate::mark("child mounts done");

        let annotations = spec.annotations().clone().unwrap_or_default();
        let mut st = State {
            id: o.id.clone(),
            pid,
            pid_start: sys::pid_start_time(pid).unwrap_or(0),
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            created: berth_fsutil::rfc3339_nano_now(),
            annotations,
            owner: String::new(),
            cgroup: Some(cg.clone()),
            own_pid_ns: ns.has_new(LinuxNamespaceType::Pid),
            exit_status: None,
            config: Spec::default(),
        };
        if !go_no_hooks_done {
            // The runtime spec's lifecycle: the environment is made (step 2), so the status is
            // `created` for these hooks and for createContainer/startContainer (docs/runtime.md).
            let created = st.hook_json(Status::Created);
            #[allow(deprecated)]
            if let Some(h) = spec.hooks().as_ref() {
                if let Some(l) = h.prestart() {
                    hooks::run("prestart", l, &created)?;
                }
                if let Some(l) = h.create_runtime() {
                    hooks::run("createRuntime", l, &created)?;
                }
            }
            parent_chan.send(sync::HOOKS_DONE, created.as_bytes())?;
        }
        parent_chan.expect(sync::CREATED, "the container was created")?;
        crate::mark("child created");
        std::mem::swap(&mut st.config, &mut spec);
        st.save(&self.root)?;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, pid)?;
        }
        cleanup.disarm();
        Ok(Created {
            state: st,
            chan: parent_chan,
            console_local,
        })
    }

    /// `start`: release a created container's init to exec the user's program; returns once
    /// it was executed (then the poststart hooks ran), or the init's error (a startContainer
    /// hook, capabilities, seccomp, execve) when it failed after the release.
    pub fn start(&self, id: &str) -> Result<()> {
        self.start_loaded(&self.load(id)?)
    }

    /// `start` for a caller that holds the state `create` returned (berth-monitor): saves
    /// reading back and parsing the whole spec on the way to the user's program.
    pub fn start_loaded(&self, st: &State) -> Result<()> {
        let id = st.id.as_str();
        let status = st.status(&self.root);
        if status != Status::Created {
            return Err(Error::State {
                id: id.into(),
                status: status.to_string(),
                what: "cannot start a container that is not created".into(),
            });
        }
        // As runc's: return once the user's program was executed, or with the init's error.
        crate::execfifo::release_and_wait(&self.root, id, || st.init_alive())?;
        if let Some(h) = st
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
        {
            hooks::run_all_warn("poststart", &h, &st.hook_json(Status::Running));
        }
        Ok(())
    }

    /// The heart of `start`, for a caller that knows the container is created and has no
    /// poststart hooks (berthd): let the init exec the user's program through its exec fifo,
    /// without waiting for the exec. An error when the init is gone.
    pub fn release(&self, id: &str) -> Result<()> {
        crate::execfifo::release(&self.root, id)
    }

    /// `run`: create + start; in the foreground, forward signals (and a terminal), wait, record
    /// the exit status, delete, and return the container's exit code.
    pub fn run(&self, o: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
        // Block the signals we forward before the child exists; the child resets its mask.
        let mut mask = SigSet::all();
        mask.remove(Signal::SIGKILL);
        mask.remove(Signal::SIGSTOP);
        for s in [
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
            Signal::SIGABRT,
        ] {
            mask.remove(s);
        }
        let mut old = SigSet::empty();
        if !detach {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))
                .ctx("sigprocmask")?;
        }
        let c = match self.create_inner(o, StartMode::Direct) {
            Ok(c) => c,
            Err(e) => {
                let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                return Err(e);
            }
        };
        if detach && c.console_local.is_some() {
            let _ = self.delete(&o.id, true);
            return Err(Error::Config(
                "field process.terminal: cannot detach with a terminal unless --console-socket is given".into(),
            ));
        }
        let pid = c.state.pid;
        let master = match &c.console_local {
            Some(s) => Some(sys::recv_fd(s.as_raw_fd())?),
            None => None,
        };
        c.chan.send(sync::START, b"")?;
        match c.chan.recv() {
            Ok(None) => {}
            Ok(Some((sync::ERROR, msg))) => {
                let _ = waitpid(Pid::from_raw(pid), None);
                let _ = self.delete(&o.id, true);
                return Err(Error::from_child_report(&msg));
            }
            Ok(Some((t, _))) => return Err(Error::Other(format!("sync protocol: unexpected {t}"))),
            Err(e) => return Err(e),
        }
        crate::mark("user program exec'd");
        if let Some(h) = c
            .state
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
        {
            hooks::run_all_warn("poststart", &h, &c.state.hook_json(Status::Running));
        }
        if detach {
            return Ok(0);
        }
        let code = foreground(pid, master.as_ref(), &mask)?;
        crate::mark("container exited");
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        if keep {
            let mut st = c.state;
            st.exit_status = Some(code);
            st.save(&self.root)?;
        } else {
            self.delete(&o.id, true)?;
        }
        crate::mark("deleted");
        Ok(code)
    }

    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        Ok(self.load(id)?.oci_json(&self.root))
    }

    pub fn list(&self) -> Result<Vec<State>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("read {}", self.root.display()), e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            match State::load(&self.root, &name) {
                Ok(s) => out.push(s),
                Err(Error::NotFound(_)) => {}
                Err(err) => warn(&format!("skipping {name}: {err}")),
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Send `sig` (a signal number; 0 only checks that the process exists).
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if status == Status::Stopped {
            return Err(Error::State {
                id: id.into(),
                status: status.to_string(),
                what: "container not running".into(),
            });
        }
        if all && sig != 0 {
            if let Some(cg) = &st.cgroup {
                cg.kill_all(sig)?;
                return Ok(());
            }
        }
        // SAFETY: kill(2) with a pid we verified belongs to the container's init.
        if unsafe { libc::kill(st.pid, sig) } != 0 {
            return Err(Error::sys(
                format!("kill {} {sig}", st.pid),
                nix::errno::Errno::last(),
            ));
        }
        Ok(())
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let st = match self.load(id) {
            Ok(s) => s,
            Err(Error::NotFound(_)) if force => {
                // An aborted create can leave a dir without state.json.
                let dir = state::container_dir(&self.root, id);
                if state::validate_id(id).is_ok() && dir.exists() {
                    crate::truthful_proc::remove(&dir);
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let status = st.status(&self.root);
        match status {
            Status::Stopped | Status::Created => {}
            _ if !force => {
                return Err(Error::State {
                    id: id.into(),
                    status: status.to_string(),
                    what: "cannot delete a container that is not stopped (use --force)".into(),
                })
            }
            _ => {}
        }
        if status != Status::Stopped {
            if let Some(cg) = &st.cgroup {
                if status == Status::Paused {
                    let _ = cg.thaw();
                }
            }
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        }
        if let Some(cg) = &st.cgroup {
            // Processes that outlive init (shared pid namespace) must not survive the delete.
            // With its own pid namespace, the init's death already killed everything.
            if !(status == Status::Stopped && st.own_pid_ns) {
                let _ = cg.kill_all(libc::SIGKILL);
            }
        }
        crate::mark("delete: killed");
        wait_gone(&st);
        crate::mark("delete: gone");
        if let Some(h) = st
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
        {
            hooks::run_all_warn("poststop", &h, &st.hook_json(Status::Stopped));
        }
        if let Some(cg) = &st.cgroup {
            destroy_cgroup(cg)?;
        }
        crate::mark("delete: cgroup removed");
        let dir = state::container_dir(&self.root, id);
        crate::truthful_proc::remove(&dir);
        std::fs::remove_dir_all(&dir).with_ctx(|| format!("remove {}", dir.display()))?;
        Ok(())
    }

    /// Freeze every process of a running container (v1 freezer / v2 cgroup.freeze).
    pub fn pause(&self, id: &str) -> Result<()> {
        self.freezer(
            id,
            Status::Running,
            "only a running container can be paused",
            |cg| cg.freeze(),
        )
    }

    /// Thaw a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        self.freezer(
            id,
            Status::Paused,
            "only a paused container can be resumed",
            |cg| cg.thaw(),
        )
    }

    fn freezer(
        &self,
        id: &str,
        want: Status,
        refusal: &str,
        op: impl FnOnce(&berth_cgroups::Cgroup) -> std::result::Result<(), berth_cgroups::Error>,
    ) -> Result<()> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if status != want {
            return Err(Error::State {
                id: id.into(),
                status: status.to_string(),
                what: refusal.into(),
            });
        }
        let cg = st
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Other("container has no cgroup".into()))?;
        op(cg)?;
        Ok(())
    }

    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let st = self.load(id)?;
        match &st.cgroup {
            Some(cg) => Ok(cg.pids()?),
            None => Ok(if st.init_alive() {
                vec![st.pid]
            } else {
                vec![]
            }),
        }
    }

    pub fn update(&self, id: &str, res: &LinuxResources) -> Result<Vec<String>> {
        let st = self.load(id)?;
        let cg = st
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Other("container has no cgroup".into()))?;
        Ok(cg.update(res)?)
    }

    pub fn stats(&self, id: &str) -> Result<berth_cgroups::Stats> {
        let st = self.load(id)?;
        let cg = st
            .cgroup
            .as_ref()
            .ok_or_else(|| Error::Other("container has no cgroup".into()))?;
        Ok(cg.stats()?)
    }

    /// `exec`: a new process in every namespace and the cgroup of a running container.
    pub fn exec(&self, id: &str, process: &Process, o: &ExecOpts) -> Result<i32> {
        let st = self.load(id)?;
        let status = st.status(&self.root);
        if !matches!(status, Status::Running | Status::Created) {
            return Err(Error::State {
                id: id.into(),
                status: status.to_string(),
                what: "cannot exec in a container that is not running".into(),
            });
        }
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::Config(
                "field process.args: must not be empty".into(),
            ));
        }
        let seccomp = match st
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
        {
            Some(s) => Some(berth_seccomp::compile_cached(
                s,
                &self.root.join(".seccomp-cache"),
            )?),
            None => None,
        };
        let terminal = process.terminal().unwrap_or(false);
        let mut console_local = None;
        let console: Option<OwnedFd> = match &o.console_socket {
            Some(p) => {
                Some(OwnedFd::from(UnixStream::connect(p).with_ctx(|| {
                    format!("connect to console socket {}", p.display())
                })?))
            }
            None if terminal && !o.detach => {
                let (a, b) = UnixStream::pair().ctx("socketpair for the console")?;
                console_local = Some(a);
                Some(OwnedFd::from(b))
            }
            None if terminal => return Err(Error::Config(
                "process.terminal: cannot detach with a terminal unless --console-socket is given"
                    .into(),
            )),
            None => None,
        };
        let mut mask = SigSet::all();
        for s in [
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
            Signal::SIGABRT,
        ] {
            mask.remove(s);
        }
        let mut old = SigSet::empty();
        if !o.detach {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))
                .ctx("sigprocmask")?;
        }
        // Namespaces of the init that differ from ours, user first and mount last.
        let mut joins = Vec::new();
        for t in [
            LinuxNamespaceType::User,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Cgroup,
            LinuxNamespaceType::Time,
            LinuxNamespaceType::Mount,
        ] {
            let name = namespaces::proc_name(t);
            let theirs = PathBuf::from(format!("/proc/{}/ns/{name}", st.pid));
            let same = match (
                std::fs::metadata(&theirs),
                std::fs::metadata(format!("/proc/self/ns/{name}")),
            ) {
                (Ok(a), Ok(b)) => {
                    use std::os::unix::fs::MetadataExt;
                    a.ino() == b.ino() && a.dev() == b.dev()
                }
                _ => true,
            };
            if !same {
                joins.push((t, theirs));
            }
        }
        let pidns_plan = Plan {
            new: vec![],
            join: joins,
        };
        let (parent_chan, child_chan) = sync::pair()?;
        let listener_path = st
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_path().clone());
        let state_json = st.hook_json(Status::Running);
        let listener = listener_path.as_deref().map(|p| (p, state_json.as_str()));
        let sysinfo = crate::truthful_proc::exec_sysinfo(
            &state::container_dir(&self.root, id),
            &st.config,
            seccomp.as_ref(),
        );
        let filters = process::Filters {
            seccomp: seccomp.as_ref(),
            listener,
            sysinfo: sysinfo.as_ref().map(|s| s.as_raw_fd()),
        };
        let (pid, _) = spawn(&pidns_plan, false, None, &parent_chan, &child_chan, || {
            exec_child_main(
                &child_chan,
                process,
                filters,
                console.as_ref(),
                o.preserve_fds,
            )
        })?;
        drop(child_chan);
        drop(sysinfo);
        drop(console);
        let guard = KillOnDrop(Some(pid));
        if let Some(cg) = &st.cgroup {
            cg.add_task(pid)?;
        }
        parent_chan.send(sync::GO, b"{}")?;
        let master = match &console_local {
            Some(s) => Some(sys::recv_fd(s.as_raw_fd())?),
            None => None,
        };
        match parent_chan.recv()? {
            None => {}
            Some((sync::ERROR, msg)) => {
                drop(guard);
                let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                return Err(Error::from_child_report(&msg));
            }
            Some((t, _)) => return Err(Error::Other(format!("sync protocol: unexpected {t}"))),
        }
        let mut guard = guard;
        guard.0 = None;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, pid)?;
        }
        if o.detach {
            return Ok(0);
        }
        let code = foreground(pid, master.as_ref(), &mask)?;
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        Ok(code)
    }
}

struct KillOnDrop(Option<i32>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }
}

fn exec_child_main(
    chan: &Channel,
    process: &Process,
    filters: process::Filters,
    console: Option<&OwnedFd>,
    preserve_fds: i32,
) -> ! {
    let r = (|| -> Result<std::convert::Infallible> {
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)?;
        sys::prctl(libc::PR_SET_DUMPABLE, 0, 0)?;
        chan.expect(sync::GO, "the parent placed us in the cgroup")?;
        if process.terminal().unwrap_or(false) {
            let sock =
                console.ok_or_else(|| Error::Other("terminal without console socket".into()))?;
            tty::setup_console(sock.as_raw_fd(), process, false)?;
        }
        let exe = process::find_executable(process)?;
        let mut keep: Vec<RawFd> = (3..3 + preserve_fds).collect();
        keep.push(chan.raw());
        keep.extend(filters.sysinfo);
        sys::close_fds_except(3, &keep)?;
        let cwd = process.cwd();
        let root = sys::openat2(
            libc::AT_FDCWD,
            Path::new("/"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        let _ = sys::openat2(
            root.as_raw_fd(),
            cwd,
            libc::O_PATH | libc::O_DIRECTORY,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| Error::Config(format!("field process.cwd: {}: {e}", cwd.display())))?;
        drop(root);
        process::enter_cwd(process)?;
        sys::prctl(libc::PR_SET_PDEATHSIG, 0, 0)?;
        process::finish_and_exec(process, filters, &exe, preserve_fds)
    })();
    let e = match r {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(sync::ERROR, &e.child_report());
    // SAFETY: _exit ends this forked process without running the parent's destructors.
    unsafe { libc::_exit(1) }
}

/// Create the process that becomes the container's init (or exec'd process). With namespaces
/// to join, an intermediate child joins them and clones the final process with CLONE_PARENT so
/// it is still our child. Returns (pid, placed-in-cgroup-by-clone3).
#[allow(unreachable_code)]
/// Clone the container's init with its new namespaces. Namespaces to join go through an
/// intermediate process (joined, then the init cloned as our sibling) unless `child_joins`:
/// then the init joins them itself (see `namespaces::child_can_join`).
fn spawn<F>(
    ns: &Plan,
    child_joins: bool,
    v2_cgroup: Option<RawFd>,
    parent_chan: &Channel,
    child_chan: &Channel,
    child: F,
) -> Result<(i32, bool)>
where
    F: FnOnce() -> std::convert::Infallible,
{
    let all = ns.clone_flags();
    // Without CLONE_INTO_CGROUP the child is not yet in its cgroup: it unshares the cgroup
    // namespace itself later (see GoInfo::late_cgroupns).
    let flags = all & !libc::CLONE_NEWCGROUP;
    if ns.join.is_empty() || child_joins {
        if let Some(cfd) = v2_cgroup {
            if let Some(f) = sys::clone3_into_cgroup(all, cfd)? {
                return match f {
                    Forked::Child => match child() {},
                    Forked::Parent(pid) => Ok((pid, true)),
                };
            }
        }
        return match sys::clone_fork(flags)? {
            Forked::Child => match child() {},
            Forked::Parent(pid) => Ok((pid, false)),
        };
    }
    match sys::clone_fork(0)? {
        Forked::Child => {
            // Intermediate process: join, clone the final process as our sibling, report its
            // pid, exit.
            let r = (|| -> Result<i32> {
                sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)?;
                sys::prctl(libc::PR_SET_DUMPABLE, 0, 0)?;
                for (t, p) in &ns.join {
                    namespaces::join(*t, p)?;
                }
                match sys::clone_fork(flags | libc::CLONE_PARENT)? {
                    Forked::Child => match child() {},
                    Forked::Parent(pid) => Ok(pid),
                }
            })();
            match r {
                Ok(pid) => {
                    let _ = child_chan.send(sync::PID, &pid.to_le_bytes());
                }
                Err(e) => {
                    let _ = child_chan.send(sync::ERROR, &e.child_report());
                }
            }
            // SAFETY: leave the forked intermediate without running destructors.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent(mid) => {
            let r = parent_chan.expect(sync::PID, "the namespaces were joined");
            let _ = waitpid(Pid::from_raw(mid), None);
            let p = r?;
            let pid = i32::from_le_bytes(
                p.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| Error::Other("sync protocol: short pid message".into()))?,
            );
            Ok((pid, false))
        }
    }
}

/// Host-side view of the container's cgroup, for the /sys/fs/cgroup mount inside: one bind
/// per v1 hierarchy (named like the host's mountpoint) or the unified directory on v2.
fn go_info(cg: &berth_cgroups::Cgroup) -> GoInfo {
    let mut info = GoInfo::default();
    if cg.mode() == berth_cgroups::Mode::V2 {
        info.cgroup_v2_dir = cg.unified_dir().map(Path::to_path_buf);
        return info;
    }
    info.cgroup_dirs = cg.v1_hierarchies().to_vec();
    info
}

/// Wait (briefly) until the init process is gone after a kill.
fn wait_gone(st: &State) {
    for i in 0..500 {
        if !st.init_alive() {
            return;
        }
        // Reap it if it happens to be our child.
        let _ = waitpid(Pid::from_raw(st.pid), Some(WaitPidFlag::WNOHANG));
        std::thread::sleep(std::time::Duration::from_millis(if i < 50 {
            1
        } else {
            10
        }));
    }
}

/// Foreground supervision: forward signals, proxy a terminal, return the exit code
/// (128+signal for a killed process, as shells report it).
fn foreground(pid: i32, master: Option<&OwnedFd>, mask: &SigSet) -> Result<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx("signalfd")?;
    let stdin_fd: RawFd = 0;
    let _raw = match master {
        Some(_) if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) => {
            tty::RawMode::enter(stdin_fd)
        }
        _ => None,
    };
    if let Some(m) = master {
        if let Some((r, c)) = tty::get_winsize(stdin_fd) {
            let _ = tty::set_winsize(m.as_raw_fd(), r, c);
        }
    }
    let mut stdin_open = master.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    let mut exit: Option<i32> = None;
    loop {
        // Check for exit first (SIGCHLD may have been coalesced).
        if exit.is_none() {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, c)) => exit = Some(c),
                Ok(WaitStatus::Signaled(_, s, _)) => exit = Some(128 + s as i32),
                Ok(_) => {}
                Err(nix::errno::Errno::ECHILD) => exit = Some(255),
                Err(_) => {}
            }
        }
        if let Some(code) = exit {
            // Drain what the pty still holds.
            if let Some(m) = master {
                loop {
                    let mut fds = [PollFd::new(m_borrow(m), PollFlags::POLLIN)];
                    if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) <= 0 {
                        break;
                    }
                    match nix::unistd::read(m, &mut buf) {
                        Ok(n) if n > 0 => write_all(1, &buf[..n]),
                        _ => break,
                    }
                }
            }
            return Ok(code);
        }
        // SAFETY: `sfd` is owned by this function and outlives the borrow (this iteration).
        let sfd_b = unsafe { std::os::fd::BorrowedFd::borrow_raw(sfd.as_raw_fd()) };
        // SAFETY: fd 0 is this process's stdin, which nothing closes while it runs.
        let stdin_b = unsafe { std::os::fd::BorrowedFd::borrow_raw(stdin_fd) };
        let mut fds = vec![PollFd::new(sfd_b, PollFlags::POLLIN)];
        if let Some(m) = master {
            fds.push(PollFd::new(m_borrow(m), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin_b, PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let rev: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        if !rev[0].is_empty() {
            while let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    continue;
                }
                if sig == libc::SIGWINCH {
                    if let (Some(m), Some((r, c))) = (master, tty::get_winsize(stdin_fd)) {
                        let _ = tty::set_winsize(m.as_raw_fd(), r, c);
                    }
                    continue;
                }
                if let Ok(s) = Signal::try_from(sig) {
                    let _ = kill(Pid::from_raw(pid), s);
                }
            }
        }
        if let Some(m) = master {
            if rev.len() > 1 && !rev[1].is_empty() {
                match nix::unistd::read(m, &mut buf) {
                    Ok(n) if n > 0 => write_all(1, &buf[..n]),
                    _ => {
                        // EIO: the slave side is closed (process exited); wait for it.
                        let st = waitpid(Pid::from_raw(pid), None);
                        exit = Some(match st {
                            Ok(WaitStatus::Exited(_, c)) => c,
                            Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                            _ => 255,
                        });
                    }
                }
            }
            if stdin_open && rev.len() > 2 && !rev[2].is_empty() {
                match nix::unistd::read(stdin_b, &mut buf) {
                    Ok(n) if n > 0 => write_all(m.as_raw_fd(), &buf[..n]),
                    _ => {
                        stdin_open = false;
                        // EOF on stdin: send ^D so the program sees end of input.
                        write_all(m.as_raw_fd(), &[4]);
                    }
                }
            }
        }
    }
}

fn m_borrow(m: &OwnedFd) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::AsFd;
    m.as_fd()
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    // SAFETY: borrowing an fd we keep open across the call.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(b, data) {
            Ok(n) if n > 0 => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// The spec's resources plus the device rules every container needs, as runc adds them: the
/// devices the runtime itself creates (null, zero, full, random, urandom, tty, console, ptmx,
/// pts), mknod of any node, and every device listed in linux.devices.
pub fn effective_resources(spec: &Spec) -> LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let linux = spec.linux().as_ref();
    let mut res = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let rule = |t: LinuxDeviceType, maj: Option<i64>, min: Option<i64>, acc: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(t));
        r.set_major(maj);
        r.set_minor(min);
        r.set_access(Some(acc.to_string()));
        r
    };
    for d in linux.and_then(|l| l.devices().clone()).unwrap_or_default() {
        rules.push(rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm"));
    }
    use LinuxDeviceType::{B, C};
    rules.extend([
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(5), Some(1), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
    ]);
    res.set_devices(Some(rules));
    res
}
