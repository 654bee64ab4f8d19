//! Engine errors: the HTTP status Docker gives each, its message, and the cause kept as the
//! source. A failed container start is typed ([`Error::Task`]) from the monitor's report, and
//! its exit code (Docker's 127 / 126 / 128) comes from that type, not from the message.
use berth_monitor_core::{ErrorKind, TaskError};
use std::fmt;

/// What an error's cause is kept as.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Engine errors. `Display` gives the message the Docker API puts in `{"message": ...}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404. The message is complete, e.g. "No such container: x", "No such image: x:latest".
    #[error("{0}")]
    NotFound(String),
    /// 409, e.g. `Conflict. The container name "/x" is already in use by container "<id>". ...`
    #[error("{0}")]
    Conflict(String),
    /// 400: the request is malformed or names an invalid option.
    #[error("{0}")]
    BadParameter(String),
    /// 304: the operation was a no-op (start of a running container, stop of a stopped one).
    #[error("not modified")]
    NotModified,
    /// 403 (Docker uses it e.g. for "cannot remove a running container" without force? no:
    /// 409; 403 is unused for now but reserved for forbidden operations).
    #[error("{0}")]
    Forbidden(String),
    /// 500: anything else, with context (path, syscall, object) and its cause.
    #[error(transparent)]
    Internal(Internal),
    /// The process of a container or an exec could not be created or started (the runtime's
    /// error as its monitor reported it, typed). 400 when the program cannot be found or run,
    /// else 500; see [`Error::start_exit_code`].
    #[error("failed to create task for container: {0}")]
    Task(#[source] TaskError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A 500: what failed (`context`) and why (`source`, when there is an error behind it).
/// Displays as `context: source`.
#[derive(Debug)]
pub struct Internal {
    context: String,
    source: Option<BoxError>,
}

impl Internal {
    pub fn new(context: impl Into<String>, source: impl Into<BoxError>) -> Internal {
        Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An error with nothing to add: displays as the error itself.
    pub fn cause(source: impl Into<BoxError>) -> Internal {
        Internal::new(String::new(), source)
    }

    pub fn context(&self) -> &str {
        &self.context
    }
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) if self.context.is_empty() => write!(f, "{s}"),
            Some(s) => write!(f, "{}: {s}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for Internal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for Internal {
    fn from(context: String) -> Internal {
        Internal {
            context,
            source: None,
        }
    }
}

impl From<&str> for Internal {
    fn from(context: &str) -> Internal {
        Internal::from(context.to_string())
    }
}

impl Error {
    /// A 500 with a message and no cause.
    pub fn internal_msg(message: impl Into<String>) -> Error {
        Error::Internal(Internal::from(message.into()))
    }

    /// The HTTP status Docker uses for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::BadParameter(_) => 400,
            Error::NotModified => 304,
            Error::Forbidden(_) => 403,
            Error::Internal(_) => 500,
            Error::Task(t) => task_status(t),
        }
    }

    /// Docker's exit code for a container whose start failed with this error: 127 when the
    /// command is not found (or a path to it is not there), 126 when it cannot be invoked,
    /// 128 for anything else.
    pub fn start_exit_code(&self) -> i64 {
        let kind = match self {
            Error::Task(t) => Some(t.kind),
            _ => None,
        };
        match (kind, self.errno()) {
            (Some(ErrorKind::ExecNotFound), _) | (_, Some(libc::ENOENT | libc::ENOTDIR)) => 127,
            (Some(ErrorKind::ExecPermission), _) | (_, Some(libc::EACCES)) => 126,
            _ => 128,
        }
    }

    /// The exit code an exec whose start failed gets: 127 when its command is not found,
    /// else 126.
    pub fn exec_exit_code(&self) -> i64 {
        match self.start_exit_code() {
            127 => 127,
            _ => 126,
        }
    }

    /// The errno behind this error: the one the monitor reported, or that of an I/O or
    /// runtime error among its causes.
    pub fn errno(&self) -> Option<i32> {
        if let Error::Task(t) = self {
            return t.errno;
        }
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            if let Some(e) = c.downcast_ref::<std::io::Error>() {
                return e.raw_os_error();
            }
            if let Some(e) = c.downcast_ref::<berth_runtime::Error>() {
                return e.errno();
            }
            cause = c.source();
        }
        None
    }
}

/// 400 when the program cannot be found or run (Docker's "invalid config" for those), else 500.
fn task_status(t: &TaskError) -> u16 {
    match (t.kind, t.errno) {
        (ErrorKind::ExecNotFound | ErrorKind::ExecPermission, _) => 400,
        (_, Some(libc::ENOENT | libc::EACCES)) => 400,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn task(kind: ErrorKind, errno: Option<i32>) -> Error {
        Error::Task(TaskError::new(kind, errno, "m"))
    }

    #[test]
    fn internal_keeps_its_source_and_the_message() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = Error::Internal(Internal::new("open /x", io));
        assert_eq!(
            e.to_string(),
            format!("open /x: {}", std::io::Error::from_raw_os_error(2))
        );
        assert_eq!(e.status_code(), 500);
        let src = e.source().expect("a source");
        assert_eq!(
            src.downcast_ref::<std::io::Error>()
                .and_then(|e| e.raw_os_error()),
            Some(libc::ENOENT)
        );
        assert_eq!(e.errno(), Some(libc::ENOENT));
        let plain = Error::Internal("no cause".into());
        assert_eq!(
            (plain.to_string().as_str(), plain.source().is_none()),
            ("no cause", true)
        );
        let c = Error::Internal(Internal::cause(std::io::Error::other("x")));
        assert_eq!(c.to_string(), "x");
    }

    #[test]
    fn task_errors_map_to_docker_status_and_exit_codes() {
        let nf = task(ErrorKind::ExecNotFound, Some(libc::ENOENT));
        assert_eq!(nf.to_string(), "failed to create task for container: m");
        assert_eq!(
            (nf.status_code(), nf.start_exit_code(), nf.exec_exit_code()),
            (400, 127, 127)
        );
        let perm = task(ErrorKind::ExecPermission, Some(libc::EACCES));
        assert_eq!(
            (
                perm.status_code(),
                perm.start_exit_code(),
                perm.exec_exit_code()
            ),
            (400, 126, 126)
        );
        // An exec'd path whose interpreter is missing (execve ENOENT), a file mounted on a
        // directory (ENOTDIR), an EACCES from a noexec mount: by errno, as Docker does.
        let enoent = task(ErrorKind::Other, Some(libc::ENOENT));
        assert_eq!((enoent.status_code(), enoent.start_exit_code()), (400, 127));
        let enotdir = task(ErrorKind::Other, Some(libc::ENOTDIR));
        assert_eq!(
            (enotdir.status_code(), enotdir.start_exit_code()),
            (500, 127)
        );
        let eacces = task(ErrorKind::Other, Some(libc::EACCES));
        assert_eq!((eacces.status_code(), eacces.start_exit_code()), (400, 126));
        let cfg = task(ErrorKind::Config, None);
        assert_eq!(
            (
                cfg.status_code(),
                cfg.start_exit_code(),
                cfg.exec_exit_code()
            ),
            (500, 128, 126)
        );
        let other = Error::BadParameter("unable to find user ghost".into());
        assert_eq!(other.start_exit_code(), 128);
    }
}
