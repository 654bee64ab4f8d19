//! `POST /containers/create`: Docker's Config+HostConfig merged with the image's into a record.
use crate::containers::*;
use crate::model::{
    decode, Config, CreateRequest, Field, HostConfig, KeySet, LogConfig, MountPoint,
    NetworkingConfig, RestartPolicy, Status, StrMap,
};
use crate::prepare::*;
use crate::ready::*;
use crate::shared::*;
use crate::state::{CState, Record};
use crate::util::*;
use crate::*;
use berth_image::ImageService;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The create request, decoded: its Config (top-level fields), HostConfig and
/// NetworkingConfig. A wrongly typed field is a 400 naming it, and so is a field berth does
/// not honour (`model::unsupported`) or a value out of its range (`spec::validate`).
fn decode_request(body: &Value) -> Result<(Config, HostConfig)> {
    if !body.is_object() {
        return Err(Error::BadParameter(
            "invalid JSON: container config must be an object".into(),
        ));
    }
    let req: CreateRequest = decode("", body)?;
    let config = req.config;
    let host = match req.host_config {
        Field::Set(h) => h,
        _ => HostConfig::default(),
    };
    if config.image.str().is_empty() {
        return Err(Error::BadParameter(
            "no image specified (Config.Image is empty)".into(),
        ));
    }
    let net: Option<&NetworkingConfig> = req.networking_config.get();
    crate::model::unsupported::check_create(&crate::model::unsupported::Request {
        config: &config,
        host: &host,
        net,
    })?;
    crate::spec::validate_config(&config)?;
    crate::spec::validate(&host)?;
    Ok((config, host))
}

/// Docker's defaults of a HostConfig that create fills in (network mode, restart policy,
/// log driver), checked.
fn host_defaults(s: &Shared, host: &mut HostConfig) -> Result<()> {
    let has_bridge = s.networks.has_bridge();
    fill_host_defaults(host, has_bridge, &|c| {
        let reg = s.containers.lock();
        s.containers
            .resolve(&reg, c)
            .map(|_| ())
            .map_err(|_| Error::NotFound(format!("No such container: {c}")))
    })
}

/// [`host_defaults`] for a daemon with (`has_bridge`) or without the default bridge, with the
/// check that a `container:<name>` network mode names a container given as `container_exists`.
fn fill_host_defaults(
    host: &mut HostConfig,
    has_bridge: bool,
    container_exists: &dyn Fn(&str) -> Result<()>,
) -> Result<()> {
    // (A PidsLimit of 0 or less is no limit: dockerd keeps none.)
    if host.pids_limit.get().is_some_and(|p| *p <= 0) {
        host.pids_limit = Field::Null;
    }
    match host.network_mode.str() {
        // (The default network, when the daemon has one: as dockerd, inspect says "bridge".)
        "" | "default" if has_bridge => {
            host.network_mode = Field::Set(crate::networks::DEFAULT_NETWORK.into())
        }
        "" => host.network_mode = Field::Set("none".into()),
        crate::networks::DEFAULT_NETWORK if !has_bridge => {
            return Err(Error::NotFound(format!(
                "network {} not found (berthd runs with --bridge none)",
                crate::networks::DEFAULT_NETWORK
            )))
        }
        _ => {}
    }
    if let crate::spec::NetMode::Container(c) = crate::spec::net_mode(host)? {
        container_exists(&c)?;
    }
    crate::networks::shaping::check_mode(host, has_bridge)?;
    if host.restart_policy.is_none() {
        host.restart_policy = Field::Set(RestartPolicy {
            name: Field::Set("no".into()),
            maximum_retry_count: Field::Set(0),
            ..Default::default()
        });
    }
    match host.log_type() {
        "" => {
            let cfg = host.log_config.get().and_then(|l| l.config.get().cloned());
            host.log_config = Field::Set(LogConfig {
                kind: Field::Set("json-file".into()),
                config: Field::Set(cfg.unwrap_or_default()),
                ..Default::default()
            });
        }
        "json-file" | "none" => {}
        t => {
            return Err(Error::BadParameter(format!(
                "logging driver \"{t}\" is not supported (use json-file)"
            )))
        }
    }
    Ok(())
}

/// The container's mounts (`VolumesFrom` names other containers: theirs are copied).
fn mounts_of(s: &Shared, host: &HostConfig) -> Result<Vec<MountPoint>> {
    let mounts = crate::model::resolve(host, &|name| {
        let reg = s.containers.lock();
        let id = s
            .containers
            .resolve(&reg, name)
            .map_err(|_| Error::NotFound(format!("No such container: {name}")))?;
        Ok(reg.by_id[&id].rec.mounts().to_vec())
    })?;
    crate::model::check_sources(&mounts)?;
    Ok(mounts)
}

/// Docker's merge of the request's Config with the image's (Docker stores the merged one);
/// returns the command (entrypoint + cmd).
fn merge_config(
    c: &mut Config,
    ic: &berth_image::model::ContainerConfig,
    id: &str,
) -> Result<Vec<String>> {
    let (ep, cmd) = crate::spec::merge_cmd(
        c.entrypoint.get().map(|l| l.0.as_slice()),
        c.cmd.get().map(|l| l.0.as_slice()),
        ic.entrypoint.as_deref().unwrap_or(&[]),
        ic.cmd.as_deref().unwrap_or(&[]),
    );
    if ep.is_empty() && cmd.is_empty() {
        return Err(Error::BadParameter("No command specified".into()));
    }
    let mut all: Vec<String> = ep.clone();
    all.extend(cmd.iter().cloned());
    c.entrypoint = if ep.is_empty() {
        Field::Null
    } else {
        Field::Set(ep.into())
    };
    c.cmd = Field::Set(cmd.into());
    let env = crate::spec::merge_env(ic.env.as_deref().unwrap_or(&[]), c.env.list());
    c.env = Field::Set(env);
    let or_image = |f: &mut Field<String>, img: &Option<String>| {
        if f.str().is_empty() {
            *f = Field::Set(img.clone().unwrap_or_default());
        }
    };
    or_image(&mut c.working_dir, &ic.working_dir);
    or_image(&mut c.user, &ic.user);
    let mut labels: BTreeMap<String, String> = ic.labels.clone().unwrap_or_default();
    labels.extend(c.labels());
    c.labels = Field::Set(StrMap(labels));
    if c.stop_signal.str().is_empty() {
        if let Some(sig) = &ic.stop_signal {
            c.stop_signal = Field::Set(sig.clone());
        }
    }
    if let Some(sig) = c.stop_signal.get() {
        parse_signal(sig)?;
    }
    if let Some(h) = c.healthcheck.get() {
        h.validate()?;
    }
    crate::health::HealthConfig::merge(&mut c.healthcheck, ic.healthcheck.as_ref());
    if let (true, Some(p)) = (c.exposed_ports.is_none(), &ic.exposed_ports) {
        c.exposed_ports = Field::Set(KeySet::from_keys(p.keys()));
    }
    if let Some(v) = &ic.volumes {
        // (The image's volumes and the request's, as dockerd merges them.)
        let mut all = KeySet::from_keys(v.keys());
        all.0
            .extend(c.volumes.get().map(|k| k.0.clone()).unwrap_or_default());
        c.volumes = Field::Set(all);
    }
    for f in [
        &mut c.tty,
        &mut c.open_stdin,
        &mut c.stdin_once,
        &mut c.attach_stdin,
        &mut c.attach_stdout,
        &mut c.attach_stderr,
    ] {
        if f.is_none() {
            *f = Field::Set(false);
        }
    }
    if c.hostname.str().is_empty() {
        c.hostname = Field::Set(id[..12].to_string());
    }
    if c.domainname.is_none() {
        c.domainname = Field::Set(String::new());
    }
    Ok(all)
}

/// What create makes of a request body alone (no engine state, no image store): the
/// decoded, defaulted and checked Config and HostConfig, merged with the image config `ic`,
/// and the OCI spec the container would run with (rootfs and /etc files at `dir`). Every
/// other container is taken to exist and to have no mounts. For the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn spec_of_request(
    body: &Value,
    ic: &berth_image::model::ContainerConfig,
    dir: &std::path::Path,
) -> Result<oci_spec::runtime::Spec> {
    let (mut config, mut host) = decode_request(body)?;
    fill_host_defaults(&mut host, false, &|_| Ok(()))?;
    let mounts = crate::model::resolve(&host, &|_| Ok(Vec::new()))?;
    crate::model::check_sources(&mounts)?;
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    merge_config(&mut config, ic, id)?;
    crate::spec::build(&crate::spec::SpecInput {
        id,
        config: &config,
        host: &host,
        mounts: &mounts,
        rootfs: &dir.join("rootfs"),
        etc_dir: &dir.join("etc"),
        init_path: Some(dir.join("init")),
        join_net: Some("/proc/1/ns/net".into()),
        hostname: config.hostname.str().to_string(),
        truthful_proc: false,
    })
}

pub(crate) fn create(e: &Engine, name: Option<&str>, body: &Value) -> Result<Value> {
    create_with(e, name, body, true)
}

/// [`create`]; `prepare`: make the runtime side ahead in the background (not for a container
/// that is never started, such as a build's COPY step, whose rootfs is only written to).
pub(crate) fn create_with(
    e: &Engine,
    name: Option<&str>,
    body: &Value,
    prepare: bool,
) -> Result<Value> {
    let s = &e.inner.0;
    let (mut config, mut host) = decode_request(body)?;
    crate::mark("engine: create: decoded");
    let image = config.image.str().to_string();
    host_defaults(s, &mut host)?;
    let nets = s.networks.plan(&host, body.get("NetworkingConfig"))?;
    let mut mounts = mounts_of(s, &host)?;
    let rw_limit = crate::quota::storage_size(host.storage_opt.map())?;
    if rw_limit.is_some() && !s.quota.supported() {
        return Err(s.quota.unsupported("--storage-opt"));
    }
    crate::mark("engine: create: validated");
    let img = s
        .images
        .resolve(&image)
        .map_err(|er| crate::images::image_error(&image, er))?;
    let icfg = s
        .images
        .config_of(&img)
        .map_err(|er| internal(format!("image config of {image}"), er))?;
    let ic = icfg.config.clone().unwrap_or_default();
    crate::mark("engine: create: image config read");
    let id = random_id()?;
    let all = merge_config(&mut config, &ic, &id)?;
    anonymous_volumes(&config, &mut mounts)?;
    let warnings: Vec<String> = Vec::new();

    let cname = reserve_name(s, name, &id)?;
    let d = s.cdir(&id);
    // (Held from the volumes' making to the container's registration: no remove between.)
    let vol_guard = mounts
        .iter()
        .any(|m| m.kind == crate::model::MountType::Volume)
        .then(|| s.volumes.lock());
    let made = crate::volumes::resolve_mounts(s, &mut mounts).and_then(|new| {
        prepare_rootfs(s, &id, &img.id.to_string(), &d)?;
        if let Some(n) = rw_limit {
            crate::quota::limit_rw(s, &id, n)?;
        }
        fill_volumes(s, &id, &mounts, &new)?;
        Ok(())
    });
    let made = made.and_then(|()| {
        let rec = Record {
            id: id.clone(),
            name: cname.clone(),
            created: now_rfc3339(),
            path: all[0].clone(),
            args: all[1..].to_vec(),
            config,
            host_config: host,
            image_id: img.id.to_string(),
            state: CState {
                status: Status::Created,
                ..Default::default()
            },
            restart_count: 0,
            has_been_started: false,
            manually_stopped: false,
            log_path: d
                .join(format!("{id}-json.log"))
                .to_string_lossy()
                .into_owned(),
            driver: s.images.snapshotter_kind_name(),
            mount_points: Some(mounts),
        };
        s.networks.set_plan(&id, &rec.host_config, &nets)?;
        s.containers.save(&rec)?;
        crate::mark("engine: create: record saved");
        Ok(rec)
    });
    let rec = match made {
        Ok(r) => r,
        Err(er) => {
            // (Its rootfs may be mounted already: a ready one.)
            let _ = s.unmount_at(&d.join("rootfs"), &id);
            let _ = s.images.remove_snapshot(&id);
            let _ = std::fs::remove_dir_all(&d);
            s.networks.forget(&id);
            let mut reg = s.containers.lock();
            if reg.names.get(&cname) == Some(&id) {
                reg.names.remove(&cname);
            }
            return Err(er);
        }
    };
    register(s, &rec);
    drop(vol_guard);
    s.event(&rec, "create", &[]);
    if prepare
        && !matches!(
            crate::spec::net_mode(&rec.host_config),
            Ok(crate::spec::NetMode::Container(_))
        )
    {
        prepare_later(s, &id);
    }
    Ok(json!({"Id": id, "Warnings": warnings}))
}

/// The volumes this create made (`new`) are filled with the image's content at their path,
/// unless `nocopy` (as dockerd).
fn fill_volumes(s: &Shared, id: &str, mounts: &[MountPoint], new: &[String]) -> Result<()> {
    let todo: Vec<&MountPoint> = mounts
        .iter()
        .filter(|m| !m.nocopy && new.contains(&m.name))
        .collect();
    if !todo.is_empty() {
        let root = s.ensure_mounted(id)?;
        for m in todo {
            crate::volumes::prefill(&root, &m.destination, std::path::Path::new(&m.source))?;
        }
    }
    s.volumes.filled(new)
}

/// An anonymous volume for each `Config.Volumes` path (the image's `VOLUME`s merged in) no
/// mount covers, as dockerd.
fn anonymous_volumes(c: &Config, mounts: &mut Vec<MountPoint>) -> Result<()> {
    let covered = |mounts: &[MountPoint], v: &str| {
        mounts
            .iter()
            .any(|m| m.destination.trim_end_matches('/') == v.trim_end_matches('/'))
    };
    for v in c.volumes.keys() {
        if !v.starts_with('/') {
            return Err(Error::BadParameter(format!(
                "invalid volume specification: '{v}': mount path must be absolute (Config.Volumes)"
            )));
        }
        if !covered(mounts, v) {
            mounts.push(crate::model::volume("", v, false, false));
        }
    }
    Ok(())
}

/// The container's name (with "/"), reserved while the container is made.
fn reserve_name(s: &Shared, name: Option<&str>, id: &str) -> Result<String> {
    let mut reg = s.containers.lock();
    let cname = match name {
        Some(n) if !n.is_empty() => validate_name(n)?,
        _ => format!("/{}", random_name(&reg)?),
    };
    if let Some(other) = reg.names.get(&cname) {
        return Err(conflict_msg(&cname, other));
    }
    reg.names.insert(cname.clone(), id.to_string());
    Ok(cname)
}

/// The container's rootfs snapshot in `d`. A rootfs mounted ahead for this image is used as
/// it is; one for another image is let go of.
fn prepare_rootfs(s: &Shared, id: &str, image_id: &str, d: &std::path::Path) -> Result<()> {
    let mut ready = take_ready_rootfs(s, d)?;
    let prepared = s.images.prepare_snapshot_deferred_ready(
        id,
        Some(image_id),
        &crate::spec::MOUNT_TARGETS,
        &mut ready,
    );
    if let Some(other) = ready.take() {
        s.images.snapshots.discard_ready(other, &d.join("rootfs"));
    }
    let (_, sync, base) =
        prepared.map_err(|er| internal(format!("prepare the rootfs of {id}"), er))?;
    if let Ok(mut b) = s.ready.last_base.lock() {
        *b = Some(base);
    }
    for p in &sync {
        crate::util::durable_later(p);
    }
    crate::mark("engine: create: snapshot prepared");
    Ok(())
}

/// The new container in the registry.
fn register(s: &Shared, rec: &Record) {
    let mut reg = s.containers.lock();
    reg.by_id.insert(rec.id.clone(), Entry::new(rec.clone()));
}

pub(crate) trait KindName {
    fn snapshotter_kind_name(&self) -> String;
}
impl KindName for ImageService {
    fn snapshotter_kind_name(&self) -> String {
        format!("{:?}", self.snapshotter_kind()).to_lowercase()
    }
}
