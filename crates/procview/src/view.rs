//! One container's files: rendered from its cgroup and the host's files on each read, plus
//! the load average the provider keeps (sampled every 5 s as the kernel does).

use crate::cgroup::{self, CgroupPaths};
use crate::kept::Kept;
use crate::{cpu, fuse, mem};
use std::path::Path;

/// The files in the provider's directory; `FILES[i].1` is where the runtime binds file i.
pub const FILES: [(&str, &str); 9] = [
    ("meminfo", "/proc/meminfo"),
    ("cpuinfo", "/proc/cpuinfo"),
    ("stat", "/proc/stat"),
    ("uptime", "/proc/uptime"),
    ("loadavg", "/proc/loadavg"),
    ("diskstats", "/proc/diskstats"),
    ("swaps", "/proc/swaps"),
    ("cpu-online", "/sys/devices/system/cpu/online"),
    ("cpu-present", "/sys/devices/system/cpu/present"),
];

const NAMES: [&str; 9] = [
    "meminfo",
    "cpuinfo",
    "stat",
    "uptime",
    "loadavg",
    "diskstats",
    "swaps",
    "cpu-online",
    "cpu-present",
];

/// The kernel's load average arithmetic (kernel/sched/loadavg.c), 11-bit fixed point.
const FSHIFT: u32 = 11;
const FIXED_1: u64 = 1 << FSHIFT;
const EXP: [u64; 3] = [1884, 2014, 2037];
/// LOAD_FREQ: one sample every 5 s.
pub const SAMPLE_NS: u64 = 5_000_000_000;

pub struct View {
    cg: CgroupPaths,
    /// The host's and the cgroup's files, kept open.
    kept: Kept,
    /// The container's init (host pid), once the runtime cloned it.
    init: Option<u32>,
    /// CLOCK_BOOTTIME (ns) the container started at: the init's start, or the provider's.
    started_ns: u64,
    avenrun: [u64; 3],
    last_sample_ns: u64,
}

pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat, counted after the command name.
fn stat_field(text: &str, n: usize) -> Option<&str> {
    let after = &text[text.rfind(')')? + 1..];
    after.split_whitespace().nth(n.checked_sub(3)?)
}

impl View {
    pub fn new(cg: CgroupPaths) -> View {
        let now = boottime_ns();
        View {
            cg,
            kept: Kept::default(),
            init: None,
            started_ns: now,
            avenrun: [0; 3],
            last_sample_ns: now,
        }
    }

    /// The container's init is `pid`: its start time is the container's.
    pub fn set_init(&mut self, pid: u32) {
        self.init = Some(pid);
        let hz = cgroup::clock_ticks();
        if let Some(start) = cgroup::read(Path::new(&format!("/proc/{pid}/stat")))
            .as_deref()
            .and_then(|s| stat_field(s, 22)?.parse::<u64>().ok())
        {
            self.started_ns = start * (1_000_000_000 / hz);
        }
    }

    fn uptime_ns(&self) -> u64 {
        boottime_ns().saturating_sub(self.started_ns)
    }

    fn cpus(&self) -> Vec<u32> {
        let k = &self.kept;
        let online = k
            .read(Path::new("/sys/devices/system/cpu/online"))
            .map(|s| cgroup::parse_cpu_list(s.trim()))
            .unwrap_or_default();
        cpu::visible(&online, self.cg.cpuset(k), self.cg.quota_cpus(k))
    }

    /// Runnable (R) and uninterruptible (D) threads, all threads, the greatest pid of the
    /// container's own namespace among them.
    fn tasks(&self) -> (u64, u64, u64) {
        let threads = self.cg.threads(&self.kept);
        let mut active = 0;
        for t in &threads {
            let s = cgroup::read(Path::new(&format!("/proc/{t}/stat"))).unwrap_or_default();
            if matches!(stat_field(&s, 3), Some("R") | Some("D")) {
                active += 1;
            }
        }
        let last = threads
            .iter()
            .max()
            .and_then(|t| cgroup::read(Path::new(&format!("/proc/{t}/status"))))
            .and_then(|s| {
                let l = s.lines().find(|l| l.starts_with("NSpid:"))?;
                l.split_whitespace().last()?.parse().ok()
            })
            .unwrap_or(0);
        (active, threads.len() as u64, last)
    }

    /// Fold in the samples due since the last one (the provider's timer calls this every
    /// 5 s; a read catches up the ones a busy provider missed).
    pub fn sample(&mut self) {
        let now = boottime_ns();
        let due = now.saturating_sub(self.last_sample_ns) / SAMPLE_NS;
        if due == 0 {
            return;
        }
        self.last_sample_ns += due * SAMPLE_NS;
        let active = self.tasks().0 * FIXED_1;
        for _ in 0..due.min(1000) {
            for (a, e) in self.avenrun.iter_mut().zip(EXP) {
                let mut n = *a * e + active * (FIXED_1 - e);
                if active >= *a {
                    n += FIXED_1 - 1;
                }
                *a = n / FIXED_1;
            }
        }
    }

    pub fn next_sample_in_ms(&self) -> i32 {
        let next = self.last_sample_ns + SAMPLE_NS;
        (next.saturating_sub(boottime_ns()) / 1_000_000).min(SAMPLE_NS / 1_000_000) as i32 + 1
    }

    fn loadavg(&mut self) -> String {
        self.sample();
        let (running, total, last) = self.tasks();
        let f = |x: u64| {
            let x = x + FIXED_1 / 200;
            format!(
                "{}.{:02}",
                x >> FSHIFT,
                ((x & (FIXED_1 - 1)) * 100) >> FSHIFT
            )
        };
        format!(
            "{} {} {} {running}/{total} {last}\n",
            f(self.avenrun[0]),
            f(self.avenrun[1]),
            f(self.avenrun[2])
        )
    }

    fn uptime(&self) -> String {
        let up = self.uptime_ns();
        let (user, system, _) = self.cg.cpu_time(&self.kept);
        let n = self.cpus().len().max(1) as u64;
        let idle = (up * n).saturating_sub(user + system);
        let f = |ns: u64| {
            format!(
                "{}.{:02}",
                ns / 1_000_000_000,
                ns % 1_000_000_000 / 10_000_000
            )
        };
        format!("{} {}\n", f(up), f(idle))
    }

    fn diskstats(&self) -> String {
        let host = self
            .kept
            .read(Path::new("/proc/diskstats"))
            .unwrap_or_default();
        let io = self.cg.io(&self.kept);
        let mut out = String::new();
        for l in host.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (Some(ma), Some(mi), Some(name)) = (
                f.first().and_then(|s| s.parse::<u32>().ok()),
                f.get(1).and_then(|s| s.parse::<u32>().ok()),
                f.get(2),
            ) else {
                continue;
            };
            let Some([rb, wb, rio, wio]) = io.get(&(ma, mi)) else {
                continue;
            };
            out.push_str(&format!(
                "{ma:4} {mi:7} {name} {rio} 0 {} 0 {wio} 0 {} 0 0 0 0 0 0 0 0 0 0\n",
                rb / 512,
                wb / 512
            ));
        }
        out
    }

    fn render_str(&mut self, i: usize) -> String {
        let k = &self.kept;
        let host = |p: &str| k.read(Path::new(p)).unwrap_or_default();
        match NAMES[i] {
            "meminfo" => mem::meminfo(&host("/proc/meminfo"), &self.cg.memory(k)),
            "swaps" => mem::swaps(
                &host("/proc/swaps"),
                &host("/proc/meminfo"),
                &self.cg.memory(k),
            ),
            "cpuinfo" => cpu::cpuinfo(&host("/proc/cpuinfo"), &self.cpus()),
            "stat" => {
                let (user, system, percpu) = self.cg.cpu_time(k);
                let t = cpu::Times {
                    user,
                    system,
                    percpu,
                    uptime_ns: self.uptime_ns(),
                };
                cpu::stat(&host("/proc/stat"), &self.cpus(), &t, cgroup::clock_ticks())
            }
            "uptime" => self.uptime(),
            "loadavg" => self.loadavg(),
            "diskstats" => self.diskstats(),
            _ => cpu::list(self.cpus().len()),
        }
    }
}

impl View {
    /// What sysinfo(2) tells the container (`crate::sysinfo`).
    pub fn sysinfo_figures(&mut self) -> crate::sysinfo::Figures {
        self.sample();
        crate::sysinfo::Figures {
            avenrun: self.avenrun,
            uptime_ns: self.uptime_ns(),
            threads: self.cg.threads(&self.kept).len(),
            memory: self.cg.memory(&self.kept),
        }
    }
}

impl fuse::Files for View {
    fn names(&self) -> &[&'static str] {
        &NAMES
    }

    fn render(&mut self, index: usize) -> Vec<u8> {
        self.render_str(index).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_files() {
        for (n, (f, _)) in NAMES.iter().zip(FILES) {
            assert_eq!(*n, f);
        }
    }

    #[test]
    fn loadavg_follows_the_kernel() {
        let mut v = View::new(CgroupPaths::default());
        // One always-runnable task for a minute: the kernel shows 0.63 after 12 samples.
        let mut a = 0u64;
        for _ in 0..12 {
            let mut n = a * EXP[0] + FIXED_1 * (FIXED_1 - EXP[0]);
            n += FIXED_1 - 1;
            a = n / FIXED_1;
        }
        v.avenrun = [a, 0, 0];
        assert!(v.loadavg().starts_with("0.6"), "{}", v.loadavg());
    }

    #[test]
    fn stat_fields() {
        let s = "12 (a b) c) S 1 12 12 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 100";
        assert_eq!(stat_field(s, 3), Some("S"));
        assert_eq!(stat_field(s, 22), Some("777"));
    }
}
