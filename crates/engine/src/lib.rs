#![recursion_limit = "256"]
//! berth-engine: the daemon's brain. Containers (Docker Config+HostConfig -> OCI spec, lifecycle
//! through per-container `berth-monitor` processes so containers outlive berthd), images (over
//! `berth_image::ImageService`), logs (json-file), exec, events, persistent state.
//!
//! # Threading and blocking
//! [`Engine`] is `Send + Sync` and every method is **blocking**: the API layer calls them from
//! `tokio::task::spawn_blocking`. Long-running results are returned as blocking iterators /
//! `Read`/`Write` handles ([`LogStream`], [`Attach`], [`WaitHandle`], [`EventStream`]) or take a
//! progress callback (image pull/push/load/import). The engine never forks in-process (the
//! runtime's clone-based create/exec is not safe in a multi-threaded process): container
//! creation and exec run inside a `berth-monitor` process.
//!
//! # Responses
//! Objects the Docker Engine API returns verbatim are `serde_json::Value`s shaped exactly like
//! Docker's (field names as in docker-engine-api v1.4x): the API layer serialises them as-is.
//!
//! # Errors
//! [`Error`] maps to HTTP statuses with [`Error::status_code`]; `Display` is Docker's message.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

mod archive;
mod attach;
mod build;
mod buildcache;
mod containers;
mod du;
mod error;
mod etc;
mod events;
mod exec;
mod health;
mod images;
mod logs;
mod model;
mod monitor;
mod netns;
mod networks;
mod prepare;
mod quota;
mod ready;
mod shared;
mod spec;
mod state;
mod system;
mod util;
mod volumes;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use attach::{Attach, AttachInput, AttachOutput};
pub use berth_runtime::mark;
pub use build::{BuildRequest, Cancelled};
pub use buildcache::{parse_bytes as parse_prune_bytes, BuildPruneOptions};
pub use error::{BoxError, Error, Internal, Result};
pub use events::EventStream;
pub use images::CommitOptions;
pub use logs::{LogEntry, LogStream, StreamKind};
/// The protocol shared with `berth-monitor` (it lives in `berth-monitor-core`).
pub mod proto {
    pub use berth_monitor_core::proto::*;
    pub use berth_monitor_core::{ErrorKind, TaskError};
}

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (images, container records, logs). Default `/var/lib/berth`.
    pub root: PathBuf,
    /// Runtime state (runtime state dir, monitor sockets, bundles). Default `/run/berth`.
    pub exec_root: PathBuf,
    /// Registries reached over plain HTTP (`host:port`).
    pub insecure_registries: Vec<String>,
    /// Path of the `berth-monitor` binary. `None`: next to the current executable, then `$PATH`.
    pub monitor_path: Option<PathBuf>,
    /// Mount a tmpfs on `exec_root` unless it already is on one (berthd does): its state
    /// must not outlive a reboot, and it is written on every run. Unmounted again at
    /// shutdown when nothing uses it.
    pub exec_root_tmpfs: bool,
    /// The default bridge network's device (berthd's `--bridge`, `berth0` there). `None` (or
    /// `"none"`): no bridge network, containers of the default mode get loopback only.
    pub bridge: Option<String>,
    /// Containers get truthful /proc files (meminfo, cpuinfo, ... from their cgroup; a
    /// `berth-procview` provider per container, started by the runtime). berthd's
    /// `--no-truthful-proc` turns it off; a container opts out with the annotation
    /// `run.berth.truthful-proc=false` in `HostConfig.Annotations`.
    pub truthful_proc: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            insecure_registries: Vec::new(),
            monitor_path: None,
            exec_root_tmpfs: false,
            bridge: None,
            truthful_proc: true,
        }
    }
}

/// `GET /containers/json` options. `filters` is Docker's filters JSON either as a map
/// (`{"label":{"a=b":true}}`) or as lists (`{"label":["a=b"]}`); `Value::Null` for none.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// Return at most this many (most recently created first); implies `all`.
    pub limit: Option<usize>,
    /// Fill `SizeRw` / `SizeRootFs`.
    pub size: bool,
    pub filters: serde_json::Value,
}

/// `GET /containers/{id}/logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractional allowed); 0 = from the beginning.
    pub since: f64,
    /// Unix seconds; 0 = no end.
    pub until: f64,
    /// Prefix each line with its RFC3339Nano timestamp (the [`LogEntry`] always carries it;
    /// this flag only tells [`LogEntry::to_bytes`] whether to include it).
    pub timestamps: bool,
    /// `None` = all; `Some(n)` = last n lines.
    pub tail: Option<usize>,
}

/// `POST /containers/{id}/attach` options.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Docker's `stream`: live output. (`logs` replay is done by the API through
    /// [`Engine::container_logs`] before pumping the attach.)
    pub stream: bool,
    /// e.g. "ctrl-p,ctrl-q" (Docker's default when `None`).
    pub detach_keys: Option<String>,
}

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Return at once if not running, else at exit.
    #[default]
    NotRunning,
    /// The next exit after the call (used by `docker run` before start).
    NextExit,
    /// When the container is removed.
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            o => Err(Error::BadParameter(format!("invalid condition: \"{o}\""))),
        }
    }
}

/// Result of a wait: Docker's `{"StatusCode": n, "Error": {"Message": ...} | null}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    pub status_code: i64,
    pub error: Option<String>,
}

impl WaitResult {
    /// Docker's JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "StatusCode": self.status_code,
            "Error": self.error.as_ref().map(|m| serde_json::json!({"Message": m})),
        })
    }
}

/// A registered wait. Created by [`Engine::container_wait`] (which validates the container and
/// registers interest at once, so the API can flush its 200 headers and then block in
/// [`WaitHandle::wait`] — a `next-exit` registered before start sees that start's exit).
pub struct WaitHandle {
    pub(crate) inner: containers::WaitInner,
}

/// (`wait` never gives up: its `wanted` is always true.)
fn never_abandoned() -> WaitResult {
    WaitResult {
        status_code: -1,
        error: Some("wait abandoned".into()),
    }
}

impl WaitHandle {
    /// Block until the condition holds.
    pub fn wait(self) -> WaitResult {
        self.inner.wait(&|| true).unwrap_or_else(never_abandoned)
    }

    /// Block until the condition holds, or `wanted` says the answer is no longer wanted (the
    /// client went away): None then. `wanted` is asked at every change of a container and at
    /// least every second.
    pub fn wait_while(self, wanted: &dyn Fn() -> bool) -> Option<WaitResult> {
        self.inner.wait(wanted)
    }
}

/// Registry credentials (decoded X-Registry-Auth).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
}

/// Progress callback for image operations: receives Docker JSON-stream messages
/// (`{"status":"Pulling fs layer","id":"..."}`, `{"stream":"Loaded image: x\n"}`, ...).
/// Errors are NOT sent through it: the method returns `Err` and the API writes
/// `{"errorDetail":{"message":..},"error":..}` itself.
pub type Progress<'a> = &'a (dyn Fn(serde_json::Value) + Send + Sync);

/// The daemon's brain. Cheap to share (`Arc`).
pub struct Engine {
    pub(crate) inner: shared::Inner,
}

// ---------------------------------------------------------------------------------------------
// System
impl Engine {
    /// Open (creating directories), reconcile on-disk state with reality (dead monitors, exited
    /// containers, leaked mounts), reconnect to running containers' monitors, resume restart
    /// policies. Returns the shared engine.
    pub fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
        build::clean_leftovers(&cfg.root);
        shared::open(cfg)
    }

    /// `GET /info` body.
    pub fn system_info(&self) -> Result<serde_json::Value> {
        system::info(self)
    }

    /// `GET /version` body (without `ApiVersion`/`MinAPIVersion`, which the API layer sets:
    /// it owns version negotiation; it may overwrite any field).
    pub fn system_version(&self) -> serde_json::Value {
        system::version()
    }

    /// `GET /system/df` body (`LayersSize`, `Images`, `Containers`, `Volumes`, `BuildCache`
    /// and the v1.52 `*Usage` summaries); `types` (empty: all) as the `type` parameter.
    pub fn system_df(&self, types: &[String], verbose: bool) -> Result<serde_json::Value> {
        system::df(self, types, verbose)
    }

    /// Subscribe to events (`GET /events`). `since`/`until` are Unix seconds; past events
    /// (kept in memory, last 1000) with time >= since are replayed first. `filters` as for
    /// list (type, event/action, container, image, label). The stream ends when `until` passes
    /// (checked when events arrive and every second) or the engine is dropped.
    pub fn events(
        &self,
        since: Option<f64>,
        until: Option<f64>,
        filters: &serde_json::Value,
    ) -> Result<EventStream> {
        events::subscribe(self, since, until, filters)
    }
}

// ---------------------------------------------------------------------------------------------
// Containers
impl Engine {
    /// `POST /containers/create?name=`: `body` is Docker's ContainerCreate request (Config
    /// fields at top level + `HostConfig` + `NetworkingConfig`). Returns
    /// `{"Id": "...", "Warnings": [...]}`. 404 if the image is unknown ("No such image: x"),
    /// 409 on a name conflict, 400 on invalid options.
    pub fn container_create(
        &self,
        name: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        containers::create(self, name, body)
    }

    /// Whether [`Engine::container_create`] with `body` is quick (short file operations only,
    /// no layer to unpack): then a caller may run it without a thread of its own.
    pub fn container_create_is_quick(&self, body: &serde_json::Value) -> bool {
        // (A volume may be made and filled from the image: a copy of any size.)
        let host = &body["HostConfig"];
        let named = host["Binds"].as_array().is_some_and(|b| {
            b.iter()
                .any(|b| !b.as_str().unwrap_or("/").starts_with('/'))
        });
        let volume = host["Mounts"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["Type"] == "volume"));
        if named || volume {
            return false;
        }
        match body["Image"].as_str() {
            Some(image) if !image.is_empty() => self
                .inner
                .0
                .images
                .snapshot_ready(image, &spec::MOUNT_TARGETS),
            _ => true,
        }
    }

    /// `POST /containers/{id}/start`. `Err(NotModified)` if already running.
    pub fn container_start(&self, id: &str) -> Result<()> {
        containers::start(self, id)
    }

    /// `POST /containers/{id}/stop?t=&signal=`: StopSignal (or `signal`), wait `timeout`
    /// seconds (default: the container's StopTimeout or 10; negative = forever), then SIGKILL.
    /// `Err(NotModified)` if not running.
    pub fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        containers::stop(self, id, timeout, signal, false)
    }

    /// `POST /containers/{id}/restart?t=&signal=`.
    pub fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        containers::restart(self, id, timeout, signal)
    }

    /// `POST /containers/{id}/kill?signal=` (default SIGKILL; names with or without "SIG", or
    /// numbers). 409 if not running.
    pub fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        containers::kill(self, id, signal)
    }

    /// `POST /containers/{id}/pause` (cgroup freezer).
    pub fn container_pause(&self, id: &str) -> Result<()> {
        containers::pause(self, id)
    }

    /// `POST /containers/{id}/unpause`.
    pub fn container_unpause(&self, id: &str) -> Result<()> {
        containers::unpause(self, id)
    }

    /// `POST /containers/{id}/rename?name=`.
    pub fn container_rename(&self, id: &str, new_name: &str) -> Result<()> {
        containers::rename(self, id, new_name)
    }

    /// `POST /containers/{id}/update`: body is Docker's ContainerUpdate (resources +
    /// RestartPolicy). Returns `{"Warnings": [...]}`.
    pub fn container_update(
        &self,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        containers::update(self, id, body)
    }

    /// `DELETE /containers/{id}?force=&v=`. 409 if running and not `force`.
    pub fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        containers::remove(self, id, force, volumes)
    }

    /// `POST /containers/{id}/wait?condition=`: validates and registers (see [`WaitHandle`]).
    pub fn container_wait(&self, id: &str, condition: WaitCondition) -> Result<WaitHandle> {
        containers::wait(self, id, condition)
    }

    /// `POST /containers/prune?filters=` (until, label). Returns
    /// `{"ContainersDeleted": [...], "SpaceReclaimed": n}`.
    /// `POST /volumes/create`: `Name` (empty: a generated one), `Driver` (local), `Labels`;
    /// an existing name answers the existing volume (as dockerd).
    pub fn volume_create(&self, body: &serde_json::Value) -> Result<serde_json::Value> {
        volumes::create(&self.inner.0, body)
    }

    /// `GET /volumes`: `{"Volumes": [...], "Warnings": []}`; filters name, label, dangling,
    /// driver (as for [`Engine::container_prune`]).
    pub fn volume_list(&self, filters: &serde_json::Value) -> Result<serde_json::Value> {
        volumes::list(&self.inner.0, filters)
    }

    /// `GET /volumes/{name}`.
    pub fn volume_inspect(&self, name: &str) -> Result<serde_json::Value> {
        volumes::inspect(&self.inner.0, name)
    }

    /// `DELETE /volumes/{name}`: 409 while a container (running or not) uses it, 404 for an
    /// unknown name unless `force`.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        volumes::remove(&self.inner.0, name, force)
    }

    /// `POST /volumes/prune`: unused anonymous volumes (filter `all=true`: every unused
    /// one); filters label, label!. `{"VolumesDeleted": [...], "SpaceReclaimed": n}`.
    pub fn volume_prune(&self, filters: &serde_json::Value) -> Result<serde_json::Value> {
        volumes::prune(&self.inner.0, filters)
    }

    /// `GET /networks`: filters name, id, label, driver, type, dangling.
    pub fn network_list(&self, filters: &serde_json::Value) -> Result<serde_json::Value> {
        networks::network_list(&self.inner.0, filters)
    }

    /// `GET /networks/{id}` (name, ID or unique ID prefix).
    pub fn network_inspect(&self, id: &str) -> Result<serde_json::Value> {
        networks::network_inspect(&self.inner.0, id)
    }

    /// `POST /networks/create` (bridge driver): `{"Id": ..., "Warning": ""}`; 409 for a
    /// name taken, 403 for a subnet overlapping another network or a host route.
    pub fn network_create(&self, body: &serde_json::Value) -> Result<serde_json::Value> {
        networks::network_create(&self.inner.0, body)
    }

    /// `DELETE /networks/{id}`: 403 while a container is connected.
    pub fn network_remove(&self, id: &str) -> Result<()> {
        networks::network_remove(&self.inner.0, id)
    }

    /// `POST /networks/prune`: `{"NetworksDeleted": [...]}`.
    pub fn network_prune(&self, filters: &serde_json::Value) -> Result<serde_json::Value> {
        networks::network_prune(&self.inner.0, filters)
    }

    /// `POST /networks/{id}/connect` (`Container`, `EndpointConfig`).
    pub fn network_connect(&self, id: &str, body: &serde_json::Value) -> Result<()> {
        networks::network_connect(&self.inner.0, id, body)
    }

    /// `POST /networks/{id}/disconnect` (`Container`, `Force`).
    pub fn network_disconnect(&self, id: &str, body: &serde_json::Value) -> Result<()> {
        networks::network_disconnect(&self.inner.0, id, body)
    }

    pub fn container_prune(&self, filters: &serde_json::Value) -> Result<serde_json::Value> {
        containers::prune(self, filters)
    }

    /// `GET /containers/json`: entries shaped like Docker's ContainerSummary, newest first.
    pub fn container_list(&self, opts: &ListOptions) -> Result<Vec<serde_json::Value>> {
        containers::list(self, opts)
    }

    /// `GET /containers/{id}/json?size=`: Docker's ContainerInspectResponse.
    pub fn container_inspect(&self, id: &str, size: bool) -> Result<serde_json::Value> {
        containers::inspect(self, id, size)
    }

    /// `GET /containers/{id}/top?ps_args=`: `{"Titles": [...], "Processes": [[...]]}`.
    pub fn container_top(&self, id: &str, ps_args: Option<&str>) -> Result<serde_json::Value> {
        containers::top(self, id, ps_args)
    }

    /// One `GET /containers/{id}/stats` sample (Docker's stats JSON). Pass the previous sample
    /// (of the same stream) to fill `precpu_stats`; without it `precpu_stats` is sampled
    /// internally ~100ms earlier when `one_shot` is false (so `docker stats --no-stream` shows
    /// CPU%), or left zero when `one_shot` is true. Streaming = the API calls this every second.
    pub fn container_stats(
        &self,
        id: &str,
        prev: Option<&serde_json::Value>,
        one_shot: bool,
    ) -> Result<serde_json::Value> {
        containers::stats(self, id, prev, one_shot)
    }

    /// `GET /containers/{id}/logs`: a blocking iterator of entries (follow waits for more until
    /// the container stops). Also tells whether the container has a TTY (raw, not multiplexed).
    pub fn container_logs(&self, id: &str, opts: &LogsOptions) -> Result<LogStream> {
        logs::open(self, id, opts)
    }

    /// `POST /containers/{id}/attach`: works before start (the connection is made when the
    /// container starts, before its process runs, so no output is lost) and while running.
    /// See [`Attach`] for the byte format.
    pub fn container_attach(&self, id: &str, opts: &AttachOptions) -> Result<Attach> {
        attach::attach(self, id, opts)
    }

    /// `POST /containers/{id}/resize?h=&w=` (TTY containers; no-op otherwise).
    pub fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        attach::resize_container(self, id, height, width)
    }

    /// `GET /containers/{id}/changes`: `[{"Path": "/x", "Kind": 0|1|2}]` (modified, added,
    /// deleted), from the container's writable layer.
    pub fn container_changes(&self, id: &str) -> Result<serde_json::Value> {
        archive::changes(self, id)
    }

    /// `GET /containers/{id}/export`: a tar of the container's filesystem into `w`.
    pub fn container_export(&self, id: &str, w: &mut dyn Write) -> Result<()> {
        archive::export(self, id, w)
    }

    /// `HEAD /containers/{id}/archive?path=`: Docker's PathStat (`name`, `size`, `mode`,
    /// `mtime`, `linkTarget`) — the API base64-encodes it into `X-Docker-Container-Path-Stat`.
    /// The path is resolved inside the container root (RESOLVE_IN_ROOT).
    pub fn container_archive_stat(&self, id: &str, path: &str) -> Result<serde_json::Value> {
        archive::stat(self, id, path)
    }

    /// `GET /containers/{id}/archive?path=`: writes a tar of `path` (resolved inside the
    /// container) to `w`. Call [`Engine::container_archive_stat`] first for the header.
    pub fn container_archive_get(&self, id: &str, path: &str, w: &mut dyn Write) -> Result<()> {
        archive::get(self, id, path, w)
    }

    /// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: extract the tar
    /// `r` into directory `path` (resolved inside the container; every entry contained).
    pub fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        r: &mut dyn Read,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        archive::put(self, id, path, r, no_overwrite_dir_non_dir, copy_uid_gid)
    }
}

// ---------------------------------------------------------------------------------------------
// Exec
impl Engine {
    /// `POST /containers/{id}/exec`: body is Docker's ExecConfig (AttachStdin/out/err, Tty,
    /// Env, Cmd, User, WorkingDir, Privileged, DetachKeys). Returns `{"Id": "..."}`.
    /// 409 if the container is not running.
    pub fn exec_create(
        &self,
        container: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        exec::create(self, container, body)
    }

    /// `POST /exec/{id}/start`: `Ok(None)` when detached (the process runs on its own);
    /// otherwise an [`Attach`] to pump (multiplexed unless `tty`). The exit code is in
    /// [`Engine::exec_inspect`] once the output reaches EOF.
    pub fn exec_start(&self, exec_id: &str, detach: bool, tty: bool) -> Result<Option<Attach>> {
        exec::start(self, exec_id, detach, tty)
    }

    /// `GET /exec/{id}/json`: Docker's ExecInspectResponse.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<serde_json::Value> {
        exec::inspect(self, exec_id)
    }

    /// `POST /exec/{id}/resize?h=&w=`.
    pub fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        exec::resize(self, exec_id, height, width)
    }
}

// ---------------------------------------------------------------------------------------------
// Images
impl Engine {
    /// `GET /images/json?all=&filters=`: Docker's ImageSummary list.
    pub fn image_list(
        &self,
        all: bool,
        filters: &serde_json::Value,
    ) -> Result<Vec<serde_json::Value>> {
        images::list(self, all, filters)
    }

    /// `GET /images/{name}/json`: Docker's ImageInspect.
    pub fn image_inspect(&self, name: &str) -> Result<serde_json::Value> {
        images::inspect(self, name)
    }

    /// `GET /images/{name}/history`.
    pub fn image_history(&self, name: &str) -> Result<serde_json::Value> {
        images::history(self, name)
    }

    /// `POST /commit?container=&repo=&tag=&comment=&author=&changes=` (body: Config
    /// overrides): the container's filesystem changes as a new image on top of its image.
    /// Returns `{"Id": "sha256:..."}`. The container is not paused.
    pub fn container_commit(
        &self,
        container: &str,
        opts: &CommitOptions,
    ) -> Result<serde_json::Value> {
        images::commit(self, container, opts)
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        images::tag(self, name, repo, tag)
    }

    /// `DELETE /images/{name}?force=&noprune=`: `[{"Untagged": ..}, {"Deleted": ..}]`.
    /// 409 if a container uses it (unless force).
    pub fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<serde_json::Value> {
        images::remove(self, name, force, noprune)
    }

    /// `POST /images/prune?filters=` (dangling=true|false, until, label):
    /// `{"ImagesDeleted": [...], "SpaceReclaimed": n}`.
    pub fn image_prune(&self, filters: &serde_json::Value) -> Result<serde_json::Value> {
        images::prune(self, filters)
    }

    /// `POST /images/load`: reads a docker-archive / OCI-layout tar; progress gets
    /// `{"stream":"Loaded image: x:y\n"}` (or `Loaded image ID: sha256:..`).
    pub fn image_load(
        &self,
        r: &mut (dyn Read + Send),
        quiet: bool,
        progress: Progress,
    ) -> Result<()> {
        images::load(self, r, quiet, progress)
    }

    /// `GET /images/get?names=` / `GET /images/{name}/get`: a docker-archive tar into `w`.
    pub fn image_save(&self, names: &[String], w: &mut dyn Write) -> Result<()> {
        images::save(self, names, w)
    }

    /// `POST /images/create?fromImage=&tag=&platform=`: pull with Docker's JSON progress.
    pub fn image_pull(
        &self,
        from_image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<&RegistryAuth>,
        progress: Progress,
    ) -> Result<()> {
        images::pull(self, from_image, tag, platform, auth, progress)
    }

    /// `POST /images/create?fromSrc=-&repo=&tag=&changes=&message=`: import a rootfs tar.
    /// Progress gets `{"status": "sha256:<id>"}`.
    #[allow(clippy::too_many_arguments)]
    pub fn image_import(
        &self,
        r: &mut (dyn Read + Send),
        repo: Option<&str>,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        platform: Option<&str>,
        progress: Progress,
    ) -> Result<()> {
        images::import(self, r, repo, tag, changes, message, platform, progress)
    }

    /// `POST /build`: `context` is the build context as a tar (plain or compressed); progress
    /// gets Docker's classic-builder stream (`{"stream": "Step 1/3 : ..."}`, `{"aux":{"ID":..}}`).
    /// An error before any progress is the HTTP error; later ones go in-stream.
    /// `cancelled` says whether the client went away: the running step is killed, its
    /// container removed and nothing more is built or tagged.
    pub fn build(
        &self,
        context: &mut (dyn Read + Send),
        req: &BuildRequest,
        progress: Progress,
        cancelled: Cancelled,
    ) -> Result<()> {
        build::build(self, context, req, progress, cancelled)
    }

    /// `POST /build/prune`: `{"CachesDeleted": [...], "SpaceReclaimed": N}` — the build
    /// cache's entries (step records, cache mounts) the options select; the intermediate
    /// images are images, which `image prune` removes. See `buildcache.rs`.
    pub fn build_prune(&self, opts: &BuildPruneOptions) -> Result<serde_json::Value> {
        buildcache::prune(self, opts)
    }

    /// `POST /images/{name}/push?tag=`.
    pub fn image_push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<&RegistryAuth>,
        progress: Progress,
    ) -> Result<()> {
        images::push(self, name, tag, auth, progress)
    }
}
