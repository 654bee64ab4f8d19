//! /volumes/... handlers (named volumes, local driver).

use crate::body::{self as b, Body, JSON_BODY_LIMIT};
use crate::error::{ApiError, ApiResult};
use crate::router::Req;
use crate::stream::{blocking, empty, json};
use crate::system::filters_value;
use crate::version::ApiVersion;
use berth_engine::Engine;
use hyper::{Response, StatusCode};
use std::sync::Arc;

type Resp = ApiResult<Response<Body>>;

/// `POST /volumes/create`.
pub async fn create(e: Arc<Engine>, r: Req) -> Resp {
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    // (An empty body asks for a volume with a generated name, as dockerd takes it.)
    let body = b::parse_json_object(&raw, "volume create")?;
    let v = blocking(move || e.volume_create(&body).map_err(ApiError::from)).await?;
    json(StatusCode::CREATED, &v)
}

/// `GET /volumes`.
pub async fn list(e: Arc<Engine>, r: Req) -> Resp {
    let f = filters_value(&r)?;
    let v = blocking(move || e.volume_list(&f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// `GET /volumes/{name}`.
pub async fn inspect(e: Arc<Engine>, name: String) -> Resp {
    let v = blocking(move || e.volume_inspect(&name).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// `DELETE /volumes/{name}?force=`.
pub async fn remove(e: Arc<Engine>, name: String, r: Req) -> Resp {
    let force = r.query.bool("force");
    blocking(move || e.volume_remove(&name, force).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`.
pub async fn prune(e: Arc<Engine>, r: Req) -> Resp {
    let mut f = filters_value(&r)?;
    // Before API 1.42 prune took every unused volume, not only anonymous ones (dockerd keeps
    // that for older clients unless they name `all` themselves).
    if r.version < ApiVersion::new(1, 42) {
        if let Some(m) = f.as_object_mut() {
            m.entry("all")
                .or_insert_with(|| serde_json::json!(["true"]));
        }
    }
    let v = blocking(move || e.volume_prune(&f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// `PUT /volumes/{name}`: only cluster (swarm) volumes can be updated, and berth has no swarm
/// (dockerd's 503 and message).
pub fn update() -> Resp {
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "volume update only valid for cluster volumes, but swarm is not enabled",
    ))
}
