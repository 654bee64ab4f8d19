//! Seccomp profiles: Docker's profile JSON -> OCI `linux.seccomp` (`docker_to_oci`, default
//! capabilities, amd64 and arm64) -> BPF (`compile`), OCI JSON directly (`parse_oci`), and the
//! compiled-filter cache format (`Filter::from_bytes`). A compiled filter is run in userspace
//! on a few syscalls and must survive its own serialisation.
#![no_main]
use berth_seccomp::{Filter, SeccompData};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn caps() -> &'static [String] {
    static CAPS: OnceLock<Vec<String>> = OnceLock::new();
    CAPS.get_or_init(|| {
        berth_seccomp::DOCKER_DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .collect()
    })
}

fn exercise(f: &Filter) {
    for (nr, arch) in [
        (0, 0xc000003e),
        (59, 0xc000003e),
        (435, 0xc000003e),
        (1, 0xc00000b7),
    ] {
        let _ = f.evaluate(&SeccompData {
            nr,
            arch,
            instruction_pointer: 0,
            args: [0, 1, u64::MAX, 0x7fff_ffff, 4, 5],
        });
    }
    let b = f.to_bytes();
    let back = Filter::from_bytes(&b).expect("a compiled filter reads back from its bytes");
    assert_eq!(&back, f);
}

fuzz_target!(|data: &[u8]| {
    let arch = if data.len() % 2 == 0 {
        "amd64"
    } else {
        "arm64"
    };
    if let Ok(oci) = berth_seccomp::docker_to_oci(data, caps(), arch) {
        if let Ok(f) = berth_seccomp::compile(&oci) {
            exercise(&f);
        }
    }
    if let Ok(oci) = berth_seccomp::parse_oci(data) {
        if let Ok(f) = berth_seccomp::compile(&oci) {
            exercise(&f);
        }
    }
    if let Ok(f) = Filter::from_bytes(data) {
        let _ = f.evaluate(&SeccompData {
            nr: 1,
            arch: 0xc000003e,
            instruction_pointer: 0,
            args: [0; 6],
        });
    }
});
