//! berth-runtime: an OCI runtime with runc's command-line contract.

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::{CreateOpts, ExecOpts, Runtime};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Parser)]
#[command(
    name = "berth-runtime",
    version,
    about = "berth-runtime: an OCI container runtime (runc-compatible command line)"
)]
struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (not supported: refused with an error)
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct CreateArgs {
    /// Path to the bundle directory (containing config.json)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// File to write the container's init pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (SCM_RIGHTS)
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N additional fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Container id
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (the process waits for `start`)
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and start a container; in the foreground, exit with its exit code
    Run {
        #[command(flatten)]
        c: CreateArgs,
        /// Detach from the container's process
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits
        #[arg(long)]
        keep: bool,
    },
    /// Output the state of a container (JSON)
    State { id: String },
    /// List containers
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Send a signal to the container's init (or, with --all, every process)
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything the runtime made for it
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Execute a new process inside a running container
    Exec(ExecArgs),
    /// Display the processes inside a container
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Arguments for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Update a running container's resource limits
    Update(UpdateArgs),
    /// Resource usage statistics and events
    Events {
        /// Print one stats snapshot and exit
        #[arg(long)]
        stats: bool,
        /// Stats interval
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Show the features this runtime implements (JSON)
    Features,
    /// Write a default config.json
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Args)]
struct ExecArgs {
    /// process.json describing the process
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    tty: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability to the process's bounding/effective/permitted sets
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct UpdateArgs {
    /// JSON file with linux.resources ("-" for stdin)
    #[arg(short, long)]
    resources: Option<String>,
    #[arg(long)]
    memory: Option<String>,
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    id: String,
}

static LOG: OnceLock<(Option<PathBuf>, bool)> = OnceLock::new();

fn log_line(level: &str, msg: &str) {
    let (file, json) = LOG.get().cloned().unwrap_or((None, false));
    let line = if json {
        serde_json::json!({"level": level, "msg": msg, "time": berth_fsutil::rfc3339_nano_now()})
            .to_string()
    } else {
        format!("berth-runtime: {level}: {msg}")
    };
    match file {
        Some(f) => {
            if let Ok(mut fh) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&f)
            {
                let _ = writeln!(fh, "{line}");
            }
        }
        None => eprintln!("{line}"),
    }
}

fn warn_sink(msg: &str) {
    log_line("warning", msg);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let _ = LOG.set((cli.log.clone(), cli.log_format == "json"));
    berth_runtime::set_warn_sink(warn_sink);
    match real_main(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            log_line("error", &msg);
            // containerd reads the error from the log file; keep stderr informative too.
            if LOG.get().is_some_and(|(f, _)| f.is_some()) {
                eprintln!("berth-runtime: {msg}");
            }
            std::process::exit(1);
        }
    }
}

fn create_opts(c: &CreateArgs) -> CreateOpts {
    CreateOpts {
        id: c.id.clone(),
        bundle: c.bundle.clone(),
        pid_file: c.pid_file.clone(),
        console_socket: c.console_socket.clone(),
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
    }
}

fn real_main(cli: Cli) -> Result<i32> {
    let mut rt = Runtime::new(&cli.root);
    rt.systemd_cgroup = cli.systemd_cgroup;
    match cli.cmd {
        Cmd::Create(c) => {
            rt.create(&create_opts(&c))?;
        }
        Cmd::Start { id } => rt.start(&id)?,
        Cmd::Run { c, detach, keep } => return Ok(rt.run(&create_opts(&c), detach, keep)?),
        Cmd::State { id } => {
            let v = rt.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::List { format, quiet } => {
            let list = rt.list()?;
            if quiet {
                for s in &list {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                let v: Vec<_> = list.iter().map(|s| s.oci_json(&rt.root)).collect();
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!(
                    "{:<12} {:<10} {:<10} {:<60} {:<30} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                );
                for s in &list {
                    let st = s.status(&rt.root);
                    let pid = if st == berth_runtime::Status::Stopped {
                        0
                    } else {
                        s.pid
                    };
                    println!(
                        "{:<12} {:<10} {:<10} {:<60} {:<30} {}",
                        s.id,
                        pid,
                        st,
                        s.bundle.display(),
                        s.created,
                        if s.owner.is_empty() { "root" } else { &s.owner }
                    );
                }
            }
        }
        Cmd::Kill { all, id, signal } => rt.kill(&id, parse_signal(&signal)?, all)?,
        Cmd::Delete { force, id } => rt.delete(&id, force)?,
        Cmd::Exec(e) => return exec(&rt, e),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => {
            let pids = rt.pids(&id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                ps_table(&pids, &ps_args)?;
            }
        }
        Cmd::Pause { id } => rt.pause(&id)?,
        Cmd::Resume { id } => rt.resume(&id)?,
        Cmd::Update(u) => {
            let res = update_resources(&u)?;
            for w in rt.update(&u.id, &res)? {
                warn_sink(&w);
            }
        }
        Cmd::Events {
            stats,
            interval,
            id,
        } => {
            let every = parse_duration(&interval)?;
            loop {
                let s = rt.stats(&id)?;
                let ev = serde_json::json!({"type": "stats", "id": id, "data": s});
                println!("{ev}");
                if stats {
                    break;
                }
                std::thread::sleep(every);
                if rt.load(&id)?.status(&rt.root) == berth_runtime::Status::Stopped {
                    break;
                }
            }
        }
        Cmd::Features => println!("{}", serde_json::to_string_pretty(&features())?),
        Cmd::Spec { bundle, rootless } => {
            let p = bundle.join("config.json");
            if p.exists() {
                bail!("File {} exists. Remove it first", p.display());
            }
            let v = berth_runtime::spec::default_spec(rootless);
            std::fs::write(&p, serde_json::to_string_pretty(&v)? + "\n")
                .with_context(|| format!("write {}", p.display()))?;
        }
    }
    Ok(0)
}

fn parse_signal(s: &str) -> Result<i32> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        if n == 0 || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return nix::sys::signal::Signal::try_from(n)
            .map(|s| s as i32)
            .map_err(|_| anyhow!("unknown signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(off) = name
        .strip_prefix("SIGRTMIN+")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return Ok(libc::SIGRTMIN() + off);
    }
    nix::sys::signal::Signal::from_str(&name)
        .map(|s| s as i32)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => bail!("bad duration unit in {s:?}"),
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn exec(rt: &Runtime, e: ExecArgs) -> Result<i32> {
    use oci_spec::runtime::Process;
    let st = rt.load(&e.id)?;
    let mut process: Process = match &e.process {
        Some(p) => {
            let data =
                std::fs::read(p).with_context(|| format!("read process file {}", p.display()))?;
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize(de).map_err(|err| {
                anyhow!(
                    "process file {}: field {}: {}",
                    p.display(),
                    err.path(),
                    err.inner()
                )
            })?
        }
        None => {
            if e.command.is_empty() {
                bail!("exec: a command is required (or --process FILE)");
            }
            let mut p = st.config.process().clone().unwrap_or_default();
            p.set_args(Some(e.command.clone()));
            p.set_terminal(Some(e.tty));
            p.set_console_size(None);
            p
        }
    };
    if e.tty {
        process.set_terminal(Some(true));
    }
    if !e.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        for kv in &e.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        process.set_env(Some(env));
    }
    if let Some(c) = &e.cwd {
        process.set_cwd(c.clone());
    }
    if let Some(u) = &e.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse::<u32>()?, b.parse::<u32>()?),
            None => (
                u.parse::<u32>()
                    .with_context(|| format!("bad --user {u:?}: want uid[:gid]"))?,
                0,
            ),
        };
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        if !e.additional_gids.is_empty() {
            user.set_additional_gids(Some(e.additional_gids.clone()));
        }
        process.set_user(user);
    }
    if !e.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let add: Vec<oci_spec::runtime::Capability> = e
            .cap
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.clone()))
                    .map_err(|_| anyhow!("unknown capability {c:?}"))
            })
            .collect::<Result<_>>()?;
        for set in [
            caps.bounding().clone(),
            caps.effective().clone(),
            caps.permitted().clone(),
        ]
        .iter()
        .enumerate()
        {
            let mut s = set.1.clone().unwrap_or_default();
            s.extend(add.iter().copied());
            match set.0 {
                0 => caps.set_bounding(Some(s)),
                1 => caps.set_effective(Some(s)),
                _ => caps.set_permitted(Some(s)),
            };
        }
        process.set_capabilities(Some(caps));
    }
    if e.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    let opts = ExecOpts {
        console_socket: e.console_socket.clone(),
        detach: e.detach,
        pid_file: e.pid_file.clone(),
        preserve_fds: e.preserve_fds,
    };
    Ok(rt.exec(&e.id, &process, &opts)?)
}

fn ps_table(pids: &[i32], args: &[String]) -> Result<()> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps(1)")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(())
}

fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let (num, mult) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.find('k').unwrap_or(t.len())], 1i64 << 10),
        Some('m') => (&t[..t.find('m').unwrap_or(t.len())], 1 << 20),
        Some('g') => (&t[..t.find('g').unwrap_or(t.len())], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    let n: i64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    Ok(n * mult)
}

fn update_resources(u: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
    let mut res: LinuxResources = match u.resources.as_deref() {
        Some("-") => {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)?;
            parse_resources(&data, "stdin")?
        }
        Some(p) => parse_resources(&std::fs::read(p).with_context(|| format!("read {p}"))?, p)?,
        None => LinuxResources::default(),
    };
    if u.memory.is_some() || u.memory_reservation.is_some() || u.memory_swap.is_some() {
        let mut m = res.memory().unwrap_or_default();
        if let Some(v) = &u.memory {
            m.set_limit(Some(parse_size(v)?));
        }
        if let Some(v) = &u.memory_reservation {
            m.set_reservation(Some(parse_size(v)?));
        }
        if let Some(v) = &u.memory_swap {
            m.set_swap(Some(parse_size(v)?));
        }
        res.set_memory(Some(m));
    }
    if u.cpu_shares.is_some()
        || u.cpu_quota.is_some()
        || u.cpu_period.is_some()
        || u.cpuset_cpus.is_some()
        || u.cpuset_mems.is_some()
    {
        let mut c: LinuxCpu = res.cpu().clone().unwrap_or_default();
        if let Some(v) = u.cpu_shares {
            c.set_shares(Some(v));
        }
        if let Some(v) = u.cpu_quota {
            c.set_quota(Some(v));
        }
        if let Some(v) = u.cpu_period {
            c.set_period(Some(v));
        }
        if let Some(v) = &u.cpuset_cpus {
            c.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &u.cpuset_mems {
            c.set_mems(Some(v.clone()));
        }
        res.set_cpu(Some(c));
    }
    if let Some(v) = u.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(v);
        res.set_pids(Some(p));
    }
    if let Some(v) = u.blkio_weight {
        let mut b: LinuxBlockIo = res.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        res.set_block_io(Some(b));
    }
    let _ = LinuxMemory::default();
    Ok(res)
}

fn parse_resources(data: &[u8], what: &str) -> Result<oci_spec::runtime::LinuxResources> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow!("resources {what}: field {}: {}", e.path(), e.inner()))
}

fn features() -> serde_json::Value {
    let cg_mode = berth_cgroups::detect().ok();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth_runtime::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
            "private", "rbind", "relatime", "remount", "ro", "rprivate", "rro", "rshared",
            "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid",
            "symfollow", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": berth_runtime::capabilities::all_names(),
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": true,
                "hybrid": matches!(cg_mode, Some(berth_cgroups::Mode::Hybrid)),
            },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "org.opencontainers.runtime-spec.version": berth_runtime::OCI_VERSION,
            "io.github.berth.implementation": "berth-runtime (pure Rust, no libseccomp)"
        }
    })
}
