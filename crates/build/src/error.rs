//! Typed errors. A parse error names the Dockerfile line and what is wrong with it.

/// An error in a Dockerfile, at a physical line (1-based; the instruction's first line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ErrorKind) -> Self {
        ParseError { line, kind }
    }
}

/// What is wrong. Messages follow Docker's where Docker has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("file with no instructions")]
    Empty,
    #[error("Dockerfile is not valid UTF-8")]
    NotUtf8,
    #[error("unknown instruction: {word}{}", suggestion_text(.suggestion))]
    UnknownInstruction {
        word: String,
        suggestion: Option<&'static str>,
    },
    #[error("{0} instruction before the first FROM: only ARG may come before FROM (no build stage in current context)")]
    BeforeFrom(&'static str),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    #[error("only one {0} parser directive can be used")]
    RepeatedDirective(String),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination(&'static str),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    #[error("duplicate stage name {0:?}")]
    DuplicateStageName(String),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings,
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    #[error("Duplicate flag specified: {0}")]
    DuplicateFlag(String),
    #[error("Missing a value on flag: {0}")]
    MissingFlagValue(String),
    #[error("Expecting boolean value for flag {flag}, not: {value}")]
    NotBool { flag: String, value: String },
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildOnbuild,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(&'static str),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckNoCommand,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    #[error("invalid duration {value:?} for --{flag}: {reason}")]
    BadDuration {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("Interval {0:?} cannot be less than 1ms")]
    DurationTooShort(&'static str),
    #[error("invalid --retries value {0:?}")]
    BadRetries(String),
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(String),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("unterminated heredoc {0:?}")]
    UnterminatedHeredoc(String),
    #[error("invalid heredoc marker: {0}")]
    BadHeredoc(ExpandError),
    #[error("no FROM instruction: the Dockerfile has no build stage")]
    NoStage,
    #[error("expected one instruction, found more")]
    MoreThanOne,
    #[error("--mount={value}: {reason}")]
    Mount { value: String, reason: String },
    #[error("unsupported network mode {0:?} (default, none or host)")]
    Network(String),
    #[error("{0}")]
    Expand(ExpandError),
}

fn suggestion_text(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// An error of variable substitution in one word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {reason}")]
pub struct ExpandError {
    pub word: String,
    pub reason: ExpandErrorKind,
}

/// Why a word could not be substituted (Docker's shell-lexer messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("substitutions nested too deeply")]
    TooDeep,
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    InvalidPattern { pattern: String, escaped: String },
}

/// An error resolving build arguments over a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("failed to reach build target {0} in Dockerfile")]
    TargetNotFound(String),
}

/// An error in a `.dockerignore` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    #[error(".dockerignore:{line}: illegal exclusion pattern: \"!\"")]
    LoneExclamation { line: usize },
    #[error(".dockerignore:{line}: syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        line: usize,
        pattern: String,
        reason: &'static str,
    },
}
