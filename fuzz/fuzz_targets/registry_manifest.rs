//! What a registry sends for an image: manifests and indexes (`model::parse_manifest`, with
//! and without a Content-Type), platform selection in an index, image configs
//! (`ImageConfig::parse`) and platform strings.
#![no_main]
use berth_image::model::{self, ImageConfig, ManifestKind, Platform};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 5] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
    "application/json",
];

fuzz_target!(|data: &[u8]| {
    let ct = CONTENT_TYPES[data.len() % CONTENT_TYPES.len()];
    for ct in [None, Some(ct)] {
        match model::parse_manifest(data, ct, "fuzz manifest") {
            Ok(ManifestKind::Index(idx)) => {
                for want in [
                    Platform::linux_amd64(),
                    Platform::parse("linux/arm64/v8").unwrap(),
                    Platform::parse("windows/amd64").unwrap(),
                ] {
                    let _ = model::select_platform(&idx, &want, "fuzz");
                }
            }
            Ok(ManifestKind::Image(m)) => {
                for l in &m.layers {
                    let _ = model::is_layer_media_type(&l.media_type);
                }
            }
            Err(_) => {}
        }
    }
    if let Ok(cfg) = ImageConfig::parse(data, "fuzz config") {
        let _ = cfg.platform();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = Platform::parse(s) {
            let _ = p.to_string();
        }
    }
});
