//! Disk use of a directory tree, as `du -s` counts it: allocated blocks (what a removal frees),
//! each inode once however many hard links name it, the directories themselves included.
//! What cannot be read counts 0 (a tree changing underneath is measured as it is found).
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes the files below `p` take on disk.
pub(crate) fn disk_usage(p: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for en in rd.flatten() {
            let Ok(m) = en.path().symlink_metadata() else {
                continue;
            };
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(en.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once() {
        let d = std::env::temp_dir().join(format!("berth-du-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a"), vec![1u8; 64 * 1024]).unwrap();
        let one = disk_usage(&d);
        assert!(one >= 64 * 1024, "{one}");
        std::fs::hard_link(d.join("sub/a"), d.join("b")).unwrap();
        assert_eq!(disk_usage(&d), one);
        std::fs::write(d.join("c"), vec![1u8; 64 * 1024]).unwrap();
        assert!(disk_usage(&d) >= one + 64 * 1024);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
