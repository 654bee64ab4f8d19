//! OCI image layout directories (`ImageService::import_oci_dir`): the input is a tar whose
//! files, directories and relative symlinks are laid out as the layout directory, then
//! imported into a fresh image store (copy snapshotter), in the sandbox.
#![no_main]
use berth_fuzz::{assert_no_erofs, Scratch};
use berth_image::snapshot::SnapshotterKind;
use berth_image::{ImageService, Progress};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

/// Lay the tar's entries out under `dir` (harness code, kept simple and contained: no `..`,
/// no absolute symlink targets; what fails to be made is left out).
fn materialise(data: &[u8], dir: &Path) {
    let mut ar = tar::Archive::new(data);
    let Ok(entries) = ar.entries() else { return };
    for e in entries.take(64) {
        let Ok(mut e) = e else { return };
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let comps: Vec<&str> = name
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if comps.is_empty() || comps.contains(&"..") {
            continue;
        }
        let p = dir.join(comps.join("/"));
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let kind = e.header().entry_type();
        if kind.is_dir() {
            let _ = std::fs::create_dir_all(&p);
        } else if kind.is_symlink() {
            let target = e
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if !target.starts_with('/') && !target.split('/').any(|c| c == "..") {
                let _ = std::os::unix::fs::symlink(target, &p);
            }
        } else if kind.is_file() {
            let mut b = Vec::new();
            if std::io::Read::read_to_end(&mut e, &mut b).is_ok() {
                let _ = std::fs::write(&p, b);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let s = SCRATCH.get_or_init(Scratch::new);
    let layout = s.fresh_dir("layout");
    materialise(data, &layout);
    let root = s.fresh_root();
    let svc = ImageService::open(&root, Some(SnapshotterKind::Copy)).unwrap();
    match svc.import_oci_dir(&layout, None, &|_: Progress| {}) {
        Ok(_) => {
            svc.list().unwrap();
        }
        Err(e) => assert_no_erofs("import", &e),
    }
    drop(svc);
    s.check_contained(&["root", "layout"]);
});
