//! json-file container logs: the engine's reader of log files (line splitting, entry parse,
//! stream and since/until filters) over a file with the input as its content.
#![no_main]
use berth_fuzz::Scratch;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

static DIR: OnceLock<(Scratch, PathBuf)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (_, dir) = DIR.get_or_init(|| {
        let s = Scratch::new();
        let d = s.fresh_dir("logs");
        (s, d)
    });
    let path = dir.join("c-json.log");
    std::fs::write(&path, data).unwrap();
    let sel = data.len() % 4;
    let (since, until) = match sel {
        0 => (0.0, 0.0),
        1 => (1.5e9, 0.0),
        2 => (0.0, 1.7e9),
        _ => (1.0, 4.0e9),
    };
    let entries = berth_engine::fuzzing::log_entries(vec![path], sel != 2, sel != 1, since, until);
    for e in entries {
        let _ = e.map(|e| e.data.len());
    }
});
