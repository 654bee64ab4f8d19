//! Listening addresses (`-H unix:///path`, `-H tcp://127.0.0.1:2375`) and socket set-up.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where berthd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// Errors setting up a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid host {0:?}: expected unix:///path or tcp://ADDR:PORT")]
    BadHost(String),
    #[error("{path}: another daemon is already listening on this socket")]
    InUse { path: PathBuf },
    #[error("{path}: exists and is not a socket; refusing to remove it")]
    NotSocket { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bind {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl FromStr for Host {
    type Err = ListenError;
    fn from_str(s: &str) -> Result<Self, ListenError> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() || !p.starts_with('/') {
                return Err(ListenError::BadHost(s.to_string()));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            return a
                .parse::<SocketAddr>()
                .map(Host::Tcp)
                .map_err(|_| ListenError::BadHost(s.to_string()));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(ListenError::BadHost(s.to_string()))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ListenError + 'a {
    move |source| ListenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Binds a unix socket at `path`: creates the parent directory, removes a stale socket
/// (one nobody answers on), sets mode 0660 and group `gid` (when given).
pub fn bind_unix(path: &Path, gid: Option<u32>) -> Result<tokio::net::UnixListener, ListenError> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) => {
            if !md.file_type().is_socket() {
                return Err(ListenError::NotSocket {
                    path: path.to_path_buf(),
                });
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ListenError::InUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(io("remove stale socket", path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("stat", path)(e)),
    }
    // Bind with a restrictive umask-independent sequence: bind, then chmod/chown before
    // anyone is told about the socket.
    let std_listener = std::os::unix::net::UnixListener::bind(path).map_err(io("bind", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io("chmod", path))?;
    if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g)).map_err(io("chown", path))?;
    }
    std_listener
        .set_nonblocking(true)
        .map_err(io("set non-blocking", path))?;
    tokio::net::UnixListener::from_std(std_listener).map_err(io("register listener", path))
}

/// Binds a TCP listener.
pub fn bind_tcp(addr: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    let l =
        std::net::TcpListener::bind(addr).map_err(|source| ListenError::Tcp { addr, source })?;
    l.set_nonblocking(true)
        .map_err(|source| ListenError::Tcp { addr, source })?;
    tokio::net::TcpListener::from_std(l).map_err(|source| ListenError::Tcp { addr, source })
}

/// Resolves a group given by name (looked up in /etc/group) or number.
pub fn resolve_group(group: &str) -> Result<u32, String> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let data =
        std::fs::read_to_string("/etc/group").map_err(|e| format!("read /etc/group: {e}"))?;
    for line in data.lines() {
        let mut f = line.split(':');
        if f.next() == Some(group) {
            let _pw = f.next();
            if let Some(gid) = f.next().and_then(|g| g.parse::<u32>().ok()) {
                return Ok(gid);
            }
        }
    }
    Err(format!("group {group:?} not found in /etc/group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        assert_eq!(
            "unix:///run/x.sock".parse::<Host>().unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            "tcp://127.0.0.1:2375".parse::<Host>().unwrap(),
            Host::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert!("unix://rel".parse::<Host>().is_err());
        assert!("http://x".parse::<Host>().is_err());
        assert!("tcp://nohost".parse::<Host>().is_err());
        assert_eq!(resolve_group("0").unwrap(), 0);
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert!(resolve_group("no-such-group-xyz").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stale_socket_is_replaced_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/s.sock");
        let l = bind_unix(&p, None).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o660);
        // A live listener: refused.
        assert!(matches!(
            bind_unix(&p, None),
            Err(ListenError::InUse { .. })
        ));
        drop(l);
        // Stale socket file: removed and re-bound.
        let _l2 = bind_unix(&p, Some(0)).unwrap();
        let f = dir.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        assert!(matches!(
            bind_unix(&f, None),
            Err(ListenError::NotSocket { .. })
        ));
    }
}
