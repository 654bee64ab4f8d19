//! Pull/push against a real registry (Debian's docker-registry, distribution 2.8) on
//! 127.0.0.1, with and without htpasswd basic auth; multi-arch index; interrupted pulls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_image::model::Platform;
use berth_image::progress::{NoProgress, Progress};
use berth_image::registry::{Credentials, RegistryOptions};
use berth_image::{Digest, Error};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct Registry {
    child: Child,
    pub host: String,
    _dir: tempfile::TempDir,
}
impl Drop for Registry {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start docker-registry; None (with a message) when it is not installed.
fn registry(auth: Option<(&str, &str)>) -> Option<Registry> {
    if Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: docker-registry not installed (apt-get install docker-registry)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cfg = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    if let Some((u, p)) = auth {
        let Ok(out) = Command::new("htpasswd").args(["-Bbn", u, p]).output() else {
            println!("SKIPPED: htpasswd not installed (apt-get install apache2-utils)");
            return None;
        };
        assert!(out.status.success());
        std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
        cfg.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        ));
    }
    std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host = format!("127.0.0.1:{port}");
    let reg = Registry {
        child,
        host: host.clone(),
        _dir: dir,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&host).is_ok() {
            return Some(reg);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("registry did not start on {host}");
}

fn opts() -> RegistryOptions {
    RegistryOptions {
        docker_config: Some(PathBuf::from("/nonexistent")),
        ..Default::default()
    }
}

fn load_three(s: &berth_image::ImageService, tag: &str) -> Digest {
    let base = busybox_layer();
    let l2 = gzip(&tar_of(&[E::Dir("a/", 0o755), E::File("a/x", b"x", 0o644)]));
    let l3 = tar_of(&[E::File("a/.wh.x", b"", 0o644), E::File("y", b"y", 0o644)]);
    // diff_ids are of the uncompressed tars; docker_archive computes them from what it gets,
    // so feed it uncompressed and compress nothing here except via a separate import below
    let _ = l2;
    let l2 = tar_of(&[E::Dir("a/", 0o755), E::File("a/x", b"x", 0o644)]);
    s.load(
        &docker_archive(&[base, l2, l3], &[tag], &["sh"])[..],
        &NoProgress,
    )
    .unwrap()[0]
        .id
        .clone()
}

#[test]
fn push_pull_roundtrip_anonymous() {
    let Some(reg) = registry(None) else { return };
    let td = tempfile::tempdir().unwrap();
    let a = svc(&td.path().join("a"), None);
    let id = load_three(&a, "three:1");
    let name = format!("{}/test/three:1", reg.host);
    a.tag("three:1", &name).unwrap();
    let ev = std::sync::Mutex::new(Vec::new());
    let sink = |p: Progress| ev.lock().unwrap().push(p);
    let o = RegistryOptions {
        chunk_size: 256 * 1024,
        ..opts()
    }; // busybox layer goes up in chunks
    let md = a.push(&name, &o, &sink).unwrap();
    // layers loaded uncompressed are pushed gzip-compressed, like docker does
    let m: serde_json::Value = serde_json::from_reader(
        ureq::get(&format!("http://{}/v2/test/three/manifests/1", reg.host))
            .set("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap()
            .into_reader(),
    )
    .unwrap();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    assert!(ev
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Progress::Pushed { .. })));
    // second push: everything exists
    ev.lock().unwrap().clear();
    assert_eq!(a.push(&name, &opts(), &sink).unwrap(), md);
    assert_eq!(
        ev.lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Progress::AlreadyExists { .. }))
            .count(),
        4
    );
    // push to another repo: blobs are mounted across repositories
    let name2 = format!("{}/other/copy:2", reg.host);
    a.tag("three:1", &name2).unwrap();
    ev.lock().unwrap().clear();
    a.push(&name2, &opts(), &sink).unwrap();
    assert!(
        ev.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::Mounted { .. })),
        "{:?}",
        ev.lock().unwrap()
    );

    let b = svc(&td.path().join("b"), None);
    ev.lock().unwrap().clear();
    let rec = b.pull(&name, None, &opts(), &sink).unwrap();
    assert_eq!(rec.id, id, "same image ID after push+pull");
    let i = b.inspect(&name).unwrap();
    assert_eq!(i.repo_tags, vec![name.clone()]);
    assert_eq!(
        i.repo_digests,
        vec![format!("{}/test/three@{md}", reg.host)]
    );
    let evs = ev.lock().unwrap().clone();
    assert!(
        evs.iter()
            .any(|e| matches!(e, Progress::Downloading { .. }))
            || evs
                .iter()
                .filter(|e| matches!(e, Progress::DownloadComplete { .. }))
                .count()
                == 3
    );
    assert!(evs.iter().any(|e| matches!(e, Progress::Done { .. })));
    // by digest
    let byd = b
        .pull(
            &format!("{}/test/three@{md}", reg.host),
            None,
            &opts(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(byd.id, id);
    // the pulled image mounts with the right view
    b.prepare_snapshot("c", Some(&name)).unwrap();
    let m = td.path().join("m");
    std::fs::create_dir(&m).unwrap();
    b.mount("c", &m).unwrap();
    assert!(m.join("y").exists() && !m.join("a/x").exists() && m.join("bin/busybox").exists());
    b.unmount(&m).unwrap();
    // one copy per layer in b too: the pulled (compressed) layer blobs went once unpacked,
    // yet b saves the same layer tars and pushes again (recompressed, as docker does)
    b.slim().unwrap();
    let brec = b.resolve(&name).unwrap();
    assert!(brec.layers.iter().all(|l| !b.content.exists(&l.blob)));
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    a.save(&[name.as_str()], &mut sa).unwrap();
    b.save(&[name.as_str()], &mut sb).unwrap();
    let layer_tars = |t: &[u8]| -> Vec<Digest> {
        let mut v = Vec::new();
        for e in tar::Archive::new(t).entries().unwrap() {
            let mut e = e.unwrap();
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            if e.size() > 4096 || buf.starts_with(b"bin") {
                v.push(Digest::of(&buf));
            }
        }
        v.sort();
        v
    };
    assert_eq!(
        layer_tars(&sa),
        layer_tars(&sb),
        "same layer tars from both roots"
    );
    let name3 = format!("{}/again/three:1", reg.host);
    b.tag(&name, &name3).unwrap();
    b.push(&name3, &opts(), &NoProgress).unwrap();
    let c = svc(&td.path().join("c"), None);
    assert_eq!(c.pull(&name3, None, &opts(), &NoProgress).unwrap().id, id);
    // unknown tag
    let e = b
        .pull(
            &format!("{}/test/three:nope", reg.host),
            None,
            &opts(),
            &NoProgress,
        )
        .unwrap_err();
    assert!(matches!(e, Error::ManifestUnknown { .. }), "{e}");
}

#[test]
fn push_pull_with_basic_auth() {
    let Some(reg) = registry(Some(("berth", "s3cret"))) else {
        return;
    };
    let td = tempfile::tempdir().unwrap();
    let a = svc(&td.path().join("a"), None);
    let id = load_three(&a, "three:1");
    let name = format!("{}/auth/three:1", reg.host);
    a.tag("three:1", &name).unwrap();
    let e = a.push(&name, &opts(), &NoProgress).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let bad = RegistryOptions {
        credentials: Some(Credentials {
            username: "berth".into(),
            password: "wrong".into(),
        }),
        ..opts()
    };
    assert!(matches!(
        a.push(&name, &bad, &NoProgress),
        Err(Error::Unauthorized { .. })
    ));
    // credentials from a docker config.json (auths, base64 user:pass)
    let cfg = td.path().join("config.json");
    use base64::Engine as _;
    let enc = base64::engine::general_purpose::STANDARD.encode("berth:s3cret");
    std::fs::write(
        &cfg,
        format!(r#"{{"auths":{{"{}":{{"auth":"{enc}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let good = RegistryOptions {
        docker_config: Some(cfg),
        ..Default::default()
    };
    a.push(&name, &good, &NoProgress).unwrap();
    let b = svc(&td.path().join("b"), None);
    assert!(matches!(
        b.pull(&name, None, &opts(), &NoProgress),
        Err(Error::Unauthorized { .. })
    ));
    assert_eq!(b.pull(&name, None, &good, &NoProgress).unwrap().id, id);
}

#[test]
fn multi_arch_index_picks_linux_amd64() {
    let Some(reg) = registry(None) else { return };
    let td = tempfile::tempdir().unwrap();
    let a = svc(&td.path().join("a"), None);
    let layer = busybox_layer();
    let mut ids = Vec::new();
    let mut descs = Vec::new();
    for (i, plat) in ["linux/arm64/v8", "linux/amd64", "linux/arm/v7"]
        .iter()
        .enumerate()
    {
        let p = Platform::parse(plat).unwrap();
        let marker = tar_of(&[E::File("arch", plat.as_bytes(), 0o644)]);
        let _ = marker;
        let rec = a
            .import(
                &layer[..],
                Some(&format!("{}/multi/img:p{i}", reg.host)),
                &[format!("LABEL arch={plat}")],
                None,
                Some(&p),
            )
            .unwrap();
        let md = a
            .push(
                &format!("{}/multi/img:p{i}", reg.host),
                &opts(),
                &NoProgress,
            )
            .unwrap();
        let size = a.content.size(&md).unwrap();
        ids.push(rec.id);
        descs.push(serde_json::json!({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":md.to_string(),"size":size,
            "platform":{"os":p.os,"architecture":p.architecture,"variant":p.variant}}));
    }
    let idx = serde_json::to_vec(&serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":descs})).unwrap();
    let r = ureq::put(&format!("http://{}/v2/multi/img/manifests/all", reg.host))
        .set("Content-Type", "application/vnd.oci.image.index.v1+json")
        .send_bytes(&idx)
        .unwrap();
    assert_eq!(r.status(), 201);
    let b = svc(&td.path().join("b"), None);
    let rec = b
        .pull(
            &format!("{}/multi/img:all", reg.host),
            None,
            &opts(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(rec.id, ids[1], "default platform linux/amd64");
    let i = b.inspect(&rec.id.to_string()).unwrap();
    assert_eq!(i.architecture, "amd64");
    assert_eq!(
        i.repo_digests,
        vec![format!("{}/multi/img@{}", reg.host, Digest::of(&idx))],
        "RepoDigests names the index"
    );
    let arm = b
        .pull(
            &format!("{}/multi/img:all", reg.host),
            Some(&Platform::parse("linux/arm/v7").unwrap()),
            &opts(),
            &NoProgress,
        )
        .unwrap();
    assert_eq!(arm.id, ids[2]);
    let e = b
        .pull(
            &format!("{}/multi/img:all", reg.host),
            Some(&Platform::parse("linux/s390x").unwrap()),
            &opts(),
            &NoProgress,
        )
        .unwrap_err();
    assert!(e.to_string().contains("linux/s390x"), "{e}");
}

/// A tiny fake registry serving fixed manifests/blobs; while `break_blobs` is set, blob
/// responses are cut off halfway (Content-Length promises more). With `bearer = Some(basic)`
/// every /v2/ request needs a bearer token from its /token endpoint, which itself demands
/// `Authorization: Basic <basic>`; token requests are recorded in `token_log`.
fn fake_registry_with(
    files: std::collections::HashMap<String, (String, Vec<u8>)>,
    break_blobs: Arc<AtomicBool>,
    bearer: Option<String>,
    token_log: Arc<std::sync::Mutex<Vec<String>>>,
) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = l.local_addr().unwrap().to_string();
    let me = host.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut rd = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            if rd.read_line(&mut line).is_err() {
                continue;
            }
            let mut auth = String::new();
            loop {
                let mut h = String::new();
                if rd.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") {
                        auth = v.trim().to_string();
                    }
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            if let Some(basic) = &bearer {
                if path.starts_with("/token") {
                    token_log.lock().unwrap().push(path.clone());
                    if auth == format!("Basic {basic}") {
                        let body = br#"{"token":"tok123"}"#;
                        let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        let _ = c.write_all(body);
                    } else {
                        let _ = write!(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                    continue;
                }
                if auth != "Bearer tok123" {
                    let _ = write!(
                        c,
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"fake-registry\",scope=\"repository:x/y:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    continue;
                }
            }
            match files.get(&path) {
                Some((ct, body)) => {
                    let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    if path.contains("/blobs/")
                        && break_blobs.load(Ordering::SeqCst)
                        && body.len() > 10000
                    {
                        let _ = c.write_all(&body[..body.len() / 2]);
                    } else {
                        let _ = c.write_all(body);
                    }
                }
                None => {
                    let _ = write!(
                        c,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    host
}

fn fake_registry(
    files: std::collections::HashMap<String, (String, Vec<u8>)>,
    break_blobs: Arc<AtomicBool>,
) -> String {
    fake_registry_with(files, break_blobs, None, Default::default())
}

/// Files for serving image `name` of `s` as repository x/y, tag 1.
fn serve_files(
    s: &berth_image::ImageService,
    name: &str,
) -> std::collections::HashMap<String, (String, Vec<u8>)> {
    let rec = s.resolve(name).unwrap();
    let md = rec.manifest.clone().unwrap();
    let mut files = std::collections::HashMap::new();
    let mb = s.content.read_verified(&md).unwrap();
    files.insert(
        "/v2/x/y/manifests/1".to_string(),
        (
            "application/vnd.oci.image.manifest.v1+json".to_string(),
            mb.clone(),
        ),
    );
    files.insert(
        format!("/v2/x/y/manifests/{md}"),
        ("application/vnd.oci.image.manifest.v1+json".to_string(), mb),
    );
    files.insert(
        format!("/v2/x/y/blobs/{}", rec.id),
        (
            "application/octet-stream".to_string(),
            s.content.read_verified(&rec.id).unwrap(),
        ),
    );
    let chains = berth_image::digest::chain_ids(
        &rec.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    );
    for (l, c) in rec.layers.iter().zip(&chains) {
        // a loaded layer's blob is its tar, maybe dropped and kept as tar-split
        let mut b = Vec::new();
        s.layer_stream(l, c).unwrap().1.read_to_end(&mut b).unwrap();
        assert_eq!(Digest::of(&b), l.blob);
        files.insert(
            format!("/v2/x/y/blobs/{}", l.blob),
            ("application/octet-stream".to_string(), b),
        );
    }
    files
}

#[test]
fn pull_with_bearer_token_auth() {
    use base64::Engine as _;
    let td = tempfile::tempdir().unwrap();
    let a = svc(&td.path().join("a"), None);
    let id = load_three(&a, "three:1");
    let basic = base64::engine::general_purpose::STANDARD.encode("tokuser:tokpass");
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let host = fake_registry_with(
        serve_files(&a, "three:1"),
        Arc::new(AtomicBool::new(false)),
        Some(basic),
        log.clone(),
    );
    let name = format!("{host}/x/y:1");
    let b = svc(&td.path().join("b"), None);
    // anonymous: the token endpoint refuses
    let e = b.pull(&name, None, &opts(), &NoProgress).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let o = RegistryOptions {
        credentials: Some(Credentials {
            username: "tokuser".into(),
            password: "tokpass".into(),
        }),
        ..opts()
    };
    assert_eq!(b.pull(&name, None, &o, &NoProgress).unwrap().id, id);
    let l = log.lock().unwrap().clone();
    assert!(
        l.iter().any(|p| p.contains("service=fake-registry")
            && p.contains("scope=repository%3Ax%2Fy%3Apull")),
        "{l:?}"
    );
}

#[test]
fn interrupted_pull_leaves_nothing_and_retry_succeeds() {
    let td = tempfile::tempdir().unwrap();
    let a = svc(&td.path().join("a"), None);
    let id = load_three(&a, "three:1");
    let rec = a.resolve("three:1").unwrap();
    let files = serve_files(&a, "three:1");
    let brk = Arc::new(AtomicBool::new(true));
    let host = fake_registry(files, brk.clone());
    let b = svc(&td.path().join("b"), None);
    let name = format!("{host}/x/y:1");
    let o = RegistryOptions {
        retries: 2,
        ..opts()
    };
    let e = b.pull(&name, None, &o, &NoProgress).unwrap_err();
    println!("interrupted pull error: {e}");
    assert!(
        matches!(b.resolve(&name), Err(Error::ImageNotFound(_))),
        "no half image"
    );
    assert!(b.list().unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(td.path().join("b/content/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp blobs left: {leftovers:?}");
    for l in &rec.layers {
        if l.size > 10000 {
            assert!(
                !b.content.exists(&l.blob),
                "truncated blob must not be visible"
            );
        }
    }
    brk.store(false, Ordering::SeqCst);
    let got = b.pull(&name, None, &o, &NoProgress).unwrap();
    assert_eq!(got.id, id);
    b.prepare_snapshot("c", Some(&name)).unwrap();
    let _ = Path::new("/");
    let _ = Read::bytes(&b"x"[..]);
}

/// What a [`streaming_registry`] serves at one path: `body`, then `junk` more bytes (a
/// hostile registry sending more than the descriptor says), with or without a
/// Content-Length (without: the body ends when the connection closes).
#[derive(Clone)]
struct Served {
    content_type: &'static str,
    body: Vec<u8>,
    junk: u64,
    content_length: bool,
    /// Close the connection after this many body bytes (a transport error).
    cut_at: Option<usize>,
    /// Opened when this path is requested.
    signal: Option<Gate>,
    /// The reply waits for this gate.
    wait: Option<Gate>,
}

impl Served {
    fn new(content_type: &'static str, body: Vec<u8>) -> Served {
        Served {
            content_type,
            body,
            junk: 0,
            content_length: true,
            cut_at: None,
            signal: None,
            wait: None,
        }
    }
}

/// A one-shot event between the test and its fake registry.
#[derive(Clone, Default)]
struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);
impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
    fn wait(&self) {
        let g = self.0 .0.lock().unwrap();
        let (g, t) = self
            .0
             .1
            .wait_timeout_while(g, std::time::Duration::from_secs(60), |open| !*open)
            .unwrap();
        assert!(*g && !t.timed_out(), "gate not opened within 60s");
    }
}

/// Requests and bytes sent, per path.
type Counts = Arc<std::sync::Mutex<std::collections::HashMap<String, (usize, u64)>>>;

/// A fake registry on loopback that streams what `files` says, one thread per connection,
/// counting requests and the bytes it managed to send per path.
fn streaming_registry(files: std::collections::HashMap<String, Served>) -> (String, Counts) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = l.local_addr().unwrap().to_string();
    let counts: Counts = Default::default();
    let cs = counts.clone();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let files = files.clone();
            let cs = cs.clone();
            std::thread::spawn(move || {
                let mut rd = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                if rd.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if rd.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                cs.lock().unwrap().entry(path.clone()).or_default().0 += 1;
                let Some(f) = files.get(&path) else {
                    let _ = write!(
                        c,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    return;
                };
                if let Some(g) = &f.signal {
                    g.open();
                }
                if let Some(g) = &f.wait {
                    g.wait();
                }
                let mut head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nConnection: close\r\n",
                    f.content_type
                );
                if f.content_length {
                    head.push_str(&format!(
                        "Content-Length: {}\r\n",
                        f.body.len() as u64 + f.junk
                    ));
                }
                head.push_str("\r\n");
                let body = &f.body[..f.cut_at.unwrap_or(f.body.len()).min(f.body.len())];
                if c.write_all(head.as_bytes()).is_err() || c.write_all(body).is_err() {
                    return;
                }
                if f.cut_at.is_some() {
                    cs.lock().unwrap().entry(path).or_default().1 += body.len() as u64;
                    return;
                }
                let mut sent = f.body.len() as u64;
                let chunk = vec![0x5au8; 1 << 20];
                let mut left = f.junk;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if c.write_all(&chunk[..n]).is_err() {
                        break;
                    }
                    sent += n as u64;
                    left -= n as u64;
                }
                cs.lock().unwrap().entry(path).or_default().1 += sent;
            });
        }
    });
    (host, counts)
}

/// An image (one small layer) served by a [`streaming_registry`] as x/y:1, with `junk` bytes
/// after the config blob or after the layer blob. Returns (files, config digest, layer digest).
fn oversized_image(
    junk_after_config: u64,
    junk_after_layer: u64,
    content_length: bool,
) -> (std::collections::HashMap<String, Served>, Digest, Digest) {
    let layer = tar_of(&[E::File("hello", b"hello\n", 0o644)]);
    let ld = Digest::of(&layer);
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [ld.to_string()]},
    }))
    .unwrap();
    let cd = Digest::of(&cfg);
    let man = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd.to_string(), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let mut files = std::collections::HashMap::new();
    files.insert(
        "/v2/x/y/manifests/1".to_string(),
        Served::new("application/vnd.oci.image.manifest.v1+json", man),
    );
    files.insert(
        format!("/v2/x/y/blobs/{cd}"),
        Served {
            junk: junk_after_config,
            content_length,
            ..Served::new("application/octet-stream", cfg)
        },
    );
    files.insert(
        format!("/v2/x/y/blobs/{ld}"),
        Served {
            junk: junk_after_layer,
            content_length,
            ..Served::new("application/octet-stream", layer)
        },
    );
    (files, cd, ld)
}

fn content_names(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("content/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A registry streaming far more than a blob's descriptor says: the download stops at the
/// descriptor's size + 1 byte, fails naming the digest and both sizes, is not retried, and
/// leaves no temp file. Covers the config (plain download), the layer (download unpacked as
/// it arrives), with and without a Content-Length announcing the oversize.
#[test]
fn oversized_blob_download_stops_at_descriptor_size_and_is_not_retried() {
    const JUNK: u64 = 128 << 20;
    for (config_junk, content_length) in [(true, false), (false, false), (false, true)] {
        let (files, cd, ld) = if config_junk {
            oversized_image(JUNK, 0, content_length)
        } else {
            oversized_image(0, JUNK, content_length)
        };
        let (bad, size) = if config_junk {
            (cd.clone(), files[&format!("/v2/x/y/blobs/{cd}")].body.len())
        } else {
            (ld.clone(), files[&format!("/v2/x/y/blobs/{ld}")].body.len())
        };
        let (host, counts) = streaming_registry(files);
        let td = tempfile::tempdir().unwrap();
        let b = svc(&td.path().join("b"), None);
        let case = format!(
            "junk after the {}, Content-Length {content_length}",
            if config_junk { "config" } else { "layer" }
        );
        let t0 = std::time::Instant::now();
        let e = b
            .pull(&format!("{host}/x/y:1"), None, &opts(), &NoProgress)
            .unwrap_err();
        println!("{case}: {e} ({:?})", t0.elapsed());
        match &e {
            Error::SizeMismatch {
                what,
                expected,
                actual,
            } => {
                assert!(
                    what.contains(&bad.to_string()),
                    "{case}: names the digest: {e}"
                );
                assert_eq!(*expected, size as u64, "{case}: {e}");
                assert!(*actual > size as u64, "{case}: {e}");
            }
            other => panic!("{case}: expected a size mismatch, got {other}"),
        }
        let path = format!("/v2/x/y/blobs/{bad}");
        // the sender thread records its total once its write fails or ends
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (requests, sent) = counts
            .lock()
            .unwrap()
            .get(&path)
            .copied()
            .unwrap_or_default();
        assert_eq!(requests, 1, "{case}: a size mismatch is not retried");
        assert!(
            sent < 32 << 20,
            "{case}: the download stopped early, the registry still sent {sent} bytes"
        );
        let left: Vec<String> = content_names(&td.path().join("b"))
            .into_iter()
            .filter(|n| n.starts_with('.') || *n == bad.hex())
            .collect();
        assert!(
            left.is_empty(),
            "{case}: left in the content store: {left:?}"
        );
        assert!(b.list().unwrap().is_empty());
    }
    // a transport error (the connection closes before the announced length) is retried
    let (mut files, _, ld) = oversized_image(0, 0, true);
    let path = format!("/v2/x/y/blobs/{ld}");
    files.get_mut(&path).unwrap().cut_at = Some(100);
    let (host, counts) = streaming_registry(files);
    let td = tempfile::tempdir().unwrap();
    let b = svc(&td.path().join("b"), None);
    let e = b
        .pull(&format!("{host}/x/y:1"), None, &opts(), &NoProgress)
        .unwrap_err();
    assert!(!matches!(e, Error::SizeMismatch { .. }), "{e}");
    assert_eq!(
        counts.lock().unwrap()[&path].0,
        opts().retries,
        "transport errors are retried: {e}"
    );
}

/// Image `repo`:1 with these (uncompressed) layers, as a fake registry serves it; returns the
/// files and the paths of its config and layer blobs.
fn image_files(
    repo: &str,
    layers: &[Vec<u8>],
) -> (
    std::collections::HashMap<String, Served>,
    String,
    Vec<String>,
) {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = Digest::of(&cfg);
    let man = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd.to_string(), "size": cfg.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": Digest::of(l).to_string(), "size": l.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let mut files = std::collections::HashMap::new();
    files.insert(
        format!("/v2/{repo}/manifests/1"),
        Served::new("application/vnd.oci.image.manifest.v1+json", man),
    );
    let cpath = format!("/v2/{repo}/blobs/{cd}");
    files.insert(cpath.clone(), Served::new("application/octet-stream", cfg));
    let mut lpaths = Vec::new();
    for l in layers {
        let p = format!("/v2/{repo}/blobs/{}", Digest::of(l));
        files.insert(
            p.clone(),
            Served::new("application/octet-stream", l.clone()),
        );
        lpaths.push(p);
    }
    (files, cpath, lpaths)
}

fn blob_set(s: &berth_image::ImageService) -> std::collections::BTreeSet<Digest> {
    s.content.list().unwrap().into_iter().collect()
}

/// A pull that fails halfway leaves no blob it wrote; two pulls sharing a layer at the same
/// time do not delete each other's blobs: (1) A downloads the shared base and fails while B,
/// which found the base there, is still pulling: B's image is complete; (2) both fail, A
/// first: the base A wrote goes when B, the last one holding it, fails.
#[test]
fn failed_pulls_leave_no_blob_and_spare_each_others() {
    let base = busybox_layer();
    let layer = |n: &str| tar_of(&[E::File(n, n.as_bytes(), 0o644)]);
    let serial = RegistryOptions {
        parallel: 1,
        ..opts()
    };
    for both_fail in [false, true] {
        // A pulls x/a (base, then a layer the registry sends too much of once B asks for
        // its second layer); B pulls x/b (base, then a second layer held back until A failed).
        let (mut files, _, al) = image_files("x/a", &[base.clone(), layer("a")]);
        let (fb, bc, bl) = image_files("x/b", &[base.clone(), layer("b")]);
        files.extend(fb);
        let (a_waits, b_asked, a_failed) = (Gate::default(), Gate::default(), Gate::default());
        let a_bad = files.get_mut(&al[1]).unwrap();
        a_bad.junk = 1 << 20;
        a_bad.signal = Some(a_waits.clone());
        a_bad.wait = Some(b_asked.clone());
        let b_second = files.get_mut(&bl[1]).unwrap();
        b_second.signal = Some(b_asked.clone());
        b_second.wait = Some(a_failed.clone());
        if both_fail {
            b_second.junk = 1 << 20;
        }
        let (host, _) = streaming_registry(files);
        let td = tempfile::tempdir().unwrap();
        let s = svc(&td.path().join("s"), None);
        let case = if both_fail {
            "both fail"
        } else {
            "A fails, B succeeds"
        };
        std::thread::scope(|sc| {
            let a = sc.spawn(|| s.pull(&format!("{host}/x/a:1"), None, &serial, &NoProgress));
            a_waits.wait(); // A has the base and is waiting for its second layer
            let b = sc.spawn(|| s.pull(&format!("{host}/x/b:1"), None, &serial, &NoProgress));
            let ea = a.join().unwrap().unwrap_err();
            assert!(matches!(ea, Error::SizeMismatch { .. }), "{case}: {ea}");
            assert!(
                s.content.exists(&Digest::of(&base)),
                "{case}: the base A wrote stays while B holds it"
            );
            a_failed.open();
            let rb = b.join().unwrap();
            if both_fail {
                let eb = rb.unwrap_err();
                assert!(matches!(eb, Error::SizeMismatch { .. }), "{case}: {eb}");
                assert_eq!(blob_set(&s), Default::default(), "{case}: blobs left");
            } else {
                let rec = rb.unwrap();
                // B's layer blobs went once unpacked (tar-split): its config and manifest stay
                s.slim().unwrap();
                let mut want: std::collections::BTreeSet<Digest> = Default::default();
                want.insert(rec.id.clone());
                want.insert(rec.manifest.clone().unwrap());
                assert_eq!(bc.rsplit('/').next().unwrap(), rec.id.to_string());
                assert_eq!(blob_set(&s), want, "{case}: exactly B's blobs");
                s.prepare_snapshot("c", Some(&format!("{host}/x/b:1")))
                    .unwrap();
                s.remove_snapshot("c").unwrap();
            }
        });
        assert!(
            content_names(&td.path().join("s"))
                .iter()
                .all(|n| !n.starts_with('.')),
            "{case}: temp files left"
        );
    }
}
