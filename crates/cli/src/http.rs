//! A small synchronous HTTP/1.1 client over a unix socket or TCP.
//!
//! Only what a Docker Engine API client needs: request with optional body
//! (buffered or streamed with chunked encoding), response bodies delimited by
//! Content-Length, chunked transfer encoding or connection close, and
//! connection hijacking (`Connection: Upgrade`) for attach/exec.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    Tcp(String),
}

impl Endpoint {
    /// Parses `unix:///path`, `tcp://host:port`, `http://host:port` or a bare absolute path.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("invalid host {s:?}: empty socket path"));
            }
            Ok(Endpoint::Unix(p.to_string()))
        } else if let Some(a) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                return Err(format!("invalid host {s:?}: empty address"));
            }
            if a.contains(':') {
                Ok(Endpoint::Tcp(a.to_string()))
            } else {
                Ok(Endpoint::Tcp(format!("{a}:2375")))
            }
        } else if s.starts_with('/') {
            Ok(Endpoint::Unix(s.to_string()))
        } else {
            Err(format!(
                "invalid host {s:?}: unsupported protocol (use unix:// or tcp://)"
            ))
        }
    }

    pub fn url(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{p}"),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
        }
    }

    pub fn connect(&self) -> io::Result<Conn> {
        match self {
            Endpoint::Unix(p) => UnixStream::connect(p).map(Conn::Unix),
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
        }
    }

    fn host_header(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "api.moby.localhost",
            Endpoint::Tcp(a) => a,
        }
    }
}

/// A connected stream.
#[derive(Debug)]
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    pub fn try_clone(&self) -> io::Result<Conn> {
        match self {
            Conn::Unix(s) => s.try_clone().map(Conn::Unix),
            Conn::Tcp(s) => s.try_clone().map(Conn::Tcp),
        }
    }
    /// Half-closes the write side (tells the daemon stdin is finished).
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }
    pub fn shutdown_both(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            // send(MSG_NOSIGNAL): a daemon hanging up must give EPIPE, not kill us with
            // SIGPIPE (which berth leaves at its default so `berth ps | head` ends quietly).
            Conn::Unix(s) => loop {
                use std::os::unix::io::AsRawFd;
                // SAFETY: the fd is owned by `s` and open; buf is a valid readable slice.
                let n = unsafe {
                    libc::send(
                        s.as_raw_fd(),
                        buf.as_ptr().cast(),
                        buf.len(),
                        libc::MSG_NOSIGNAL,
                    )
                };
                if n >= 0 {
                    break Ok(n as usize);
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    break Err(e);
                }
            },
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

/// Request body.
pub enum Body<'a> {
    None,
    Bytes(&'a [u8], &'a str),
    /// Streamed with chunked transfer encoding; the str is the content type.
    Stream(&'a mut dyn Read, &'a str),
}

/// How the response body is delimited.
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Eof,
}

/// A response whose body is read lazily.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<Conn>,
    framing: Framing,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .finish()
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads the whole body.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }

    /// Gives up HTTP framing and returns the raw connection (for hijacked streams):
    /// a buffered reader holding any bytes already received, plus a writable clone.
    pub fn into_raw(self) -> io::Result<(BufReader<Conn>, Conn)> {
        let w = self.reader.get_ref().try_clone()?;
        Ok((self.reader, w))
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Eof => self.reader.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let n = (*left).min(buf.len() as u64) as usize;
                let got = self.reader.read(&mut buf[..n])?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before the end of the response body",
                    ));
                }
                *left -= got as u64;
                Ok(got)
            }
            Framing::Chunked { left, done } => loop {
                if *done {
                    return Ok(0);
                }
                if *left > 0 {
                    let n = (*left).min(buf.len() as u64) as usize;
                    let got = self.reader.read(&mut buf[..n])?;
                    if got == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed inside a chunk",
                        ));
                    }
                    *left -= got as u64;
                    if *left == 0 {
                        let mut crlf = String::new();
                        self.reader.read_line(&mut crlf)?;
                    }
                    return Ok(got);
                }
                let mut line = String::new();
                if self.reader.read_line(&mut line)? == 0 {
                    // Daemon closed without the final chunk: treat as end.
                    *done = true;
                    return Ok(0);
                }
                let size_str = line.trim().split(';').next().unwrap_or("").trim();
                if size_str.is_empty() {
                    continue;
                }
                let size = u64::from_str_radix(size_str, 16)
                    .map_err(|_| invalid(format!("bad chunk size line {:?}", line.trim())))?;
                if size == 0 {
                    // trailers until empty line
                    loop {
                        let mut t = String::new();
                        if self.reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                            break;
                        }
                    }
                    *done = true;
                    return Ok(0);
                }
                *left = size;
            },
        }
    }
}

/// Sends one request on a fresh connection and reads the response head.
pub fn request(
    ep: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Body<'_>,
    upgrade: bool,
) -> io::Result<Response> {
    let mut conn = ep.connect()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth-cli/{}\r\n",
        ep.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if upgrade {
        head.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n");
    }
    match &body {
        Body::None => {
            if method == "POST" || method == "PUT" {
                head.push_str("Content-Length: 0\r\n");
            }
        }
        Body::Bytes(b, ct) => {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        Body::Stream(_, ct) => {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n"
            ));
        }
    }
    head.push_str("\r\n");
    // A daemon may answer (e.g. 404) and close before reading our body: then the
    // write fails with EPIPE/ECONNRESET, but its response is still worth reading.
    let sent = send_all(&mut conn, head.as_bytes(), body);
    match sent {
        Ok(()) => conn.flush()?,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            return read_head(conn, method == "HEAD").map_err(|_| e);
        }
        Err(e) => return Err(e),
    }
    read_head(conn, method == "HEAD")
}

fn send_all(conn: &mut Conn, head: &[u8], body: Body<'_>) -> io::Result<()> {
    conn.write_all(head)?;
    match body {
        Body::None => {}
        Body::Bytes(b, _) => conn.write_all(b)?,
        Body::Stream(r, _) => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut w = io::BufWriter::with_capacity(128 * 1024, &mut *conn);
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                write!(w, "{n:x}\r\n")?;
                w.write_all(&buf[..n])?;
                w.write_all(b"\r\n")?;
            }
            w.write_all(b"0\r\n\r\n")?;
            w.flush()?;
        }
    }
    Ok(())
}

fn read_head(conn: Conn, head_only: bool) -> io::Result<Response> {
    let mut reader = BufReader::with_capacity(32 * 1024, conn);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("daemon closed the connection without a response"));
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let status = parse_status_line(&line)?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Err(invalid("connection closed inside response headers"));
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    // A 100 Continue is followed by the real response.
    if status == 100 {
        return read_head(reader.into_inner(), head_only);
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let framing = if head_only || status == 204 || status == 304 {
        Framing::Length(0)
    } else if status == 101 {
        Framing::Eof
    } else if get("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        Framing::Chunked {
            left: 0,
            done: false,
        }
    } else if let Some(cl) = get("Content-Length") {
        Framing::Length(
            cl.parse()
                .map_err(|_| invalid(format!("bad Content-Length {cl:?}")))?,
        )
    } else {
        Framing::Eof
    };
    Ok(Response {
        status,
        headers,
        reader,
        framing,
    })
}

/// Parses `HTTP/1.1 200 OK` into 200.
pub fn parse_status_line(line: &str) -> io::Result<u16> {
    let mut it = line.split_whitespace();
    let proto = it.next().unwrap_or("");
    if !proto.starts_with("HTTP/") {
        return Err(invalid(format!(
            "malformed HTTP status line {:?}",
            line.trim()
        )));
    }
    it.next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| invalid(format!("malformed HTTP status line {:?}", line.trim())))
}

/// Percent-encodes a query component.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decoder for the Docker multiplexed stream format: 8-byte header
/// `[stream, 0, 0, 0, len(u32 big endian)]` then `len` bytes.
pub struct Demux<R: Read> {
    inner: R,
}

impl<R: Read> Demux<R> {
    pub fn new(inner: R) -> Self {
        Demux { inner }
    }
    /// Next frame `(stream, payload)`; `None` at clean EOF.
    pub fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        let mut hdr = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            match self.inner.read(&mut hdr[got..]) {
                Ok(0) => {
                    if got == 0 {
                        return Ok(None);
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stream ended inside a frame header",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if hdr[0] > 3 || hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
            return Err(invalid(format!("unexpected stream frame header {:?}", hdr)));
        }
        let len = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        let mut payload = vec![0u8; len];
        self.inner.read_exact(&mut payload)?;
        Ok(Some((hdr[0], payload)))
    }
}

/// Copies a multiplexed stream to stdout/stderr writers until EOF.
pub fn demux_copy<R: Read>(r: R, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let mut d = Demux::new(r);
    while let Some((s, p)) = d.next_frame()? {
        match s {
            2 => {
                err.write_all(&p)?;
                err.flush()?;
            }
            // 3 is the "system error" stream some daemons use: show it on stderr.
            3 => {
                err.write_all(&p)?;
                err.flush()?;
            }
            _ => {
                out.write_all(&p)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
