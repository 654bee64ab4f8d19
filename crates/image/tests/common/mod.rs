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
                h.set_entry_type(if matches!(e, E::Symlink(..)) { tar::EntryType::Symlink } else { tar::EntryType::Link });
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
        let mut names: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let content = if md.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes().to_vec()
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
