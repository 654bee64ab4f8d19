//! The raw /dev/fuse protocol for a read-only, flat directory of generated files (no libfuse,
//! no `fuser`: the whole server is this loop, which keeps a provider well under 1 MB).
//!
//! Layouts are `linux/fuse.h` (protocol 7.x). Every file is opened with `FOPEN_DIRECT_IO`, so
//! reads reach us whatever the (zero) size says; a read at offset 0 renders the file anew and
//! keeps that text for reads further on through the same open file (a reader that reads in
//! pieces sees one consistent text; `top`, which seeks back to 0, sees fresh values).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_READ: u32 = 15;
const FUSE_STATFS: u32 = 17;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_OPENDIR: u32 = 27;
const FUSE_READDIR: u32 = 28;
const FUSE_RELEASEDIR: u32 = 29;
const FUSE_ACCESS: u32 = 34;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_DESTROY: u32 = 38;
const FUSE_BATCH_FORGET: u32 = 42;

const FOPEN_DIRECT_IO: u32 = 1;
/// `enum fuse_notify_code`: FUSE_NOTIFY_STORE, sent as the error field of a unique-0 write.
const FUSE_NOTIFY_STORE: i32 = 4;
/// The size files have for the page cache between an open and the first read (see
/// `grow_size`): more than any text we render (cpuinfo of ~10k CPUs).
const SPLICE_SIZE: u64 = 16 << 20;
const IN_HEADER: usize = 40;
const OUT_HEADER: usize = 16;
/// The kernel refuses reads of /dev/fuse into less than 8 KiB; we accept no writes, so
/// max_write (4 KiB) plus headers fits.
pub const BUF_SIZE: usize = 8192 + 4096;
const ROOT: u64 = 1;
/// Attribute and entry cache time: the tree never changes.
const VALID_SECS: u64 = 3600;

/// What the file system serves: names (flat, in the root) and how to render each.
pub trait Files {
    fn names(&self) -> &[&'static str];
    fn render(&mut self, index: usize) -> Vec<u8>;
}

/// The request just handled, for the caller's loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// INIT answered: the mount works.
    Initialised,
    /// The kernel is done with us (unmounted, or DESTROY).
    Gone,
}

pub struct Server {
    fd: OwnedFd,
    buf: Vec<u8>,
    out: Vec<u8>,
    open: HashMap<u64, Vec<u8>>,
    next_fh: u64,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let lo = u32_at(b, o) as u64;
    let hi = u32_at(b, o + 4) as u64;
    if cfg!(target_endian = "little") {
        lo | (hi << 32)
    } else {
        (lo << 32) | hi
    }
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_ne_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_ne_bytes());
}

/// `struct fuse_attr` (88 bytes).
fn put_attr(v: &mut Vec<u8>, ino: u64) {
    let (mode, nlink) = if ino == ROOT {
        (libc::S_IFDIR | 0o555, 2)
    } else {
        (libc::S_IFREG | 0o444, 1)
    };
    put64(v, ino);
    put64(v, 0); // size: unknown, as in procfs (reads are direct)
    put64(v, 0); // blocks
    for _ in 0..3 {
        put64(v, 0); // atime, mtime, ctime
    }
    for _ in 0..3 {
        put32(v, 0);
    }
    put32(v, mode);
    put32(v, nlink);
    put32(v, 0); // uid
    put32(v, 0); // gid
    put32(v, 0); // rdev
    put32(v, 4096); // blksize
    put32(v, 0); // flags
}

impl Server {
    pub fn new(fd: OwnedFd) -> Server {
        Server {
            fd,
            buf: vec![0; BUF_SIZE],
            out: Vec::with_capacity(512),
            open: HashMap::new(),
            next_fh: 1,
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Read one request (blocking) and answer it.
    pub fn handle_one(&mut self, files: &mut dyn Files) -> std::io::Result<Step> {
        let n = loop {
            // SAFETY: reading into our own buffer of buf.len() bytes from an fd we own.
            let r = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ENOENT) => continue, // ENOENT: interrupted request
                Some(libc::EAGAIN) => return Ok(Step::Continue),
                Some(libc::ENODEV) => return Ok(Step::Gone),
                _ => return Err(e),
            }
        };
        if n < IN_HEADER {
            return Ok(Step::Continue);
        }
        let opcode = u32_at(&self.buf, 4);
        let unique = u64_at(&self.buf, 8);
        let nodeid = u64_at(&self.buf, 16);
        let arg_end = (u32_at(&self.buf, 0) as usize).min(n);
        let arg = self.buf[IN_HEADER..arg_end.max(IN_HEADER)].to_vec();
        let mut step = Step::Continue;
        let reply: Result<Vec<u8>, i32> = match opcode {
            FUSE_INIT => {
                step = Step::Initialised;
                Ok(init_reply(&arg))
            }
            FUSE_DESTROY => {
                step = Step::Gone;
                Ok(Vec::new())
            }
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => return Ok(Step::Continue),
            FUSE_LOOKUP => self.lookup(files, &arg),
            FUSE_GETATTR => {
                if nodeid == ROOT || self.index(files, nodeid).is_some() {
                    let mut v = Vec::with_capacity(104);
                    put64(&mut v, VALID_SECS);
                    put32(&mut v, 0);
                    put32(&mut v, 0);
                    put_attr(&mut v, nodeid);
                    Ok(v)
                } else {
                    Err(libc::ENOENT)
                }
            }
            FUSE_OPEN => {
                let r = self.open_file(files, nodeid, u32_at(&arg, 0));
                if r.is_ok() {
                    self.grow_size(nodeid)?;
                }
                r
            }
            FUSE_READ => return self.read(files, unique, nodeid, &arg).map(|()| step),
            FUSE_RELEASE => {
                self.open.remove(&u64_at(&arg, 0));
                Ok(Vec::new())
            }
            // ENOSYS once: the kernel stops sending FLUSH (one round trip less per close).
            FUSE_FLUSH => Err(libc::ENOSYS),
            FUSE_RELEASEDIR | FUSE_ACCESS => Ok(Vec::new()),
            FUSE_OPENDIR if nodeid == ROOT => {
                let mut v = Vec::with_capacity(16);
                put64(&mut v, 0);
                put32(&mut v, 0);
                put32(&mut v, 0);
                Ok(v)
            }
            FUSE_OPENDIR => Err(libc::ENOTDIR),
            FUSE_READDIR => Ok(readdir(files, &arg)),
            FUSE_STATFS => {
                let mut v = vec![0u8; 80];
                v[40..44].copy_from_slice(&4096u32.to_ne_bytes()); // bsize
                v[44..48].copy_from_slice(&255u32.to_ne_bytes()); // namelen
                Ok(v)
            }
            _ => Err(libc::ENOSYS),
        };
        self.send(unique, reply)?;
        Ok(step)
    }

    fn index(&self, files: &dyn Files, nodeid: u64) -> Option<usize> {
        let i = nodeid.checked_sub(2)? as usize;
        (i < files.names().len()).then_some(i)
    }

    fn lookup(&self, files: &dyn Files, arg: &[u8]) -> Result<Vec<u8>, i32> {
        let name = arg.split(|&b| b == 0).next().unwrap_or(&[]);
        let i = files
            .names()
            .iter()
            .position(|n| n.as_bytes() == name)
            .ok_or(libc::ENOENT)?;
        let ino = i as u64 + 2;
        let mut v = Vec::with_capacity(128);
        put64(&mut v, ino); // nodeid
        put64(&mut v, 0); // generation
        put64(&mut v, VALID_SECS); // entry_valid
        put64(&mut v, VALID_SECS); // attr_valid
        put32(&mut v, 0);
        put32(&mut v, 0);
        put_attr(&mut v, ino);
        Ok(v)
    }

    fn open_file(&mut self, files: &dyn Files, nodeid: u64, flags: u32) -> Result<Vec<u8>, i32> {
        self.index(files, nodeid).ok_or(libc::ENOENT)?;
        if flags as i32 & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(libc::EACCES);
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.open.insert(fh, Vec::new());
        let mut v = Vec::with_capacity(16);
        put64(&mut v, fh);
        put32(&mut v, FOPEN_DIRECT_IO);
        put32(&mut v, 0);
        Ok(v)
    }

    /// Answer a READ from the text kept for the open file (rendered anew at offset 0), the
    /// header and the slice in one writev: no copy of the text.
    fn read(
        &mut self,
        files: &mut dyn Files,
        unique: u64,
        nodeid: u64,
        arg: &[u8],
    ) -> std::io::Result<()> {
        let Some(i) = self.index(files, nodeid) else {
            return self.send(unique, Err(libc::ENOENT));
        };
        let fh = u64_at(arg, 0);
        let offset = u64_at(arg, 8) as usize;
        let size = u32_at(arg, 16) as usize;
        let Some(text) = self.open.get_mut(&fh) else {
            return self.send(unique, Err(libc::EBADF));
        };
        if offset == 0 || text.is_empty() {
            *text = files.render(i);
        }
        let start = offset.min(text.len());
        let end = (start + size).min(text.len());
        self.out.clear();
        put32(&mut self.out, (OUT_HEADER + end - start) as u32);
        put32(&mut self.out, 0);
        put64(&mut self.out, unique);
        let iov = [
            libc::iovec {
                iov_base: self.out.as_ptr() as *mut libc::c_void,
                iov_len: self.out.len(),
            },
            libc::iovec {
                iov_base: text[start..end].as_ptr() as *mut libc::c_void,
                iov_len: end - start,
            },
        ];
        // SAFETY: two iovecs over buffers we own that outlive the call; the kernel only reads.
        let r = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // ENOENT: the request was interrupted meanwhile; nobody waits for this answer.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reads through splice (sendfile, copy_file_range: busybox `cat`) go through the page
    /// cache, which stops at i_size, and a short read there shrinks i_size to what we
    /// returned. So each open grows the size back past any text we render (a one-byte
    /// FUSE_NOTIFY_STORE ending at SPLICE_SIZE); the open drops the cached pages (no KEEP_CACHE) and
    /// the first short read trims the size to this text's length again. Plain reads are
    /// direct and never look at the size.
    fn grow_size(&mut self, nodeid: u64) -> std::io::Result<()> {
        self.out.clear();
        put32(&mut self.out, (OUT_HEADER + 24 + 1) as u32);
        self.out.extend_from_slice(&FUSE_NOTIFY_STORE.to_ne_bytes());
        put64(&mut self.out, 0); // unique 0: a notification
        put64(&mut self.out, nodeid);
        put64(&mut self.out, SPLICE_SIZE - 1);
        put32(&mut self.out, 1); // one byte: the kernel grows i_size only for a write
        put32(&mut self.out, 0);
        self.out.push(b'\n');
        self.write_out()
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        // SAFETY: writing our own buffer to an fd we own.
        let r = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                self.out.as_ptr().cast(),
                self.out.len(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // ENOENT: the request was interrupted meanwhile; nobody waits for this answer.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
        Ok(())
    }

    fn send(&mut self, unique: u64, reply: Result<Vec<u8>, i32>) -> std::io::Result<()> {
        let (err, body) = match reply {
            Ok(b) => (0i32, b),
            Err(e) => (-e, Vec::new()),
        };
        self.out.clear();
        put32(&mut self.out, (OUT_HEADER + body.len()) as u32);
        self.out.extend_from_slice(&err.to_ne_bytes());
        put64(&mut self.out, unique);
        self.out.extend_from_slice(&body);
        self.write_out()
    }
}

/// `struct fuse_init_out`: protocol 7.31 at most (what we implement), no optional features.
fn init_reply(arg: &[u8]) -> Vec<u8> {
    let minor = u32_at(arg, 4).min(31);
    let readahead = u32_at(arg, 8);
    let mut v = Vec::with_capacity(64);
    put32(&mut v, 7);
    put32(&mut v, minor);
    put32(&mut v, readahead);
    put32(&mut v, 0); // flags
    v.extend_from_slice(&0u16.to_ne_bytes()); // max_background
    v.extend_from_slice(&0u16.to_ne_bytes()); // congestion_threshold
    put32(&mut v, 4096); // max_write
    put32(&mut v, 1); // time_gran
    v.extend_from_slice(&0u16.to_ne_bytes()); // max_pages
    v.extend_from_slice(&0u16.to_ne_bytes()); // map_alignment
    put32(&mut v, 0); // flags2
    v.resize(64, 0);
    v
}

/// READDIR of the root: `.`, `..` and the files, each a `struct fuse_dirent` padded to 8.
fn readdir(files: &dyn Files, arg: &[u8]) -> Vec<u8> {
    let offset = u64_at(arg, 8) as usize;
    let size = u32_at(arg, 16) as usize;
    let mut names: Vec<(&str, u64, u32)> = vec![(".", ROOT, 4), ("..", ROOT, 4)];
    for (i, n) in files.names().iter().enumerate() {
        names.push((n, i as u64 + 2, 8));
    }
    let mut v = Vec::new();
    for (k, (name, ino, typ)) in names.iter().enumerate().skip(offset) {
        let len = 24 + name.len();
        let padded = (len + 7) & !7;
        if v.len() + padded > size {
            break;
        }
        put64(&mut v, *ino);
        put64(&mut v, k as u64 + 1);
        put32(&mut v, name.len() as u32);
        put32(&mut v, *typ);
        v.extend_from_slice(name.as_bytes());
        v.resize(v.len() + padded - len, 0);
    }
    v
}
