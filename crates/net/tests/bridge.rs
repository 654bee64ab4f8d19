//! The bridge driver against the kernel, as root, in network namespaces this test makes (the
//! host's interfaces, routes and nftables are never touched): a bridge, a veth pair into a
//! "container" namespace, the nftables table with a port published on 127.0.0.1, the port's
//! reservation, and that removal leaves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use berth_net::bridge::CONTAINER_IFNAME;
use berth_net::{
    mac_for, reserve, Bridge, Firewall, Netlink, PortMapping, Protocol, Subnet, VethConfig,
};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn have_nft() -> bool {
    std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Move the calling thread into a new network namespace with loopback up.
fn enter_new_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let mut nl = Netlink::new().unwrap();
    let lo = nl.link("lo").unwrap().unwrap();
    nl.set_up(lo.index).unwrap();
}

/// A new namespace, held by the returned fd, and a thread in it running `f`.
fn netns_with<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (File, std::thread::JoinHandle<T>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        enter_new_netns();
        tx.send(File::open("/proc/thread-self/ns/net").unwrap())
            .unwrap();
        f()
    });
    (rx.recv().unwrap(), h)
}

#[test]
fn bridge_veth_nat_and_published_port() {
    if !is_root() || !have_nft() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    // This test's thread is its "host".
    std::thread::spawn(host_side).join().unwrap();
}

fn host_side() {
    enter_new_netns();
    let subnet: Subnet = "10.99.0.0/24".parse().unwrap();
    let gw = Ipv4Addr::new(10, 99, 0, 1);
    let ip = Ipv4Addr::new(10, 99, 0, 2);
    let mut nl = Netlink::new().unwrap();
    let mtu = Bridge::uplink_mtu(&mut nl).unwrap();
    assert_eq!(mtu, berth_net::bridge::DEFAULT_MTU, "no default route here");
    let br = Bridge {
        name: "bt-test0".into(),
        subnet,
        gateway: gw,
        mtu: 1400,
        ipv6: None,
    };
    let st = br.ensure(&mut nl).unwrap();
    assert!(st.created);
    let again = br.ensure(&mut nl).unwrap();
    assert_eq!(again.index, st.index);
    assert!(!again.created);
    assert_eq!(
        Bridge::existing_address(&mut nl, "bt-test0").unwrap(),
        Some((gw, 24))
    );
    let other = Bridge {
        gateway: Ipv4Addr::new(10, 99, 0, 9),
        ..br.clone()
    };
    let e = other.ensure(&mut nl).unwrap_err();
    assert!(e.to_string().contains("has address 10.99.0.1/24"), "{e}");

    // The "container": a namespace serving one TCP connection on its eth0 address.
    let (ctr_ns, ctr) = netns_with(move || {
        let l = loop {
            // (The address is there once the host side attached the veth.)
            match TcpListener::bind(SocketAddrV4::new(ip, 80)) {
                Ok(l) => break l,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let mut nl = Netlink::new().unwrap();
        let eth0 = nl.link(CONTAINER_IFNAME).unwrap().unwrap();
        let mut served = Vec::new();
        for _ in 0..2 {
            let (mut c, peer) = l.accept().unwrap();
            c.write_all(b"hello from the container").unwrap();
            served.push(peer.ip());
        }
        (eth0, served)
    });
    let veth = VethConfig {
        host_name: "vtest0".into(),
        ip,
        ip6: None,
    };
    br.attach(&mut nl, st.index, &veth, ctr_ns.as_fd()).unwrap();
    let host_end = nl.link("vtest0").unwrap().unwrap();
    assert_eq!(host_end.master, Some(st.index));
    assert_eq!(host_end.mtu, 1400);
    assert!(nl.link(CONTAINER_IFNAME).unwrap().is_none());
    let mut cnl = Netlink::in_netns(ctr_ns.as_fd()).unwrap();
    let eth0 = cnl.link(CONTAINER_IFNAME).unwrap().unwrap();
    assert_eq!(cnl.ipv4_addresses(eth0.index).unwrap(), vec![(ip, 24)]);
    assert_eq!(cnl.default_route_link().unwrap(), Some(eth0.index));

    // Straight to the container's address over the bridge.
    assert_eq!(fetch(SocketAddrV4::new(ip, 80)), "hello from the container");

    // Published on 127.0.0.1 (DNAT in output, route_localnet, masquerade).
    let fw = Firewall::new("bt-test0", subnet);
    fw.install().unwrap();
    assert!(fw.exists().unwrap());
    let (m, held) = reserve(&PortMapping {
        proto: Protocol::Tcp,
        host_ip: Ipv4Addr::LOCALHOST,
        host_port: 0,
        container_port: 80,
    })
    .unwrap();
    assert!(reserve(&m).is_err(), "the port is held");
    fw.publish("c1", ip, &[m]).unwrap();
    assert_eq!(fw.rule_handles("c1").unwrap().len(), 1);
    assert_eq!(fw.rule_handles("c2").unwrap().len(), 0);
    assert_eq!(
        fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, m.host_port)),
        "hello from the container"
    );
    let (eth0_seen, served) = ctr.join().unwrap();
    assert_eq!(eth0_seen.index, eth0.index);
    // The direct connection came from the gateway; the loopback one masqueraded to it.
    assert_eq!(served, vec![std::net::IpAddr::V4(gw); 2]);
    let mac = cnl_mac(&ctr_ns);
    assert_eq!(mac, mac_for(ip).to_string());

    // Removal leaves nothing.
    assert_eq!(fw.unpublish("c1").unwrap(), 1);
    assert_eq!(fw.rule_handles("c1").unwrap().len(), 0);
    drop(held);
    assert!(br.detach(&mut nl, Some(st.index), "vtest0").unwrap());
    assert!(nl.link("vtest0").unwrap().is_none());
    assert!(!br.detach(&mut nl, Some(st.index), "vtest0").unwrap());
    fw.remove().unwrap();
    assert!(!fw.exists().unwrap());
    fw.remove().unwrap();
    assert!(br.delete(&mut nl).unwrap());
    assert!(nl.link("bt-test0").unwrap().is_none());
}

/// (Retried while the "container" thread has not bound its listener yet.)
fn fetch(addr: SocketAddrV4) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5)) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => panic!("connect {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

/// eth0's MAC as the container's sysfs... read through a thread in its namespace.
fn cnl_mac(ns: &File) -> String {
    let fd = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        // /sys shows the mounter's namespace: ask the kernel with SIOCGIFHWADDR instead.
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // SAFETY: ifreq is plain data; zeroed is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, c) in ifr.ifr_name.iter_mut().zip(b"eth0\0") {
            *d = *c as libc::c_char;
        }
        // SAFETY: SIOCGIFHWADDR fills the ifreq we own.
        let r = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SIOCGIFHWADDR,
                &mut ifr,
            )
        };
        assert_eq!(r, 0);
        // SAFETY: SIOCGIFHWADDR set the ifru_hwaddr member.
        let data = unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_data };
        data[..6]
            .iter()
            .map(|b| format!("{:02x}", *b as u8))
            .collect::<Vec<_>>()
            .join(":")
    })
    .join()
    .unwrap()
}

#[test]
fn ipv6_bridge_veth_and_table() {
    if !is_root() || !have_nft() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    if std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|s| s.trim() != "0")
    {
        eprintln!("skipped: IPv6 disabled on this host");
        return;
    }
    std::thread::spawn(host_side6).join().unwrap();
}

fn host_side6() {
    enter_new_netns();
    let subnet6: Subnet = "fd6b:beef:1::/64".parse().unwrap();
    let gw6: std::net::Ipv6Addr = "fd6b:beef:1::1".parse().unwrap();
    let ip6: std::net::Ipv6Addr = "fd6b:beef:1::2".parse().unwrap();
    let mut nl = Netlink::new().unwrap();
    let br = Bridge {
        name: "bt-test6".into(),
        subnet: "10.97.0.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 97, 0, 1),
        mtu: 1500,
        ipv6: Some((subnet6, gw6)),
    };
    let st = br.ensure(&mut nl).unwrap();
    assert!(nl.ipv6_addresses(st.index).unwrap().contains(&(gw6, 64)));
    // Idempotent: the address is not added twice.
    br.ensure(&mut nl).unwrap();

    let (go, attached) = std::sync::mpsc::channel::<()>();
    let (ctr_ns, ctr) = netns_with(move || {
        attached.recv().unwrap();
        // Bound at once, no retry: a tentative address (DAD under way) could not be bound.
        let l = TcpListener::bind(std::net::SocketAddrV6::new(ip6, 80, 0, 0)).unwrap();
        let (mut c, peer) = l.accept().unwrap();
        c.write_all(b"hello over ipv6").unwrap();
        peer.ip()
    });
    let veth = VethConfig {
        host_name: "vtest6".into(),
        ip: Ipv4Addr::new(10, 97, 0, 2),
        ip6: Some(ip6),
    };
    br.attach(&mut nl, st.index, &veth, ctr_ns.as_fd()).unwrap();
    go.send(()).unwrap();
    let mut cnl = Netlink::in_netns(ctr_ns.as_fd()).unwrap();
    let eth0 = cnl.link(CONTAINER_IFNAME).unwrap().unwrap();
    assert!(cnl.ipv6_addresses(eth0.index).unwrap().contains(&(ip6, 64)));
    assert!(cnl.has_default_route6().unwrap());

    let to = std::net::SocketAddr::from((ip6, 80));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut c = loop {
        match TcpStream::connect_timeout(&to, Duration::from_secs(5)) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => panic!("connect {to}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello over ipv6");
    assert_eq!(ctr.join().unwrap(), std::net::IpAddr::V6(gw6));

    let fw = Firewall::new("bt-test6", br.subnet).ipv6(Some(subnet6));
    fw.install().unwrap();
    assert!(fw.exists().unwrap() && fw.exists6().unwrap());
    fw.remove().unwrap();
    assert!(!fw.exists6().unwrap());
    assert!(br.detach(&mut nl, Some(st.index), "vtest6").unwrap());
    assert!(br.delete(&mut nl).unwrap());
}
