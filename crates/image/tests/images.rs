//! Image store end-to-end: load/save/import/export, overlay & copy snapshots, whiteouts
//! across layers, corruption, GC, interop with skopeo/umoci.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_image::progress::NoProgress;
use berth_image::snapshot::SnapshotterKind;
use berth_image::{Digest, Error};
use common::*;
use std::path::Path;

fn three_layers() -> Vec<Vec<u8>> {
    let base = {
        let td = tempfile::tempdir().unwrap();
        busybox_rootfs(td.path());
        for d in ["a", "o"] {
            std::fs::create_dir(td.path().join(d)).unwrap();
        }
        for f in ["a/1", "a/2", "o/x", "o/sub"] {
            std::fs::write(td.path().join(f), f).unwrap();
        }
        berth_image::layer::pack_dir(td.path(), berth_image::layer::PackMode::Plain, Vec::new())
            .unwrap()
    };
    let l2 = tar_of(&[
        E::Dir("a/", 0o755),
        E::File("a/.wh.1", b"", 0o644),
        E::Dir("o/", 0o755),
        E::File("o/y", b"y", 0o644),
        E::File("etc/.wh.group", b"", 0o644),
    ]);
    let l3 = tar_of(&[
        E::Dir("o/", 0o755),
        E::File("o/.wh..wh..opq", b"", 0o644),
        E::File("o/z", b"z", 0o644),
        E::File("a/3", b"3", 0o644),
    ]);
    vec![base, l2, l3]
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn check_view(kind: SnapshotterKind) {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("root"), Some(kind));
    let loaded = s
        .load(
            &docker_archive(&three_layers(), &["three:latest"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap();
    assert_eq!(loaded[0].tags, vec!["three:latest"]);
    s.prepare_snapshot("c1", Some("three")).unwrap();
    let target = td.path().join("mnt");
    std::fs::create_dir(&target).unwrap();
    s.mount("c1", &target).unwrap();
    assert_eq!(
        names(&target.join("a")),
        vec!["2", "3"],
        "a/1 whited out in layer 2, a/3 added in 3"
    );
    assert_eq!(
        names(&target.join("o")),
        vec!["z"],
        "opaque dir in layer 3 hides x, sub and y"
    );
    assert!(!target.join("etc/group").exists());
    assert!(target.join("etc/passwd").exists());
    assert_eq!(
        std::fs::read(target.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    // writes go to the container's layer only
    std::fs::write(target.join("a/new"), b"n").unwrap();
    std::fs::remove_file(target.join("a/2")).unwrap();
    s.unmount(&target).unwrap();
    assert!(!mounted(&target));
    // the image's layers are untouched: a second container sees the original view
    s.prepare_snapshot("c2", Some("three")).unwrap();
    s.mount("c2", &target).unwrap();
    assert_eq!(names(&target.join("a")), vec!["2", "3"]);
    s.unmount(&target).unwrap();
    for k in ["c1", "c2"] {
        s.remove_snapshot(k).unwrap();
    }
    assert!(
        names(&td.path().join("root/active")).is_empty(),
        "unmount+remove leaves nothing behind"
    );
}

#[test]
fn whiteouts_and_opaque_across_three_layers_overlay() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(td.path(), None);
    assert_eq!(
        s.snapshotter_kind(),
        SnapshotterKind::Overlay,
        "overlay should work on this host"
    );
    check_view(SnapshotterKind::Overlay);
}

#[test]
fn whiteouts_and_opaque_across_three_layers_copy() {
    check_view(SnapshotterKind::Copy);
}

#[test]
fn load_save_load_identical() {
    let td = tempfile::tempdir().unwrap();
    let a = svc(&td.path().join("a"), None);
    let l = a
        .load(
            &docker_archive(&three_layers(), &["three:v1", "other/three:v2"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap();
    let id = l[0].id.clone();
    let ia = a.inspect("three:v1").unwrap();
    assert_eq!(ia.id, id.to_string());
    assert_eq!(ia.repo_tags, vec!["three:v1", "other/three:v2"]);
    assert_eq!(ia.root_f_s.layers.len(), 3);
    assert!(ia.size > 1_000_000);
    assert_eq!(
        ia.config.as_ref().unwrap().cmd.as_deref(),
        Some(&["sh".to_string()][..])
    );
    let mut saved = Vec::new();
    a.save(&["three:v1", "other/three:v2"], &mut saved).unwrap();
    let b = svc(&td.path().join("b"), None);
    let l2 = b.load(&saved[..], &NoProgress).unwrap();
    assert_eq!(l2[0].id, id, "same image ID after save+load");
    let ib = b.inspect(&id.to_string()).unwrap();
    assert_eq!(ib.root_f_s.layers, ia.root_f_s.layers, "same diff_ids");
    let mut tags = ib.repo_tags.clone();
    tags.sort();
    assert_eq!(tags, vec!["other/three:v2", "three:v1"]);
    let mut saved2 = Vec::new();
    b.save(&["three:v1", "other/three:v2"], &mut saved2)
        .unwrap();
    assert_eq!(
        Digest::of(&saved),
        Digest::of(&saved2),
        "save is deterministic"
    );
    // saving by ID gives an untagged image
    let mut s3 = Vec::new();
    b.save(&[&id.to_string()], &mut s3).unwrap();
    let c = svc(&td.path().join("c"), None);
    let l3 = c.load(&s3[..], &NoProgress).unwrap();
    assert_eq!(l3[0].id, id);
    assert!(l3[0].tags.is_empty());
    // history
    let h = b.history("three:v1").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, id.to_string());
    assert_eq!(h[2].created_by, "layer 0");
    assert!(h[2].size > 1_000_000);
}

#[test]
fn corrupted_blob_rejected_nothing_visible() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(td.path(), None);
    // an OCI-layout tar whose layer blob does not match its name
    let layer = busybox_layer();
    let good = Digest::of(&layer);
    let mut bad = layer.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("blobs/sha256/{}", good.hex()), &bad);
    add("index.json", b"{\"schemaVersion\":2,\"manifests\":[]}");
    let t = b.into_inner().unwrap();
    let e = s.load(&t[..], &NoProgress).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains(good.hex()),
        "error names the blob: {e}"
    );
    assert!(s.content.list().unwrap().is_empty());
    assert!(
        names(&td.path().join("content/sha256")).is_empty(),
        "no temp file left"
    );
    assert!(s.list().unwrap().is_empty());

    // a docker-archive whose layer does not match the config's diff_id: no image, no snapshot
    let mut arch = docker_archive(std::slice::from_ref(&layer), &["bad:1"], &["sh"]);
    // flip a byte inside the layer content (after the first 512-byte headers)
    let pos = arch.windows(7).position(|w| w == b"busybox").unwrap() + 2000;
    arch[pos] ^= 0xff;
    let e = s.load(&arch[..], &NoProgress).unwrap_err();
    assert!(
        matches!(e, Error::DigestMismatch { .. }) || e.to_string().contains("corrupt"),
        "{e}"
    );
    assert!(matches!(s.resolve("bad:1"), Err(Error::ImageNotFound(_))));
    assert!(
        s.snapshots.list_committed().unwrap().is_empty(),
        "no half-unpacked snapshot visible"
    );
    assert!(names(&td.path().join("snapshots"))
        .iter()
        .all(|n| n == "empty" || n.len() == 64));
}

#[test]
fn import_with_changes_and_export() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), None);
    let layer = gzip(&busybox_layer());
    let changes: Vec<String> = [
        "CMD [\"/bin/sh\",\"-c\",\"echo hi\"]",
        "ENV A=1 B=\"two words\"",
        "ENTRYPOINT /bin/env",
        "WORKDIR /tmp",
        "USER 1000:1000",
        "EXPOSE 80 53/udp",
        "LABEL x=y",
        "VOLUME /data",
        "STOPSIGNAL SIGINT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rec = s
        .import(&layer[..], Some("imp:1"), &changes, Some("msg"), None)
        .unwrap();
    let i = s.inspect("imp:1").unwrap();
    assert_eq!(i.id, rec.id.to_string());
    let c = i.config.unwrap();
    assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
    assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/bin/env"]);
    assert_eq!(c.env.unwrap(), vec!["A=1", "B=two words"]);
    assert_eq!(c.working_dir.as_deref(), Some("/tmp"));
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert!(
        c.exposed_ports.as_ref().unwrap().contains_key("80/tcp")
            && c.exposed_ports.as_ref().unwrap().contains_key("53/udp")
    );
    assert_eq!(c.labels.unwrap()["x"], "y");
    assert!(c.volumes.unwrap().contains_key("/data"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(i.comment, "msg");
    assert!(s
        .import(&layer[..], None, &["FROBNICATE x".to_string()], None, None)
        .is_err());
    // export of a mounted container fs
    s.prepare_snapshot("c", Some("imp:1")).unwrap();
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    s.mount("c", &m).unwrap();
    std::fs::write(m.join("tmp/added"), b"added").unwrap();
    let mut out = Vec::new();
    s.export_fs(&m, &mut out).unwrap();
    s.unmount(&m).unwrap();
    let names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"bin/busybox".to_string()) && names.contains(&"tmp/added".to_string()),
        "{names:?}"
    );
    // commit the container as a new image
    let cfg = s.config_of(&rec).unwrap();
    let committed = s
        .commit(
            "c",
            Some("imp:1"),
            cfg,
            "manual change",
            Some("committed:1"),
        )
        .unwrap();
    assert_eq!(committed.layers.len(), 2);
    s.prepare_snapshot("c2", Some("committed:1")).unwrap();
    s.mount("c2", &m).unwrap();
    assert_eq!(std::fs::read(m.join("tmp/added")).unwrap(), b"added");
    s.unmount(&m).unwrap();
}

#[test]
fn long_lowerdir_chain_mounts() {
    let td = tempfile::tempdir().unwrap();
    let root = td
        .path()
        .join("a-rather-long-root-directory-name-to-make-lowerdir-paths-longer");
    let s = svc(&root, Some(SnapshotterKind::Overlay));
    let mut layers = vec![busybox_layer()];
    for i in 0..70 {
        let name = format!("f{i}");
        layers.push(tar_of(&[E::File(&name, name.as_bytes(), 0o644)]));
    }
    s.load(
        &docker_archive(&layers, &["long:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    s.prepare_snapshot("c", Some("long:1")).unwrap();
    if let berth_image::snapshot::MountSpec::Overlay(o) = s.snapshots.mounts("c").unwrap() {
        assert!(
            o.options().len() > 4096,
            "test must exceed one page ({} bytes)",
            o.options().len()
        );
    }
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    s.mount("c", &m).unwrap();
    assert_eq!(std::fs::read(m.join("f0")).unwrap(), b"f0");
    assert_eq!(std::fs::read(m.join("f69")).unwrap(), b"f69");
    assert!(m.join("bin/busybox").exists());
    s.unmount(&m).unwrap();
}

#[test]
fn layers_shared_between_images_unpacked_once() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(td.path(), None);
    let base = busybox_layer();
    let x = tar_of(&[E::File("x", b"x", 0o644)]);
    let y = tar_of(&[E::File("y", b"y", 0o644)]);
    let events = std::sync::Mutex::new(Vec::new());
    let sink = |p: berth_image::Progress| events.lock().unwrap().push(p);
    s.load(
        &docker_archive(&[base.clone(), x], &["ix:1"], &["sh"])[..],
        &sink,
    )
    .unwrap();
    events.lock().unwrap().clear();
    s.load(
        &docker_archive(&[base.clone(), y], &["iy:1"], &["sh"])[..],
        &sink,
    )
    .unwrap();
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, berth_image::Progress::AlreadyExists { .. })),
        "{ev:?}"
    );
    assert_eq!(s.snapshots.list_committed().unwrap().len(), 3);
}

#[test]
fn gc_keeps_used_frees_unused() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(td.path(), None);
    let base = busybox_layer();
    let x = tar_of(&[E::File("x", b"x", 0o644)]);
    let y = tar_of(&[E::File("y", b"y", 0o644)]);
    let z = tar_of(&[E::File("z", b"z", 0o644)]);
    s.load(
        &docker_archive(&[base.clone(), x.clone()], &["ix:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    s.load(
        &docker_archive(&[base.clone(), y.clone()], &["iy:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    s.load(
        &docker_archive(&[base.clone(), z.clone()], &["iz:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    // a container uses iz; then iz and iy are deleted
    s.prepare_snapshot("ctr", Some("iz:1")).unwrap();
    let iy = s.resolve("iy:1").unwrap();
    let iz = s.resolve("iz:1").unwrap();
    let rep = s.delete("iy:1", false, &|_| false).unwrap();
    assert_eq!(rep.deleted, vec![iy.id.to_string()]);
    s.delete("iz:1", false, &|id| id == &iz.id).unwrap();
    // an orphan blob from an aborted build, and a build-cache chain the caller keeps
    let orphan = s.content.write_bytes(b"orphan", None).unwrap();
    let before = s.snapshots.list_committed().unwrap().len();
    assert_eq!(before, 4);
    let g = s.gc(&[], &[]).unwrap();
    assert!(g.blobs_removed.contains(&orphan));
    // iy's own layer: its blob went once unpacked (tar-split), its snapshot goes now
    assert!(
        !s.content.exists(&Digest::of(&y)),
        "iy's own layer blob freed"
    );
    assert!(g.blobs_removed.contains(&iy.id), "iy's config freed");
    assert_eq!(
        g.snapshots_removed.len(),
        1,
        "only iy's top snapshot is unused: {:?}",
        g.snapshots_removed
    );
    // ix's layers (blobs dropped, kept as tar-split) still give back their exact tars
    let ix = s.resolve("ix:1").unwrap();
    let chains = berth_image::digest::chain_ids(
        &ix.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    );
    for ((l, c), want) in ix.layers.iter().zip(&chains).zip([&base, &x]) {
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut s.layer_stream(l, c).unwrap().1, &mut tar).unwrap();
        assert!(&tar == want, "layer {} rebuilt byte for byte", l.diff_id);
    }
    // ix still mounts
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    s.prepare_snapshot("c2", Some("ix:1")).unwrap();
    s.mount("c2", &m).unwrap();
    assert!(m.join("x").exists());
    s.unmount(&m).unwrap();
    // the container on deleted iz still mounts (its snapshots are kept)
    s.mount("ctr", &m).unwrap();
    assert!(m.join("z").exists());
    s.unmount(&m).unwrap();
    s.remove_snapshot("ctr").unwrap();
    // untagging an image a container used leaves it dangling (as docker); removing it by ID frees it
    s.delete(&iz.id.to_string(), false, &|_| false).unwrap();
    let g = s.gc(&[], &[]).unwrap();
    assert_eq!(
        g.snapshots_removed.len(),
        1,
        "iz's snapshot freed once its container is gone"
    );
    assert!(g.blobs_removed.is_empty() || !g.blobs_removed.contains(&Digest::of(&base)));
}

#[test]
fn tag_untag_delete_semantics() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(td.path(), None);
    let l = s
        .load(
            &docker_archive(&[busybox_layer()], &["bb:1"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap();
    s.tag("bb:1", "localhost:5000/bb:2").unwrap();
    s.tag(&l[0].id.hex()[..12], "bb:3").unwrap();
    assert_eq!(
        s.inspect("bb:3").unwrap().repo_tags,
        vec!["bb:1", "localhost:5000/bb:2", "bb:3"]
    );
    let e = s
        .delete(&l[0].id.to_string(), false, &|_| false)
        .unwrap_err();
    assert!(e.to_string().contains("multiple repositories"), "{e}");
    let r = s.delete("bb:3", false, &|_| false).unwrap();
    assert_eq!(r.untagged, vec!["bb:3"]);
    assert!(r.deleted.is_empty());
    assert!(matches!(s.inspect("nope:1"), Err(Error::ImageNotFound(_))));
    let r = s.delete(&l[0].id.to_string(), true, &|_| false).unwrap();
    assert_eq!(r.deleted, vec![l[0].id.to_string()]);
    assert!(s.list().unwrap().is_empty());
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn interop_skopeo_umoci() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), None);
    let l = s
        .load(
            &docker_archive(&three_layers(), &["three:latest"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap();
    let oci = td.path().join("oci");
    s.export_oci_dir(&["three:latest"], &oci).unwrap();
    assert!(oci.join("oci-layout").exists() && oci.join("index.json").exists());
    // berth reads its own layout back
    let s2 = svc(&td.path().join("r2"), None);
    let back = s2
        .import_oci_dir(&oci, Some("three:back"), &NoProgress)
        .unwrap();
    assert_eq!(back[0].id, l[0].id);
    if !have("skopeo") {
        println!("SKIPPED skopeo interop: skopeo not installed (apt-get install skopeo)");
    } else {
        let da = td.path().join("da.tar");
        let st = std::process::Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                &format!("oci:{}:latest", oci.display()),
                &format!("docker-archive:{}:three:latest", da.display()),
            ])
            .status()
            .unwrap();
        assert!(st.success(), "skopeo copy oci -> docker-archive");
        let s3 = svc(&td.path().join("r3"), None);
        let l3 = s3
            .load(std::fs::File::open(&da).unwrap(), &NoProgress)
            .unwrap();
        // skopeo may re-serialise the config when converting formats; the layers must be identical
        assert_eq!(
            s3.inspect(&l3[0].id.to_string()).unwrap().root_f_s.layers,
            s.inspect("three:latest").unwrap().root_f_s.layers
        );
        assert_eq!(l3[0].tags, vec!["three:latest"]);
        // berth's docker-archive -> skopeo -> OCI layout -> berth
        let mut saved = Vec::new();
        s.save(&["three:latest"], &mut saved).unwrap();
        let sp = td.path().join("saved.tar");
        std::fs::write(&sp, &saved).unwrap();
        let oci2 = td.path().join("oci2");
        let st = std::process::Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                &format!("docker-archive:{}", sp.display()),
                &format!("oci:{}:latest", oci2.display()),
            ])
            .status()
            .unwrap();
        assert!(st.success(), "skopeo copy docker-archive -> oci");
        let s4 = svc(&td.path().join("r4"), None);
        let l4 = s4
            .import_oci_dir(&oci2, Some("three:x"), &NoProgress)
            .unwrap();
        assert_eq!(
            s4.inspect(&l4[0].id.to_string()).unwrap().root_f_s.layers,
            s.inspect("three:latest").unwrap().root_f_s.layers
        );
        s4.prepare_snapshot("c", Some("three:x")).unwrap();
        let m = td.path().join("m4");
        std::fs::create_dir(&m).unwrap();
        s4.mount("c", &m).unwrap();
        assert_eq!(names(&m.join("o")), vec!["z"]);
        s4.unmount(&m).unwrap();
    }
    if !have("umoci") {
        println!("SKIPPED umoci interop: umoci not installed (apt-get install umoci)");
    } else {
        let bundle = td.path().join("bundle");
        let out = std::process::Command::new("umoci")
            .args(["unpack", "--image", &format!("{}:latest", oci.display())])
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rf = bundle.join("rootfs");
        assert_eq!(names(&rf.join("a")), vec!["2", "3"]);
        assert_eq!(names(&rf.join("o")), vec!["z"]);
    }
}

#[test]
fn oci_layout_tar_export_load_and_schema_errors() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), None);
    let l = s
        .load(
            &docker_archive(&[busybox_layer()], &["one:1"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap();
    let mut t = Vec::new();
    s.export_oci_tar(&["one:1"], &mut t).unwrap();
    let names: Vec<String> = tar::Archive::new(&t[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"oci-layout".to_string())
            && names.contains(&"index.json".to_string())
            && !names.contains(&"manifest.json".to_string()),
        "{names:?}"
    );
    let s2 = svc(&td.path().join("r2"), None);
    let l2 = s2.load(&t[..], &NoProgress).unwrap();
    assert_eq!(l2[0].id, l[0].id);
    assert_eq!(
        l2[0].tags,
        vec!["one:1"],
        "name from the io.containerd.image.name annotation"
    );
    // a gzip-compressed docker-archive loads too (docker load accepts them)
    let mut saved = Vec::new();
    s.save(&["one:1"], &mut saved).unwrap();
    let s3 = svc(&td.path().join("r3"), None);
    assert_eq!(
        s3.load(&gzip(&saved)[..], &NoProgress).unwrap()[0].id,
        l[0].id
    );
    // not an archive at all
    let e = s3
        .load(&tar_of(&[E::File("hello", b"x", 0o644)])[..], &NoProgress)
        .unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
}

#[test]
fn unsynced_snapshots_are_dropped_after_a_crash_and_reunpacked() {
    let td = tempfile::tempdir().unwrap();
    let root = td.path().join("r");
    let id = {
        let s = svc(&root, None);
        let l = s
            .load(
                &docker_archive(&three_layers(), &["three:1"], &["sh"])[..],
                &NoProgress,
            )
            .unwrap();
        s.snapshots.sync().unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("snapshots/.unsynced")).unwrap_or_default(),
            "",
            "sync clears the journal"
        );
        l[0].id.clone()
    };
    // simulate a crash between a snapshot becoming visible and its syncfs: the layer blob
    // is then still there (it goes only once its snapshot is synced, see crate::slim)
    let top = svc(&root, None)
        .top_chain_id(&svc(&root, None).resolve("three:1").unwrap())
        .unwrap();
    let s = svc(&root, None);
    s.slim().unwrap();
    let top_blob = s.resolve("three:1").unwrap().layers[2].blob.clone();
    assert!(!s.content.exists(&top_blob), "dropped once synced");
    let rec = s.resolve("three:1").unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut s.layer_stream(&rec.layers[2], &top).unwrap().1,
        &mut tar,
    )
    .unwrap();
    s.content.write_bytes(&tar, Some(&top_blob)).unwrap();
    drop(s);
    std::fs::write(root.join("snapshots/.unsynced"), format!("{}\n", top.hex())).unwrap();
    let s = svc(&root, None);
    assert!(
        !s.snapshots.has(&top),
        "possibly torn snapshot removed at open"
    );
    assert_eq!(s.snapshots.list_committed().unwrap().len(), 2);
    // using the image unpacks it again from the verified blobs
    s.prepare_snapshot("c", Some(&id.to_string())).unwrap();
    assert!(s.snapshots.has(&top));
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    s.mount("c", &m).unwrap();
    assert_eq!(names(&m.join("o")), vec!["z"]);
    s.unmount(&m).unwrap();
}

#[test]
fn commit_with_copy_snapshotter_diffs_against_parent() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), Some(SnapshotterKind::Copy));
    s.load(
        &docker_archive(&three_layers(), &["three:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    s.prepare_snapshot("c", Some("three:1")).unwrap();
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    s.mount("c", &m).unwrap();
    std::fs::write(m.join("a/new"), b"new").unwrap();
    std::fs::write(m.join("a/2"), b"changed").unwrap();
    std::fs::remove_file(m.join("a/3")).unwrap();
    std::fs::remove_dir_all(m.join("o")).unwrap();
    s.unmount(&m).unwrap();
    let rec = s.resolve("three:1").unwrap();
    let cfg = s.config_of(&rec).unwrap();
    let c = s
        .commit("c", Some("three:1"), cfg, "changes", Some("three:2"))
        .unwrap();
    let top = c.layers.last().unwrap();
    let top_chain = s.top_chain_id(&c).unwrap();
    let tar = {
        // from the gzip blob, or rebuilt once that went (tar-split): the same tar
        let mut r = s.layer_stream(top, &top_chain).unwrap().1;
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut v).unwrap();
        v
    };
    let mut names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![".wh.o", "a/.wh.3", "a/2", "a/new"],
        "only the changes"
    );
    s.prepare_snapshot("c2", Some("three:2")).unwrap();
    s.mount("c2", &m).unwrap();
    assert_eq!(self::names(&m.join("a")), vec!["2", "new"]);
    assert_eq!(std::fs::read(m.join("a/2")).unwrap(), b"changed");
    assert!(!m.join("o").exists());
    s.unmount(&m).unwrap();
}

/// Blobs in the content store (committed ones only; temp files are checked separately).
fn blobs(s: &berth_image::ImageService) -> std::collections::BTreeSet<Digest> {
    s.content.list().unwrap().into_iter().collect()
}

/// A refused load (hostile layer, layer not matching its diff_id, corrupt archive) and a
/// refused import leave no blob they wrote that no image references; blobs that were there
/// before (an image's, or an orphan) stay. Both snapshotters.
#[test]
fn refused_load_and_import_leave_no_blob_behind() {
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let td = tempfile::tempdir().unwrap();
        let s = svc(td.path(), Some(kind));
        let base = busybox_layer();
        let good = tar_of(&[E::File("ok", b"ok", 0o644)]);
        s.load(
            &docker_archive(&[base.clone(), good], &["good:1"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap();
        s.slim().unwrap(); // layer blobs of the loads above dropped (tar-split) before counting
        let kept = blobs(&s);
        // an orphan blob that a refused load also carries: it was there before, it stays
        let orphan_layer = tar_of(&[E::File("orphan", b"o", 0o644)]);
        let orphan = s.content.write_bytes(&orphan_layer, None).unwrap();
        let mut before = kept.clone();
        before.insert(orphan.clone());

        // hostile layer: refused at unpack
        let evil = tar_of(&[E::File("../victim", b"pwned", 0o644)]);
        let big_evil = {
            // large enough to be streamed (and, on overlay, unpacked while it arrives)
            let mut t = tar_of(&[E::File("pad", &vec![7u8; 64 << 10], 0o644)]);
            t.truncate(t.len() - 1024); // drop the end-of-archive blocks
            t.extend_from_slice(&evil);
            t
        };
        for (what, layers) in [
            ("hostile layer", vec![base.clone(), evil.clone()]),
            ("big hostile layer", vec![base.clone(), big_evil.clone()]),
            (
                "hostile layer next to an orphan",
                vec![orphan_layer.clone(), evil.clone()],
            ),
        ] {
            let e = s
                .load(
                    &docker_archive(&layers, &["evil:1"], &["sh"])[..],
                    &NoProgress,
                )
                .unwrap_err();
            assert!(
                matches!(e, Error::UnsafeEntry { .. }),
                "{kind:?} {what}: {e}"
            );
            assert_eq!(blobs(&s), before, "{kind:?} {what}: blobs left behind");
            assert!(matches!(s.resolve("evil:1"), Err(Error::ImageNotFound(_))));
        }
        // a layer that does not match the config's diff_id (one not unpacked yet)
        let fresh = tar_of(&[E::File("f", &[3u8; 8192], 0o644)]);
        let mut arch = docker_archive(&[fresh], &["bad:1"], &["sh"]);
        let pos = arch.windows(64).position(|w| w == [3u8; 64]).unwrap() + 100;
        arch[pos] ^= 0xff;
        assert!(s.load(&arch[..], &NoProgress).is_err());
        assert_eq!(
            blobs(&s),
            before,
            "{kind:?} diff_id mismatch: blobs left behind"
        );
        // a truncated archive: the blobs stored before the cut go again
        let arch = docker_archive(
            &[
                tar_of(&[E::File("t", &vec![1u8; 8192], 0o644)]),
                evil.clone(),
            ],
            &["cut:1"],
            &["sh"],
        );
        assert!(s.load(&arch[..arch.len() / 2 + 3000], &NoProgress).is_err());
        assert_eq!(
            blobs(&s),
            before,
            "{kind:?} truncated archive: blobs left behind"
        );
        // a refused import
        let e = s
            .import(&evil[..], Some("imp:1"), &[], None, None)
            .unwrap_err();
        assert!(
            matches!(e, Error::UnsafeEntry { .. }),
            "{kind:?} import: {e}"
        );
        assert_eq!(
            blobs(&s),
            before,
            "{kind:?} refused import: blobs left behind"
        );
        assert!(
            names(&td.path().join("content/sha256"))
                .iter()
                .all(|n| !n.starts_with('.')),
            "{kind:?}: temp files left"
        );
        // the image that was there is intact
        s.prepare_snapshot("c", Some("good:1")).unwrap();
        s.remove_snapshot("c").unwrap();
        for d in &kept {
            s.content.verify(d).unwrap();
        }
    }
}

#[test]
fn gc_spares_snapshots_an_operation_holds() {
    // A pull or load that has unpacked a layer but not yet stored its image holds the
    // layer's snapshot: a gc meanwhile (an rmi elsewhere) must not remove it.
    let td = tempfile::tempdir().unwrap();
    let s = svc(td.path(), None);
    let w = tar_of(&[E::File("w", b"w", 0o644)]);
    s.load(
        &docker_archive(std::slice::from_ref(&w), &["iw:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    let chain = Digest::of(&w); // one layer: its chain ID is its diff_id
    s.delete("iw:1", false, &|_| false).unwrap();
    let lease = s.lease();
    lease.hold_snapshot(&chain);
    let g = s.gc(&[], &[]).unwrap();
    assert!(g.snapshots_removed.is_empty(), "{:?}", g.snapshots_removed);
    assert!(s.snapshots.has(&chain));
    drop(lease);
    let g = s.gc(&[], &[]).unwrap();
    assert_eq!(g.snapshots_removed, vec![chain.clone()]);
    assert!(!s.snapshots.has(&chain));
}

#[test]
fn derive_keeps_the_parents_layers_with_a_new_config() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), Some(SnapshotterKind::Copy));
    s.load(
        &docker_archive(&three_layers(), &["three:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    let parent = s.resolve("three:1").unwrap();
    let mut cfg = s.config_of(&parent).unwrap();
    cfg.config.get_or_insert_with(Default::default).user = Some("app".into());
    cfg.history.push(berth_image::model::History {
        created_by: Some("/bin/sh -c #(nop)  USER app".into()),
        empty_layer: true,
        ..Default::default()
    });
    let d = s.derive(Some("three:1"), cfg).unwrap();
    assert_ne!(d.id, parent.id);
    assert!(d.repo_tags.is_empty());
    let blobs = |r: &berth_image::store::ImageRecord| -> Vec<Digest> {
        r.layers.iter().map(|l| l.blob.clone()).collect()
    };
    assert_eq!(blobs(&d), blobs(&parent));
    let got = s.config_of(&d).unwrap();
    assert_eq!(got.config.unwrap().user.as_deref(), Some("app"));
    assert_eq!(got.rootfs.diff_ids.len(), 3);
    assert!(got.history.last().unwrap().empty_layer);
    // No parent: an image without layers (FROM scratch and only metadata).
    let empty = s
        .derive(None, berth_image::model::ImageConfig::default())
        .unwrap();
    assert!(empty.layers.is_empty());
    assert!(s.config_of(&empty).unwrap().rootfs.diff_ids.is_empty());
}
