//! One copy per layer (tar-split): after a load the store keeps the unpacked layers and a
//! small description instead of the layer tars, `save` still gives back byte-identical layers
//! and the same image ID, a modified unpacked file makes save fail naming the layer, and a
//! crash on either side of the blob's removal leaves the layer usable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_image::digest::chain_ids;
use berth_image::progress::NoProgress;
use berth_image::snapshot::SnapshotterKind;
use berth_image::Digest;
use common::*;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_600_000_000);
    h.set_uid(1000);
    h.set_gid(1000);
    h
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A base layer with what real images carry: busybox and its symlinks, a hard link, long
/// names (GNU and PAX), an xattr, devices, a fifo, a big random file and a mostly-zero one.
fn base_layer() -> Vec<u8> {
    let td = tempfile::tempdir().unwrap();
    busybox_rootfs(td.path());
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", td.path()).unwrap();
    let mut add = |h: &mut tar::Header, path: &str, data: &[u8]| {
        b.append_data(h, path, data).unwrap();
    };
    add(
        &mut header(tar::EntryType::Directory, 0o755, 0),
        "data/",
        b"",
    );
    let big = noise(3 << 20, 7);
    add(
        &mut header(tar::EntryType::Regular, 0o644, big.len() as u64),
        "data/random.bin",
        &big,
    );
    let mut sparse = vec![0u8; 2 << 20];
    sparse[1 << 20..(1 << 20) + 5].copy_from_slice(b"hello");
    add(
        &mut header(tar::EntryType::Regular, 0o600, sparse.len() as u64),
        "data/mostly-zero.img",
        &sparse,
    );
    let long = format!("data/{}/{}", "d".repeat(120), "f".repeat(90));
    add(
        &mut header(tar::EntryType::Regular, 0o644, 11),
        &long,
        b"long name\n",
    );
    add(&mut header(tar::EntryType::Char, 0o666, 0), "dev/null", b"");
    add(
        &mut header(tar::EntryType::Fifo, 0o644, 0),
        "data/fifo",
        b"",
    );
    let mut h = header(tar::EntryType::Link, 0o755, 0);
    b.append_link(&mut h, "bin/busybox-hard", "bin/busybox")
        .unwrap();
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "data/to-random", "random.bin")
        .unwrap();
    b.append_pax_extensions([
        ("SCHILY.xattr.user.berth", &b"tarsplit"[..]),
        ("path", format!("data/pax/{}", "p".repeat(200)).as_bytes()),
    ])
    .unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, 4);
    h.set_path("data/pax-short-name").unwrap();
    h.set_cksum();
    b.append(&h, &b"pax\n"[..]).unwrap();
    b.into_inner().unwrap()
}

/// Whiteouts (a file and an opaque dir) over the base and a changed file.
fn change_layer() -> Vec<u8> {
    tar_of(&[
        E::File("etc/.wh.group", b"", 0o644),
        E::Dir("data/", 0o755),
        E::File("data/.wh..wh..opq", b"", 0o644),
        E::File("data/new.txt", b"new file\n", 0o644),
        E::File(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\nu:x:1:1::/:/bin/sh\n",
            0o644,
        ),
    ])
}

/// A tar that writes one name twice: the first content is not in the unpacked dir.
fn twice_layer() -> Vec<u8> {
    tar_of(&[
        E::File("twice", b"first content", 0o644),
        E::File("twice", b"second", 0o644),
    ])
}

fn du_k(p: &Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-sk"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Files of a saved archive (the Docker 25+ form) by path.
fn saved(
    s: &berth_image::ImageService,
    name: &str,
) -> berth_image::Result<HashMap<String, Vec<u8>>> {
    let mut out = Vec::new();
    s.save(&[name], &mut out)?;
    let mut files = HashMap::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(p, b);
    }
    Ok(files)
}

fn check_save(s: &berth_image::ImageService, layers: &[Vec<u8>], id: &Digest) {
    let files = saved(s, "ts:1").unwrap();
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        m[0]["Config"],
        format!("blobs/sha256/{}", id.hex()),
        "same image ID"
    );
    let paths = m[0]["Layers"].as_array().unwrap();
    assert_eq!(paths.len(), layers.len());
    for (p, want) in paths.iter().zip(layers) {
        let got = &files[p.as_str().unwrap()];
        assert_eq!(
            Digest::of(got),
            Digest::of(want),
            "layer {p} byte-identical"
        );
    }
}

fn load(
    kind: SnapshotterKind,
) -> (
    tempfile::TempDir,
    berth_image::ImageService,
    Vec<Vec<u8>>,
    Digest,
) {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), Some(kind));
    let layers = vec![base_layer(), change_layer(), twice_layer()];
    let id = s
        .load(
            &docker_archive(&layers, &["ts:1"], &["sh"])[..],
            &NoProgress,
        )
        .unwrap()[0]
        .id
        .clone();
    s.slim().unwrap();
    (td, s, layers, id)
}

fn chains(s: &berth_image::ImageService) -> Vec<Digest> {
    let rec = s.resolve("ts:1").unwrap();
    chain_ids(
        &rec.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    )
}

#[test]
fn loaded_layers_keep_one_copy_and_save_byte_identical() {
    for kind in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let (_td, s, layers, id) = load(kind);
        let rec = s.resolve("ts:1").unwrap();
        let ch = chains(&s);
        for (i, (l, c)) in rec.layers.iter().zip(&ch).take(2).enumerate() {
            assert!(
                !s.content.exists(&l.blob),
                "{kind:?}: layer {i} blob dropped"
            );
            assert!(
                s.snapshots.split_path(c).is_file(),
                "{kind:?}: layer {i} description"
            );
        }
        // the layer whose tar writes a name twice cannot be rebuilt from its dir: tar kept
        assert!(
            s.content.exists(&rec.layers[2].blob),
            "{kind:?}: rare layer keeps its tar"
        );
        assert!(!s.snapshots.split_path(&ch[2]).exists());
        check_save(&s, &layers, &id);
        // an OCI layout export works without the blobs (layers go out uncompressed)
        let out = tempfile::tempdir().unwrap();
        s.export_oci_dir(&["ts:1"], out.path()).unwrap();
        for l in &layers {
            let p = out.path().join("blobs/sha256").join(Digest::of(l).hex());
            assert_eq!(std::fs::read(&p).unwrap(), *l, "{kind:?}: {}", p.display());
        }
        // still mounts and reads as before
        if kind == SnapshotterKind::Overlay {
            s.prepare_snapshot("c", Some("ts:1")).unwrap();
            let m = _td.path().join("m");
            std::fs::create_dir(&m).unwrap();
            s.mount("c", &m).unwrap();
            assert_eq!(
                std::fs::read(m.join("data/new.txt")).unwrap(),
                b"new file\n"
            );
            assert!(!m.join("data/random.bin").exists() && !m.join("etc/group").exists());
            s.unmount(&m).unwrap();
            s.remove_snapshot("c").unwrap();
        }
    }
}

#[test]
fn footprint_is_at_most_1_1x_unpacked() {
    let (td, s, _layers, _id) = load(SnapshotterKind::Overlay);
    let root = td.path().join("r");
    let unpacked: u64 = chains(&s)
        .iter()
        .map(|c| du_k(&s.snapshots.committed_fs(c)))
        .sum();
    let total = du_k(&root);
    println!("root {total} KiB, unpacked layers {unpacked} KiB");
    assert!(
        (total as f64) <= 1.1 * unpacked as f64,
        "root {total} KiB > 1.1 x unpacked {unpacked} KiB"
    );
    // rmi + gc gives everything back
    s.delete("ts:1", false, &|_| false).unwrap();
    s.gc(&[], &[]).unwrap();
    assert!(s.content.list().unwrap().is_empty());
    assert!(s.snapshots.list_committed().unwrap().is_empty());
}

#[test]
fn a_modified_unpacked_file_fails_save_naming_the_layer() {
    let (_td, s, layers, id) = load(SnapshotterKind::Overlay);
    let rec = s.resolve("ts:1").unwrap();
    let ch = chains(&s);
    let f = s.snapshots.committed_fs(&ch[0]).join("data/random.bin");
    let orig = std::fs::read(&f).unwrap();
    let mut bad = orig.clone();
    bad[12345] ^= 1;
    std::fs::write(&f, &bad).unwrap();
    let e = saved(&s, "ts:1").unwrap_err().to_string();
    assert!(e.contains(&rec.layers[0].diff_id.to_string()), "{e}");
    assert!(e.contains("data/random.bin was modified"), "{e}");
    // same size, same CRC cannot be faked by accident; a removed file is named too
    std::fs::remove_file(&f).unwrap();
    let e = saved(&s, "ts:1").unwrap_err().to_string();
    assert!(
        e.contains(&rec.layers[0].diff_id.to_string()) && e.contains("random.bin"),
        "{e}"
    );
    std::fs::write(&f, &orig).unwrap();
    check_save(&s, &layers, &id);
}

#[test]
fn a_crash_on_either_side_of_the_blob_removal_leaves_the_layer_usable() {
    let td = tempfile::tempdir().unwrap();
    let root = td.path().join("r");
    let layers = vec![base_layer(), change_layer()];
    let (id, blob0, chain0) = {
        let s = svc(&root, None);
        let id = s
            .load(
                &docker_archive(&layers, &["ts:1"], &["sh"])[..],
                &NoProgress,
            )
            .unwrap()[0]
            .id
            .clone();
        s.slim().unwrap();
        let rec = s.resolve("ts:1").unwrap();
        (id, rec.layers[0].blob.clone(), chains(&s)[0].clone())
    };
    // killed after the snapshot was synced, before the blob went: open finishes the job
    {
        let s = svc(&root, None);
        s.content.write_bytes(&layers[0], Some(&blob0)).unwrap();
    }
    let s = svc(&root, None);
    assert!(
        !s.content.exists(&blob0),
        "open drops a blob its description replaces"
    );
    check_save(&s, &layers, &id);
    drop(s);
    // killed before the snapshot was synced: the blob is still there (it goes only after
    // the sync), the possibly torn snapshot is removed at open and unpacked again from it
    {
        let s = svc(&root, None);
        s.content.write_bytes(&layers[0], Some(&blob0)).unwrap();
    }
    std::fs::write(
        root.join("snapshots/.unsynced"),
        format!("{}\n", chain0.hex()),
    )
    .unwrap();
    let s = svc(&root, None);
    assert!(!s.snapshots.has(&chain0), "torn snapshot removed");
    assert!(s.content.exists(&blob0), "its blob stays");
    s.prepare_snapshot("c", Some("ts:1")).unwrap();
    s.slim().unwrap();
    assert!(!s.content.exists(&blob0) && s.snapshots.split_path(&chain0).is_file());
    check_save(&s, &layers, &id);
}

#[test]
fn imported_and_committed_layers_keep_one_copy_too() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), None);
    let tar = base_layer();
    let imp = s
        .import(&gzip(&tar)[..], Some("imp:1"), &[], None, None)
        .unwrap();
    s.prepare_snapshot("c", Some("imp:1")).unwrap();
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    s.mount("c", &m).unwrap();
    std::fs::write(m.join("data/committed.txt"), b"committed\n").unwrap();
    s.unmount(&m).unwrap();
    let cfg = s.config_of(&imp).unwrap();
    let com = s
        .commit("c", Some("imp:1"), cfg, "change", Some("com:1"))
        .unwrap();
    s.slim().unwrap();
    let ch = chain_ids(
        &com.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    );
    for (l, c) in com.layers.iter().zip(&ch) {
        assert!(
            !s.content.exists(&l.blob),
            "layer {} blob dropped",
            l.diff_id
        );
        let mut t = Vec::new();
        s.layer_stream(l, c).unwrap().1.read_to_end(&mut t).unwrap();
        assert_eq!(Digest::of(&t), l.diff_id, "layer {} rebuilt", l.diff_id);
    }
    let mut t = Vec::new();
    s.layer_stream(&com.layers[0], &ch[0])
        .unwrap()
        .1
        .read_to_end(&mut t)
        .unwrap();
    assert!(
        t == tar,
        "the imported tar, byte for byte (it came in gzip-compressed)"
    );
}

#[test]
fn a_blob_held_during_the_pass_goes_when_its_holder_ends() {
    let td = tempfile::tempdir().unwrap();
    let s = svc(&td.path().join("r"), None);
    let layers = vec![base_layer()];
    let held = Digest::of(&layers[0]);
    let lease = s.lease();
    assert!(!lease.hold(&held), "not stored yet");
    s.load(
        &docker_archive(&layers, &["ts:1"], &["sh"])[..],
        &NoProgress,
    )
    .unwrap();
    s.slim().unwrap();
    assert!(
        s.content.exists(&held),
        "held by an operation (a save): kept"
    );
    lease.succeed();
    for _ in 0..200 {
        if !s.content.exists(&held) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("the blob stayed after its holder ended");
}
