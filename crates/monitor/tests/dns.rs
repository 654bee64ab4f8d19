//! The embedded resolver in a network namespace made here (root): names, aliases, case and
//! scope from the networks' DNS files, a file change seen at once, AAAA, TCP, and unknown
//! names forwarded (from the host's namespace) to a fake upstream on loopback — never a real
//! outside address.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use berth_monitor_core::dns::{Resolver, LISTEN};
use berth_monitor_core::proto::DnsConfig;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run `f` on a thread that joined `ns` (sockets it makes live there).
fn in_ns<T: Send>(ns: &File, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsRawFd;
    let fd = ns.as_raw_fd();
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a namespace fd we hold; this thread only.
            assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0);
            f()
        })
        .join()
        .unwrap()
    })
}

/// A new network namespace with its loopback up, held by the returned fd only (nothing
/// mounted: it goes when the test ends).
fn new_netns() -> File {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare of this thread's network namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            lo_up();
            File::open("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap()
    })
}

fn lo_up() {
    // SAFETY: an ioctl socket and SIOC[GS]IFFLAGS on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr), 0);
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr), 0);
        libc::close(fd);
    }
}

fn write_file(p: &Path, s: &str) {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, s).unwrap();
    std::fs::rename(&tmp, p).unwrap();
}

/// A fake upstream on 127.0.0.1 (UDP and TCP on one port): `outside.test.` is 192.0.2.1,
/// anything else NXDOMAIN; it records the names it was asked.
struct Upstream {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

fn upstream_answer(q: &[u8], asked: &Mutex<Vec<String>>) -> Vec<u8> {
    let m = Message::from_vec(q).unwrap();
    let query = m.queries()[0].clone();
    asked.lock().unwrap().push(query.name().to_ascii());
    let mut r = Message::new();
    r.set_id(m.id())
        .set_message_type(MessageType::Response)
        .add_query(query.clone());
    if query.name().to_ascii() == "outside.test." && query.query_type() == RecordType::A {
        let a = A(Ipv4Addr::new(192, 0, 2, 1));
        r.add_answer(Record::from_rdata(query.name().clone(), 60, RData::A(a)));
    } else {
        r.set_response_code(ResponseCode::NXDomain);
    }
    r.to_vec().unwrap()
}

fn fake_upstream() -> Upstream {
    let (udp, tcp) = loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(t) = TcpListener::bind(u.local_addr().unwrap()) {
            break (u, t);
        }
    };
    let addr = udp.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let a = asked.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut b) {
            let _ = udp.send_to(&upstream_answer(&b[..n], &a), from);
        }
    });
    let a = asked.clone();
    std::thread::spawn(move || {
        for mut s in tcp.incoming().flatten() {
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut q).unwrap();
            let r = upstream_answer(&q, &a);
            s.write_all(&(r.len() as u16).to_be_bytes()).unwrap();
            s.write_all(&r).unwrap();
        }
    });
    Upstream { addr, asked }
}

fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(0x4242)
        .set_recursion_desired(true)
        .add_query(hickory_proto::op::Query::query(
            Name::from_ascii(name).unwrap(),
            t,
        ));
    m
}

/// Ask over UDP from inside the namespace (the client socket lives there).
fn ask_udp(client: &UdpSocket, name: &str, t: RecordType) -> Message {
    client
        .send_to(&query(name, t).to_vec().unwrap(), LISTEN)
        .unwrap();
    let mut b = [0u8; 4096];
    let n = client.recv(&mut b).expect("an answer from 127.0.0.11");
    let m = Message::from_vec(&b[..n]).unwrap();
    assert_eq!(m.id(), 0x4242);
    m
}

fn ask_tcp(ns: &File, name: &str, t: RecordType) -> Message {
    let mut s = in_ns(ns, || TcpStream::connect(LISTEN).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let q = query(name, t).to_vec().unwrap();
    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&q).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut r).unwrap();
    Message::from_vec(&r).unwrap()
}

fn addrs(m: &Message) -> Vec<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[test]
fn resolver_answers_names_of_its_networks_and_forwards_the_rest() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let n1 = dir.path().join("net1.json");
    write_file(
        &n1,
        r#"[{"name":"web","aliases":["front","Api"],"ipv4":"10.89.0.2"},
            {"name":"cache","aliases":[],"ipv4":"10.89.0.3"}]"#,
    );
    write_file(
        &dir.path().join("net2.json"),
        r#"[{"name":"db","aliases":[],"ipv4":"10.90.0.2"}]"#,
    );
    let up = fake_upstream();
    // The first upstream refuses (a closed port): the next one is asked at once.
    let dead = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = DnsConfig {
        dir: dir.path().to_path_buf(),
        networks: vec!["net1".into()],
        networks_file: None,
        upstreams: vec![dead, up.addr],
    };
    let ns = new_netns();
    let mut r = Resolver::open(&cfg, &ns).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let served = std::thread::spawn(move || r.run_until(&|| st.load(Ordering::SeqCst)));
    let client = in_ns(&ns, || UdpSocket::bind("0.0.0.0:0").unwrap());
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Names and aliases, any case, with or without the root's dot.
    let web = [Ipv4Addr::new(10, 89, 0, 2)];
    for n in ["web", "web.", "WEB.", "front.", "aPi"] {
        let m = ask_udp(&client, n, RecordType::A);
        assert_eq!(m.response_code(), ResponseCode::NoError, "{n}");
        assert_eq!(addrs(&m), web, "{n}");
    }
    // AAAA of a known name: no address, no error (the networks are IPv4).
    let m = ask_udp(&client, "web.", RecordType::AAAA);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.answers().is_empty());
    assert!(
        up.asked.lock().unwrap().is_empty(),
        "names of ours forwarded"
    );

    // Unknown names go to the upstream, from the host's namespace.
    let m = ask_udp(&client, "outside.test.", RecordType::A);
    assert_eq!(addrs(&m), [Ipv4Addr::new(192, 0, 2, 1)]);
    // A name of a network the container is not on is not ours: forwarded (NXDOMAIN there).
    let m = ask_udp(&client, "db.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert!(addrs(&m).is_empty());
    assert_eq!(
        *up.asked.lock().unwrap(),
        ["outside.test.".to_string(), "db.".to_string()]
    );

    // Over TCP: ours, and forwarded over TCP.
    assert_eq!(
        addrs(&ask_tcp(&ns, "Cache.", RecordType::A)),
        [Ipv4Addr::new(10, 89, 0, 3)]
    );
    assert_eq!(
        addrs(&ask_tcp(&ns, "outside.test.", RecordType::A)),
        [Ipv4Addr::new(192, 0, 2, 1)]
    );

    // Two queries in one write, then the client's half-close: both answered, in any order.
    let mut s = in_ns(&ns, || TcpStream::connect(LISTEN).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut both = Vec::new();
    for (id, n) in [(1u16, "web."), (2, "outside.test.")] {
        let mut m = query(n, RecordType::A);
        m.set_id(id);
        let q = m.to_vec().unwrap();
        both.extend_from_slice(&(q.len() as u16).to_be_bytes());
        both.extend_from_slice(&q);
    }
    s.write_all(&both).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut r = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut r).unwrap();
        let m = Message::from_vec(&r).unwrap();
        got.push((m.id(), addrs(&m)));
    }
    got.sort();
    assert_eq!(
        got,
        [
            (1, vec![Ipv4Addr::new(10, 89, 0, 2)]),
            (2, vec![Ipv4Addr::new(192, 0, 2, 1)])
        ]
    );
    // Then the resolver closes it.
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0);

    // A DNS server in the container can still have port 53 on every address (the resolver's
    // own ports are elsewhere; 127.0.0.11:53 is redirected to them), and the resolver still
    // answers.
    let (_u53, _t53) = in_ns(&ns, || {
        (
            UdpSocket::bind("0.0.0.0:53").expect("udp 0.0.0.0:53 free in the container"),
            TcpListener::bind("0.0.0.0:53").expect("tcp 0.0.0.0:53 free in the container"),
        )
    });
    assert_eq!(addrs(&ask_udp(&client, "web.", RecordType::A)), web);
    assert_eq!(addrs(&ask_tcp(&ns, "web.", RecordType::A)), web);

    // The network's file changes (a container joins, one leaves): seen within a second.
    write_file(&n1, r#"[{"name":"web2","aliases":[],"ipv4":"10.89.0.9"}]"#);
    let t = Instant::now();
    loop {
        let m = ask_udp(&client, "web2.", RecordType::A);
        if addrs(&m) == [Ipv4Addr::new(10, 89, 0, 9)] {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(1), "file change not seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The one that left is no longer answered here (forwarded: NXDOMAIN).
    let m = ask_udp(&client, "web.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);

    stop.store(true, Ordering::SeqCst);
    served.join().unwrap().unwrap();
}

#[test]
fn no_upstream_answers_servfail() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dead = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = DnsConfig {
        dir: dir.path().to_path_buf(),
        networks: vec!["none-yet".into()],
        networks_file: None,
        upstreams: vec![dead],
    };
    let ns = new_netns();
    let mut r = Resolver::open(&cfg, &ns).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let served = std::thread::spawn(move || r.run_until(&|| st.load(Ordering::SeqCst)));
    let client = in_ns(&ns, || UdpSocket::bind("0.0.0.0:0").unwrap());
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let m = ask_udp(&client, "anything.test.", RecordType::A);
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    // The resolver listens in that namespace only, not on the host's loopback.
    let host = UdpSocket::bind("127.0.0.1:0").unwrap();
    host.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = host.send_to(&query("x.", RecordType::A).to_vec().unwrap(), LISTEN);
    let mut b = [0u8; 512];
    assert!(host.recv(&mut b).is_err());
    stop.store(true, Ordering::SeqCst);
    served.join().unwrap().unwrap();
}
