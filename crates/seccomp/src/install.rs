//! Loading a filter into the kernel, and handing a notify listener to a seccomp agent.

use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::compile::{FLAG_NEW_LISTENER, FLAG_TSYNC};
use crate::{Error, Filter};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;

impl Filter {
    /// Load the filter into the calling thread with seccomp(2) (`SECCOMP_SET_MODE_FILTER` and
    /// the profile's flags). Call in the child just before execve, after
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)` (or with CAP_SYS_ADMIN). Performs no allocation: only
    /// the seccomp (or, on kernels without it and with no flags, prctl) syscall.
    /// Returns the notify listener fd when [`Filter::needs_notify`].
    pub fn install(&self) -> Result<Option<RawFd>, Error> {
        let prog = libc::sock_fprog {
            len: self.prog.len() as libc::c_ushort,
            // SockFilter is #[repr(C)] with the same layout as struct sock_filter.
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `self.prog`, which outlives the call; the kernel copies the
        // program and does not keep the pointer. The flags are SECCOMP_FILTER_FLAG_* bits.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL);
            if errno == libc::ENOSYS && self.flags == 0 {
                // SAFETY: as above; PR_SET_SECCOMP with SECCOMP_MODE_FILTER takes a sock_fprog*.
                let r2 = unsafe {
                    libc::prctl(
                        libc::PR_SET_SECCOMP,
                        SECCOMP_MODE_FILTER,
                        &prog as *const libc::sock_fprog,
                    )
                };
                if r2 == 0 {
                    return Ok(None);
                }
                let errno = std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EINVAL);
                return Err(Error::Sys {
                    syscall: "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)",
                    errno,
                });
            }
            return Err(Error::Sys {
                syscall: "seccomp(SECCOMP_SET_MODE_FILTER)",
                errno,
            });
        }
        if self.flags & FLAG_NEW_LISTENER != 0 {
            return Ok(Some(r as RawFd));
        }
        if self.flags & FLAG_TSYNC != 0 && r > 0 {
            return Err(Error::Tsync(r as i64));
        }
        Ok(None)
    }
}

/// Send a seccomp notify listener fd to the agent listening on the unix socket `listener_path`
/// (OCI `linux.seccomp.listenerPath`): one message whose data is `state_json` (the container
/// process state, as runc sends it) and whose SCM_RIGHTS control message carries `fd`.
pub fn send_listener_fd(listener_path: &Path, state_json: &[u8], fd: RawFd) -> Result<(), Error> {
    let sys = |syscall: &'static str| Error::Sys {
        syscall,
        errno: std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL),
    };
    let bytes = listener_path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(Error::invalid(
            "listenerPath",
            format!(
                "{} is not a usable unix socket path (empty, NUL or longer than 107 bytes)",
                listener_path.display()
            ),
        ));
    }
    if state_json.is_empty() {
        return Err(Error::invalid(
            "listenerPath",
            "empty state message".to_string(),
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket(2) call.
    let sock = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(sys("socket(AF_UNIX)"));
    }
    // SAFETY: `sock` is a fresh fd we own; wrapping it closes it on every return path.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock) };
    use std::os::fd::AsRawFd;
    // SAFETY: addr is a valid sockaddr_un and the length matches its type.
    let r = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        return Err(Error::Invalid {
            field: "listenerPath".to_string(),
            msg: format!(
                "connect({}): {}",
                listener_path.display(),
                std::io::Error::from_raw_os_error(errno)
            ),
        });
    }
    // Control buffer for one fd, aligned for cmsghdr.
    #[repr(C)]
    union Cmsg {
        buf: [u8; 64],
        _align: libc::cmsghdr,
    }
    let mut cbuf = Cmsg { buf: [0; 64] };
    let mut iov = libc::iovec {
        iov_base: state_json.as_ptr() as *mut libc::c_void,
        iov_len: state_json.len(),
    };
    // SAFETY: msghdr is plain old data; zeroed is valid and fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    // SAFETY: writing through the union's byte view of our own stack buffer.
    msg.msg_control = unsafe { cbuf.buf.as_mut_ptr() } as *mut libc::c_void;
    msg.msg_controllen = space;
    // SAFETY: msg_control points at `space` (<= 64) bytes of aligned storage, so CMSG_FIRSTHDR
    // returns a valid header pointer into it, and CMSG_DATA has room for one fd.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::copy_nonoverlapping(
            &fd as *const RawFd as *const u8,
            libc::CMSG_DATA(c),
            std::mem::size_of::<RawFd>(),
        );
    }
    // SAFETY: msg and everything it points to are live for the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(sys("sendmsg(SCM_RIGHTS)"));
    }
    if (n as usize) < state_json.len() {
        // The fd went with the first byte; finish the state message.
        let mut off = n as usize;
        while off < state_json.len() {
            // SAFETY: sending from a live slice.
            let m = unsafe {
                libc::send(
                    sock.as_raw_fd(),
                    state_json[off..].as_ptr() as *const libc::c_void,
                    state_json.len() - off,
                    libc::MSG_NOSIGNAL,
                )
            };
            if m <= 0 {
                return Err(sys("send(listenerPath)"));
            }
            off += m as usize;
        }
    }
    Ok(())
}
