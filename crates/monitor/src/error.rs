//! The monitor's own errors. Each becomes a [`TaskError`] for berthd (see [`Error::task_error`]).
use crate::task_error::{ErrorKind, TaskError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime failed (create, start, exec; the init's own report included).
    #[error("{0}")]
    Runtime(#[from] berth_runtime::Error),
    /// A system call or file operation of the monitor failed; `ctx` names it. Not a
    /// `#[source]`: the message carries the inner error once.
    #[error("{ctx}: {err}")]
    Io { ctx: String, err: std::io::Error },
    /// berthd's config or control messages are not what the protocol says.
    #[error("{0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(ctx: impl Into<String>, err: std::io::Error) -> Error {
        Error::Io {
            ctx: ctx.into(),
            err,
        }
    }

    /// `ctx` and the calling thread's last OS error.
    pub fn last_os(ctx: impl Into<String>) -> Error {
        Error::io(ctx, std::io::Error::last_os_error())
    }

    /// What berthd is told (the message on one line, as it always was).
    pub fn task_error(&self) -> TaskError {
        let mut t = match self {
            Error::Runtime(e) => TaskError::from_runtime(e),
            Error::Io { err, .. } => {
                let errno = err.raw_os_error();
                TaskError::new(ErrorKind::of_errno(errno), errno, self.to_string())
            }
            Error::Protocol(m) => TaskError::new(ErrorKind::Other, None, m.clone()),
        };
        t.message = t.message.replace('\n', " ");
        t
    }
}

/// Name the failed call of an io result.
pub trait IoContext<T> {
    fn ctx(self, ctx: impl Into<String>) -> Result<T>;
    fn with_ctx<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, ctx: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::io(ctx, e))
    }
    fn with_ctx<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_errors_become_task_errors_on_one_line() {
        let e = Error::io(
            "bind /run/x.sock",
            std::io::Error::from_raw_os_error(libc::EADDRINUSE),
        );
        let t = e.task_error();
        assert_eq!(
            (t.kind, t.errno),
            (ErrorKind::Other, Some(libc::EADDRINUSE))
        );
        assert!(t.message.starts_with("bind /run/x.sock: "), "{}", t.message);
        let t = Error::io("pipe2", std::io::Error::from_raw_os_error(libc::EMFILE)).task_error();
        assert_eq!(t.kind, ErrorKind::Resource);
        let t = Error::Protocol("berthd did not ask\nto start".into()).task_error();
        assert_eq!(
            (t.kind, t.message.as_str()),
            (ErrorKind::Other, "berthd did not ask to start")
        );
        let t = Error::from(berth_runtime::Error::Config("field x".into())).task_error();
        assert_eq!(
            (t.kind, t.message.as_str()),
            (ErrorKind::Config, "config.json: field x")
        );
    }
}
