use super::security::{rlimits, ALL_CAPS};
use super::*;
use crate::model::decode;
use serde_json::{json, Value};

fn host(v: Value) -> HostConfig {
    decode("HostConfig", &v).unwrap()
}

#[test]
fn caps() {
    assert_eq!(capabilities(&host(json!({}))).unwrap().len(), 14);
    let c = capabilities(&host(json!({"CapDrop": ["ALL"], "CapAdd": ["NET_ADMIN"]}))).unwrap();
    assert_eq!(c, vec!["CAP_NET_ADMIN"]);
    let c = capabilities(&host(json!({"CapDrop": ["chown"]}))).unwrap();
    assert!(!c.contains(&"CAP_CHOWN".to_string()) && c.len() == 13);
    assert!(capabilities(&host(json!({"CapAdd": ["BOGUS"]}))).is_err());
    // Every capability berth knows is one oci-spec knows.
    let all: Vec<String> = ALL_CAPS.iter().map(|c| c.to_string()).collect();
    let lc = security::oci_capabilities(&all).unwrap();
    assert_eq!(
        lc.bounding().as_ref().map(|b| b.len()),
        Some(ALL_CAPS.len())
    );
}

#[test]
fn cmd_merge() {
    let ie = vec!["/ep".to_string()];
    let ic = vec!["a".to_string()];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(merge_cmd(None, None, &ie, &ic), (ie.clone(), ic.clone()));
    assert_eq!(
        merge_cmd(None, Some(&s(&["b"])), &ie, &ic),
        (ie.clone(), vec!["b".to_string()])
    );
    assert_eq!(
        merge_cmd(Some(&s(&["/x"])), None, &ie, &ic),
        (vec!["/x".to_string()], vec![])
    );
    assert_eq!(
        merge_cmd(Some(&s(&[""])), None, &ie, &ic),
        (vec![], ic.clone())
    );
}

#[test]
fn env_merge() {
    let e = merge_env(
        &["A=1".into(), "PATH=/x".into()],
        &["A=2".into(), "B=3".into()],
    );
    assert_eq!(e, vec!["A=2", "PATH=/x", "B=3"]);
    assert!(merge_env(&[], &[])[0].starts_with("PATH="));
}

#[test]
fn network_modes() {
    assert_eq!(
        net_mode(&host(json!({"NetworkMode": "default"}))).unwrap(),
        NetMode::None
    );
    assert_eq!(
        net_mode(&host(json!({"NetworkMode": "bridge"}))).unwrap(),
        NetMode::Bridge
    );
    assert_eq!(
        net_mode(&host(json!({"NetworkMode": "container:abc"}))).unwrap(),
        NetMode::Container("abc".into())
    );
}

#[test]
fn ulimit_above_hard_is_refused() {
    let e = rlimits(&host(
        json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": i64::MAX}]}),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("nofile"), "{e}");
    assert!(rlimits(&host(
        json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]})
    ))
    .is_err());
}

#[test]
fn update_resources_are_the_specs() {
    let h = host(
        json!({"Memory": 67108864, "MemoryReservation": 1048576, "NanoCpus": 500000000,
        "CpusetMems": "0", "PidsLimit": -5, "BlkioWeight": 500}),
    );
    let r = serde_json::to_value(resources(&h).unwrap()).unwrap();
    assert_eq!(
        r,
        json!({"memory": {"limit": 67108864, "swap": 134217728, "reservation": 1048576},
            "cpu": {"period": 100000, "quota": 50000, "mems": "0"}, "pids": {"limit": -1},
            "blockIO": {"weight": 500}})
    );
    assert_eq!(
        serde_json::to_value(resources(&host(json!({}))).unwrap()).unwrap(),
        json!({})
    );
    // (A weight out of u16 is refused as it is decoded.)
    let e = decode::<HostConfig>("HostConfig", &json!({"BlkioWeight": 70000})).unwrap_err();
    assert!(e.to_string().contains("HostConfig.BlkioWeight"), "{e}");
}
