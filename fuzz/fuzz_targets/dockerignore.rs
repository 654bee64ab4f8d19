//! `.dockerignore` files: the parser, then matching (`is_excluded`, `should_descend`) of
//! fixed paths and of the file's own lines taken as paths.
#![no_main]
use berth_build::DockerIgnore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let Ok(ig) = DockerIgnore::parse(&s) else {
        return;
    };
    let _ = ig.has_exceptions();
    for p in ["Dockerfile", "a/b/c.txt", "node_modules", ".git/x", "a"] {
        let _ = ig.is_excluded(p, false);
        let _ = ig.is_excluded(p, true);
        let _ = ig.should_descend(p);
    }
    for line in s.lines().take(16) {
        let p = line.trim().trim_start_matches('!');
        let _ = ig.is_excluded(p, false);
        let _ = ig.should_descend(p);
    }
});
