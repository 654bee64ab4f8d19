//! /networks/... handlers.
//!
//! berthd has no user networks yet (containers run with `--network none`); networking lands
//! separately and replaces these bodies with the real thing. Until then they answer what is
//! true, so that clients that walk every object kind (`docker system prune`) complete.

use crate::body::Body;
use crate::error::{ApiError, ApiResult};
use crate::router::Req;
use crate::stream::json;
use hyper::{Response, StatusCode};

/// Filters `POST /networks/prune` accepts (dockerd's list).
const PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// `POST /networks/prune`: there are no user networks, so none is deleted.
pub async fn prune(r: Req) -> ApiResult<Response<Body>> {
    let filters = r.query.filters()?;
    if let Some(k) = filters
        .keys()
        .find(|k| !PRUNE_FILTERS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
    }
    json(
        StatusCode::OK,
        &serde_json::json!({ "NetworksDeleted": Vec::<String>::new() }),
    )
}
