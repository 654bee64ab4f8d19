//! Strict request bodies (root: an engine in a private root). Every field of the swagger's
//! HostConfig and ContainerConfig sent with a wrong type is a 400 naming it and makes no
//! container; out-of-range numbers and unknown enum values are 400s; what berth does not
//! honour yet is refused from one table; and the bodies real clients send (captured from
//! docker CLI 28, docker-py 7, compose 1.29: `fixtures/client-bodies.json`) still work.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::*;
use common::*;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn count(env: &Env) -> usize {
    env.engine
        .container_list(&ListOptions {
            all: true,
            ..Default::default()
        })
        .unwrap()
        .len()
}

/// A create body with `field` ("HostConfig.X" or a top-level "X") set to `v`.
fn body_with(field: &str, v: Value) -> Value {
    let mut b = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}});
    match field.split_once('.') {
        Some(("HostConfig", k)) => b["HostConfig"][k] = v,
        _ => b[field] = v,
    }
    b
}

/// The create is a 400 whose message contains each of `want`; no container is made.
fn refused(env: &Env, body: &Value, want: &[&str]) -> String {
    let before = count(env);
    let e = env.engine.container_create(None, body).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.status_code(), 400, "{body}: {msg}");
    for w in want {
        assert!(msg.contains(w), "{body}: {msg:?} lacks {w:?}");
    }
    assert_eq!(count(env), before, "{body}: a container was made");
    msg
}

#[test]
fn every_swagger_field_with_a_wrong_type_is_a_400_naming_it() {
    let env = Env::new();
    let fields = fixture("swagger-fields.json");
    let mut n = 0;
    for f in fields["fields"].as_array().unwrap() {
        let field = f["field"].as_str().unwrap();
        // (Config.Healthcheck is typed by the healthcheck work.)
        if field == "Healthcheck" {
            continue;
        }
        let wrong = match f["type"].as_str().unwrap() {
            "integer" => json!("10"),
            "boolean" => json!("true"),
            "string" => json!(1000),
            // (A number: Cmd, Entrypoint, Shell, CapAdd and CapDrop take one string too.)
            "array" => json!(1),
            "object" => json!("x"),
            t => panic!("{field}: type {t}"),
        };
        refused(&env, &body_with(field, wrong), &[field]);
        n += 1;
    }
    assert!(n > 90, "only {n} fields walked");
}

#[test]
fn wrong_types_ranges_and_enums_are_400s_with_their_messages() {
    let env = Env::new();
    let msg = refused(&env, &body_with("HostConfig.Memory", json!("64m")), &[]);
    assert!(
        msg.contains(r#"HostConfig.Memory: invalid type: string "64m", expected i64"#),
        "{msg}"
    );
    for (field, v) in [
        ("HostConfig.Privileged", json!("false")),
        ("HostConfig.SecurityOpt", json!("no-new-privileges")),
        ("User", json!(1000)),
        ("HostConfig.ReadonlyRootfs", json!("true")),
        ("HostConfig.PidsLimit", json!("10")),
        ("HostConfig.BlkioWeight", json!(70000)),
        ("HostConfig.Memory", json!(1.5)),
        ("HostConfig.Binds", json!("/tmp:/tmp")),
        ("Env", json!("A=1")),
        ("ExposedPorts", json!({"80/tcp": "yes"})),
        ("HostConfig.RestartPolicy", json!({"Name": 1})),
        (
            "HostConfig.Mounts",
            json!([{"Type": "bind", "ReadOnly": "yes"}]),
        ),
    ] {
        refused(&env, &body_with(field, v), &[field]);
    }
    for (field, v, want) in [
        (
            "HostConfig.BlkioWeight",
            json!(5),
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            "HostConfig.OomScoreAdj",
            json!(1001),
            "range for oom score adj is [-1000, 1000]",
        ),
        ("HostConfig.CpuPercent", json!(101), "CpuPercent"),
        (
            "HostConfig.Memory",
            json!(-1),
            "Minimum memory limit allowed is 6MB",
        ),
        ("HostConfig.CpuShares", json!(-1), "invalid CPU shares"),
        (
            "HostConfig.MemorySwappiness",
            json!(101),
            "valid memory swappiness range is 0-100",
        ),
        ("HostConfig.CpuPeriod", json!(10), "CPU cfs period"),
        (
            "HostConfig.ShmSize",
            json!(-1),
            "SHM size can not be less than 0",
        ),
        ("HostConfig.NanoCpus", json!(-1), "Range of CPUs"),
        (
            "HostConfig.CpusetCpus",
            json!("0-x"),
            "Invalid value 0-x for cpuset cpus",
        ),
        (
            "HostConfig.RestartPolicy",
            json!({"Name": "sometimes"}),
            "unknown policy 'sometimes'",
        ),
        (
            "HostConfig.IpcMode",
            json!("weird"),
            "invalid IPC mode: weird",
        ),
        (
            "HostConfig.PidMode",
            json!("weird"),
            "invalid PID mode: weird",
        ),
        (
            "HostConfig.UTSMode",
            json!("weird"),
            "invalid UTS mode: weird",
        ),
        (
            "HostConfig.CgroupnsMode",
            json!("weird"),
            "invalid cgroup namespace mode: weird",
        ),
        ("HostConfig.Isolation", json!("hyperv"), "invalid isolation"),
        (
            "HostConfig.Runtime",
            json!("kata"),
            "unknown or invalid runtime name: kata",
        ),
        (
            "HostConfig.LogConfig",
            json!({"Type": "nope"}),
            "logging driver \"nope\"",
        ),
        (
            "HostConfig.LogConfig",
            json!({"Type": "json-file", "Config": {"max-size": "lots"}}),
            "invalid max-size",
        ),
        (
            "HostConfig.LogConfig",
            json!({"Type": "json-file", "Config": {"nope": "1"}}),
            "unknown log opt 'nope'",
        ),
        (
            "HostConfig.Mounts",
            json!([{"Type": "weird", "Target": "/x"}]),
            "unknown mount type",
        ),
        (
            "HostConfig.Mounts",
            json!([{"Type": "bind", "Source": "/tmp", "Target": "/x", "BindOptions": {"Propagation": "x"}}]),
            "invalid propagation",
        ),
        ("HostConfig.Dns", json!(["one"]), "one is not an ip address"),
        (
            "HostConfig.ExtraHosts",
            json!(["h:999.1.1.1"]),
            "invalid IP address in add-host",
        ),
        (
            "ExposedPorts",
            json!({"eighty/tcp": {}}),
            "invalid port specification",
        ),
        ("WorkingDir", json!("rel"), "needs to be an absolute path"),
    ] {
        refused(&env, &body_with(field, v), &[want]);
    }
}

#[test]
fn what_berth_does_not_honour_yet_is_refused_by_name() {
    let env = Env::new();
    let hc = |k: &str, v: Value| body_with(&format!("HostConfig.{k}"), v);
    for (body, field) in [
        (hc("Links", json!(["a:b"])), "HostConfig.Links"),
        (
            body_with("MacAddress", json!("02:42:ac:11:00:02")),
            "Config.MacAddress",
        ),
        (
            body_with("Domainname", json!("example.com")),
            "Config.Domainname",
        ),
        (
            hc(
                "Mounts",
                json!([{"Type": "npipe", "Source": "v", "Target": "/v"}]),
            ),
            "HostConfig.Mounts of type \"npipe\"",
        ),
        (
            hc(
                "Mounts",
                json!([{"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"Subpath": "s"}}]),
            ),
            "HostConfig.Mounts[].VolumeOptions Subpath",
        ),
        (
            hc(
                "Mounts",
                json!([{"Type": "bind", "Source": "/tmp", "Target": "/v", "BindOptions": {"NonRecursive": true}}]),
            ),
            "NonRecursive",
        ),
        (
            hc("VolumeDriver", json!("local")),
            "HostConfig.VolumeDriver",
        ),
        (hc("IpcMode", json!("none")), "HostConfig.IpcMode \"none\""),
        (
            hc("IpcMode", json!("container:x")),
            "HostConfig.IpcMode \"container:x\"",
        ),
        (hc("PidMode", json!("container:x")), "HostConfig.PidMode"),
        (hc("UsernsMode", json!("private")), "HostConfig.UsernsMode"),
        (hc("CgroupnsMode", json!("host")), "HostConfig.CgroupnsMode"),
        (hc("Cgroup", json!("container:x")), "HostConfig.Cgroup"),
        (
            hc("CgroupParent", json!("/mine")),
            "HostConfig.CgroupParent",
        ),
        (
            hc(
                "BlkioWeightDevice",
                json!([{"Path": "/dev/sda", "Weight": 100}]),
            ),
            "HostConfig.BlkioWeightDevice",
        ),
        (
            hc(
                "BlkioDeviceReadBps",
                json!([{"Path": "/dev/sda", "Rate": 100}]),
            ),
            "HostConfig.BlkioDeviceReadBps",
        ),
        (
            hc("CpuRealtimeRuntime", json!(1000)),
            "HostConfig.CpuRealtimeRuntime",
        ),
        (
            hc("DeviceCgroupRules", json!(["c 1:3 rwm"])),
            "HostConfig.DeviceCgroupRules",
        ),
        (
            hc("DeviceRequests", json!([{"Count": -1}])),
            "HostConfig.DeviceRequests",
        ),
        (
            hc("MemorySwappiness", json!(10)),
            "HostConfig.MemorySwappiness",
        ),
        (
            hc("OomKillDisable", json!(true)),
            "HostConfig.OomKillDisable",
        ),
        (
            hc("KernelMemory", json!(67108864)),
            "HostConfig.KernelMemory",
        ),
        (hc("CpuCount", json!(2)), "HostConfig.CpuCount"),
        (
            hc("IOMaximumBandwidth", json!(1000)),
            "HostConfig.IOMaximumBandwidth",
        ),
        (
            hc("LogConfig", json!({"Type": "syslog"})),
            "HostConfig.LogConfig.Type \"syslog\"",
        ),
        (
            hc(
                "LogConfig",
                json!({"Type": "json-file", "Config": {"compress": "true"}}),
            ),
            "HostConfig.LogConfig.Config \"compress\"",
        ),
        (
            hc("SecurityOpt", json!(["apparmor=myprofile"])),
            "HostConfig.SecurityOpt",
        ),
        (
            json!({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"mynet": {"MacAddress": "02:42:ac:11:00:99"}}}}),
            "NetworkingConfig.EndpointsConfig[]",
        ),
        (
            json!({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"none": {"IPAMConfig": {"LinkLocalIPs": ["169.254.0.5"]}}}}}),
            "NetworkingConfig.EndpointsConfig[]",
        ),
    ] {
        let msg = refused(&env, &body, &[field]);
        assert!(msg.ends_with("is not supported by berth yet"), "{msg}");
    }
    // A network that does not exist: 404 naming it, nothing made.
    let before = count(&env);
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "HostConfig": {"NetworkMode": "mynet"}}),
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 404, "{e}");
    assert!(e.to_string().contains("network mynet not found"), "{e}");
    assert_eq!(count(&env), before);
    // The defaults clients send for "nothing asked" are taken.
    let id = env.create(
        json!({"Volumes": {"/data": {}}, "HostConfig": {"Binds": ["/tmp:/data"],
        "MemorySwappiness": -1, "OomKillDisable": false, "PortBindings": {"80/tcp": null},
        "IpcMode": "shareable", "UsernsMode": "host", "CgroupnsMode": "private", "Runtime": "runc",
        "SecurityOpt": ["apparmor=unconfined", "label=disable"], "Isolation": "default"},
        "NetworkingConfig": {"EndpointsConfig": {"none": {"Aliases": null, "IPAMConfig": null}}}}),
    );
    env.engine.container_remove(&id, true, false).unwrap();
}

#[test]
fn bandwidth_annotations_need_a_veth() {
    // This daemon has no bridge (--bridge none): a limit has nothing to shape.
    let env = Env::new();
    let e = env
        .engine
        .container_create(
            Some("bw"),
            &json!({"Image": "busybox", "HostConfig": {"Annotations": {
                "kubernetes.io/egress-bandwidth": "10M"}}}),
        )
        .unwrap_err();
    assert!(
        e.status_code() == 400
            && e.to_string().contains(
                "invalid annotation kubernetes.io/egress-bandwidth: bandwidth limits need a network"
            ),
        "{e}"
    );
    // Other annotations are kept (and handed to the runtime, as dockerd does).
    let id = env.create(json!({"HostConfig": {"Annotations": {"com.example.note": "kept"}}}));
    env.engine
        .container_update(
            &id,
            &json!({"Annotations": {"kubernetes.io/egress-bandwidth": ""}}),
        )
        .unwrap();
    let a = env.engine.container_inspect(&id, false).unwrap()["HostConfig"]["Annotations"].clone();
    assert_eq!(a, json!({"com.example.note": "kept"}));
    env.engine.container_remove(&id, true, false).unwrap();
}

#[test]
fn real_client_bodies_are_taken_and_inspect_shows_them() {
    let env = Env::new();
    let bodies = fixture("client-bodies.json");
    let mut ids = Vec::new();
    for c in bodies["create"].as_array().unwrap() {
        let r = env.engine.container_create(None, &c["body"]);
        let r = r.unwrap_or_else(|e| panic!("{}: {e}", c["client"]));
        ids.push(r["Id"].as_str().unwrap().to_string());
    }
    // (The CLI's `--memory 64m ... --pids-limit 10 --blkio-weight 300`.)
    let many = env.engine.container_inspect(&ids[1], false).unwrap();
    let h = &many["HostConfig"];
    assert_eq!(
        (
            &h["Memory"],
            &h["PidsLimit"],
            &h["BlkioWeight"],
            &h["OomScoreAdj"]
        ),
        (&json!(67108864), &json!(10), &json!(300), &json!(100))
    );
    assert_eq!(many["Config"]["ExposedPorts"], Value::Null);
    // (`docker create` sends PidsLimit 0: no limit, kept as none.)
    let plain = env.engine.container_inspect(&ids[0], false).unwrap();
    assert_eq!(plain["HostConfig"]["PidsLimit"], Value::Null);
    for u in bodies["update"].as_array().unwrap() {
        env.engine
            .container_update(&ids[0], &u["body"])
            .unwrap_or_else(|e| panic!("{}: {e}", u["client"]));
    }
    let plain = env.engine.container_inspect(&ids[0], false).unwrap();
    assert_eq!(plain["HostConfig"]["Memory"], json!(134217728));
    assert_eq!(
        plain["HostConfig"]["RestartPolicy"]["Name"],
        json!("always")
    );
    let commit = &bodies["commit"][0]["body"];
    env.engine
        .container_commit(
            &ids[0],
            &CommitOptions {
                repo: Some("strict-commit".into()),
                config: commit.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let e = env
        .engine
        .container_commit(
            &ids[0],
            &CommitOptions {
                config: json!({"Env": "X=1"}),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        e.status_code() == 400 && e.to_string().contains("invalid Env"),
        "{e}"
    );
    for id in ids {
        env.engine.container_remove(&id, true, false).unwrap();
    }
}

#[test]
fn exec_bodies_are_typed() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["sleep", "30"]}));
    env.engine.container_start(&id).unwrap();
    let bodies = fixture("client-bodies.json");
    for x in bodies["exec"].as_array().unwrap() {
        env.engine
            .exec_create(&id, &x["body"])
            .unwrap_or_else(|e| panic!("{}: {e}", x["client"]));
    }
    for (body, field) in [
        (json!({"Cmd": "ls"}), "invalid Cmd"),
        (
            json!({"Cmd": ["true"], "Privileged": "yes"}),
            "invalid Privileged",
        ),
        (json!({"Cmd": ["true"], "Env": [1]}), "invalid Env"),
        (
            json!({"Cmd": ["true"], "ConsoleSize": [1, 2, 3]}),
            "ConsoleSize",
        ),
    ] {
        let e = env.engine.exec_create(&id, &body).unwrap_err();
        assert!(
            e.status_code() == 400 && e.to_string().contains(field),
            "{body}: {e}"
        );
    }
    env.engine.container_remove(&id, true, false).unwrap();
}

#[test]
fn a_refused_update_changes_nothing() {
    let env = Env::new();
    let id = env.create(json!({"HostConfig": {"Memory": 67108864}}));
    let before = env.engine.container_inspect(&id, false).unwrap()["HostConfig"].clone();
    for (body, want) in [
        (json!({"Memory": "lots"}), "invalid Memory"),
        (Value::Null, "expected a JSON object"),
        (json!("garbage"), "expected a JSON object"),
        (
            json!({"Memory": 134217728, "Privileged": true}),
            "Privileged cannot be updated",
        ),
        (
            json!({"Memory": 134217728, "KernelMemory": 1}),
            "HostConfig.KernelMemory is not supported by berth yet",
        ),
        (
            json!({"Memory": 134217728, "CgroupParent": "/x"}),
            "HostConfig.CgroupParent",
        ),
        (json!({"BlkioWeight": 5}), "Range of blkio weight"),
        (json!({"CpuShares": -2}), "invalid CPU shares"),
        (
            json!({"RestartPolicy": {"Name": "sometimes"}}),
            "unknown policy",
        ),
        (
            json!({"Annotations": {"com.example.x": "1"}}),
            "annotation com.example.x cannot be updated",
        ),
        (
            json!({"Annotations": {"kubernetes.io/egress-bandwidth": "fast"}}),
            "invalid annotation kubernetes.io/egress-bandwidth",
        ),
        (
            json!({"Annotations": {"io.berth.ingress-burst": "1M"}}),
            "a burst needs kubernetes.io/ingress-bandwidth",
        ),
    ] {
        let e = env.engine.container_update(&id, &body).unwrap_err();
        assert!(
            e.status_code() == 400 && e.to_string().contains(want),
            "{body}: {e}"
        );
        let now = env.engine.container_inspect(&id, false).unwrap()["HostConfig"].clone();
        assert_eq!(now, before, "{body} changed the container");
    }
    env.engine.container_remove(&id, true, false).unwrap();
}
