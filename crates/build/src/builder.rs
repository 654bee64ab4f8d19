//! The classic builder: a Dockerfile's stages, step by step, through a [`BuildBackend`].
//!
//! Every step makes an image (a metadata step one with the parent's layers, `RUN`/`COPY`/`ADD`
//! one with a layer more) and records `cache key -> image` with the backend, so a second
//! build of the same thing prints ` ---> Using cache` for each step and makes nothing. The
//! key is the parent image, the instruction (substituted), the build arguments in scope and,
//! for `COPY`/`ADD`, the content hash of the sources.

use std::collections::BTreeMap;
use std::path::Path;

use berth_image::model::{ContainerConfig, History, ImageConfig};
use sha2::{Digest as _, Sha256};

use crate::args::BuildArgs;
use crate::ast::{Dockerfile, Instruction, Located};
use crate::backend::{BackendError, BuildBackend};
use crate::dockerfile::parse_instruction;
use crate::error::ParseError;
use crate::lex::{Lexer, VarFn};
use crate::stages::{Ordered, StageGuard, Table};

/// What `POST /build` asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `t`: names to tag the result with.
    pub tags: Vec<String>,
    /// `buildargs`.
    pub args: BTreeMap<String, String>,
    pub no_cache: bool,
    /// `rm`: remove a step's container once it succeeded (Docker's default: true).
    pub rm: bool,
    /// `forcerm`: remove it even when it failed.
    pub force_rm: bool,
    pub target: Option<String>,
    /// `labels`: set on the final image.
    pub labels: BTreeMap<String, String>,
    /// `cachefrom`: images whose history may stand in for steps (see [`crate::cachefrom`]).
    pub cache_from: Vec<String>,
}

/// Progress, as the classic builder reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Text for the `{"stream": ...}` lines (step headers, ` ---> id`, a RUN's output).
    Stream(String),
    /// The built image's ID (`{"aux":{"ID":...}}`).
    Built(String),
}

/// Why a build failed; the message is what `docker build` prints.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    NonZero { command: String, code: i64 },
    #[error("{step} failed: {source}")]
    Copy {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("target stage {0:?} could not be found")]
    TargetNotFound(String),
    #[error("the build was cancelled")]
    Cancelled,
}

/// One stage's state while it is built.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// The image so far; `None` for `FROM scratch` until a step makes one.
    pub image: Option<String>,
    pub config: ImageConfig,
    /// Whether this stage set `CMD` (an `ENTRYPOINT` after it keeps it).
    pub cmd_set: bool,
}

impl State {
    pub fn cc(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }
    pub fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }
    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
    pub fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }
}

/// One stage of a build in progress (stages run concurrently, each with its own).
pub struct Builder<'a> {
    pub(crate) backend: &'a (dyn BuildBackend + Sync),
    pub(crate) context: &'a Path,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) out: &'a mut dyn FnMut(Event),
    pub(crate) args: BuildArgs,
    pub(crate) lexer: Lexer,
    /// Every stage of the build, and how far each got.
    pub(crate) table: &'a Table,
    /// This stage's index in the Dockerfile.
    pub(crate) index: usize,
    /// The `--cache-from` images found here.
    pub(crate) sources: crate::cachefrom::CacheSources,
}

/// The first 12 hex digits of an image or container ID.
pub fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

pub(crate) fn now() -> String {
    berth_fsutil::rfc3339_nano_fixed_now()
}

/// Builds `df` with `context` as the build context. Returns the image ID.
///
/// Only the stages the target needs are built, each on its own thread: a stage waits for
/// another only where it reads it (`FROM stage`, `COPY --from`, `RUN --mount=from=`), so
/// independent stages run concurrently. Their output reads as a sequential build's (see
/// [`Ordered`]); a failing stage stops the others (a running step is killed).
pub fn build(
    backend: &(dyn BuildBackend + Sync),
    df: &Dockerfile,
    context: &Path,
    opts: &BuildOptions,
    out: &mut (dyn FnMut(Event) + Send),
) -> Result<String, BuildError> {
    for w in &df.warnings {
        out(Event::Stream(format!("[WARNING]: {w}\n")));
    }
    let lexer = Lexer::new(df.directives.escape);
    let mut args = BuildArgs::new(opts.args.clone());
    for arg in &df.args_before_from {
        if let Instruction::Arg(a) = arg
            .node_expanded(&lexer, &args.meta_vars())
            .map_err(BuildError::Parse)?
        {
            for d in a.args {
                args.declare_meta(&d.name, d.default);
            }
        }
    }
    let last = match &opts.target {
        None => df.stages.len().saturating_sub(1),
        Some(t) => {
            let t = t.to_ascii_lowercase();
            df.stages
                .iter()
                .position(|s| s.name() == Some(t.as_str()))
                .ok_or(BuildError::TargetNotFound(t))?
        }
    };
    if df.stages.is_empty() {
        return Err(BuildError::Invalid("no build stage".into()));
    }
    let needed = crate::stages::needed(df, last, &lexer, &args);
    let table = Table::new(df, &needed);
    let total: usize = needed
        .iter()
        .map(|i| 1 + df.stages[*i].instructions.len())
        .sum();
    let ordered = Ordered::new(needed.clone(), &mut *out);
    let mut first = 1;
    let mut results = Vec::new();
    std::thread::scope(|sc| {
        let mut handles = Vec::new();
        for &i in &needed {
            let (args, ordered, table) = (args.clone(), &ordered, &table);
            let n = first;
            first += 1 + df.stages[i].instructions.len();
            let h = sc.spawn(move || {
                let mut guard = StageGuard {
                    table,
                    index: i,
                    finished: false,
                };
                let mut emit = |ev: Event| ordered.emit(i, ev);
                let mut b = Builder {
                    backend,
                    context,
                    opts,
                    out: &mut emit,
                    args,
                    lexer,
                    table,
                    index: i,
                    sources: crate::cachefrom::CacheSources::new(backend, &opts.cache_from),
                };
                let r = b.stage(df, n, total);
                let args = b.args;
                guard.finished = true;
                table.finish(i, r.as_ref().ok().cloned());
                ordered.done(i);
                (args, r)
            });
            handles.push((i, h));
        }
        for (i, h) in handles {
            let r = h.join().unwrap_or_else(|_| {
                (
                    args.clone(),
                    Err(BuildError::Invalid(format!("build stage {i} panicked"))),
                )
            });
            results.push((i, r));
        }
    });
    ordered.flush();
    drop(ordered);
    // The failure that stopped the build is its error (the others were stopped by it).
    if let Some(f) = table.first_failure() {
        if let Some((_, (_, Err(e)))) = results.iter_mut().find(|(i, _)| *i == f) {
            return Err(std::mem::replace(e, BuildError::Cancelled));
        }
        return Err(BuildError::Cancelled);
    }
    let mut final_args = None;
    let mut final_state = None;
    for (i, (a, r)) in results {
        args.merge_consumed(&a);
        if i == last {
            final_args = Some(a);
            final_state = Some(r?);
        }
    }
    let (Some(stage_args), Some(st)) = (final_args, final_state) else {
        return Err(BuildError::Invalid("no build stage".into()));
    };
    let mut b = Builder {
        backend,
        context,
        opts,
        out,
        args: stage_args,
        lexer,
        table: &table,
        index: last,
        sources: crate::cachefrom::CacheSources::new(backend, &opts.cache_from),
    };
    b.finish(st, &args)
}

impl Builder<'_> {
    pub(crate) fn say(&mut self, s: impl Into<String>) {
        (self.out)(Event::Stream(s.into()));
    }

    /// Whether the build stops: its client went away, or another stage failed.
    pub(crate) fn stopped(&self) -> bool {
        self.backend.cancelled() || self.table.stopped()
    }

    /// Builds this stage, its steps numbered from `n` of `total`; returns its final state.
    fn stage(&mut self, df: &Dockerfile, mut n: usize, total: usize) -> Result<State, BuildError> {
        let stage = &df.stages[self.index];
        self.say(format!("Step {n}/{total} : {}\n", stage.from.original));
        let from = stage
            .from
            .expand(&self.lexer, &self.args.meta_vars())
            .map_err(|e| ParseError {
                line: stage.from.line,
                kind: crate::error::ErrorKind::Expand(e),
            })?;
        if let Some(p) = from.platform.as_deref().filter(|p| !p.is_empty()) {
            let host = crate::args::Platform::host();
            if crate::args::Platform::parse(p)
                .is_none_or(|q| q.os != host.os || q.arch != host.arch)
            {
                return Err(BuildError::Invalid(format!(
                    "Dockerfile:{}: FROM --platform={p}: berth builds for {host} only",
                    stage.from.line
                )));
            }
        }
        self.args.begin_stage();
        let mut st = self.from(&from.image)?;
        self.onbuild_triggers(&mut st, df.directives.escape)?;
        for ins in &stage.instructions {
            if self.stopped() {
                return Err(BuildError::Cancelled);
            }
            n += 1;
            self.say(format!("Step {n}/{total} : {}\n", ins.original));
            self.step(&mut st, ins)?;
        }
        Ok(st)
    }

    /// The target's last words: `labels`, the image, the unused-argument warning (`all`
    /// knows what every stage consumed), tags.
    fn finish(&mut self, mut st: State, all: &BuildArgs) -> Result<String, BuildError> {
        if self.backend.cancelled() {
            return Err(BuildError::Cancelled);
        }
        if !self.opts.labels.is_empty() {
            let labels = self.opts.labels.clone();
            st.cc()
                .labels
                .get_or_insert_with(Default::default)
                .extend(labels);
            let text = format!("LABEL {}", fmt_labels(&self.opts.labels));
            self.meta_commit(&mut st, &text)?;
        }
        let id = match &st.image {
            Some(id) => id.clone(),
            None => self.backend.derive(None, st.config.clone())?,
        };
        if let Some(w) = all.unused_warning() {
            self.say(format!("{w}\n"));
        }
        (self.out)(Event::Built(id.clone()));
        self.say(format!("Successfully built {}\n", short(&id)));
        for t in &self.opts.tags {
            self.backend.tag(&id, t)?;
            self.say(format!("Successfully tagged {}\n", with_tag(t)));
        }
        Ok(id)
    }

    fn from(&mut self, image: &str) -> Result<State, BuildError> {
        let lower = image.to_ascii_lowercase();
        if let Some(j) = self.table.find(&lower, self.index, true) {
            let st = State {
                cmd_set: false,
                ..self.table.wait(j)?
            };
            if let Some(id) = &st.image {
                self.say(format!(" ---> {}\n", short(id)));
            }
            return Ok(st);
        }
        if lower == "scratch" {
            let p = crate::args::Platform::host();
            let config = ImageConfig {
                architecture: p.arch,
                os: p.os,
                variant: p.variant,
                rootfs: berth_image::model::RootFs {
                    kind: "layers".into(),
                    diff_ids: vec![],
                },
                config: Some(ContainerConfig {
                    env: Some(vec![
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            return Ok(State {
                image: None,
                config,
                cmd_set: false,
            });
        }
        let base = self.backend.resolve_image(image)?;
        self.say(format!(" ---> {}\n", short(&base.id)));
        Ok(State {
            image: Some(base.id),
            config: base.config,
            cmd_set: false,
        })
    }

    fn onbuild_triggers(&mut self, st: &mut State, escape: char) -> Result<(), BuildError> {
        let triggers = st.cc().on_build.take().unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        self.say(format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ));
        for t in triggers {
            let ins = parse_instruction(&t, escape)?;
            self.step(st, &ins)?;
        }
        Ok(())
    }

    /// The variables an instruction is substituted with: the stage's ENV, then build args.
    pub(crate) fn expand(
        &self,
        st: &State,
        ins: &Located<Instruction>,
    ) -> Result<Instruction, BuildError> {
        let env = st.env();
        let args = &self.args;
        let vars = VarFn(|name: &str| {
            env.iter()
                .rev()
                .find_map(|kv| {
                    kv.split_once('=')
                        .filter(|(k, _)| *k == name)
                        .map(|(_, v)| v.to_string())
                })
                .or_else(|| args.value(name))
        });
        Ok(ins.expanded(&self.lexer, &vars)?)
    }

    /// The cache key of a step on `parent`.
    pub(crate) fn key(&self, parent: Option<&str>, parts: &[&str]) -> String {
        let mut h = Sha256::new();
        h.update(parent.unwrap_or("scratch").as_bytes());
        for p in parts {
            h.update([0]);
            h.update(p.as_bytes());
        }
        for (k, v) in self.args.run_env() {
            h.update([1]);
            h.update(format!("{k}={v}").as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// A cached image for `key` (or, with `--cache-from`, a source image's step whose
    /// history entry reads `created_by`), announced as Docker does; the state moves onto it.
    pub(crate) fn cached(
        &mut self,
        st: &mut State,
        key: &str,
        created_by: Option<&str>,
    ) -> Result<bool, BuildError> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let local = self
            .backend
            .cache_get(key)
            .filter(|id| self.sources.trusts(self.backend, id));
        let found = match (local, created_by) {
            (Some(id), _) => Some(id),
            (None, Some(by)) => self.sources.lookup(self.backend, st, by)?,
            (None, None) => None,
        };
        let Some(id) = found else {
            return Ok(false);
        };
        let img = self.backend.resolve_image(&id)?;
        st.image = Some(img.id.clone());
        st.config = img.config;
        self.say(" ---> Using cache\n");
        self.say(format!(" ---> {}\n", short(&img.id)));
        Ok(true)
    }

    /// A metadata-only step: an image with the parent's layers and the new config.
    pub(crate) fn meta_commit(&mut self, st: &mut State, text: &str) -> Result<(), BuildError> {
        let created_by = format!("{} #(nop)  {text}", st.shell().join(" "));
        self.meta_commit_as(st, text, &created_by)
    }

    /// [`Builder::meta_commit`] with the history entry's text given.
    pub(crate) fn meta_commit_as(
        &mut self,
        st: &mut State,
        text: &str,
        created_by: &str,
    ) -> Result<(), BuildError> {
        let key = self.key(
            st.image.as_deref(),
            &["nop", text, created_by, &config_json(&st.config)],
        );
        if self.cached(st, &key, Some(created_by))? {
            return Ok(());
        }
        let now = now();
        st.config.created = Some(now.clone());
        st.config.history.push(History {
            created: Some(now),
            created_by: Some(created_by.to_string()),
            empty_layer: true,
            ..Default::default()
        });
        let id = self
            .backend
            .derive(st.image.as_deref(), st.config.clone())?;
        self.backend.cache_put(&key, &id)?;
        self.say(format!(" ---> {}\n", short(&id)));
        st.image = Some(id);
        Ok(())
    }

    /// The image a container step starts from (an empty one on `scratch`).
    pub(crate) fn base_image(&mut self, st: &mut State) -> Result<String, BuildError> {
        if let Some(id) = &st.image {
            return Ok(id.clone());
        }
        let id = self.backend.derive(None, st.config.clone())?;
        st.image = Some(id.clone());
        Ok(id)
    }
}

/// The config as the cache sees it (what a metadata step starts from).
pub(crate) fn config_json(c: &ImageConfig) -> String {
    serde_json::to_string(&c.config).unwrap_or_default()
}

pub(crate) fn fmt_labels(l: &BTreeMap<String, String>) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name` with `:latest` when it has no tag or digest.
pub fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

trait NodeExpanded {
    fn node_expanded(
        &self,
        lexer: &Lexer,
        vars: &dyn crate::lex::Vars,
    ) -> Result<Instruction, ParseError>;
}

impl NodeExpanded for Located<crate::ast::Arg> {
    fn node_expanded(
        &self,
        lexer: &Lexer,
        vars: &dyn crate::lex::Vars,
    ) -> Result<Instruction, ParseError> {
        Instruction::Arg(self.node.clone())
            .expand(lexer, vars)
            .map_err(|e| ParseError {
                line: self.line,
                kind: crate::error::ErrorKind::Expand(e),
            })
    }
}
