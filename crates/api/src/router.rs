//! Maps (method, path) to handlers.

use crate::body::{Body, ReqBody};
use crate::error::{ApiError, ApiResult};
use crate::query::{percent_decode, Query};
use crate::server::Ctx;
use crate::version::ApiVersion;
use crate::{containers, exec, images, networks, system, volumes};
use hyper::{Method, Request, Response};
use std::sync::Arc;

/// One request as handlers see it.
pub struct Req {
    pub version: ApiVersion,
    pub query: Query,
    pub inner: Request<ReqBody>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("page not found")
}

/// Dispatches a request whose version prefix has been stripped (`route`).
pub async fn route(
    ctx: &Arc<Ctx>,
    version: ApiVersion,
    route: &str,
    req: Request<ReqBody>,
) -> ApiResult<Response<Body>> {
    let method = req.method().clone();
    let query = Query::parse(req.uri().query());
    let r = Req {
        version,
        query,
        inner: req,
    };
    let trimmed = route.trim_matches('/');
    let segs: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    let e = ctx.engine.clone();
    let d = |s: &str| percent_decode(s, false);
    use Method as M;
    match (&method, segs.as_slice()) {
        (&M::GET | &M::HEAD, ["_ping"]) => Ok(system::ping(&method)),
        (&M::GET, ["version"]) => system::version(e).await,
        (&M::GET, ["info"]) => system::info(e).await,
        (&M::GET, ["events"]) => system::events(e, r).await,
        (&M::GET, ["system", "df"]) => system::df(e, r).await,
        (&M::POST, ["auth"]) => system::auth(ctx.insecure_registries.clone(), r).await,
        (&M::POST, ["build"]) => crate::build::build(e, r).await,
        (&M::POST, ["build", "prune"]) => system::build_prune(e, r).await,

        // Containers
        (&M::POST, ["commit"]) => containers::commit(e, r).await,
        (&M::POST, ["containers", "create"]) => containers::create(e, r).await,
        (&M::GET, ["containers", "json"]) => containers::list(e, r).await,
        (&M::POST, ["containers", "prune"]) => containers::prune(e, r).await,
        (&M::GET, ["containers", id, "json"]) => containers::inspect(e, d(id), r).await,
        (&M::POST, ["containers", id, "start"]) => containers::start(e, d(id)).await,
        (&M::POST, ["containers", id, "stop"]) => containers::stop(e, d(id), r, false).await,
        (&M::POST, ["containers", id, "restart"]) => containers::stop(e, d(id), r, true).await,
        (&M::POST, ["containers", id, "kill"]) => containers::kill(e, d(id), r).await,
        (&M::POST, ["containers", id, "wait"]) => containers::wait(e, d(id), r).await,
        (&M::POST, ["containers", id, "attach"]) => containers::attach(e, d(id), r).await,
        (&M::GET, ["containers", id, "logs"]) => containers::logs(e, d(id), r).await,
        (&M::POST, ["containers", id, "exec"]) => exec::create(e, d(id), r).await,
        (&M::POST, ["containers", id, "resize"]) => containers::resize(e, d(id), r).await,
        (&M::GET, ["containers", id, "top"]) => containers::top(e, d(id), r).await,
        (&M::GET, ["containers", id, "stats"]) => containers::stats(e, d(id), r).await,
        (&M::POST, ["containers", id, "pause"]) => containers::pause(e, d(id), true).await,
        (&M::POST, ["containers", id, "unpause"]) => containers::pause(e, d(id), false).await,
        (&M::POST, ["containers", id, "rename"]) => containers::rename(e, d(id), r).await,
        (&M::POST, ["containers", id, "update"]) => containers::update(e, d(id), r).await,
        (&M::GET, ["containers", id, "export"]) => containers::export(e, d(id)).await,
        (&M::GET, ["containers", id, "changes"]) => containers::changes(e, d(id)).await,
        (&M::HEAD, ["containers", id, "archive"]) => containers::archive_head(e, d(id), r).await,
        (&M::GET, ["containers", id, "archive"]) => containers::archive_get(e, d(id), r).await,
        (&M::PUT, ["containers", id, "archive"]) => containers::archive_put(e, d(id), r).await,
        (&M::DELETE, ["containers", id]) => containers::remove(e, d(id), r).await,

        // Exec
        (&M::POST, ["exec", id, "start"]) => exec::start(e, d(id), r).await,
        (&M::POST, ["exec", id, "resize"]) => exec::resize(e, d(id), r).await,
        (&M::GET, ["exec", id, "json"]) => exec::inspect(e, d(id)).await,

        // Images (fixed paths first; names may contain '/')
        (&M::GET, ["images", "json"]) => images::list(e, r).await,
        (&M::POST, ["images", "create"]) => images::create(e, r).await,
        (&M::POST, ["images", "load"]) => images::load(e, r).await,
        (&M::GET, ["images", "get"]) => images::save(e, r.query.get_all("names")).await,
        (&M::POST, ["images", "prune"]) => images::prune(e, r).await,
        (_, ["images", rest @ ..]) if !rest.is_empty() => image_route(e, &method, rest, r).await,

        // Volumes
        (&M::POST, ["volumes", "create"]) => volumes::create(e, r).await,
        (&M::POST, ["volumes", "prune"]) => volumes::prune(e, r).await,
        (&M::GET, ["volumes"]) => volumes::list(e, r).await,
        (&M::GET, ["volumes", name]) => volumes::inspect(e, d(name)).await,
        (&M::DELETE, ["volumes", name]) => volumes::remove(e, d(name), r).await,
        (&M::PUT, ["volumes", _]) => volumes::update(),

        // Networks
        (&M::GET, ["networks"]) => networks::list(e, r).await,
        (&M::POST, ["networks", "create"]) => networks::create(e, r).await,
        (&M::POST, ["networks", "prune"]) => networks::prune(e, r).await,
        (&M::GET, ["networks", id]) => networks::inspect(e, d(id)).await,
        (&M::DELETE, ["networks", id]) => networks::remove(e, d(id)).await,
        (&M::POST, ["networks", id, "connect"]) => networks::connect(e, d(id), r).await,
        (&M::POST, ["networks", id, "disconnect"]) => networks::disconnect(e, d(id), r).await,

        _ => crate::swarm::route(&method, &segs).unwrap_or_else(|| Err(not_found())),
    }
}

async fn image_route(
    e: Arc<berth_engine::Engine>,
    method: &Method,
    rest: &[&str],
    r: Req,
) -> ApiResult<Response<Body>> {
    let join = |parts: &[&str]| percent_decode(&parts.join("/"), false);
    if *method == Method::DELETE {
        return images::remove(e, join(rest), r).await;
    }
    let (last, name) = match rest.split_last() {
        Some((l, n)) if !n.is_empty() => (*l, join(n)),
        _ => return Err(not_found()),
    };
    match (method, last) {
        (&Method::GET, "json") => images::inspect(e, name).await,
        (&Method::GET, "history") => images::history(e, name).await,
        (&Method::GET, "get") => images::save(e, vec![name]).await,
        (&Method::POST, "tag") => images::tag(e, name, r).await,
        (&Method::POST, "push") => images::push(e, name, r).await,
        _ => Err(not_found()),
    }
}
