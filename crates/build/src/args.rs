//! Build arguments: `--build-arg` values, `ARG` scoping, the predefined arguments, and the
//! "not consumed" warning.
//!
//! Scoping, as in Docker:
//! - An `ARG` before the first `FROM` is in the *global* scope: usable in `FROM` lines only.
//!   A stage that wants its value declares it again (`ARG VERSION` with no default).
//! - Inside a stage an `ARG` is usable from its declaration to the end of the stage. Its
//!   value is the `--build-arg` value, else its default, else (no default) the global value.
//! - `ENV` wins over an `ARG` of the same name (the builder looks `ENV` up first).
//! - The proxy arguments (`HTTP_PROXY`, `https_proxy`, `NO_PROXY`, ... both cases) are usable
//!   everywhere without `ARG` when given, and never reported as unused.
//! - The platform arguments (`BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT`,
//!   `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`) are set in the global scope
//!   (host values unless told otherwise) and inside a stage once declared with `ARG`.
//! - A `--build-arg` that no `ARG` (global or in a built stage) declares is reported:
//!   `[Warning] One or more build-args [X Y] were not consumed`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::ast::{Dockerfile, Instruction};
use crate::error::{ErrorKind, ParseError, ResolveError};
use crate::lex::{Lexer, Vars};

/// The proxy build arguments Docker accepts without an `ARG`.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OCI platform, `os/arch[/variant]` with Go's architecture names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            other => other,
        };
        let variant = (arch == "arm").then(|| "v7".to_string());
        Platform {
            os: std::env::consts::OS.to_string(),
            arch: arch.to_string(),
            variant,
        }
    }

    /// `linux/amd64`, `linux/arm/v7`; `None` when not of that shape.
    pub fn parse(text: &str) -> Option<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        match parts.as_slice() {
            [os, arch] => Some(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] => Some(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// The build arguments of one build, walked stage by stage as the builder runs.
#[derive(Debug, Clone)]
pub struct BuildArgs {
    given: BTreeMap<String, String>,
    build: Platform,
    target: Platform,
    meta: BTreeMap<String, Option<String>>,
    stage: Vec<(String, Option<String>)>,
    consumed: BTreeSet<String>,
}

impl BuildArgs {
    /// `--build-arg` values; build and target platforms are the host's.
    pub fn new<K: Into<String>, V: Into<String>>(given: impl IntoIterator<Item = (K, V)>) -> Self {
        BuildArgs {
            given: given
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            build: Platform::host(),
            target: Platform::host(),
            meta: BTreeMap::new(),
            stage: Vec::new(),
            consumed: BTreeSet::new(),
        }
    }

    pub fn with_platforms(mut self, build: Platform, target: Platform) -> Self {
        self.build = build;
        self.target = target;
        self
    }

    pub fn given(&self) -> &BTreeMap<String, String> {
        &self.given
    }

    /// The predefined platform arguments and their values.
    pub fn platform_args(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (prefix, p) in [("BUILD", &self.build), ("TARGET", &self.target)] {
            out.push((format!("{prefix}PLATFORM"), p.to_string()));
            out.push((format!("{prefix}OS"), p.os.clone()));
            out.push((format!("{prefix}ARCH"), p.arch.clone()));
            out.push((
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            ));
        }
        out
    }

    fn predefined(&self, name: &str) -> Option<String> {
        self.platform_args()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn proxy(&self, name: &str) -> Option<String> {
        PROXY_ARGS
            .contains(&name)
            .then(|| self.given.get(name).cloned())
            .flatten()
    }

    /// Declares an `ARG` before the first `FROM`; `default` is already substituted (with
    /// [`BuildArgs::meta_vars`]).
    pub fn declare_meta(&mut self, name: &str, default: Option<String>) {
        self.consumed.insert(name.to_string());
        let value = self
            .given
            .get(name)
            .cloned()
            .or(default)
            .or_else(|| self.predefined(name));
        self.meta.insert(name.to_string(), value);
    }

    /// The variables of `FROM` lines: global `ARG`s, platform arguments, given proxies.
    pub fn meta_vars(&self) -> MetaVars<'_> {
        MetaVars(self)
    }

    /// Starts a stage: no stage `ARG` is declared any more.
    pub fn begin_stage(&mut self) {
        self.stage.clear();
    }

    /// Declares an `ARG` in the current stage; `default` is already substituted (with the
    /// stage's `ENV` over [`BuildArgs::value`]).
    pub fn declare(&mut self, name: &str, default: Option<String>) {
        self.consumed.insert(name.to_string());
        let value = match (self.given.get(name), default) {
            (Some(given), _) => Some(given.clone()),
            (None, Some(default)) => Some(default),
            (None, None) => match self.meta.get(name) {
                Some(meta) => meta.clone(),
                None => self.predefined(name),
            },
        };
        self.stage.retain(|(n, _)| n != name);
        self.stage.push((name.to_string(), value));
    }

    /// A build argument's value in the current stage: declared `ARG`s, then given proxies.
    /// `None` for an undeclared name or an `ARG` with no value.
    pub fn value(&self, name: &str) -> Option<String> {
        match self.stage.iter().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone(),
            None => self.proxy(name),
        }
    }

    /// The current stage's declared arguments that have a value, in declaration order
    /// (what a `RUN` sees and what its cache key includes).
    pub fn stage_values(&self) -> Vec<(String, String)> {
        self.stage
            .iter()
            .filter_map(|(n, v)| v.as_ref().map(|v| (n.clone(), v.clone())))
            .collect()
    }

    /// [`BuildArgs::stage_values`] plus the given proxy arguments not declared (those reach a
    /// `RUN`'s environment but are left out of the image history, as in Docker).
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut env = self.stage_values();
        for name in PROXY_ARGS {
            if let (None, Some(v)) = (
                self.stage.iter().find(|(n, _)| n == name),
                self.given.get(name),
            ) {
                env.push((name.to_string(), v.clone()));
            }
        }
        env
    }

    /// Counts what `other` (another stage's arguments) consumed as consumed here too.
    pub fn merge_consumed(&mut self, other: &BuildArgs) {
        self.consumed.extend(other.consumed.iter().cloned());
    }

    /// Given build arguments no `ARG` declared so far (proxies excepted), sorted.
    pub fn unused(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Docker's warning line for [`BuildArgs::unused`], if any.
    pub fn unused_warning(&self) -> Option<String> {
        unused_warning(&self.unused())
    }
}

fn unused_warning(unused: &[String]) -> Option<String> {
    (!unused.is_empty()).then(|| {
        format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        )
    })
}

/// The variables of `FROM` lines (see [`BuildArgs::meta_vars`]).
pub struct MetaVars<'a>(&'a BuildArgs);

impl Vars for MetaVars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        match self.0.meta.get(name) {
            Some(v) => v.clone(),
            None => self.0.predefined(name).or_else(|| self.0.proxy(name)),
        }
    }
}

/// A stage's variables: its `ENV` first, then its build arguments.
struct StageVars<'a> {
    env: &'a [(String, String)],
    args: &'a BuildArgs,
}

impl Vars for StageVars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.env.var(name).or_else(|| self.args.value(name))
    }
}

/// One stage as [`resolve`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStage {
    pub index: usize,
    pub name: Option<String>,
    /// The base image (or stage name) after substitution.
    pub image: String,
    pub platform: Option<String>,
    /// The stage's build arguments with a value at its end, in declaration order.
    pub args: Vec<(String, String)>,
}

/// The result of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub stages: Vec<ResolvedStage>,
    /// Given build arguments no built stage consumed (sorted).
    pub unused: Vec<String>,
}

impl Resolved {
    /// `[Warning] One or more build-args [X] were not consumed`, if any.
    pub fn warning(&self) -> Option<String> {
        unused_warning(&self.unused)
    }
}

/// Walks the stages the classic builder builds (every stage up to `target`, all when `None`)
/// and yields each stage's base image and effective build arguments, and the unused build
/// arguments. `ENV` of the stage is followed for substitution (not the base image's own
/// environment, which only the builder knows).
pub fn resolve(
    df: &Dockerfile,
    args: &BuildArgs,
    target: Option<&str>,
) -> Result<Resolved, ResolveError> {
    let lexer = Lexer::new(df.directives.escape);
    let mut args = args.clone();
    for arg in &df.args_before_from {
        let expanded = Instruction::Arg(arg.node.clone())
            .expand(&lexer, &args.meta_vars())
            .map_err(|e| ParseError {
                line: arg.line,
                kind: ErrorKind::Expand(e),
            })?;
        if let Instruction::Arg(arg) = expanded {
            arg.args
                .into_iter()
                .for_each(|d| args.declare_meta(&d.name, d.default));
        }
    }
    let last = match target {
        None => df.stages.len().saturating_sub(1),
        Some(t) => {
            let t = t.to_ascii_lowercase();
            df.stages
                .iter()
                .position(|s| s.name() == Some(t.as_str()))
                .ok_or(ResolveError::TargetNotFound(t))?
        }
    };
    let mut stages = Vec::new();
    for (index, stage) in df.stages.iter().enumerate().take(last + 1) {
        let from = stage
            .from
            .expand(&lexer, &args.meta_vars())
            .map_err(|e| ParseError {
                line: stage.from.line,
                kind: ErrorKind::Expand(e),
            })?;
        args.begin_stage();
        let mut env: Vec<(String, String)> = Vec::new();
        for ins in &stage.instructions {
            if !matches!(ins.node, Instruction::Env(_) | Instruction::Arg(_)) {
                continue;
            }
            match ins.expanded(
                &lexer,
                &StageVars {
                    env: &env,
                    args: &args,
                },
            )? {
                Instruction::Env(kvs) => env.extend(kvs.into_iter().map(|kv| (kv.key, kv.value))),
                Instruction::Arg(arg) => arg
                    .args
                    .into_iter()
                    .for_each(|d| args.declare(&d.name, d.default)),
                _ => {}
            }
        }
        stages.push(ResolvedStage {
            index,
            name: from.name,
            image: from.image,
            platform: from.platform,
            args: args.stage_values(),
        });
    }
    Ok(Resolved {
        stages,
        unused: args.unused(),
    })
}
