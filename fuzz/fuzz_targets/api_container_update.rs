//! `POST /containers/{id}/update` bodies: the API's JSON body parse, the merge onto a
//! container's HostConfig, its checks and the cgroup resources it would set.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = berth_api::body::parse_json_object(data, "container update") else {
        return;
    };
    let host =
        serde_json::json!({"Memory": 67108864, "CpuShares": 512, "RestartPolicy": {"Name": "no"}});
    let _ = berth_engine::fuzzing::container_update(&host, &body);
});
