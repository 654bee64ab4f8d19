//! berth: a docker-compatible command-line client of berthd (Docker Engine API).

pub mod args;
pub mod client;
pub mod cmd;
pub mod completion;
pub mod http;
pub mod jsonmessage;
pub mod netrate;
pub mod output;
pub mod progress;
pub mod spec;
pub mod stream;
pub mod template;
pub mod term;
pub mod units;

use client::{ApiError, Client, DEFAULT_HOST};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

/// An error that ends the command with a specific exit status and message.
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub msg: String,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}
impl std::error::Error for StatusError {}

pub fn fail(code: i32, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(StatusError {
        code,
        msg: msg.into(),
    })
}

/// Shared state of one invocation.
pub struct Ctx {
    pub client: Client,
    pub config_dir: PathBuf,
    pub debug: bool,
}

pub type CmdResult = anyhow::Result<i32>;

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn main_help() -> String {
    let mut s = String::from(
        "\nUsage:  berth [OPTIONS] COMMAND\n\nA docker-compatible client for berthd, the berth container engine\n\nCommon Commands:\n",
    );
    for c in spec::COMMON {
        s.push_str(&format!("  {c:<11} {}\n", spec::about(c)));
    }
    s.push_str("\nManagement Commands:\n");
    for (c, a) in spec::MANAGEMENT {
        s.push_str(&format!("  {c:<11} {a}\n"));
    }
    s.push_str("\nCommands:\n");
    for c in spec::OTHERS {
        s.push_str(&format!("  {c:<11} {}\n", spec::about(c)));
    }
    s.push_str("\nGlobal Options:\n");
    for f in spec::GLOBAL_FLAGS {
        let short = f
            .short
            .map(|c| format!("-{c}, "))
            .unwrap_or_else(|| "    ".into());
        let left = format!(
            "  {short}--{}{}",
            f.long,
            if f.ty.is_empty() {
                String::new()
            } else {
                format!(" {}", f.ty)
            }
        );
        let def = if f.default.is_empty() {
            String::new()
        } else {
            format!(" (default \"{}\")", f.default)
        };
        s.push_str(&format!("{left:<30}{}{def}\n", f.help));
    }
    s.push_str("\nEnvironment:\n  BERTH_HOST, DOCKER_HOST   Daemon socket (default unix:///run/berth/berth.sock)\n");
    s.push_str("\nRun 'berth COMMAND --help' for more information on a command.\n");
    s
}

fn management_help(group: &str) -> String {
    let mut s = format!(
        "\nUsage:  berth {group} COMMAND\n\n{}\n\nCommands:\n",
        spec::MANAGEMENT
            .iter()
            .find(|(g, _)| *g == group)
            .map(|x| x.1)
            .unwrap_or("")
    );
    if let Some((_, subs)) = spec::MANAGEMENT_SUBS.iter().find(|(g, _)| *g == group) {
        for sub in *subs {
            let about = spec::resolve_management(group, sub)
                .map(|c| match c {
                    "container inspect" => "Display detailed information on one or more containers",
                    "image inspect" => "Display detailed information on one or more images",
                    c => spec::about(c),
                })
                .unwrap_or("");
            s.push_str(&format!("  {sub:<11} {about}\n"));
        }
    }
    s.push_str(&format!(
        "\nRun 'berth {group} COMMAND --help' for more information on a command.\n"
    ));
    s
}

fn global_usage_error(msg: &str) -> i32 {
    eprintln!("{msg}\nSee 'berth --help'.");
    125
}

/// Entry point: returns the process exit status.
pub fn main() -> i32 {
    // Die quietly on a closed pipe (`berth ps | head -1`) instead of failing writes.
    // SAFETY: setting a signal disposition to SIG_DFL has no memory-safety requirements.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    run_args(argv)
}

/// Runs berth with `argv` (without the program name); returns the exit status.
pub fn run_args(argv: Vec<String>) -> i32 {
    let code = real_main(argv);
    term::restore();
    let _ = std::io::stdout().flush();
    code
}

fn real_main(argv: Vec<String>) -> i32 {
    let mut host: Option<String> = None;
    let mut config: Option<String> = None;
    let mut debug = false;
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        let mut take = |flag: &str| -> Result<String, i32> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            if i < argv.len() {
                i += 1;
                return Ok(argv[i - 1].clone());
            }
            Err(global_usage_error(&format!(
                "flag needs an argument: {flag}"
            )))
        };
        match name {
            "-H" | "--host" => match take(name) {
                Ok(v) => host = Some(v),
                Err(c) => return c,
            },
            "--config" => match take(name) {
                Ok(v) => config = Some(v),
                Err(c) => return c,
            },
            "-l" | "--log-level" | "--context" | "-c" => {
                if let Err(c) = take(name) {
                    return c;
                }
            }
            "-D" | "--debug" => debug = true,
            "-v" | "--version" => {
                println!(
                    "berth version {}, build {}",
                    env!("CARGO_PKG_VERSION"),
                    option_env!("BERTH_GIT_COMMIT").unwrap_or("dev")
                );
                return 0;
            }
            "-h" | "--help" => {
                print!("{}", main_help());
                return 0;
            }
            _ if name.starts_with("--") => {
                return global_usage_error(&format!("unknown flag: {name}"))
            }
            _ => {
                return global_usage_error(&format!(
                    "unknown shorthand flag: '{}' in {a}",
                    a.chars().nth(1).unwrap_or('-')
                ))
            }
        }
    }
    let mut rest: Vec<String> = argv[i..].to_vec();
    if rest.is_empty() {
        print!("{}", main_help());
        return 0;
    }
    let first = rest.remove(0);
    let cmd_name: String = match first.as_str() {
        "builder" | "container" | "image" | "network" | "system" | "volume" => {
            let sub = match rest.first() {
                Some(s) if !s.starts_with('-') => s.clone(),
                Some(s) if s == "--help" || s == "-h" => {
                    print!("{}", management_help(&first));
                    return 0;
                }
                _ => {
                    print!("{}", management_help(&first));
                    return 0;
                }
            };
            match spec::resolve_management(&first, &sub) {
                Some(c) => {
                    rest.remove(0);
                    c.to_string()
                }
                None => {
                    eprintln!("berth: unknown command: berth {first} {sub}\n\nRun 'berth {first} --help' for more information");
                    return 125;
                }
            }
        }
        "help" => {
            if let Some(c) = rest.first().and_then(|c| spec::spec(c)) {
                print!("{}", c.help());
            } else {
                print!("{}", main_help());
            }
            return 0;
        }
        "ps" | "run" | "create" | "start" | "stop" | "restart" | "kill" | "rm" | "logs"
        | "exec" | "attach" | "inspect" | "top" | "stats" | "pause" | "unpause" | "rename"
        | "wait" | "cp" | "diff" | "export" | "commit" | "port" | "update" | "images" | "pull"
        | "push" | "build" | "load" | "save" | "import" | "tag" | "rmi" | "history" | "info"
        | "version" | "events" | "login" | "logout" | "completion" => first.clone(),
        other => {
            eprintln!(
                "berth: unknown command: berth {other}\n\nRun 'berth --help' for more information"
            );
            return 125;
        }
    };
    let (spec_name, forced_type) = match cmd_name.as_str() {
        "container inspect" => ("inspect".to_string(), Some("container")),
        "image inspect" => ("inspect".to_string(), Some("image")),
        n => (n.to_string(), None),
    };
    let Some(mut spec) = spec::spec(&spec_name) else {
        eprintln!("berth: unknown command: berth {cmd_name}");
        return 125;
    };
    if forced_type.is_some() {
        spec.name = if forced_type == Some("container") {
            "container inspect"
        } else {
            "image inspect"
        };
        spec.usage = if forced_type == Some("container") {
            "container inspect [OPTIONS] CONTAINER [CONTAINER...]"
        } else {
            "image inspect [OPTIONS] IMAGE [IMAGE...]"
        };
    }
    let mut m = match spec.parse(&rest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return 125;
        }
    };
    if m.help {
        print!("{}", spec.help());
        return 0;
    }
    if cmd_name == "completion" {
        return completion::run(&m.args[0]);
    }
    let host = host
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let endpoint = match http::Endpoint::parse(&host) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("berth: {e}");
            return 125;
        }
    };
    let config_dir = config
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| home().join(".docker"));
    let mut client = Client::new(endpoint);
    client.debug = debug || std::env::var_os("BERTH_DEBUG").is_some_and(|v| !v.is_empty());
    let ctx = Ctx {
        client,
        config_dir,
        debug,
    };
    if let Some(t) = forced_type {
        m = m.with_value("type", t);
    }
    let res = cmd::dispatch(&ctx, &spec, &cmd_name, &m);
    term::restore();
    match res {
        Ok(code) => code,
        Err(e) => report(&e, &cmd_name),
    }
}

/// Prints an error the way docker does and returns the exit code.
fn report(e: &anyhow::Error, cmd_name: &str) -> i32 {
    let _ = std::io::stdout().flush();
    if let Some(s) = e.downcast_ref::<StatusError>() {
        if !s.msg.is_empty() {
            eprintln!("{}", s.msg);
        }
        return s.code;
    }
    if let Some(u) = e.downcast_ref::<args::UsageError>() {
        eprintln!("{u}");
        return 125;
    }
    let is_run = matches!(cmd_name, "run" | "create");
    let msg = match e.downcast_ref::<ApiError>() {
        Some(a) => a.to_string(),
        None => format!("{e:#}"),
    };
    if is_run {
        eprintln!("berth: {msg}\n\nRun 'berth {cmd_name} --help' for more information");
        125
    } else {
        eprintln!("{msg}");
        1
    }
}
