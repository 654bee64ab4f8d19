//! Layer unpack/pack: formats, metadata, whiteouts, and one test per hostile-tar class.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_image::layer::*;
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

fn opts(w: WhiteoutMode) -> UnpackOptions {
    UnpackOptions {
        whiteouts: w,
        name: "test-layer".into(),
    }
}

/// Unpack `tar` into <tmp>/root with a decoy <tmp>/outside; return (result, tmp).
/// Asserts the outside tree is untouched whatever happened.
fn hostile(
    entries: &[E],
    mode: WhiteoutMode,
) -> (berth_image::Result<UnpackStats>, tempfile::TempDir) {
    let td = tempfile::tempdir().unwrap();
    let root = td.path().join("root");
    let outside = td.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("victim"), b"original").unwrap();
    std::fs::write(outside.join("dir/victim"), b"original").unwrap();
    let before = tree(&outside);
    let data = tar_of(entries);
    let r = unpack_layer(&data[..], &root, &opts(mode));
    assert_eq!(tree(&outside), before, "outside tree modified by {:?}", r);
    (r, td)
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    berth_image::sys::lgetxattr(p.to_str().unwrap().as_bytes(), name.as_bytes()).unwrap()
}

fn out(td: &tempfile::TempDir) -> String {
    td.path().join("outside").to_string_lossy().into_owned()
}

#[test]
fn roundtrip_metadata_formats() {
    let td = tempfile::tempdir().unwrap();
    let src = td.path().join("src");
    busybox_rootfs(&src);
    std::fs::write(src.join("etc/suid"), b"x").unwrap();
    nix::unistd::chown(
        &src.join("etc/suid"),
        Some(nix::unistd::Uid::from_raw(1234)),
        Some(nix::unistd::Gid::from_raw(5678)),
    )
    .unwrap();
    std::fs::set_permissions(
        src.join("etc/suid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    std::fs::hard_link(src.join("etc/passwd"), src.join("etc/passwd.hl")).unwrap();
    nix::sys::stat::mknod(
        &src.join("dev/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &src.join("tmp/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    let has_xattr = berth_image::sys::lsetxattr(
        src.join("etc/group").to_str().unwrap().as_bytes(),
        b"user.berth",
        b"hello",
    )
    .is_ok();
    let t = nix::sys::time::TimeSpec::new(1_234_567_890, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &src.join("etc"),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();

    let tar = pack_dir(&src, PackMode::Plain, Vec::new()).unwrap();
    let expected_diff = berth_image::Digest::of(&tar);
    for (i, data) in [
        tar.clone(),
        gzip(&tar),
        zstd::encode_all(&tar[..], 3).unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        let dst = td.path().join(format!("dst{i}"));
        std::fs::create_dir(&dst).unwrap();
        let st = unpack_layer(&data[..], &dst, &opts(WhiteoutMode::Apply)).unwrap();
        assert_eq!(
            st.diff_id, expected_diff,
            "diff_id is the hash of the uncompressed tar (format {i})"
        );
        let m = std::fs::metadata(dst.join("etc/suid")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o4755));
        assert_eq!(
            std::fs::metadata(dst.join("etc")).unwrap().mtime(),
            1_234_567_890
        );
        assert_eq!(
            std::fs::metadata(dst.join("etc/passwd")).unwrap().ino(),
            std::fs::metadata(dst.join("etc/passwd.hl")).unwrap().ino()
        );
        let dn = std::fs::metadata(dst.join("dev/null")).unwrap();
        assert!(dn.file_type().is_char_device());
        assert_eq!(dn.rdev(), nix::sys::stat::makedev(1, 3));
        assert!(std::fs::metadata(dst.join("tmp/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            std::fs::read_link(dst.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::read(dst.join("bin/busybox")).unwrap(),
            std::fs::read("/bin/busybox").unwrap()
        );
        if has_xattr {
            assert_eq!(
                xattr(&dst.join("etc/group"), "user.berth").as_deref(),
                Some(&b"hello"[..])
            );
        }
        // packing the unpacked tree reproduces the same tar
        assert_eq!(
            berth_image::Digest::of(&pack_dir(&dst, PackMode::Plain, Vec::new()).unwrap()),
            expected_diff
        );
    }
}

#[test]
fn whiteouts_overlay_and_apply() {
    let td = tempfile::tempdir().unwrap();
    let t = tar_of(&[
        E::Dir("a/", 0o755),
        E::File("a/.wh.gone", b"", 0o644),
        E::Dir("o/", 0o755),
        E::File("o/.wh..wh..opq", b"", 0o644),
        E::File("o/new", b"n", 0o644),
    ]);
    let ov = td.path().join("ov");
    std::fs::create_dir(&ov).unwrap();
    unpack_layer(&t[..], &ov, &opts(WhiteoutMode::Overlay)).unwrap();
    let m = std::fs::symlink_metadata(ov.join("a/gone")).unwrap();
    assert!(
        m.file_type().is_char_device() && m.rdev() == 0,
        "overlay whiteout is a 0/0 char device"
    );
    assert_eq!(
        xattr(&ov.join("o"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(ov.join("o/new").exists());
    // back to a layer tar: .wh. form again
    let back = pack_dir(&ov, PackMode::OverlayDiff, Vec::new()).unwrap();
    let names: Vec<String> = tar::Archive::new(&back[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"a/.wh.gone".to_string()), "{names:?}");
    assert!(names.contains(&"o/.wh..wh..opq".to_string()), "{names:?}");

    // apply mode deletes
    let ap = td.path().join("ap");
    std::fs::create_dir_all(ap.join("a")).unwrap();
    std::fs::create_dir_all(ap.join("o")).unwrap();
    std::fs::write(ap.join("a/gone"), b"x").unwrap();
    std::fs::write(ap.join("a/stay"), b"x").unwrap();
    std::fs::write(ap.join("o/old"), b"x").unwrap();
    unpack_layer(&t[..], &ap, &opts(WhiteoutMode::Apply)).unwrap();
    assert!(!ap.join("a/gone").exists() && ap.join("a/stay").exists());
    assert!(!ap.join("o/old").exists() && ap.join("o/new").exists());
}

#[test]
fn corrupt_tar_is_an_error() {
    let td = tempfile::tempdir().unwrap();
    let mut t = tar_of(&[E::File("a", b"hello", 0o644)]);
    t[148] ^= 0xff; // checksum field
    assert!(unpack_layer(&t[..], td.path(), &opts(WhiteoutMode::Apply)).is_err());
    let g = gzip(&tar_of(&[E::File("a", &[1u8; 100000], 0o644)]));
    assert!(
        unpack_layer(&g[..g.len() / 2], td.path(), &opts(WhiteoutMode::Apply)).is_err(),
        "truncated gzip fails"
    );
}

// ---- hostile classes (containerd pkg/archive TestBreakouts as the bar) ----

#[test]
fn hostile_dotdot_path_refused() {
    let (r, _td) = hostile(
        &[E::File("../victim", b"pwned", 0o644)],
        WhiteoutMode::Apply,
    );
    assert!(
        matches!(r, Err(berth_image::Error::UnsafeEntry { .. })),
        "{r:?}"
    );
    let (r, _td) = hostile(
        &[E::File("a/../../victim", b"pwned", 0o644)],
        WhiteoutMode::Apply,
    );
    assert!(r.is_err());
}

#[test]
fn hostile_absolute_path_contained() {
    let td0 = tempfile::tempdir().unwrap();
    let abs = format!("{}/x", td0.path().display());
    let (r, td) = hostile(&[E::File(&abs, b"data", 0o644)], WhiteoutMode::Apply);
    r.unwrap();
    assert!(
        !td0.path().join("x").exists(),
        "absolute path written on the host"
    );
    assert_eq!(
        std::fs::read(td.path().join("root").join(abs.trim_start_matches('/'))).unwrap(),
        b"data"
    );
}

#[test]
fn hostile_symlink_relative_escape_then_write_through() {
    let (r, td) = hostile(
        &[
            E::Symlink("link", "../outside"),
            E::File("link/victim", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    // refused (the link resolves, with root as /, to a missing dir) or contained inside root
    if r.is_ok() {
        assert_eq!(
            std::fs::read(td.path().join("root/outside/victim")).unwrap(),
            b"pwned"
        );
    }
}

#[test]
fn hostile_symlink_absolute_escape_then_write_through() {
    let td0 = tempfile::tempdir().unwrap();
    let o = td0.path().to_string_lossy().into_owned();
    let (r, _td) = hostile(
        &[
            E::Symlink("link", &o),
            E::File("link/victim", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    assert!(
        !td0.path().join("victim").exists(),
        "wrote through an absolute symlink: {r:?}"
    );
}

#[test]
fn hostile_symlink_to_outside_file_then_overwrite() {
    let mut tdo = tempfile::tempdir().unwrap();
    let _ = &mut tdo;
    let (r, td) = hostile(
        &[
            E::Symlink("s", "/nonexistent-abs"),
            E::File("s", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    r.unwrap();
    let p = td.path().join("root/s");
    assert!(
        std::fs::symlink_metadata(&p).unwrap().is_file(),
        "regular file replaced the symlink, not written through it"
    );
    let o = out(&td);
    let (_r, _td) = hostile(
        &[
            E::Symlink("s", &format!("{o}/victim")),
            E::File("s", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
}

#[test]
fn hostile_symlink_chain() {
    let (r, td) = hostile(
        &[
            E::Dir("d/", 0o755),
            E::Symlink("d/a", "b"),
            E::Symlink("d/b", "../../../.."),
            E::File("d/a/outside/victim", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    // the chain resolves to the root itself, so the write lands inside it (hostile() checked
    // that the real outside dir is untouched)
    r.unwrap();
    assert_eq!(
        std::fs::read(td.path().join("root/outside/victim")).unwrap(),
        b"pwned"
    );
}

#[test]
fn hostile_hardlink_to_outside_absolute() {
    let td0 = tempfile::tempdir().unwrap();
    let victim = td0.path().join("secret");
    std::fs::write(&victim, b"secret").unwrap();
    let (r, _td) = hostile(
        &[
            E::Hardlink("h", victim.to_str().unwrap()),
            E::File("h", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    assert!(r.is_err(), "hard link to a host path must fail");
    assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);
    assert_eq!(std::fs::read(&victim).unwrap(), b"secret");
}

#[test]
fn hostile_hardlink_relative_escape() {
    let (r, _td) = hostile(
        &[E::Hardlink("h", "../outside/victim")],
        WhiteoutMode::Apply,
    );
    assert!(
        matches!(r, Err(berth_image::Error::UnsafeEntry { .. })),
        "{r:?}"
    );
}

#[test]
fn hostile_hardlink_through_symlink() {
    let td0 = tempfile::tempdir().unwrap();
    std::fs::write(td0.path().join("victim"), b"secret").unwrap();
    let o = td0.path().to_string_lossy().into_owned();
    let (r, _td) = hostile(
        &[E::Symlink("l", &o), E::Hardlink("h", "l/victim")],
        WhiteoutMode::Apply,
    );
    assert!(r.is_err(), "{r:?}");
    assert_eq!(
        std::fs::metadata(td0.path().join("victim"))
            .unwrap()
            .nlink(),
        1
    );
}

#[test]
fn hostile_hardlink_to_symlink_then_write() {
    let td0 = tempfile::tempdir().unwrap();
    std::fs::write(td0.path().join("victim"), b"secret").unwrap();
    let v = td0.path().join("victim").to_string_lossy().into_owned();
    let (_r, _td) = hostile(
        &[
            E::Symlink("s", &v),
            E::Hardlink("h", "s"),
            E::File("h", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    assert_eq!(std::fs::read(td0.path().join("victim")).unwrap(), b"secret");
}

#[test]
fn hostile_whiteout_naming_parent() {
    for n in [".wh..", ".wh...", "d/.wh.."] {
        let (r, td) = hostile(
            &[E::Dir("d/", 0o755), E::File(n, b"", 0o644)],
            WhiteoutMode::Apply,
        );
        assert!(r.is_err(), "{n}: {r:?}");
        assert!(td.path().join("root").exists());
    }
}

#[test]
fn hostile_whiteout_through_symlink() {
    let td0 = tempfile::tempdir().unwrap();
    std::fs::write(td0.path().join("victim"), b"secret").unwrap();
    let o = td0.path().to_string_lossy().into_owned();
    for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
        let (_r, _td) = hostile(
            &[E::Symlink("d", &o), E::File("d/.wh.victim", b"", 0o644)],
            mode,
        );
        assert!(
            td0.path().join("victim").exists(),
            "whiteout deleted a host file ({mode:?})"
        );
        let (_r, _td) = hostile(
            &[E::Symlink("d", &o), E::File("d/.wh..wh..opq", b"", 0o644)],
            mode,
        );
        assert!(td0.path().join("victim").exists());
        assert_eq!(
            xattr(td0.path(), "trusted.overlay.opaque"),
            None,
            "opaque xattr set on a host dir"
        );
    }
    // whiteout named like a symlink removes the link, not its target
    let (r, td) = hostile(
        &[
            E::Symlink("s", "/outside-victim"),
            E::File(".wh.s", b"", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    r.unwrap();
    assert!(std::fs::symlink_metadata(td.path().join("root/s")).is_err());
}

#[test]
fn hostile_chmod_chown_through_symlink() {
    // CVE-2021-32760: a symlink to a host file followed by an entry of the same name whose
    // metadata would be applied through the link
    let td0 = tempfile::tempdir().unwrap();
    let victim = td0.path().join("victim");
    std::fs::write(&victim, b"secret").unwrap();
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let v = victim.to_string_lossy().into_owned();
    let (_r, _td) = hostile(
        &[E::Symlink("s", &v), E::Dir("s/", 0o777)],
        WhiteoutMode::Apply,
    );
    let (_r, _td) = hostile(&[E::Symlink("s", &v), E::Fifo("s")], WhiteoutMode::Apply);
    let (_r, _td) = hostile(
        &[E::Symlink("s", &v), E::Char("s", 1, 3)],
        WhiteoutMode::Apply,
    );
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600, "host file mode changed");
    assert_eq!(m.uid(), 0);
}

#[test]
fn hostile_device_through_symlink_dir() {
    let td0 = tempfile::tempdir().unwrap();
    let o = td0.path().to_string_lossy().into_owned();
    let (_r, _td) = hostile(
        &[
            E::Symlink("d", &o),
            E::Char("d/null", 1, 3),
            E::Fifo("d/fifo"),
        ],
        WhiteoutMode::Apply,
    );
    assert!(
        std::fs::read_dir(td0.path()).unwrap().next().is_none(),
        "device node created on the host"
    );
}

#[test]
fn hostile_dir_symlink_replaced_mid_archive() {
    // a dir, then the dir replaced by a symlink to outside, then writes into it
    let td0 = tempfile::tempdir().unwrap();
    let o = td0.path().to_string_lossy().into_owned();
    let (_r, _td) = hostile(
        &[
            E::Dir("d/", 0o755),
            E::File("d/a", b"1", 0o644),
            E::Symlink("d", &o),
            E::File("d/b", b"pwned", 0o644),
        ],
        WhiteoutMode::Apply,
    );
    assert!(!td0.path().join("b").exists());
}
