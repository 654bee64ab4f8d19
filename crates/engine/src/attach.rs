//! Attach: connections to a container's (or exec's) monitor attach socket.
use crate::{AttachOptions, Engine, Result};
use std::io::{Read, Write};

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

pub(crate) fn attach(_e: &Engine, _id: &str, _o: &AttachOptions) -> Result<Attach> {
    todo!()
}

pub(crate) fn resize_container(_e: &Engine, _id: &str, _h: u16, _w: u16) -> Result<()> {
    todo!()
}
