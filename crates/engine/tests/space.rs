//! Space is given back: `rmi` and `image prune` free the layer blobs and unpacked layers no
//! image or container needs, and prune reports what it freed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
mod common;
use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes of disk used below `p` (allocated blocks; hard links counted once).
fn disk_use(p: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return;
        };
        if seen.insert((m.dev(), m.ino())) {
            *total += m.blocks() * 512;
        }
        if m.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), seen, total);
            }
        }
    }
    let mut total = 0;
    walk(p, &mut HashSet::new(), &mut total);
    total
}

/// A rootfs tar with one 8 MB file of incompressible bytes, different per `seed`.
fn big_rootfs(seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; 8 << 20];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "big.bin", &data[..]).unwrap();
    b.into_inner().unwrap()
}

fn import(env: &Env, seed: u64, repo: &str) {
    let tar = big_rootfs(seed);
    let mut r: &[u8] = &tar;
    env.engine
        .image_import(&mut r, Some(repo), Some("latest"), &[], None, None, &|_| {})
        .unwrap();
}

const MB: u64 = 1 << 20;

#[test]
fn rmi_gives_the_space_back() {
    let env = Env::new();
    let store = env.root.join("image");
    let before = disk_use(&store);
    import(&env, 1, "big1");
    let loaded = disk_use(&store);
    assert!(
        loaded > before + 8 * MB,
        "the import stored {} bytes",
        loaded - before
    );
    env.engine.image_remove("big1", false, false).unwrap();
    let after = disk_use(&store);
    assert!(
        after < before + MB,
        "after rmi {} bytes more than before the import (loaded: {})",
        after - before,
        loaded - before
    );
    // the base image is untouched and still runs
    let id = env.create(json!({"Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}));
    env.engine.container_start(&id).unwrap();
}

#[test]
fn image_prune_frees_what_it_reports() {
    let env = Env::new();
    let store = env.root.join("image");
    let before = disk_use(&store);
    import(&env, 2, "big2");
    import(&env, 3, "big3");
    // each import drops its layer blob in the background once the unpacked layer's tar-split
    // description is synced: measure once both are gone (not a blob freed later by that pass)
    env.wait_for("the imports' layer blobs to be dropped", || {
        big_blobs(&store.join("content")) == 0
    });
    let loaded = disk_use(&store);
    // a container keeps its image (and the image's layers) through the prune
    let keep = env
        .create(json!({"Image": "big3", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}));
    let df = env.engine.system_df(&["image".into()], false).unwrap();
    let reclaimable = df["ImageUsage"]["Reclaimable"].as_u64().unwrap();
    let rep = env
        .engine
        .image_prune(&json!({"dangling": ["false"]}))
        .unwrap();
    let reclaimed = rep["SpaceReclaimed"].as_u64().unwrap();
    let after = disk_use(&store);
    let freed = loaded - after;
    assert!(
        reclaimed >= 8 * MB,
        "prune reported {reclaimed} bytes reclaimed"
    );
    assert!(
        freed + MB >= reclaimed && reclaimed + 2 * MB >= freed,
        "prune reported {reclaimed} bytes, {freed} were freed"
    );
    assert!(
        reclaimable + MB >= reclaimed && reclaimed + MB >= reclaimable,
        "system df said {reclaimable} bytes reclaimable, prune reported {reclaimed}"
    );
    assert!(
        env.engine.image_inspect("big3").is_ok(),
        "an image in use was pruned"
    );
    env.engine.container_remove(&keep, true, false).unwrap();
    env.engine.image_remove("big3", false, false).unwrap();
    let end = disk_use(&store);
    assert!(
        end < before + MB,
        "{} bytes left after removing everything",
        end - before
    );
}

/// Files over 1 MB below `p` (the content store's layer blobs; the imports' are 8 MB).
fn big_blobs(p: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            n += big_blobs(&e.path());
        } else if m.len() > MB {
            n += 1;
        }
    }
    n
}
