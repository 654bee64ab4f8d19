//! json-file logs: reading (tail, since/until, follow across rotation).
use crate::{Engine, LogsOptions, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    /// Docker's multiplexing stream byte (1 stdout, 2 stderr).
    pub fn stream_byte(self) -> u8 {
        match self {
            StreamKind::Stdout => 1,
            StreamKind::Stderr => 2,
        }
    }
}

/// One json-file record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: StreamKind,
    /// The raw bytes of the chunk (usually a line with its "\n").
    pub data: Vec<u8>,
    /// RFC3339Nano, as stored.
    pub time: String,
}

impl LogEntry {
    /// The bytes to send: optional "<time> " prefix, framed with the 8-byte multiplexing
    /// header unless `tty`.
    pub fn to_bytes(&self, timestamps: bool, tty: bool) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.data.len() + 40);
        if timestamps {
            payload.extend_from_slice(self.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(&self.data);
        if tty {
            return payload;
        }
        let mut out = Vec::with_capacity(payload.len() + 8);
        out.push(self.stream.stream_byte());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// Blocking iterator over log entries. With `follow` it waits for new entries until the
/// container stops (then drains and ends).
pub struct LogStream {
    /// The container has a TTY: send raw (no multiplexing headers).
    pub tty: bool,
    pub(crate) inner: Box<dyn Iterator<Item = Result<LogEntry>> + Send>,
}

impl Iterator for LogStream {
    type Item = Result<LogEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

pub(crate) fn open(_e: &Engine, _id: &str, _o: &LogsOptions) -> Result<LogStream> {
    todo!()
}
