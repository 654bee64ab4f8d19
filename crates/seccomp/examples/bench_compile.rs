//! Time the Docker default profile: conversion, compilation, cache hit.
//!   cargo run --release -p berth-seccomp --example bench_compile
#![allow(clippy::unwrap_used, clippy::expect_used)] // an example is a developer tool: a panic reports its failure
use std::time::{Duration, Instant};

fn per_run<T>(n: u32, mut f: impl FnMut() -> T) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    t.elapsed() / n
}

fn main() {
    let json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/docker-default-seccomp.json"
    ))
    .expect("profile");
    let caps: Vec<String> = "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE"
        .split(' ')
        .map(|c| format!("CAP_{c}"))
        .collect();
    let n = 2000;
    let p = berth_seccomp::docker_to_oci(&json, &caps, "amd64").expect("convert");
    let f = berth_seccomp::compile(&p).expect("compile");
    let dir = std::env::temp_dir().join(format!("berth-seccomp-bench-{}", std::process::id()));
    berth_seccomp::compile_cached(&p, &dir).expect("cache store");
    println!(
        "docker default profile (14 default caps, amd64): {} BPF instructions",
        f.program().len()
    );
    println!(
        "  docker_to_oci:          {:?}",
        per_run(n, || berth_seccomp::docker_to_oci(&json, &caps, "amd64")
            .expect("convert"))
    );
    println!(
        "  compile:                {:?}",
        per_run(n, || berth_seccomp::compile(&p).expect("compile"))
    );
    println!(
        "  compile_cached (hit):   {:?}",
        per_run(n, || berth_seccomp::compile_cached(&p, &dir)
            .expect("cached"))
    );
    println!(
        "  cache_key (sha256):     {:?}",
        per_run(n, || berth_seccomp::cache_key(&p).expect("key"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
