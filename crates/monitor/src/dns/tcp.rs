//! DNS over TCP from the container: length-prefixed messages in, answers out, several per
//! connection; a connection idle for [`IDLE`] with nothing in flight is closed.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub(crate) const IDLE: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
pub(crate) const MAX_CONNS: usize = 32;

pub(crate) struct Conn {
    pub num: u64,
    s: TcpStream,
    got: Vec<u8>,
    out: Vec<u8>,
    /// Queries forwarded and not answered yet.
    pub in_flight: usize,
    eof: bool,
    broken: bool,
    last: Instant,
}

impl Conn {
    pub(crate) fn new(num: u64, s: TcpStream) -> Conn {
        Conn {
            num,
            s,
            got: Vec::new(),
            out: Vec::new(),
            in_flight: 0,
            eof: false,
            broken: false,
            last: Instant::now(),
        }
    }

    pub(crate) fn pollfd(&self) -> libc::pollfd {
        let mut events = 0;
        if !self.eof {
            events |= libc::POLLIN;
        }
        if !self.out.is_empty() {
            events |= libc::POLLOUT;
        }
        libc::pollfd {
            // (Read to its end with nothing to send: a hang-up would wake poll at once, over
            // and over, while its answers are on their way.)
            fd: if events == 0 { -1 } else { self.s.as_raw_fd() },
            events,
            revents: 0,
        }
    }

    /// Queue an answer.
    pub(crate) fn send(&mut self, msg: &[u8]) {
        self.out
            .extend_from_slice(&(msg.len() as u16).to_be_bytes());
        self.out.extend_from_slice(msg);
        self.flush();
    }

    fn flush(&mut self) {
        while !self.out.is_empty() {
            match self.s.write(&self.out) {
                Ok(0) => break,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        self.last = Instant::now();
    }

    /// Serve readiness; the whole queries that arrived.
    pub(crate) fn serve(&mut self, revents: i16, buf: &mut [u8]) -> Vec<Vec<u8>> {
        if revents & libc::POLLOUT != 0 {
            self.flush();
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 || self.eof {
            return Vec::new();
        }
        match self.s.read(buf) {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.got.extend_from_slice(&buf[..n]);
                self.last = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => self.broken = true,
        }
        let mut queries = Vec::new();
        while self.got.len() >= 2 {
            let len = u16::from_be_bytes([self.got[0], self.got[1]]) as usize;
            if self.got.len() < 2 + len {
                break;
            }
            queries.push(self.got[2..2 + len].to_vec());
            self.got.drain(..2 + len);
        }
        queries
    }

    /// Whether it is over: broken, or read to its end (or idle) with nothing left to send.
    pub(crate) fn done(&self) -> bool {
        self.broken
            || (self.in_flight == 0
                && self.out.is_empty()
                && (self.eof || self.last.elapsed() > IDLE))
    }
}
