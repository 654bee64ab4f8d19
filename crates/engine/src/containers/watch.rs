//! One thread watches every running container's monitor: an epoll loop over their watch
//! connections (a monitor sends `exit <record>` and closes it when its container is done).
//! A running container costs berthd one descriptor (its connection) and no thread; the exit
//! is handled on a short-lived thread of its own (it may wait: restart delays, AutoRemove).
use crate::proto::*;
use crate::shared::Shared;
use crate::util::internal;
use crate::{Error, Result};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The epoll key of the wake-up eventfd (connections count up from 1).
const WAKE: u64 = 0;
/// What is kept of a connection's data: the exit line is far shorter.
const MAX_DATA: usize = 64 * 1024;

struct Conn {
    id: String,
    sock: UnixStream,
    got: Vec<u8>,
}

/// The watch connections and the loop's epoll instance.
pub(crate) struct Watchers {
    ep: Epoll,
    wake: EventFd,
    conns: Mutex<HashMap<u64, Conn>>,
    serial: AtomicU64,
    /// The loop's thread is started with the first connection.
    started: Mutex<bool>,
}

impl Watchers {
    pub(crate) fn new() -> Result<Watchers> {
        let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| internal("epoll_create1", e))?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| internal("eventfd", e))?;
        ep.add(&wake, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
            .map_err(|e| internal("epoll_ctl ADD eventfd", e))?;
        Ok(Watchers {
            ep,
            wake,
            conns: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(WAKE + 1),
            started: Mutex::new(false),
        })
    }

    /// Let go of every connection (daemon shutdown: the containers run on) and end the loop.
    pub(crate) fn shutdown(&self) {
        if let Ok(mut c) = self.conns.lock() {
            for (_, conn) in c.drain() {
                let _ = self.ep.delete(&conn.sock);
                let _ = conn.sock.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = self.wake.write(1);
    }
}

/// Connect to the container's monitor as its watcher.
pub(crate) fn connect_watch(s: &Shared, id: &str) -> std::io::Result<UnixStream> {
    let c = crate::proto::connect(&s.attach_sock(id))?;
    let mut hello = serde_json::to_vec(&AttachHello {
        watch: true,
        ..Default::default()
    })
    .unwrap_or_default();
    hello.push(b'\n');
    (&c).write_all(&hello)?;
    Ok(c)
}

/// Watch the container through `w` (from [`connect_watch`]): at its end the exit is handled.
pub(crate) fn spawn_watcher(s: Arc<Shared>, id: String, w: UnixStream) {
    if let Err((e, w)) = add(&s, &id, w) {
        // Without a watch its exit would go unnoticed: wait on a thread of its own instead.
        tracing::warn!("watch {id} in the loop: {e}");
        std::thread::spawn(move || {
            let _ = w.set_nonblocking(false);
            let mut got = Vec::new();
            let _ = (&w).take(MAX_DATA as u64).read_to_end(&mut got);
            if !s.closed.load(Ordering::SeqCst) {
                super::handle_exit_with(&s, &id, exit_line(&got));
            }
        });
    }
}

/// Add the connection to the loop (started with the first one); on failure it is handed back.
fn add(s: &Arc<Shared>, id: &str, w: UnixStream) -> std::result::Result<(), (Error, UnixStream)> {
    let ws = &s.watchers;
    if let Err(e) = ensure_loop(s) {
        return Err((e, w));
    }
    if let Err(e) = w.set_nonblocking(true) {
        return Err((internal("set the watch connection non-blocking", e), w));
    }
    let key = ws.serial.fetch_add(1, Ordering::SeqCst);
    let Ok(mut conns) = ws.conns.lock() else {
        return Err((Error::Internal("watchers lock poisoned".into()), w));
    };
    // (under the lock: the loop finds the entry of any event of this connection)
    let ev = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, key);
    if let Err(e) = ws.ep.add(&w, ev) {
        return Err((internal("epoll_ctl ADD a watch connection", e), w));
    }
    let got = Vec::new();
    let id = id.to_string();
    conns.insert(key, Conn { id, sock: w, got });
    Ok(())
}

fn ensure_loop(s: &Arc<Shared>) -> Result<()> {
    let mut started = s
        .watchers
        .started
        .lock()
        .map_err(|_| Error::Internal("watchers lock poisoned".into()))?;
    if !*started {
        let ss = s.clone();
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || run(&ss))
            .map_err(|e| internal("start the watch thread", e))?;
        *started = true;
    }
    Ok(())
}

/// The loop, until the engine is shut down ([`Watchers::shutdown`] wakes it).
fn run(s: &Arc<Shared>) {
    let mut events = vec![EpollEvent::empty(); 64];
    while !s.closed.load(Ordering::SeqCst) {
        let n = match s.watchers.ep.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("watch loop: epoll_wait: {e}");
                return;
            }
        };
        for ev in &events[..n] {
            if ev.data() == WAKE {
                let _ = s.watchers.wake.read();
                continue;
            }
            let Some((id, got)) = read_conn(s, ev.data()) else {
                continue;
            };
            if s.closed.load(Ordering::SeqCst) {
                return;
            }
            let ss = s.clone();
            let r = std::thread::Builder::new()
                .name("exit".into())
                .spawn(move || super::handle_exit_with(&ss, &id, exit_line(&got)));
            if let Err(e) = r {
                tracing::error!("handle the exit of a container: spawn a thread: {e}");
            }
        }
    }
}

/// Read what the connection has; at its end remove it and return its container and data.
fn read_conn(s: &Shared, key: u64) -> Option<(String, Vec<u8>)> {
    let ws = &s.watchers;
    let mut conns = ws.conns.lock().ok()?;
    let c = conns.get_mut(&key)?;
    let mut b = [0u8; 512];
    let ended = loop {
        match (&c.sock).read(&mut b) {
            Ok(0) => break true,
            Ok(n) => {
                if c.got.len() < MAX_DATA {
                    c.got.extend_from_slice(&b[..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    if !ended {
        return None;
    }
    let c = conns.remove(&key)?;
    let _ = ws.ep.delete(&c.sock);
    Some((c.id, c.got))
}

/// The exit record in a watch connection's data (`exit <json>\n`).
pub(crate) fn exit_line(data: &[u8]) -> Option<ExitRecord> {
    let rest = data.strip_prefix(format!("{WATCH_EXIT} ").as_bytes())?;
    let end = rest.iter().position(|&c| c == b'\n')?;
    serde_json::from_slice(&rest[..end]).ok()
}
