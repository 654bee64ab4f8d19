//! Full-tree copies for the copy snapshotter, using the layer packer/unpacker over a pipe
//! (two threads: one walks and reads, the other writes), preserving all metadata.
use crate::error::{Error, IoCtx, Result};
use crate::layer::{pack_dir, unpack_layer, PackMode, UnpackOptions, WhiteoutMode};
use std::path::Path;

pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let (r, w) = std::io::pipe().ctx("pipe", src)?;
    std::thread::scope(|s| {
        let packer = s.spawn(move || pack_dir(src, PackMode::Plain, w).map(drop));
        let res = unpack_layer(
            r,
            dst,
            &UnpackOptions {
                whiteouts: WhiteoutMode::Apply,
                name: format!("copy of {}", src.display()),
            },
        );
        let p = packer
            .join()
            .map_err(|_| Error::invalid(src.display().to_string(), "copy thread panicked"))?;
        p?;
        res.map(drop)
    })
}
