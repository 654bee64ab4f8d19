#![allow(dead_code)]
//! Test helpers: tar builders (including hostile ones) and busybox fixtures.
use std::path::Path;

pub enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
}

/// Write a raw name into a header, bypassing the tar crate's path sanitising.
fn raw_name(h: &mut tar::Header, name: &str) {
    let b = name.as_bytes();
    assert!(b.len() < 100, "test names must be short");
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..b.len()].copy_from_slice(b);
}
fn raw_link(h: &mut tar::Header, name: &str) {
    let b = name.as_bytes();
    let old = h.as_old_mut();
    old.linkname = [0; 100];
    old.linkname[..b.len()].copy_from_slice(b);
}

pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::File(n, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                h.set_mode(*mode);
                raw_name(&mut h, n);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Dir(n, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(*mode);
                raw_name(&mut h, n);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Symlink(n, t) | E::Hardlink(n, t) => {
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_size(0);
                h.set_mode(0o777);
                raw_name(&mut h, n);
                raw_link(&mut h, t);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Char(n, ma, mi) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_size(0);
                h.set_mode(0o666);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                raw_name(&mut h, n);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Fifo(n) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_size(0);
                h.set_mode(0o644);
                raw_name(&mut h, n);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Snapshot of a tree: (relative path, mode, nlink, content/link target) for comparisons.
pub fn tree(dir: &Path) -> Vec<(String, u32, u64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    fn rec(root: &Path, d: &Path, out: &mut Vec<(String, u32, u64, Vec<u8>)>) {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let content = if md.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .to_string_lossy()
                    .as_bytes()
                    .to_vec()
            } else if md.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.push((rel, md.mode(), md.nlink(), content));
            if md.is_dir() {
                rec(root, &p, out);
            }
        }
    }
    rec(dir, dir, &mut out);
    out
}

/// A busybox rootfs: bin/busybox + applet symlinks + a few dirs/files.
pub fn busybox_rootfs(dir: &Path) {
    use std::os::unix::fs::symlink;
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for a in ["sh", "ls", "cat", "echo", "true", "sleep", "env"] {
        symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// A tar (uncompressed) of a directory made with the tar crate.
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A classic (pre-Docker-25) docker-archive: `<n>/layer.tar`, `<cfg>.json`, manifest.json.
pub fn docker_archive(layers: &[Vec<u8>], tags: &[&str], cmd: &[&str]) -> Vec<u8> {
    use sha2::Digest as _;
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", hex::encode(sha2::Sha256::digest(l))))
        .collect();
    let history: Vec<serde_json::Value> = layers.iter().enumerate().map(|(i, _)| serde_json::json!({"created":"2024-01-01T00:00:00Z","created_by":format!("layer {i}")})).collect();
    let cfg = serde_json::json!({
        "architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
        "config":{"Cmd":cmd,"Env":["PATH=/bin"]},
        "rootfs":{"type":"layers","diff_ids":diff_ids},
        "history": history,
    });
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let cfg_name = format!("{}.json", hex::encode(sha2::Sha256::digest(&cfg)));
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut lp = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("{:064x}/layer.tar", i + 1);
        add(&n, l);
        lp.push(n);
    }
    add(&cfg_name, &cfg);
    let m = serde_json::json!([{"Config":cfg_name,"RepoTags":tags,"Layers":lp}]);
    add("manifest.json", &serde_json::to_vec(&m).unwrap());
    b.into_inner().unwrap()
}

pub fn svc(
    root: &Path,
    kind: Option<berth_image::snapshot::SnapshotterKind>,
) -> berth_image::ImageService {
    berth_image::ImageService::open(root, kind).unwrap()
}

/// busybox rootfs as an uncompressed layer tar.
pub fn busybox_layer() -> Vec<u8> {
    let td = tempfile::tempdir().unwrap();
    busybox_rootfs(td.path());
    berth_image::layer::pack_dir(td.path(), berth_image::layer::PackMode::Plain, Vec::new())
        .unwrap()
}

pub fn mounted(p: &Path) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let s = p.to_string_lossy();
    mi.lines().any(|l| l.split(' ').nth(4) == Some(&*s))
}
