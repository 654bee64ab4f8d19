//! Layer unpack (`berth_image::layer::unpack_layer`: gzip/zstd/plain tar, whiteouts, hard and
//! symbolic links, devices, xattrs) into a fresh root on a tmpfs, in the sandbox. Asserts that
//! nothing lands outside the root (nothing new beside it, `outside/sentinel` untouched, no
//! EROFS from a write that left the scratch tmpfs). The last byte picks the whiteout mode.
//! A layer whose tar-split description verifies against what was unpacked must rebuild to the
//! very bytes of the (decompressed) input.
#![no_main]
use berth_fuzz::{assert_no_erofs, Scratch};
use berth_image::layer::{decompress, unpack_layer, UnpackOptions, WhiteoutMode};
use berth_image::tarsplit;
use libfuzzer_sys::fuzz_target;
use std::io::Read;
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
    match unpack_layer(data, &root, &opts) {
        Err(e) => assert_no_erofs("unpack", &e),
        Ok(st) => {
            if let Ok(d) = &st.split {
                if let Ok(Ok(_)) = tarsplit::verify(&root, d) {
                    let desc = root.with_extension("tarsplit");
                    std::fs::write(&desc, &d.data).expect("write description");
                    let mut want = Vec::new();
                    decompress(data)
                        .and_then(|mut r| {
                            r.read_to_end(&mut want)
                                .map_err(|e| berth_image::Error::invalid("fuzz", e.to_string()))
                        })
                        .expect("the input decompressed once already");
                    let mut got = Vec::new();
                    tarsplit::TarSplitReader::open(&desc, &root, &st.diff_id)
                        .expect("open description")
                        .read_to_end(&mut got)
                        .expect("a verified description rebuilds");
                    assert!(got == want, "rebuilt tar differs from the input");
                    let _ = std::fs::remove_file(&desc);
                }
            }
        }
    }
    s.check_contained(&["root"]);
});
