//! The embedded resolver as a container uses it (root): a real berth-monitor (no berthd at
//! all, as during a berthd restart) runs a busybox container in a network namespace made
//! here; the container's `nslookup` asks 127.0.0.11 for a name of its network (answered from
//! the network's DNS file) and for an outside name (forwarded to a fake upstream on the
//! host's loopback).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use berth_monitor_core::proto::{DnsConfig, Mode, MonitorConfig, CTL_CREATED};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MONITOR: &str = env!("CARGO_BIN_EXE_berth-monitor");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A new network namespace with its loopback up, held by the returned fd only.
fn new_netns() -> File {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare of this thread's network namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            // SAFETY: an ioctl socket and SIOC[GS]IFFLAGS on a zeroed ifreq naming "lo".
            unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
                assert!(fd >= 0);
                let mut ifr: libc::ifreq = std::mem::zeroed();
                ifr.ifr_name[0] = b'l' as libc::c_char;
                ifr.ifr_name[1] = b'o' as libc::c_char;
                assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr), 0);
                ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                assert_eq!(libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr), 0);
                libc::close(fd);
            }
            File::open("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap()
    })
}

/// A fake upstream on 127.0.0.1: `outside.test.` A is 192.0.2.1, anything else NXDOMAIN.
fn fake_upstream() -> std::net::SocketAddr {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = u.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok((n, from)) = u.recv_from(&mut b) {
            let Ok(m) = Message::from_vec(&b[..n]) else {
                continue;
            };
            let q = m.queries()[0].clone();
            let mut r = Message::new();
            r.set_id(m.id())
                .set_message_type(MessageType::Response)
                .add_query(q.clone());
            if q.name().to_ascii() == "outside.test." && q.query_type() == RecordType::A {
                let a = RData::A(A(Ipv4Addr::new(192, 0, 2, 1)));
                r.add_answer(Record::from_rdata(q.name().clone(), 60, a));
            } else if q.name().to_ascii() != "outside.test." {
                r.set_response_code(ResponseCode::NXDomain);
            }
            let _ = u.send_to(&r.to_vec().unwrap(), from);
        }
    });
    addr
}

fn rootfs(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is required");
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    for a in ["sh", "nslookup", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
}

#[test]
fn a_container_resolves_through_its_monitor() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let d = tempfile::Builder::new()
        .prefix("berth-mon-dns-")
        .tempdir()
        .unwrap();
    let dir = d.path();
    rootfs(&dir.join("bundle/rootfs"));
    let ns = new_netns();
    let mut spec = berth_runtime::spec::default_spec(false);
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "nslookup web 127.0.0.11; nslookup Front. 127.0.0.11; nslookup outside.test 127.0.0.11"
    ]);
    let ns_path = format!("/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
    for n in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = ns_path.clone().into();
        }
    }
    std::fs::write(dir.join("bundle/config.json"), spec.to_string()).unwrap();
    std::fs::create_dir_all(dir.join("dns")).unwrap();
    std::fs::write(
        dir.join("dns/net1.json"),
        r#"[{"name":"web","aliases":["front"],"ipv4":"10.89.0.2"}]"#,
    )
    .unwrap();
    let id = format!("mondns{}", std::process::id());
    let cfg = MonitorConfig {
        mode: Mode::Container,
        id: id.clone(),
        runtime_root: dir.join("state"),
        bundle: dir.join("bundle"),
        process: None,
        tty: false,
        open_stdin: false,
        stdin_once: false,
        attach_socket: dir.join("attach.sock"),
        log_path: Some(dir.join("log.json")),
        log_max_size: 0,
        log_max_file: 1,
        exit_file: dir.join("exit.json"),
        initial_size: None,
        monitor_log: Some(dir.join("monitor.log")),
        cleanup_delay_ms: 0,
        dns: Some(DnsConfig {
            dir: dir.join("dns"),
            networks: vec!["net1".into()],
            networks_file: None,
            upstreams: vec![fake_upstream()],
        }),
    };
    std::fs::write(dir.join("monitor.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let st = Command::new(MONITOR)
        .arg(dir.join("monitor.json"))
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .status()
        .unwrap();
    assert!(st.success(), "berth-monitor did not detach");
    let mut line = String::new();
    BufReader::new(&ours).read_line(&mut line).unwrap();
    assert!(
        line.starts_with(CTL_CREATED),
        "{line} {}",
        std::fs::read_to_string(dir.join("monitor.log")).unwrap_or_default()
    );
    berth_runtime::Runtime::new(dir.join("state"))
        .release(&id)
        .unwrap();
    (&ours).write_all(b"go\n").unwrap();
    let t = Instant::now();
    while !dir.join("exit.json").exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "no exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    for l in std::fs::read_to_string(dir.join("log.json"))
        .unwrap()
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        out.push_str(v["log"].as_str().unwrap());
    }
    let web = out
        .split("Name:")
        .filter(|s| s.contains("10.89.0.2"))
        .count();
    assert_eq!(
        web, 2,
        "web and its alias (any case) from the network's file:\n{out}"
    );
    assert!(out.contains("192.0.2.1"), "outside name forwarded:\n{out}");
    // The monitor cleans up after the exit (its flock is released once it is gone).
    let t = Instant::now();
    while dir.join("state").join(&id).exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "runtime state left");
        std::thread::sleep(Duration::from_millis(50));
    }
}
