//! A whole Dockerfile: logical lines → instructions → stages.

use crate::ast::{Dockerfile, Instruction, Located, Stage};
use crate::error::{ErrorKind, ParseError};
use crate::heredoc::markers_in_line;
use crate::lines::Scanner;
use crate::parse::{heredoc, parse_parts, takes_heredocs, Parts};
use crate::words::split_command;

/// Parses a Dockerfile.
///
/// Errors name the line: `Dockerfile:3: unknown instruction: FORM (did you mean FROM?)`.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let mut scanner = Scanner::new(src);
    let mut args_before_from = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    while let Some(located) = next_instruction(&mut scanner)? {
        let Located {
            line,
            end_line,
            original,
            node,
        } = located;
        match node {
            Instruction::From(from) => {
                if let Some(name) = &from.name {
                    if stages.iter().any(|s| s.name() == Some(name)) {
                        return Err(ParseError::new(
                            line,
                            ErrorKind::DuplicateStageName(name.clone()),
                        ));
                    }
                }
                let from = Located {
                    line,
                    end_line,
                    original,
                    node: from,
                };
                stages.push(Stage {
                    from,
                    instructions: Vec::new(),
                });
            }
            Instruction::Arg(arg) if stages.is_empty() => {
                args_before_from.push(Located {
                    line,
                    end_line,
                    original,
                    node: arg,
                });
            }
            other => match stages.last_mut() {
                Some(stage) => stage.instructions.push(Located {
                    line,
                    end_line,
                    original,
                    node: other,
                }),
                None => {
                    return Err(ParseError::new(
                        line,
                        ErrorKind::BeforeFrom(other.keyword()),
                    ))
                }
            },
        }
    }
    if stages.is_empty() {
        let kind = if args_before_from.is_empty() {
            ErrorKind::Empty
        } else {
            ErrorKind::NoStage
        };
        return Err(ParseError::new(scanner.line().max(1), kind));
    }
    Ok(Dockerfile {
        directives: scanner.directives.clone(),
        args_before_from,
        stages,
        warnings: scanner.warnings,
    })
}

/// Parses a Dockerfile given as bytes; text that is not UTF-8 is refused at its line.
pub fn parse_bytes(src: &[u8]) -> Result<Dockerfile, ParseError> {
    match std::str::from_utf8(src) {
        Ok(text) => parse(text),
        Err(e) => {
            let line = 1 + src[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Err(ParseError::new(line, ErrorKind::NotUtf8))
        }
    }
}

/// Parses one instruction (with its continuation lines and heredoc bodies), e.g. an
/// `ONBUILD` trigger read back from an image config. `escape` is the escape character.
pub fn parse_instruction(text: &str, escape: char) -> Result<Located<Instruction>, ParseError> {
    let mut scanner = Scanner::for_instruction(text, escape);
    let Some(first) = next_instruction(&mut scanner)? else {
        return Err(ParseError::new(1, ErrorKind::Empty));
    };
    if let Some(next) = next_instruction(&mut scanner)? {
        return Err(ParseError::new(next.line, ErrorKind::MoreThanOne));
    }
    Ok(first)
}

fn next_instruction(scanner: &mut Scanner) -> Result<Option<Located<Instruction>>, ParseError> {
    let Some(logical) = scanner.next_logical()? else {
        return Ok(None);
    };
    let at = |kind| ParseError::new(logical.start, kind);
    let (keyword, flags, args) = split_command(&logical.text);
    let mut heredocs = Vec::new();
    if takes_heredocs(&keyword, &args) {
        let markers = markers_in_line(&logical.text).map_err(|e| at(ErrorKind::BadHeredoc(e)))?;
        for marker in markers {
            let body = scanner
                .read_heredoc(&marker.name, marker.strip_tabs)
                .map_err(at)?;
            heredocs.push(heredoc(marker, body));
        }
    }
    let escape = scanner.directives.escape;
    let parts = Parts {
        keyword: &keyword,
        flags: &flags,
        args: &args,
        heredocs: &heredocs,
        escape,
        line: &logical.text,
    };
    let node = parse_parts(&parts).map_err(at)?;
    let original = logical.text.trim().to_string();
    Ok(Some(Located {
        line: logical.start,
        end_line: scanner.line(),
        original,
        node,
    }))
}
