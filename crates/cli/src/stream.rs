//! Hijacked attach/exec streams: stdin pump with detach keys, output demux.

use crate::http::{demux_copy, Conn};
use std::io::{self, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct PumpOpts {
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PumpEnd {
    /// output stream ended
    Eof,
    /// the user typed the detach sequence
    Detached,
}

/// Scans input for the detach sequence, holding back bytes that might start it.
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }
    /// Feeds input; returns bytes to forward and whether the sequence completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &c in input {
            if self.keys.is_empty() {
                out.push(c);
                continue;
            }
            if c == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if c == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(c);
                }
            }
        }
        (out, false)
    }
}

/// Pumps stdin -> connection (in a thread) and connection -> stdout/stderr until
/// the output side ends or the user detaches.
pub fn pump(reader: BufReader<Conn>, writer: Conn, opts: PumpOpts) -> io::Result<PumpEnd> {
    let detached = Arc::new(AtomicBool::new(false));
    if opts.stdin {
        let det = detached.clone();
        let closer = writer.try_clone()?;
        let mut w = writer;
        let keys = if opts.tty {
            opts.detach_keys.clone()
        } else {
            Vec::new()
        };
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut scanner = DetachScanner::new(keys);
                let mut buf = [0u8; 4096];
                let stdin = io::stdin();
                let mut inp = stdin.lock();
                loop {
                    let n = match inp.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let (fwd, done) = scanner.feed(&buf[..n]);
                    if !fwd.is_empty() && w.write_all(&fwd).is_err() {
                        return;
                    }
                    if done {
                        det.store(true, Ordering::SeqCst);
                        closer.shutdown_both();
                        return;
                    }
                }
                let _ = w.shutdown_write();
            })?;
    } else {
        // Nothing to send: half-close so the daemon knows.
        let _ = writer.shutdown_write();
    }
    let stdout = io::stdout();
    let stderr = io::stderr();
    let res = if opts.tty {
        copy_raw(reader, &mut stdout.lock())
    } else {
        demux_copy(reader, &mut stdout.lock(), &mut stderr.lock())
    };
    if detached.load(Ordering::SeqCst) {
        return Ok(PumpEnd::Detached);
    }
    match res {
        Ok(()) => Ok(PumpEnd::Eof),
        // a reset after the container exited is an ordinary end
        Err(e)
            if e.kind() == io::ErrorKind::ConnectionReset
                || e.kind() == io::ErrorKind::UnexpectedEof =>
        {
            Ok(PumpEnd::Eof)
        }
        Err(e) => Err(e),
    }
}

fn copy_raw(mut r: impl Read, w: &mut impl Write) -> io::Result<()> {
    let mut buf = [0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        w.flush()?;
    }
}
