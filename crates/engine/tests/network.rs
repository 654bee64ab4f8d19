//! The default bridge network, as root on this host: each test's engine has a bridge of its
//! own (`bt<pid><n>`), and all traffic goes to loopback or to the test's own containers.
//! Two containers reach each other by address, a busybox httpd is fetched through a port
//! published on 127.0.0.1 and through the gateway (hairpin), `-P` picks ports, a taken port is
//! a clean failure, a restarted engine keeps a running container reachable, and removal
//! leaves no veth, rule or address behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use berth_net::{Firewall, Netlink, Subnet};
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && nft) {
        eprintln!("skipped: needs root and nft (apt-get install nftables)");
    }
    root && nft
}

fn bridge_name(n: u32) -> String {
    format!("bt{}x{n}", std::process::id())
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-berth > /www/index.html && exec httpd -f -p 80 -h /www";

fn inspect(env: &Env, id: &str) -> Value {
    env.engine.container_inspect(id, false).unwrap()
}

/// GET / from `addr` (retried while the server comes up): the body.
fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = TcpStream::connect(addr).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            Ok(s)
        });
        match r {
            Ok(s) if s.contains("200") => return s,
            other if Instant::now() > deadline => panic!("GET {addr}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn veth_of(id: &str) -> String {
    format!("veth{}", &id[..11])
}

fn link_exists(name: &str) -> bool {
    Netlink::new().unwrap().link(name).unwrap().is_some()
}

#[test]
fn bridge_ping_publish_hairpin_conflict_and_cleanup() {
    if !usable() {
        return;
    }
    let br = bridge_name(1);
    let env = Env::with_bridge(Some(br.clone()));
    let web = env.create(json!({
        "Cmd": ["sh", "-c", HTTPD],
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": ""},
            {"HostIp": "", "HostPort": ""}
        ]}},
    }));
    env.engine.container_start(&web).unwrap();
    let v = inspect(&env, &web);
    assert_eq!(v["HostConfig"]["NetworkMode"], "bridge");
    let net = &v["NetworkSettings"]["Networks"]["bridge"];
    let ip = net["IPAddress"].as_str().unwrap().to_string();
    let gw = net["Gateway"].as_str().unwrap().to_string();
    let prefix = net["IPPrefixLen"].as_u64().unwrap();
    let subnet = Subnet::containing(ip.parse().unwrap(), prefix as u8).unwrap();
    assert!(subnet.contains(gw.parse().unwrap()));
    assert_ne!(ip, gw);
    assert_eq!(v["NetworkSettings"]["IPAddress"], ip.as_str());
    let mac = net["MacAddress"].as_str().unwrap();
    assert!(mac.starts_with("02:42:"), "{mac}");
    assert_eq!(net["NetworkID"].as_str().unwrap().len(), 64);
    assert_eq!(net["EndpointID"].as_str().unwrap().len(), 64);
    let ports = &v["NetworkSettings"]["Ports"]["80/tcp"];
    assert_eq!(ports.as_array().unwrap().len(), 2, "{ports}");
    assert_eq!(ports[0]["HostIp"], "127.0.0.1");
    assert_eq!(ports[1]["HostIp"], "0.0.0.0");
    let lport = ports[0]["HostPort"].as_str().unwrap().to_string();
    let aport = ports[1]["HostPort"].as_str().unwrap().to_string();
    assert!(link_exists(&veth_of(&web)));

    // The host, through 127.0.0.1 (DNAT in output, no proxy).
    assert!(http_get(&format!("127.0.0.1:{lport}")).contains("hello-berth"));

    // Another container: ping and fetch by address on the bridge; hairpin through the host's
    // (gateway) address and the port published on every host address.
    let (code, out, err) = env.run(json!({"Cmd": ["sh", "-c", format!(
        "ping -c 1 -W 5 {ip} >/dev/null && wget -q -O - http://{ip}/ && wget -q -O - http://{gw}:{aport}/ && cat /etc/hosts | tail -n 1"
    )]}));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("hello-berth").count(), 2, "{out}");
    // Its /etc/hosts names its own bridge address.
    let own = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(subnet.contains(own.parse().unwrap()), "{out}");

    // Summary (docker ps) shows the ports.
    let list = env
        .engine
        .container_list(&berth_engine::ListOptions::default())
        .unwrap();
    let me = list.iter().find(|c| c["Id"] == web.as_str()).unwrap();
    assert_eq!(me["Ports"].as_array().unwrap().len(), 2, "{me}");

    // A taken host port: a clean failure, nothing left half-set.
    let taken = env.create(json!({
        "Cmd": ["sleep", "60"],
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": lport}]}},
    }));
    let e = env.engine.container_start(&taken).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "Bind for 127.0.0.1:{lport} failed: port is already allocated"
        )),
        "{e}"
    );
    assert!(!link_exists(&veth_of(&taken)));
    assert_ne!(inspect(&env, &taken)["State"]["Status"], "running");

    // -P: every exposed port on a free host port.
    let all = env.create(json!({
        "Cmd": ["sleep", "60"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "HostConfig": {"PublishAllPorts": true},
    }));
    env.engine.container_start(&all).unwrap();
    let p = inspect(&env, &all)["NetworkSettings"]["Ports"].clone();
    for k in ["80/tcp", "53/udp"] {
        let port: u16 = p[k][0]["HostPort"].as_str().unwrap().parse().unwrap();
        assert!(port > 0, "{p}");
        assert_eq!(p[k][0]["HostIp"], "0.0.0.0");
    }

    // Removal leaves nothing: no veth, no rule, no address, no endpoint file.
    let fw = Firewall::new(&br, subnet);
    assert_eq!(fw.rule_handles(&web).unwrap().len(), 2);
    for id in [&web, &taken, &all] {
        env.engine.container_remove(id, true, false).unwrap();
    }
    // (The exit path disconnects: give the watcher a moment.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let eps = env.root.join("network/endpoints");
    // (The endpoint file goes last in a disconnect.)
    while std::fs::read_dir(&eps).unwrap().count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!link_exists(&veth_of(&web)));
    assert!(!link_exists(&veth_of(&all)));
    assert!(fw.rule_handles(&web).unwrap().is_empty());
    assert!(fw.rule_handles(&all).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&eps).unwrap().count(), 0);
    // (Addresses reach the IPAM file 20 ms after a change, off the requests' path.)
    let on_disk = || {
        berth_net::IpamStore::open(env.root.join("network/ipam"))
            .unwrap()
            .networks()
            .map(|(_, n)| n.allocated().count())
            .sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while on_disk() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(on_disk(), 0);
    // The port is free again.
    drop(TcpStream::connect(format!("127.0.0.1:{lport}")).map(drop));
    let l = std::net::TcpListener::bind(format!("127.0.0.1:{lport}")).unwrap();
    drop(l);

    // No container runs: shutting down removes the bridge and the table.
    env.engine.shutdown();
    assert!(!link_exists(&br));
    assert!(!fw.exists().unwrap());
}

#[test]
fn restarted_engine_keeps_a_running_container_reachable() {
    if !usable() {
        return;
    }
    let br = bridge_name(2);
    let mut env = Env::with_bridge(Some(br.clone()));
    let web = env.create(json!({
        "Cmd": ["sh", "-c", HTTPD],
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1"}]}},
    }));
    env.engine.container_start(&web).unwrap();
    let v = inspect(&env, &web);
    let port = v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .to_string();
    let ip = v["NetworkSettings"]["Networks"]["bridge"]["IPAddress"].clone();
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-berth"));
    // A second engine cannot take the same bridge.
    let other = tempfile::tempdir_in("/var/tmp").unwrap();
    let e = berth_engine::Engine::open(berth_engine::EngineConfig {
        root: other.path().join("root"),
        exec_root: other.path().join("run"),
        monitor_path: Some(monitor_bin()),
        exec_root_tmpfs: true,
        bridge: Some(br.clone()),
        ..Default::default()
    })
    .err()
    .expect("a second engine on the same bridge");
    assert!(
        e.to_string().contains("in use by another berth daemon"),
        "{e}"
    );
    // ...and leaves no tmpfs it mounted on its exec root.
    let run = other.path().join("run");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let left = mounts.lines().any(|l| l.split(' ').nth(1) == run.to_str());
    let _ = nix::mount::umount2(&run, nix::mount::MntFlags::MNT_DETACH);
    assert!(!left, "the refused engine left its exec-root tmpfs mounted");

    // Shut down with the container running: everything stays; the next engine adopts it.
    env.engine.shutdown();
    assert!(link_exists(&br));
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-berth"));
    env.reopen();
    let v = inspect(&env, &web);
    assert_eq!(v["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], ip);
    assert_eq!(
        v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.as_str()
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("hello-berth"));
    // Its port is held again.
    assert!(std::net::TcpListener::bind(format!("127.0.0.1:{port}")).is_err());
    env.engine.container_remove(&web, true, false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while link_exists(&veth_of(&web)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!link_exists(&veth_of(&web)));
    env.engine.shutdown();
    assert!(!link_exists(&br));
}
