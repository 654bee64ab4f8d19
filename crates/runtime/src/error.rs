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
    /// An error reported by the container's init process before it ran the user's program.
    #[error("{0}")]
    Child(String),
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
            _ => None,
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
