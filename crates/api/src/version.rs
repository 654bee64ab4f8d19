//! API version prefixes (`/v1.47/...`) and their negotiation rules.

use std::fmt;

/// A Docker Engine API version such as `1.47`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// Parses `1.47` (no leading `v`).
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        if a.is_empty()
            || b.is_empty()
            || !a.bytes().all(|c| c.is_ascii_digit())
            || !b.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        Some(ApiVersion {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Highest API version whose semantics berthd implements.
pub const MAX_VERSION: ApiVersion = ApiVersion::new(1, 47);
/// Lowest API version berthd accepts: dockerd 20.10's (newer dockerd refuse below 1.24, but
/// clients pinned to old versions still exist: containers/image's `docker-daemon:` transport,
/// and so skopeo and podman, speak 1.22). As in dockerd, a request at an older version is
/// served by the same handlers, which give the older shape of a reply where the API changed it
/// and a client depends on it (`Req::version`).
pub const MIN_VERSION: ApiVersion = ApiVersion::new(1, 12);

/// The last API version whose errors are plain text (`http.Error`): from 1.24 on they are
/// JSON `{"message": ...}`. Clients at 1.23 or older (containers/image's docker-daemon
/// transport at 1.22) show the body of an error as it is.
pub const LAST_PLAIN_TEXT_ERRORS: ApiVersion = ApiVersion::new(1, 23);

impl ApiVersion {
    /// Are errors at this version JSON (`{"message": ...}`) rather than plain text?
    pub fn json_errors(self) -> bool {
        self > LAST_PLAIN_TEXT_ERRORS
    }
}

/// Outcome of splitting a request path into its version prefix and the route.
#[derive(Debug, PartialEq, Eq)]
pub enum Versioned<'a> {
    /// `route` is the path without the prefix; `version` is what the client asked for
    /// (the maximum for unversioned paths).
    Ok { version: ApiVersion, route: &'a str },
    /// The prefix names a version outside [MIN_VERSION, MAX_VERSION]; the message is Docker's.
    Rejected {
        version: ApiVersion,
        message: String,
    },
}

/// Splits `/v1.47/containers/json` into (1.47, `/containers/json`). Paths without a
/// `/vN.M` prefix are served at [`MAX_VERSION`].
pub fn split_version(path: &str) -> Versioned<'_> {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(v) = ApiVersion::parse(&rest[..end]) {
            let route = if end == rest.len() { "/" } else { &rest[end..] };
            if v > MAX_VERSION {
                return Versioned::Rejected {
                    version: v,
                    message: format!(
                        "client version {v} is too new. Maximum supported API version is {MAX_VERSION}"
                    ),
                };
            }
            if v < MIN_VERSION {
                return Versioned::Rejected {
                    version: v,
                    message: format!(
                        "client version {v} is too old. Minimum supported API version is {MIN_VERSION}, please upgrade your client to a newer version"
                    ),
                };
            }
            return Versioned::Ok { version: v, route };
        }
    }
    Versioned::Ok {
        version: MAX_VERSION,
        route: path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefix() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Versioned::Ok {
                version: ApiVersion::new(1, 41),
                route: "/containers/json"
            }
        );
        assert_eq!(
            split_version("/_ping"),
            Versioned::Ok {
                version: MAX_VERSION,
                route: "/_ping"
            }
        );
        assert!(
            matches!(split_version("/v1.50/info"), Versioned::Rejected { message: m, .. } if m.contains("too new"))
        );
        assert!(
            matches!(split_version("/v1.11/info"), Versioned::Rejected { message: m, .. } if m == "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version")
        );
        // containers/image's docker-daemon transport (skopeo) speaks 1.22.
        for v in ["1.12", "1.22", "1.23", "1.24"] {
            assert_eq!(
                split_version(&format!("/v{v}/images/get")),
                Versioned::Ok {
                    version: ApiVersion::parse(v).unwrap(),
                    route: "/images/get"
                }
            );
        }
        // Not a version: a route that happens to start with v.
        assert_eq!(
            split_version("/volumes"),
            Versioned::Ok {
                version: MAX_VERSION,
                route: "/volumes"
            }
        );
        assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 10));
    }
}
