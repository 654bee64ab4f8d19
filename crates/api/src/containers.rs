//! /containers/... handlers.

use crate::body::{self as b, Body, BodyReader, JSON_BODY_LIMIT};
use crate::error::{ApiError, ApiResult};
use crate::hijack;
use crate::router::Req;
use crate::stream::{blocking, empty, json, json_line, response, spawn_thread, stream_writer};
use crate::system::{filters_value, parse_unix_time};
use base64::Engine as _;
use berth_engine::{AttachOptions, Engine, ListOptions, LogsOptions, WaitCondition};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Resp = ApiResult<Response<Body>>;

pub async fn create(e: Arc<Engine>, r: Req) -> Resp {
    let name = r.query.string("name");
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    let body = b::parse_json_object(&raw, "container create")?;
    // The usual create (image unpacked) is a few short file operations: done right here,
    // without the two thread switches of the blocking pool on the client's path.
    let v = if e.container_create_is_quick(&body) {
        e.container_create(name.as_deref(), &body)
            .map_err(ApiError::from)?
    } else {
        blocking(move || {
            e.container_create(name.as_deref(), &body)
                .map_err(ApiError::from)
        })
        .await?
    };
    json(StatusCode::CREATED, &v)
}

pub async fn list(e: Arc<Engine>, r: Req) -> Resp {
    let limit = r.query.int("limit")?;
    let opts = ListOptions {
        all: r.query.bool("all"),
        limit: limit.filter(|l| *l > 0).map(|l| l as usize),
        size: r.query.bool("size"),
        filters: filters_value(&r)?,
    };
    let v = blocking(move || e.container_list(&opts).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &serde_json::Value::Array(v))
}

pub async fn prune(e: Arc<Engine>, r: Req) -> Resp {
    let f = filters_value(&r)?;
    let v = blocking(move || e.container_prune(&f).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn inspect(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let size = r.query.bool("size");
    let v = blocking(move || e.container_inspect(&id, size).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn start(e: Arc<Engine>, id: String) -> Resp {
    blocking(move || e.container_start(&id).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn timeout_param(r: &Req) -> ApiResult<Option<i64>> {
    match r.query.int("t")? {
        Some(t) => Ok(Some(t)),
        None => r.query.int("timeout"),
    }
}

pub async fn stop(e: Arc<Engine>, id: String, r: Req, restart: bool) -> Resp {
    let t = timeout_param(&r)?;
    let sig = r.query.string("signal");
    blocking(move || {
        if restart {
            e.container_restart(&id, t, sig.as_deref())
        } else {
            e.container_stop(&id, t, sig.as_deref())
        }
        .map_err(ApiError::from)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn kill(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let sig = r.query.string("signal");
    blocking(move || {
        e.container_kill(&id, sig.as_deref())
            .map_err(ApiError::from)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn pause(e: Arc<Engine>, id: String, pause: bool) -> Resp {
    blocking(move || {
        if pause {
            e.container_pause(&id)
        } else {
            e.container_unpause(&id)
        }
        .map_err(ApiError::from)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn rename(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let name = r
        .query
        .string("name")
        .ok_or_else(|| ApiError::bad_request("rename: the name parameter is required"))?;
    blocking(move || e.container_rename(&id, &name).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=` (body: Config).
pub async fn commit(e: Arc<Engine>, r: Req) -> Resp {
    let container = r
        .query
        .string("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("commit: the container parameter is required"))?;
    let opts = berth_engine::CommitOptions {
        repo: r.query.string("repo"),
        tag: r.query.string("tag"),
        comment: r.query.string("comment"),
        author: r.query.string("author"),
        changes: r
            .query
            .get_all("changes")
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect(),
        config: serde_json::Value::Null,
    };
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    let opts = berth_engine::CommitOptions {
        config: b::parse_json_object(&raw, "commit")?,
        ..opts
    };
    let v = blocking(move || {
        e.container_commit(&container, &opts)
            .map_err(ApiError::from)
    })
    .await?;
    json(StatusCode::CREATED, &v)
}

pub async fn update(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let raw = b::read_limited(r.inner.into_body(), JSON_BODY_LIMIT).await?;
    // (Strict: `null` or anything but an object is a 400, from the engine; an empty body
    // is an update of nothing, as dockerd takes it.)
    let body = if raw.iter().all(|c| c.is_ascii_whitespace()) {
        serde_json::Value::Object(Default::default())
    } else {
        b::parse_json::<serde_json::Value>(&raw, "container update")?
    };
    let v = blocking(move || e.container_update(&id, &body).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

pub async fn remove(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let force = r.query.bool("force");
    let vols = r.query.bool("v");
    if r.query.bool("link") {
        return Err(ApiError::bad_request(
            "removing links (link=true) is not supported: berthd has no legacy links",
        ));
    }
    blocking(move || e.container_remove(&id, force, vols).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn wait(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let cond: WaitCondition = r
        .query
        .get("condition")
        .unwrap_or("")
        .parse()
        .map_err(ApiError::from)?;
    // Registration only (no file, no waiting): done right here, not in the blocking pool.
    let handle = e.container_wait(&id, cond).map_err(ApiError::from)?;
    // Headers go out now (the docker CLI sends wait before start and waits for them);
    // the body follows at exit.
    let (tx, body) = Body::channel(1);
    spawn_thread("berth-wait", move || {
        // Ends with the client: its body (the receiver) is dropped when it goes away.
        let Some(res) = handle.wait_while(&|| !tx.is_closed()) else {
            return;
        };
        let _ = tx.blocking_send(Ok(json_line(&res.to_json())));
        berth_engine::mark("api: wait answered");
    })?;
    Ok(response(StatusCode::OK, "application/json", body))
}

fn dims(r: &Req) -> ApiResult<(u16, u16)> {
    let get = |k: &str| -> ApiResult<u16> {
        match r.query.int(k)? {
            Some(v) if (0..=u16::MAX as i64).contains(&v) => Ok(v as u16),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {k}: {v} is out of range"
            ))),
            None => Ok(0),
        }
    };
    Ok((get("h")?, get("w")?))
}

pub async fn resize(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let (h, w) = dims(&r)?;
    blocking(move || e.container_resize(&id, h, w).map_err(ApiError::from)).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn top(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let args = r.query.string("ps_args");
    let v = blocking(move || {
        e.container_top(&id, args.as_deref())
            .map_err(ApiError::from)
    })
    .await?;
    json(StatusCode::OK, &v)
}

pub async fn stats(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let stream = r.query.bool_or("stream", true);
    let one_shot = r.query.bool("one-shot");
    if !stream {
        let v = blocking(move || {
            e.container_stats(&id, None, one_shot)
                .map_err(ApiError::from)
        })
        .await?;
        return json(StatusCode::OK, &v);
    }
    let (first, e, id) = blocking(move || {
        let v = e
            .container_stats(&id, None, false)
            .map_err(ApiError::from)?;
        Ok((v, e, id))
    })
    .await?;
    let (tx, body) = Body::channel(2);
    spawn_thread("berth-stats", move || {
        let mut prev = first;
        if tx.blocking_send(Ok(json_line(&prev))).is_err() {
            return;
        }
        let mut next = Instant::now() + Duration::from_secs(1);
        loop {
            // The one-second cadence is the protocol (one sample per second), not polling.
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += Duration::from_secs(1);
            if tx.is_closed() {
                return;
            }
            match e.container_stats(&id, Some(&prev), false) {
                Ok(v) => {
                    if tx.blocking_send(Ok(json_line(&v))).is_err() {
                        return;
                    }
                    prev = v;
                }
                Err(_) => return,
            }
        }
    })?;
    Ok(response(StatusCode::OK, "application/json", body))
}

fn logs_options(r: &Req, follow: bool) -> ApiResult<LogsOptions> {
    let tail = match r.query.get("tail").map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for tail: {t:?}"
                )))
            }
        },
    };
    Ok(LogsOptions {
        follow,
        stdout: r.query.bool("stdout"),
        stderr: r.query.bool("stderr"),
        since: parse_unix_time("since", r.query.get("since"))?.unwrap_or(0.0),
        until: parse_unix_time("until", r.query.get("until"))?.unwrap_or(0.0),
        timestamps: r.query.bool("timestamps"),
        tail,
    })
}

pub async fn logs(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let opts = logs_options(&r, r.query.bool("follow"))?;
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let ts = opts.timestamps;
    let follow = opts.follow;
    let stream = blocking(move || e.container_logs(&id, &opts).map_err(ApiError::from)).await?;
    let tty = stream.tty;
    let (tx, body) = Body::channel(16);
    spawn_thread("berth-logs", move || {
        // Without follow the iterator never waits, so entries are batched here; with follow
        // each entry goes out at once (the body merges whatever is queued).
        let mut batch: Vec<u8> = Vec::new();
        for entry in stream {
            match entry {
                Ok(en) => {
                    let bytes = en.to_bytes(ts, tty);
                    if follow {
                        if tx.blocking_send(Ok(Bytes::from(bytes))).is_err() {
                            return;
                        }
                    } else {
                        batch.extend_from_slice(&bytes);
                        if batch.len() >= 64 << 10
                            && tx
                                .blocking_send(Ok(Bytes::from(std::mem::take(&mut batch))))
                                .is_err()
                        {
                            return;
                        }
                    }
                }
                Err(err) => {
                    if !batch.is_empty() {
                        let _ = tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut batch))));
                    }
                    let _ = tx.blocking_send(Err(ApiError::from(err)));
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(Bytes::from(batch)));
        }
    })?;
    Ok(response(StatusCode::OK, hijack::content_type(tty), body))
}

pub async fn attach(e: Arc<Engine>, id: String, mut r: Req) -> Resp {
    let q = &r.query;
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        stream: q.bool("stream"),
        detach_keys: q.string("detachKeys"),
    };
    if !opts.stdin && !opts.stdout && !opts.stderr {
        // Docker also refuses this combination.
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let want_logs = q.bool("logs");
    let upgrade = if hijack::wants_upgrade(r.inner.headers()) {
        Some(hyper::upgrade::on(&mut r.inner))
    } else {
        None
    };
    let work = move || {
        let mut prelude = Vec::new();
        if want_logs {
            let lo = LogsOptions {
                stdout: opts.stdout,
                stderr: opts.stderr,
                ..Default::default()
            };
            if lo.stdout || lo.stderr {
                let ls = e.container_logs(&id, &lo).map_err(ApiError::from)?;
                let tty = ls.tty;
                for en in ls {
                    prelude.push(Bytes::from(
                        en.map_err(ApiError::from)?.to_bytes(false, tty),
                    ));
                }
            }
        }
        let a = if opts.stream {
            Some(e.container_attach(&id, &opts).map_err(ApiError::from)?)
        } else {
            None
        };
        if a.is_none() {
            // Without stream only the log replay is sent; still validate the container.
            e.container_inspect(&id, false).map_err(ApiError::from)?;
        }
        Ok((prelude, a))
    };
    // Without the log replay this only registers (or connects to the monitor's socket): done
    // right here, without a trip through the blocking pool (`docker run` waits for the 101).
    let (prelude, attach) = if want_logs {
        blocking(work).await?
    } else {
        work()?
    };
    let (tty, output, input) = match attach {
        Some(a) => {
            let tty = a.tty;
            let (o, i) = a.split();
            (tty, Some(o), i)
        }
        None => (false, None, None),
    };
    let body = if upgrade.is_none() {
        Some(r.inner.into_body())
    } else {
        None
    };
    hijack::start(
        hijack::Session {
            tty,
            prelude,
            output,
            input,
        },
        upgrade,
        body,
    )
}

pub async fn export(e: Arc<Engine>, id: String) -> Resp {
    stream_writer("application/x-tar", move |w| {
        e.container_export(&id, w).map_err(ApiError::from)
    })
    .await
}

pub async fn changes(e: Arc<Engine>, id: String) -> Resp {
    let v = blocking(move || e.container_changes(&id).map_err(ApiError::from)).await?;
    json(StatusCode::OK, &v)
}

fn archive_path(r: &Req) -> ApiResult<String> {
    r.query
        .string("path")
        .ok_or_else(|| ApiError::bad_request("the path parameter is required"))
}

fn stat_header(v: &serde_json::Value) -> ApiResult<HeaderValue> {
    let raw = serde_json::to_vec(v)
        .map_err(|e| ApiError::internal(format!("encoding path stat: {e}")))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(raw))
        .map_err(|e| ApiError::internal(format!("encoding path stat header: {e}")))
}

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub async fn archive_head(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let path = archive_path(&r)?;
    let v = blocking(move || e.container_archive_stat(&id, &path).map_err(ApiError::from)).await?;
    let mut resp = empty(StatusCode::OK);
    resp.headers_mut().insert(STAT_HEADER, stat_header(&v)?);
    Ok(resp)
}

pub async fn archive_get(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let path = archive_path(&r)?;
    let (e, id, path, stat) = blocking(move || {
        let s = e
            .container_archive_stat(&id, &path)
            .map_err(ApiError::from)?;
        Ok((e, id, path, s))
    })
    .await?;
    let hv = stat_header(&stat)?;
    let mut resp = stream_writer("application/x-tar", move |w| {
        e.container_archive_get(&id, &path, w)
            .map_err(ApiError::from)
    })
    .await?;
    resp.headers_mut().insert(STAT_HEADER, hv);
    Ok(resp)
}

pub async fn archive_put(e: Arc<Engine>, id: String, r: Req) -> Resp {
    let path = archive_path(&r)?;
    let no_overwrite = r.query.bool("noOverwriteDirNonDir");
    let copy_ids = r.query.bool("copyUIDGID");
    let mut reader = BodyReader::spawn(r.inner.into_body());
    blocking(move || {
        e.container_archive_put(&id, &path, &mut reader, no_overwrite, copy_ids)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(empty(StatusCode::OK))
}
