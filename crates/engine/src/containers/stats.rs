//! top and stats.
use crate::containers::*;
use crate::shared::*;
use crate::util::*;
use crate::*;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn top(e: &Engine, x: &str, ps_args: Option<&str>) -> Result<Value> {
    let s = &e.inner.0;
    let r = running_id(s, x)?;
    let pids =
        s.rt.pids(&r.id)
            .map_err(|er| internal(format!("list the processes of {}", r.id), er))?;
    let args: Vec<String> = ps_args
        .filter(|a| !a.trim().is_empty())
        .unwrap_or("-ef")
        .split_whitespace()
        .map(String::from)
        .collect();
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|er| internal("run ps", er))?;
    if !out.status.success() {
        return Err(Error::internal_msg(format!(
            "Error running ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::BadParameter("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|x| x.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

pub(crate) fn system_cpu_usage() -> u64 {
    // /proc/stat "cpu" line in clock ticks -> nanoseconds (Docker's formula).
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(l) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let ticks: u64 = l
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}

pub(crate) fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}

pub(crate) fn stats(e: &Engine, x: &str, prev: Option<&Value>, one_shot: bool) -> Result<Value> {
    let s = &e.inner.0;
    let (id, _) = s.containers.find(x)?;
    let r = s.containers.record(&id)?;
    let zero_time = "0001-01-01T00:00:00Z";
    if !r.state.status.has_process() {
        // Docker returns an all-zero sample for a stopped container.
        return Ok(json!({
            "name": r.name, "id": r.id, "read": zero_time, "preread": zero_time,
            "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null},
            "num_procs": 0, "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {},
        }));
    }
    let sample = |s: &Shared| -> Result<(Value, Value, String)> {
        let st =
            s.rt.stats(&id)
                .map_err(|er| internal(format!("stats of {id}"), er))?;
        let cpu = json!({
            "cpu_usage": {
                "total_usage": st.cpu.usage.total,
                "percpu_usage": st.cpu.usage.percpu,
                "usage_in_kernelmode": st.cpu.usage.kernel,
                "usage_in_usermode": st.cpu.usage.user,
            },
            "system_cpu_usage": system_cpu_usage(),
            "online_cpus": online_cpus(),
            "throttling_data": {"periods": st.cpu.throttling.periods, "throttled_periods": st.cpu.throttling.throttled_periods, "throttled_time": st.cpu.throttling.throttled_time},
        });
        let mem_raw = &st.memory.raw;
        let mut memory = json!({
            "usage": st.memory.usage.usage,
            "max_usage": st.memory.usage.max,
            "limit": if st.memory.usage.limit == 0 || st.memory.usage.limit > (1u64 << 62) { host_mem() } else { st.memory.usage.limit },
            "failcnt": st.memory.usage.failcnt,
            "stats": mem_raw,
        });
        if st.memory.usage.usage == 0 && mem_raw.is_empty() {
            memory = json!({});
        }
        let blk = |v: &Vec<berth_cgroups::stats::BlkioEntry>| -> Value {
            if v.is_empty() {
                return Value::Null;
            }
            json!(v
                .iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect::<Vec<_>>())
        };
        let blkio = json!({
            "io_service_bytes_recursive": blk(&st.blkio.io_service_bytes_recursive),
            "io_serviced_recursive": blk(&st.blkio.io_serviced_recursive),
            "io_queue_recursive": null, "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null,
        });
        let rest = json!({"memory_stats": memory, "blkio_stats": blkio, "pids_stats": {"current": st.pids.current, "limit": if st.pids.limit == 0 { Value::Null } else { json!(st.pids.limit) }}});
        Ok((cpu, rest, now_rfc3339()))
    };
    let (precpu, preread) = match prev {
        Some(p) => (
            p["cpu_stats"].clone(),
            p["read"].as_str().unwrap_or(zero_time).to_string(),
        ),
        None if !one_shot => {
            let (c, _, t) = sample(s)?;
            std::thread::sleep(Duration::from_millis(100));
            (c, t)
        }
        None => (
            json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}),
            zero_time.to_string(),
        ),
    };
    let (cpu, rest, read) = sample(s)?;
    let mut v = json!({
        "name": r.name,
        "id": r.id,
        "read": read,
        "preread": preread,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": precpu,
        "networks": {},
    });
    for (k, val) in rest.as_object().into_iter().flatten() {
        v[k] = val.clone();
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("networks");
    }
    Ok(v)
}

pub(crate) fn host_mem() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
