//! Test harness: a real berthd process on a temp socket with a temp root, and a tiny raw
//! HTTP/1.1 client (so tests can also send what well-behaved clients never would).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    /// The data root (`--root`): `dir/root` unless the test chose one.
    pub root: PathBuf,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Daemon {
        Self::start_full(None, extra)
    }

    /// A daemon whose data root is `root` (e.g. a small filesystem the test mounted).
    pub fn start_with_root(root: &Path) -> Daemon {
        Self::start_full(Some(root), &[])
    }

    fn start_full(root: Option<&Path>, extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berthd-test")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = dir.path().join("run/berth.sock");
        let root = root.map_or_else(|| dir.path().join("root"), Path::to_path_buf);
        let child = Self::spawn(dir.path(), &sock, &root, extra);
        let mut d = Daemon {
            child,
            dir,
            sock,
            root,
        };
        d.wait_ready();
        d
    }

    /// Stops this daemon with SIGTERM and starts a new one on the same root and socket.
    pub fn restart(&mut self) {
        let st = self.terminate();
        assert!(st.success(), "{st}: {}", self.log());
        self.child = Self::spawn(self.dir.path(), &self.sock, &self.root, &[]);
        self.wait_ready();
    }

    fn spawn(dir: &Path, sock: &Path, root: &Path, extra: &[&str]) -> Child {
        let exe = Path::new(env!("CARGO_BIN_EXE_berthd"));
        let monitor = exe.with_file_name("berth-monitor");
        assert!(
            monitor.exists(),
            "{} is missing: the engine runs containers through it; build it first (cargo build -p berth-monitor) or test the whole workspace",
            monitor.display()
        );
        Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--root")
            .arg(root)
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .args(["--bridge", "none"]) // tests run many daemons: no shared bridge
            .arg("--pidfile")
            .arg(dir.join("berthd.pid"))
            .args(extra)
            .stdin(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("berthd.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("berthd exited early ({st}): {}", self.log());
            }
            if UnixStream::connect(&self.sock).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "berthd did not listen on {} within 30s: {}",
            self.sock.display(),
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn req(&self, method: &str, path: &str, body: &[u8]) -> Resp {
        request(
            &self.sock,
            method,
            path,
            &[("Content-Type", "application/json")],
            body,
        )
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, b"")
    }

    pub fn post_json(&self, path: &str, v: &serde_json::Value) -> Resp {
        self.req("POST", path, v.to_string().as_bytes())
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("berthd did not exit on SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Containers outlive berthd (live-restore): remove what the test left running.
            let list = self.get("/v1.47/containers/json?all=1").json();
            for c in list.as_array().into_iter().flatten() {
                if let Some(id) = c["Id"].as_str() {
                    self.req("DELETE", &format!("/v1.47/containers/{id}?force=1"), b"");
                }
            }
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends one request with `Connection: close` and reads the whole reply.
pub fn request(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (e.g. 413) before reading everything: ignore write errors.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "unparsable reply to {method} {path}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Splits a raw reply into status, headers and (de-chunked) body.
pub fn parse_response(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = nl + 2;
        if b.len() < start + size {
            out.extend_from_slice(&b[start..]);
            break;
        }
        out.extend_from_slice(&b[start..start + size]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// Reads from `s` until the end of the HTTP head; returns (head, bytes read past it).
pub fn read_head(s: &mut UnixStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = s.read(&mut tmp).unwrap();
        assert!(
            n > 0,
            "connection closed before the reply head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
    }
}

/// A rootfs tar with the host's busybox and a few applet links.
pub fn busybox_rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    for (p, m) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        dir(&mut b, p, m);
    }
    let bb = std::fs::read("/bin/busybox").expect("the host's /bin/busybox (busybox-static)");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    for app in [
        "sh", "echo", "true", "false", "sleep", "cat", "ls", "ps", "id",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{app}"), "busybox")
            .unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(passwd.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    b.into_inner().unwrap()
}

/// Imports the busybox rootfs as `name` (POST /images/create?fromSrc=-).
pub fn import_busybox(d: &Daemon, name: &str) {
    let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
    let r = request(
        &d.sock,
        "POST",
        &format!("/v1.47/images/create?fromSrc=-&repo={repo}&tag={tag}"),
        &[("Content-Type", "application/x-tar")],
        &busybox_rootfs_tar(),
    );
    assert_eq!(r.status, 200, "import: {}", r.text());
    assert!(!r.text().contains("errorDetail"), "import: {}", r.text());
}
