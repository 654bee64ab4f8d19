//! # berth-build: image builds (`docker build`)
//!
//! This crate is the home of berth's image builder, the classic-builder `POST /build` that
//! `docker build` talks to when the daemon announces `Builder-Version: 1`. What is here now
//! is the builder's **front end**, self-contained and without I/O:
//!
//! - [`parse`] / [`parse_bytes`]: a Dockerfile → a typed [`Dockerfile`] (parser directives,
//!   the `ARG`s before the first `FROM`, [`Stage`]s of [`Located`] [`Instruction`]s). Every
//!   instruction Docker knows has a typed variant, keeps its original text and line (for
//!   `Step N/M : ...` and errors), and errors name the line: `Dockerfile:3: unknown
//!   instruction: FORM (did you mean FROM?)`. Continuations, comments inside them, `# escape=`,
//!   heredocs (`RUN <<EOF`, `<<-EOF`, `<<"EOF"`, several per line, `COPY <<EOF /dest`),
//!   JSON and shell forms, `RUN --mount`/`--network`, `COPY`/`ADD` flags and `HEALTHCHECK`
//!   options are handled as Docker's parser handles them (see `lines.rs`, `parse.rs`).
//! - [`Lexer`] / [`expand`]: Docker's shell-lexer variable substitution (`$V`, `${V:-w}`,
//!   `${V#pat}`, ...) and word splitting, and [`Instruction::expand`] which applies it to the
//!   fields of the instructions Docker substitutes (module `lex`, module `expand`).
//! - [`BuildArgs`] / [`resolve`]: `--build-arg` values, `ARG` scoping (global `ARG`s for
//!   `FROM` only unless re-declared), the predefined proxy and platform arguments, and the
//!   `[Warning] One or more build-args [X] were not consumed` report.
//! - [`DockerIgnore`]: `.dockerignore` matching (Go `filepath.Match` syntax, `**`, `!`
//!   exceptions, last match wins) with [`DockerIgnore::is_excluded`] and
//!   [`DockerIgnore::should_descend`] for the context walker.
//!
//! ## What lands here next
//!
//! - **Context** (`context.rs`): receive the `POST /build` body (tar, maybe gzip) into a
//!   scratch directory with the image crate's contained (openat2) unpacker; read
//!   `.dockerignore` with [`DockerIgnore`] and drop excluded paths (the Dockerfile and
//!   `.dockerignore` themselves are always kept, as in Docker); hash sources for `COPY`/`ADD`.
//! - **Builder** (`builder.rs`): walk [`Dockerfile::stages`] up to `--target` in order,
//!   printing `Step {n}/{Dockerfile::step_count} : {original}`. `FROM` resolves (pulls) the
//!   base image or a previous stage. Per stage, keep the image config (Env, Cmd, Entrypoint,
//!   WorkingDir, User, Labels, ExposedPorts, Volumes, StopSignal, Healthcheck, OnBuild,
//!   Shell) and a [`BuildArgs`] (`begin_stage`, `declare` for each `ARG`); substitute each
//!   instruction with [`Located::expanded`] over the stage's `ENV` then [`BuildArgs::value`].
//!   Metadata instructions only edit the config (history entry with `empty_layer: true`).
//!   `RUN` creates a container from the current image through the engine's typed "run this
//!   container" entry point (env = config Env + [`BuildArgs::run_env`], the `SHELL` for shell
//!   form, heredocs written as the script or as stdin), waits for it, and turns the
//!   container's upper-dir diff into a layer with the image crate (whiteouts included).
//!   `COPY`/`ADD` copy from the context or a stage/image (`--from`) into a snapshot and diff
//!   it the same way. Base-image `ONBUILD` triggers run first in the child's stage, parsed
//!   with [`parse_instruction`]. At the end: commit the image, tag it, print
//!   [`BuildArgs::unused_warning`].
//! - **Cache** (`cache.rs`): key = parent image ID + instruction text + build args in scope
//!   (+ for `COPY`/`ADD` the sources' content hash); a hit reuses the child image.
//!
//! The builder depends on `berth-image` (layers, snapshots, store) and on the engine's
//! container-run entry point; the API crate's `POST /build` handler calls the builder and
//! streams its `{"stream": ...}` lines.
//!
//! ## Deliberate differences from Docker
//!
//! - Stricter: flags on `ARG` and `STOPSIGNAL` are refused (Docker silently ignores them);
//!   an `ONBUILD` trigger is fully parsed when declared (Docker checks it only when it runs);
//!   a `RUN --mount` is validated when parsed (BuildKit defers most checks) and its values
//!   are not substituted.
//! - `.dockerignore`: a class `[...]` follows Go's `filepath.Match` exactly (Docker turns it
//!   into a regular expression, which mostly agrees); `^` outside a class is literal.
//!   [`DockerIgnore::should_descend`] descends whenever an exception *could* match below a
//!   directory (Docker's classic walker only when an exception literally starts with the
//!   directory's path, so `!**/keep` under an excluded directory is lost there).
//! - The unused build-arg report counts `ARG`s in every built stage (the classic builder
//!   counts only the global ones and the last stage's).
//! - Substitutions nested more than 64 deep (`${a:-${b:-...}}`) are refused, so hostile input
//!   cannot exhaust the stack; `${V/pat/rep}` takes `rep` literally (Go's regexp would read
//!   `$1` in it, which substitution has already consumed anyway).

mod args;
mod ast;
mod backend;
mod builder;
mod copy;
mod copystep;
mod dockerfile;
mod duration;
mod error;
mod expand;
mod flags;
mod heredoc;
mod ignore;
mod lex;
mod lines;
mod mount;
mod parse;
mod pattern;
mod sources;
mod steps;
mod words;

pub use args::{resolve, BuildArgs, MetaVars, Platform, Resolved, ResolvedStage, PROXY_ARGS};
pub use ast::{
    Add, Arg, ArgDecl, CommandLine, Copy, Directives, Dockerfile, From, HealthCheck, Healthcheck,
    Heredoc, Instruction, KeyValue, Located, Onbuild, Run, Source, Stage,
};
pub use backend::{BackendError, BaseImage, BuildBackend};
pub use builder::{build, short, with_tag, BuildError, BuildOptions, Event};
pub use dockerfile::{parse, parse_bytes, parse_instruction};
pub use error::{ErrorKind, ExpandError, ExpandErrorKind, IgnoreError, ParseError, ResolveError};
pub use ignore::{DockerIgnore, IgnorePattern};
pub use lex::{expand, Lexer, VarFn, Vars};
pub use mount::{Mount, MountType, Network, Sharing};
pub use sources::prune_context;
