//! Physical lines: directives, comments, continuations, escapes, line numbers, originals.

use berth_build::*;

use crate::{parse_ok, stage};

fn shell(i: &Located<Instruction>) -> &str {
    match &i.node {
        Instruction::Run(Run {
            command: CommandLine::Shell(s),
            ..
        }) => s,
        other => panic!("not a shell RUN: {other:?}"),
    }
}

#[test]
fn continuations_join_and_keep_line_numbers() {
    let ins = stage("RUN apt-get update \\\n    && apt-get install -y \\\n       curl\nRUN next");
    assert_eq!(
        shell(&ins[0]),
        "apt-get update     && apt-get install -y        curl"
    );
    assert_eq!((ins[0].line, ins[0].end_line), (2, 4));
    assert_eq!(
        ins[0].original,
        "RUN apt-get update     && apt-get install -y        curl"
    );
    assert_eq!((ins[1].line, ins[1].end_line), (5, 5));
}

#[test]
fn comments_inside_continuations_are_skipped() {
    let ins = stage("RUN a \\\n# a comment\n   # indented comment\n  b \\\n\n  c\nRUN d");
    assert_eq!(shell(&ins[0]), "a   b   c");
    assert_eq!((ins[0].line, ins[0].end_line), (2, 7));
    assert_eq!(ins[1].line, 8);
}

#[test]
fn empty_continuation_lines_warn() {
    let df = parse_ok("FROM a\nRUN a \\\n\n  b\n");
    assert_eq!(df.warnings.len(), 1);
    assert!(
        df.warnings[0].contains("empty continuation line"),
        "{:?}",
        df.warnings
    );
    assert!(parse_ok("FROM a\nRUN a \\\n  b\n").warnings.is_empty());
}

#[test]
fn escaped_escape_does_not_continue() {
    let ins = stage("RUN echo a\\\\\nRUN echo b");
    assert_eq!(shell(&ins[0]), "echo a\\\\");
    assert_eq!(ins.len(), 2);
    let ins = stage("RUN echo \\   \t\n  next");
    assert_eq!(shell(&ins[0]), "echo   next");
}

#[test]
fn continuation_at_end_of_file() {
    let ins = stage("RUN a \\");
    assert_eq!(shell(&ins[0]), "a");
    let ins = stage("RUN a \\\n# comment at the end");
    assert_eq!(shell(&ins[0]), "a");
    let df = parse_ok("FROM a\n\\\n");
    assert!(df.stages[0].instructions.is_empty());
}

#[test]
fn backtick_escape_directive() {
    let df = parse_ok("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n    && echo done\nCOPY a\\b c:\\dest\\\n");
    assert_eq!(df.directives.escape, '`');
    let ins = &df.stages[0].instructions;
    assert_eq!(shell(&ins[0]), "dir c:\\     && echo done");
    let Instruction::Copy(c) = &ins[1].node else {
        panic!()
    };
    assert_eq!(c.dest, "c:\\dest\\");
}

#[test]
fn directives_only_at_the_top() {
    let df = parse_ok("# syntax=docker/dockerfile:1.7\n# check=skip=all\n#ESCAPE = \\\nFROM a");
    assert_eq!(
        df.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(df.directives.check.as_deref(), Some("skip=all"));
    assert_eq!(df.directives.escape, '\\');
    // After a comment, a blank line or an instruction, `# escape=` is a comment.
    for src in [
        "# hello\n# escape=`\nFROM a\nRUN x `\n",
        "\n# escape=`\nFROM a\nRUN x `\n",
        "FROM a\n# escape=`\nRUN x `\n",
    ] {
        let df = parse_ok(src);
        assert_eq!(df.directives.escape, '\\', "{src:?}");
        assert_eq!(shell(&df.stages[0].instructions[0]), "x `");
    }
    // An unknown directive ends them too.
    let df = parse_ok("# foo=bar\n# escape=`\nFROM a");
    assert_eq!(df.directives.escape, '\\');
}

#[test]
fn bom_crlf_blank_lines_and_comments() {
    let df = parse_ok("\u{feff}# escape=`\r\nFROM a\r\n\r\n  # comment\r\n\tRUN x `\r\n  y\r\n");
    assert_eq!(df.directives.escape, '`');
    let ins = &df.stages[0].instructions;
    assert_eq!(shell(&ins[0]), "x   y");
    assert_eq!(ins[0].line, 5);
}

#[test]
fn hash_inside_an_instruction_is_not_a_comment() {
    let ins = stage("RUN echo hi # not a comment\nLABEL a=b#c");
    assert_eq!(shell(&ins[0]), "echo hi # not a comment");
    let Instruction::Label(l) = &ins[1].node else {
        panic!()
    };
    assert_eq!(l[0].value, "b#c");
}

#[test]
fn step_numbering() {
    let df = parse_ok("ARG V=1\nFROM a AS one\nRUN x\nFROM b\nCOPY --from=one / /\nCMD [\"c\"]\n");
    assert_eq!(df.step_count(), 5);
    let steps: Vec<(&str, usize)> = df.steps().collect();
    assert_eq!(
        steps,
        vec![
            ("FROM a AS one", 2),
            ("RUN x", 3),
            ("FROM b", 4),
            ("COPY --from=one / /", 5),
            ("CMD [\"c\"]", 6)
        ]
    );
    assert_eq!(df.args_before_from[0].line, 1);
    assert_eq!(df.args_before_from[0].original, "ARG V=1");
}
