//! The parent <-> container-init channel: a SOCK_SEQPACKET socketpair carrying one-byte tags
//! with an optional payload (an error message, a pid).

use crate::error::{Context, Error, Result};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub const GO: u8 = 1;
pub const MOUNTS_DONE: u8 = 2;
pub const HOOKS_DONE: u8 = 3;
pub const CREATED: u8 = 4;
pub const START: u8 = 5;
pub const PID: u8 = 6;
pub const CGROUP_READY: u8 = 7;
pub const ERROR: u8 = 0xff;

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx("socketpair(AF_UNIX, SOCK_SEQPACKET)")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, tag: u8, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity((1 + payload.len()).max(8192));
        buf.push(tag);
        buf.extend_from_slice(payload);
        let len = buf.len();
        loop {
            match send(self.fd.as_raw_fd(), &buf[..len], MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    // The peer is gone: if it said why before leaving, that is the real error.
                    buf.resize(8192, 0);
                    if let Ok(n) = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                        if n > 1 && buf[0] == ERROR {
                            return Err(Error::from_child_report(&buf[1..n]));
                        }
                    }
                    return Err(Error::sys("send on sync socket", e));
                }
            }
        }
    }

    /// Receive one message; Ok(None) means the peer closed its end (exec'd or died).
    pub fn recv(&self) -> Result<Option<(u8, Vec<u8>)>> {
        let mut buf = vec![0u8; 8192];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    buf.truncate(n);
                    let tag = buf[0];
                    buf.remove(0);
                    return Ok(Some((tag, buf)));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                // The peer closed while a message of ours was still unread on its side: the
                // error is reported (once) before what the peer sent last (its ERROR) is
                // read. Read on: that message, or the end.
                Err(nix::errno::Errno::ECONNRESET) => continue,
                Err(e) => return Err(Error::sys("recv on sync socket", e)),
            }
        }
    }

    /// Wait for `want`; an ERROR message from the child becomes the Error::Child it reports.
    pub fn expect(&self, want: u8, what: &str) -> Result<Vec<u8>> {
        match self.recv()? {
            Some((t, p)) if t == want => Ok(p),
            Some((ERROR, p)) => Err(Error::from_child_report(&p)),
            Some((t, _)) => Err(Error::Other(format!(
                "sync protocol: expected message {want} ({what}), got {t}"
            ))),
            None => Err(Error::Child {
                kind: crate::error::ChildFailure::Other,
                errno: None,
                message: format!("container process exited before {what}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child reports an error and exits while a message of the parent is still unread on
    /// its side: the parent gets the child's message, not "connection reset".
    #[test]
    fn message_of_a_peer_that_left_with_unread_data_is_received() {
        let (parent, child) = pair().unwrap();
        parent.send(GO, b"").unwrap();
        child.send(ERROR, b"mount /proc: is a symlink").unwrap();
        drop(child);
        let (tag, msg) = parent.recv().unwrap().unwrap();
        assert_eq!(
            (tag, msg.as_slice()),
            (ERROR, &b"mount /proc: is a symlink"[..])
        );
        assert!(parent.recv().unwrap().is_none());
    }
}
