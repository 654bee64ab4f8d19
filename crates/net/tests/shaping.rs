//! Bandwidth shaping against the kernel, as root, in network namespaces this test makes: a
//! bridge and a veth pair into a "container" namespace, then the host veth shaped both ways
//! (tbf on its egress, its ingress redirected to an ifb with tbf), checked with `tc` (an
//! independent reader) and by moving data out of the container; changed; removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_net::bandwidth::{EGRESS_KEY, INGRESS_KEY};
use berth_net::tc::{ifb_name, shape, unshape_ifb};
use berth_net::{Bridge, Limits, Netlink, Subnet, VethConfig};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn have_tc() -> bool {
    Command::new("tc")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn enter_new_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let mut nl = Netlink::new().unwrap();
    let lo = nl.link("lo").unwrap().unwrap();
    nl.set_up(lo.index).unwrap();
}

/// `tc qdisc show` of this thread's namespace (a forked child inherits it).
fn tc(args: &[&str]) -> String {
    let o = Command::new("tc").args(args).output().unwrap();
    assert!(o.status.success(), "tc {args:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

fn limits(pairs: &[(&str, &str)]) -> Limits {
    Limits::from_annotations(|k| pairs.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v)).unwrap()
}

#[test]
fn shape_both_directions_change_and_remove() {
    if !is_root() || !have_tc() {
        eprintln!("skipped: needs root and tc");
        return;
    }
    std::thread::spawn(host_side).join().unwrap();
}

fn host_side() {
    enter_new_netns();
    let mut nl = Netlink::new().unwrap();
    let br = Bridge {
        name: "bt-shape0".into(),
        subnet: "10.98.0.0/24".parse::<Subnet>().unwrap(),
        gateway: Ipv4Addr::new(10, 98, 0, 1),
        mtu: 1500,
        ipv6: None,
    };
    let st = br.ensure(&mut nl).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let container = std::thread::spawn(move || {
        enter_new_netns();
        tx.send(File::open("/proc/thread-self/ns/net").unwrap())
            .unwrap();
        // Send to the host for 1.5 s when told; return the bytes written.
        go_rx.recv().unwrap();
        let mut s =
            TcpStream::connect(SocketAddrV4::new(Ipv4Addr::new(10, 98, 0, 1), 7777)).unwrap();
        let buf = vec![0u8; 64 * 1024];
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            s.write_all(&buf).unwrap();
        }
    });
    let ns = rx.recv().unwrap();
    let veth = VethConfig {
        host_name: "vethshape0test".into(),
        ip: Ipv4Addr::new(10, 98, 0, 2),
        ip6: None,
    };
    br.attach(&mut nl, st.index, &veth, ns.as_fd()).unwrap();

    // Both directions.
    let l = limits(&[(INGRESS_KEY, "20M"), (EGRESS_KEY, "8M")]);
    shape(&mut nl, &veth.host_name, &l).unwrap();
    shape(&mut nl, &veth.host_name, &l).unwrap(); // idempotent
    let ifb = ifb_name(&veth.host_name);
    let q = tc(&["qdisc", "show", "dev", &veth.host_name]);
    assert!(q.contains("qdisc tbf") && q.contains("rate 20Mbit"), "{q}");
    assert!(q.contains("qdisc ingress ffff:"), "{q}");
    let f = tc(&["filter", "show", "dev", &veth.host_name, "ingress"]);
    assert!(
        f.contains(&format!("Egress Redirect to device {ifb}")),
        "{f}"
    );
    assert_eq!(
        f.matches("mirred").count(),
        1,
        "one filter after two applies: {f}"
    );
    let qi = tc(&["qdisc", "show", "dev", &ifb]);
    assert!(
        qi.contains("qdisc tbf") && qi.contains("rate 8Mbit"),
        "{qi}"
    );

    // Data out of the container runs at the egress rate (8 Mbit/s = 1 MB/s), ±20 %.
    let lis = TcpListener::bind("10.98.0.1:7777").unwrap();
    go_tx.send(()).unwrap();
    let (mut c, _) = lis.accept().unwrap();
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf).unwrap() {
            0 => break,
            k => n += k as u64,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    container.join().unwrap();
    let mbit = n as f64 * 8.0 / secs / 1e6;
    assert!(
        (6.4..=9.6).contains(&mbit),
        "egress at {mbit:.2} Mbit/s, want 8 ±20 %"
    );

    // Changed: no ingress limit, another egress rate (the same ifb, the filter kept).
    shape(&mut nl, &veth.host_name, &limits(&[(EGRESS_KEY, "1G")])).unwrap();
    let q = tc(&["qdisc", "show", "dev", &veth.host_name]);
    assert!(!q.contains("tbf"), "{q}");
    let qi = tc(&["qdisc", "show", "dev", &ifb]);
    assert!(qi.contains("rate 1Gbit"), "{qi}");

    // Lifted: no ingress qdisc, no ifb.
    shape(&mut nl, &veth.host_name, &Limits::default()).unwrap();
    let q = tc(&["qdisc", "show", "dev", &veth.host_name]);
    assert!(!q.contains("tbf") && !q.contains("ingress"), "{q}");
    assert!(nl.link(&ifb).unwrap().is_none());

    // Removal with the veth: the ifb goes by name, only if it is an ifb.
    shape(&mut nl, &veth.host_name, &limits(&[(EGRESS_KEY, "5M")])).unwrap();
    assert!(nl.link(&ifb).unwrap().is_some());
    br.detach(&mut nl, Some(st.index), &veth.host_name).unwrap();
    assert!(unshape_ifb(&mut nl, &veth.host_name).unwrap());
    assert!(!unshape_ifb(&mut nl, &veth.host_name).unwrap());
    assert!(nl.link(&ifb).unwrap().is_none());
    let err = shape(&mut nl, &veth.host_name, &limits(&[(EGRESS_KEY, "5M")])).unwrap_err();
    assert!(err.to_string().contains("no such device"), "{err}");
    br.delete(&mut nl).unwrap();
}
