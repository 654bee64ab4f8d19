//! The runtime's OCI bundle config.json loader (`berth_runtime::spec::parse`) and the checks
//! it runs before creating a container (`spec::validate`, against a bundle whose rootfs
//! exists, on the sandbox's scratch tmpfs).
#![no_main]
use berth_fuzz::Scratch;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

static BUNDLE: OnceLock<(Scratch, PathBuf)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (_, bundle) = BUNDLE.get_or_init(|| {
        let s = Scratch::new();
        let b = s.fresh_dir("bundle");
        std::fs::create_dir(b.join("rootfs")).unwrap();
        (s, b)
    });
    if let Ok(spec) = berth_runtime::spec::parse(data) {
        let _ = berth_runtime::spec::validate(&spec, bundle);
    }
});
