//! The files a provider reads on every render (the host's /proc files, the container's cgroup
//! files), opened once and read with one `pread` at offset 0 each time: proc and cgroup files
//! are seq_files, which render anew for a read at offset 0. One syscall per file instead of
//! open + statx + read + read + close, and no path walk. A file that cannot be opened (no
//! memsw accounting, say) is remembered as missing: it does not appear later.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Large enough for a whole meminfo, memory.stat or cpuinfo of a few dozen CPUs in one read.
const FIRST_READ: usize = 16384;

#[derive(Default)]
pub struct Kept {
    files: RefCell<HashMap<PathBuf, Option<File>>>,
    buf: RefCell<Vec<u8>>,
}

impl Kept {
    /// The whole text of `p` now; None when it is missing or unreadable.
    pub fn read(&self, p: &Path) -> Option<String> {
        let mut files = self.files.borrow_mut();
        let f = files
            .entry(p.to_path_buf())
            .or_insert_with(|| File::open(p).ok())
            .as_ref()?;
        let mut buf = self.buf.borrow_mut();
        if buf.len() < FIRST_READ {
            buf.resize(FIRST_READ, 0);
        }
        let mut n = 0;
        loop {
            let got = f.read_at(&mut buf[n..], n as u64).ok()?;
            n += got;
            // A seq_file fills the buffer while it has records: a short read is the end.
            if got == 0 || n < buf.len() {
                break;
            }
            let grown = buf.len() * 2;
            buf.resize(grown, 0);
        }
        String::from_utf8(buf[..n].to_vec()).ok()
    }

    pub fn read_u64(&self, p: &Path) -> Option<u64> {
        self.read(p)?.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_live_text_and_large_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "1\n").unwrap();
        let k = Kept::default();
        assert_eq!(k.read(&p).as_deref(), Some("1\n"));
        let big = "x".repeat(FIRST_READ * 3 + 5);
        std::fs::write(&p, &big).unwrap();
        assert_eq!(k.read(&p).as_deref(), Some(big.as_str()));
        assert_eq!(k.read(&d.path().join("missing")), None);
        assert!(k
            .read(Path::new("/proc/meminfo"))
            .unwrap()
            .starts_with("MemTotal:"));
    }
}
