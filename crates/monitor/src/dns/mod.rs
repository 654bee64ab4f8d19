//! The embedded DNS resolver of a container on user-defined networks: it lives in the
//! container's monitor (which outlives berthd, so names resolve while berthd restarts) and
//! listens on 127.0.0.11:53, UDP and TCP, inside the container's network namespace (the
//! sockets are made by a short-lived thread that joins the namespace; the monitor itself
//! stays in the host's; see [`bind_in`] for the ports). It answers the names of the container's networks from their DNS
//! files ([`names`]) and forwards everything else, from the host's namespace, to the
//! upstream resolvers berthd chose ([`forward`]). No thread per query: its sockets join the
//! monitor's poll loop ([`Resolver::pollfds`], [`Resolver::serve`]).
mod answer;
mod forward;
pub mod names;
mod tcp;

use crate::error::{Error, IoContext, Result};
use crate::proto::DnsConfig;
use answer::Outcome;
use forward::{Asker, Pending, Progress};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Where the resolver listens in the container's namespace (Docker's address).
pub const LISTEN: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53);
/// Forwarded queries in flight at once; more get a SERVFAIL.
const MAX_PENDING: usize = 256;

pub struct Resolver {
    udp: UdpSocket,
    tcp: TcpListener,
    conns: Vec<tcp::Conn>,
    next_conn: u64,
    pending: Vec<Pending>,
    names: names::Names,
    upstreams: Vec<SocketAddr>,
    buf: Vec<u8>,
}

/// Bind the listening sockets inside the namespace `netns` (a thread joins it, binds and
/// ends; the sockets stay in that namespace). As Docker's, they listen on ports of the
/// kernel's choosing that 127.0.0.11:53 is redirected to (a nat rule in the namespace), so
/// that a DNS server in the container can still bind port 53 on every address; without
/// `nft`, on 127.0.0.11:53 itself.
fn bind_in(netns: &File) -> Result<(UdpSocket, TcpListener)> {
    let fd = netns.as_raw_fd();
    std::thread::scope(|sc| {
        sc.spawn(move || {
            // SAFETY: setns on a namespace fd we hold; it changes this thread only, which
            // ends right after.
            if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                return Err(Error::last_os("join the container's network namespace"));
            }
            let any = SocketAddrV4::new(*LISTEN.ip(), 0);
            let u = UdpSocket::bind(any).with_ctx(|| format!("bind udp {any}"))?;
            let t = TcpListener::bind(any).with_ctx(|| format!("bind tcp {any}"))?;
            let ports = (u.local_addr(), t.local_addr());
            if let (Ok(up), Ok(tp)) = ports {
                if redirect(up.port(), tp.port()).is_ok() {
                    return Ok((u, t));
                }
            }
            let u = UdpSocket::bind(LISTEN).with_ctx(|| format!("bind udp {LISTEN}"))?;
            let t = TcpListener::bind(LISTEN).with_ctx(|| format!("bind tcp {LISTEN}"))?;
            Ok((u, t))
        })
        .join()
        .map_err(|_| Error::Protocol("the DNS socket thread panicked".into()))?
    })
}

/// In the calling thread's network namespace: 127.0.0.11:53 to our ports (`nft`, run from
/// this thread, inherits its namespace; conntrack gives the answers their port 53 back).
fn redirect(udp: u16, tcp: u16) -> std::io::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let ip = LISTEN.ip();
    let rules = format!(
        "table ip berth-dns {{\n chain output {{\n  type nat hook output priority -100; policy accept;\n  ip daddr {ip} udp dport 53 dnat to {ip}:{udp}\n  ip daddr {ip} tcp dport 53 dnat to {ip}:{tcp}\n }}\n}}\n"
    );
    let mut c = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut i) = c.stdin.take() {
        i.write_all(rules.as_bytes())?;
    }
    let st = c.wait()?;
    if !st.success() {
        return Err(std::io::Error::other(format!("nft: {st}")));
    }
    Ok(())
}

impl Resolver {
    /// The resolver of the container whose network namespace is `netns`.
    pub fn open(cfg: &DnsConfig, netns: &File) -> Result<Resolver> {
        let (udp, tcp) = bind_in(netns)?;
        udp.set_nonblocking(true).ctx("dns udp socket")?;
        tcp.set_nonblocking(true).ctx("dns tcp socket")?;
        Ok(Resolver {
            udp,
            tcp,
            conns: Vec::new(),
            next_conn: 0,
            pending: Vec::new(),
            names: names::Names::new(&cfg.dir, &cfg.networks, cfg.networks_file.as_deref()),
            upstreams: cfg.upstreams.clone(),
            buf: vec![0u8; 16 * 1024],
        })
    }

    /// Append the resolver's poll entries; give the same slice back to [`Resolver::serve`].
    pub fn pollfds(&self, out: &mut Vec<libc::pollfd>) {
        let p = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        out.push(p(self.udp.as_raw_fd()));
        let full = self.conns.len() >= tcp::MAX_CONNS;
        out.push(p(if full { -1 } else { self.tcp.as_raw_fd() }));
        out.extend(self.conns.iter().map(tcp::Conn::pollfd));
        out.extend(self.pending.iter().map(Pending::pollfd));
    }

    /// Milliseconds until the next deadline (a forwarded query's, an idle connection's);
    /// -1: none.
    pub fn timeout_ms(&self) -> i32 {
        let now = Instant::now();
        let mut next: Option<Instant> = self.pending.iter().map(|p| p.deadline).min();
        if !self.conns.is_empty() {
            let idle = now + tcp::IDLE;
            next = Some(next.map_or(idle, |n| n.min(idle)));
        }
        next.map_or(-1, |t| {
            t.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1
        })
    }

    /// Serve what poll found ready in the entries [`Resolver::pollfds`] appended, and the
    /// deadlines that passed.
    pub fn serve(&mut self, pfds: &[libc::pollfd]) {
        let ready = |i: usize| pfds.get(i).map_or(0, |p| p.revents);
        let nconns = self.conns.len();
        // Pending first (their indexes shift as we answer and start others).
        let mut done = Vec::new();
        for i in 0..self.pending.len() {
            if ready(2 + nconns + i) != 0 {
                done.push((i, self.pending[i].serve(&mut self.buf)));
            }
        }
        let now = Instant::now();
        for i in 0..self.pending.len() {
            if self.pending[i].deadline <= now && !done.iter().any(|(j, _)| *j == i) {
                done.push((i, Progress::Failed));
            }
        }
        done.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, progress) in done {
            match progress {
                Progress::Waiting => {}
                Progress::Answer(a) => {
                    let p = self.pending.swap_remove(i);
                    self.reply(p.asker, &a, true);
                }
                Progress::Failed => {
                    let p = self.pending.swap_remove(i);
                    match p.retry(&self.upstreams) {
                        Some(next) => self.pending.push(next),
                        None => self.fail(p.asker, &p.original(), true),
                    }
                }
            }
        }
        if ready(0) != 0 {
            self.serve_udp();
        }
        for i in 0..nconns {
            let rev = ready(2 + i);
            if rev != 0 {
                let qs = self.conns[i].serve(rev, &mut self.buf);
                let num = self.conns[i].num;
                for q in qs {
                    self.query(Asker::Tcp(num), &q);
                }
            }
        }
        self.conns.retain(|c| !c.done());
        if ready(1) != 0 {
            self.accept();
        }
    }

    fn serve_udp(&mut self) {
        // (A bounded batch, so TCP and answers get their turn.)
        for _ in 0..64 {
            let (n, from) = match self.udp.recv_from(&mut self.buf) {
                Ok(x) => x,
                Err(_) => return,
            };
            let q = self.buf[..n].to_vec();
            self.query(Asker::Udp(from), &q);
        }
    }

    fn accept(&mut self) {
        while self.conns.len() < tcp::MAX_CONNS {
            let Ok((s, _)) = self.tcp.accept() else {
                return;
            };
            if s.set_nonblocking(true).is_err() {
                continue;
            }
            self.next_conn += 1;
            self.conns.push(tcp::Conn::new(self.next_conn, s));
        }
    }

    /// One query from `asker`: answered here, or forwarded.
    fn query(&mut self, asker: Asker, q: &[u8]) {
        match answer::answer(q, &mut self.names) {
            Outcome::Reply(a) => self.reply(asker, &a, false),
            Outcome::Drop => {}
            Outcome::Forward => {
                let started = (self.pending.len() < MAX_PENDING)
                    .then(|| Pending::start(asker, q, &self.upstreams, 0))
                    .flatten();
                match started {
                    Some(p) => {
                        self.pending.push(p);
                        if let Some(c) = self.conn(asker) {
                            c.in_flight += 1;
                        }
                    }
                    None => self.fail(asker, q, false),
                }
            }
        }
    }

    fn conn(&mut self, asker: Asker) -> Option<&mut tcp::Conn> {
        match asker {
            Asker::Tcp(n) => self.conns.iter_mut().find(|c| c.num == n),
            Asker::Udp(_) => None,
        }
    }

    fn fail(&mut self, asker: Asker, q: &[u8], forwarded: bool) {
        match answer::servfail(q) {
            Some(a) => self.reply(asker, &a, forwarded),
            None => {
                if let (true, Some(c)) = (forwarded, self.conn(asker)) {
                    c.in_flight = c.in_flight.saturating_sub(1);
                }
            }
        }
    }

    fn reply(&mut self, asker: Asker, a: &[u8], forwarded: bool) {
        match asker {
            Asker::Udp(to) => {
                // (A full socket buffer drops it, as the network would.)
                let _ = self.udp.send_to(a, to);
            }
            Asker::Tcp(_) => {
                if let Some(c) = self.conn(asker) {
                    if forwarded {
                        c.in_flight = c.in_flight.saturating_sub(1);
                    }
                    c.send(a);
                }
            }
        }
    }

    /// Serve until `stop` says so (a resolver on its own, as in tests; the monitor serves it
    /// in its own loop instead).
    pub fn run_until(&mut self, stop: &dyn Fn() -> bool) -> Result<()> {
        while !stop() {
            let mut pfds = Vec::new();
            self.pollfds(&mut pfds);
            let t = match self.timeout_ms() {
                -1 => 100,
                t => t.min(100),
            };
            // SAFETY: pfds is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, t) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Error::io("poll", e));
                }
                continue;
            }
            self.serve(&pfds);
        }
        Ok(())
    }
}
