//! Layer unpack (`berth_image::layer::unpack_layer`: gzip/zstd/plain tar, whiteouts, hard and
//! symbolic links, devices, xattrs) into a fresh root on a tmpfs, in the sandbox. Asserts that
//! nothing lands outside the root (nothing new beside it, `outside/sentinel` untouched, no
//! EROFS from a write that left the scratch tmpfs). The last byte picks the whiteout mode.
#![no_main]
use berth_fuzz::{assert_no_erofs, Scratch};
use berth_image::layer::{unpack_layer, UnpackOptions, WhiteoutMode};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let s = SCRATCH.get_or_init(Scratch::new);
    let whiteouts = match data.last() {
        Some(b) if b & 1 == 1 => WhiteoutMode::Apply,
        _ => WhiteoutMode::Overlay,
    };
    let root = s.fresh_root();
    let opts = UnpackOptions {
        whiteouts,
        name: "fuzz layer".into(),
    };
    if let Err(e) = unpack_layer(data, &root, &opts) {
        assert_no_erofs("unpack", &e);
    }
    s.check_contained(&["root"]);
});
