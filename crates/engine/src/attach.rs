//! Attach: connections to a container's (or exec's) monitor attach socket.
use crate::model::Status;
use crate::monitor::hello_line;
use crate::proto::AttachHello;
use crate::{AttachOptions, Engine, Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};

/// A live attach session. Bytes read from [`AttachOutput`] are already in the Docker wire
/// format for the hijacked HTTP connection: raw when `tty`, otherwise multiplexed frames
/// (`[stream, 0, 0, 0, len u32 BE]` + payload; 1 = stdout, 2 = stderr). Bytes written to
/// [`AttachInput`] go to the process's stdin (only if it was created with OpenStdin /
/// AttachStdin). Output reaches EOF when the process's output ends (it exited) or on detach.
pub struct Attach {
    pub tty: bool,
    pub output: AttachOutput,
    /// `Some` when stdin was requested and the process has an open stdin.
    pub input: Option<AttachInput>,
}

impl Attach {
    pub fn split(self) -> (AttachOutput, Option<AttachInput>) {
        (self.output, self.input)
    }
}

/// The output half (blocking `Read`, `Send`).
pub struct AttachOutput {
    pub(crate) inner: Box<dyn Read + Send>,
}

impl Read for AttachOutput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// The stdin half (blocking `Write`, `Send`). When the detach-key sequence is seen the
/// session ends: `write` returns `ErrorKind::ConnectionAborted` ("detached") and the output
/// half reaches EOF. Drop or [`AttachInput::close`] = EOF on the process's stdin when the
/// container has StdinOnce (as Docker); otherwise only this client's input ends.
pub struct AttachInput {
    pub(crate) inner: Box<dyn AttachWrite>,
}

pub(crate) trait AttachWrite: Write + Send {
    fn close(&mut self) -> std::io::Result<()>;
}

impl Write for AttachInput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl AttachInput {
    /// Half-close: the client has no more input.
    pub fn close(mut self) -> std::io::Result<()> {
        self.inner.close()
    }
}

/// A connection that may arrive later (attach before start).
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    cond: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Waiting,
    Connected(UnixStream),
    Closed,
}

impl Slot {
    pub(crate) fn connected(c: UnixStream) -> Arc<Slot> {
        Arc::new(Slot {
            state: Mutex::new(SlotState::Connected(c)),
            cond: Condvar::new(),
        })
    }
    pub(crate) fn connect(&self, c: UnixStream) {
        if let Ok(mut g) = self.state.lock() {
            if matches!(*g, SlotState::Waiting) {
                *g = SlotState::Connected(c);
            }
        }
        self.cond.notify_all();
    }
    pub(crate) fn close(&self) {
        if let Ok(mut g) = self.state.lock() {
            if let SlotState::Connected(c) = &*g {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            *g = SlotState::Closed;
        }
        self.cond.notify_all();
    }
    /// Wait for the connection; `None` = closed.
    fn get(&self) -> Option<UnixStream> {
        let mut g = self.state.lock().ok()?;
        loop {
            match &*g {
                SlotState::Connected(c) => return c.try_clone().ok(),
                SlotState::Closed => return None,
                SlotState::Waiting => {
                    g = self.cond.wait(g).ok()?;
                }
            }
        }
    }
}

struct SlotReader {
    slot: Arc<Slot>,
    conn: Option<UnixStream>,
    done: bool,
}

impl Read for SlotReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.conn.is_none() {
            match self.slot.get() {
                Some(c) => self.conn = Some(c),
                None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        match self.conn.as_mut() {
            Some(c) => {
                let n = c.read(buf)?;
                if n == 0 {
                    self.done = true;
                }
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

/// Parse Docker detach keys ("ctrl-p,ctrl-q", "a,ctrl-[").
pub(crate) fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                c if c.len() == 1 && c.as_bytes()[0].is_ascii_lowercase() => {
                    c.as_bytes()[0] - b'a' + 1
                }
                _ => {
                    return Err(Error::BadParameter(format!(
                        "Invalid detach keys ({s}) provided"
                    )))
                }
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(Error::BadParameter(format!(
                "Invalid detach keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

struct SlotWriter {
    slot: Arc<Slot>,
    conn: Option<UnixStream>,
    keys: Vec<u8>,
    matched: usize,
}

impl SlotWriter {
    fn conn(&mut self) -> std::io::Result<&mut UnixStream> {
        if self.conn.is_none() {
            self.conn = self.slot.get();
        }
        self.conn.as_mut().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the container is not running",
            )
        })
    }
}

impl Write for SlotWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.keys.is_empty() {
            return self.conn()?.write(buf);
        }
        // Hold back a possible detach-key prefix; on a full match end the session.
        let mut out = Vec::with_capacity(buf.len());
        for &b in buf {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    if let Some(c) = &self.conn {
                        let _ = c.shutdown(std::net::Shutdown::Both);
                    }
                    self.slot.close();
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "detached",
                    ));
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        if !out.is_empty() {
            self.conn()?.write_all(&out)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl AttachWrite for SlotWriter {
    fn close(&mut self) -> std::io::Result<()> {
        if let Ok(c) = self.conn() {
            c.shutdown(std::net::Shutdown::Write)?;
        }
        Ok(())
    }
}

pub(crate) fn make_attach(slot: Arc<Slot>, tty: bool, stdin: bool, keys: Vec<u8>) -> Attach {
    Attach {
        tty,
        output: AttachOutput {
            inner: Box::new(SlotReader {
                slot: slot.clone(),
                conn: None,
                done: false,
            }),
        },
        input: if stdin {
            Some(AttachInput {
                inner: Box::new(SlotWriter {
                    slot,
                    conn: None,
                    keys,
                    matched: 0,
                }),
            })
        } else {
            None
        },
    }
}

/// A session that ends at once (nothing to attach to).
fn closed_slot() -> Arc<Slot> {
    let sl = Arc::new(Slot::default());
    sl.close();
    sl
}

pub(crate) fn attach(e: &Engine, x: &str, o: &AttachOptions) -> Result<Attach> {
    let s = &e.inner.0;
    let keys = parse_detach_keys(
        o.detach_keys
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or("ctrl-p,ctrl-q"),
    )?;
    // Decided under the registry lock, as a start drains the waiting sessions under it: a
    // session is either taken by the start or connects itself (`starting` on), none is lost.
    let (rec, hello, waiting) = {
        let mut reg = s.containers.lock();
        let id = s.containers.resolve(&reg, x)?;
        let en = reg
            .by_id
            .get_mut(&id)
            .ok_or_else(|| Error::NotFound(format!("No such container: {x}")))?;
        let hello = AttachHello {
            stdin: o.stdin && en.rec.config.open_stdin.val(),
            stdout: o.stdout && o.stream,
            stderr: o.stderr && o.stream,
            ..Default::default()
        };
        let waiting = match en.rec.state.status {
            Status::Running | Status::Paused => None,
            _ if en.starting => None,
            Status::Created | Status::Exited | Status::Restarting if o.stream => {
                let sl = Arc::new(Slot::default());
                en.pending.push((hello.clone(), sl.clone()));
                Some(sl)
            }
            _ => Some(closed_slot()),
        };
        (en.rec.clone(), hello, waiting)
    };
    let slot = match waiting {
        Some(sl) => sl,
        None => crate::proto::connect(&s.attach_sock(&rec.id))
            .and_then(|c| (&c).write_all(&hello_line(&hello)).map(|_| c))
            .map_or_else(|_| closed_slot(), Slot::connected),
    };
    let tty = rec.config.tty.val();
    s.event(&rec, "attach", &[]);
    // Docker applies detach keys only with a TTY (binary stdin must pass through untouched).
    Ok(make_attach(
        slot,
        tty,
        hello.stdin,
        if tty { keys } else { Vec::new() },
    ))
}

pub(crate) fn resize_sock(sock: &std::path::Path, h: u16, w: u16) -> Result<()> {
    let c = crate::proto::connect(sock)
        .map_err(|e| Error::Conflict(format!("cannot resize: the process is not running ({e})")))?;
    let hello = AttachHello {
        resize: Some((h, w)),
        ..Default::default()
    };
    (&c).write_all(&hello_line(&hello))
        .map_err(|e| crate::util::internal("resize", e))?;
    let mut b = [0u8; 3];
    let _ = (&c).read(&mut b);
    Ok(())
}

pub(crate) fn resize_container(e: &Engine, x: &str, h: u16, w: u16) -> Result<()> {
    let s = &e.inner.0;
    let r = crate::containers::running_id(s, x)?;
    resize_sock(&s.attach_sock(&r.id), h, w)
}
