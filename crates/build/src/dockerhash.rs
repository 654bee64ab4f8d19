//! The source digests dockerd's classic builder writes in a `COPY`/`ADD` history entry
//! (`COPY file:<sum> in /dest `): so that history reads as dockerd's and an image dockerd
//! built serves as a `--cache-from` source here. Each path's sum is tarsum v1 (sha256 of the
//! tar header's name, mode, uid, gid, size, typeflag, linkname, uname, gname, devmajor,
//! devminor — no mtime — then the content); a directory source is `dir:` + sha256 of its
//! entries' sums (itself included, sorted, joined by `,`); several sources `multi:` the same
//! way. From the build context the header is the one the client sent (permission bits only,
//! the owner as unpacked, no user names); from an image or stage (`--from`) the one dockerd
//! makes from the file (type bits in the mode, no user names, as dockerd 23+).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::sources::Matched;

/// Where the sources are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Context,
    Image,
}

/// `file:<sum>`, `dir:<sum>` or `multi:<sum>` for `sources`.
pub(crate) fn source_hash(sources: &[Matched], origin: Origin) -> io::Result<String> {
    let mut hashes = Vec::with_capacity(sources.len());
    for m in sources {
        hashes.push(one(m, origin)?);
    }
    Ok(match hashes.as_slice() {
        [one] => one.clone(),
        _ => joined("multi", &hashes),
    })
}

fn one(m: &Matched, origin: Origin) -> io::Result<String> {
    let md = fs::symlink_metadata(&m.real)?;
    if !md.is_dir() {
        return Ok(format!("file:{}", sum(&m.real, &m.rel, &md, origin)?));
    }
    let rel = m.rel.trim_matches('/');
    let mut sums = Vec::new();
    // The context's root itself is not an entry of it (dockerd skips ".").
    if !rel.is_empty() && rel != "." {
        sums.push(sum(&m.real, rel, &md, origin)?);
    }
    let base = if rel == "." { "" } else { rel };
    walk(&m.real, base, origin, &mut sums)?;
    sums.sort();
    Ok(joined("dir", &sums))
}

fn walk(dir: &Path, rel: &str, origin: Origin, out: &mut Vec<String>) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let p = e.path();
        let md = fs::symlink_metadata(&p)?;
        out.push(sum(&p, &r, &md, origin)?);
        if md.is_dir() {
            walk(&p, &r, origin, out)?;
        }
    }
    Ok(())
}

fn joined(prefix: &str, sums: &[String]) -> String {
    format!(
        "{prefix}:{}",
        hex::encode(Sha256::digest(sums.join(",").as_bytes()))
    )
}

/// tarsum v1 of one path, named `rel` (relative, a directory with a trailing `/`).
fn sum(p: &Path, rel: &str, md: &fs::Metadata, origin: Origin) -> io::Result<String> {
    let ft = md.file_type();
    let (typeflag, type_bits) = if ft.is_dir() {
        ('5', 0o040000)
    } else if ft.is_symlink() {
        ('2', 0o120000)
    } else if ft.is_char_device() {
        ('3', 0o020000)
    } else if ft.is_block_device() {
        ('4', 0o060000)
    } else if ft.is_fifo() {
        ('6', 0o010000)
    } else {
        ('0', 0o100000)
    };
    let mut mode = md.mode() & 0o7777;
    if origin == Origin::Image {
        mode |= type_bits;
    }
    let name = if ft.is_dir() {
        format!("{}/", rel.trim_end_matches('/'))
    } else {
        rel.to_string()
    };
    let link = if ft.is_symlink() {
        fs::read_link(p)?.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let size = if ft.is_file() { md.len() } else { 0 };
    let (major, minor) = if ft.is_char_device() || ft.is_block_device() {
        let d = md.rdev();
        (libc::major(d), libc::minor(d))
    } else {
        (0, 0)
    };
    let mut h = Sha256::new();
    for (k, v) in [
        ("name", name),
        ("mode", mode.to_string()),
        ("uid", md.uid().to_string()),
        ("gid", md.gid().to_string()),
        ("size", size.to_string()),
        ("typeflag", typeflag.to_string()),
        ("linkname", link),
        ("uname", String::new()),
        ("gname", String::new()),
        ("devmajor", major.to_string()),
        ("devminor", minor.to_string()),
    ] {
        h.update(k.as_bytes());
        h.update(v.as_bytes());
    }
    if ft.is_file() && size > 0 {
        let mut f = fs::File::open(p)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}
