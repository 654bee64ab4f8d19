//! Heredocs on RUN, COPY, ADD and ONBUILD.

use berth_build::*;

use crate::{one, stage};

fn run(i: &Instruction) -> &Run {
    match i {
        Instruction::Run(r) => r,
        other => panic!("not RUN: {other:?}"),
    }
}

#[test]
fn run_heredoc() {
    let ins = stage("RUN <<EOF\napt-get update\n# kept: not a comment here\n\napt-get install -y vim\nEOF\nRUN after");
    let r = run(&ins[0].node);
    assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
    assert_eq!(r.heredocs.len(), 1);
    let h = &r.heredocs[0];
    assert_eq!(h.name, "EOF");
    assert_eq!(
        h.content,
        "apt-get update\n# kept: not a comment here\n\napt-get install -y vim\n"
    );
    assert!(h.expand && !h.strip_tabs && h.fd.is_none());
    assert_eq!((ins[0].line, ins[0].end_line), (2, 7));
    assert_eq!(ins[1].line, 8);
    assert_eq!(ins[0].original, "RUN <<EOF");
}

#[test]
fn strip_tabs_and_quoted_delimiters() {
    let r = one("RUN <<-EOT\n\tif true; then\n\t\techo $HOME\n\tfi\n\tEOT");
    let h = &run(&r).heredocs[0];
    assert_eq!(h.content, "if true; then\necho $HOME\nfi\n");
    assert!(h.strip_tabs);
    for marker in ["<<\"EOF\"", "<<'EOF'", "<<E\"O\"F"] {
        let r = one(&format!("RUN python3 {marker}\nprint('$x')\nEOF"));
        let h = &run(&r).heredocs[0];
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false), "{marker}");
        assert_eq!(h.content, "print('$x')\n");
    }
    // Without <<-, a tab-indented delimiter does not end the body.
    let r = one("RUN <<EOF\n\tEOF\nEOF");
    assert_eq!(run(&r).heredocs[0].content, "\tEOF\n");
}

#[test]
fn several_heredocs_on_one_line() {
    let r = one("RUN <<FILE1 cat > /file1 && 3<<FILE2 cat > /file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2");
    let r = run(&r);
    let bodies: Vec<(&str, &str, Option<u32>)> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str(), h.fd))
        .collect();
    assert_eq!(
        bodies,
        vec![
            ("FILE1", "I am\nfirst\n", None),
            ("FILE2", "I am\nsecond\n", Some(3))
        ]
    );
}

#[test]
fn heredoc_after_continuation_and_with_crlf() {
    let ins = stage("RUN --network=none \\\n  cat <<EOF\r\nhello\r\nEOF\r\nRUN x");
    let r = run(&ins[0].node);
    assert_eq!(r.heredocs[0].content, "hello\r\n");
    assert_eq!((ins[0].line, ins[0].end_line, ins[1].line), (2, 5, 6));
}

#[test]
fn copy_and_add_heredocs() {
    let Instruction::Copy(c) = one("COPY --chmod=755 <<EOF <<-\"END\" /usr/local/bin/\n#!/bin/sh\necho $X\nEOF\n\tliteral $Y\n\tEND") else {
        panic!()
    };
    assert_eq!(c.dest, "/usr/local/bin/");
    let Source::Heredoc(a) = &c.sources[0] else {
        panic!()
    };
    let Source::Heredoc(b) = &c.sources[1] else {
        panic!()
    };
    assert_eq!(
        (a.name.as_str(), a.content.as_str(), a.expand),
        ("EOF", "#!/bin/sh\necho $X\n", true)
    );
    assert_eq!(
        (b.name.as_str(), b.content.as_str(), b.expand),
        ("END", "literal $Y\n", false)
    );
    let Instruction::Add(a) = one("ADD <<EOF /etc/motd\nhi\nEOF") else {
        panic!()
    };
    assert!(matches!(&a.sources[0], Source::Heredoc(h) if h.content == "hi\n"));
    let Instruction::Copy(c) = one("COPY src <<EOF /dst\nx\nEOF") else {
        panic!()
    };
    assert_eq!(c.sources[0], Source::Path("src".into()));
}

#[test]
fn no_heredocs_where_docker_has_none() {
    // JSON form, quoted markers, here-strings and other instructions take no bodies.
    let ins = stage("RUN [\"cat\", \"<<EOF\"]\nRUN echo \"<<EOF\"\nRUN cat <<<word\nCMD cat <<EOF\nENV A=<<EOF\nRUN a<<EOF");
    assert_eq!(ins.len(), 6);
    for i in &ins {
        if let Instruction::Run(r) = &i.node {
            assert!(r.heredocs.is_empty(), "{}", i.original);
        }
    }
}

#[test]
fn onbuild_heredoc() {
    let Instruction::Onbuild(o) = one("ONBUILD RUN <<EOF\necho built\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\necho built\nEOF");
    assert_eq!(run(&o.trigger).heredocs[0].content, "echo built\n");
}

#[test]
fn heredoc_with_backtick_escape_file() {
    let df = crate::parse_ok("# escape=`\nFROM a\nRUN <<EOF `\n  && true\nline\nEOF\n");
    let r = run(&df.stages[0].instructions[0].node);
    assert_eq!(r.command, CommandLine::Shell("<<EOF   && true".into()));
    assert_eq!(r.heredocs[0].content, "line\n");
}
