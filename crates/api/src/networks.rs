//! /networks/... handlers (the bridge driver: the default `bridge` network and user-defined
//! ones; `host` and `none` listed as dockerd lists them).

use crate::body::{self as b, Body, JSON_BODY_LIMIT};
use crate::error::{ApiError, ApiResult};
use crate::router::Req;
use crate::stream::{blocking, empty, json};
use crate::system::filters_value;
use berth_engine::Engine;
use hyper::{Response, StatusCode};
use std::sync::Arc;

type Resp = ApiResult<Response<Body>>;

/// `GET /networks`.
pub async fn list(e: Arc<Engine>, r: Req) -> Resp {
    let f = filters_value(&r)?;
    let v = blocking(move || e.network_list(&f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// `GET /networks/{id}`.
pub async fn inspect(e: Arc<Engine>, id: String) -> Resp {
    let v = blocking(move || e.network_inspect(&id).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// `POST /networks/create`.
pub async fn create(e: Arc<Engine>, r: Req) -> Resp {
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    let body = b::parse_json_object(&raw, "network create")?;
    let v = blocking(move || e.network_create(&body).map_err(ApiError::from)).await?;
    json(StatusCode::CREATED, &v)
}

/// `DELETE /networks/{id}`.
pub async fn remove(e: Arc<Engine>, id: String) -> Resp {
    blocking(move || e.network_remove(&id).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /networks/prune`.
pub async fn prune(e: Arc<Engine>, r: Req) -> Resp {
    let f = filters_value(&r)?;
    let v = blocking(move || e.network_prune(&f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// `POST /networks/{id}/connect`.
pub async fn connect(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    let body = b::parse_json_object(&raw, "network connect")?;
    blocking(move || e.network_connect(&id, &body).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    let body = b::parse_json_object(&raw, "network disconnect")?;
    blocking(move || e.network_disconnect(&id, &body).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::OK))
}
