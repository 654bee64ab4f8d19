//! # berth-build: image builds (`docker build`)
//!
//! This crate is berth's image builder, the classic-builder `POST /build` that `docker
//! build` talks to when the daemon announces `Builder-Version: 1`. Its **front end** is
//! self-contained and without I/O:
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
//! ## The builder
//!
//! [`build`] walks the stages up to `--target`, printing `Step {n}/{m} : {original}`, and
//! drives the engine only through [`BuildBackend`] (resolve, create, run, rootfs, commit,
//! derive, cache records, tag). Each step makes an image: metadata instructions edit the
//! config (history `#(nop)`, `empty_layer`), `RUN` runs a container of the current image
//! (shell form through `SHELL`, heredocs as the script, build args in its env and in
//! `|N K=V` of its history) and commits it, `COPY`/`ADD` write into a never-started
//! container's rootfs (module `copy`: both sides resolved inside their root, `--chown` names
//! looked up in the image's `/etc/passwd` and `/etc/group`, `--chmod`, `ADD` of a local tar
//! extracts) and commit it; `RUN --mount` (module `runmount`): cache, tmpfs and read-only
//! binds. The cache key of a step is the parent image, the substituted
//! instruction, the build args in scope and, for `COPY`/`ADD`, the sources' content hash
//! (names, modes, owners, contents; not times); `ADD` of a URL is fetched by the backend.
//! Not yet: secret/ssh mounts.
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
mod cachefrom;
mod copy;
mod copystep;
mod dockerfile;
mod dockerhash;
mod duration;
mod error;
mod expand;
mod flags;
mod gofmt;
mod heredoc;
mod ignore;
mod lex;
mod lines;
mod mount;
mod parse;
mod pattern;
mod runmount;
mod sources;
mod stages;
mod steps;
mod words;

pub use args::{resolve, BuildArgs, MetaVars, Platform, Resolved, ResolvedStage, PROXY_ARGS};
pub use ast::{
    Add, Arg, ArgDecl, CommandLine, Copy, Directives, Dockerfile, From, HealthCheck, Healthcheck,
    Heredoc, Instruction, KeyValue, Located, Onbuild, Run, Source, Stage,
};
pub use backend::{BackendError, BaseImage, BuildBackend, RunMount};
pub use builder::{build, short, with_tag, BuildError, BuildOptions, Event};
pub use dockerfile::{parse, parse_bytes, parse_instruction};
pub use error::{ErrorKind, ExpandError, ExpandErrorKind, IgnoreError, ParseError, ResolveError};
pub use ignore::{DockerIgnore, IgnorePattern};
pub use lex::{expand, Lexer, VarFn, Vars};
pub use mount::{Mount, MountType, Network, Sharing};
pub use sources::prune_context;
