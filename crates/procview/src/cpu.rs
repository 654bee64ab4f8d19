//! CPU views: which CPUs the container sees (its cpuset, narrowed by its CFS quota rounded
//! up), renumbered from 0 as LXCFS does, and its own CPU times.

/// The host CPUs shown, in order: the cpuset's online CPUs (all online ones without a
/// cpuset), the first `ceil(quota/period)` of them when a quota is set.
pub fn visible(host_online: &[u32], cpuset: Option<Vec<u32>>, quota: Option<usize>) -> Vec<u32> {
    let mut v: Vec<u32> = match cpuset {
        Some(s) => s.into_iter().filter(|c| host_online.contains(c)).collect(),
        None => host_online.to_vec(),
    };
    if v.is_empty() {
        v = host_online.to_vec();
    }
    if let Some(q) = quota {
        v.truncate(q.max(1));
    }
    v
}

/// `0-N` for N+1 CPUs (the text of cpu/online and cpu/present).
pub fn list(n: usize) -> String {
    match n {
        0 | 1 => "0\n".into(),
        _ => format!("0-{}\n", n - 1),
    }
}

/// /proc/cpuinfo: the host's block of each visible CPU, renumbered.
pub fn cpuinfo(host: &str, cpus: &[u32]) -> String {
    let mut blocks: Vec<(Option<u32>, &str)> = Vec::new();
    for b in host.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let id = b.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "processor").then(|| v.trim().parse().ok())?
        });
        blocks.push((id, b));
    }
    let mut out = String::with_capacity(host.len());
    for (i, c) in cpus.iter().enumerate() {
        let Some((_, b)) = blocks.iter().find(|(id, _)| *id == Some(*c)) else {
            continue;
        };
        for l in b.lines() {
            match l.split_once(':') {
                Some((k, _)) if k.trim() == "processor" => {
                    out.push_str(&format!("{k}: {i}\n"));
                }
                _ => {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }
    // Architecture trailers without a processor number (arm's "Hardware", ...).
    for (_, b) in blocks.iter().filter(|(id, _)| id.is_none()) {
        out.push_str(b.trim_end_matches('\n'));
        out.push_str("\n\n");
    }
    out
}

/// CPU time inputs for /proc/stat, in nanoseconds.
pub struct Times {
    pub user: u64,
    pub system: u64,
    /// Per host CPU (index = host CPU number), when the cgroup keeps it (v1 cpuacct).
    pub percpu: Vec<u64>,
    /// The container's uptime.
    pub uptime_ns: u64,
}

/// /proc/stat: `cpu` and one `cpuN` line per visible CPU from the container's own times
/// (user/system in USER_HZ, idle = uptime - busy), then the host's other lines.
pub fn stat(host: &str, cpus: &[u32], t: &Times, hz: u64) -> String {
    let n = cpus.len().max(1) as u64;
    let tick = 1_000_000_000 / hz.max(1);
    let busy = t.user + t.system;
    // Busy time per shown CPU: its own counter where the cgroup keeps one, plus an equal share
    // of what ran on CPUs not shown (a quota narrower than the cpuset) or of everything.
    let per: Vec<u64> = if t.percpu.is_empty() {
        vec![busy / n; cpus.len()]
    } else {
        let own: Vec<u64> = cpus
            .iter()
            .map(|&c| t.percpu.get(c as usize).copied().unwrap_or(0))
            .collect();
        let all: u64 = t.percpu.iter().sum();
        let rest = all.saturating_sub(own.iter().sum()) / n;
        own.iter().map(|o| o + rest).collect()
    };
    let user_share = |b: u64| {
        if busy == 0 {
            0
        } else {
            (b as u128 * t.user as u128 / busy as u128) as u64
        }
    };
    let line = |name: &str, b: u64, uptime: u64| {
        let u = user_share(b) / tick;
        let s = b.saturating_sub(user_share(b)) / tick;
        let idle = (uptime / tick).saturating_sub(u + s);
        format!("{name} {u} 0 {s} {idle} 0 0 0 0 0 0\n")
    };
    let mut out = line("cpu ", per.iter().sum(), t.uptime_ns * n);
    for (i, b) in per.iter().enumerate() {
        out.push_str(&line(&format!("cpu{i}"), *b, t.uptime_ns));
    }
    for l in host.lines().filter(|l| !l.starts_with("cpu")) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_narrows_cpuset() {
        let host = [0, 1, 2, 3];
        assert_eq!(visible(&host, Some(vec![2, 3]), None), vec![2, 3]);
        assert_eq!(visible(&host, None, Some(2)), vec![0, 1]);
        assert_eq!(visible(&host, Some(vec![1, 2, 3]), Some(1)), vec![1]);
        assert_eq!(visible(&host, Some(vec![9]), None), host.to_vec());
        assert_eq!(list(1), "0\n");
        assert_eq!(list(3), "0-2\n");
    }

    #[test]
    fn cpuinfo_renumbers() {
        let host = "processor\t: 0\nmodel name\t: A\n\nprocessor\t: 1\nmodel name\t: B\n\n";
        assert_eq!(cpuinfo(host, &[1]), "processor\t: 0\nmodel name\t: B\n\n");
    }

    #[test]
    fn stat_lines() {
        let host = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1\ncpu1 1\nintr 5\nbtime 7\n";
        let t = Times {
            user: 3_000_000_000,
            system: 1_000_000_000,
            percpu: vec![0, 4_000_000_000],
            uptime_ns: 10_000_000_000,
        };
        let s = stat(host, &[1], &t, 100);
        let l: Vec<&str> = s.lines().collect();
        assert_eq!(l[0], "cpu  300 0 100 600 0 0 0 0 0 0");
        assert_eq!(l[1], "cpu0 300 0 100 600 0 0 0 0 0 0");
        assert_eq!(&l[2..], ["intr 5", "btime 7"]);
    }
}
