//! The OCI spec berthd writes for a set of representative containers, compared with fixtures
//! captured from the JSON-literal builder this one replaced (`tests/fixtures/spec/*.json`).
//! `BERTH_SPEC_FIXTURES=write` writes them anew. Host-dependent parts are normalised: the
//! paths of the temporary rootfs/etc/host directories, the host's device list (privileged),
//! the default RLIMIT_NOFILE (the host's hard limit) and the default seccomp profile.
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn cases(host_dir: &str) -> Vec<(&'static str, Value, Value)> {
    let cfg = |extra: Value| {
        let mut c = json!({"Image": "busybox", "Cmd": ["sh", "-c", "true"], "Env": ["PATH=/usr/bin:/bin"],
            "Hostname": "abcdef012345", "Tty": false, "User": "", "WorkingDir": "", "Entrypoint": null});
        if let (Some(c), Value::Object(e)) = (c.as_object_mut(), extra) {
            c.extend(e);
        }
        c
    };
    let h = host_dir;
    vec![
        ("plain", cfg(json!({})), json!({"NetworkMode": "none"})),
        (
            "docker_cli_defaults",
            cfg(json!({"AttachStdout": true, "Labels": {}, "Volumes": null, "OnBuild": null})),
            json!({"Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
                "NetworkMode": "none", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                "AutoRemove": true, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [40, 120],
                "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [],
                "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "", "Links": null, "OomScoreAdj": 0,
                "PidMode": "", "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
                "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
                "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
                "BlkioWeightDevice": [], "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "", "CpusetMems": "",
                "Devices": [], "DeviceCgroupRules": null, "DeviceRequests": null, "MemoryReservation": 0,
                "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": null, "PidsLimit": null,
                "Ulimits": [], "Mounts": null, "MaskedPaths": null, "ReadonlyPaths": null, "Init": null}),
        ),
        (
            "binds",
            cfg(json!({})),
            json!({"Binds": [format!("{h}/a:/a"), format!("{h}/b:/b:ro"), format!("{h}/c:/c:rshared,rw"),
                format!("{h}/d:/d:z,ro,rslave"), format!("{h}/missing/dir:/e:nocopy")]}),
        ),
        (
            "mounts_and_tmpfs",
            cfg(json!({})),
            json!({"Binds": [format!("{h}/a:/h")],
                "Tmpfs": {"/scratch": "size=1m", "/x": "", "/e": "exec,suid,dev,mode=1777"},
                "Mounts": [{"Type": "bind", "Source": h, "Target": "/m", "ReadOnly": true},
                    {"Type": "bind", "Source": h, "Target": "/p", "BindOptions": {"Propagation": "rslave"}},
                    {"Type": "tmpfs", "Target": "/m2", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}},
                    {"Type": "tmpfs", "Target": "/m3", "ReadOnly": true}]}),
        ),
        (
            "limits",
            cfg(json!({})),
            json!({"Memory": 67108864, "MemorySwap": 134217728, "MemoryReservation": 33554432,
                "NanoCpus": 1500000000, "CpuShares": 512, "PidsLimit": 100, "CpusetCpus": "0",
                "CpusetMems": "0", "BlkioWeight": 300, "ShmSize": 134217728, "OomScoreAdj": 100,
                "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}, {"Name": "core", "Soft": 0, "Hard": 0}]}),
        ),
        (
            "limits_swap_default_and_quota",
            cfg(json!({})),
            json!({"Memory": 67108864, "CpuQuota": 50000, "CpuPeriod": 100000, "PidsLimit": -1}),
        ),
        (
            "limits_unlimited_swap",
            cfg(json!({})),
            json!({"Memory": 67108864, "MemorySwap": -1, "PidsLimit": 0}),
        ),
        (
            "security",
            cfg(
                json!({"User": "nobody", "WorkingDir": "/work/dir", "Tty": true,
                "Env": ["PATH=/usr/bin", "HOME=/h", "TERM=dumb"], "Entrypoint": ["/bin/sh"]}),
            ),
            json!({"CapAdd": ["NET_ADMIN", "cap_sys_time"], "CapDrop": ["CHOWN", "MKNOD"],
                "SecurityOpt": ["no-new-privileges", "label=disable", "apparmor=unconfined"],
                "ReadonlyRootfs": true, "Sysctls": {"net.ipv4.ip_forward": "1", "kernel.msgmax": "65536"},
                "GroupAdd": ["nogroup", "1234"], "Init": true}),
        ),
        (
            "caps_drop_all_unconfined",
            cfg(json!({"User": "1000:1000"})),
            json!({"CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"],
                "SecurityOpt": ["seccomp=unconfined", "no-new-privileges=true"]}),
        ),
        (
            "custom_seccomp",
            cfg(json!({})),
            json!({"SecurityOpt": [r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#]}),
        ),
        (
            "namespaces_host",
            cfg(json!({"Env": null})),
            json!({"NetworkMode": "host", "PidMode": "host", "IpcMode": "host", "UTSMode": "host"}),
        ),
        (
            "devices",
            cfg(json!({})),
            json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"},
                {"PathOnHost": "/dev/zero", "PathInContainer": "", "CgroupPermissions": ""}]}),
        ),
        (
            "privileged",
            cfg(json!({"Cmd": "true"})),
            json!({"Privileged": true, "CapAdd": ["ALL"]}),
        ),
    ]
}

struct Dirs {
    _tmp: tempfile::TempDir,
    rootfs: PathBuf,
    etc: PathBuf,
    host: PathBuf,
    init: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:nobody\nstaff:x:50:nobody\n",
    )
    .unwrap();
    let host = tmp.path().join("host");
    for d in ["a", "b", "c", "d"] {
        std::fs::create_dir_all(host.join(d)).unwrap();
    }
    let etc = tmp.path().join("etc");
    let init = tmp.path().join("docker-init");
    Dirs {
        rootfs,
        etc,
        host,
        init,
        _tmp: tmp,
    }
}

/// Replace what depends on the host or the temporary directories.
fn normalise(spec: &mut Value, d: &Dirs) {
    let mut text = spec.to_string();
    for (p, n) in [
        (&d.rootfs, "<ROOTFS>"),
        (&d.etc, "<ETC>"),
        (&d.host, "<HOST>"),
        (&d.init, "<INIT>"),
    ] {
        text = text.replace(p.to_str().unwrap(), n);
    }
    *spec = serde_json::from_str(&text).unwrap();
    let caps: Vec<String> = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    if let Some(sc) = spec["linux"].get_mut("seccomp") {
        let def = berth_seccomp::docker_to_oci(crate::spec::DEFAULT_SECCOMP, &caps, "amd64")
            .map(|s| serde_json::to_value(s).unwrap());
        if def.ok().as_ref() == Some(sc) {
            *sc = json!("<default profile for the capabilities>");
        }
    }
    if spec["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| a.len())
        == Some(crate::spec::available_caps().len())
        && spec["linux"].get("maskedPaths").is_none()
    {
        for k in ["bounding", "effective", "permitted"] {
            spec["process"]["capabilities"][k] = json!("<all available>");
        }
    }
    if spec["linux"].get("maskedPaths").is_none() {
        if let Some(devs) = spec["linux"].get_mut("devices") {
            *devs = json!("<host devices>");
        }
    }
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    let nofile = r.rlim_max.min(1_048_576);
    if let Some(Value::Array(rl)) = spec["process"].get_mut("rlimits") {
        for x in rl {
            if x["type"] == "RLIMIT_NOFILE"
                && x["hard"] == json!(nofile)
                && x["soft"] == json!(nofile)
            {
                x["hard"] = json!("<default>");
                x["soft"] = json!("<default>");
            }
        }
    }
}

/// oci-spec keeps capabilities in sets: their order in config.json is not kept (nor needed).
fn sort_caps(spec: &mut Value) {
    for k in ["bounding", "effective", "permitted"] {
        if let Some(Value::Array(a)) = spec["process"]["capabilities"].get_mut(k) {
            a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
        }
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec")
}

#[test]
fn spec_matches_fixtures() {
    let write = std::env::var("BERTH_SPEC_FIXTURES").as_deref() == Ok("write");
    let mut failed = Vec::new();
    for (name, config, host) in cases("<HOST>") {
        let d = dirs();
        let text = serde_json::to_string(&(&config, &host))
            .unwrap()
            .replace("<HOST>", d.host.to_str().unwrap());
        let (config, host): (Value, Value) = serde_json::from_str(&text).unwrap();
        let mut spec = build(&d, &config, &host);
        normalise(&mut spec, &d);
        let path = fixture_dir().join(format!("{name}.json"));
        if write {
            let f = json!({"config": cases("<HOST>").into_iter().find(|c| c.0 == name).map(|c| c.1),
                "host": cases("<HOST>").into_iter().find(|c| c.0 == name).map(|c| c.2), "spec": spec});
            std::fs::write(&path, serde_json::to_string_pretty(&f).unwrap() + "\n").unwrap();
            continue;
        }
        let mut want: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        sort_caps(&mut want["spec"]);
        sort_caps(&mut spec);
        if want["spec"] != spec {
            failed.push(format!("{name}:\n want {}\n got  {}", want["spec"], spec));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn build(d: &Dirs, config: &Value, host: &Value) -> Value {
    serde_json::to_value(build_spec(d, config, host)).unwrap()
}

fn build_spec(d: &Dirs, config: &Value, host: &Value) -> oci_spec::runtime::Spec {
    let config: crate::model::Config = crate::model::decode("", config).unwrap();
    let host: crate::model::HostConfig = crate::model::decode("HostConfig", host).unwrap();
    let mounts = crate::model::resolve(&host, &|_| Ok(vec![])).unwrap();
    crate::spec::build(&crate::spec::SpecInput {
        id: "0123456789abcdef",
        config: &config,
        host: &host,
        mounts: &mounts,
        rootfs: &d.rootfs,
        etc_dir: &d.etc,
        init_path: Some(d.init.clone()),
        join_net: Some("/proc/1/ns/net".into()),
        hostname: "abcdef012345".into(),
        truthful_proc: false,
    })
    .unwrap()
}

/// Build + serialize time of a docker-CLI-like spec (the seccomp conversion cached, as for
/// every container but a daemon's first): `cargo test -p berth-engine --lib spec_timing --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn spec_timing() {
    let d = dirs();
    let (_, config, host) = cases("<HOST>")
        .into_iter()
        .find(|c| c.0 == "docker_cli_defaults")
        .unwrap();
    let n = 2000;
    let mut bytes = 0;
    for round in 0..2 {
        let t = std::time::Instant::now();
        for _ in 0..n {
            let spec = build_spec(&d, &config, &host);
            bytes += serde_json::to_vec(&spec).unwrap().len();
        }
        let per = t.elapsed() / n;
        if round == 1 {
            println!(
                "spec build+serialize: {per:?} per spec ({} bytes)",
                bytes / (2 * n as usize)
            );
        }
    }
}

/// Decoding a docker-CLI create body into the typed Config and HostConfig, against the
/// deep copies of the body the untyped create made: `cargo test -p berth-engine --lib
/// decode_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn decode_timing() {
    let (_, config, host) = cases("/h")
        .into_iter()
        .find(|c| c.0 == "docker_cli_defaults")
        .unwrap();
    let mut body = config;
    body["HostConfig"] = host;
    body["NetworkingConfig"] = json!({"EndpointsConfig": {}});
    let n = 20000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut c = body.clone();
        let h = c["HostConfig"].clone();
        c.as_object_mut().unwrap().remove("HostConfig");
        std::hint::black_box((c, h));
    }
    let copies = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let r: crate::model::CreateRequest = crate::model::decode("", &body).unwrap();
        std::hint::black_box(r);
    }
    let typed = t.elapsed() / n;
    println!("create body: untyped copies {copies:?}, typed decode {typed:?}");
}

/// Encoding a container record (typed) against the same record as a JSON value (what the
/// untyped record was): `cargo test -p berth-engine --lib record_timing -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn record_timing() {
    let (_, config, host) = cases("/h")
        .into_iter()
        .find(|c| c.0 == "docker_cli_defaults")
        .unwrap();
    let v = json!({"Id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "Name": "/n", "Created": "2025-01-01T00:00:00.000000000Z", "Path": "sh", "Args": ["-c", "true"],
        "Config": config, "HostConfig": host, "ImageId": "sha256:x",
        "State": {"Status": "created", "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": "",
            "FinishedAt": "", "OOMKilled": false, "MonitorPid": 0, "NetNs": ""},
        "RestartCount": 0, "HasBeenStarted": false, "ManuallyStopped": false, "LogPath": "/l", "Driver": "overlay"});
    let rec = crate::state::Record::load(&serde_json::to_vec(&v).unwrap()).unwrap();
    let n = 20000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_vec(&v).unwrap());
    }
    let untyped = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_vec(&rec).unwrap());
    }
    let typed = t.elapsed() / n;
    println!("record encode: as a JSON value {untyped:?}, typed {typed:?}");
}
