//! Docker's json-file log format: one JSON object a line,
//! `{"log":"<chunk>","stream":"stdout"|"stderr","time":"<RFC 3339 nano>"}`, a chunk being a line
//! with its `\n` or a piece of at most [`MAX_LINE`] bytes of a longer one; rotated files are
//! `<path>.1` (newest) to `<path>.<max-file - 1>`.
use std::path::{Path, PathBuf};

/// Longest chunk of a line in one entry (Docker's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

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

    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// The 8-byte header of a multiplexed frame (non-tty attach and logs): stream byte, 3 zeroes,
/// payload length (big endian).
pub fn frame_header(stream: StreamKind, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream.stream_byte(), 0, 0, 0, l[0], l[1], l[2], l[3]]
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
        out.extend_from_slice(&frame_header(self.stream, payload.len()));
        out.extend_from_slice(&payload);
        out
    }
}

/// Append the entry for `chunk` (its line, `\n` included) to `out`.
pub fn encode_entry(out: &mut Vec<u8>, stream: StreamKind, chunk: &[u8], time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    json_escape_into(out, chunk);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// JSON string body (without quotes) of `b`, invalid UTF-8 replaced (as Docker does).
fn json_escape_into(out: &mut Vec<u8>, b: &[u8]) {
    let text = String::from_utf8_lossy(b);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
}

/// One line of a log file (None: not an entry, e.g. cut short by a crash).
pub fn parse_line(line: &[u8]) -> Option<LogEntry> {
    #[derive(serde::Deserialize)]
    struct J {
        log: String,
        stream: String,
        time: String,
    }
    let j: J = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        stream: if j.stream == "stderr" {
            StreamKind::Stderr
        } else {
            StreamKind::Stdout
        },
        data: j.log.into_bytes(),
        time: j.time,
    })
}

/// The `i`th rotated file of the log at `path` (1 = the newest).
pub fn rotated_name(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// The files of the log at `path`, oldest first: the rotated ones there are, then `path`.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(k) = n
                    .strip_prefix(&format!("{name}."))
                    .and_then(|k| k.parse::<u32>().ok())
                {
                    rotated.push((k, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|x| std::cmp::Reverse(x.0));
    let mut v: Vec<PathBuf> = rotated.into_iter().map(|x| x.1).collect();
    v.push(path.to_path_buf());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: StreamKind, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_entry(&mut out, stream, chunk, "2024-01-02T03:04:05.000000006Z");
        out
    }

    #[test]
    fn escaping_matches_docker_and_parses_back() {
        let e = entry(StreamKind::Stderr, b"a\"b\\c\td\re\x01f\n");
        assert_eq!(
            String::from_utf8(e.clone()).unwrap(),
            "{\"log\":\"a\\\"b\\\\c\\td\\re\\u0001f\\n\",\"stream\":\"stderr\",\
             \"time\":\"2024-01-02T03:04:05.000000006Z\"}\n"
        );
        let p = parse_line(&e).unwrap();
        assert_eq!(p.stream, StreamKind::Stderr);
        assert_eq!(p.data, b"a\"b\\c\td\re\x01f\n");
        assert_eq!(p.time, "2024-01-02T03:04:05.000000006Z");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_unicode_kept() {
        let p = parse_line(&entry(StreamKind::Stdout, b"\xff\xfeok \xc3\xa9\n")).unwrap();
        assert_eq!(String::from_utf8(p.data).unwrap(), "\u{fffd}\u{fffd}ok é\n");
        assert!(parse_line(b"{\"log\":\"cut").is_none());
    }

    #[test]
    fn frames_and_timestamps() {
        let e = LogEntry {
            stream: StreamKind::Stderr,
            data: b"hi\n".to_vec(),
            time: "T".into(),
        };
        assert_eq!(e.to_bytes(false, true), b"hi\n");
        assert_eq!(e.to_bytes(true, true), b"T hi\n");
        assert_eq!(e.to_bytes(true, false), b"\x02\0\0\0\0\0\0\x05T hi\n");
        assert_eq!(
            frame_header(StreamKind::Stdout, 258),
            [1, 0, 0, 0, 0, 0, 1, 2]
        );
    }

    #[test]
    fn rotated_files_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        assert_eq!(rotated_name(&p, 2), d.path().join("c-json.log.2"));
        for f in [
            "c-json.log",
            "c-json.log.1",
            "c-json.log.2",
            "c-json.log.x",
            "other.log.1",
        ] {
            std::fs::write(d.path().join(f), b"").unwrap();
        }
        assert_eq!(
            log_files(&p),
            vec![rotated_name(&p, 2), rotated_name(&p, 1), p.clone()]
        );
    }
}
