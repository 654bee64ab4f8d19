//! What runs inside the new process after clone: the container init (namespaces, rootfs,
//! console, then the wait for `start`) and the common last mile shared with `exec` (rlimits,
//! user, capabilities, no_new_privs, seccomp, fd hygiene, cwd check, execve).

use crate::capabilities;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::{self, Channel};
use crate::sys;
use crate::tty;
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Parameters the parent passes (by memory: we are a fork) to the container init.
pub struct InitCtx<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub ns: &'a Plan,
    pub chan: &'a Channel,
    /// Read end (opened O_RDWR) of exec.fifo: `start` writes one byte to release us.
    pub fifo: Option<&'a OwnedFd>,
    /// Connected console socket: the pty master is sent over it.
    pub console: Option<&'a OwnedFd>,
    pub seccomp: Option<&'a berth_seccomp::Filter>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// Name of the new session keyring (None with --no-new-keyring).
    pub keyring: Option<&'a str>,
    /// Namespaces the init joins itself before anything else (see `namespaces::child_can_join`).
    pub join_first: &'a [(LinuxNamespaceType, PathBuf)],
    /// A truthful /proc provider's directory: its files are bound over /proc (`truthful_proc`).
    pub procview: Option<&'a Path>,
    /// The socket to the provider that gets the sysinfo(2) seccomp listener (`truthful_proc`).
    pub sysinfo: Option<RawFd>,
}

/// Message sent with GO: facts only the parent can learn (the container's cgroup dirs).
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub struct GoInfo {
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    pub cgroup_v2_dir: Option<PathBuf>,
    /// Unshare the cgroup namespace after HOOKS_DONE (we were not born in our cgroup).
    #[serde(default)]
    pub late_cgroupns: bool,
    /// The cgroup namespace is already ours while mounting (cgroup2 can be mounted fresh).
    #[serde(default)]
    pub cgroupns_at_mount: bool,
    /// v1 `tasks` files to write "0" to: the child joins its cgroup itself (cheap path).
    #[serde(default)]
    pub self_join_tasks: Vec<PathBuf>,
    /// The parent builds the cgroup while we mount: wait for CGROUP_READY before using it.
    #[serde(default)]
    pub wait_cgroup_ready: bool,
    /// No hook and no seccomp listener needs the state, and nothing waits on the parent after
    /// our mounts: go on at once after MOUNTS_DONE (the parent sends no HOOKS_DONE).
    #[serde(default)]
    pub no_hooks_done: bool,
}

/// Joining the cgroup, done once: after CGROUP_READY when the parent builds it concurrently,
/// else at once. Unshares the cgroup namespace when that had to wait for the join.
struct CgroupJoin<'a> {
    go: &'a GoInfo,
    chan: &'a Channel,
    done: std::cell::Cell<bool>,
    cgroupns_pending: std::cell::Cell<bool>,
}

impl CgroupJoin<'_> {
    fn ensure(&self) -> Result<()> {
        if self.done.replace(true) {
            return Ok(());
        }
        if self.go.wait_cgroup_ready {
            self.chan
                .expect(sync::CGROUP_READY, "the cgroup was created")?;
        }
        for t in &self.go.self_join_tasks {
            std::fs::write(t, "0")
                .with_ctx(|| format!("join cgroup: write 0 to {}", t.display()))?;
        }
        if self.cgroupns_pending.get() && !self.go.self_join_tasks.is_empty() {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .ctx("unshare(CLONE_NEWCGROUP)")?;
            self.cgroupns_pending.set(false);
        }
        Ok(())
    }
}

static AFTER_CREATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Entry point of the container init. Never returns: execs the user's program or exits.
pub fn init_main(ctx: InitCtx) -> ! {
    let err = match init(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // After "created" nobody may be listening on the channel (create + start as separate
    // commands): tell the container's stderr too, as runc does.
    let unheard = ctx.chan.send(sync::ERROR, &err.child_report()).is_err();
    let created = AFTER_CREATED.load(std::sync::atomic::Ordering::Relaxed);
    if let (Some(fifo), true) = (ctx.fifo, created) {
        // For a `start` waiting on the fifo (see `execfifo`).
        crate::execfifo::report(fifo, &err);
    }
    if unheard || (ctx.fifo.is_some() && created) {
        let _ = nix::unistd::write(
            std::io::stderr(),
            format!("berth-runtime: container init: {err}\n").as_bytes(),
        );
    }
    // SAFETY: _exit is async-signal-safe and ends the process without running destructors
    // that belong to the parent's copy of the state.
    unsafe { libc::_exit(1) }
}

fn init(ctx: &InitCtx) -> Result<std::convert::Infallible> {
    // Die with the runtime while we are being set up (cleared before we report "created").
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)?;
    // Nobody in the container may open /proc/<us>/exe (the runtime binary) while we still run
    // runtime code: CVE-2019-5736. execve restores dumpability for the user's program.
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0)?;
    for (t, p) in ctx.join_first {
        namespaces::join(*t, p)?;
    }

    let go = ctx.chan.expect(sync::GO, "the parent finished the setup")?;
    crate::mark("child: go");
    let go: GoInfo = serde_json::from_slice(&go).unwrap_or_default();
    let join = CgroupJoin {
        go: &go,
        chan: ctx.chan,
        done: std::cell::Cell::new(false),
        cgroupns_pending: std::cell::Cell::new(go.late_cgroupns),
    };
    if !go.wait_cgroup_ready {
        join.ensure()?;
    }

    let spec = ctx.spec;
    if ctx.ns.has_new(LinuxNamespaceType::User) {
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .ctx("setresgid(0) in the new user namespace")?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .ctx("setresuid(0) in the new user namespace")?;
    }
    if ctx.ns.has_new(LinuxNamespaceType::Time) {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            libc::CLONE_NEWTIME,
        ))
        .ctx("unshare(CLONE_NEWTIME)")?;
        namespaces::write_time_offsets(spec)?;
        // unshare(CLONE_NEWTIME) only affects children (and, on recent kernels, our next
        // execve); entering time_for_children makes the init itself live in the new clocks on
        // every kernel with time namespaces.
        let tfc = std::fs::File::open("/proc/self/ns/time_for_children")
            .ctx("open /proc/self/ns/time_for_children")?;
        nix::sched::setns(
            &tfc,
            nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        )
        .ctx("setns into the new time namespace")?;
    }
    if let Some(name) = ctx.keyring {
        // A session keyring of its own, so the container cannot read the caller's keys.
        let c = CString::new(format!("_ses.{name}"))
            .map_err(|_| Error::Other("keyring name".into()))?;
        // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a valid C string; no other memory is touched.
        let r = unsafe { libc::syscall(libc::SYS_keyctl, 1 as libc::c_long, c.as_ptr()) };
        if r < 0 {
            let e = nix::errno::Errno::last();
            // Kernels without keys support, or a seccomp filter of the caller, say ENOSYS.
            if e != nix::errno::Errno::ENOSYS {
                return Err(Error::sys(
                    "join a new session keyring (use --no-new-keyring to skip)",
                    e,
                ));
            }
        }
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_ctx(|| format!("field hostname: sethostname({h:?})"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        let c = CString::new(d).map_err(|_| Error::Config("field domainname: NUL byte".into()))?;
        // SAFETY: c is a valid C string of the given length.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(Error::sys(
                format!("field domainname: setdomainname({d:?})"),
                nix::errno::Errno::last(),
            ));
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("field process: missing".into()))?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .with_ctx(|| format!("field process.oomScoreAdj: write {adj}"))?;
    }
    let own_mnt = ctx.ns.has_new(LinuxNamespaceType::Mount);
    if own_mnt {
        let plan = RootfsPlan {
            spec,
            rootfs: ctx.rootfs,
            bundle: ctx.bundle,
            userns: ctx.ns.has(LinuxNamespaceType::User),
            cgroupns: go.cgroupns_at_mount,
            cgroup_dirs: &go.cgroup_dirs,
            cgroup_v2_dir: go.cgroup_v2_dir.as_deref(),
            cgroup_ready: &|| join.ensure(),
            procview: ctx.procview,
        };
        rootfs::prepare(&plan)?;
        crate::mark("child: mounts prepared");
    }
    join.ensure()?;
    ctx.chan.send(sync::MOUNTS_DONE, b"")?;
    let state_json = if go.no_hooks_done {
        String::new()
    } else {
        let j = ctx
            .chan
            .expect(sync::HOOKS_DONE, "createRuntime hooks ran")?;
        String::from_utf8_lossy(&j).into_owned()
    };
    if join.cgroupns_pending.get() {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .ctx("unshare(CLONE_NEWCGROUP)")?;
    }
    // createContainer and startContainer hooks run in the container's namespaces: the spec
    // gives them the pid as seen by the container.
    let inside_state = crate::state::with_pid(&state_json, nix::unistd::getpid().as_raw());
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        hooks::run("createContainer", &h, &inside_state)?;
    }
    if own_mnt {
        rootfs::switch_root(ctx.rootfs, ctx.no_pivot)?;
        crate::mark("child: pivoted");
    } else {
        nix::unistd::chroot(ctx.rootfs).with_ctx(|| format!("chroot {}", ctx.rootfs.display()))?;
        nix::unistd::chdir("/").ctx("chdir /")?;
    }
    if process.terminal().unwrap_or(false) {
        let sock = ctx.console.ok_or_else(|| {
            Error::Other("process.terminal is true but no --console-socket was given".into())
        })?;
        tty::setup_console(sock.as_raw_fd(), process, own_mnt)?;
    }
    // The cwd is created before the root may become read-only.
    prepare_cwd(process)?;
    if own_mnt {
        rootfs::finalize(spec)?;
    }
    crate::mark("child: finalized");
    let exe = find_executable(process)?;

    // Keep only what we still need; nothing that points at a host directory survives.
    let mut keep: Vec<RawFd> = (3..3 + ctx.preserve_fds).collect();
    keep.push(ctx.chan.raw());
    if let Some(f) = ctx.fifo {
        keep.push(f.as_raw_fd());
    }
    keep.extend(ctx.sysinfo);
    sys::close_fds_except(3, &keep)?;
    enter_cwd(process)?;

    sys::prctl(libc::PR_SET_PDEATHSIG, 0, 0)?;
    ctx.chan.send(sync::CREATED, b"")?;
    AFTER_CREATED.store(true, std::sync::atomic::Ordering::Relaxed);

    match ctx.fifo {
        Some(fifo) => crate::execfifo::wait(fifo)?,
        None => {
            ctx.chan.expect(sync::START, "start")?;
        }
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        hooks::run("startContainer", &h, &inside_state)?;
    }
    let listener_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().clone());
    let listener = listener_path.as_deref().map(|p| (p, state_json.as_str()));
    let filters = Filters {
        seccomp: ctx.seccomp,
        listener,
        sysinfo: ctx.sysinfo,
    };
    finish_and_exec(process, filters, &exe, ctx.preserve_fds)
}

/// Resolve process.args[0] against the container's PATH (process.env), like execvp, so that a
/// missing program is an error at create time.
pub fn find_executable(process: &Process) -> Result<CString> {
    let args = process.args().as_deref().unwrap_or(&[]);
    let name = args
        .first()
        .ok_or_else(|| Error::Config("field process.args: must not be empty".into()))?;
    let is_exec = |p: &Path| -> bool {
        std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    let found = if name.contains('/') {
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            process.cwd().join(name)
        };
        let not_runnable = |errno| Error::Executable {
            name: name.clone(),
            errno,
            searched: false,
        };
        if !p.exists() {
            return Err(not_runnable(libc::ENOENT));
        }
        if !is_exec(&p) {
            return Err(not_runnable(libc::EACCES));
        }
        p
    } else {
        let path = process
            .env()
            .iter()
            .flatten()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(name))
            .find(|p| is_exec(p))
            .ok_or_else(|| Error::Executable {
                name: name.clone(),
                errno: libc::ENOENT,
                searched: true,
            })?
    };
    sys::cstr(&found)
}

/// Create the cwd if the image lacks it (as runc does), never through a symlink out of root;
/// magic links such as /proc/self/fd/N are refused (CVE-2024-21626).
fn prepare_cwd(process: &Process) -> Result<()> {
    let cwd = process.cwd();
    let root = sys::openat2(
        libc::AT_FDCWD,
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )?;
    match sys::openat2(
        root.as_raw_fd(),
        cwd,
        libc::O_PATH,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    ) {
        Err(e) if e.errno() == Some(libc::ELOOP) || e.errno() == Some(libc::EXDEV) => {
            return Err(Error::Config(format!(
                "field process.cwd: {} goes through a /proc magic link: refused",
                cwd.display()
            )))
        }
        _ => {}
    }
    rootfs::ensure_target(root.as_raw_fd(), cwd, true)
        .map_err(|e| Error::Config(format!("field process.cwd: {}: {e}", cwd.display())))?;
    Ok(())
}

/// chdir into the cwd and make sure it is reachable from our root: a cwd reached through a
/// leaked fd of the host resolves "outside" and getcwd reports it unreachable.
pub fn enter_cwd(process: &Process) -> Result<()> {
    let cwd = process.cwd();
    nix::unistd::chdir(cwd).with_ctx(|| format!("field process.cwd: chdir {}", cwd.display()))?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::Config(format!(
            "field process.cwd: {} is outside the container root: refused",
            cwd.display()
        ))),
    }
}

fn rlimit_resource(t: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

pub fn apply_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let (res, name) = rlimit_resource(r.typ());
        if r.soft() > r.hard() {
            return Err(Error::Config(format!(
                "field process.rlimits: {name} soft limit {} exceeds hard limit {}",
                r.soft(),
                r.hard()
            )));
        }
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: lim is a valid rlimit structure.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = nix::errno::Errno::last();
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: cur is a valid out-pointer.
            unsafe { libc::getrlimit(res, &mut cur) };
            return Err(Error::Config(format!(
                "field process.rlimits: cannot set {name} to soft={} hard={}: {e} (the host's hard limit is {}; raising it needs CAP_SYS_RESOURCE)",
                r.soft(),
                r.hard(),
                fmt_rlim(cur.rlim_max)
            )));
        }
    }
    Ok(())
}

fn fmt_rlim(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// User, capabilities, no_new_privs, seccomp, signals, then execve. Shared by init and exec.
/// Where a seccomp notify listener fd goes: (linux.seccomp.listenerPath, container state JSON).
pub type Listener<'a> = Option<(&'a Path, &'a str)>;

/// The seccomp filters a process gets before execve.
pub struct Filters<'a> {
    /// The spec's `linux.seccomp`, compiled.
    pub seccomp: Option<&'a berth_seccomp::Filter>,
    pub listener: Listener<'a>,
    /// Truthful /proc's sysinfo(2) filter: its listener goes over this socket to the provider.
    pub sysinfo: Option<RawFd>,
}

impl Filters<'_> {
    /// The sysinfo filter first, so that the profile cannot keep it from loading (seccomp(2)
    /// denied); then the profile, whose verdicts win over its where they are stricter.
    fn install(&self) -> Result<()> {
        if let Some(s) = self.sysinfo {
            crate::truthful_proc::install_sysinfo(s);
        }
        if let Some(f) = self.seccomp {
            install_seccomp(f, self.listener)?;
        }
        Ok(())
    }
}

fn install_seccomp(f: &berth_seccomp::Filter, listener: Listener) -> Result<()> {
    if let Some(fd) = f.install()? {
        let (path, state) = listener.ok_or_else(|| {
            Error::Config(
                "field linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener".into(),
            )
        })?;
        berth_seccomp::send_listener_fd(path, state.as_bytes(), fd)?;
        // SAFETY: the listener fd is ours; the agent now holds its own copy.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

pub fn finish_and_exec(
    process: &Process,
    filters: Filters,
    exe: &CString,
    preserve_fds: i32,
) -> Result<std::convert::Infallible> {
    // (AppArmor/SELinux requests were refused in spec::validate when the host lacks them;
    // exec'd processes inherit the container's confinement.)
    apply_rlimits(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    let last = capabilities::last_cap();
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps, last)?;
    }
    if !nnp {
        // Without no_new_privs an unprivileged user could not load a filter later: load it
        // now, while we still hold CAP_SYS_ADMIN (runc does the same).
        filters.install()?;
    }
    sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0)?;
    let user = process.user();
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    if setgroups_allowed {
        nix::unistd::setgroups(&gids).ctx("field process.user.additionalGids: setgroups")?;
    } else if !gids.is_empty() {
        return Err(Error::Config(
            "field process.user.additionalGids: setgroups is denied in this user namespace".into(),
        ));
    }
    nix::unistd::setresgid(user.gid().into(), user.gid().into(), user.gid().into())
        .with_ctx(|| format!("field process.user.gid: setresgid({})", user.gid()))?;
    nix::unistd::setresuid(user.uid().into(), user.uid().into(), user.uid().into())
        .with_ctx(|| format!("field process.user.uid: setresuid({})", user.uid()))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0)?;
    match process.capabilities() {
        Some(caps) => capabilities::apply(caps, last)?,
        None => sys::capset(0, 0, 0)?,
    }
    if let Some(m) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    if nnp {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)?;
    }
    reset_signals();
    // Everything but stdio and the preserved fds is closed at exec.
    sys::cloexec_from(3 + preserve_fds)?;
    let args: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Config("field process.args: contains a NUL byte".into()))?;
    let env: Vec<CString> = process
        .env()
        .iter()
        .flatten()
        .map(|a| CString::new(a.as_str()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Config("field process.env: contains a NUL byte".into()))?;
    if nnp {
        // Last step before exec: nothing after this may need a syscall the profile denies.
        filters.install()?;
    }
    let e = nix::unistd::execve(exe, &args, &env).unwrap_err();
    Err(Error::sys(format!("exec {:?}", exe), e))
}

/// Default dispositions and an empty mask: the runtime's own choices (Rust ignores SIGPIPE,
/// `run` blocks signals for its signalfd) must not leak into the container.
pub fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s == Signal::SIGKILL || s == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound.
        let _ = unsafe { sigaction(s, &dfl) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    );
}
