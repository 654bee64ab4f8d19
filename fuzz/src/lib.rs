//! Shared helpers of berth's fuzz targets: a sandbox for the targets that write files (layer
//! unpack, archive loads) and the scratch directories they work in.
//!
//! Those targets run as root (the unpacker chowns, mknods and sets trusted.* xattrs as it does
//! in berthd). So that a containment bug found by the fuzzer cannot damage this machine,
//! [`sandbox`] first moves the process into a private mount namespace where every mount is
//! read-only, but for a fresh tmpfs at [`SCRATCH`] and the fuzz directory itself (corpus and
//! crash artifacts). A write that escapes the layer root then fails with EROFS, which the
//! targets treat as a finding, and one that lands elsewhere on the scratch tmpfs is seen by
//! [`Scratch::check_contained`].
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The scratch tmpfs (inside the private mount namespace only).
pub const SCRATCH: &str = "/dev/shm";

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

fn mount_setattr(path: &str, flags: libc::c_uint, set: u64, clr: u64) {
    let p = std::ffi::CString::new(path).unwrap();
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `p` is a valid NUL-terminated string and `attr` a valid mount_attr of the size
    // passed; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            p.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        panic!(
            "sandbox: mount_setattr {path}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Enter the sandbox (once per process; on the calling thread, which must be the fuzzing
/// thread: threads it spawns later inherit it). Panics when it cannot be set up: a target
/// that writes files never runs unsandboxed.
pub fn sandbox() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use nix::mount::{mount, MsFlags};
        let fuzz_dir = env!("CARGO_MANIFEST_DIR");
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .expect("sandbox: unshare(CLONE_NEWNS) (run as root)");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("sandbox: make mounts private");
        mount(
            Some(fuzz_dir),
            fuzz_dir,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("sandbox: bind the fuzz dir");
        mount_setattr("/", AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0);
        mount_setattr(fuzz_dir, 0, 0, MOUNT_ATTR_RDONLY);
        mount(
            Some("tmpfs"),
            SCRATCH,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=256m,mode=755"),
        )
        .expect("sandbox: scratch tmpfs");
    });
}

/// A per-process work area on the scratch tmpfs: `root/` (made fresh for every input) beside
/// `outside/sentinel`, which must never change.
pub struct Scratch {
    base: PathBuf,
}

const SENTINEL: &[u8] = b"must not change";

impl Scratch {
    /// Enter the sandbox and lay out the work area.
    pub fn new() -> Scratch {
        sandbox();
        let base = PathBuf::from(SCRATCH).join("fz");
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/sentinel"), SENTINEL).unwrap();
        Scratch { base }
    }

    /// A fresh, empty `root/`.
    pub fn fresh_root(&self) -> PathBuf {
        let root = self.base.join("root");
        if root.symlink_metadata().is_ok() {
            remove_tree(&root);
        }
        std::fs::create_dir(&root).unwrap();
        root
    }

    /// Another fresh directory beside `root/` (for a second tree a target needs).
    pub fn fresh_dir(&self, name: &str) -> PathBuf {
        let d = self.base.join(name);
        if d.symlink_metadata().is_ok() {
            remove_tree(&d);
        }
        std::fs::create_dir(&d).unwrap();
        d
    }

    /// Panic if anything but `allowed` (and `outside/`) appeared on the scratch tmpfs, or
    /// `outside/` changed: something was written outside the root it was meant for.
    pub fn check_contained(&self, allowed: &[&str]) {
        let top: Vec<String> = names(Path::new(SCRATCH));
        assert_eq!(top, vec!["fz".to_string()], "write outside the work area");
        for n in names(&self.base) {
            assert!(
                n == "outside" || allowed.contains(&n.as_str()),
                "unexpected {n:?} beside the root: a write escaped it"
            );
        }
        assert_eq!(
            names(&self.base.join("outside")),
            vec!["sentinel".to_string()],
            "outside/ changed: a write escaped the root"
        );
        let st = std::fs::symlink_metadata(self.base.join("outside/sentinel")).unwrap();
        assert!(st.is_file(), "outside/sentinel replaced");
        assert_eq!(
            std::fs::read(self.base.join("outside/sentinel")).unwrap(),
            SENTINEL,
            "outside/sentinel written through"
        );
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Remove a tree an input made (modes may deny the owner: root is not bothered; immutable
/// files cannot be made from a tar). An image store's background snapshot sync (a detached
/// thread that `register` starts, rewriting `snapshots/.unsynced`) may still be writing
/// there for a moment after the operation returned: a directory that is not empty yet is
/// tried again.
pub fn remove_tree(p: &Path) {
    for _ in 0..1000 {
        match std::fs::remove_dir_all(p) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(e) => panic!("remove {}: {e}", p.display()),
        }
    }
    panic!("remove {}: still not empty after 1000 tries", p.display());
}

/// Panic when an error says a write hit a read-only mount: in the sandbox only what is
/// outside the scratch tmpfs is read-only, so the operation tried to write outside its root.
pub fn assert_no_erofs(what: &str, err: &dyn std::fmt::Display) {
    let msg = err.to_string();
    assert!(
        !msg.contains("EROFS") && !msg.contains("Read-only file system"),
        "{what}: write outside the root: {msg}"
    );
}
