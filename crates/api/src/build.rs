//! `POST /build`: the classic builder's endpoint (what `docker build` uses when the daemon
//! announces `Builder-Version: 1`). The body is the context tar, streamed to the engine.

use crate::body::{Body, BodyReader};
use crate::error::{ApiError, ApiResult};
use crate::router::Req;
use crate::stream::{commit_on_first, error_detail, json_line, spawn_thread};
use berth_engine::{BuildRequest, Engine};
use hyper::Response;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A JSON object of strings in a query parameter (`buildargs`, `labels`); a `null` value
/// (a `--build-arg NAME` with no value and no such environment variable) is left out.
fn string_map(r: &Req, key: &str) -> ApiResult<BTreeMap<String, String>> {
    let Some(raw) = r.query.string(key).filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let m: BTreeMap<String, Option<String>> = serde_json::from_str(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid {key}: expected a JSON object of strings: {e}"
        ))
    })?;
    Ok(m.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// A JSON array of strings in a query parameter (`cachefrom`).
fn string_list(r: &Req, key: &str) -> ApiResult<Vec<String>> {
    let Some(raw) = r.query.string(key).filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid {key}: expected a JSON array of strings: {e}"
        ))
    })
}

/// The steps' HostConfig from `networkmode`, `extrahosts`, `shmsize`, `memory`, `memswap`,
/// `cpushares`, `cpusetcpus`, `cpusetmems`, `cpuperiod`, `cpuquota` (Docker's query names).
fn host_config(r: &Req) -> ApiResult<serde_json::Value> {
    let mut h = serde_json::Map::new();
    if let Some(n) = r
        .query
        .string("networkmode")
        .filter(|n| !n.is_empty() && n != "default")
    {
        h.insert("NetworkMode".into(), n.into());
    }
    let hosts: Vec<String> = r
        .query
        .get_all("extrahosts")
        .into_iter()
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect();
    if !hosts.is_empty() {
        h.insert("ExtraHosts".into(), hosts.into());
    }
    for (q, field) in [
        ("shmsize", "ShmSize"),
        ("memory", "Memory"),
        ("memswap", "MemorySwap"),
        ("cpushares", "CpuShares"),
        ("cpuperiod", "CpuPeriod"),
        ("cpuquota", "CpuQuota"),
    ] {
        if let Some(v) = r.query.string(q).filter(|v| !v.is_empty()) {
            let n: i64 = v.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid {q}: {v:?} is not a number"))
            })?;
            if n != 0 {
                h.insert(field.into(), n.into());
            }
        }
    }
    for (q, field) in [("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems")] {
        if let Some(v) = r.query.string(q).filter(|v| !v.is_empty()) {
            h.insert(field.into(), v.into());
        }
    }
    Ok(serde_json::Value::Object(h))
}

/// The request's options as the engine takes them.
pub fn request(r: &Req) -> ApiResult<BuildRequest> {
    if let Some(remote) = r.query.string("remote").filter(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "remote build contexts ({remote}) are not supported by berthd; send the context as the request body"
        )));
    }
    if let Some(p) = r.query.string("platform").filter(|s| !s.is_empty()) {
        let host = berth_build::Platform::host();
        let ok = berth_build::Platform::parse(&p)
            .is_some_and(|q| q.os == host.os && q.arch == host.arch);
        if !ok {
            return Err(ApiError::bad_request(format!(
                "platform {p} is not supported: berthd builds for {host} only"
            )));
        }
    }
    Ok(BuildRequest {
        host_config: host_config(r)?,
        dockerfile: r.query.string("dockerfile"),
        quiet: r.query.bool("q"),
        pull: r.query.bool("pull"),
        options: berth_build::BuildOptions {
            tags: r
                .query
                .get_all("t")
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect(),
            args: string_map(r, "buildargs")?,
            no_cache: r.query.bool("nocache"),
            rm: r.query.bool_or("rm", true),
            force_rm: r.query.bool("forcerm"),
            target: r.query.string("target").filter(|t| !t.is_empty()),
            labels: string_map(r, "labels")?,
            cache_from: string_list(r, "cachefrom")?,
        },
    })
}

/// Docker's JSON progress stream (see [`crate::stream::json_progress`]); the build learns
/// that its client went away from the closed stream, and stops.
pub async fn build(e: Arc<Engine>, r: Req) -> ApiResult<Response<Body>> {
    let req = request(&r)?;
    let mut reader = BodyReader::spawn(r.inner.into_body());
    let (tx, rx) = mpsc::channel(64);
    spawn_thread("berth-build", move || {
        let sent = AtomicBool::new(false);
        let progress = |v: serde_json::Value| {
            sent.store(true, Ordering::Relaxed);
            let _ = tx.blocking_send(Ok(json_line(&v)));
        };
        let gone = || tx.is_closed();
        if let Err(er) = e.build(&mut reader, &req, &progress, &gone) {
            let er = ApiError::from(er);
            if sent.load(Ordering::Relaxed) {
                let _ = tx.blocking_send(Ok(json_line(&error_detail(&er.message))));
            } else {
                let _ = tx.blocking_send(Err(er));
            }
        }
    })?;
    commit_on_first(rx, "application/json").await
}
