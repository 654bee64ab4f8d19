//! Typed errors of the runtime library. Every variant names the object at fault.

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem with the bundle's config.json; the message names the field.
    #[error("config.json: {0}")]
    Config(String),
    /// A system call or file operation failed; `ctx` names the call and the path.
    #[error("{ctx}: {err}")]
    Io { ctx: String, err: std::io::Error },
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: must match [A-Za-z0-9][A-Za-z0-9_.-]* and not be \".\" or \"..\"")]
    BadId(String),
    /// The container is in a state that forbids the operation.
    #[error("container \"{id}\" is {status}: {what}")]
    State {
        id: String,
        status: String,
        what: String,
    },
    /// An error reported by the container's init process (or an exec'd process) before it ran
    /// the user's program: what it could tell of the failure, its errno if a system call
    /// failed, and its message (see [`Error::child_report`]).
    #[error("{message}")]
    Child {
        kind: ChildFailure,
        errno: Option<i32>,
        message: String,
    },
    /// `process.args[0]` cannot be run (in Docker's words): `errno` is ENOENT (not found;
    /// `searched`: looked up in `$PATH`) or EACCES (not a regular executable file).
    #[error("exec: {name:?}: {}", exec_reason(*.errno, *.searched))]
    Executable {
        name: String,
        errno: i32,
        searched: bool,
    },
    #[error("hook {0}")]
    Hook(String),
    /// Not a `#[source]`: the message already carries the inner error once.
    #[error("cgroup: {0}")]
    Cgroup(berth_cgroups::Error),
    #[error("linux.seccomp: {0}")]
    Seccomp(berth_seccomp::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What the container's init (or an exec'd process) can tell of its failure; crosses the
/// parent <-> child channel as one byte (see [`Error::child_report`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildFailure {
    /// Anything else (a failed system call: see the errno).
    Other,
    /// `process.args[0]` does not exist or is not found in `$PATH`.
    ExecNotFound,
    /// `process.args[0]` exists but cannot be executed (not a regular file, not executable).
    ExecPermission,
    /// config.json asks for something this host or this container cannot do.
    Config,
}

impl ChildFailure {
    fn byte(self) -> u8 {
        match self {
            ChildFailure::Other => 0,
            ChildFailure::ExecNotFound => 1,
            ChildFailure::ExecPermission => 2,
            ChildFailure::Config => 3,
        }
    }
    fn from_byte(b: u8) -> ChildFailure {
        match b {
            1 => ChildFailure::ExecNotFound,
            2 => ChildFailure::ExecPermission,
            3 => ChildFailure::Config,
            _ => ChildFailure::Other,
        }
    }
}

fn exec_reason(errno: i32, searched: bool) -> &'static str {
    match (errno, searched) {
        (libc::ENOENT, true) => "executable file not found in $PATH",
        (libc::ENOENT, false) => "no such file or directory",
        _ => "permission denied",
    }
}

impl Error {
    pub fn io(ctx: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            ctx: ctx.into(),
            err: source,
        }
    }
    pub fn sys(ctx: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Io {
            ctx: ctx.into(),
            err: std::io::Error::from_raw_os_error(errno as i32),
        }
    }
    /// The raw errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { err, .. } => err.raw_os_error(),
            Error::Executable { errno, .. } => Some(*errno),
            Error::Child { errno, .. } => *errno,
            _ => None,
        }
    }

    /// What a failing init or exec'd process can tell of this error (see [`ChildFailure`]).
    pub fn child_failure(&self) -> ChildFailure {
        match self {
            Error::Executable {
                errno: libc::ENOENT,
                ..
            } => ChildFailure::ExecNotFound,
            Error::Executable { .. } => ChildFailure::ExecPermission,
            Error::Config(_) => ChildFailure::Config,
            Error::Child { kind, .. } => *kind,
            _ => ChildFailure::Other,
        }
    }

    /// The payload of the ERROR message a failing child sends its parent: the
    /// [`ChildFailure`] (1 byte), the errno (4 bytes, little endian; 0 = none), the message.
    pub fn child_report(&self) -> Vec<u8> {
        let mut p = vec![self.child_failure().byte()];
        p.extend_from_slice(&self.errno().unwrap_or(0).to_le_bytes());
        p.extend_from_slice(self.to_string().as_bytes());
        p
    }

    /// The error a child reported with [`Error::child_report`] (a payload too short for the
    /// header is all message).
    pub fn from_child_report(p: &[u8]) -> Error {
        match (p.first(), p.get(1..5), p.get(5..)) {
            (Some(&k), Some(e), Some(m)) => {
                let errno = i32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                Error::Child {
                    kind: ChildFailure::from_byte(k),
                    errno: (errno != 0).then_some(errno),
                    message: String::from_utf8_lossy(m).into_owned(),
                }
            }
            _ => Error::Child {
                kind: ChildFailure::Other,
                errno: None,
                message: String::from_utf8_lossy(p).into_owned(),
            },
        }
    }
}

/// Attach a description of the failed call to io and nix results.
pub trait Context<T> {
    fn ctx<C: Display>(self, ctx: C) -> Result<T>;
    fn with_ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<C: Display>(self, ctx: C) -> Result<T> {
        self.map_err(|e| Error::io(ctx.to_string(), e))
    }
    fn with_ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f().to_string(), e))
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx<C: Display>(self, ctx: C) -> Result<T> {
        self.map_err(|e| Error::sys(ctx.to_string(), e))
    }
    fn with_ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::sys(f().to_string(), e))
    }
}

impl<T> Context<T> for Result<T> {
    fn ctx<C: Display>(self, ctx: C) -> Result<T> {
        self.map_err(|e| e.context(ctx.to_string()))
    }
    fn with_ctx<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| e.context(f().to_string()))
    }
}

impl Error {
    /// Prefix the error's description with `what`, keeping its kind.
    pub fn context(self, what: String) -> Error {
        match self {
            Error::Io { ctx, err } => Error::Io {
                ctx: format!("{what}: {ctx}"),
                err,
            },
            Error::Config(m) => Error::Config(format!("{what}: {m}")),
            Error::Child {
                kind,
                errno,
                message,
            } => Error::Child {
                kind,
                errno,
                message: format!("{what}: {message}"),
            },
            other => Error::Other(format!("{what}: {other}")),
        }
    }
}

impl From<berth_fsutil::Error> for Error {
    fn from(e: berth_fsutil::Error) -> Self {
        let (op, path, err) = e.into_parts();
        Error::io(format!("{op} {}", path.display()), err)
    }
}

impl From<berth_cgroups::Error> for Error {
    fn from(e: berth_cgroups::Error) -> Self {
        Error::Cgroup(e)
    }
}

impl From<berth_seccomp::Error> for Error {
    fn from(e: berth_seccomp::Error) -> Self {
        Error::Seccomp(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_report_round_trip_keeps_kind_errno_and_message() {
        let e = Error::Executable {
            name: "nosuch".into(),
            errno: libc::ENOENT,
            searched: true,
        };
        assert_eq!(
            e.to_string(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        let back = Error::from_child_report(&e.child_report());
        assert_eq!(back.to_string(), e.to_string());
        assert_eq!(back.child_failure(), ChildFailure::ExecNotFound);
        assert_eq!(back.errno(), Some(libc::ENOENT));

        let e = Error::Executable {
            name: "/etc".into(),
            errno: libc::EACCES,
            searched: false,
        };
        assert_eq!(e.to_string(), "exec: \"/etc\": permission denied");
        let back = Error::from_child_report(&e.child_report());
        assert_eq!(back.child_failure(), ChildFailure::ExecPermission);
        assert_eq!(back.errno(), Some(libc::EACCES));

        let e = Error::sys("exec \"/bin/x\"", nix::errno::Errno::ENOEXEC);
        let back = Error::from_child_report(&e.child_report());
        assert_eq!(
            (back.child_failure(), back.errno(), back.to_string()),
            (ChildFailure::Other, Some(libc::ENOEXEC), e.to_string())
        );
        let e = Error::Config("field process.cwd: x".into());
        let back = Error::from_child_report(&e.child_report());
        assert_eq!(
            (back.child_failure(), back.errno(), back.to_string()),
            (ChildFailure::Config, None, e.to_string())
        );
    }

    #[test]
    fn a_short_report_is_all_message_and_context_keeps_the_kind() {
        let e = Error::from_child_report(b"oops");
        assert_eq!(
            (e.child_failure(), e.to_string()),
            (ChildFailure::Other, "oops".into())
        );
        let e = Error::Child {
            kind: ChildFailure::ExecNotFound,
            errno: Some(libc::ENOENT),
            message: "m".into(),
        }
        .context("create".into());
        assert_eq!(
            (e.child_failure(), e.errno(), e.to_string()),
            (
                ChildFailure::ExecNotFound,
                Some(libc::ENOENT),
                "create: m".into()
            )
        );
    }
}
