// Builds the static `docker-init` reaper (assets/init.c) that `--init` bind-mounts into
// containers. Static so it runs in any image (no libc needed inside).
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=assets/init.c");
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        panic!("OUT_DIR is not set: build.rs runs under cargo only");
    };
    let bin = out.join("berth-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&bin)
        .arg("assets/init.c")
        .status();
    match st {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building assets/init.c with {cc} -static failed ({s}); install a C compiler and static libc (libc6-dev)"),
        Err(e) => panic!("running {cc} to build assets/init.c: {e}; install a C compiler (gcc) and libc6-dev"),
    }
}
