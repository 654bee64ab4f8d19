//! /containers/{id}/exec and /exec/{id}/... handlers.

use crate::body::{self as b, Body};
use crate::error::{ApiError, ApiResult};
use crate::hijack;
use crate::router::Req;
use crate::stream::{blocking, empty, json};
use berth_engine::Engine;
use hyper::{Response, StatusCode};
use std::sync::Arc;

type Resp = ApiResult<Response<Body>>;

pub async fn create(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let raw = b::read_limited(r.inner.into_body(), 1 << 20).await?;
    let body = b::parse_json_object(&raw, "exec create")?;
    match body.get("Cmd") {
        Some(serde_json::Value::Array(a)) if !a.is_empty() => {}
        Some(serde_json::Value::String(s)) if !s.is_empty() => {}
        _ => return Err(ApiError::bad_request("No exec command specified")),
    }
    let v = blocking(move || e.exec_create(&id, &body).map_err(ApiError::from)).await?;
    json(StatusCode::CREATED, &v)
}

fn console_size(v: &serde_json::Value) -> ApiResult<Option<(u16, u16)>> {
    match v.get("ConsoleSize") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Array(a)) if a.len() == 2 => {
            let n = |x: &serde_json::Value| {
                x.as_u64()
                    .filter(|n| *n <= u16::MAX as u64)
                    .map(|n| n as u16)
            };
            match (n(&a[0]), n(&a[1])) {
                (Some(h), Some(w)) => Ok(Some((h, w))),
                _ => Err(ApiError::bad_request(
                    "invalid ConsoleSize: expected [height, width] of small integers",
                )),
            }
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid ConsoleSize: expected [height, width]",
        )),
    }
}

pub async fn start(e: Arc<Engine>, id: String, mut r: Req) -> Resp {
    let upgrade = if hijack::wants_upgrade(r.inner.headers()) {
        Some(hyper::upgrade::on(&mut r.inner))
    } else {
        None
    };
    // The JSON body is small and sent before the stream starts.
    let raw = b::read_limited(r.inner.into_body(), 1 << 20).await?;
    let body = b::parse_json_object(&raw, "exec start")?;
    for k in ["Detach", "Tty"] {
        if !matches!(
            body.get(k),
            None | Some(serde_json::Value::Null | serde_json::Value::Bool(_))
        ) {
            return Err(ApiError::bad_request(format!(
                "invalid {k}: expected a boolean, got {}",
                body[k]
            )));
        }
    }
    let detach = body
        .get("Detach")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let tty = body.get("Tty").and_then(|v| v.as_bool()).unwrap_or(false);
    let size = console_size(&body)?;
    let attach = blocking(move || {
        let a = e.exec_start(&id, detach, tty).map_err(ApiError::from)?;
        if let (Some((h, w)), true) = (size, tty) {
            if h > 0 && w > 0 {
                if let Err(err) = e.exec_resize(&id, h, w) {
                    tracing::debug!("exec {id}: initial resize: {err}");
                }
            }
        }
        Ok(a)
    })
    .await?;
    match attach {
        None => Ok(empty(StatusCode::OK)),
        Some(a) => {
            let tty = a.tty;
            let (o, i) = a.split();
            hijack::start(
                hijack::Session {
                    tty,
                    prelude: Vec::new(),
                    output: Some(o),
                    input: i,
                },
                upgrade,
                None,
            )
        }
    }
}

pub async fn resize(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let get = |k: &str| -> ApiResult<u16> {
        match r.query.int(k)? {
            Some(v) if (0..=u16::MAX as i64).contains(&v) => Ok(v as u16),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {k}: {v} is out of range"
            ))),
            None => Err(ApiError::bad_request(format!(
                "the {k} parameter is required"
            ))),
        }
    };
    let (h, w) = (get("h")?, get("w")?);
    blocking(move || e.exec_resize(&id, h, w).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn inspect(e: Arc<Engine>, id: String) -> Resp {
    let v = blocking(move || e.exec_inspect(&id).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}
