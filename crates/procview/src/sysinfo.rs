//! sysinfo(2) with the container's figures, answered by the provider through a seccomp
//! user-notification listener (as LXD does).
//!
//! The container's init loads [`install_filter`] — a 6-instruction filter of its own, stacked
//! under the container's seccomp profile (the kernel applies the most restrictive verdict of
//! all filters: a profile that denies sysinfo still denies it) — and sends the listener fd
//! over a connection to the provider's socket `<state dir>/procview.sock` that the runtime
//! opened before the clone ([`connect`], [`send_fd`]); an exec'd process does the same with
//! its own filter and connection. The provider polls the listeners
//! ([`Sysinfo`]) and answers each call: the notification is read, its id checked valid
//! before and after the `struct sysinfo` is written into the caller's memory
//! (`process_vm_writev`), then the reply is `0`. A call it cannot answer (another
//! architecture, memory it cannot reach) is let through to the kernel
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the host's figures); a bad pointer gets EFAULT, as
//! from the kernel. The caller never waits on anything but the provider's loop.
//!
//! If the provider dies, its listener closes and the kernel fails the calls the filter
//! catches with ENOSYS (pending ones too): that container's `free`/`uptime` then fail, nobody
//! else's. Needs Linux 5.5 (user notification 5.0, CONTINUE 5.5): [`supported`].

use crate::cgroup::Memory;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xC000_00F3;
#[cfg(target_arch = "s390x")]
const AUDIT_ARCH: u32 = 0x8000_0016;
#[cfg(target_arch = "powerpc64")]
const AUDIT_ARCH: u32 = if cfg!(target_endian = "little") {
    0xC000_0015
} else {
    0x8000_0015
};

/// Elsewhere: not served ([`supported`] says so).
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "powerpc64"
)))]
const AUDIT_ARCH: u32 = 0;

/// The old number of SECCOMP_IOCTL_NOTIF_ID_VALID (_IOR), the only one before Linux 5.8.
const ID_VALID_OLD: libc::c_ulong = 0x8008_2102;
/// Loads are shifted by SI_LOAD_SHIFT (16) in sysinfo, FSHIFT (11) in the kernel's avenrun.
const LOAD_SHIFT: u32 = 16 - 11;

/// What the provider knows of the container, for one answer.
pub struct Figures {
    /// The kernel's fixed-point load averages (FSHIFT = 11 bits).
    pub avenrun: [u64; 3],
    pub uptime_ns: u64,
    pub threads: usize,
    pub memory: Memory,
}

/// Whether this kernel can serve sysinfo through the provider: Err names what is missing.
pub fn supported() -> Result<(), String> {
    if AUDIT_ARCH == 0 {
        return Err("not served on this architecture".into());
    }
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes the struct we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if r < 0 {
        return Err(format!(
            "no seccomp user notification in this kernel (Linux 5.0+): {}",
            std::io::Error::last_os_error()
        ));
    }
    if usize::from(sizes.seccomp_notif) > std::mem::size_of::<libc::seccomp_notif>()
        || usize::from(sizes.seccomp_notif_resp) > std::mem::size_of::<libc::seccomp_notif_resp>()
    {
        return Err("the kernel's seccomp notification structs are larger than berth's".into());
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) < (5, 5) {
        return Err(format!(
            "Linux {}: SECCOMP_USER_NOTIF_FLAG_CONTINUE needs 5.5",
            release.trim()
        ));
    }
    Ok(())
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter: sysinfo of the native architecture -> USER_NOTIF, everything else ALLOW.
fn program() -> [libc::sock_filter; 6] {
    const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    [
        insn(LD_ABS, 0, 0, 4), // seccomp_data.arch
        insn(JEQ, 0, 3, AUDIT_ARCH),
        insn(LD_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JEQ, 0, 1, libc::SYS_sysinfo as u32),
        insn(RET, 0, 0, libc::SECCOMP_RET_USER_NOTIF),
        insn(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Load the sysinfo filter into the calling thread and return its listener. Call where the
/// container's own filter is loaded (no_new_privs set, or CAP_SYS_ADMIN held), before it.
/// Fails with EBUSY when a filter with a listener is loaded already.
pub fn install_filter() -> std::io::Result<OwnedFd> {
    let prog = program();
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new listener fd owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Control buffer for one fd, aligned for cmsghdr.
#[repr(C)]
union Cmsg {
    buf: [u8; 64],
    _align: libc::cmsghdr,
}

/// Send `fd` over the connected socket `sock` (SCM_RIGHTS, one byte of data).
pub fn send_fd(sock: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut byte = [b'L'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = Cmsg { buf: [0; 64] };
    // SAFETY: msghdr is plain old data; zeroed is valid and fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: reading the address of our own stack buffer through the union.
    msg.msg_control = unsafe { cbuf.buf.as_mut_ptr() }.cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: msg_control has CMSG_SPACE(4) <= 64 aligned bytes: CMSG_FIRSTHDR is non-null
    // and CMSG_DATA has room for one fd.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&fd as *const RawFd).cast::<u8>(),
            libc::CMSG_DATA(c),
            std::mem::size_of::<RawFd>(),
        );
    }
    // SAFETY: msg and what it points to live across the call.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Receive the fd [`send_fd`] sent; None on EOF or a message without one.
fn recv_fd(sock: RawFd) -> Option<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = Cmsg { buf: [0; 64] };
    // SAFETY: as in send_fd.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: as in send_fd.
    msg.msg_control = unsafe { cbuf.buf.as_mut_ptr() }.cast();
    msg.msg_controllen = std::mem::size_of::<Cmsg>() as _;
    // SAFETY: msg points at live buffers of the sizes it states.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT) };
    if n <= 0 {
        return None;
    }
    // SAFETY: the kernel filled msg_control; CMSG_FIRSTHDR checks msg_controllen.
    let c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if c.is_null() {
        return None;
    }
    // SAFETY: c is a header inside cbuf, written by the kernel.
    let (level, kind) = unsafe { ((*c).cmsg_level, (*c).cmsg_type) };
    if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
        return None;
    }
    let mut fd: RawFd = -1;
    // SAFETY: an SCM_RIGHTS message carries at least one fd after the header.
    unsafe {
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(c),
            (&mut fd as *mut RawFd).cast::<u8>(),
            std::mem::size_of::<RawFd>(),
        )
    };
    // SAFETY: the fd was just received and is owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `struct sysinfo` the container gets: the host's, with its memory (when limited),
/// uptime, loads and thread count replaced. Byte units (mem_unit 1), as the kernel's on 64 bit.
pub fn render(host: &libc::sysinfo, f: &Figures) -> libc::sysinfo {
    let mut s = *host;
    let unit = u64::from(host.mem_unit.max(1));
    #[allow(clippy::useless_conversion)] // c_ulong is u32 on 32-bit targets
    let bytes = |v: libc::c_ulong| u64::from(v).saturating_mul(unit);
    let (mut total, mut free) = (bytes(host.totalram), bytes(host.freeram));
    let (mut shared, mut buffer) = (bytes(host.sharedram), bytes(host.bufferram));
    let host_swap = bytes(host.totalswap);
    let (mut swap, mut swap_free) = (host_swap, bytes(host.freeswap));
    if let Some(limit) = f.memory.limit {
        let m = &f.memory;
        total = limit.min(total);
        free = total.saturating_sub(m.usage);
        shared = m.shmem.min(total);
        buffer = 0;
        swap = m.swap_limit.map_or(host_swap, |l| l.min(host_swap));
        swap_free = swap.saturating_sub(m.swap_usage);
    }
    s.totalram = total as libc::c_ulong;
    s.freeram = free as libc::c_ulong;
    s.sharedram = shared as libc::c_ulong;
    s.bufferram = buffer as libc::c_ulong;
    s.totalswap = swap as libc::c_ulong;
    s.freeswap = swap_free as libc::c_ulong;
    s.totalhigh = 0;
    s.freehigh = 0;
    s.mem_unit = 1;
    // The kernel rounds a partial second up.
    s.uptime = f.uptime_ns.div_ceil(1_000_000_000) as libc::c_long;
    for (l, a) in s.loads.iter_mut().zip(f.avenrun) {
        *l = (a << LOAD_SHIFT) as libc::c_ulong;
    }
    s.procs = f.threads.min(u16::MAX.into()) as u16;
    s
}

const SIZE: usize = std::mem::size_of::<libc::sysinfo>();

/// The struct as the caller's memory gets it: every field at its offset, padding zero (no
/// byte of the provider's stack goes into the container).
fn to_bytes(s: &libc::sysinfo) -> [u8; SIZE] {
    use std::mem::offset_of;
    let mut b = [0u8; SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    // Each scalar field at its offset, in native byte order.
    macro_rules! put_fields {
        ($($field:ident),*) => {
            $(put(offset_of!(libc::sysinfo, $field), &s.$field.to_ne_bytes());)*
        };
    }
    put_fields!(uptime);
    let l = offset_of!(libc::sysinfo, loads);
    let w = std::mem::size_of::<libc::c_ulong>();
    for (i, v) in s.loads.iter().enumerate() {
        put(l + i * w, &v.to_ne_bytes());
    }
    put_fields!(
        totalram, freeram, sharedram, bufferram, totalswap, freeswap, procs, totalhigh, freehigh,
        mem_unit
    );
    b
}

/// How a notification is answered.
enum Reply {
    Done,
    Errno(i32),
    Continue,
}

/// The provider's side: its listening socket, connections from the runtime that will carry
/// a listener fd (one per init or exec), and the listeners. [`Sysinfo::pollfds`] and
/// [`Sysinfo::handle`] hook into its poll loop.
#[derive(Default)]
pub struct Sysinfo {
    listen: Option<OwnedFd>,
    conns: Vec<OwnedFd>,
    listeners: Vec<OwnedFd>,
}

/// At most this many connections and listeners at once (execs in flight, say): more are
/// refused (closed), so nothing can make the provider run out of fds.
const MAX_FDS: usize = 512;

impl Sysinfo {
    /// `listen`: the socket [`listen`] made (None: sysinfo is not served).
    pub fn new(listen: Option<OwnedFd>) -> Sysinfo {
        Sysinfo {
            listen,
            conns: Vec::new(),
            listeners: Vec::new(),
        }
    }

    /// Append a pollfd for the listening socket, then one per connection and per listener.
    pub fn pollfds(&self, out: &mut Vec<libc::pollfd>) {
        for fd in self.listen.iter().chain(&self.conns).chain(&self.listeners) {
            out.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
    }

    /// Serve what `fds` (as [`Sysinfo::pollfds`] made them, after poll) says is ready.
    /// `figures` is called only when a notification is to be answered.
    pub fn handle(&mut self, fds: &[libc::pollfd], mut figures: impl FnMut() -> Figures) {
        let (listen_fds, rest) = fds.split_at(self.listen.iter().count().min(fds.len()));
        let (conn_fds, listener_fds) = rest.split_at(self.conns.len().min(rest.len()));
        // Listeners first: the new ones were not polled (their pollfds come next time).
        let mut keep = Vec::with_capacity(self.listeners.len());
        for (l, p) in self.listeners.iter().zip(listener_fds) {
            let ok = if p.revents & libc::POLLIN != 0 {
                answer(l.as_raw_fd(), &mut figures)
            } else {
                // POLLHUP: every process of the filter is gone.
                p.revents == 0
            };
            keep.push(ok);
        }
        let mut keep = keep.into_iter();
        self.listeners.retain(|_| keep.next().unwrap_or(true));
        let mut keep = Vec::with_capacity(self.conns.len());
        for (c, p) in self.conns.iter().zip(conn_fds) {
            // One message per connection: the listener, or EOF (the process failed or took
            // no filter).
            let ready = p.revents != 0;
            if ready {
                self.listeners
                    .extend(recv_fd(c.as_raw_fd()).filter(|fd| is_listener(fd.as_raw_fd())));
            }
            keep.push(!ready);
        }
        let mut keep = keep.into_iter();
        self.conns.retain(|_| keep.next().unwrap_or(true));
        if let (Some(l), Some(p)) = (&self.listen, listen_fds.first()) {
            if p.revents != 0 {
                accept_all(l.as_raw_fd(), &mut self.conns, self.listeners.len());
            }
        }
    }
}

fn accept_all(listen: RawFd, conns: &mut Vec<OwnedFd>, listeners: usize) {
    loop {
        // SAFETY: accept4 with no address buffers.
        let fd = unsafe {
            libc::accept4(
                listen,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            return; // EAGAIN: none left (the socket is non-blocking)
        }
        // SAFETY: a new fd owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if conns.len() + listeners < MAX_FDS {
            conns.push(fd);
        }
    }
}

/// Whether `fd` is a seccomp notification listener (anything else sent here is dropped).
fn is_listener(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|t| t.as_os_str() == "anon_inode:seccomp notify")
}

/// `<dir>/procview.sock`, reached through an O_PATH fd of `dir` so that a long state path
/// does not overflow sun_path.
fn with_sock_addr<T>(
    dir: &Path,
    f: impl FnOnce(&libc::sockaddr_un) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let d = std::fs::File::open(dir)?;
    let path = format!("/proc/self/fd/{}/{SOCK_NAME}", d.as_raw_fd());
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path.as_bytes()) {
        *d = *s as libc::c_char;
    }
    f(&addr)
}

/// The socket's name in the container's state directory.
pub const SOCK_NAME: &str = "procview.sock";

fn socket(flags: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | flags, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

const ADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;

/// The provider's listening socket, `<dir>/procview.sock` (made by the runtime before the
/// provider starts; `dir` is the container's root-only state directory).
pub fn listen(dir: &Path) -> std::io::Result<OwnedFd> {
    let s = socket(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)?;
    let _ = std::fs::remove_file(dir.join(SOCK_NAME));
    with_sock_addr(dir, |a| {
        // SAFETY: a is a valid sockaddr_un of ADDR_LEN bytes.
        if unsafe {
            libc::bind(
                s.as_raw_fd(),
                (a as *const libc::sockaddr_un).cast(),
                ADDR_LEN,
            )
        } < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })?;
    // SAFETY: listen on our socket.
    if unsafe { libc::listen(s.as_raw_fd(), 64) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s)
}

/// A connection to the provider of the container whose state directory is `dir`, for one
/// process's listener ([`send_fd`]). Err when no provider serves sysinfo there.
pub fn connect(dir: &Path) -> std::io::Result<OwnedFd> {
    let s = socket(libc::SOCK_CLOEXEC)?;
    with_sock_addr(dir, |a| {
        // SAFETY: a is a valid sockaddr_un of ADDR_LEN bytes.
        let r = unsafe {
            libc::connect(
                s.as_raw_fd(),
                (a as *const libc::sockaddr_un).cast(),
                ADDR_LEN,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    })?;
    Ok(s)
}

fn id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: the ioctl reads the u64 we own.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &id) };
    if r == 0 {
        return true;
    }
    if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above, with the number kernels before 5.8 know.
        return unsafe { libc::ioctl(listener, ID_VALID_OLD as _, &id) } == 0;
    }
    false
}

/// Read one notification and answer it; a caller that went away meanwhile needs nothing.
/// False when the listener is broken (drop it).
fn answer(listener: RawFd, figures: &mut impl FnMut() -> Figures) -> bool {
    // SAFETY: all-zero is a valid seccomp_notif, and RECV requires it zeroed.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV fills the struct we own (its size checked by `supported`).
    if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req) } < 0 {
        // ENOENT: the caller was killed before we read it.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT);
    }
    let reply = if req.data.arch != AUDIT_ARCH || req.data.nr != libc::SYS_sysinfo as i32 {
        Reply::Continue
    } else if !id_valid(listener, req.id) {
        return true;
    } else {
        write_answer(&req, &figures())
    };
    if !id_valid(listener, req.id) {
        return true;
    }
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match reply {
        Reply::Done => {}
        Reply::Errno(e) => resp.error = -e,
        Reply::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    // SAFETY: SEND reads the struct we own. ENOENT (the caller is gone) needs nothing.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &resp) };
    true
}

/// Write the container's `struct sysinfo` at the caller's first argument.
fn write_answer(req: &libc::seccomp_notif, f: &Figures) -> Reply {
    // SAFETY: all-zero is a valid sysinfo; the call fills it.
    let mut host: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo writes the struct we own.
    if unsafe { libc::sysinfo(&mut host) } < 0 {
        return Reply::Continue;
    }
    let bytes = to_bytes(&render(&host, f));
    let size = bytes.len();
    let local = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: size,
    };
    let remote = libc::iovec {
        iov_base: req.data.args[0] as usize as *mut libc::c_void,
        iov_len: size,
    };
    // SAFETY: reads `size` bytes of our `s`; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_writev(req.pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n == size as isize {
        return Reply::Done;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        // A bad pointer (or a partial write): what the kernel's sysinfo says too.
        _ if n >= 0 => Reply::Errno(libc::EFAULT),
        Some(libc::EFAULT) => Reply::Errno(libc::EFAULT),
        // Cannot reach the caller's memory (ptrace policy, ...): the host's answer.
        _ => Reply::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> libc::sysinfo {
        // SAFETY: all-zero is a valid sysinfo.
        let mut h: libc::sysinfo = unsafe { std::mem::zeroed() };
        h.totalram = 1 << 20;
        h.freeram = 1 << 19;
        h.totalswap = 1 << 18;
        h.freeswap = 1 << 18;
        h.mem_unit = 4096;
        h.uptime = 99999;
        h.procs = 900;
        h
    }

    #[test]
    fn limited_memory_uptime_loads_procs() {
        let f = Figures {
            avenrun: [2048, 1024, 0],
            uptime_ns: 1_500_000_000,
            threads: 3,
            memory: Memory {
                limit: Some(64 << 20),
                usage: 10 << 20,
                shmem: 1 << 20,
                swap_limit: Some(0),
                ..Default::default()
            },
        };
        let s = render(&host(), &f);
        assert_eq!(s.mem_unit, 1);
        assert_eq!(s.totalram, 64 << 20);
        assert_eq!(s.freeram, 54 << 20);
        assert_eq!(s.sharedram, 1 << 20);
        assert_eq!((s.totalswap, s.freeswap), (0, 0));
        assert_eq!(s.uptime, 2, "a partial second rounds up");
        assert_eq!(s.loads, [65536, 32768, 0], "1.0 and 0.5 in SI_LOAD_SHIFT");
        assert_eq!(s.procs, 3);
    }

    #[test]
    fn unlimited_memory_is_the_hosts_in_bytes() {
        let f = Figures {
            avenrun: [0; 3],
            uptime_ns: 0,
            threads: 70000,
            memory: Memory::default(),
        };
        let s = render(&host(), &f);
        assert_eq!(s.totalram, (1 << 20) * 4096);
        assert_eq!(s.freeram, (1 << 19) * 4096);
        assert_eq!(s.totalswap, (1 << 18) * 4096);
        assert_eq!(s.procs, u16::MAX);
    }

    #[test]
    fn bytes_read_back_as_the_struct() {
        let mut s = host();
        s.loads = [1, 2, 3];
        s.sharedram = 7;
        let b = to_bytes(&s);
        // SAFETY: b is SIZE bytes, the struct's size; read_unaligned needs no alignment.
        let back: libc::sysinfo = unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) };
        assert_eq!(back.loads, [1, 2, 3]);
        assert_eq!(
            (back.totalram, back.freeram, back.sharedram),
            (s.totalram, s.freeram, 7)
        );
        assert_eq!((back.uptime, back.procs, back.mem_unit), (99999, 900, 4096));
    }

    #[test]
    fn the_filter_notifies_sysinfo_only() {
        let p = program();
        assert_eq!(p.len(), 6);
        assert_eq!(p[1].k, AUDIT_ARCH);
        assert_eq!(p[3].k, libc::SYS_sysinfo as u32);
        // Jumps land on the two returns.
        assert_eq!(1 + 1 + p[1].jf as usize, 5);
        assert_eq!(3 + 1 + p[3].jf as usize, 5);
        assert_eq!(p[4].k, libc::SECCOMP_RET_USER_NOTIF);
    }
}
