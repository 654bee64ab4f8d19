//! `POST /build`: the context received into a private directory, the Dockerfile parsed, and
//! `berth_build`'s builder driven through [`berth_build::BuildBackend`], implemented here
//! with the engine's own container and image calls (create, attach, start, wait, commit,
//! remove), so the builder never touches engine state.

use crate::util::{internal, random_id, read_in_root};
use crate::{AttachOptions, Engine, Error, Progress, Result, WaitCondition};
use berth_build::{BackendError, BaseImage, BuildBackend, BuildOptions, Event, RunMount};
use berth_image::model::{ContainerConfig, ImageConfig};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A build request (the query of `POST /build`).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path inside the context (`dockerfile`, default `Dockerfile`).
    pub dockerfile: Option<String>,
    pub options: BuildOptions,
    /// `q`: only the image ID is reported.
    pub quiet: bool,
    /// `pull`: every base image named by reference is pulled again, even when it is here.
    pub pull: bool,
    /// The HostConfig of the `RUN` steps' containers (`networkmode`, `extrahosts`, `shmsize`,
    /// `memory`, `memswap`, `cpu*`), Docker's names; `{}` for the defaults.
    pub host_config: Value,
}

/// The context directory, removed when the build ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => {}
            // The downloads' directory is made by the first `ADD` of a URL only.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("remove build scratch {}: {e}", self.0.display()),
        }
    }
}

fn build_dir(e: &Engine) -> PathBuf {
    e.inner.0.cfg.root.join("build")
}

/// The images a build made a child of that still have one of `live` (the IDs that exist):
/// Docker's intermediate images, which are not dangling (`docker images` lists them only
/// with `-a`, `image prune` keeps them). `<root>/build/parents`: `CHILD PARENT` lines.
pub(crate) fn parents_of(
    root: &Path,
    live: &std::collections::HashSet<&str>,
) -> std::collections::HashSet<String> {
    std::fs::read_to_string(root.join("build").join("parents"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(child, _)| live.contains(child))
                .map(|(_, parent)| parent.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn note_parent(e: &Engine, child: &str, parent: &str) {
    let p = build_dir(e).join("parents");
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .and_then(|mut f| f.write_all(format!("{child} {parent}\n").as_bytes()));
    if let Err(er) = r {
        tracing::warn!("record {parent} as a build parent in {}: {er}", p.display());
    }
}

/// `CHILD -> PARENT` as `<root>/build/parents` records them (the last line for a child wins).
pub(crate) fn parent_map(root: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(root.join("build").join("parents"))
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(c, p)| (c.to_string(), p.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the contexts a build left when berthd died during it.
pub(crate) fn clean_leftovers(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root.join("build")) else {
        return;
    };
    for d in rd.flatten() {
        let n = d.file_name().to_string_lossy().into_owned();
        if n.starts_with("ctx-") || n.starts_with("dl-") {
            let _ = std::fs::remove_dir_all(d.path());
        }
    }
    // A cache record or cache mount's metadata whose write was cut (`.NAME.tmp-*`).
    for sub in ["cache", "mounts"] {
        for d in std::fs::read_dir(root.join("build").join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = d.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && n.contains(".tmp-") {
                let _ = std::fs::remove_file(d.path());
            }
        }
    }
}

pub(crate) fn build(
    e: &Engine,
    r: &mut (dyn Read + Send),
    req: &BuildRequest,
    progress: Progress,
    cancelled: Cancelled,
) -> Result<()> {
    let dir = build_dir(e);
    std::fs::create_dir_all(dir.join("cache"))
        .map_err(|er| internal(format!("create {}", dir.display()), er))?;
    let ctx = Scratch(dir.join(format!("ctx-{}", &random_id()?[..16])));
    std::fs::create_dir(&ctx.0)
        .map_err(|er| internal(format!("create {}", ctx.0.display()), er))?;
    receive_context(r, &ctx.0)?;
    let downloads = Scratch(dir.join(format!("dl-{}", &random_id()?[..16])));
    let name = req
        .dockerfile
        .as_deref()
        .filter(|d| !d.is_empty())
        .unwrap_or("Dockerfile");
    let text = read_in_root(&ctx.0, Path::new(name))?.ok_or_else(|| {
        Error::BadParameter(format!("Cannot locate specified Dockerfile: {name}"))
    })?;
    let df = berth_build::parse_bytes(&text)
        .map_err(|er| Error::BadParameter(format!("failed to parse the Dockerfile: {er}")))?;
    if let Some(ig) = read_in_root(&ctx.0, Path::new(".dockerignore"))? {
        let ig = berth_build::DockerIgnore::parse(&String::from_utf8_lossy(&ig))
            .map_err(|er| Error::BadParameter(format!(".dockerignore: {er}")))?;
        // Read already: an excluded Dockerfile or .dockerignore goes too, as dockerd drops
        // them (a `COPY . .` does not copy them then).
        berth_build::prune_context(&ctx.0, &ig, &[])
            .map_err(|er| internal("apply .dockerignore to the build context", er))?;
    }
    let backend = EngineBackend {
        e,
        cancelled,
        host_config: req.host_config.clone(),
        targets: Default::default(),
        holds: Default::default(),
        progress: if req.quiet { &|_| {} } else { progress },
        downloads: &downloads.0,
        fetched: Default::default(),
        pull: req.pull,
        pulled: Default::default(),
    };
    let quiet = req.quiet;
    let mut out = |ev: Event| match ev {
        Event::Stream(s) if !quiet => progress(json!({ "stream": s })),
        Event::Stream(_) => {}
        Event::Built(id) => {
            progress(json!({"aux": {"ID": id}}));
            // Quiet: the ID is all that is printed (the CLI prints the stream as is).
            if quiet {
                progress(json!({ "stream": format!("{id}\n") }));
            }
        }
    };
    berth_build::build(&backend, &df, &ctx.0, &req.options, &mut out)
        .map(drop)
        .map_err(|er| match er {
            berth_build::BuildError::Backend(b) => Error::Internal(crate::Internal::cause(b)),
            o => Error::BadParameter(o.to_string()),
        })
}

/// Unpacks the context tar (plain or compressed) into `dir`: every entry is created inside
/// it (openat2 `RESOLVE_IN_ROOT`, `..` refused) as it streams in; nothing is held in memory.
fn receive_context(r: &mut (dyn Read + Send), dir: &Path) -> Result<()> {
    let opts = berth_image::layer::UnpackOptions {
        whiteouts: berth_image::layer::WhiteoutMode::Apply,
        name: "build context".into(),
    };
    berth_image::layer::unpack_layer(r, dir, &opts)
        .map(drop)
        .map_err(|er| Error::BadParameter(format!("read the build context: {er}")))
}

/// Whether the client is gone (asked between steps and while a step runs).
pub type Cancelled<'a> = &'a (dyn Fn() -> bool + Sync);

struct EngineBackend<'a> {
    e: &'a Engine,
    cancelled: Cancelled<'a>,
    /// Where a base image's pull reports its progress (the build's stream).
    progress: Progress<'a>,
    /// Where `ADD` of a URL downloads to (removed with the build), one directory a download.
    downloads: &'a Path,
    fetched: std::sync::atomic::AtomicUsize,
    /// The request's HostConfig for the steps' containers (network, memory, CPU, ...).
    host_config: Value,
    /// `pull`, and the references pulled so far by this build (each is pulled once).
    pull: bool,
    pulled: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The mount targets of the containers made with mounts: their stubs are not committed.
    targets: std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>,
    /// The cache mounts this build used: in use (not pruned) until it ends.
    holds: std::sync::Mutex<Vec<crate::buildcache::MountHold>>,
}

/// Removes from a step's upper dir the mountpoints the runtime made for its mounts: empty
/// files and directories at a target and, going up, parents left empty (a directory the
/// image has stays: it is in a lower layer).
fn remove_mount_stubs(upper: &Path, targets: &[String]) {
    for t in targets {
        let mut p = upper.join(t.trim_start_matches('/'));
        while p.starts_with(upper) && p != upper {
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                break;
            };
            let removed = if md.is_dir() {
                let opaque = xattr_present(&p, "trusted.overlay.opaque");
                !opaque && std::fs::remove_dir(&p).is_ok()
            } else {
                md.is_file() && md.len() == 0 && std::fs::remove_file(&p).is_ok()
            };
            if !removed {
                break;
            }
            p = match p.parent() {
                Some(q) => q.to_path_buf(),
                None => break,
            };
        }
    }
}

fn xattr_present(p: &Path, name: &str) -> bool {
    let (Ok(path), Ok(name)) = (
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return true;
    };
    // SAFETY: both strings are NUL-terminated; a null buffer of size 0 asks for the size only.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    n >= 0
}

/// A `RUN --mount` as a HostConfig mount; a cache directory is made on first use, and held
/// in use (in `holds`) until the build ends.
fn mount_json(
    e: &Engine,
    m: &RunMount,
    holds: &std::sync::Mutex<Vec<crate::buildcache::MountHold>>,
) -> Result<Value> {
    Ok(match m {
        RunMount::Bind {
            source,
            target,
            readonly,
        } => json!({"Type": "bind", "Source": source, "Target": target, "ReadOnly": readonly}),
        RunMount::Tmpfs { target, size } => {
            let mut v = json!({"Type": "tmpfs", "Target": target});
            if let Some(sz) = size {
                v["TmpfsOptions"] = json!({ "SizeBytes": sz });
            }
            v
        }
        RunMount::Cache {
            id,
            target,
            mode,
            uid,
            gid,
        } => {
            let name = berth_image::Digest::of(id.as_bytes()).hex().to_string();
            let dir = build_dir(e).join("mounts").join(name);
            if !dir.exists() {
                use std::os::unix::fs::PermissionsExt;
                let ctx = |er| internal(format!("make the cache mount {}", dir.display()), er);
                std::fs::create_dir_all(&dir).map_err(ctx)?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(*mode))
                    .map_err(ctx)?;
                std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid)).map_err(ctx)?;
            }
            let hold = crate::buildcache::use_mount(&dir, id, target);
            holds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(hold);
            json!({"Type": "bind", "Source": dir, "Target": target})
        }
    })
}

fn be(what: impl Into<String>) -> impl FnOnce(Error) -> BackendError {
    let what = what.into();
    move |er| BackendError::with(what, er)
}

impl EngineBackend<'_> {
    /// Whether `name` was not pulled by this build yet (and is from now on).
    fn first_pull(&self, name: &str) -> bool {
        self.pulled
            .lock()
            .map(|mut p| p.insert(name.to_string()))
            .unwrap_or(true)
    }
}

impl BuildBackend for EngineBackend<'_> {
    fn resolve_image(&self, name: &str) -> std::result::Result<BaseImage, BackendError> {
        let s = &self.e.inner.0;
        if self.pull && !name.starts_with("sha256:") && self.first_pull(name) {
            self.e
                .image_pull(name, None, None, None, self.progress)
                .map_err(be(format!("pull {name}")))?;
        }
        let rec = match s.images.resolve(name) {
            // A base image that is not here is pulled, as dockerd's builder does.
            Err(berth_image::Error::ImageNotFound(_)) if !name.starts_with("sha256:") => {
                self.e
                    .image_pull(name, None, None, None, self.progress)
                    .map_err(be(format!("pull {name}")))?;
                s.images.resolve(name)
            }
            r => r,
        }
        .map_err(|er| {
            BackendError::with(
                format!("resolve image {name}"),
                crate::images::image_error(name, er),
            )
        })?;
        let config = s
            .images
            .config_of(&rec)
            .map_err(|er| BackendError::with(format!("read the config of {name}"), er))?;
        Ok(BaseImage {
            id: rec.id.to_string(),
            config,
        })
    }

    fn create(
        &self,
        image: &str,
        cc: &ContainerConfig,
        will_run: bool,
        mounts: &[RunMount],
    ) -> std::result::Result<String, BackendError> {
        let mut host = self.host_config.clone();
        if !mounts.is_empty() {
            let m = mounts
                .iter()
                .map(|m| mount_json(self.e, m, &self.holds))
                .collect::<Result<Vec<_>>>()
                .map_err(be("prepare the step's mounts"))?;
            host["Mounts"] = Value::Array(m);
        }
        let targets: Vec<String> = mounts
            .iter()
            .map(|m| match m {
                RunMount::Bind { target, .. }
                | RunMount::Cache { target, .. }
                | RunMount::Tmpfs { target, .. } => target.clone(),
            })
            .collect();
        let mut body = match serde_json::to_value(cc) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        body.insert("Image".into(), json!(image));
        body.insert("AttachStdout".into(), json!(true));
        body.insert("AttachStderr".into(), json!(true));
        body.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
        body.insert("HostConfig".into(), host);
        let v = crate::containers::create_with(self.e, None, &Value::Object(body), will_run)
            .map_err(be(format!("create a build container of {image}")))?;
        let id = v["Id"].as_str().unwrap_or_default().to_string();
        if !targets.is_empty() {
            if let Ok(mut t) = self.targets.lock() {
                t.insert(id.clone(), targets);
            }
        }
        Ok(id)
    }

    fn run(
        &self,
        id: &str,
        output: &mut dyn Write,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> std::result::Result<i64, BackendError> {
        let opts = AttachOptions {
            stdout: true,
            stderr: true,
            stream: true,
            ..Default::default()
        };
        let att = self.e.container_attach(id, &opts).map_err(be("attach"))?;
        let wait = self
            .e
            .container_wait(id, WaitCondition::NextExit)
            .map_err(be("wait"))?;
        self.e
            .container_start(id)
            .map_err(be("start the build container"))?;
        let (mut out, _) = att.split();
        // A client that goes away (or a failed stage) kills the step (the builder then
        // removes its container).
        let done = std::sync::atomic::AtomicBool::new(false);
        let streamed = std::thread::scope(|sc| {
            sc.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if stop() {
                        let _ = self.e.container_kill(id, Some("KILL"));
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
            let r = demux(&mut out, output);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            r
        });
        streamed.map_err(|er| BackendError::with("stream the step's output", er))?;
        let r = wait.wait();
        match r.error {
            Some(m) if r.status_code < 0 => Err(BackendError::new(m)),
            _ => Ok(r.status_code),
        }
    }

    fn rootfs(&self, id: &str) -> std::result::Result<PathBuf, BackendError> {
        self.e
            .inner
            .0
            .ensure_mounted(id)
            .map_err(be("mount the build container"))
    }

    fn commit(
        &self,
        container: &str,
        parent: &str,
        config: ImageConfig,
        created_by: &str,
    ) -> std::result::Result<String, BackendError> {
        let s = &self.e.inner.0;
        let targets = self
            .targets
            .lock()
            .ok()
            .and_then(|mut t| t.remove(container));
        if let Some(targets) = targets {
            if let Ok((upper, berth_image::snapshot::SnapshotterKind::Overlay)) =
                s.images.snapshots.changes_dir(container)
            {
                remove_mount_stubs(&upper, &targets);
            }
        }
        let _g = s.image_lock.lock();
        let rec = s
            .images
            .commit(container, Some(parent), config, created_by, None)
            .map_err(|er| BackendError::with(format!("commit build container {container}"), er))?;
        note_parent(self.e, &rec.id.to_string(), parent);
        Ok(rec.id.to_string())
    }

    fn derive(
        &self,
        parent: Option<&str>,
        config: ImageConfig,
    ) -> std::result::Result<String, BackendError> {
        let s = &self.e.inner.0;
        let _g = s.image_lock.lock();
        let rec = s
            .images
            .derive(parent, config)
            .map_err(|er| BackendError::with("store a build step's image", er))?;
        if let Some(p) = parent {
            note_parent(self.e, &rec.id.to_string(), p);
        }
        Ok(rec.id.to_string())
    }

    fn local_image(&self, name: &str) -> Option<BaseImage> {
        let s = &self.e.inner.0;
        let rec = s.images.resolve(name).ok()?;
        let config = s.images.config_of(&rec).ok()?;
        Some(BaseImage {
            id: rec.id.to_string(),
            config,
        })
    }

    fn restore(
        &self,
        parent: Option<&str>,
        source: &str,
        layer: Option<usize>,
        config: ImageConfig,
    ) -> std::result::Result<String, BackendError> {
        let s = &self.e.inner.0;
        let _g = s.image_lock.lock();
        let rec = s
            .images
            .derive_with(parent, layer.map(|n| (source, n)), config)
            .map_err(|er| BackendError::with(format!("restore a step of {source}"), er))?;
        if let Some(p) = parent {
            note_parent(self.e, &rec.id.to_string(), p);
        }
        Ok(rec.id.to_string())
    }

    fn set_parent(&self, child: &str, parent: &str) -> std::result::Result<(), BackendError> {
        if self.ancestors(child).first().is_none_or(|p| p != parent) {
            note_parent(self.e, child, parent);
        }
        Ok(())
    }

    fn ancestors(&self, image: &str) -> Vec<String> {
        let parent = parent_map(&self.e.inner.0.cfg.root);
        let mut out: Vec<String> = Vec::new();
        let mut at = image;
        while let Some(p) = parent.get(at) {
            if out.iter().any(|o| o == p) {
                break;
            }
            out.push(p.clone());
            at = p;
        }
        out
    }

    fn remove(&self, id: &str) {
        if let Err(er) = self.e.container_remove(id, true, true) {
            tracing::warn!("remove build container {id}: {er}");
        }
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        let id = crate::buildcache::get(&build_dir(self.e).join("cache"), key)?;
        let rec = self.e.inner.0.images.resolve(&id).ok()?;
        Some(rec.id.to_string())
    }

    fn cache_put(&self, key: &str, image: &str) -> std::result::Result<(), BackendError> {
        crate::buildcache::put(&build_dir(self.e).join("cache"), key, image)
            .map_err(|er| BackendError::with("record the build cache", er))
    }

    fn cancelled(&self) -> bool {
        (self.cancelled)()
    }

    fn fetch(&self, url: &str) -> std::result::Result<PathBuf, BackendError> {
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or("download");
        let n = self
            .fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.downloads.join(n.to_string());
        let path = dir.join(name);
        let fail = |what: &str, er: &dyn std::fmt::Display| {
            BackendError::new(format!("ADD failed: {what} {url}: {er}"))
        };
        std::fs::create_dir_all(&dir).map_err(|er| fail("store the download of", &er))?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(std::time::Duration::from_secs(30))
            .build();
        let resp = agent.get(url).call().map_err(|er| fail("download", &er))?;
        let mut f =
            std::fs::File::create(&path).map_err(|er| fail("store the download of", &er))?;
        std::io::copy(&mut resp.into_reader(), &mut f).map_err(|er| fail("download", &er))?;
        Ok(path)
    }

    fn tag(&self, image: &str, reference: &str) -> std::result::Result<(), BackendError> {
        crate::images::tag(self.e, image, reference, None).map_err(be(format!("tag {reference}")))
    }
}

/// Copies the payloads of Docker's multiplexed frames (`[stream,0,0,0,len BE]` + bytes).
fn demux(r: &mut dyn Read, w: &mut dyn Write) -> std::io::Result<()> {
    let mut head = [0u8; 8];
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(er) if er.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(er) => return Err(er),
        }
        let mut left = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        while left > 0 {
            let n = left.min(buf.len());
            r.read_exact(&mut buf[..n])?;
            w.write_all(&buf[..n])?;
            left -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_joins_payloads() {
        let mut v = vec![1, 0, 0, 0, 0, 0, 0, 3];
        v.extend_from_slice(b"abc");
        v.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(b"de");
        let mut out = Vec::new();
        demux(&mut v.as_slice(), &mut out).unwrap();
        assert_eq!(out, b"abcde");
    }
}
