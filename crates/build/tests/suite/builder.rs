//! The builder against an in-memory backend: steps, configs, history, cache, errors, COPY.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use berth_build::{
    build, BackendError, BaseImage, BuildBackend, BuildError, BuildOptions, Event, RunMount,
};
use berth_image::model::{ContainerConfig, History, ImageConfig};

#[derive(Default)]
struct Fake {
    dir: PathBuf,
    images: Mutex<HashMap<String, ImageConfig>>,
    tags: Mutex<HashMap<String, String>>,
    containers: Mutex<HashMap<String, (String, ContainerConfig)>>,
    created: Mutex<Vec<ContainerConfig>>,
    removed: Mutex<Vec<String>>,
    cache: Mutex<HashMap<String, String>>,
    next: Mutex<u32>,
    cancel: AtomicBool,
    mounts: Mutex<Vec<RunMount>>,
}

impl Fake {
    fn new(dir: &Path) -> Fake {
        let f = Fake {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        let base = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(ContainerConfig {
                env: Some(vec!["PATH=/bin".into()]),
                cmd: Some(vec!["/bin/sh".into()]),
                ..Default::default()
            }),
            history: vec![History {
                created_by: Some("base".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        f.images.lock().unwrap().insert("sha256:base".into(), base);
        f.tags
            .lock()
            .unwrap()
            .insert("busybox".into(), "sha256:base".into());
        f
    }
    fn id(&self, prefix: &str) -> String {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        format!("{prefix}{:064}", *n)
    }
    fn config(&self, id: &str) -> ContainerConfig {
        self.images.lock().unwrap()[id]
            .config
            .clone()
            .unwrap_or_default()
    }
}

impl BuildBackend for Fake {
    fn resolve_image(&self, name: &str) -> Result<BaseImage, BackendError> {
        let id = self
            .tags
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or(name.to_string());
        let config = self
            .images
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| BackendError::new(format!("No such image: {name}")))?;
        Ok(BaseImage { id, config })
    }
    fn create(
        &self,
        image: &str,
        config: &ContainerConfig,
        _will_run: bool,
        mounts: &[RunMount],
    ) -> Result<String, BackendError> {
        self.mounts.lock().unwrap().extend(mounts.iter().cloned());
        let id = self.id("c");
        std::fs::create_dir_all(self.dir.join(&id)).unwrap();
        self.containers
            .lock()
            .unwrap()
            .insert(id.clone(), (image.into(), config.clone()));
        self.created.lock().unwrap().push(config.clone());
        Ok(id)
    }
    fn run(
        &self,
        container: &str,
        output: &mut dyn Write,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<i64, BackendError> {
        let cmd = self.containers.lock().unwrap()[container]
            .1
            .cmd
            .clone()
            .unwrap();
        let last = cmd.last().cloned().unwrap_or_default();
        writeln!(output, "ran {last}").unwrap();
        // `nap`: 300 ms; `block`: until the build stops (then "killed").
        if last.contains("nap") {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        if last.contains("block") {
            let t = std::time::Instant::now();
            while !stop() {
                assert!(t.elapsed().as_secs() < 10, "never stopped");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            return Ok(137);
        }
        Ok(if last.contains("false") { 1 } else { 0 })
    }
    fn rootfs(&self, container: &str) -> Result<PathBuf, BackendError> {
        Ok(self.dir.join(container))
    }
    fn commit(
        &self,
        _container: &str,
        _parent: &str,
        mut config: ImageConfig,
        created_by: &str,
    ) -> Result<String, BackendError> {
        config.history.push(History {
            created_by: Some(created_by.into()),
            ..Default::default()
        });
        let id = self.id("sha256:");
        self.images.lock().unwrap().insert(id.clone(), config);
        Ok(id)
    }
    fn derive(&self, _parent: Option<&str>, config: ImageConfig) -> Result<String, BackendError> {
        let id = self.id("sha256:");
        self.images.lock().unwrap().insert(id.clone(), config);
        Ok(id)
    }
    fn remove(&self, container: &str) {
        self.removed.lock().unwrap().push(container.into());
    }
    fn cache_get(&self, key: &str) -> Option<String> {
        self.cache.lock().unwrap().get(key).cloned()
    }
    fn cache_put(&self, key: &str, image: &str) -> Result<(), BackendError> {
        self.cache.lock().unwrap().insert(key.into(), image.into());
        Ok(())
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
    fn local_image(&self, name: &str) -> Option<BaseImage> {
        self.resolve_image(name).ok()
    }
    fn restore(
        &self,
        _parent: Option<&str>,
        _source: &str,
        _layer: Option<usize>,
        config: ImageConfig,
    ) -> Result<String, BackendError> {
        self.derive(None, config)
    }
    fn set_parent(&self, _child: &str, _parent: &str) -> Result<(), BackendError> {
        Ok(())
    }
    fn ancestors(&self, _image: &str) -> Vec<String> {
        Vec::new()
    }
    fn fetch(&self, url: &str) -> Result<PathBuf, BackendError> {
        let p = self.dir.join("downloads");
        std::fs::create_dir_all(&p).unwrap();
        let p = p.join(url.rsplit('/').next().unwrap());
        std::fs::write(&p, format!("body of {url}")).unwrap();
        Ok(p)
    }
    fn tag(&self, image: &str, reference: &str) -> Result<(), BackendError> {
        self.tags
            .lock()
            .unwrap()
            .insert(reference.into(), image.into());
        Ok(())
    }
}

fn run_build(
    fake: &Fake,
    ctx: &Path,
    df: &str,
    opts: &BuildOptions,
) -> (Result<String, BuildError>, String) {
    let df = berth_build::parse(df).unwrap();
    let mut text = String::new();
    let r = build(fake, &df, ctx, opts, &mut |e| match e {
        Event::Stream(s) => text.push_str(&s),
        Event::Built(id) => text.push_str(&format!("[built {id}]")),
    });
    (r, text)
}

fn opts() -> BuildOptions {
    BuildOptions {
        rm: true,
        tags: vec!["app".into()],
        ..Default::default()
    }
}

const DF: &str = "FROM busybox\nARG V=1\nENV A=b\nWORKDIR /w\nWORKDIR sub\nRUN echo $V\nLABEL x=y\nEXPOSE 80\nUSER app\nCMD [\"run\"]\nHEALTHCHECK --interval=5s CMD true\n";

#[test]
fn metadata_steps_make_the_config_and_history() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let (r, text) = run_build(&fake, t.path(), DF, &opts());
    let id = r.unwrap();
    assert!(text.starts_with("Step 1/11 : FROM busybox\n"), "{text}");
    assert!(text.contains("Step 6/11 : RUN echo $V\n ---> Running in c"));
    assert!(text.contains("ran echo $V\n"));
    assert!(text.contains("Successfully tagged app:latest\n"));
    assert_eq!(fake.tags.lock().unwrap()["app"], id);
    let img = fake.images.lock().unwrap()[&id].clone();
    let c = img.config.unwrap();
    assert_eq!(c.env.unwrap(), ["PATH=/bin", "A=b"]);
    assert_eq!(c.working_dir.as_deref(), Some("/w/sub"));
    assert_eq!(c.user.as_deref(), Some("app"));
    assert_eq!(c.cmd.unwrap(), ["run"]);
    assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
    assert_eq!(c.labels.unwrap()["x"], "y");
    let hc = c.healthcheck.unwrap();
    assert_eq!(hc.test.unwrap(), ["CMD-SHELL", "true"]);
    assert_eq!(hc.interval, Some(5_000_000_000));
    // One history entry per instruction after FROM (+ the base's).
    let h: Vec<String> = img
        .history
        .iter()
        .map(|h| h.created_by.clone().unwrap())
        .collect();
    assert_eq!(h.len(), 11, "{h:?}");
    assert_eq!(h[1], "/bin/sh -c #(nop)  ARG V=1");
    assert_eq!(h[2], "/bin/sh -c #(nop)  ENV A=b");
    // RUN sees the build args in its env and its history names them, as Docker's does.
    assert_eq!(h[5], "|1 V=1 /bin/sh -c echo $V");
    assert!(img.history[2].empty_layer && !img.history[5].empty_layer);
    // WORKDIR made its missing directories: a layer each (dockerd's classic builder too).
    assert_eq!(h[3], "/bin/sh -c #(nop) WORKDIR /w");
    assert!(!img.history[3].empty_layer && !img.history[4].empty_layer);
    let created = fake.created.lock().unwrap();
    assert_eq!(created.len(), 3, "two WORKDIRs and the RUN");
    let run = &created[2];
    assert!(run.env.as_ref().unwrap().contains(&"V=1".to_string()));
    assert_eq!(run.entrypoint.as_deref(), Some(&[][..]));
    assert_eq!(
        fake.removed.lock().unwrap().len(),
        3,
        "every step's container is removed"
    );
}

#[test]
fn a_second_build_is_all_cache_hits_and_args_invalidate() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let first = run_build(&fake, t.path(), DF, &opts()).0.unwrap();
    let (r, text) = run_build(&fake, t.path(), DF, &opts());
    assert_eq!(r.unwrap(), first);
    assert_eq!(text.matches(" ---> Using cache").count(), 10, "{text}");
    assert_eq!(fake.created.lock().unwrap().len(), 3, "nothing ran again");
    // Another build arg value: the ARG step on is rebuilt.
    let mut o = opts();
    o.args.insert("V".into(), "2".into());
    let (r, text) = run_build(&fake, t.path(), DF, &o);
    assert_ne!(r.unwrap(), first);
    assert_eq!(text.matches(" ---> Using cache").count(), 0, "{text}");
    // --no-cache runs everything.
    let mut o = opts();
    o.no_cache = true;
    let (_, text) = run_build(&fake, t.path(), DF, &o);
    assert!(!text.contains("Using cache"));
}

#[test]
fn cache_from_an_image_stands_in_for_every_step() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let first = run_build(&fake, t.path(), DF, &opts()).0.unwrap();
    let ran = fake.created.lock().unwrap().len();
    // The build cache gone (as after `builder prune`): only the image is left.
    fake.cache.lock().unwrap().clear();
    let mut o = opts();
    o.cache_from = vec![first.clone(), "not/here".into()];
    let (r, text) = run_build(&fake, t.path(), DF, &o);
    assert_eq!(r.unwrap(), first, "the source itself at its last step");
    assert_eq!(text.matches(" ---> Using cache").count(), 10, "{text}");
    assert_eq!(fake.created.lock().unwrap().len(), ran, "nothing ran again");
    // Without it the steps run.
    fake.cache.lock().unwrap().clear();
    let (r, text) = run_build(&fake, t.path(), DF, &opts());
    assert_ne!(r.unwrap(), first);
    assert!(!text.contains("Using cache"), "{text}");
}

#[test]
fn a_failing_run_reports_dockers_message() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let (r, text) = run_build(&fake, t.path(), "FROM busybox\nRUN false\n", &opts());
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        "The command '/bin/sh -c false' returned a non-zero code: 1"
    );
    assert!(text.contains("ran false"));
    // rm without forcerm keeps the failed container, as Docker does.
    assert!(fake.removed.lock().unwrap().is_empty());
    let mut o = opts();
    o.force_rm = true;
    let _ = run_build(&fake, t.path(), "FROM busybox\nRUN false\n", &o);
    assert_eq!(fake.removed.lock().unwrap().len(), 1);
}

#[test]
fn copy_places_files_and_dirs_and_caches_on_content() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(ctx.join("d/e")).unwrap();
    std::fs::write(ctx.join("f.txt"), "f").unwrap();
    std::fs::write(ctx.join("g.txt"), "g").unwrap();
    std::fs::write(ctx.join("d/e/x"), "x").unwrap();
    let fake = Fake::new(&t.path().join("roots"));
    let df = "FROM busybox\nWORKDIR /app\nCOPY f.txt .\nCOPY d /dd\nCOPY *.txt /many/\nCOPY f.txt /renamed\n";
    let (r, text) = run_build(&fake, &ctx, df, &opts());
    r.unwrap();
    let roots = fake.dir.clone();
    let find = |p: &str| {
        fake.containers
            .lock()
            .unwrap()
            .keys()
            .any(|c| roots.join(c).join(p).exists())
    };
    assert!(find("app/f.txt"), "{text}");
    assert!(
        find("dd/e/x"),
        "a directory's content goes into the destination"
    );
    assert!(find("many/f.txt") && find("many/g.txt"));
    assert!(find("renamed"));
    let (_, text) = run_build(&fake, &ctx, df, &opts());
    assert_eq!(text.matches("Using cache").count(), 5);
    std::fs::write(ctx.join("d/e/x"), "changed").unwrap();
    let (_, text) = run_build(&fake, &ctx, df, &opts());
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    // Several sources need a directory destination.
    let (r, _) = run_build(&fake, &ctx, "FROM busybox\nCOPY f.txt g.txt /x\n", &opts());
    assert!(r.unwrap_err().to_string().contains("must be a directory"));
    let (r, _) = run_build(&fake, &ctx, "FROM busybox\nCOPY nope /x\n", &opts());
    assert!(r.unwrap_err().to_string().contains("file not found"));
}

#[test]
fn target_stops_at_the_stage_and_stages_chain() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let df = "FROM busybox AS one\nENV S=1\nFROM one AS two\nENV T=2\nFROM busybox\nENV U=3\n";
    let mut o = opts();
    o.target = Some("two".into());
    let (r, text) = run_build(&fake, t.path(), df, &o);
    let id = r.unwrap();
    assert!(text.contains("Step 4/4 : ENV T=2"), "{text}");
    let env = fake.config(&id).env.unwrap();
    assert_eq!(env, ["PATH=/bin", "S=1", "T=2"]);
    o.target = Some("nope".into());
    assert!(matches!(
        run_build(&fake, t.path(), df, &o).0,
        Err(BuildError::TargetNotFound(_))
    ));
}

#[test]
fn a_cancelled_build_stops_and_tags_nothing() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    fake.cancel.store(true, Ordering::SeqCst);
    let (r, text) = run_build(&fake, t.path(), DF, &opts());
    assert!(matches!(r, Err(BuildError::Cancelled)), "{r:?}");
    assert!(!text.contains("Step 2/"), "{text}");
    assert!(!fake.tags.lock().unwrap().contains_key("app"));
    assert!(fake.created.lock().unwrap().is_empty());
}

#[test]
fn run_mounts_reach_the_backend_and_key_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("in.txt"), "1").unwrap();
    let fake = Fake::new(&t.path().join("roots"));
    let df = "FROM busybox\nWORKDIR /w\nRUN --mount=type=cache,target=c --mount=type=tmpfs,target=/t,size=1024 --mount=type=bind,source=in.txt,target=/in true\n";
    run_build(&fake, &ctx, df, &opts()).0.unwrap();
    let m = fake.mounts.lock().unwrap().clone();
    assert_eq!(m.len(), 3);
    assert!(
        matches!(&m[0], RunMount::Cache { id, target, mode: 0o755, .. } if id == "/w/c" && target == "/w/c")
    );
    assert!(matches!(&m[1], RunMount::Tmpfs { target, size: Some(1024) } if target == "/t"));
    assert!(matches!(&m[2], RunMount::Bind { target, readonly: true, .. } if target == "/in"));
    // The bound file's content is part of the step's cache key.
    let (_, text) = run_build(&fake, &ctx, df, &opts());
    assert_eq!(text.matches("Using cache").count(), 2);
    std::fs::write(ctx.join("in.txt"), "2").unwrap();
    let (_, text) = run_build(&fake, &ctx, df, &opts());
    assert_eq!(text.matches("Using cache").count(), 1, "{text}");
    let (r, _) = run_build(
        &fake,
        &ctx,
        "FROM busybox\nRUN --mount=type=secret,id=x true\n",
        &opts(),
    );
    assert!(r.unwrap_err().to_string().contains("not supported"));
}

#[test]
fn a_cached_copy_from_makes_no_container() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(&t.path().join("roots"));
    std::fs::create_dir_all(t.path().join("roots")).unwrap();
    let df = "FROM busybox AS one\nRUN true\nFROM busybox\nCOPY --from=one / /copied/\n";
    let (r, text) = run_build(&fake, t.path(), df, &opts());
    r.unwrap_or_else(|e| panic!("{e}: {text}"));
    let made = fake.created.lock().unwrap().len();
    let (r, text) = run_build(&fake, t.path(), df, &opts());
    r.unwrap();
    assert_eq!(text.matches("Using cache").count(), 2, "{text}");
    assert_eq!(
        fake.created.lock().unwrap().len(),
        made,
        "no container on a full cache hit"
    );
}

#[test]
fn add_of_a_url_is_a_file_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(&t.path().join("roots"));
    let df = "FROM busybox\nADD http://127.0.0.1:1/x/data.tar.gz /dl/\n";
    run_build(&fake, t.path(), df, &opts()).0.unwrap();
    let roots = fake.dir.clone();
    let found: Vec<PathBuf> = fake
        .containers
        .lock()
        .unwrap()
        .keys()
        .map(|c| roots.join(c).join("dl/data.tar.gz"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(found.len(), 1);
    let md = std::fs::metadata(&found[0]).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&found[0]).unwrap(),
        "body of http://127.0.0.1:1/x/data.tar.gz"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_and_platforms_are_the_hosts() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let parent = "FROM busybox\nONBUILD ENV FROM_TRIGGER=yes\n";
    let mut o = opts();
    o.tags = vec!["withtrigger".into()];
    let pid = run_build(&fake, t.path(), parent, &o).0.unwrap();
    assert_eq!(
        fake.config(&pid).on_build.unwrap(),
        ["ENV FROM_TRIGGER=yes"]
    );
    let (r, text) = run_build(&fake, t.path(), "FROM withtrigger\nENV B=1\n", &opts());
    let id = r.unwrap();
    assert!(text.contains("# Executing 1 build trigger\n"), "{text}");
    let c = fake.config(&id);
    assert!(c.env.unwrap().contains(&"FROM_TRIGGER=yes".to_string()));
    assert!(c.on_build.is_none(), "triggers are not inherited further");
    let ok = run_build(
        &fake,
        t.path(),
        "FROM --platform=$BUILDPLATFORM busybox\n",
        &opts(),
    )
    .0;
    assert!(ok.is_ok(), "{ok:?}");
    let (r, _) = run_build(
        &fake,
        t.path(),
        "FROM --platform=linux/s390x busybox\n",
        &opts(),
    );
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("--platform=linux/s390x"));
}

#[test]
fn independent_stages_run_concurrently_and_print_in_order() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let df = "FROM busybox AS a\nRUN nap a\nRUN echo a2\nFROM busybox AS unused\nRUN echo unused\n\
              FROM busybox AS b\nRUN nap b\nFROM a\nRUN --mount=from=b,target=/b echo b\nRUN echo done\n";
    std::fs::create_dir_all(t.path()).unwrap();
    let start = std::time::Instant::now();
    let (r, text) = run_build(&fake, t.path(), df, &opts());
    let took = start.elapsed();
    r.unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(took < std::time::Duration::from_millis(550), "{took:?}");
    // Only the stages the target needs, numbered as a sequential build of them.
    assert!(!text.contains("unused"), "{text}");
    let steps: Vec<&str> = text.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(
        steps,
        [
            "Step 1/8 : FROM busybox AS a",
            "Step 2/8 : RUN nap a",
            "Step 3/8 : RUN echo a2",
            "Step 4/8 : FROM busybox AS b",
            "Step 5/8 : RUN nap b",
            "Step 6/8 : FROM a",
            "Step 7/8 : RUN --mount=from=b,target=/b echo b",
            "Step 8/8 : RUN echo done",
        ]
    );
    // Each stage's output stays with its steps.
    let a = text.find("ran nap a").unwrap();
    let a2 = text.find("Step 3/8").unwrap();
    let b = text.find("ran nap b").unwrap();
    assert!(a < a2 && a2 < b, "{text}");
}

#[test]
fn a_failing_stage_stops_the_others() {
    let t = tempfile::tempdir().unwrap();
    let fake = Fake::new(t.path());
    let df = "FROM busybox AS a\nRUN block\nRUN echo never\nFROM busybox AS b\nRUN false\n\
              FROM busybox\nCOPY --from=a /x /x\nCOPY --from=b /y /y\n";
    let (r, text) = run_build(&fake, t.path(), df, &opts());
    match r {
        Err(BuildError::NonZero { command, code }) => {
            assert_eq!((command.as_str(), code), ("/bin/sh -c false", 1))
        }
        other => panic!("{other:?}: {text}"),
    }
    assert!(!text.contains("ran echo never"), "{text}");
    assert!(text.contains("ran false"), "{text}");
    assert!(!fake.tags.lock().unwrap().contains_key("app"));
}
