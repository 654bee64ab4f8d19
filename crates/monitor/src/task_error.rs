//! Why a container's or an exec's process could not be created or started, typed across the
//! process boundary: the monitor sends `error <TaskError JSON>\n` on its control channel, e.g.
//! `error {"kind":"ExecNotFound","errno":2,"message":"exec: \"nosuch\": executable file not
//! found in $PATH"}`, built from the runtime's typed error; berthd maps the kind (and errno) to
//! an HTTP status and Docker's exit codes without reading the message.
use crate::proto::CTL_ERROR;
use berth_runtime::error::ChildFailure;
use serde::{Deserialize, Serialize};

/// What went wrong, as far as the runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The program to run does not exist or is not found in `$PATH`.
    ExecNotFound,
    /// The program exists but cannot be executed (not a regular file, not executable).
    ExecPermission,
    /// The container's config (config.json, the exec's process) asks for something impossible.
    Config,
    /// A value the kernel or the runtime refused (EINVAL, a malformed id).
    InvalidArgument,
    /// The runtime container is not in a state that allows it (gone, exists, stopped).
    State,
    /// The host ran out of something (memory, pids, fds, space) or a cgroup could not be set.
    Resource,
    /// Anything else (a newer monitor's kind reads as this too).
    #[serde(other)]
    Other,
}

/// A failure of the process's creation or start; `Display` is the message as the runtime gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub kind: ErrorKind,
    /// The errno of the system call that failed, if that is what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    pub message: String,
}

impl ErrorKind {
    /// The kind of a failed system call's errno.
    pub fn of_errno(errno: Option<i32>) -> ErrorKind {
        match errno {
            Some(
                libc::ENOMEM
                | libc::ENOSPC
                | libc::EAGAIN
                | libc::EMFILE
                | libc::ENFILE
                | libc::EDQUOT,
            ) => ErrorKind::Resource,
            Some(libc::EINVAL) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Other,
        }
    }
}

impl TaskError {
    pub fn new(kind: ErrorKind, errno: Option<i32>, message: impl Into<String>) -> TaskError {
        TaskError {
            kind,
            errno,
            message: message.into(),
        }
    }

    /// The runtime's typed error, classified.
    pub fn from_runtime(e: &berth_runtime::Error) -> TaskError {
        use berth_runtime::Error as E;
        let errno = e.errno();
        let kind = match e.child_failure() {
            ChildFailure::ExecNotFound => ErrorKind::ExecNotFound,
            ChildFailure::ExecPermission => ErrorKind::ExecPermission,
            ChildFailure::Config => ErrorKind::Config,
            ChildFailure::Other => match e {
                E::Seccomp(_) => ErrorKind::Config,
                E::BadId(_) => ErrorKind::InvalidArgument,
                E::NotFound(_) | E::Exists(_) | E::State { .. } => ErrorKind::State,
                E::Cgroup(_) => ErrorKind::Resource,
                _ => ErrorKind::of_errno(errno),
            },
        };
        TaskError::new(kind, errno, e.to_string())
    }

    /// The control-channel line: `error <JSON>\n`.
    pub fn to_line(&self) -> String {
        let json = serde_json::to_string(self)
            .unwrap_or_else(|_| format!(r#"{{"kind":"Other","message":{:?}}}"#, self.message));
        format!("{CTL_ERROR} {json}\n")
    }

    /// An answer line that is not the one expected: the error it carries. A line that is not
    /// a typed error (no answer, an unexpected word) is all message, of kind Other.
    pub fn from_line(line: &str) -> TaskError {
        let rest = line.strip_prefix(CTL_ERROR).unwrap_or(line).trim();
        serde_json::from_str(rest).unwrap_or_else(|_| TaskError::new(ErrorKind::Other, None, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::Error as E;

    #[test]
    fn lines_round_trip() {
        let e = TaskError::new(
            ErrorKind::ExecNotFound,
            Some(libc::ENOENT),
            "exec: \"nosuch\": executable file not found in $PATH",
        );
        let line = e.to_line();
        assert_eq!(
            line,
            "error {\"kind\":\"ExecNotFound\",\"errno\":2,\"message\":\"exec: \\\"nosuch\\\": executable file not found in $PATH\"}\n"
        );
        assert_eq!(TaskError::from_line(line.trim_end()), e);
        let e = TaskError::new(ErrorKind::Config, None, "two\nlines");
        assert_eq!(TaskError::from_line(e.to_line().trim_end()), e);
        assert!(!e.to_line().contains("errno"));
    }

    #[test]
    fn untyped_and_unknown_lines() {
        let e = TaskError::from_line("error something broke");
        assert_eq!(
            (e.kind, e.errno, e.message.as_str()),
            (ErrorKind::Other, None, "something broke")
        );
        let e = TaskError::from_line("bogus");
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Other, "bogus"));
        let e = TaskError::from_line(r#"error {"kind":"FromTheFuture","message":"m"}"#);
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Other, "m"));
    }

    #[test]
    fn runtime_errors_are_classified() {
        let child = |e: E| E::from_child_report(&e.child_report());
        let kind = |e: &E| TaskError::from_runtime(e).kind;
        let nf = child(E::Executable {
            name: "x".into(),
            errno: libc::ENOENT,
            searched: true,
        });
        let t = TaskError::from_runtime(&nf);
        assert_eq!(
            (t.kind, t.errno),
            (ErrorKind::ExecNotFound, Some(libc::ENOENT))
        );
        assert_eq!(t.message, "exec: \"x\": executable file not found in $PATH");
        let perm = child(E::Executable {
            name: "/etc".into(),
            errno: libc::EACCES,
            searched: false,
        });
        assert_eq!(kind(&perm), ErrorKind::ExecPermission);
        assert_eq!(kind(&child(E::Config("field x".into()))), ErrorKind::Config);
        assert_eq!(kind(&E::Config("field x".into())), ErrorKind::Config);
        let sys = |n| E::io("exec", std::io::Error::from_raw_os_error(n));
        assert_eq!(kind(&child(sys(libc::ENOMEM))), ErrorKind::Resource);
        assert_eq!(kind(&sys(libc::EINVAL)), ErrorKind::InvalidArgument);
        let enoent = TaskError::from_runtime(&child(sys(libc::ENOENT)));
        assert_eq!(
            (enoent.kind, enoent.errno),
            (ErrorKind::Other, Some(libc::ENOENT))
        );
        assert_eq!(kind(&E::NotFound("c".into())), ErrorKind::State);
        assert_eq!(kind(&E::BadId("..".into())), ErrorKind::InvalidArgument);
        assert_eq!(kind(&E::Other("?".into())), ErrorKind::Other);
    }
}
