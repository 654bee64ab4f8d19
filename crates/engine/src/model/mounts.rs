//! A container's mounts, resolved once at create from `HostConfig.VolumesFrom`, `Binds`
//! (`src:dst[:opts]`), `Tmpfs` (`{path: "size=..,mode=.."}`) and `Mounts` (`--mount`) into
//! one list of [`MountPoint`]s kept in the record: the spec builder mounts them, inspect and
//! list show them.
use super::{HostConfig, Mount};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;

/// Docker's mount types (`MountPoint.Type`, `Mount.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MountType {
    Bind,
    Volume,
    Tmpfs,
    Npipe,
    Cluster,
    Image,
}

impl MountType {
    fn parse(s: &str) -> Option<MountType> {
        Some(match s {
            "bind" => MountType::Bind,
            "volume" => MountType::Volume,
            "tmpfs" => MountType::Tmpfs,
            "npipe" => MountType::Npipe,
            "cluster" => MountType::Cluster,
            "image" => MountType::Image,
            _ => return None,
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One mount of the container: Docker's `MountPoint` (what inspect and list show; `Name` and
/// `Driver` are for named volumes) and what berth needs to mount it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: MountType,
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Source")]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "Driver", default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(rename = "Mode")]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(rename = "Propagation")]
    pub propagation: String,
    /// berth's: the options of the OCI mount.
    #[serde(rename = "Options", default)]
    pub options: Vec<String>,
    /// berth's: a `-v` bind whose missing source is made at start (`--mount` refuses one).
    #[serde(rename = "CreateSource", default, skip_serializing_if = "is_false")]
    pub create_source: bool,
    /// berth's: a volume made by the create is not filled from the image (`nocopy`).
    #[serde(rename = "NoCopy", default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// berth's: `--mount volume-opt=` (`VolumeOptions.DriverConfig.Options`), the driver's
    /// options for a volume the create makes; taken at create.
    #[serde(skip)]
    pub volume_opts: std::collections::BTreeMap<String, String>,
}

impl MountPoint {
    /// Docker's `MountPoint` JSON (inspect's and list's `Mounts`).
    pub(crate) fn api(&self) -> Value {
        let mut v = json!({"Type": self.kind, "Source": self.source, "Destination": self.destination,
            "Mode": self.mode, "RW": self.rw, "Propagation": self.propagation});
        if !self.name.is_empty() {
            v["Name"] = json!(self.name);
        }
        if !self.driver.is_empty() {
            v["Driver"] = json!(self.driver);
        }
        v
    }

    /// The OCI mount.
    pub(crate) fn oci(&self) -> oci_spec::runtime::Mount {
        let mut m = oci_spec::runtime::Mount::default();
        m.set_destination(self.destination.clone().into());
        let (typ, source) = match self.kind {
            MountType::Tmpfs => ("tmpfs", "tmpfs"),
            _ => ("bind", self.source.as_str()),
        };
        m.set_typ(Some(typ.to_string()));
        m.set_source(Some(source.into()));
        m.set_options(Some(self.options.clone()));
        m
    }
}

fn bad(field: &str, msg: String) -> Error {
    Error::BadParameter(format!("{msg} ({field})"))
}

/// One `Binds` entry: `/host:/ctr[:opts]`, opts a comma list of ro|rw, a propagation
/// (shared, rshared, slave, rslave, private, rprivate) and the no-ops z, Z, nocopy,
/// consistent, cached, delegated.
pub(crate) fn parse_bind(spec: &str, field: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(bad(
                field,
                format!("invalid volume specification: '{spec}'"),
            ))
        }
    };
    if !dst.starts_with('/') {
        return Err(bad(
            field,
            format!("invalid volume specification: '{spec}': mount path must be absolute"),
        ));
    }
    let mut ro = false;
    let mut prop = "rprivate";
    let mut nocopy = false;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "nocopy" => nocopy = true,
            "rw" | "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => prop = o,
            _ => {
                return Err(bad(
                    field,
                    format!("invalid mode: {o} in volume specification '{spec}'"),
                ))
            }
        }
    }
    if !src.starts_with('/') {
        let mut mp = volume(src, dst, ro, nocopy);
        mp.mode = mode.to_string();
        return Ok(mp);
    }
    Ok(bind(src, dst, prop, ro, true))
}

/// A `type=volume` mount point: its source (the volume's directory) is set at create, when
/// the volume (`name`; empty: a new anonymous one) is made or found.
pub(crate) fn volume(name: &str, dst: &str, ro: bool, nocopy: bool) -> MountPoint {
    let mut options = vec!["rbind".to_string()];
    if ro {
        options.push("ro".into());
    }
    MountPoint {
        kind: MountType::Volume,
        name: name.into(),
        source: String::new(),
        destination: dst.into(),
        driver: "local".into(),
        mode: String::new(),
        rw: !ro,
        propagation: String::new(),
        options,
        create_source: false,
        nocopy,
        volume_opts: Default::default(),
    }
}

fn bind(src: &str, dst: &str, prop: &str, ro: bool, create_source: bool) -> MountPoint {
    let mut options = vec!["rbind".to_string(), prop.to_string()];
    if ro {
        options.push("ro".into());
    }
    MountPoint {
        kind: MountType::Bind,
        name: String::new(),
        source: src.into(),
        destination: dst.into(),
        driver: String::new(),
        mode: if ro { "ro".into() } else { String::new() },
        rw: !ro,
        propagation: prop.into(),
        options,
        create_source,
        nocopy: false,
        volume_opts: Default::default(),
    }
}

fn tmpfs(dst: &str, source: &str, options: Vec<String>, rw: bool) -> MountPoint {
    MountPoint {
        kind: MountType::Tmpfs,
        name: String::new(),
        source: source.into(),
        destination: dst.into(),
        driver: String::new(),
        mode: String::new(),
        rw,
        propagation: String::new(),
        options,
        create_source: false,
        nocopy: false,
        volume_opts: Default::default(),
    }
}

/// One `Tmpfs` entry: noexec,nosuid,nodev unless the options say exec, suid or dev; the
/// other options (size=, mode=, uid=, ...) go to the mount as they are.
pub(crate) fn parse_tmpfs(dst: &str, opts: &str, field: &str) -> Result<MountPoint> {
    if !dst.starts_with('/') {
        return Err(bad(
            field,
            format!("invalid tmpfs mount {dst:?}: mount path must be absolute"),
        ));
    }
    let mut options = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
    for x in opts.split(',').filter(|x| !x.is_empty()) {
        match x {
            "exec" => options.retain(|y| y != "noexec"),
            "suid" => options.retain(|y| y != "nosuid"),
            "dev" => options.retain(|y| y != "nodev"),
            o => options.push(o.to_string()),
        }
    }
    Ok(tmpfs(dst, "", options, true))
}

/// One `Mounts` entry (`--mount`): bind or tmpfs (volumes come with named volumes).
pub(crate) fn parse_mount(m: &Mount, field: &str) -> Result<MountPoint> {
    let t = m.kind.str();
    let kind = MountType::parse(t).ok_or_else(|| {
        bad(
            field,
            format!("invalid mount config: unknown mount type {t:?}"),
        )
    })?;
    if !matches!(kind, MountType::Bind | MountType::Tmpfs | MountType::Volume) {
        return Err(bad(
            field,
            format!("mount type {t:?} is not supported yet (use bind, volume or tmpfs)"),
        ));
    }
    let dst = m.target.str();
    if !dst.starts_with('/') {
        return Err(bad(
            field,
            format!("invalid mount config for type {t:?}: mount path must be absolute"),
        ));
    }
    let ro = m.read_only.val();
    if kind == MountType::Volume {
        return parse_volume_mount(m, dst, ro, field);
    }
    if kind == MountType::Bind {
        let src = m.source.str();
        if !src.starts_with('/') {
            return Err(bad(field, format!("invalid mount config for type \"bind\": invalid mount path: {src:?} mount path must be absolute")));
        }
        let prop = match m.bind_options.get().map(|b| b.propagation.str()) {
            None | Some("") => "rprivate",
            Some(p @ ("shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate")) => p,
            Some(p) => {
                return Err(bad(
                    field,
                    format!("invalid mount config for type \"bind\": invalid propagation {p:?}"),
                ))
            }
        };
        // (`CreateMountpoint`: a missing source is made, as for `-v`; compose asks for it.)
        let create = m
            .bind_options
            .get()
            .is_some_and(|b| b.create_mountpoint.val());
        let mut mp = bind(src, dst, prop, ro, create);
        mp.mode = String::new();
        return Ok(mp);
    }
    let mut options = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
    if let Some(to) = m.tmpfs_options.get() {
        if to.size_bytes.val() > 0 {
            options.push(format!("size={}", to.size_bytes.val()));
        }
        if to.mode.val() > 0 {
            options.push(format!("mode={:o}", to.mode.val()));
        }
        // (`[["noexec"], ["uid", "1000"]]`: flags and key=value options, as `Tmpfs`'s.)
        for o in to.options.items() {
            match o.as_slice() {
                [flag] => match flag.as_str() {
                    "exec" => options.retain(|y| y != "noexec"),
                    "suid" => options.retain(|y| y != "nosuid"),
                    "dev" => options.retain(|y| y != "nodev"),
                    f => options.push(f.to_string()),
                },
                [k, v] => options.push(format!("{k}={v}")),
                _ => {
                    return Err(bad(
                        field,
                        format!("invalid tmpfs option {o:?}: expected [flag] or [key, value]"),
                    ))
                }
            }
        }
    }
    if ro {
        options.push("ro".into());
    }
    Ok(tmpfs(dst, m.source.str(), options, !ro))
}

/// A `--mount type=volume`: `VolumeOptions` (`NoCopy`; `Labels` for a volume it makes;
/// another `DriverConfig` than local's is refused).
fn parse_volume_mount(m: &Mount, dst: &str, ro: bool, field: &str) -> Result<MountPoint> {
    let src = m.source.str();
    if src.starts_with('/') {
        return Err(bad(field, format!("invalid mount config for type \"volume\": invalid volume name {src:?}: an absolute path is a bind")));
    }
    if m.bind_options.get().is_some() {
        return Err(bad(
            field,
            "invalid mount config for type \"volume\": BindOptions must not be specified".into(),
        ));
    }
    let nocopy = m.volume_options.get().is_some_and(|o| o.no_copy.val());
    let mut mp = volume(src, dst, ro, nocopy);
    if let Some(d) = m.volume_options.get().and_then(|o| o.driver_config.get()) {
        mp.volume_opts = d.options.map().clone();
    }
    Ok(mp)
}

/// One `VolumesFrom` entry: `container[:ro|:rw]`.
pub(crate) fn parse_volumes_from(spec: &str, field: &str) -> Result<(String, Option<bool>)> {
    let (name, mode) = match spec.rsplit_once(':') {
        Some((n, "ro")) => (n, Some(false)),
        Some((n, "rw")) => (n, Some(true)),
        Some((_, m)) => return Err(bad(field, format!("invalid mode for volumes-from: {m}"))),
        None => (spec, None),
    };
    if name.is_empty() {
        return Err(bad(field, format!("invalid volumes-from: {spec:?}")));
    }
    Ok((name.to_string(), mode))
}

/// The mounts of a container: those of `VolumesFrom` containers (`volumes_from` gives the
/// mount points of a container by name or id; tmpfs are not shared), then `Binds`, `Tmpfs`
/// and `Mounts`, in the order they are mounted. A destination given explicitly replaces
/// one that came from another container.
pub(crate) fn resolve(
    host: &HostConfig,
    volumes_from: &dyn Fn(&str) -> Result<Vec<MountPoint>>,
) -> Result<Vec<MountPoint>> {
    let mut own = Vec::new();
    for (i, b) in host.binds.list().iter().enumerate() {
        own.push(parse_bind(b, &format!("HostConfig.Binds[{i}]"))?);
    }
    if let Some(t) = host.tmpfs.get() {
        for (dst, opts) in &t.0 {
            own.push(parse_tmpfs(
                dst,
                opts,
                &format!("HostConfig.Tmpfs[{dst:?}]"),
            )?);
        }
    }
    for (i, m) in host.mounts.items().iter().enumerate() {
        own.push(parse_mount(m, &format!("HostConfig.Mounts[{i}]"))?);
    }
    let mut out = Vec::new();
    for (i, vf) in host.volumes_from.list().iter().enumerate() {
        let (name, rw) = parse_volumes_from(vf, &format!("HostConfig.VolumesFrom[{i}]"))?;
        for mut mp in volumes_from(&name)? {
            if mp.kind == MountType::Tmpfs
                || own.iter().any(|o| o.destination == mp.destination)
                || out
                    .iter()
                    .any(|o: &MountPoint| o.destination == mp.destination)
            {
                continue;
            }
            if let Some(rw) = rw {
                mp.rw = rw;
                mp.options.retain(|o| o != "ro" && o != "rw");
                if !rw {
                    mp.options.push("ro".into());
                }
                mp.mode = if rw { "rw" } else { "ro" }.into();
            }
            out.push(mp);
        }
    }
    out.extend(own);
    Ok(out)
}

/// The mounts of a record written before they were resolved at create: as [`resolve`]
/// without `VolumesFrom` (not supported then), an entry today's parsers refuse left out
/// with a warning rather than the container's every mount.
pub(crate) fn resolve_at_load(host: &HostConfig, id: &str) -> Vec<MountPoint> {
    let mut out = Vec::new();
    let mut take = |r: Result<MountPoint>| match r {
        Ok(m) => out.push(m),
        Err(e) => tracing::warn!("container {id}: mount left out: {e}"),
    };
    for (i, b) in host.binds.list().iter().enumerate() {
        take(parse_bind(b, &format!("HostConfig.Binds[{i}]")));
    }
    if let Some(t) = host.tmpfs.get() {
        for (dst, opts) in &t.0 {
            take(parse_tmpfs(
                dst,
                opts,
                &format!("HostConfig.Tmpfs[{dst:?}]"),
            ));
        }
    }
    for (i, m) in host.mounts.items().iter().enumerate() {
        take(parse_mount(m, &format!("HostConfig.Mounts[{i}]")));
    }
    out
}

/// At create: the source of a `--mount` bind must exist (a `-v` one is made at start).
pub(crate) fn check_sources(mounts: &[MountPoint]) -> Result<()> {
    for m in mounts {
        if m.kind == MountType::Bind && !m.create_source && !Path::new(&m.source).exists() {
            return Err(Error::BadParameter(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                m.source
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode;

    fn host(v: Value) -> HostConfig {
        decode("HostConfig", &v).unwrap()
    }
    fn none(_: &str) -> Result<Vec<MountPoint>> {
        Ok(vec![])
    }

    #[test]
    fn binds_every_option_form() {
        let cases = [
            ("/a:/b", vec!["rbind", "rprivate"], ""),
            ("/a:/b:ro", vec!["rbind", "rprivate", "ro"], "ro"),
            ("/a:/b:rw", vec!["rbind", "rprivate"], ""),
            ("/a:/b:rshared", vec!["rbind", "rshared"], ""),
            ("/a:/b:z,ro,rslave", vec!["rbind", "rslave", "ro"], "ro"),
            (
                "/a:/b:Z,nocopy,consistent,cached,delegated,shared",
                vec!["rbind", "shared"],
                "",
            ),
            ("/a:/b:private,slave", vec!["rbind", "slave"], ""),
        ];
        for (spec, opts, mode) in cases {
            let m = parse_bind(spec, "f").unwrap();
            assert_eq!(m.options, opts, "{spec}");
            assert_eq!(m.mode, mode, "{spec}");
            assert_eq!(m.rw, mode != "ro", "{spec}");
            assert_eq!(m.propagation, opts[1], "{spec}");
            assert_eq!((m.source.as_str(), m.destination.as_str()), ("/a", "/b"));
            assert!(m.create_source && m.kind == MountType::Bind);
        }
    }

    #[test]
    fn bad_binds_name_the_field() {
        for spec in [
            "vol:/b:bogus",
            "vol:b",
            "/a:b",
            "/a:/b:bogus",
            "/a",
            "/a:/b:ro:x",
            "",
        ] {
            let e = parse_bind(spec, "HostConfig.Binds[3]").unwrap_err();
            assert_eq!(e.status_code(), 400, "{spec}");
            assert!(e.to_string().contains("HostConfig.Binds[3]"), "{spec}: {e}");
        }
        let e = resolve(&host(json!({"Binds": ["/a:/b", "/a"]})), &none).unwrap_err();
        assert!(e.to_string().contains("HostConfig.Binds[1]"), "{e}");
    }

    #[test]
    fn named_volumes() {
        let m = parse_bind("vol:/b:ro,nocopy", "f").unwrap();
        assert_eq!(
            (m.kind, m.name.as_str(), m.driver.as_str()),
            (MountType::Volume, "vol", "local")
        );
        assert_eq!((m.rw, m.nocopy, m.source.as_str()), (false, true, ""));
        assert_eq!(m.options, ["rbind", "ro"]);
        let m = parse_bind("vol:/b", "f").unwrap();
        assert!(m.rw && !m.nocopy && m.mode.is_empty());
        let h = host(
            json!({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/x",
            "VolumeOptions": {"NoCopy": true}}]}),
        );
        let ms = resolve(&h, &none).unwrap();
        assert_eq!(
            (ms[0].kind, ms[0].name.as_str(), ms[0].nocopy),
            (MountType::Volume, "v", true)
        );
    }

    #[test]
    fn tmpfs_options() {
        let m = parse_tmpfs("/t", "size=1m,mode=1777", "f").unwrap();
        assert_eq!(
            m.options,
            ["noexec", "nosuid", "nodev", "size=1m", "mode=1777"]
        );
        assert_eq!(
            (m.kind, m.rw, m.source.as_str()),
            (MountType::Tmpfs, true, "")
        );
        let m = parse_tmpfs("/t", "exec,suid,dev,uid=1", "f").unwrap();
        assert_eq!(m.options, ["uid=1"]);
        assert_eq!(
            parse_tmpfs("/t", "", "f").unwrap().options,
            ["noexec", "nosuid", "nodev"]
        );
        assert!(parse_tmpfs("t", "", "HostConfig.Tmpfs")
            .unwrap_err()
            .to_string()
            .contains("HostConfig.Tmpfs"));
    }

    #[test]
    fn mounts() {
        let h = host(json!({"Mounts": [
            {"Type": "bind", "Source": "/s", "Target": "/m", "ReadOnly": true},
            {"Type": "bind", "Source": "/s", "Target": "/p", "BindOptions": {"Propagation": "rslave"}},
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}},
            {"Type": "tmpfs", "Target": "/r", "ReadOnly": true},
        ]}));
        let ms = resolve(&h, &none).unwrap();
        assert_eq!(ms[0].options, ["rbind", "rprivate", "ro"]);
        assert!(!ms[0].rw && !ms[0].create_source);
        assert_eq!((ms[1].propagation.as_str(), ms[1].rw), ("rslave", true));
        assert_eq!(
            ms[2].options,
            ["noexec", "nosuid", "nodev", "size=1048576", "mode=1777"]
        );
        assert_eq!(ms[3].options, ["noexec", "nosuid", "nodev", "ro"]);
        assert!(!ms[3].rw);
        for (m, what) in [
            (
                json!({"Type": "volume", "Source": "/v", "Target": "/x"}),
                "invalid volume name",
            ),
            (
                json!({"Type": "npipe", "Source": "v", "Target": "/x"}),
                "not supported",
            ),
            (
                json!({"Type": "weird", "Target": "/x"}),
                "unknown mount type",
            ),
            (
                json!({"Type": "bind", "Source": "rel", "Target": "/x"}),
                "absolute",
            ),
            (json!({"Type": "tmpfs", "Target": "x"}), "absolute"),
            (
                json!({"Type": "bind", "Source": "/s", "Target": "/x", "BindOptions": {"Propagation": "up"}}),
                "propagation",
            ),
        ] {
            let e = resolve(
                &host(json!({"Mounts": [{"Type": "tmpfs", "Target": "/ok"}, m]})),
                &none,
            )
            .unwrap_err();
            assert_eq!(e.status_code(), 400);
            let msg = e.to_string();
            assert!(
                msg.contains(what) && msg.contains("HostConfig.Mounts[1]"),
                "{msg}"
            );
        }
        let e = decode::<HostConfig>("HostConfig", &json!({"Mounts": [{"ReadOnly": "yes"}]}))
            .unwrap_err();
        assert!(
            e.to_string().contains("HostConfig.Mounts[0].ReadOnly"),
            "{e}"
        );
    }

    #[test]
    fn order_and_volumes_from() {
        let h = host(json!({"Binds": ["/a:/a"], "Tmpfs": {"/t": ""},
            "Mounts": [{"Type": "bind", "Source": "/c", "Target": "/c"}],
            "VolumesFrom": ["other:ro", "third"]}));
        let from = |n: &str| -> Result<Vec<MountPoint>> {
            match n {
                "other" => Ok(vec![
                    parse_bind("/x:/x", "f")?,
                    parse_bind("/y:/a", "f")?,
                    parse_tmpfs("/tt", "", "f")?,
                ]),
                "third" => Ok(vec![parse_bind("/z:/z:ro", "f")?]),
                o => Err(Error::NotFound(format!("No such container: {o}"))),
            }
        };
        let ms = resolve(&h, &from).unwrap();
        let dsts: Vec<&str> = ms.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dsts, ["/x", "/z", "/a", "/t", "/c"]);
        assert_eq!((ms[0].rw, ms[0].mode.as_str()), (false, "ro"));
        assert_eq!(ms[0].options, ["rbind", "rprivate", "ro"]);
        assert_eq!((ms[1].rw, ms[1].mode.as_str()), (false, "ro"));
        let e = resolve(&host(json!({"VolumesFrom": ["ghost"]})), &from).unwrap_err();
        assert_eq!(e.status_code(), 404);
        let e = resolve(&host(json!({"VolumesFrom": ["other:xx"]})), &from).unwrap_err();
        assert!(e.to_string().contains("HostConfig.VolumesFrom[0]"), "{e}");
    }

    #[test]
    fn api_view_and_persisted_form() {
        let m = parse_bind("/a:/b:ro", "f").unwrap();
        assert_eq!(
            m.api(),
            json!({"Type": "bind", "Source": "/a", "Destination": "/b", "Mode": "ro", "RW": false, "Propagation": "rprivate"})
        );
        let back: MountPoint = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let o = m.oci();
        assert_eq!(o.typ().as_deref(), Some("bind"));
        let t = parse_tmpfs("/t", "", "f").unwrap().oci();
        assert_eq!(t.source().as_deref(), Some(Path::new("tmpfs")));
    }

    #[test]
    fn at_load_a_bad_entry_is_left_out() {
        let h = host(json!({"Binds": ["/a:/a", "/b:/b"], "VolumesFrom": ["x"],
            "Mounts": [{"Type": "bind", "Source": "/s", "Target": "/m", "BindOptions": {"Propagation": "up"}},
                {"Type": "tmpfs", "Target": "/t"}]}));
        let dsts: Vec<String> = resolve_at_load(&h, "id")
            .into_iter()
            .map(|m| m.destination)
            .collect();
        assert_eq!(dsts, ["/a", "/b", "/t"]);
    }

    #[test]
    fn sources_checked_for_mounts_only() {
        let ms = resolve(&host(json!({"Binds": ["/definitely/not/here:/x"]})), &none).unwrap();
        check_sources(&ms).unwrap();
        let ms = resolve(
            &host(json!({"Mounts": [{"Type": "bind", "Source": "/definitely/not/here", "Target": "/x"}]})),
            &none,
        )
        .unwrap();
        assert!(check_sources(&ms)
            .unwrap_err()
            .to_string()
            .contains("/definitely/not/here"));
        let ms = resolve(
            &host(
                json!({"Mounts": [{"Type": "bind", "Source": "/definitely/not/here", "Target": "/x",
                "BindOptions": {"CreateMountpoint": true}}]}),
            ),
            &none,
        )
        .unwrap();
        check_sources(&ms).unwrap();
    }
}
