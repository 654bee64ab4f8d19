//! A small driver over the berth-image API (bench driver until berthd exists).
//! usage: berth-image --root DIR [--snapshotter overlay|copy] [--insecure HOST] COMMAND ARGS
//! commands: load FILE | save OUT NAME... | import FILE [TAG] | pull REF | push REF | images |
//!           inspect NAME | history NAME | tag SRC DST | rmi NAME | gc | export-oci DIR NAME...
use berth_image::progress::{Progress, ProgressSink};
use berth_image::registry::RegistryOptions;
use berth_image::snapshot::SnapshotterKind;
use berth_image::ImageService;
use std::path::PathBuf;
use std::time::Instant;

struct Quiet(bool);
impl ProgressSink for Quiet {
    fn event(&self, p: Progress) {
        if self.0 {
            return;
        }
        match p {
            Progress::Loaded { name } => println!("Loaded image: {name}"),
            Progress::Complete { layer } => eprintln!("{}: Pull complete", layer.short()),
            Progress::AlreadyExists { layer } => eprintln!("{}: Already exists", layer.short()),
            Progress::Pushed { layer } => eprintln!("{}: Pushed", layer.short()),
            Progress::Done { reference, digest } => eprintln!(
                "{reference}: digest: {}",
                digest.map(|d| d.to_string()).unwrap_or_default()
            ),
            _ => {}
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut root = PathBuf::from("/var/lib/berth-image");
    let mut kind = None;
    let mut opts = RegistryOptions::default();
    let mut quiet = false;
    let mut sync = true;
    while args.first().map(|a| a.starts_with("--")).unwrap_or(false) {
        let flag = args.remove(0);
        match flag.as_str() {
            "--quiet" => quiet = true,
            // leave the snapshot flush to the background, as the daemon does (a later open
            // discards unsynced snapshots and unpacks them again)
            "--no-sync" => sync = false,
            _ => {
                let v = if args.is_empty() {
                    return Err(format!("{flag} needs a value").into());
                } else {
                    args.remove(0)
                };
                match flag.as_str() {
                    "--root" => root = PathBuf::from(v),
                    "--snapshotter" => {
                        kind = Some(if v == "copy" {
                            SnapshotterKind::Copy
                        } else {
                            SnapshotterKind::Overlay
                        })
                    }
                    "--insecure" => opts.insecure_registries.push(v),
                    _ => return Err(format!("unknown flag {flag}").into()),
                }
            }
        }
    }
    if args.is_empty() {
        return Err("usage: berth-image --root DIR COMMAND ARGS (see source)".into());
    }
    let cmd = args.remove(0);
    let t = Instant::now();
    let svc = ImageService::open(&root, kind)?;
    let p = Quiet(quiet);
    match cmd.as_str() {
        "load" => {
            let f = std::fs::File::open(args.first().ok_or("load FILE")?)?;
            svc.load(std::io::BufReader::with_capacity(1 << 20, f), &p)?;
        }
        "save" => {
            let out = args.first().ok_or("save OUT NAME...")?;
            let names: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
            svc.save(&names, f)?;
        }
        "import" => {
            let f = std::fs::File::open(args.first().ok_or("import FILE [TAG]")?)?;
            let rec = svc.import(
                std::io::BufReader::new(f),
                args.get(1).map(String::as_str),
                &[String::from("CMD [\"/bin/bash\"]")],
                None,
                None,
            )?;
            println!("{}", rec.id);
        }
        "pull" => {
            let rec = svc.pull(args.first().ok_or("pull REF")?, None, &opts, &p)?;
            println!("{}", rec.id);
        }
        "push" => {
            let d = svc.push(args.first().ok_or("push REF")?, &opts, &p)?;
            println!("{d}");
        }
        "images" => {
            for i in svc.list()? {
                println!("{}\t{}\t{}", &i.id[7..19], i.repo_tags.join(","), i.size);
            }
        }
        "inspect" => println!(
            "{}",
            serde_json::to_string_pretty(&svc.inspect(args.first().ok_or("inspect NAME")?)?)?
        ),
        "history" => println!(
            "{}",
            serde_json::to_string_pretty(&svc.history(args.first().ok_or("history NAME")?)?)?
        ),
        "tag" => {
            svc.tag(
                args.first().ok_or("tag SRC DST")?,
                args.get(1).ok_or("tag SRC DST")?,
            )?;
        }
        "rmi" => println!(
            "{}",
            serde_json::to_string(&svc.delete(args.first().ok_or("rmi NAME")?, true, &|_| false)?)?
        ),
        "gc" => println!("{}", serde_json::to_string(&svc.gc(&[], &[])?)?),
        "export-oci" => {
            let dir = PathBuf::from(args.first().ok_or("export-oci DIR NAME...")?);
            let names: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            svc.export_oci_dir(&names, &dir)?;
        }
        other => return Err(format!("unknown command {other}").into()),
    }
    let done = t.elapsed().as_secs_f64();
    // a one-shot process must flush its snapshots before exiting (the daemon does it in the
    // background); unsynced snapshots are discarded and re-unpacked after a crash
    let ts = Instant::now();
    if sync {
        svc.snapshots.sync()?;
    }
    eprintln!(
        "{cmd}: {done:.3}s + sync {:.3}s (snapshotter {})",
        ts.elapsed().as_secs_f64(),
        svc.snapshotter_kind()
    );
    Ok(())
}
