//! Image endpoints against a real berthd: what the client sees when an upload fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of `size` this test mounted at `path`; unmounted (lazily) when dropped.
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs at {}", path.display());
        Tmpfs(path.to_path_buf())
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A classic docker-archive whose one layer (a tar holding `size` bytes in one file) comes
/// first; the config's diff_id is not checked before the layer is stored.
fn archive_with_big_layer(size: usize) -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(size as u64);
    let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
    layer.append_data(&mut h, "big", &data[..]).unwrap();
    let layer = layer.into_inner().unwrap();
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "0".repeat(64))]},
    })
    .to_string();
    let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": ["full:1"], "Layers": ["l/layer.tar"]}])
        .to_string();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("l/layer.tar", &layer[..]),
        ("cfg.json", cfg.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `docker load` onto a full disk: the client (which, like docker-py, sends the whole body
/// before it reads the answer) can send all of it and gets the real error, "no space left on
/// device", not a broken pipe; the load leaves nothing in the content store and the daemon
/// keeps serving.
#[test]
fn load_onto_a_full_disk_answers_with_the_real_error() {
    let fs = tempfile::Builder::new()
        .prefix("berthd-enospc")
        .tempdir_in("/tmp")
        .unwrap();
    let _mnt = Tmpfs::mount(fs.path(), "24m");
    let d = Daemon::start_with_root(&fs.path().join("root"));
    let body = archive_with_big_layer(64 << 20);

    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /v1.47/images/load?quiet=0 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let sent = body
        .chunks(1 << 20)
        .try_for_each(|c| s.write_all(c))
        .map_err(|e| e.to_string());
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    let reply = parse_response(&raw);
    let text = reply.as_ref().map(|r| r.text()).unwrap_or_default();
    println!("sent: {sent:?}, read: {read:?}, reply: {reply:?}, text: {text}");
    assert!(
        sent.is_ok(),
        "the daemon stopped reading the upload: {sent:?}; reply {text:?}\n{}",
        d.log()
    );
    let reply = reply.unwrap_or_else(|| panic!("no reply: {:?}", String::from_utf8_lossy(&raw)));
    assert!(
        text.to_lowercase().contains("no space left on device"),
        "status {}: {text}",
        reply.status
    );

    // nothing of the load is left; the daemon serves on
    let content = fs.path().join("root/image/content/sha256");
    let left: Vec<_> = std::fs::read_dir(&content)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", content.display());
    assert_eq!(d.get("/_ping").status, 200);
    assert_eq!(d.get("/v1.47/images/json").json(), serde_json::json!([]));
}
