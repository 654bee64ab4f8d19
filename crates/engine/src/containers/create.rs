//! `POST /containers/create`: Docker's Config+HostConfig merged with the image's into a record.
use crate::containers::*;
use crate::prepare::*;
use crate::ready::*;
use crate::shared::*;
use crate::state::{CState, Record};
use crate::util::*;
use crate::*;
use berth_image::ImageService;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(crate) fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

pub(crate) fn create(e: &Engine, name: Option<&str>, body: &Value) -> Result<Value> {
    let s = &e.inner.0;
    if !body.is_object() {
        return Err(Error::BadParameter(
            "invalid JSON: container config must be an object".into(),
        ));
    }
    let image = body["Image"].as_str().unwrap_or("").to_string();
    if image.is_empty() {
        return Err(Error::BadParameter(
            "no image specified (Config.Image is empty)".into(),
        ));
    }
    let mut host = body.get("HostConfig").cloned().unwrap_or_else(|| json!({}));
    if host.is_null() {
        host = json!({});
    }
    if !host.is_object() {
        return Err(Error::BadParameter("HostConfig must be an object".into()));
    }
    crate::spec::validate(&host)?;
    if host["NetworkMode"].as_str().unwrap_or("").is_empty() {
        host["NetworkMode"] = json!("none");
    }
    if let crate::spec::NetMode::Container(c) = crate::spec::net_mode(&host)? {
        let reg = s.containers.lock();
        s.containers
            .resolve(&reg, &c)
            .map_err(|_| Error::NotFound(format!("No such container: {c}")))?;
    }
    if host.get("RestartPolicy").is_none_or(|v| v.is_null()) {
        host["RestartPolicy"] = json!({"Name": "no", "MaximumRetryCount": 0});
    }
    if host["LogConfig"]["Type"].as_str().unwrap_or("").is_empty() {
        let cfg = host["LogConfig"]["Config"].clone();
        host["LogConfig"] =
            json!({"Type": "json-file", "Config": if cfg.is_object() { cfg } else { json!({}) }});
    } else if host["LogConfig"]["Type"] != "json-file" && host["LogConfig"]["Type"] != "none" {
        return Err(Error::BadParameter(format!(
            "logging driver {} is not supported (use json-file)",
            host["LogConfig"]["Type"]
        )));
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

    // Merge (Docker stores the merged config).
    let mut config = body.clone();
    if let Some(m) = config.as_object_mut() {
        for k in ["HostConfig", "NetworkingConfig"] {
            m.remove(k);
        }
    }
    let (ep, cmd) = crate::spec::merge_cmd(
        body.get("Entrypoint"),
        body.get("Cmd"),
        ic.entrypoint.as_deref().unwrap_or(&[]),
        ic.cmd.as_deref().unwrap_or(&[]),
    );
    if ep.is_empty() && cmd.is_empty() {
        return Err(Error::BadParameter("No command specified".into()));
    }
    config["Entrypoint"] = if ep.is_empty() {
        Value::Null
    } else {
        json!(ep)
    };
    config["Cmd"] = json!(cmd);
    config["Env"] = json!(crate::spec::merge_env(
        ic.env.as_deref().unwrap_or(&[]),
        &strs(&body["Env"])
    ));
    if config["WorkingDir"].as_str().unwrap_or("").is_empty() {
        config["WorkingDir"] = json!(ic.working_dir.clone().unwrap_or_default());
    }
    if config["User"].as_str().unwrap_or("").is_empty() {
        config["User"] = json!(ic.user.clone().unwrap_or_default());
    }
    let mut labels: BTreeMap<String, String> = ic.labels.clone().unwrap_or_default();
    labels.extend(labels_of(&body["Labels"]));
    config["Labels"] = json!(labels);
    if config["StopSignal"].as_str().unwrap_or("").is_empty() {
        if let Some(sig) = &ic.stop_signal {
            config["StopSignal"] = json!(sig);
        }
    }
    if let Some(sig) = config["StopSignal"].as_str() {
        parse_signal(sig)?;
    }
    if config.get("ExposedPorts").is_none_or(|v| v.is_null()) {
        if let Some(p) = &ic.exposed_ports {
            config["ExposedPorts"] = json!(p);
        }
    }
    if config.get("Volumes").is_none_or(|v| v.is_null()) {
        if let Some(v) = &ic.volumes {
            config["Volumes"] = json!(v);
        }
    }
    for k in [
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
    ] {
        if !config[k].is_boolean() {
            config[k] = json!(false);
        }
    }
    let mut all: Vec<String> = ep.clone();
    all.extend(cmd.iter().cloned());
    let id = random_id()?;
    if config["Hostname"].as_str().unwrap_or("").is_empty() {
        config["Hostname"] = json!(id[..12].to_string());
    }
    if config["Domainname"].is_null() {
        config["Domainname"] = json!("");
    }
    config["Image"] = json!(image);

    let op = Arc::new(Mutex::new(()));
    let cname;
    {
        let mut reg = s.containers.lock();
        cname = match name {
            Some(n) if !n.is_empty() => validate_name(n)?,
            _ => format!("/{}", random_name(&reg)?),
        };
        if let Some(other) = reg.names.get(&cname) {
            return Err(conflict_msg(&cname, other));
        }
        // Reserve the name while we prepare.
        reg.names.insert(cname.clone(), id.clone());
    }
    let unreserve = |s: &Shared| {
        let mut reg = s.containers.lock();
        if reg.names.get(&cname) == Some(&id) {
            reg.names.remove(&cname);
        }
    };
    let d = s.cdir(&id);
    let r = (|| -> Result<Record> {
        // A rootfs mounted ahead for this image is used as it is; one for another image is
        // let go of.
        let mut ready = take_ready_rootfs(s, &d)?;
        let prepared = s.images.prepare_snapshot_deferred_ready(
            &id,
            Some(&img.id.to_string()),
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
                status: "created".into(),
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
        };
        s.containers.save(&rec)?;
        crate::mark("engine: create: record saved");
        Ok(rec)
    })();
    let rec = match r {
        Ok(r) => r,
        Err(er) => {
            // (Its rootfs may be mounted already: a ready one.)
            let _ = s.unmount_at(&d.join("rootfs"), &id);
            let _ = s.images.remove_snapshot(&id);
            let _ = std::fs::remove_dir_all(&d);
            unreserve(s);
            return Err(er);
        }
    };
    {
        let mut reg = s.containers.lock();
        reg.by_id.insert(
            id.clone(),
            Entry {
                rec: rec.clone(),
                op,
                pending: vec![],
                exit_gen: 0,
                removing: false,
                prepared: None,
                preparing: false,
                start_req: None,
                version: 0,
                saved: Arc::new(Mutex::new(0)),
            },
        );
    }
    s.event(&rec, "create", &[]);
    if !matches!(
        crate::spec::net_mode(&rec.host_config),
        Ok(crate::spec::NetMode::Container(_))
    ) {
        prepare_later(s, &id);
    }
    Ok(json!({"Id": id, "Warnings": []}))
}

pub(crate) trait KindName {
    fn snapshotter_kind_name(&self) -> String;
}
impl KindName for ImageService {
    fn snapshotter_kind_name(&self) -> String {
        format!("{:?}", self.snapshotter_kind()).to_lowercase()
    }
}
