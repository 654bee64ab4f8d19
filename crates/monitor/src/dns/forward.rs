//! Queries on their way to an upstream resolver: each on its own socket (made in the
//! monitor's network namespace, the host's), connected to the upstream so that only its
//! answers arrive, with a fresh random ID; UDP for a query that came over UDP, TCP for one
//! that came over TCP. An upstream that does not answer in time is replaced by the next.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

/// How long one upstream has to answer.
pub(crate) const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// Who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    Udp(SocketAddr),
    /// A TCP connection, by its number.
    Tcp(u64),
}

enum Sock {
    Udp(UdpSocket),
    /// Connecting, then writing `out[sent..]`, then reading a length-prefixed answer.
    Tcp {
        s: TcpStream,
        out: Vec<u8>,
        sent: usize,
        got: Vec<u8>,
    },
}

pub(crate) struct Pending {
    pub asker: Asker,
    /// The asker's ID (ours replaces it on the way up).
    pub id: u16,
    /// The query, with our ID.
    query: Vec<u8>,
    upstream: usize,
    pub deadline: Instant,
    sock: Sock,
}

/// What a served socket gave.
pub(crate) enum Progress {
    Waiting,
    /// The answer, with the asker's ID back.
    Answer(Vec<u8>),
    /// This upstream failed: try the next.
    Failed,
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 2 {
        // (No entropy: the connected socket's random port still guards the answer.)
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (t ^ (t >> 16)) as u16;
    }
    u16::from_ne_bytes(b)
}

/// A non-blocking TCP connect (the poll loop waits for it).
fn tcp_connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    let domain = if to.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) with constant arguments; the fd is owned by the TcpStream below.
    let fd: RawFd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new socket nobody else owns.
    let s = unsafe { TcpStream::from_raw_fd(fd) };
    let (addr, len) = sockaddr(to);
    // SAFETY: addr is a sockaddr_storage holding a sockaddr of `len` bytes.
    let r = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_storage).cast(), len) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(s)
}

fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

fn open_sock(tcp: bool, query: &[u8], to: SocketAddr) -> std::io::Result<Sock> {
    if tcp {
        let mut out = (query.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(query);
        return Ok(Sock::Tcp {
            s: tcp_connect(to)?,
            out,
            sent: 0,
            got: Vec::new(),
        });
    }
    let any: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let u = UdpSocket::bind(any)?;
    u.connect(to)?;
    u.set_nonblocking(true)?;
    u.send(query)?;
    Ok(Sock::Udp(u))
}

impl Pending {
    /// Send `query` (from `asker`) to the first upstream that takes it, from `first` on.
    pub(crate) fn start(
        asker: Asker,
        query: &[u8],
        upstreams: &[SocketAddr],
        first: usize,
    ) -> Option<Pending> {
        if query.len() < 12 || query.len() > u16::MAX as usize {
            return None;
        }
        let id = u16::from_be_bytes([query[0], query[1]]);
        let mut q = query.to_vec();
        q[..2].copy_from_slice(&random_id().to_be_bytes());
        let tcp = matches!(asker, Asker::Tcp(_));
        for (i, up) in upstreams.iter().enumerate().skip(first) {
            if let Ok(sock) = open_sock(tcp, &q, *up) {
                return Some(Pending {
                    asker,
                    id,
                    query: q,
                    upstream: i,
                    deadline: Instant::now() + UPSTREAM_TIMEOUT,
                    sock,
                });
            }
        }
        None
    }

    /// The same query to the next upstream (this one failed or timed out).
    pub(crate) fn retry(&self, upstreams: &[SocketAddr]) -> Option<Pending> {
        let mut q = self.query.clone();
        q[..2].copy_from_slice(&self.id.to_be_bytes());
        Pending::start(self.asker, &q, upstreams, self.upstream + 1)
    }

    /// The query as the asker sent it (for a SERVFAIL).
    pub(crate) fn original(&self) -> Vec<u8> {
        let mut q = self.query.clone();
        q[..2].copy_from_slice(&self.id.to_be_bytes());
        q
    }

    pub(crate) fn pollfd(&self) -> libc::pollfd {
        let (fd, events) = match &self.sock {
            Sock::Udp(u) => (u.as_raw_fd(), libc::POLLIN),
            Sock::Tcp { s, out, sent, .. } => {
                let ev = if sent < &out.len() {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                (s.as_raw_fd(), ev)
            }
        };
        libc::pollfd {
            fd,
            events,
            revents: 0,
        }
    }

    /// Make progress on a socket poll said was ready.
    pub(crate) fn serve(&mut self, buf: &mut [u8]) -> Progress {
        let ours = &self.query[..2];
        let answer = match &mut self.sock {
            Sock::Udp(u) => match u.recv(buf) {
                Ok(n) if n >= 12 && buf[..2] == *ours => buf[..n].to_vec(),
                // (Not the answer to this query: keep waiting.)
                Ok(_) => return Progress::Waiting,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Waiting,
                Err(_) => return Progress::Failed,
            },
            Sock::Tcp { s, out, sent, got } => {
                if *sent < out.len() {
                    return match s.write(&out[*sent..]) {
                        Ok(n) => {
                            *sent += n;
                            Progress::Waiting
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Progress::Waiting,
                        Err(_) => Progress::Failed,
                    };
                }
                match s.read(buf) {
                    Ok(0) => return Progress::Failed,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        return Progress::Waiting
                    }
                    Err(_) => return Progress::Failed,
                }
                if got.len() < 2 {
                    return Progress::Waiting;
                }
                let len = u16::from_be_bytes([got[0], got[1]]) as usize;
                if got.len() < 2 + len {
                    return Progress::Waiting;
                }
                if len < 12 || got[2..4] != *ours {
                    return Progress::Failed;
                }
                got[2..2 + len].to_vec()
            }
        };
        let mut a = answer;
        a[..2].copy_from_slice(&self.id.to_be_bytes());
        Progress::Answer(a)
    }
}
