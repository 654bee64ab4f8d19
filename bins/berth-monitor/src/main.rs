//! berth-monitor: one per running container (and per exec). Not a child of berthd (double
//! fork + setsid), a child subreaper; a single-threaded poll(2) loop. Protocol: see
//! `berth_engine::proto`.
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::proto::*;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAX_LINE: usize = 16 * 1024;

fn main() {
    let cfg_path: String;
    berth_runtime::mark("monitor: main");
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: berth-monitor <config.json> | --spare  (started by berthd)");
        std::process::exit(2);
    }
    // The control socket comes as stdin: move it off fd 0 (to a close-on-exec fd) and put
    // /dev/null in its place.
    // SAFETY: fcntl/open/dup2 on fd numbers; the new fd is owned by the UnixStream below.
    let ctl = unsafe {
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
    };
    // A spare detaches at once and waits for the path of its config on the control socket
    // (berthd gone = EOF = exit).
    let spare = args[1] == "--spare";
    if spare {
        // A spare starts up on idle CPU time only, and works at normal priority once it has
        // a container (before anything is forked from it).
        berth_runtime::idle_priority(true);
        detach(&ctl);
        berth_runtime::mark("monitor: spare detached");
        warm_up();
        // Back to normal before we sleep: woken at idle priority, the spare would wait for
        // the CPU behind every runnable task (the client of the `docker run` it serves).
        berth_runtime::idle_priority(false);
        match read_ctl_line(&ctl) {
            Ok(p) if !p.is_empty() => cfg_path = p,
            _ => std::process::exit(0),
        }
        berth_runtime::mark("monitor: spare got its config");
    } else {
        cfg_path = args[1].clone();
    }
    let cfg: MonitorConfig = match std::fs::read(&cfg_path)
        .map_err(anyhow::Error::from)
        .and_then(|b| serde_json::from_slice(&b).map_err(anyhow::Error::from))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(&ctl, "{CTL_ERROR} monitor config {cfg_path}: {e}");
            std::process::exit(1);
        }
    };
    if !spare {
        detach(&ctl);
    }
    berth_runtime::mark("monitor: detached");
    let mut ctl = Some(ctl);
    if let Err(e) = run(&cfg, &mut ctl) {
        let msg = format!("{e:#}");
        if let Some(c) = &ctl {
            let _ = writeln!(&*c, "{CTL_ERROR} {}", msg.replace('\n', " "));
        }
        if let Some(p) = &cfg.monitor_log {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = writeln!(f, "{} {msg}", berth_runtime::state::rfc3339_now());
            }
        }
        std::process::exit(1);
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

/// Leave berthd: the parent exits at once (berthd reaps it), the child carries on in its own
/// session, reparented to init (or the nearest subreaper), as a subreaper itself.
fn detach(ctl: &UnixStream) {
    // SAFETY: single-threaded at this point; the child only continues ordinary code.
    match unsafe { libc::fork() } {
        -1 => {
            let mut c = ctl;
            let _ = writeln!(c, "{CTL_ERROR} fork: {}", std::io::Error::last_os_error());
            std::process::exit(1);
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

struct Client {
    sock: UnixStream,
    hello: AttachHello,
    /// Gone (write failed): dropped at the end of the loop iteration, so indexes into the
    /// poll array stay valid while the iteration runs.
    dead: bool,
    /// Still reading its input.
    reading: bool,
}

struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
    partial: [Vec<u8>; 2],
    /// Encoded entries of the current chunk, written with one write(2).
    pending: Vec<u8>,
    /// Timestamp of the current chunk (one clock read per read(2) of output).
    now: String,
}

/// JSON string body (without quotes) of `b`, invalid UTF-8 replaced (as Docker does).
fn json_escape_into(out: &mut Vec<u8>, b: &[u8]) {
    let text = String::from_utf8_lossy(b);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
}

impl LogWriter {
    fn open(path: &Path, max_size: u64, max_file: u32) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            partial: [Vec::new(), Vec::new()],
            pending: Vec::new(),
            now: String::new(),
        })
    }

    fn write(&mut self, stream: usize, data: &[u8]) {
        self.now = berth_runtime::state::rfc3339_now();
        let mut buf = std::mem::take(&mut self.partial[stream]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.entry(stream, &buf[start..end]);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[stream] = buf;
        self.flush();
    }

    fn flush_partial(&mut self) {
        self.now = berth_runtime::state::rfc3339_now();
        for s in 0..2 {
            let b = std::mem::take(&mut self.partial[s]);
            if !b.is_empty() {
                self.entry(s, &b);
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            if self.file.write_all(&self.pending).is_ok() {
                self.size += self.pending.len() as u64;
            }
            self.pending.clear();
        }
        if self.pending.capacity() > 256 * 1024 {
            self.pending = Vec::new();
        }
    }

    fn entry(&mut self, stream: usize, line: &[u8]) {
        let start = self.pending.len();
        self.pending.extend_from_slice(b"{\"log\":\"");
        json_escape_into(&mut self.pending, line);
        self.pending.extend_from_slice(if stream == 0 {
            b"\",\"stream\":\"stdout\",\"time\":\""
        } else {
            b"\",\"stream\":\"stderr\",\"time\":\""
        });
        self.pending.extend_from_slice(self.now.as_bytes());
        self.pending.extend_from_slice(b"\"}\n");
        if self.max_size > 0
            && self.size + start as u64 > 0
            && self.size + self.pending.len() as u64 > self.max_size
        {
            // This entry does not fit: write what came before it, rotate, keep the entry.
            let entry = self.pending.split_off(start);
            self.flush();
            if self.size > 0 {
                self.rotate();
            }
            self.pending = entry;
        }
    }

    fn rotate(&mut self) {
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.max_file > 1 {
            for i in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        }
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
        {
            self.file = f;
            self.size = 0;
        }
    }
}

/// Drop our page-table entries for file pages we have not modified (our code, read-only data
/// and the libraries'). The container create path touches much code that the steady-state
/// poll loop never runs again; the pages stay in the page cache and fault back in if needed.
/// Only file-backed, non-writable mappings with no anonymous (copied-on-write) pages are
/// touched, so MADV_DONTNEED cannot lose data (relocated RELRO pages are anonymous: skipped).
/// Also drops the part of the stack far below the current frame.
fn trim_memory() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    // (start, end, perms, path, anonymous kB)
    let mut maps: Vec<(usize, usize, String, String, u64)> = Vec::new();
    for l in smaps.lines() {
        let mut f = l.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                let perms = f.next().unwrap_or("").to_string();
                let path = l.split_whitespace().nth(5).unwrap_or("").to_string();
                maps.push((a, b, perms, path, 0));
                continue;
            }
        }
        if first == "Anonymous:" {
            if let (Some(m), Some(kb)) = (
                maps.last_mut(),
                f.next().and_then(|v| v.parse::<u64>().ok()),
            ) {
                m.4 = kb;
            }
        }
    }
    for (a, b, perms, path, anon) in maps {
        if path == "[stack]" {
            let hi = sp.saturating_sub(128 * 1024) & !4095;
            if hi > a {
                // SAFETY: [a, hi) is the part of our own stack more than 128 KiB below the
                // current frame (single-threaded; SIGCHLD comes through a signalfd, no signal
                // handler runs on this stack): no live data; it reads back as zeroes if reused.
                unsafe { libc::madvise(a as *mut libc::c_void, hi - a, libc::MADV_DONTNEED) };
            }
            continue;
        }
        if !path.starts_with('/') || anon != 0 || !(perms == "r-xp" || perms == "r--p") {
            continue;
        }
        // SAFETY: [a, b) is a private, non-writable file mapping of this process without
        // anonymous pages: every resident page equals the file's content and is re-read from
        // the page cache on the next access. Advice (MADV_RANDOM) changes no memory.
        unsafe {
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_RANDOM);
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED);
        }
    }
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe2: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn dup2(from: RawFd, to: RawFd) -> Result<()> {
    // SAFETY: dup2 on valid fds; `to` is one of our stdio slots.
    if unsafe { libc::dup2(from, to) } < 0 {
        bail!("dup2 {from} -> {to}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let _ = berth_runtime::tty::set_winsize(fd, rows, cols);
}

fn read_hello(sock: &UnixStream) -> Result<AttachHello> {
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let mut s = sock;
        match s.read(&mut b) {
            Ok(0) => bail!("attach client closed before its hello"),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => {
                line.push(b[0]);
                if line.len() > 4096 {
                    bail!("attach hello too long");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(serde_json::from_slice(&line)?)
}

fn read_ctl_line(ctl: &UnixStream) -> Result<String> {
    let mut r = BufReader::new(ctl);
    let mut s = String::new();
    r.read_line(&mut s).context("read control channel")?;
    Ok(s.trim().to_string())
}

fn run(cfg: &MonitorConfig, ctl: &mut Option<UnixStream>) -> Result<()> {
    let rt = berth_runtime::Runtime::new(&cfg.runtime_root);
    // Container mode: held until we exit, so berthd knows when our runtime cleanup (after the
    // exit record) is over before it reuses the container's runtime id.
    let _lock = if cfg.mode == Mode::Container {
        Some(hold_lock(&monitor_lock_path(&cfg.attach_socket))?)
    } else {
        None
    };
    // Where the exit record goes (see write_exit_record).
    let exit_dir = cfg
        .exit_file
        .parent()
        .map(File::open)
        .transpose()
        .with_context(|| format!("open the directory of {}", cfg.exit_file.display()))?
        .ok_or_else(|| anyhow!("exit file {} has no directory", cfg.exit_file.display()))?;
    let _ = std::fs::remove_file(&cfg.attach_socket);
    let (_attach_dir, attach_short) = sock_path(&cfg.attach_socket)
        .with_context(|| format!("open the directory of {}", cfg.attach_socket.display()))?;
    let listener = UnixListener::bind(&attach_short)
        .with_context(|| format!("bind {}", cfg.attach_socket.display()))?;
    // Block SIGCHLD and take it through a signalfd in the poll loop.
    // SAFETY: sigset manipulation on a local set; sigprocmask/signalfd take valid pointers.
    let sfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            bail!("signalfd: {}", std::io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;

    // stdio
    let mut out_fd: Option<OwnedFd> = None; // stdout pipe read end or pty master
    let mut err_fd: Option<OwnedFd> = None;
    let mut stdin_w: Option<OwnedFd> = None;
    let console_full = cfg.attach_socket.with_extension("console");
    let (_console_dir, console_path) = sock_path(&console_full)
        .with_context(|| format!("open the directory of {}", console_full.display()))?;
    let console_listener = if cfg.tty {
        let _ = std::fs::remove_file(&console_path);
        Some(
            UnixListener::bind(&console_path)
                .with_context(|| format!("bind {}", console_full.display()))?,
        )
    } else {
        None
    };
    let mut child_ends: Vec<OwnedFd> = Vec::new();
    if !cfg.tty {
        let (or, ow) = pipe()?;
        let (er, ew) = pipe()?;
        if cfg.open_stdin {
            let (ir, iw) = pipe()?;
            dup2(ir.as_raw_fd(), 0)?;
            stdin_w = Some(iw);
            child_ends.push(ir);
        } else {
            dup2(devnull.as_raw_fd(), 0)?;
        }
        dup2(ow.as_raw_fd(), 1)?;
        dup2(ew.as_raw_fd(), 2)?;
        child_ends.push(ow);
        child_ends.push(ew);
        out_fd = Some(or);
        err_fd = Some(er);
    }
    let restore_stdio = |d: &File| {
        for fd in 0..3 {
            let _ = dup2(d.as_raw_fd(), fd);
        }
    };

    let ctl_sock = ctl
        .as_ref()
        .ok_or_else(|| anyhow!("no control channel"))?
        .try_clone()?;
    let mut main_pid: i32;
    // The state `create` returned: start and the exit path use it instead of reading it back.
    let mut created: Option<berth_runtime::state::State> = None;
    let mut mntns: Option<File> = None;
    match cfg.mode {
        Mode::Container => {
            let opts = berth_runtime::CreateOpts {
                id: cfg.id.clone(),
                bundle: cfg.bundle.clone(),
                console_socket: if cfg.tty {
                    Some(console_path.clone())
                } else {
                    None
                },
                ..Default::default()
            };
            berth_runtime::mark("monitor: runtime create");
            let r = rt.create(&opts);
            restore_stdio(&devnull);
            child_ends.clear();
            let st = r.map_err(|e| anyhow!("{e}"))?;
            main_pid = st.pid;
            created = Some(st);
            // Hold the container's mount namespace: when its last process exits, the kernel
            // then has no mount table to take down (an unmount of every mount and an RCU
            // grace period) before it tells us of the exit. We drop it after the exit
            // record, at idle priority.
            mntns = std::fs::File::open(format!("/proc/{main_pid}/ns/mnt")).ok();
            if let Some(l) = &console_listener {
                let (s, _) = l.accept().context("accept console socket")?;
                let m = berth_runtime::sys::recv_fd(s.as_raw_fd())
                    .map_err(|e| anyhow!("receive pty master: {e}"))?;
                out_fd = Some(m);
            }
            writeln!(&ctl_sock, "{CTL_CREATED} {main_pid}")?;
            berth_runtime::mark("monitor: sent created");
        }
        Mode::Exec => {
            main_pid = 0;
            writeln!(&ctl_sock, "{CTL_READY}")?;
        }
    }
    let cmd = read_ctl_line(&ctl_sock)?;
    // "go": berthd released the container's process itself.
    let released = cmd == CTL_GO && cfg.mode == Mode::Container;
    if cmd != CTL_START && !released {
        if cfg.mode == Mode::Container {
            let _ = rt.delete(&cfg.id, true);
        }
        bail!("berthd did not ask to start (got {cmd:?})");
    }
    match cfg.mode {
        Mode::Container if released => {}
        Mode::Container => {
            let st = created
                .as_ref()
                .ok_or_else(|| anyhow!("no state from create"))?;
            if let Err(e) = rt.start_loaded(st) {
                let _ = rt.delete(&cfg.id, true);
                bail!("{e}");
            }
        }
        Mode::Exec => {
            let pv = cfg
                .process
                .clone()
                .ok_or_else(|| anyhow!("exec without a process"))?;
            let process: oci_spec::runtime::Process =
                serde_json::from_value(pv).context("exec process")?;
            let pid_file = cfg.attach_socket.with_extension("pid");
            let opts = berth_runtime::ExecOpts {
                console_socket: if cfg.tty {
                    Some(console_path.clone())
                } else {
                    None
                },
                detach: true,
                pid_file: Some(pid_file.clone()),
                preserve_fds: 0,
            };
            let r = rt.exec(&cfg.id, &process, &opts);
            restore_stdio(&devnull);
            child_ends.clear();
            r.map_err(|e| anyhow!("{e}"))?;
            main_pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| anyhow!("exec: no pid in {}", pid_file.display()))?;
            let _ = std::fs::remove_file(&pid_file);
            if let Some(l) = &console_listener {
                let (s, _) = l.accept().context("accept console socket")?;
                let m = berth_runtime::sys::recv_fd(s.as_raw_fd())
                    .map_err(|e| anyhow!("receive pty master: {e}"))?;
                out_fd = Some(m);
            }
        }
    }
    if let Some(l) = console_listener {
        drop(l);
        let _ = std::fs::remove_file(&console_path);
    }
    if cfg.tty {
        if let (Some(m), Some((r, c))) = (&out_fd, cfg.initial_size) {
            set_winsize(m.as_raw_fd(), r, c);
        }
    }
    if !released {
        writeln!(&ctl_sock, "{CTL_STARTED} {main_pid}")?;
        berth_runtime::mark("monitor: sent started");
    }
    // The clients berthd connected before start see all output: the process may run already,
    // but nothing of its output is read before the loop below, which has them.
    let mut clients: Vec<Client> = Vec::new();
    listener.set_nonblocking(true)?;
    accept_clients(&listener, &mut clients, cfg.tty, out_fd.as_ref());
    // Only the cgroup is needed from here on (the spec in the state is big).
    let cgroup = created.take().and_then(|st| st.cgroup);
    drop(ctl_sock);
    *ctl = None;
    // The first trim waits until the container has run for a moment: a short-lived one
    // (`docker run --rm IMG true`) would otherwise make us fault our exit path back in.
    let started = Instant::now();
    let mut last_trim: Option<Instant> = None;

    let mut log = match &cfg.log_path {
        Some(p) => Some(LogWriter::open(p, cfg.log_max_size, cfg.log_max_file)?),
        None => None,
    };
    let mut exit: Option<(i32, Instant)> = None;
    let mut deleted = false;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Some((_, at)) = exit {
            let outputs_open = out_fd.is_some() || err_fd.is_some();
            if !outputs_open {
                break;
            }
            // Something else still holds the output open: end it (container mode kills the
            // rest of the cgroup) and stop waiting after a grace period.
            if at.elapsed() > Duration::from_millis(200) && !deleted && cfg.mode == Mode::Container
            {
                let _ = rt.delete(&cfg.id, true);
                deleted = true;
            }
            if at.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(4 + clients.len());
        let pfd = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        pfds.push(pfd(sfd.as_raw_fd()));
        pfds.push(pfd(listener.as_raw_fd()));
        pfds.push(pfd(out_fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)));
        pfds.push(pfd(err_fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)));
        for c in &clients {
            pfds.push(pfd(if c.reading || c.hello.watch {
                c.sock.as_raw_fd()
            } else {
                -1
            }));
        }
        // Wake every 10 s to trim memory again (see trim_memory), 50 ms after the start for the
        // first trim; 100 ms while finishing.
        let timeout = if exit.is_some() {
            100
        } else if last_trim.is_none() {
            50
        } else {
            10_000
        };
        let due = match last_trim {
            None => started.elapsed() >= Duration::from_millis(50),
            Some(t) => t.elapsed() > Duration::from_secs(10),
        };
        if due && exit.is_none() {
            trim_memory();
            last_trim = Some(Instant::now());
        }
        // SAFETY: pfds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            bail!("poll: {e}");
        }
        // SIGCHLD
        if pfds[0].revents != 0 {
            let mut si = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
            // SAFETY: reading a signalfd into a buffer of the right size.
            while unsafe { libc::read(sfd.as_raw_fd(), si.as_mut_ptr().cast(), si.len()) } > 0 {}
            loop {
                let mut status = 0;
                // SAFETY: waitpid with a valid status pointer.
                let p = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if p <= 0 {
                    break;
                }
                if p == main_pid && exit.is_none() {
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        255
                    };
                    exit = Some((code, Instant::now()));
                    berth_runtime::mark("monitor: main process reaped");
                }
            }
        }
        // output
        for (idx, stream) in [(2usize, 0usize), (3, 1)] {
            if pfds[idx].revents == 0 {
                continue;
            }
            let fdo = if stream == 0 {
                &mut out_fd
            } else {
                &mut err_fd
            };
            let Some(fd) = fdo.as_ref() else { continue };
            // SAFETY: reading into our buffer from an fd we own.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) {
                    continue;
                }
                *fdo = None; // EIO: pty slave closed
                continue;
            }
            if r == 0 {
                *fdo = None;
                continue;
            }
            let data = &buf[..r as usize];
            if let Some(l) = log.as_mut() {
                l.write(stream, data);
            }
            let mut frame = Vec::new();
            if !cfg.tty {
                frame.push(stream as u8 + 1);
                frame.extend_from_slice(&[0, 0, 0]);
                frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
            }
            frame.extend_from_slice(data);
            for c in clients.iter_mut() {
                let want = if stream == 0 {
                    c.hello.stdout
                } else {
                    c.hello.stderr
                };
                if want && !c.dead && (&c.sock).write_all(&frame).is_err() {
                    c.dead = true;
                }
            }
        }
        // new clients
        if pfds[1].revents != 0 {
            accept_clients(&listener, &mut clients, cfg.tty, out_fd.as_ref());
        }
        // client input
        let mut i = 0;
        let mut close_stdin = false;
        // Only the clients that were in the poll array (new ones were appended after it).
        let polled = pfds.len().saturating_sub(4);
        clients.retain_mut(|c| {
            let idx = 4 + i;
            i += 1;
            if c.dead {
                return false;
            }
            if i > polled || pfds.get(idx).is_none_or(|p| p.revents == 0) {
                return true;
            }
            let mut b = [0u8; 8192];
            match (&c.sock).read(&mut b) {
                Ok(0) | Err(_) => {
                    if c.hello.watch {
                        return false;
                    }
                    if c.reading && cfg.stdin_once {
                        close_stdin = true;
                    }
                    c.reading = false;
                    // A client with nothing to receive is done.
                    c.hello.stdout || c.hello.stderr
                }
                Ok(n) => {
                    if c.hello.stdin {
                        let target = if cfg.tty {
                            out_fd.as_ref()
                        } else {
                            stdin_w.as_ref()
                        };
                        if let Some(t) = target {
                            // SAFETY: writing our buffer to an fd we own.
                            unsafe { libc::write(t.as_raw_fd(), b.as_ptr().cast(), n) };
                        }
                    }
                    true
                }
            }
        });
        if close_stdin {
            stdin_w = None;
        }
    }
    if let Some(l) = log.as_mut() {
        l.flush_partial();
    }
    berth_runtime::mark("monitor: output drained");
    let code = exit.map(|e| e.0).unwrap_or(255);
    let mut oom = false;
    if cfg.mode == Mode::Container {
        if let Some(cg) = &cgroup {
            oom = cg.oom_kill_count().map(|n| n > 0).unwrap_or(false);
        }
        berth_runtime::mark("monitor: oom count read");
    }
    let rec = ExitRecord {
        exit_code: code,
        finished_at: berth_runtime::state::rfc3339_now(),
        oom_killed: oom,
        error: String::new(),
        pid: main_pid,
    };
    let data = serde_json::to_vec(&rec)?;
    let _ = std::fs::remove_file(&cfg.attach_socket);
    // An exec's record is read from the file when its output ends (exec inspect right after
    // the stream): written before the clients are closed.
    if cfg.mode == Mode::Exec {
        write_exit_record(&exit_dir, &cfg.exit_file, &data)?;
    }
    // Watchers learn of the exit now, record included; a container's file (for a berthd that
    // is away) and the runtime cleanup (cgroup removal: most of the time of the exit path)
    // come after, under our lock.
    let mut line = format!("{WATCH_EXIT} ").into_bytes();
    line.extend_from_slice(&data);
    line.push(b'\n');
    for c in &clients {
        if c.hello.watch && !c.dead {
            let _ = (&c.sock).write_all(&line);
        }
        let _ = c.sock.shutdown(std::net::Shutdown::Both);
    }
    berth_runtime::mark("monitor: watchers told");
    if cfg.mode == Mode::Container {
        write_exit_record(&exit_dir, &cfg.exit_file, &data)?;
        berth_runtime::mark("monitor: exit record written");
    }
    if cfg.mode == Mode::Container && !deleted {
        // Clean-up nobody waits for: on idle CPU time (the client that waited for the exit is
        // finishing now).
        berth_runtime::idle_priority(true);
        std::thread::sleep(Duration::from_millis(cfg.cleanup_delay_ms));
        drop(mntns.take());
        if let Err(e) = rt.delete(&cfg.id, true) {
            if let Some(p) = &cfg.monitor_log {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                {
                    let _ = writeln!(f, "delete {}: {e}", cfg.id);
                }
            }
        }
        berth_runtime::mark("monitor: runtime state deleted");
    }
    Ok(())
}

/// Accept the connections waiting on the (non-blocking) attach listener: attach and watch
/// clients join `clients`; a resize request is carried out (`tty`: on the pty master
/// `out_fd`) and answered at once.
fn accept_clients(
    listener: &UnixListener,
    clients: &mut Vec<Client>,
    tty: bool,
    out_fd: Option<&OwnedFd>,
) {
    while let Ok((s, _)) = listener.accept() {
        let _ = s.set_nonblocking(false);
        let Ok(h) = read_hello(&s) else { continue };
        if let Some((r, c)) = h.resize {
            if let (true, Some(m)) = (tty, out_fd) {
                set_winsize(m.as_raw_fd(), r, c);
            }
            let _ = (&s).write_all(b"ok\n");
            continue;
        }
        clients.push(Client {
            sock: s,
            dead: false,
            reading: h.stdin,
            hello: h,
        });
    }
}

/// Write the exit record as `exit_file`'s name in `dir` (the directory `exit_file` was in when
/// we started: an AutoRemove renames it away once the watchers know), write-then-rename.
fn write_exit_record(dir: &File, exit_file: &Path, data: &[u8]) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let name = exit_file
        .file_name()
        .ok_or_else(|| anyhow!("exit file {} has no name", exit_file.display()))?;
    let fin = CString::new(name.as_bytes())?;
    let tmp = CString::new([b".", name.as_bytes(), b".tmp"].concat())?;
    // SAFETY: openat on a directory fd we own with a NUL-terminated name; the fd is checked
    // and then owned by the File.
    let f = unsafe {
        let fd = libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("create {}.tmp", exit_file.display()));
        }
        File::from_raw_fd(fd)
    };
    (&f).write_all(data)
        .with_context(|| format!("write {}.tmp", exit_file.display()))?;
    drop(f);
    // SAFETY: renameat within a directory fd we own, NUL-terminated names.
    if unsafe { libc::renameat(dir.as_raw_fd(), tmp.as_ptr(), dir.as_raw_fd(), fin.as_ptr()) } != 0
    {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("rename into {}", exit_file.display()));
    }
    Ok(())
}

/// An exclusive flock on `path` (created if needed), held while the returned file is open.
fn hold_lock(path: &Path) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!(
            "lock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(f)
}
