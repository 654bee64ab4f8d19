//! The json-file log writer: a container's output, split into lines (a partial line waits for
//! its end, a long one is cut every [`MAX_LINE`] bytes), one write(2) per chunk of output,
//! rotated by size (`max-size`, `max-file`) as Docker does.
use super::format::{encode_entry, rotated_name, StreamKind, MAX_LINE};
use crate::error::{IoContext, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    /// Bytes a file may hold (0 = unlimited).
    max_size: u64,
    /// Files kept, the current one included (>= 1).
    max_file: u32,
    /// The unfinished line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    /// Encoded entries of the current chunk, written with one write(2).
    pending: Vec<u8>,
    /// Timestamp of the current chunk (one clock read per read(2) of output).
    now: String,
}

fn index(stream: StreamKind) -> usize {
    match stream {
        StreamKind::Stdout => 0,
        StreamKind::Stderr => 1,
    }
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64, max_file: u32) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_ctx(|| format!("open log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            partial: [Vec::new(), Vec::new()],
            pending: Vec::new(),
            now: String::new(),
        })
    }

    /// Log a chunk of `stream`'s output: its complete lines now, the rest with what follows.
    pub fn write(&mut self, stream: StreamKind, data: &[u8]) {
        self.now = berth_fsutil::rfc3339_nano_now();
        let s = index(stream);
        let mut buf = std::mem::take(&mut self.partial[s]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.entry(stream, &buf[start..end]);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[s] = buf;
        self.flush();
    }

    /// The output ended: log the unfinished lines as they are.
    pub fn flush_partial(&mut self) {
        self.now = berth_fsutil::rfc3339_nano_now();
        for stream in [StreamKind::Stdout, StreamKind::Stderr] {
            let b = std::mem::take(&mut self.partial[index(stream)]);
            if !b.is_empty() {
                self.entry(stream, &b);
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            if self.file.write_all(&self.pending).is_ok() {
                self.size += self.pending.len() as u64;
            }
            self.pending.clear();
        }
        if self.pending.capacity() > 256 * 1024 {
            self.pending = Vec::new();
        }
    }

    fn entry(&mut self, stream: StreamKind, line: &[u8]) {
        let start = self.pending.len();
        encode_entry(&mut self.pending, stream, line, &self.now);
        if self.max_size > 0
            && self.size + start as u64 > 0
            && self.size + self.pending.len() as u64 > self.max_size
        {
            // This entry does not fit: write what came before it, rotate, keep the entry.
            let entry = self.pending.split_off(start);
            self.flush();
            if self.size > 0 {
                self.rotate();
            }
            self.pending = entry;
        }
    }

    /// `path.(n-1)` is dropped, `path.i` becomes `path.(i+1)`, `path` becomes `path.1`, and
    /// a new empty `path` is started (with max-file 1: `path` is emptied).
    fn rotate(&mut self) {
        if self.max_file > 1 {
            for i in (1..self.max_file - 1).rev() {
                let _ =
                    std::fs::rename(rotated_name(&self.path, i), rotated_name(&self.path, i + 1));
            }
            let _ = std::fs::rename(&self.path, rotated_name(&self.path, 1));
        }
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
        {
            self.file = f;
            self.size = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{log_files, parse_line, LogEntry};
    use super::*;
    use std::io::BufRead;

    fn read_all(path: &Path) -> Vec<LogEntry> {
        let mut out = Vec::new();
        for f in log_files(path) {
            let r = std::io::BufReader::new(File::open(&f).unwrap());
            for l in r.split(b'\n') {
                out.push(parse_line(&l.unwrap()).expect("every line is an entry"));
            }
        }
        out
    }

    fn data(entries: &[LogEntry]) -> Vec<(StreamKind, String)> {
        entries
            .iter()
            .map(|e| (e.stream, String::from_utf8_lossy(&e.data).into_owned()))
            .collect()
    }

    #[test]
    fn partial_lines_wait_for_their_end_per_stream() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(StreamKind::Stdout, b"hel");
        w.write(StreamKind::Stderr, b"err one\nerr ");
        assert_eq!(
            data(&read_all(&p)),
            [(StreamKind::Stderr, "err one\n".into())]
        );
        w.write(StreamKind::Stdout, b"lo\nwor");
        w.flush_partial();
        assert_eq!(
            data(&read_all(&p)),
            [
                (StreamKind::Stderr, "err one\n".into()),
                (StreamKind::Stdout, "hello\n".into()),
                (StreamKind::Stdout, "wor".into()),
                (StreamKind::Stderr, "err ".into()),
            ]
        );
        let e = &read_all(&p)[0];
        // RFC 3339 with nanoseconds, trailing zeros trimmed (as Go's RFC3339Nano).
        assert!(
            e.time.ends_with('Z') && (20..=30).contains(&e.time.len()),
            "{}",
            e.time
        );
    }

    /// A line without its end is logged in 16 KiB pieces as it comes; a line that ends in the
    /// chunk read is logged whole (Docker would cut it too: left as it was).
    #[test]
    fn unfinished_long_lines_are_cut_at_16k() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        let mut long = vec![b'x'; MAX_LINE * 2 + 10];
        long.push(b'\n');
        w.write(StreamKind::Stdout, &long[..MAX_LINE + 5]);
        w.write(StreamKind::Stdout, &long[MAX_LINE + 5..]);
        let got: Vec<usize> = read_all(&p).iter().map(|e| e.data.len()).collect();
        assert_eq!(got, [MAX_LINE, MAX_LINE + 11]);
        let whole: Vec<u8> = read_all(&p).into_iter().flat_map(|e| e.data).collect();
        assert_eq!(whole, long);
    }

    #[test]
    fn rotation_keeps_max_file_files_under_max_size() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let max_size = 400;
        let mut w = LogWriter::open(&p, max_size, 3).unwrap();
        let lines: Vec<String> = (0..40).map(|i| format!("line number {i:02}\n")).collect();
        for l in &lines {
            w.write(StreamKind::Stdout, l.as_bytes());
        }
        let files = log_files(&p);
        assert_eq!(
            files,
            vec![rotated_name(&p, 2), rotated_name(&p, 1), p.clone()]
        );
        for f in &files[..2] {
            let n = std::fs::metadata(f).unwrap().len();
            assert!(n <= max_size && n > max_size / 2, "{}: {n}", f.display());
        }
        // What is kept is the newest lines, in order, none cut.
        let kept = data(&read_all(&p));
        assert!(kept.len() < lines.len());
        let want: Vec<(StreamKind, String)> = lines[lines.len() - kept.len()..]
            .iter()
            .map(|l| (StreamKind::Stdout, l.clone()))
            .collect();
        assert_eq!(kept, want);
    }

    #[test]
    fn max_file_one_truncates_and_an_oversized_entry_still_lands() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 100, 1).unwrap();
        w.write(StreamKind::Stdout, b"first\n");
        w.write(StreamKind::Stdout, &[b'y'; 150]);
        w.write(StreamKind::Stdout, b"\n");
        assert_eq!(log_files(&p), vec![p.clone()]);
        let got = read_all(&p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), 151);
        // A reopened writer appends to what is there.
        drop(w);
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        w.write(StreamKind::Stderr, b"again\n");
        assert_eq!(read_all(&p).len(), 2);
    }
}
