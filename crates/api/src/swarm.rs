//! Swarm mode: berth has none, and answers as a dockerd that is in no swarm does (503 with
//! dockerd's messages), so that clients that probe or leave a swarm (docker-py's
//! `leave_swarm(force=True)`, `docker info`'s callers) see the state they expect. Making or
//! joining a swarm is a clear 501.

use crate::error::{ApiError, ApiResult};
use hyper::{Method, StatusCode};

/// dockerd's error for a swarm-manager endpoint on a node that is in no swarm.
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// `/swarm...`, `/nodes...`, `/services...`, `/tasks...`, `/secrets...`, `/configs...`:
/// `None` for any other route.
pub fn route<T>(method: &Method, segs: &[&str]) -> Option<ApiResult<T>> {
    let unavailable = |m: &str| Some(Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m)));
    match (method, segs) {
        (&Method::POST, ["swarm", "init" | "join"]) => Some(Err(ApiError::not_implemented(
            "swarm mode is not supported by berth",
        ))),
        (&Method::POST, ["swarm", "leave"]) => unavailable("This node is not part of a swarm"),
        (_, ["swarm", ..] | ["nodes" | "services" | "tasks" | "secrets" | "configs", ..]) => {
            unavailable(NOT_A_MANAGER)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(m: Method, segs: &[&str]) -> Option<StatusCode> {
        route::<()>(&m, segs).map(|r| r.map_or_else(|e| e.status, |_| StatusCode::OK))
    }

    #[test]
    fn answers_as_a_dockerd_in_no_swarm() {
        assert_eq!(
            status(Method::POST, &["swarm", "leave"]),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(
            status(Method::GET, &["swarm"]),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(
            status(Method::GET, &["services"]),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(
            status(Method::POST, &["swarm", "init"]),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
        assert_eq!(status(Method::GET, &["networks"]), None);
    }
}
