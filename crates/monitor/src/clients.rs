//! Attach and watch clients: their hello, the output they receive, the input they send.
use crate::error::{Error, IoContext, Result};
use crate::jsonlog::StreamKind;
use crate::proto::AttachHello;
use crate::sys::set_winsize;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// Longest hello line accepted.
const MAX_HELLO: usize = 4096;

pub(crate) struct Client {
    pub sock: UnixStream,
    pub hello: AttachHello,
    /// Gone (write failed): dropped at the end of the loop iteration, so indexes into the
    /// poll array stay valid while the iteration runs.
    pub dead: bool,
    /// Still reading its input.
    pub reading: bool,
}

impl Client {
    pub fn new(sock: UnixStream, hello: AttachHello) -> Client {
        Client {
            sock,
            dead: false,
            reading: hello.stdin,
            hello,
        }
    }

    /// Whether the loop polls its socket: for input, or (a watcher) to see it go away.
    pub fn polled(&self) -> bool {
        self.reading || self.hello.watch
    }

    pub fn wants(&self, stream: StreamKind) -> bool {
        match stream {
            StreamKind::Stdout => self.hello.stdout,
            StreamKind::Stderr => self.hello.stderr,
        }
    }
}

/// The hello line, read a byte at a time: what follows it is the client's input.
fn read_hello_line(mut r: impl Read) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b) {
            Ok(0) => {
                return Err(Error::Protocol(
                    "attach client closed before its hello".into(),
                ))
            }
            Ok(_) if b[0] == b'\n' => return Ok(line),
            Ok(_) => {
                line.push(b[0]);
                if line.len() > MAX_HELLO {
                    return Err(Error::Protocol("attach hello too long".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read attach hello", e)),
        }
    }
}

fn read_hello(sock: &UnixStream) -> Result<AttachHello> {
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .ctx("attach socket timeout")?;
    let line = read_hello_line(sock)?;
    sock.set_read_timeout(None).ctx("attach socket timeout")?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))
        .ctx("attach socket timeout")?;
    AttachHello::parse(&line).map_err(|e| Error::Protocol(format!("attach hello: {e}")))
}

/// Accept the connections waiting on the (non-blocking) attach listener: attach and watch
/// clients join `clients`; a resize request is carried out (`tty`: on the pty master
/// `out_fd`) and answered at once.
pub(crate) fn accept_clients(
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
        clients.push(Client::new(s, h));
    }
}

/// Send a frame of `stream`'s output to the clients that want it; a failed write marks the
/// client dead.
pub(crate) fn send_output(clients: &mut [Client], stream: StreamKind, frame: &[u8]) {
    for c in clients.iter_mut() {
        if c.wants(stream) && !c.dead && (&c.sock).write_all(frame).is_err() {
            c.dead = true;
        }
    }
}

/// Serve the clients' sockets that poll found ready (`ready[i]` for `clients[i]`; clients
/// past `ready` joined after the poll): input goes to `stdin` (the stdin pipe, or the pty
/// master with a tty); dead clients, watchers that closed and clients done both ways are
/// dropped. Returns whether the container's stdin is to be closed (`stdin_once`: the first
/// attached client closed its input).
pub(crate) fn serve_input(
    clients: &mut Vec<Client>,
    ready: &[bool],
    stdin: Option<&OwnedFd>,
    stdin_once: bool,
) -> bool {
    let mut i = 0;
    let mut close_stdin = false;
    clients.retain_mut(|c| {
        let is_ready = ready.get(i).copied().unwrap_or(false);
        i += 1;
        if c.dead {
            return false;
        }
        if !is_ready {
            return true;
        }
        let mut b = [0u8; 8192];
        match (&c.sock).read(&mut b) {
            Ok(0) | Err(_) => {
                if c.hello.watch {
                    return false;
                }
                if c.reading && stdin_once {
                    close_stdin = true;
                }
                c.reading = false;
                // A client with nothing to receive is done.
                c.hello.stdout || c.hello.stderr
            }
            Ok(n) => {
                if let (true, Some(t)) = (c.hello.stdin, stdin) {
                    // SAFETY: writing our buffer to an fd we own.
                    unsafe { libc::write(t.as_raw_fd(), b.as_ptr().cast(), n) };
                }
                true
            }
        }
    });
    close_stdin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(h: AttachHello) -> (Client, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Client::new(a, h), b)
    }

    #[test]
    fn hello_lines_are_read_up_to_the_newline_only() {
        let mut data: &[u8] = b"{\"stdin\":true}\nINPUT";
        let line = read_hello_line(&mut data).unwrap();
        assert_eq!(line, b"{\"stdin\":true}");
        assert_eq!(data, b"INPUT");
        let e = read_hello_line(&b"{\"stdin\":"[..]).unwrap_err();
        assert!(e.to_string().contains("closed before its hello"), "{e}");
        let long = vec![b' '; MAX_HELLO + 2];
        assert!(read_hello_line(&long[..]).is_err());
    }

    #[test]
    fn accepted_clients_and_resize_requests() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.sock");
        let l = UnixListener::bind(&p).unwrap();
        l.set_nonblocking(true).unwrap();
        let out = UnixStream::connect(&p).unwrap();
        (&out).write_all(b"{\"stdout\":true}\n").unwrap();
        let rs = UnixStream::connect(&p).unwrap();
        (&rs).write_all(b"{\"resize\":[24,80]}\n").unwrap();
        let bad = UnixStream::connect(&p).unwrap();
        (&bad).write_all(b"nonsense\n").unwrap();
        let mut clients = Vec::new();
        accept_clients(&l, &mut clients, false, None);
        assert_eq!(clients.len(), 1);
        assert!(clients[0].wants(StreamKind::Stdout) && !clients[0].wants(StreamKind::Stderr));
        let mut ok = String::new();
        (&rs).read_to_string(&mut ok).unwrap();
        assert_eq!(ok, "ok\n");
    }

    #[test]
    fn output_goes_to_who_wants_it_and_a_gone_client_is_dropped() {
        let (a, pa) = client(AttachHello {
            stdout: true,
            ..Default::default()
        });
        let (b, pb) = client(AttachHello {
            stderr: true,
            ..Default::default()
        });
        let mut clients = vec![a, b];
        send_output(&mut clients, StreamKind::Stdout, b"out");
        drop(pa);
        send_output(&mut clients, StreamKind::Stdout, b"more");
        assert!(clients[0].dead && !clients[1].dead);
        let _ = serve_input(&mut clients, &[], None, false);
        assert_eq!(clients.len(), 1);
        pb.set_nonblocking(true).unwrap();
        assert!(
            (&pb).read(&mut [0u8; 8]).is_err(),
            "stderr client got stdout"
        );
    }

    #[test]
    fn input_reaches_stdin_and_stdin_once_closes_it() {
        let (r, w) = crate::sys::pipe().unwrap();
        let (a, pa) = client(AttachHello {
            stdin: true,
            stdout: true,
            ..Default::default()
        });
        let (watch, pw) = client(AttachHello {
            watch: true,
            ..Default::default()
        });
        let mut clients = vec![a, watch];
        (&pa).write_all(b"typed").unwrap();
        assert!(!serve_input(&mut clients, &[true, false], Some(&w), true));
        let mut got = [0u8; 5];
        std::fs::File::from(r.try_clone().unwrap())
            .read_exact(&mut got)
            .unwrap();
        assert_eq!(&got, b"typed");
        // The attached client ends its input: stdin closes, the client stays for output.
        pa.shutdown(std::net::Shutdown::Write).unwrap();
        drop(pw);
        assert!(serve_input(&mut clients, &[true, true], Some(&w), true));
        assert_eq!(clients.len(), 1);
        assert!(!clients[0].reading && !clients[0].polled());
    }
}
