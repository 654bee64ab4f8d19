//! berth-build's test suite: parser, substitution, build args, .dockerignore, fixtures and
//! hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test

mod args;
mod builder;
mod errors;
mod expand;
mod fixtures;
mod heredocs;
mod ignore;
mod instructions;
mod lines;
mod no_panic;

use berth_build::{parse, Dockerfile, Instruction, Located};

/// Parses `FROM scratch` + `body` and returns the first stage's instructions.
pub fn stage(body: &str) -> Vec<Located<Instruction>> {
    let df = parse(&format!("FROM scratch\n{body}")).unwrap_or_else(|e| panic!("{e}"));
    df.stages
        .into_iter()
        .next()
        .map(|s| s.instructions)
        .unwrap_or_default()
}

/// The single instruction of `FROM scratch\n{line}`.
pub fn one(line: &str) -> Instruction {
    let mut all = stage(line);
    assert_eq!(all.len(), 1, "{line:?} gave {all:?}");
    all.remove(0).node
}

/// The error text for `FROM scratch\n{body}`.
pub fn err(body: &str) -> String {
    match parse(&format!("FROM scratch\n{body}")) {
        Ok(df) => panic!("{body:?} parsed: {df:?}"),
        Err(e) => e.to_string(),
    }
}

pub fn parse_ok(src: &str) -> Dockerfile {
    parse(src).unwrap_or_else(|e| panic!("{e}"))
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}
