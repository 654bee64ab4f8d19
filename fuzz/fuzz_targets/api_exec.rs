//! `POST /containers/{id}/exec` (+ start) bodies: the API's JSON body parse, create's checks
//! (command, detach keys) and the OCI process start builds from the container's spec.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static SPEC: OnceLock<serde_json::Value> = OnceLock::new();
    let spec = SPEC.get_or_init(|| berth_runtime::spec::default_spec(false));
    let Ok(body) = berth_api::body::parse_json_object(data, "exec create") else {
        return;
    };
    if let Ok(p) = berth_engine::fuzzing::exec(&body, spec, Path::new("/nonexistent/rootfs")) {
        assert!(p.is_object(), "exec process is not an object: {p}");
    }
});
