//! Giving back memory the long-lived poll loop does not need.

/// One mapping of /proc/self/smaps: start, end, permissions, path, anonymous kB.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    anon_kb: u64,
}

fn parse_smaps(smaps: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for l in smaps.lines() {
        let mut f = l.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                maps.push(Mapping {
                    start: a,
                    end: b,
                    perms: f.next().unwrap_or("").to_string(),
                    path: l.split_whitespace().nth(5).unwrap_or("").to_string(),
                    anon_kb: 0,
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let (Some(m), Some(kb)) = (
                maps.last_mut(),
                f.next().and_then(|v| v.parse::<u64>().ok()),
            ) {
                m.anon_kb = kb;
            }
        }
    }
    maps
}

/// Drop our page-table entries for file pages we have not modified (our code, read-only data
/// and the libraries'). The container create path touches much code that the steady-state
/// poll loop never runs again; the pages stay in the page cache and fault back in if needed.
/// Only file-backed, non-writable mappings with no anonymous (copied-on-write) pages are
/// touched, so MADV_DONTNEED cannot lose data (relocated RELRO pages are anonymous: skipped).
/// Also drops the part of the stack far below the current frame.
pub(crate) fn trim_memory() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    for m in parse_smaps(&smaps) {
        let (a, b) = (m.start, m.end);
        if m.path == "[stack]" {
            let hi = sp.saturating_sub(128 * 1024) & !4095;
            if hi > a {
                // SAFETY: [a, hi) is the part of our own stack more than 128 KiB below the
                // current frame (single-threaded; SIGCHLD comes through a signalfd, no signal
                // handler runs on this stack): no live data; it reads back as zeroes if reused.
                unsafe { libc::madvise(a as *mut libc::c_void, hi - a, libc::MADV_DONTNEED) };
            }
            continue;
        }
        if !m.path.starts_with('/') || m.anon_kb != 0 || !(m.perms == "r-xp" || m.perms == "r--p") {
            continue;
        }
        // SAFETY: [a, b) is a private, non-writable file mapping of this process without
        // anonymous pages: every resident page equals the file's content and is re-read from
        // the page cache on the next access. Advice (MADV_RANDOM) changes no memory.
        unsafe {
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_RANDOM);
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED);
        }
    }
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_mappings_with_their_anonymous_size() {
        let smaps = "\
55d0a0000000-55d0a0010000 r--p 00000000 08:01 123 /usr/bin/berth-monitor
Size:                 64 kB
Anonymous:             0 kB
55d0a0010000-55d0a0020000 r--p 00010000 08:01 123 /usr/bin/berth-monitor
Anonymous:             8 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Anonymous:           132 kB
";
        let m = parse_smaps(smaps);
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].start, m[0].end, m[0].perms.as_str(), m[0].anon_kb),
            (0x55d0a0000000, 0x55d0a0010000, "r--p", 0)
        );
        assert_eq!(
            (m[1].path.as_str(), m[1].anon_kb),
            ("/usr/bin/berth-monitor", 8)
        );
        assert_eq!((m[2].path.as_str(), m[2].anon_kb), ("[stack]", 132));
    }
}
