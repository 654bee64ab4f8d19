//! /images/... handlers.

use crate::auth::{decode_registry_auth, AuthConfig};
use crate::body::{Body, BodyReader};
use crate::error::{ApiError, ApiResult};
use crate::router::Req;
use crate::stream::{blocking, json, json_progress, stream_writer};
use crate::system::filters_value;
use berth_engine::{Engine, RegistryAuth};
use hyper::{Response, StatusCode};
use std::sync::Arc;

type Resp = ApiResult<Response<Body>>;

fn registry_auth(r: &Req) -> ApiResult<Option<RegistryAuth>> {
    let Some(h) = r.header("X-Registry-Auth") else {
        return Ok(None);
    };
    Ok(decode_registry_auth(h)?.map(|a: AuthConfig| RegistryAuth {
        username: a.username,
        password: a.password,
        server_address: a.serveraddress,
        identity_token: a.identitytoken,
        registry_token: a.registrytoken,
    }))
}

pub async fn list(e: Arc<Engine>, r: Req) -> Resp {
    let all = r.query.bool("all");
    let mut f = filters_value(&r)?;
    // Old clients (API < 1.25) pass a reference pattern as `filter`.
    if let Some(pat) = r.query.string("filter") {
        if let Some(o) = f.as_object_mut() {
            o.insert("reference".into(), serde_json::json!([pat]));
        }
    }
    let v = blocking(move || e.image_list(all, &f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &serde_json::Value::Array(v))
}

pub async fn inspect(e: Arc<Engine>, name: String) -> Resp {
    let v = blocking(move || e.image_inspect(&name).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn history(e: Arc<Engine>, name: String) -> Resp {
    let v = blocking(move || e.image_history(&name).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn tag(e: Arc<Engine>, name: String, r: Req) -> Resp {
    let repo = r
        .query
        .string("repo")
        .ok_or_else(|| ApiError::bad_request("tag: the repo parameter is required"))?;
    let tag = r.query.string("tag");
    blocking(move || {
        e.image_tag(&name, &repo, tag.as_deref())
            .map_err(ApiError::from)
    })
    .await?;
    Ok(crate::stream::empty(StatusCode::CREATED))
}

pub async fn remove(e: Arc<Engine>, name: String, r: Req) -> Resp {
    let force = r.query.bool("force");
    let noprune = r.query.bool("noprune");
    let v = blocking(move || {
        e.image_remove(&name, force, noprune)
            .map_err(ApiError::from)
    })
    .await?;
    json(StatusCode::OK, &v)
}

pub async fn prune(e: Arc<Engine>, r: Req) -> Resp {
    let f = filters_value(&r)?;
    let v = blocking(move || e.image_prune(&f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn save(e: Arc<Engine>, names: Vec<String>) -> Resp {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given (names=...)"));
    }
    stream_writer("application/x-tar", move |w| {
        e.image_save(&names, w).map_err(ApiError::from)
    })
    .await
}

pub async fn load(e: Arc<Engine>, r: Req) -> Resp {
    let quiet = r.query.bool("quiet");
    let mut reader = BodyReader::spawn(r.inner.into_body());
    json_progress(move |p| e.image_load(&mut reader, quiet, p).map_err(ApiError::from)).await
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc=-` with the tar as body).
pub async fn create(e: Arc<Engine>, r: Req) -> Resp {
    let platform = r.query.string("platform");
    if let Some(src) = r.query.string("fromSrc") {
        if src != "-" {
            return Err(ApiError::bad_request(format!(
                "importing from a URL ({src}) is not supported; send the tar as the request body with fromSrc=-"
            )));
        }
        let repo = r.query.string("repo");
        let tag = r.query.string("tag");
        let message = r.query.string("message");
        let changes = r
            .query
            .get_all("changes")
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>();
        let mut reader = BodyReader::spawn(r.inner.into_body());
        return json_progress(move |p| {
            e.image_import(
                &mut reader,
                repo.as_deref(),
                tag.as_deref(),
                &changes,
                message.as_deref(),
                platform.as_deref(),
                p,
            )
            .map_err(ApiError::from)
        })
        .await;
    }
    let from = r.query.string("fromImage").ok_or_else(|| {
        ApiError::bad_request("images/create: one of fromImage or fromSrc is required")
    })?;
    let tag = r.query.string("tag");
    let auth = registry_auth(&r)?;
    json_progress(move |p| {
        e.image_pull(&from, tag.as_deref(), platform.as_deref(), auth.as_ref(), p)
            .map_err(ApiError::from)
    })
    .await
}

pub async fn push(e: Arc<Engine>, name: String, r: Req) -> Resp {
    let tag = r.query.string("tag");
    let auth = registry_auth(&r)?;
    json_progress(move |p| {
        e.image_push(&name, tag.as_deref(), auth.as_ref(), p)
            .map_err(ApiError::from)
    })
    .await
}
