//! The process's output: read from its pipe (or pty master), logged, sent to attach clients.
use crate::clients::{send_output, Client};
use crate::jsonlog::{frame_header, LogWriter, StreamKind};
use std::os::fd::{AsRawFd, OwnedFd};

/// What attach clients receive for `data`: raw with a tty, else a multiplexed frame.
pub(crate) fn frame(tty: bool, stream: StreamKind, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(data.len() + 8);
    if !tty {
        f.extend_from_slice(&frame_header(stream, data.len()));
    }
    f.extend_from_slice(data);
    f
}

/// Where one read of output goes.
pub(crate) struct Sinks<'a> {
    pub tty: bool,
    pub log: Option<&'a mut LogWriter>,
    pub clients: &'a mut [Client],
}

/// Copy what the ready output `fd` of `stream` has. Returns false when the output ended (EOF,
/// or EIO: the pty's other side closed): the caller closes it.
pub(crate) fn copy_output(fd: &OwnedFd, stream: StreamKind, buf: &mut [u8], to: Sinks) -> bool {
    // SAFETY: reading into our buffer from an fd we own.
    let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
        );
    }
    if r == 0 {
        return false;
    }
    let data = &buf[..r as usize];
    if let Some(l) = to.log {
        l.write(stream, data);
    }
    send_output(to.clients, stream, &frame(to.tty, stream, data));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AttachHello;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn frames_with_and_without_a_tty() {
        assert_eq!(frame(true, StreamKind::Stderr, b"ab"), b"ab");
        assert_eq!(
            frame(false, StreamKind::Stderr, b"ab"),
            b"\x02\0\0\0\0\0\0\x02ab"
        );
    }

    #[test]
    fn output_is_logged_and_framed_until_eof() {
        let d = tempfile::tempdir().unwrap();
        let logp = d.path().join("log");
        let mut log = LogWriter::open(&logp, 0, 1).unwrap();
        let (r, w) = crate::sys::pipe().unwrap();
        let (cs, peer) = UnixStream::pair().unwrap();
        let mut clients = vec![Client::new(
            cs,
            AttachHello {
                stdout: true,
                ..Default::default()
            },
        )];
        std::fs::File::from(w.try_clone().unwrap())
            .write_all(b"hi\n")
            .unwrap();
        let mut buf = [0u8; 64];
        let mut copy = |log: &mut LogWriter, clients: &mut [Client]| {
            let to = Sinks {
                tty: false,
                log: Some(log),
                clients,
            };
            copy_output(&r, StreamKind::Stdout, &mut buf, to)
        };
        assert!(copy(&mut log, &mut clients));
        drop(w);
        assert!(!copy(&mut log, &mut clients));
        let mut got = [0u8; 11];
        (&peer).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x01\0\0\0\0\0\0\x03hi\n");
        let logged = std::fs::read_to_string(&logp).unwrap();
        assert!(
            logged.starts_with("{\"log\":\"hi\\n\",\"stream\":\"stdout\""),
            "{logged}"
        );
    }
}
