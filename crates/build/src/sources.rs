//! `COPY`/`ADD` sources: patterns matched inside a root (the context or a stage's rootfs),
//! and the content hash of what they match (the cache key's part for those steps).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::copy;
use crate::ignore::DockerIgnore;

/// One matched source: its path relative to the root and its real path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub rel: String,
    pub real: PathBuf,
}

/// Whether a source is a pattern (Go `filepath.Match` metacharacters).
pub fn is_pattern(src: &str) -> bool {
    src.contains(['*', '?', '['])
}

/// The entries `src` names inside `root`: itself (symlinks resolved inside the root), or for
/// a pattern every path it matches. Never empty: no match is an error naming the source.
pub fn match_sources(root: &Path, src: &str) -> io::Result<Vec<Matched>> {
    let clean = src.trim_start_matches('/').trim_start_matches("./");
    let not_found = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"),
        )
    };
    if !is_pattern(clean) {
        return match copy::resolve(root, clean) {
            Ok(real) => Ok(vec![Matched {
                rel: clean.trim_end_matches('/').to_string(),
                real,
            }]),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(not_found()),
            Err(e) => Err(e),
        };
    }
    let matcher = DockerIgnore::from_patterns([clean])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    // Walk from the longest prefix without metacharacters.
    let fixed: Vec<&str> = clean.split('/').take_while(|c| !is_pattern(c)).collect();
    let start = fixed.join("/");
    let base = match copy::resolve(root, &start) {
        Ok(b) => b,
        Err(_) => return Err(not_found()),
    };
    let mut out = Vec::new();
    walk_matches(&base, &start, &matcher, &mut out)?;
    if out.is_empty() {
        return Err(not_found());
    }
    Ok(out)
}

fn walk_matches(dir: &Path, rel: &str, m: &DockerIgnore, out: &mut Vec<Matched>) -> io::Result<()> {
    let Ok(md) = fs::symlink_metadata(dir) else {
        return Ok(());
    };
    if !md.is_dir() {
        return Ok(());
    }
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let r = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let real = dir.join(&n);
        if m.is_excluded(&r, false) {
            out.push(Matched { rel: r, real });
        } else {
            walk_matches(&real, &r, m, out)?;
        }
    }
    Ok(())
}

/// A digest of what `sources` hold: relative names, types, modes, owners, sizes, contents
/// and link targets, walked in name order (times are left out, as a touch changes nothing).
pub fn content_hash(sources: &[Matched]) -> io::Result<String> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(s.rel.as_bytes());
        h.update([0]);
        hash_entry(&s.real, "", &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_entry(p: &Path, rel: &str, h: &mut Sha256) -> io::Result<()> {
    let md = fs::symlink_metadata(p)?;
    h.update(
        format!(
            "{rel}\0{:o}\0{}:{}\0{}\0",
            md.mode(),
            md.uid(),
            md.gid(),
            md.len()
        )
        .as_bytes(),
    );
    let ft = md.file_type();
    if ft.is_symlink() {
        h.update(fs::read_link(p)?.as_os_str().as_encoded_bytes());
    } else if ft.is_file() {
        let mut f = fs::File::open(p)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for n in names {
            let r = format!("{rel}/{}", n.to_string_lossy());
            hash_entry(&p.join(&n), &r, h)?;
        }
    }
    h.update([0xff]);
    Ok(())
}

/// Removes from the context what `.dockerignore` excludes, but the paths in `keep`.
pub fn prune_context(root: &Path, ignore: &DockerIgnore, keep: &[&str]) -> io::Result<()> {
    prune_dir(root, "", ignore, keep)
}

fn prune_dir(dir: &Path, rel: &str, ig: &DockerIgnore, keep: &[&str]) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = e.file_type()?.is_dir();
        if keep.contains(&r.as_str()) {
            continue;
        }
        if is_dir {
            if !ig.should_descend(&r) {
                fs::remove_dir_all(e.path())?;
                continue;
            }
            prune_dir(&e.path(), &r, ig, keep)?;
            if ig.is_excluded(&r, true) && fs::read_dir(e.path())?.next().is_none() {
                fs::remove_dir(e.path())?;
            }
        } else if ig.is_excluded(&r, false) {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_and_hash_changes_with_content_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::write(r.join("src/a.txt"), "a").unwrap();
        fs::write(r.join("src/b.md"), "b").unwrap();
        fs::write(r.join("src/sub/c.txt"), "c").unwrap();
        let m = match_sources(r, "src/*.txt").unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].rel, "src/a.txt");
        assert_eq!(match_sources(r, "./src").unwrap()[0].rel, "src");
        assert!(match_sources(r, "nope/*.txt").is_err());
        assert!(match_sources(r, "missing").is_err());
        let before = content_hash(&match_sources(r, "src").unwrap()).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(r.join("src/sub/c.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(
            before,
            content_hash(&match_sources(r, "src").unwrap()).unwrap()
        );
        fs::write(r.join("src/sub/c.txt"), "C").unwrap();
        assert_ne!(
            before,
            content_hash(&match_sources(r, "src").unwrap()).unwrap()
        );
    }

    #[test]
    fn prune_excludes_and_reincludes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("logs")).unwrap();
        fs::write(r.join("logs/a.log"), "").unwrap();
        fs::write(r.join("logs/keep.log"), "").unwrap();
        fs::write(r.join("secret"), "").unwrap();
        fs::write(r.join("Dockerfile"), "").unwrap();
        let ig = DockerIgnore::parse("logs\n!logs/keep.log\nsecret\nDockerfile\n").unwrap();
        prune_context(r, &ig, &["Dockerfile"]).unwrap();
        assert!(!r.join("secret").exists());
        assert!(!r.join("logs/a.log").exists());
        assert!(r.join("logs/keep.log").exists());
        assert!(r.join("Dockerfile").exists());
    }
}
