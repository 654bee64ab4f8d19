//! Published ports: a mapping (host address and port -> container port, TCP or UDP) and the
//! host port's reservation: a socket bound to it, held while the mapping exists, so two
//! containers (or a host program and a container) cannot take the same port. Port 0 asks the
//! kernel for a free one (`-p 80`, `-P`).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port. `host_ip` 0.0.0.0 means every host address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Protocol,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

/// The host port is taken (by another container or a host program).
#[derive(Debug, thiserror::Error)]
#[error("Bind for {addr} failed: port is already allocated")]
pub struct PortTaken {
    pub addr: SocketAddrV4,
    #[source]
    pub source: io::Error,
}

/// A bound socket holding a host port; dropping it frees the port.
#[derive(Debug)]
pub enum Reservation {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Errors of [`reserve`].
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error(transparent)]
    Taken(#[from] PortTaken),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
}

/// Bind the mapping's host address and port (port 0: any free one) and return the mapping
/// with the port actually bound. A TCP port is bound but never listened on: published
/// traffic is DNATed to the container before it could reach the socket.
pub fn reserve(m: &PortMapping) -> Result<(PortMapping, Reservation), ReserveError> {
    let addr = SocketAddrV4::new(m.host_ip, m.host_port);
    let bind_err = |source: io::Error| -> ReserveError {
        if source.kind() == io::ErrorKind::AddrInUse {
            ReserveError::Taken(PortTaken { addr, source })
        } else {
            ReserveError::Bind { addr, source }
        }
    };
    let (port, r) = match m.proto {
        Protocol::Tcp => {
            let s = bind_tcp(addr).map_err(bind_err)?;
            let port = s.local_addr().map_err(bind_err)?.port();
            (port, Reservation::Tcp(s))
        }
        Protocol::Udp => {
            let s = UdpSocket::bind(addr).map_err(bind_err)?;
            let port = s.local_addr().map_err(bind_err)?.port();
            (port, Reservation::Udp(s))
        }
    };
    Ok((
        PortMapping {
            host_port: port,
            ..*m
        },
        r,
    ))
}

/// A TCP socket bound to `addr` without listening (std's `TcpListener::bind` also listens,
/// which would accept connections nobody serves).
fn bind_tcp(addr: SocketAddrV4) -> io::Result<TcpListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: socket(2) with constant arguments; the fd is owned right below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sa is a valid sockaddr_in that outlives the call; the length is its size.
    let r = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&owned),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(proto: Protocol, port: u16) -> PortMapping {
        PortMapping {
            proto,
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: port,
            container_port: 80,
        }
    }

    #[test]
    fn random_port_then_conflict() {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            let (got, held) = reserve(&m(proto, 0)).unwrap();
            assert_ne!(got.host_port, 0);
            let e = reserve(&got).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "Bind for 127.0.0.1:{} failed: port is already allocated",
                    got.host_port
                )
            );
            drop(held);
            let (again, _held) = reserve(&got).unwrap();
            assert_eq!(again.host_port, got.host_port);
        }
    }

    #[test]
    fn tcp_reservation_does_not_listen() {
        let (got, _held) = reserve(&m(Protocol::Tcp, 0)).unwrap();
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, got.host_port);
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
