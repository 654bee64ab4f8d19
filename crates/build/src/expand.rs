//! Substitution applied to whole instructions, field by field, where Docker applies it.
//!
//! | instruction | substituted |
//! |---|---|
//! | `FROM` | image and `--platform` (with the `ARG`s before the first `FROM`), not the name |
//! | `ENV`, `LABEL` | keys and values |
//! | `ARG` | names and defaults |
//! | `EXPOSE` | each spec, then split into words (`$PORTS` may give several) |
//! | `USER`, `WORKDIR`, `STOPSIGNAL` | the argument |
//! | `VOLUME` | each path |
//! | `COPY` | sources, destination, `--from`, `--chown`, `--chmod`, `--exclude`; heredoc bodies with an unquoted delimiter |
//! | `ADD` | sources, destination, `--chown`, `--chmod`, `--checksum`, `--exclude`; heredoc bodies likewise |
//! | `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`, `ONBUILD`, `MAINTAINER` | nothing |

use crate::ast::{Add, Copy, From, Instruction, KeyValue, Located, Source};
use crate::error::{ErrorKind, ExpandError, ParseError};
use crate::lex::{Lexer, Vars};

struct Expander<'a> {
    lexer: &'a Lexer,
    vars: &'a dyn Vars,
}

impl Expander<'_> {
    fn word(&self, w: &str) -> Result<String, ExpandError> {
        self.lexer.expand(w, self.vars)
    }
    fn opt(&self, w: &Option<String>) -> Result<Option<String>, ExpandError> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }
    fn all(&self, ws: &[String]) -> Result<Vec<String>, ExpandError> {
        ws.iter().map(|w| self.word(w)).collect()
    }
    fn pairs(&self, kvs: &[KeyValue]) -> Result<Vec<KeyValue>, ExpandError> {
        kvs.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.word(&kv.key)?,
                    value: self.word(&kv.value)?,
                    legacy: kv.legacy,
                })
            })
            .collect()
    }
    fn sources(&self, sources: &[Source]) -> Result<Vec<Source>, ExpandError> {
        sources
            .iter()
            .map(|s| match s {
                Source::Path(p) => Ok(Source::Path(self.word(p)?)),
                Source::Heredoc(h) if h.expand => {
                    let mut h = h.clone();
                    h.content = self.lexer.expand_heredoc(&h.content, self.vars)?;
                    Ok(Source::Heredoc(h))
                }
                Source::Heredoc(h) => Ok(Source::Heredoc(h.clone())),
            })
            .collect()
    }
}

impl From {
    /// The `FROM` with image and platform substituted (the stage name is not).
    pub fn expand(&self, lexer: &Lexer, vars: &dyn Vars) -> Result<From, ExpandError> {
        let x = Expander { lexer, vars };
        Ok(From {
            image: x.word(&self.image)?,
            name: self.name.clone(),
            platform: x.opt(&self.platform)?,
        })
    }
}

impl Instruction {
    /// The instruction with Docker's substitutions applied (see the module table); the
    /// instructions Docker does not substitute come back unchanged.
    pub fn expand(&self, lexer: &Lexer, vars: &dyn Vars) -> Result<Instruction, ExpandError> {
        let x = Expander { lexer, vars };
        Ok(match self {
            Instruction::From(f) => Instruction::From(f.expand(lexer, vars)?),
            Instruction::Env(kvs) => Instruction::Env(x.pairs(kvs)?),
            Instruction::Label(kvs) => Instruction::Label(x.pairs(kvs)?),
            Instruction::Arg(arg) => {
                let mut arg = arg.clone();
                for decl in &mut arg.args {
                    decl.name = x.word(&decl.name)?;
                    decl.default = x.opt(&decl.default)?;
                }
                Instruction::Arg(arg)
            }
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lexer.expand_words(p, vars)?);
                }
                Instruction::Expose(out)
            }
            Instruction::User(u) => Instruction::User(x.word(u)?),
            Instruction::Workdir(w) => Instruction::Workdir(x.word(w)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(x.word(s)?),
            Instruction::Volume(v) => Instruction::Volume(x.all(v)?),
            Instruction::Copy(c) => Instruction::Copy(Copy {
                from: x.opt(&c.from)?,
                chown: x.opt(&c.chown)?,
                chmod: x.opt(&c.chmod)?,
                exclude: x.all(&c.exclude)?,
                sources: x.sources(&c.sources)?,
                dest: x.word(&c.dest)?,
                ..c.clone()
            }),
            Instruction::Add(a) => Instruction::Add(Add {
                chown: x.opt(&a.chown)?,
                chmod: x.opt(&a.chmod)?,
                checksum: x.opt(&a.checksum)?,
                exclude: x.all(&a.exclude)?,
                sources: x.sources(&a.sources)?,
                dest: x.word(&a.dest)?,
                ..a.clone()
            }),
            other => other.clone(),
        })
    }
}

impl Located<Instruction> {
    /// [`Instruction::expand`] with the error placed at this instruction's line.
    pub fn expanded(&self, lexer: &Lexer, vars: &dyn Vars) -> Result<Instruction, ParseError> {
        self.node.expand(lexer, vars).map_err(|e| ParseError {
            line: self.line,
            kind: ErrorKind::Expand(e),
        })
    }
}
