//! /_ping, /version, /info, /events, /system/df, /auth.

use crate::body::{self as b, Body};
use crate::error::{ApiError, ApiResult};
use crate::router::Req;
use crate::stream::{blocking, json, json_line, response};
use crate::version::{MAX_VERSION, MIN_VERSION};
use berth_engine::Engine;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use hyper::{Method, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

pub fn ping(method: &Method) -> Response<Body> {
    let mut r = Response::new(if *method == Method::HEAD {
        Body::Empty
    } else {
        Body::full("OK")
    });
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    r
}

pub async fn version(e: Arc<Engine>) -> ApiResult<Response<Body>> {
    let mut v = e.system_version();
    if let Some(o) = v.as_object_mut() {
        o.insert("ApiVersion".into(), MAX_VERSION.to_string().into());
        o.insert("MinAPIVersion".into(), MIN_VERSION.to_string().into());
        if let Some(comps) = o.get_mut("Components").and_then(|c| c.as_array_mut()) {
            for c in comps {
                if let Some(d) = c.get_mut("Details").and_then(|d| d.as_object_mut()) {
                    if d.contains_key("ApiVersion") {
                        d.insert("ApiVersion".into(), MAX_VERSION.to_string().into());
                        d.insert("MinAPIVersion".into(), MIN_VERSION.to_string().into());
                    }
                }
            }
        }
    }
    json(StatusCode::OK, &v)
}

pub async fn info(e: Arc<Engine>) -> ApiResult<Response<Body>> {
    let v = blocking(move || e.system_info().map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn df(e: Arc<Engine>, r: Req) -> ApiResult<Response<Body>> {
    let types = r.query.get_all("type");
    let verbose = r.query.bool("verbose");
    let v = blocking(move || e.system_df(&types, verbose).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

/// Parses Docker's time parameters: Unix seconds, optionally fractional ("1700000000.5").
pub fn parse_unix_time(name: &str, v: Option<&str>) -> ApiResult<Option<f64>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid value for {name}: {s:?} is not a Unix timestamp"
                ))
            }),
    }
}

pub async fn events(e: Arc<Engine>, r: Req) -> ApiResult<Response<Body>> {
    let since = parse_unix_time("since", r.query.get("since"))?;
    let until = parse_unix_time("until", r.query.get("until"))?;
    let filters = filters_value(&r)?;
    let mut stream =
        blocking(move || e.events(since, until, &filters).map_err(ApiError::from)).await?;
    let (tx, body) = Body::channel(32);
    crate::stream::spawn_thread("berth-events", move || loop {
        match stream.next_timeout(Duration::from_secs(1)) {
            Ok(Some(ev)) => {
                if tx.blocking_send(Ok(json_line(&ev))).is_err() {
                    return;
                }
            }
            Ok(None) => {
                if tx.is_closed() {
                    return;
                }
            }
            Err(()) => return,
        }
    })?;
    Ok(response(StatusCode::OK, "application/json", body))
}

/// The request's `filters`, validated and normalised to the list form for the engine.
pub fn filters_value(r: &Req) -> ApiResult<serde_json::Value> {
    let m = r.query.filters()?;
    serde_json::to_value(m).map_err(|e| ApiError::internal(format!("encoding filters: {e}")))
}

/// `POST /build/prune?all=&filters=&reserved-space=&keep-storage=&max-used-space=&min-free-space=`.
pub async fn build_prune(e: Arc<Engine>, r: Req) -> ApiResult<Response<Body>> {
    let bytes = |names: &[&str]| -> ApiResult<Option<u64>> {
        for n in names {
            if let Some(v) = r.query.string(n).filter(|v| !v.is_empty() && v != "0") {
                return berth_engine::parse_prune_bytes(n, &v)
                    .map(Some)
                    .map_err(ApiError::from);
            }
        }
        Ok(None)
    };
    let opts = berth_engine::BuildPruneOptions {
        all: r.query.bool("all"),
        filters: filters_value(&r)?,
        reserved_space: bytes(&["reserved-space", "keep-storage"])?,
        max_used_space: bytes(&["max-used-space"])?,
        min_free_space: bytes(&["min-free-space"])?,
    };
    let v = blocking(move || e.build_prune(&opts).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn auth(insecure: Vec<String>, r: Req) -> ApiResult<Response<Body>> {
    let raw = b::read_limited(r.inner.into_body(), 1 << 20).await?;
    let cfg = crate::auth::AuthConfig::from_json(&raw, "JSON in auth request body")?;
    crate::login::check(cfg, insecure).await
}
