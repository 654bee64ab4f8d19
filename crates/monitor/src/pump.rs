//! The poll loop: SIGCHLD (the process's exit), its output, new clients, client input; ends
//! when the process has exited and its output is drained (or after a grace period).
use crate::clients::{accept_clients, serve_input, Client};
use crate::error::{Error, Result};
use crate::jsonlog::{LogWriter, StreamKind};
use crate::output::{copy_output, Sinks};
use crate::proto::{Mode, MonitorConfig};
use crate::setup::Setup;
use berth_runtime::Runtime;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Fixed slots of the poll array; one slot a client follows.
const SIGNAL: usize = 0;
const LISTENER: usize = 1;
const STDOUT: usize = 2;
const STDERR: usize = 3;
const CLIENTS: usize = 4;

pub(crate) struct Pump<'a> {
    pub cfg: &'a MonitorConfig,
    pub rt: &'a Runtime,
    pub io: &'a mut Setup,
    pub clients: Vec<Client>,
    pub log: Option<LogWriter>,
    /// The container's embedded DNS resolver: its sockets follow the clients' in the poll
    /// array (from `dns_at`).
    pub dns: Option<crate::dns::Resolver>,
    dns_at: usize,
    pub main_pid: i32,
    /// The process's exit code and when it was reaped.
    pub exit: Option<(i32, Instant)>,
    /// Container mode: the runtime container was deleted to end what held the output open.
    pub deleted: bool,
    started: Instant,
    last_trim: Option<Instant>,
    buf: Vec<u8>,
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn raw(fd: &Option<OwnedFd>) -> RawFd {
    fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
}

impl<'a> Pump<'a> {
    pub fn new(
        cfg: &'a MonitorConfig,
        rt: &'a Runtime,
        io: &'a mut Setup,
        clients: Vec<Client>,
        main_pid: i32,
    ) -> Pump<'a> {
        Pump {
            cfg,
            rt,
            io,
            clients,
            log: None,
            dns: None,
            dns_at: 0,
            main_pid,
            exit: None,
            deleted: false,
            // The first trim waits until the container has run for a moment: a short-lived
            // one (`docker run --rm IMG true`) would otherwise make us fault our exit path
            // back in.
            started: Instant::now(),
            last_trim: None,
            buf: vec![0u8; 32 * 1024],
        }
    }

    /// Run until the process has exited and its output is drained.
    pub fn run(&mut self) -> Result<()> {
        while !self.finished() {
            let mut pfds = self.poll_fds();
            let mut timeout = self.timeout_and_trim();
            if let Some(t) = self.dns.as_ref().map(|d| d.timeout_ms()) {
                if t >= 0 && (timeout < 0 || t < timeout) {
                    timeout = t;
                }
            }
            // SAFETY: pfds is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io("poll", e));
            }
            self.serve(&pfds);
        }
        if let Some(l) = self.log.as_mut() {
            l.flush_partial();
        }
        berth_runtime::mark("monitor: output drained");
        Ok(())
    }

    /// After the exit: done once the output is closed; something else may still hold it
    /// open: end it (container mode deletes the container, killing the rest of its cgroup)
    /// after 200 ms, stop waiting after 3 s.
    fn finished(&mut self) -> bool {
        let Some((_, at)) = self.exit else {
            return false;
        };
        if self.io.out_fd.is_none() && self.io.err_fd.is_none() {
            return true;
        }
        if at.elapsed() > Duration::from_millis(200)
            && !self.deleted
            && self.cfg.mode == Mode::Container
        {
            let _ = self.rt.delete(&self.cfg.id, true);
            self.deleted = true;
        }
        at.elapsed() > Duration::from_secs(3)
    }

    fn poll_fds(&mut self) -> Vec<libc::pollfd> {
        let mut pfds = Vec::with_capacity(CLIENTS + self.clients.len());
        pfds.push(pollfd(self.io.sfd.as_raw_fd()));
        pfds.push(pollfd(self.io.listener.as_raw_fd()));
        pfds.push(pollfd(raw(&self.io.out_fd)));
        pfds.push(pollfd(raw(&self.io.err_fd)));
        for c in &self.clients {
            pfds.push(pollfd(if c.polled() { c.sock.as_raw_fd() } else { -1 }));
        }
        self.dns_at = pfds.len();
        if let Some(d) = &self.dns {
            d.pollfds(&mut pfds);
        }
        pfds
    }

    /// The poll timeout (ms); trims memory when due: 50 ms after the start, then every 10 s
    /// (see `memory::trim_memory`); 100 ms ticks while finishing.
    fn timeout_and_trim(&mut self) -> i32 {
        let timeout = if self.exit.is_some() {
            100
        } else if self.last_trim.is_none() {
            50
        } else {
            10_000
        };
        let due = match self.last_trim {
            None => self.started.elapsed() >= Duration::from_millis(50),
            Some(t) => t.elapsed() > Duration::from_secs(10),
        };
        if due && self.exit.is_none() {
            crate::memory::trim_memory();
            self.last_trim = Some(Instant::now());
        }
        timeout
    }

    fn serve(&mut self, pfds: &[libc::pollfd]) {
        if let Some(d) = self.dns.as_mut() {
            d.serve(&pfds[self.dns_at..]);
        }
        if pfds[SIGNAL].revents != 0 {
            self.reap();
        }
        for (slot, stream) in [(STDOUT, StreamKind::Stdout), (STDERR, StreamKind::Stderr)] {
            if pfds[slot].revents != 0 {
                self.copy(stream);
            }
        }
        if pfds[LISTENER].revents != 0 {
            let out = self.io.out_fd.as_ref();
            accept_clients(&self.io.listener, &mut self.clients, self.cfg.tty, out);
        }
        // Only the clients that were in the poll array (new ones were appended after it).
        let ready: Vec<bool> = pfds[CLIENTS..self.dns_at]
            .iter()
            .map(|p| p.revents != 0)
            .collect();
        let stdin = if self.cfg.tty {
            self.io.out_fd.as_ref()
        } else {
            self.io.stdin_w.as_ref()
        };
        if serve_input(&mut self.clients, &ready, stdin, self.cfg.stdin_once) {
            self.io.stdin_w = None;
        }
    }

    /// Reap every exited child (we are a subreaper); note the main process's exit.
    fn reap(&mut self) {
        crate::sys::drain_signalfd(&self.io.sfd);
        while let Some((pid, status)) = crate::sys::reap_one() {
            if pid == self.main_pid && self.exit.is_none() {
                self.exit = Some((crate::exit::exit_code(status), Instant::now()));
                berth_runtime::mark("monitor: main process reaped");
            }
        }
    }

    fn copy(&mut self, stream: StreamKind) {
        let fdo = match stream {
            StreamKind::Stdout => &mut self.io.out_fd,
            StreamKind::Stderr => &mut self.io.err_fd,
        };
        let Some(fd) = fdo.as_ref() else { return };
        let sinks = Sinks {
            tty: self.cfg.tty,
            log: self.log.as_mut(),
            clients: &mut self.clients,
        };
        if !copy_output(fd, stream, &mut self.buf, sinks) {
            *fdo = None;
        }
    }
}
