//! Mounts, network modes, images and system endpoints (root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::*;
use common::*;
use serde_json::json;
use std::io::Write;

#[test]
fn binds_tmpfs_and_mounts() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from-host\n").unwrap();
    let hp = host.path().to_str().unwrap();
    let (code, out, err) = env.run(json!({
        "Cmd": ["sh", "-c", "cat /h/in.txt; echo w > /h/out.txt; touch /ro/x 2>/dev/null || echo ro-ok; grep -E ' /scratch | /m2 ' /proc/mounts | cut -d' ' -f2,3; cat /m/in.txt"],
        "HostConfig": {
            "Binds": [format!("{hp}:/h"), format!("{hp}:/ro:ro")],
            "Tmpfs": {"/scratch": "size=1m"},
            "Mounts": [{"Type": "bind", "Source": hp, "Target": "/m", "ReadOnly": true}, {"Type": "tmpfs", "Target": "/m2", "TmpfsOptions": {"SizeBytes": 1048576}}],
        }
    }));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "from-host\nro-ok\n/scratch tmpfs\n/m2 tmpfs\nfrom-host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "w\n"
    );
    let e = env.engine.container_create(None, &json!({"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/definitely/not/here", "Target": "/x"}]}})).unwrap_err();
    assert!(e.to_string().contains("/definitely/not/here"), "{e}");
    let e = env.engine.container_create(None, &json!({"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "volume", "Source": "/v", "Target": "/x"}]}})).unwrap_err();
    assert_eq!(e.status_code(), 400);
}

#[test]
fn network_modes_host_and_container() {
    let env = Env::new();
    let (_, out, _) = env.run(
        json!({"Cmd": ["readlink", "/proc/self/ns/net"], "HostConfig": {"NetworkMode": "host"}}),
    );
    assert_eq!(
        out.trim(),
        std::fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_str()
            .unwrap()
    );
    let id = env.create(json!({"Cmd": ["sh", "-c", "echo ready; while true; do sleep 0.1; done"]}));
    env.engine.container_start(&id).unwrap();
    env.wait_for("ready", || env.logs(&id).0.contains("ready"));
    let pid = env.engine.container_inspect(&id, false).unwrap()["State"]["Pid"]
        .as_i64()
        .unwrap();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let (code, out, err) = env.run(json!({"Cmd": ["readlink", "/proc/self/ns/net"], "HostConfig": {"NetworkMode": format!("container:{}", &id[..12])}}));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), theirs.to_str().unwrap());
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "HostConfig": {"NetworkMode": "container:ghost"}}),
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 404);
}

#[test]
fn detach_keys_end_the_session() {
    let env = Env::new();
    let id = env.create(json!({"Cmd": ["cat"], "OpenStdin": true, "Tty": true}));
    env.engine.container_start(&id).unwrap();
    let a = env
        .engine
        .container_attach(
            &id,
            &AttachOptions {
                stdin: true,
                stdout: true,
                stream: true,
                detach_keys: Some("ctrl-x".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let (o, i) = a.split();
    let r = std::thread::spawn(move || read_all(o));
    let mut i = i.unwrap();
    i.write_all(b"typed\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = i.write_all(&[0x18]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionAborted);
    let out = String::from_utf8_lossy(&r.join().unwrap()).into_owned();
    assert!(out.contains("typed"), "{out:?}");
    // The container keeps running after the detach.
    assert_eq!(env.status(&id), "running");
}

#[test]
fn images_and_system() {
    let env = Env::new();
    let l = env
        .engine
        .image_list(false, &serde_json::Value::Null)
        .unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["RepoTags"], json!(["busybox:latest"]));
    let img_id = l[0]["Id"].as_str().unwrap().to_string();
    env.engine
        .image_tag("busybox", "example.com/bb", Some("v1"))
        .unwrap();
    let i = env.engine.image_inspect("example.com/bb:v1").unwrap();
    assert_eq!(i["Id"], img_id.as_str());
    assert_eq!(i["Config"]["Cmd"], json!(["sh"]));
    assert!(!env
        .engine
        .image_history("busybox")
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        env.engine
            .image_list(false, &json!({"reference": ["busybox"]}))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.engine.image_inspect("nope").unwrap_err().to_string(),
        "No such image: nope:latest"
    );
    // in use -> 409 unless forced
    let id = env.create(json!({"Cmd": ["true"]}));
    let e = env.engine.image_remove(&img_id, false, false).unwrap_err();
    assert_eq!(e.status_code(), 409, "{e}");
    let r = env
        .engine
        .image_remove("example.com/bb:v1", false, false)
        .unwrap();
    assert_eq!(r[0]["Untagged"], "example.com/bb:v1");
    // save -> load into a second engine
    let mut tarb = Vec::new();
    env.engine
        .image_save(&["busybox".to_string()], &mut tarb)
        .unwrap();
    let env2 = Env::new();
    env2.engine.image_remove("busybox", true, false).unwrap();
    let msgs = std::sync::Mutex::new(Vec::new());
    env2.engine
        .image_load(&mut &tarb[..], false, &|v| msgs.lock().unwrap().push(v))
        .unwrap();
    assert!(
        msgs.lock()
            .unwrap()
            .iter()
            .any(|m| m["stream"] == "Loaded image: busybox:latest\n"),
        "{:?}",
        msgs.lock().unwrap()
    );
    let (code, out, _) = env2.run(json!({"Cmd": ["echo", "loaded"]}));
    assert_eq!((code, out.as_str()), (0, "loaded\n"));
    // system
    let info = env.engine.system_info().unwrap();
    assert_eq!(info["Containers"], 1);
    assert_eq!(info["Images"], 1);
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    let df = env.engine.system_df(&[], false).unwrap();
    assert_eq!(df["Containers"].as_array().unwrap().len(), 1);
    assert_eq!(df["Images"].as_array().unwrap().len(), 1);
    assert!(env.engine.system_version()["ApiVersion"].is_string());
    env.engine.container_remove(&id, false, false).unwrap();
    let p = env
        .engine
        .image_prune(&json!({"dangling": ["false"]}))
        .unwrap();
    assert!(
        p["ImagesDeleted"].as_array().is_some_and(|a| !a.is_empty()),
        "{p}"
    );
    assert!(env
        .engine
        .image_list(false, &serde_json::Value::Null)
        .unwrap()
        .is_empty());
}

#[test]
fn typed_model_volumes_from_and_field_errors() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let hp = host.path().to_str().unwrap();
    let a = env.create(
        json!({"Cmd": ["true"], "HostConfig": {"Binds": [format!("{hp}:/data")],
        "Tmpfs": {"/t": ""}}, "Unknown": {"kept": [1, null]}}),
    );
    let b = env.create(
        json!({"Cmd": ["true"], "HostConfig": {"VolumesFrom": [format!("{}:ro", &a[..12])],
        "Binds": [format!("{hp}:/own")]}}),
    );
    let ins = env.engine.container_inspect(&b, false).unwrap();
    assert_eq!(
        ins["Mounts"],
        json!([{"Type": "bind", "Source": hp, "Destination": "/data", "Mode": "ro", "RW": false, "Propagation": "rprivate"},
            {"Type": "bind", "Source": hp, "Destination": "/own", "Mode": "", "RW": true, "Propagation": "rprivate"}])
    );
    let ins = env.engine.container_inspect(&a, false).unwrap();
    assert_eq!(ins["Config"]["Unknown"], json!({"kept": [1, null]}));
    assert_eq!(ins["Mounts"].as_array().unwrap().len(), 2);
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "HostConfig": {"VolumesFrom": ["ghost"]}}),
        )
        .unwrap_err();
    assert_eq!(e.status_code(), 404);
    for (body, field) in [
        (
            json!({"Image": "busybox", "HostConfig": {"Memory": "64m"}}),
            "HostConfig.Memory",
        ),
        (json!({"Image": "busybox", "Tty": "yes"}), "Tty"),
        (
            json!({"Image": "busybox", "HostConfig": {"Binds": ["/a:b"]}}),
            "HostConfig.Binds[0]",
        ),
    ] {
        let e = env.engine.container_create(None, &body).unwrap_err();
        assert_eq!(e.status_code(), 400, "{body}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let e = env
        .engine
        .container_update(&a, &json!({"Memory": "1g"}))
        .unwrap_err();
    assert!(
        e.status_code() == 400 && e.to_string().contains("Memory"),
        "{e}"
    );
}
