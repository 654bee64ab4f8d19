//! The typed syntax tree of a Dockerfile.
//!
//! Words are kept as written (quotes, escapes and `$VAR` references intact) for the
//! instructions whose words Docker substitutes at build time; [`crate::expand`] turns an
//! instruction into its substituted form once the builder knows the variables in scope.

use std::time::Duration;

use crate::mount::{Mount, Network};

/// A parsed Dockerfile: parser directives, the `ARG`s before the first `FROM`, and the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The parser directives found at the top of the file.
    pub directives: Directives,
    /// `ARG` instructions before the first `FROM` (usable in `FROM` lines only, unless a stage
    /// declares them again).
    pub args_before_from: Vec<Located<Arg>>,
    /// The build stages, in file order; there is at least one.
    pub stages: Vec<Stage>,
    /// Non-fatal findings Docker prints as warnings (empty continuation lines).
    pub warnings: Vec<String>,
}

impl Dockerfile {
    /// The stage with this name (case-insensitive, as stage names are lowercased) or index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        if let Some(stage) = self
            .stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
        {
            return Some(stage);
        }
        name_or_index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.stages.get(i))
    }

    /// The number of steps Docker's classic builder counts for `Step N/M`: every instruction
    /// of every stage, each `FROM` included (the `ARG`s before the first `FROM` are not steps).
    pub fn step_count(&self) -> usize {
        self.stages.iter().map(|s| 1 + s.instructions.len()).sum()
    }

    /// The steps in build order as `(original text, line)`: each stage's `FROM` and then its
    /// instructions. `Step {n}/{step_count} : {original}` is Docker's progress line.
    pub fn steps(&self) -> impl Iterator<Item = (&str, usize)> {
        self.stages.iter().flat_map(|stage| {
            std::iter::once((stage.from.original.as_str(), stage.from.line)).chain(
                stage
                    .instructions
                    .iter()
                    .map(|i| (i.original.as_str(), i.line)),
            )
        })
    }
}

/// Parser directives (`# escape=`, `# syntax=`, `# check=`) at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// The `# syntax=` frontend image, noted but not acted upon (berth has one front end).
    pub syntax: Option<String>,
    /// The `# check=` lint configuration, noted but not acted upon.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// A node with where it came from: its first and last physical line (1-based; the last line
/// includes continuation lines and heredoc bodies) and its original text (the logical line,
/// continuations joined, trimmed), which is what `Step N/M : ...` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub line: usize,
    pub end_line: usize,
    pub original: String,
    pub node: T,
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.node
    }
}

/// One build stage: its `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: Located<From>,
    pub instructions: Vec<Located<Instruction>>,
}

impl Stage {
    /// The stage's name (`FROM image AS name`), lowercased as Docker does.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base image reference, or a previous stage's name, or `scratch` (unexpanded).
    pub image: String,
    /// The stage name, lowercased and validated (`^[a-z][a-z0-9-_.]*$`).
    pub name: Option<String>,
    /// `--platform` (unexpanded).
    pub platform: Option<String>,
}

/// One Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// Only appears through [`crate::parse_instruction`]; in a [`Dockerfile`] each `FROM`
    /// starts a [`Stage`].
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    /// `SHELL ["executable", "params"...]` (JSON form only).
    Shell(Vec<String>),
    Env(Vec<KeyValue>),
    Arg(Arg),
    Label(Vec<KeyValue>),
    /// Port specs as written (`80`, `53/udp`, `$PORT`); substitution may split one into several.
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    Copy(Copy),
    Add(Add),
    Healthcheck(Healthcheck),
    StopSignal(String),
    Onbuild(Onbuild),
    /// Deprecated, kept: sets the image's `Author`.
    Maintainer(String),
}

impl Instruction {
    /// The instruction's keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// A command in shell form (run through the `SHELL`, `/bin/sh -c` by default) or exec form
/// (a JSON array run as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// The rest of the line as written (no substitution: the shell does it).
    Shell(String),
    /// The JSON array's strings. An instruction written with no arguments at all (`CMD`)
    /// is `Exec(vec![])`: Docker turns it into an empty command.
    Exec(Vec<String>),
}

/// `RUN [--mount=...]... [--network=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// Heredocs (`RUN <<EOF ... EOF`) in the order they appear on the line; their `<<WORD`
    /// stays in the shell-form command text.
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<Mount>,
    pub network: Option<Network>,
}

/// A heredoc body attached to `RUN`, `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The body: every line up to the delimiter line, each with its line ending; with `<<-`
    /// the leading tabs of each line are already stripped.
    pub content: String,
    /// Whether variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// Whether the delimiter was written `<<-` (leading tabs stripped).
    pub strip_tabs: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// `ENV`/`LABEL` pair. Key and value are raw (quotes, escapes and `$` references as written);
/// substitution removes the quotes: `ENV A="a b"` gives `a b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `ENV key value...` form (the value is the rest of the line).
    pub legacy: bool,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub args: Vec<ArgDecl>,
}

/// One declared build argument; the default is raw (substituted when declared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// A `COPY`/`ADD` source: a path (or URL / pattern) in the context or `--from` stage, or an
/// inline heredoc file (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

/// `COPY [--from=] [--chown=] [--chmod=] [--link] [--parents] [--exclude=]... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub sources: Vec<Source>,
    pub dest: String,
    /// Written in JSON form (`COPY ["a b", "/c"]`).
    pub json: bool,
}

/// `ADD [--chown=] [--chmod=] [--link] [--checksum=] [--keep-git-dir] [--exclude=]... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub exclude: Vec<String>,
    pub sources: Vec<Source>,
    pub dest: String,
    pub json: bool,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// Disables any health check inherited from the base image.
    None,
    Check(HealthCheck),
}

/// The options of `HEALTHCHECK CMD`; `None` (or a zero duration, as in Docker) means
/// "inherit / default".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub command: CommandLine,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl HealthCheck {
    /// The image config's `Healthcheck.Test`: `["CMD-SHELL", cmd]` or `["CMD", args...]`.
    pub fn test(&self) -> Vec<String> {
        match &self.command {
            CommandLine::Shell(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
            CommandLine::Exec(args) => {
                let mut test = vec!["CMD".to_string()];
                test.extend(args.iter().cloned());
                test
            }
        }
    }
}

/// `ONBUILD instruction`: stored in the image, run when a later build uses it as a base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger's text as stored in the image config (`RUN make`), heredoc bodies appended.
    pub expression: String,
    /// The trigger, parsed (never `ONBUILD`, `FROM` or `MAINTAINER`).
    pub trigger: Box<Instruction>,
}
