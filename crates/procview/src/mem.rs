//! /proc/meminfo and /proc/swaps from the memory controller. Without a memory limit both are
//! the host's files, unchanged.

use crate::cgroup::Memory;

/// Value in kB of a `Key:   N kB` line of a meminfo text.
pub fn host_kb(host: &str, key: &str) -> Option<u64> {
    host.lines().find_map(|l| {
        let (k, rest) = l.split_once(':')?;
        (k == key).then(|| rest.split_whitespace().next()?.parse().ok())?
    })
}

/// The container's meminfo: the host's lines in the host's order, with those the cgroup
/// knows replaced (the others, like HugePages_*, stay the host's, as in LXCFS).
pub fn meminfo(host: &str, m: &Memory) -> String {
    let Some(limit) = m.limit else {
        return host.to_string();
    };
    let kb = |b: u64| b / 1024;
    let host_total = host_kb(host, "MemTotal").unwrap_or(u64::MAX);
    let total = kb(limit).min(host_total);
    let free = total.saturating_sub(kb(m.usage));
    let available = (free + kb(m.active_file + m.inactive_file + m.slab_reclaimable)).min(total);
    let swap_total = match m.swap_limit {
        Some(s) => kb(s).min(host_kb(host, "SwapTotal").unwrap_or(0)),
        None => host_kb(host, "SwapTotal").unwrap_or(0),
    };
    let swap_free = swap_total.saturating_sub(kb(m.swap_usage));
    let ours = |key: &str| -> Option<u64> {
        Some(match key {
            "MemTotal" => total,
            "MemFree" => free,
            "MemAvailable" => available,
            "Buffers" | "SwapCached" => 0,
            "Cached" => kb(m.cache),
            "Active" => kb(m.active_anon + m.active_file),
            "Inactive" => kb(m.inactive_anon + m.inactive_file),
            "Active(anon)" => kb(m.active_anon),
            "Inactive(anon)" => kb(m.inactive_anon),
            "Active(file)" => kb(m.active_file),
            "Inactive(file)" => kb(m.inactive_file),
            "Unevictable" => kb(m.unevictable),
            "SwapTotal" => swap_total,
            "SwapFree" => swap_free,
            "AnonPages" => kb(m.anon),
            "Mapped" => kb(m.mapped),
            "Shmem" => kb(m.shmem),
            "Slab" => kb(m.slab_reclaimable + m.slab_unreclaimable),
            "SReclaimable" => kb(m.slab_reclaimable),
            "SUnreclaim" => kb(m.slab_unreclaimable),
            _ => return None,
        })
    };
    let mut out = String::with_capacity(host.len());
    for l in host.lines() {
        match l.split_once(':').and_then(|(k, _)| Some((k, ours(k)?))) {
            Some((k, v)) => out.push_str(&format!("{:<16}{v:>8} kB\n", format!("{k}:"))),
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// /proc/swaps: the header and, when the container may swap, one virtual entry.
pub fn swaps(host_swaps: &str, host_meminfo: &str, m: &Memory) -> String {
    if m.limit.is_none() {
        return host_swaps.to_string();
    }
    let mut out = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    let host_total = host_kb(host_meminfo, "SwapTotal").unwrap_or(0);
    let total = m
        .swap_limit
        .map_or(host_total, |s| (s / 1024).min(host_total));
    if total > 0 {
        let used = (m.swap_usage / 1024).min(total);
        out.push_str(&format!(
            "none\t\t\t\t\tvirtual\t\t{total}\t\t{used}\t\t0\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "MemTotal:       24683508 kB\nMemFree:        19972108 kB\nMemAvailable:   23585812 kB\nBuffers:          229372 kB\nCached:          3483236 kB\nShmem:             10344 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\nHugePages_Total:       0\n";

    #[test]
    fn limited() {
        let m = Memory {
            limit: Some(64 << 20),
            usage: 30 << 20,
            cache: 29 << 20,
            shmem: 28 << 20,
            swap_limit: Some(64 << 20),
            ..Default::default()
        };
        let t = meminfo(HOST, &m);
        assert!(t.starts_with("MemTotal:          65536 kB\n"), "{t}");
        assert_eq!(host_kb(&t, "MemFree"), Some(34 << 10));
        assert_eq!(host_kb(&t, "Shmem"), Some(28 << 10));
        assert_eq!(host_kb(&t, "Buffers"), Some(0));
        assert_eq!(
            host_kb(&t, "SwapTotal"),
            Some(0),
            "no more swap than the host has"
        );
        assert!(t.contains("HugePages_Total:       0\n"));
        assert_eq!(t.lines().count(), HOST.lines().count());
    }

    #[test]
    fn unlimited_is_the_host() {
        assert_eq!(meminfo(HOST, &Memory::default()), HOST);
        assert_eq!(swaps("x\n", HOST, &Memory::default()), "x\n");
    }

    #[test]
    fn limit_above_host_is_the_host_total() {
        let m = Memory {
            limit: Some(1 << 50),
            ..Default::default()
        };
        assert_eq!(host_kb(&meminfo(HOST, &m), "MemTotal"), Some(24683508));
    }
}
