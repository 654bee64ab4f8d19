//! Named volumes (local driver): data outlives containers, a new volume is filled from the
//! image with owners and modes, a volume in use is not removed, prune, and a crash never
//! leaves a half volume visible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_engine::Error;
use common::*;
use serde_json::{json, Value};

fn names(env: &Env, filters: Value) -> Vec<String> {
    let v = env.engine.volume_list(&filters).unwrap();
    assert_eq!(v["Warnings"], json!([]));
    v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Name"].as_str().unwrap().to_string())
        .collect()
}

fn sh(cmd: &str) -> Value {
    json!(["sh", "-c", cmd])
}

#[test]
fn data_written_by_one_container_is_read_by_the_next() {
    let env = Env::new();
    let v = env
        .engine
        .volume_create(&json!({"Name": "v1", "Labels": {"a": "b"}}))
        .unwrap();
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], json!({"a": "b"}));
    let mp = v["Mountpoint"].as_str().unwrap().to_string();
    assert!(mp.ends_with("/volumes/v1/_data"), "{mp}");
    // Idempotent, as dockerd: the existing volume.
    let again = env.engine.volume_create(&json!({"Name": "v1"})).unwrap();
    assert_eq!(again["CreatedAt"], v["CreatedAt"]);

    let id = env.create(json!({"Cmd": sh("echo hi > /d/f"),
        "HostConfig": {"Binds": ["v1:/d"]}}));
    let c = env.engine.container_inspect(&id, false).unwrap();
    assert_eq!(
        c["Mounts"],
        json!([{"Type": "volume", "Name": "v1", "Source": mp, "Destination": "/d",
            "Driver": "local", "Mode": "", "RW": true, "Propagation": ""}])
    );
    assert_eq!(env.start_wait(&id), 0);
    env.engine.container_remove(&id, true, false).unwrap();
    // `--mount type=volume`, read-only; a volume it names that does not exist is made.
    let (code, out, err) = env.run(json!({"Cmd": sh("cat /d/f; touch /d/g || echo ro"),
        "HostConfig": {"Mounts": [{"Type": "volume", "Source": "v1", "Target": "/d", "ReadOnly": true}]}}));
    assert_eq!((code, out.as_str()), (0, "hi\nro\n"), "{err}");
    let (code, _, err) = env.run(json!({"Cmd": sh("true"),
        "HostConfig": {"Mounts": [{"Type": "volume", "Source": "made-by-run", "Target": "/x"}]}}));
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&env, Value::Null), ["made-by-run", "v1"]);
    // Bad names are a 400 naming the rule.
    let e = env
        .engine
        .volume_create(&json!({"Name": "-x"}))
        .unwrap_err();
    assert!(matches!(e, Error::BadParameter(_)), "{e}");
    let e = env
        .engine
        .container_create(
            None,
            &json!({"Image": "busybox", "HostConfig": {"Binds": ["a/b:/x"]}}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"), "{e}");
    // A generated name: 64 hex.
    let g = env.engine.volume_create(&json!({})).unwrap();
    let n = g["Name"].as_str().unwrap();
    assert!(
        n.len() == 64 && n.bytes().all(|c| c.is_ascii_hexdigit()),
        "{n}"
    );
}

/// An image with /data (1000:50, 0750), /data/f (1000:50, 0640), /data/l -> f.
fn import_with_data(env: &Env) {
    import_with_data_as(env, "withdata", &[]);
}

fn import_with_data_as(env: &Env, repo: &str, changes: &[String]) {
    let mut base = busybox_tar();
    base.truncate(base.len() - 1024);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(1000);
    h.set_gid(50);
    h.set_size(0);
    b.append_data(&mut h, "data", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o640);
    h.set_uid(1000);
    h.set_gid(50);
    h.set_size(4);
    b.append_data(&mut h, "data/f", &b"img\n"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "data/l", "f").unwrap();
    base.extend(b.into_inner().unwrap());
    let mut r: &[u8] = &base;
    env.engine
        .image_import(
            &mut r,
            Some(repo),
            Some("latest"),
            changes,
            None,
            None,
            &|_| {},
        )
        .unwrap();
}

#[test]
fn a_new_volume_is_filled_from_the_image_with_owners_and_modes() {
    let env = Env::new();
    import_with_data(&env);
    let probe = "stat -c '%u:%g %a' /data /data/f; readlink /data/l; cat /data/f";
    let (code, out, err) = env.run(json!({"Image": "withdata", "Cmd": sh(probe),
        "HostConfig": {"Binds": ["pre:/data"]}}));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1000:50 750\n1000:50 640\nf\nimg\n");
    // On the host: the volume holds the copy.
    let mp = env.engine.volume_inspect("pre").unwrap()["Mountpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(std::fs::read(format!("{mp}/f")).unwrap(), b"img\n");
    // An existing volume is not filled again (its content is kept).
    let (code, out, _) = env.run(json!({"Image": "withdata",
        "Cmd": sh("echo mine > /data/f; true"), "HostConfig": {"Binds": ["pre:/data"]}}));
    assert_eq!((code, out.as_str()), (0, ""));
    let (_, out, _) = env.run(json!({"Image": "withdata", "Cmd": sh("cat /data/f"),
        "HostConfig": {"Binds": ["pre:/data"]}}));
    assert_eq!(out, "mine\n");
    // nocopy: empty.
    let (code, out, err) = env.run(json!({"Image": "withdata", "Cmd": sh("ls -A /data"),
        "HostConfig": {"Mounts": [{"Type": "volume", "Source": "empty", "Target": "/data",
            "VolumeOptions": {"NoCopy": true}}]}}));
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn a_volume_in_use_is_not_removed() {
    let env = Env::new();
    env.engine.volume_create(&json!({"Name": "busy"})).unwrap();
    // Created, never started: in use all the same (as dockerd).
    let id = env.create(json!({"Cmd": sh("true"), "HostConfig": {"Binds": ["busy:/b"]}}));
    let e = env.engine.volume_remove("busy", false).unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert!(e.to_string().contains(&id), "{e}");
    let e = env.engine.volume_remove("busy", true).unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    let l = names(&env, json!({"dangling": ["false"]}));
    assert_eq!(l, ["busy"]);
    assert!(names(&env, json!({"dangling": ["true"]})).is_empty());
    env.engine.container_remove(&id, true, false).unwrap();
    env.engine.volume_remove("busy", false).unwrap();
    let e = env.engine.volume_remove("busy", false).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    let e = env.engine.volume_inspect("busy").unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    env.engine.volume_remove("busy", true).unwrap();
}

#[test]
fn prune_deletes_unused_anonymous_volumes_then_all_unused() {
    let env = Env::new();
    let anon = json!({"com.docker.volume.anonymous": ""});
    env.engine
        .volume_create(&json!({"Name": "anon1", "Labels": anon}))
        .unwrap();
    env.engine
        .volume_create(&json!({"Name": "named", "Labels": {"keep": "no"}}))
        .unwrap();
    env.engine.volume_create(&json!({"Name": "kept"})).unwrap();
    env.engine
        .volume_create(&json!({"Name": "anon-used", "Labels": anon}))
        .unwrap();
    let (code, _, _) = env.run(json!({"Cmd": sh("head -c 100000 /bin/busybox > /v/f"),
        "HostConfig": {"Binds": ["anon1:/v"]}}));
    assert_eq!(code, 0);
    let id = env.create(json!({"Cmd": sh("true"), "HostConfig": {"Binds": ["anon-used:/u"]}}));
    let df = env.engine.system_df(&[], false).unwrap();
    let usage = |n: &str| {
        df["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["Name"] == n)
            .unwrap()["UsageData"]
            .clone()
    };
    assert!(usage("anon1")["Size"].as_u64().unwrap() >= 100_000, "{df}");
    assert_eq!(usage("anon-used")["RefCount"], 1);
    assert_eq!(usage("kept")["RefCount"], 0);
    assert_eq!(names(&env, json!({"label": ["keep=no"]})), ["named"]);
    assert_eq!(
        names(&env, json!({"name": ["anon"]})),
        ["anon-used", "anon1"]
    );

    let p = env.engine.volume_prune(&Value::Null).unwrap();
    assert_eq!(p["VolumesDeleted"], json!(["anon1"]));
    assert!(p["SpaceReclaimed"].as_u64().unwrap() >= 100_000, "{p}");
    let p = env
        .engine
        .volume_prune(&json!({"all": ["true"], "label!": ["keep"]}))
        .unwrap();
    assert_eq!(p["VolumesDeleted"], json!(["kept"]));
    let p = env.engine.volume_prune(&json!({"all": ["1"]})).unwrap();
    assert_eq!(p["VolumesDeleted"], json!(["named"]));
    assert_eq!(names(&env, Value::Null), ["anon-used"]);
    let e = env.engine.volume_prune(&json!({"dangling": ["true"]}));
    assert!(matches!(e, Err(Error::BadParameter(_))));
    env.engine.container_remove(&id, true, false).unwrap();
}

#[test]
fn a_volume_made_without_a_name_is_anonymous_and_pruned() {
    // (As dockerd: docker-py's test_prune_volumes creates one and expects prune to take it.)
    let env = Env::new();
    let v = env.engine.volume_create(&json!({})).unwrap();
    assert_eq!(v["Labels"], json!({"com.docker.volume.anonymous": ""}));
    env.engine.volume_create(&json!({"Name": "named"})).unwrap();
    let p = env.engine.volume_prune(&Value::Null).unwrap();
    assert_eq!(p["VolumesDeleted"], json!([v["Name"]]));
}

#[test]
fn a_crash_leaves_no_half_volume_visible() {
    let mut env = Env::new();
    env.engine
        .volume_create(&json!({"Name": "whole", "Labels": {"x": "1"}}))
        .unwrap();
    let before = env.engine.volume_inspect("whole").unwrap();
    let dir = env.root.join("volumes");
    // A create that died before its rename, a remove that died after its rename, and a
    // directory with no metadata: none is a volume.
    std::fs::create_dir_all(dir.join(".tmp-0123/_data")).unwrap();
    std::fs::create_dir_all(dir.join(".tmp-rm-4567/_data")).unwrap();
    std::fs::write(
        dir.join(".tmp-rm-4567/volume.json"),
        br#"{"Name":"gone","CreatedAt":""}"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("nometa/_data")).unwrap();
    // A volume a container create made and was filling from the image when berthd died.
    std::fs::create_dir_all(dir.join("half/_data")).unwrap();
    std::fs::write(dir.join("half/_data/part"), b"x").unwrap();
    std::fs::write(
        dir.join("half/volume.json"),
        br#"{"Name":"half","CreatedAt":""}"#,
    )
    .unwrap();
    std::fs::write(dir.join("half/filling"), b"").unwrap();
    assert_eq!(names(&env, Value::Null), ["whole"]);
    assert!(env.engine.volume_inspect("half").is_err());
    assert!(env.engine.volume_inspect("nometa").is_err());
    env.reopen();
    assert_eq!(names(&env, Value::Null), ["whole"]);
    assert_eq!(env.engine.volume_inspect("whole").unwrap(), before);
    assert!(!dir.join(".tmp-0123").exists() && !dir.join(".tmp-rm-4567").exists());
    assert!(
        !dir.join("half").exists(),
        "a half-filled volume is deleted at start-up"
    );
    // Its name is free again: a create makes and fills it anew.
    env.engine.volume_create(&json!({"Name": "half"})).unwrap();
    // The metadata is one file written whole.
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("whole/volume.json")).unwrap()).unwrap();
    assert_eq!(meta["Labels"], json!({"x": "1"}));
}

fn anon_names(env: &Env) -> Vec<String> {
    names(env, json!({"label": ["com.docker.volume.anonymous"]}))
}

#[test]
fn anonymous_volumes_for_config_and_image_volumes_go_with_rm_v_and_auto_remove() {
    let env = Env::new();
    import_with_data_as(&env, "withvol", &["VOLUME /data".to_string()]);
    // The image's VOLUME: an anonymous volume, filled from the image, no warning.
    let r = env
        .engine
        .container_create(
            None,
            &json!({"Image": "withvol", "Cmd": sh("cat /data/f; echo x > /data/new")}),
        )
        .unwrap();
    assert_eq!(r["Warnings"], json!([]), "{r}");
    let id = r["Id"].as_str().unwrap().to_string();
    let m = &env.engine.container_inspect(&id, false).unwrap()["Mounts"][0];
    let name = m["Name"].as_str().unwrap().to_string();
    assert_eq!(
        (m["Type"].as_str(), m["Destination"].as_str()),
        (Some("volume"), Some("/data"))
    );
    assert_eq!(name.len(), 64, "{m}");
    assert_eq!(env.start_wait(&id), 0);
    assert_eq!(env.logs(&id).0, "img\n");
    assert_eq!(anon_names(&env), [name.as_str()]);
    // rm without -v keeps it; rm -v deletes it (a named volume stays).
    env.engine.container_remove(&id, true, false).unwrap();
    assert_eq!(anon_names(&env), [name.as_str()]);
    let id = env.create(
        json!({"Image": "withvol", "Cmd": sh("true"), "Volumes": {"/more": {}},
        "HostConfig": {"Binds": ["keepme:/named"]}}),
    );
    assert_eq!(anon_names(&env).len(), 3);
    env.engine.container_remove(&id, true, true).unwrap();
    assert_eq!(anon_names(&env), [name.as_str()]);
    assert_eq!(names(&env, Value::Null), [name.as_str(), "keepme"]);
    // A bind on the path: no volume.
    let id = env.create(json!({"Image": "withvol", "Cmd": sh("true"),
        "HostConfig": {"Binds": ["/tmp:/data"]}}));
    assert_eq!(anon_names(&env).len(), 1);
    env.engine.container_remove(&id, true, true).unwrap();
    // AutoRemove (`run --rm`) deletes the anonymous volumes.
    let id = env
        .create(json!({"Image": "withvol", "Cmd": sh("true"), "HostConfig": {"AutoRemove": true}}));
    assert_eq!(anon_names(&env).len(), 2);
    let w = env
        .engine
        .container_wait(&id, berth_engine::WaitCondition::Removed)
        .unwrap();
    env.engine.container_start(&id).unwrap();
    w.wait();
    env.wait_for("the anonymous volume's removal", || {
        anon_names(&env).len() == 1
    });
    assert_eq!(anon_names(&env), [name.as_str()]);
    // A relative path is a 400.
    let e = env
        .engine
        .container_create(None, &json!({"Image": "withvol", "Volumes": {"rel": {}}}))
        .unwrap_err();
    assert!(matches!(e, Error::BadParameter(_)), "{e}");
}

#[test]
fn system_df_counts_disk_use_truthfully() {
    let env = Env::new();
    // 200 kB in a used volume, named twice by hard links; 100 kB in a volume no container uses.
    let (code, _, _) = env.run(
        json!({"Cmd": sh("head -c 204800 /dev/zero > /v/a && ln /v/a /v/b"),
        "HostConfig": {"Binds": ["linked:/v"]}}),
    );
    assert_eq!(code, 0);
    let id = env.create(json!({"Cmd": sh("true"), "HostConfig": {"Binds": ["linked:/v"]}}));
    let (code, _, _) = env.run(json!({"Cmd": sh("head -c 102400 /dev/zero > /w/a"),
        "HostConfig": {"Binds": ["free:/w"]}}));
    assert_eq!(code, 0);
    // (`run` removes its container: "free" is unused now.)
    let df = env.engine.system_df(&["volume".into()], true).unwrap();
    let size = |n: &str| {
        df["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["Name"] == n)
            .unwrap()["UsageData"]["Size"]
            .as_u64()
            .unwrap()
    };
    let (linked, free) = (size("linked"), size("free"));
    assert!(
        (204_800..204_800 + 16_384).contains(&linked),
        "hard links once: {df}"
    );
    assert!((102_400..102_400 + 16_384).contains(&free), "{df}");
    let u = &df["VolumeUsage"];
    assert_eq!(
        (u["TotalCount"].as_u64(), u["ActiveCount"].as_u64()),
        (Some(2), Some(1)),
        "{df}"
    );
    assert_eq!(u["TotalSize"].as_u64(), Some(linked + free));
    assert_eq!(u["Reclaimable"].as_u64(), Some(free), "unused volumes only");
    assert_eq!(u["Items"].as_array().map(Vec::len), Some(2));
    assert!(
        df["Images"].is_null() && df["ContainerUsage"].is_null(),
        "type=volume only"
    );
    // What prune --all then frees is what df called reclaimable.
    let p = env.engine.volume_prune(&json!({"all": ["true"]})).unwrap();
    assert_eq!(p["VolumesDeleted"], json!(["free"]));
    assert_eq!(p["SpaceReclaimed"].as_u64(), Some(free));
    let e = env.engine.system_df(&["nope".into()], false);
    assert!(matches!(e, Err(Error::BadParameter(_))));
    env.engine.container_remove(&id, true, false).unwrap();
    env.engine.volume_remove("linked", false).unwrap();
}
