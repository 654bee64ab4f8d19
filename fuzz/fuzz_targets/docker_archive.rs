//! `docker load` (`ImageService::load`: docker-archive in both forms, OCI layout tars, maybe
//! compressed) into a fresh image store (copy snapshotter) on a tmpfs, in the sandbox. A load
//! that succeeds is listed and saved again. Asserts nothing is written outside the store.
#![no_main]
use berth_fuzz::{assert_no_erofs, Scratch};
use berth_image::snapshot::SnapshotterKind;
use berth_image::{ImageService, Progress};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let s = SCRATCH.get_or_init(Scratch::new);
    let root = s.fresh_root();
    let svc = ImageService::open(&root, Some(SnapshotterKind::Copy)).unwrap();
    match svc.load(data, &|_: Progress| {}) {
        Ok(loaded) => {
            svc.list().unwrap();
            let ids: Vec<String> = loaded.iter().map(|l| l.id.to_string()).collect();
            let names: Vec<&str> = ids.iter().map(String::as_str).collect();
            if let Err(e) = svc.save(&names, std::io::sink()) {
                assert_no_erofs("save", &e);
            }
        }
        Err(e) => assert_no_erofs("load", &e),
    }
    drop(svc);
    s.check_contained(&["root"]);
});
