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

/// A build in progress.
pub struct Builder<'a> {
    pub(crate) backend: &'a dyn BuildBackend,
    pub(crate) context: &'a Path,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) out: &'a mut dyn FnMut(Event),
    pub(crate) args: BuildArgs,
    pub(crate) lexer: Lexer,
    /// Built stages: (name, state), by index.
    pub(crate) stages: Vec<(Option<String>, State)>,
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
pub fn build(
    backend: &dyn BuildBackend,
    df: &Dockerfile,
    context: &Path,
    opts: &BuildOptions,
    out: &mut dyn FnMut(Event),
) -> Result<String, BuildError> {
    let mut b = Builder {
        backend,
        context,
        opts,
        out,
        args: BuildArgs::new(opts.args.clone()),
        lexer: Lexer::new(df.directives.escape),
        stages: Vec::new(),
        sources: crate::cachefrom::CacheSources::new(backend, &opts.cache_from),
    };
    for w in &df.warnings {
        b.say(format!("[WARNING]: {w}\n"));
    }
    b.run(df)
}

impl Builder<'_> {
    pub(crate) fn say(&mut self, s: impl Into<String>) {
        (self.out)(Event::Stream(s.into()));
    }

    fn run(&mut self, df: &Dockerfile) -> Result<String, BuildError> {
        for arg in &df.args_before_from {
            if let Instruction::Arg(a) = arg
                .node_expanded(&self.lexer, &self.args.meta_vars())
                .map_err(BuildError::Parse)?
            {
                for d in a.args {
                    self.args.declare_meta(&d.name, d.default);
                }
            }
        }
        let last = match &self.opts.target {
            None => df.stages.len().saturating_sub(1),
            Some(t) => {
                let t = t.to_ascii_lowercase();
                df.stages
                    .iter()
                    .position(|s| s.name() == Some(t.as_str()))
                    .ok_or(BuildError::TargetNotFound(t))?
            }
        };
        let total: usize = df.stages[..=last]
            .iter()
            .map(|s| 1 + s.instructions.len())
            .sum();
        let mut n = 0;
        for stage in &df.stages[..=last] {
            n += 1;
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
                if self.backend.cancelled() {
                    return Err(BuildError::Cancelled);
                }
                n += 1;
                self.say(format!("Step {n}/{total} : {}\n", ins.original));
                self.step(&mut st, ins)?;
            }
            self.stages.push((stage.name().map(str::to_string), st));
        }
        if self.backend.cancelled() {
            return Err(BuildError::Cancelled);
        }
        let Some((_, mut st)) = self.stages.pop() else {
            return Err(BuildError::Invalid("no build stage".into()));
        };
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
        if let Some(w) = self.args.unused_warning() {
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
        if let Some((_, st)) = self
            .stages
            .iter()
            .rev()
            .find(|(name, _)| name.as_deref() == Some(lower.as_str()))
        {
            let st = State {
                cmd_set: false,
                ..st.clone()
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
