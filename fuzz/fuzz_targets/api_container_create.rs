//! `POST /containers/create` bodies: the API's JSON body parse, then everything create does
//! with the body alone (decode, HostConfig defaults and checks, mounts, merge with an image
//! config) up to the OCI spec, which must then load in the runtime (`spec::parse`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn image() -> &'static berth_image::model::ContainerConfig {
    static IMG: OnceLock<berth_image::model::ContainerConfig> = OnceLock::new();
    IMG.get_or_init(|| {
        serde_json::from_value(serde_json::json!({
            "Cmd": ["sh"], "Env": ["PATH=/bin", "A=b"], "WorkingDir": "/w",
            "Labels": {"l": "v"}, "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGTERM"
        }))
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = berth_api::body::parse_json_object(data, "container create") else {
        return;
    };
    let dir = Path::new("/nonexistent/berth-fuzz");
    if let Ok(spec) = berth_engine::fuzzing::container_create(&body, image(), dir) {
        let json = serde_json::to_vec(&spec).unwrap();
        if let Err(e) = berth_runtime::spec::parse(&json) {
            panic!("the spec built for a create does not load in the runtime: {e}");
        }
    }
});
