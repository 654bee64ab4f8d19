//! Every error names its line and what is wrong.

use berth_build::{parse, parse_bytes, ErrorKind, ParseError};

use crate::err;

fn at(src: &str) -> ParseError {
    match parse(src) {
        Ok(df) => panic!("{src:?} parsed: {df:?}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_instruction_names_line_and_word() {
    let e = at("FROM alpine\n\nFORM x\n");
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "Dockerfile:3: unknown instruction: FORM (did you mean FROM?)"
    );
    assert_eq!(
        err("FROBNICATE x"),
        "Dockerfile:2: unknown instruction: FROBNICATE"
    );
    assert_eq!(
        err("RUN echo \\\n  && x\nCOPPY a b"),
        "Dockerfile:4: unknown instruction: COPPY (did you mean COPY?)"
    );
}

#[test]
fn empty_and_stageless_files() {
    for src in [
        "",
        "\n\n",
        "# only a comment\n",
        "# escape=`\n",
        "   \n\t\n",
        "\u{feff}",
    ] {
        assert_eq!(at(src).kind, ErrorKind::Empty, "{src:?}");
    }
    assert_eq!(at("ARG A=1\n").kind, ErrorKind::NoStage);
}

#[test]
fn instructions_before_from() {
    let e = at("# comment\nRUN echo\nFROM x");
    assert_eq!((e.line, e.kind.clone()), (2, ErrorKind::BeforeFrom("RUN")));
    assert!(e.to_string().contains("only ARG may come before FROM"));
    assert_eq!(at("ENV A=1\nFROM x").kind, ErrorKind::BeforeFrom("ENV"));
    assert!(parse("ARG A\nARG B=2\nFROM x").is_ok());
}

#[test]
fn argument_counts() {
    let cases: &[(&str, &str)] = &[
        ("FROM", "FROM requires either one or three arguments"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM a AS", "FROM requires either one or three arguments"),
        ("FROM a to b", "FROM requires either one or three arguments"),
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        ("ENV", "ENV requires at least one argument"),
        ("LABEL", "LABEL requires at least one argument"),
        ("ARG", "ARG requires at least one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ("VOLUME []", "VOLUME requires at least one argument"),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("SHELL", "SHELL requires at least one argument"),
        ("COPY a", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("COPY", "COPY requires at least two arguments"),
        ("ADD [\"a\"]", "ADD requires at least two arguments"),
    ];
    for (line, want) in cases {
        let got = err(line);
        assert!(
            got.starts_with("Dockerfile:2: ") && got.contains(want),
            "{line:?}: {got}"
        );
    }
}

#[test]
fn key_value_errors() {
    assert_eq!(err("ENV =x"), "Dockerfile:2: ENV names can not be blank");
    assert_eq!(
        err("LABEL =x"),
        "Dockerfile:2: LABEL names can not be blank"
    );
    assert_eq!(err("ARG =x"), "Dockerfile:2: ARG names can not be blank");
    assert_eq!(err("ENV A"), "Dockerfile:2: ENV must have two arguments");
    assert_eq!(
        err("LABEL A"),
        "Dockerfile:2: LABEL must have two arguments"
    );
    assert_eq!(
        err("ENV A=1 B"),
        "Dockerfile:2: Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
}

#[test]
fn stage_names() {
    assert!(err("FROM a AS 1st").contains("invalid name for build stage: \"1st\""));
    assert!(err("FROM a AS my/stage").contains("invalid name for build stage"));
    let e = at("FROM a AS x\nFROM b AS X\n");
    assert_eq!(
        (e.line, e.kind),
        (2, ErrorKind::DuplicateStageName("x".into()))
    );
}

#[test]
fn json_and_shell_forms() {
    assert_eq!(
        err("CMD [\"a\", 1]"),
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        err("RUN [null]"),
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        err("SHELL /bin/bash -c"),
        "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("VOLUME [\"\"]"),
        "Dockerfile:2: VOLUME specified can not be an empty string"
    );
}

#[test]
fn flag_errors() {
    assert_eq!(err("COPY --form=x a b"), "Dockerfile:2: unknown flag: form");
    assert_eq!(err("ADD --from=x a b"), "Dockerfile:2: unknown flag: from");
    assert_eq!(err("CMD --help"), "Dockerfile:2: unknown flag: help");
    assert_eq!(err("ENV --x=1 A=1"), "Dockerfile:2: unknown flag: x");
    assert_eq!(err("ARG --x A"), "Dockerfile:2: unknown flag: x");
    assert_eq!(
        err("COPY --from=a --from=b a b"),
        "Dockerfile:2: Duplicate flag specified: from"
    );
    assert_eq!(
        err("COPY --from a b"),
        "Dockerfile:2: Missing a value on flag: from"
    );
    assert_eq!(
        err("COPY --link=maybe a b"),
        "Dockerfile:2: Expecting boolean value for flag link, not: maybe"
    );
    assert_eq!(
        err("FROM --platform x"),
        "Dockerfile:2: Missing a value on flag: platform"
    );
    assert_eq!(
        err("RUN --network=bridge x"),
        "Dockerfile:2: unsupported network mode \"bridge\" (default, none or host)"
    );
}

#[test]
fn mount_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "RUN --mount=type=nfs,target=/x a",
            "unsupported mount type \"nfs\"",
        ),
        ("RUN --mount=type=cache a", "cache mount requires a target"),
        (
            "RUN --mount=target=/x,bogus=1 a",
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            "RUN --mount=target=/x,bogus a",
            "invalid field 'bogus' must be a key=value pair",
        ),
        (
            "RUN --mount=type=bind,target=/x,mode=0700 a",
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "RUN --mount=type=cache,target=/x,mode=9 a",
            "invalid value 9 for mode",
        ),
        (
            "RUN --mount=type=cache,target=/x,uid=-1 a",
            "invalid value -1 for uid",
        ),
        (
            "RUN --mount=type=bind,target=/x,sharing=locked a",
            "invalid cache sharing set for bind mount",
        ),
        (
            "RUN --mount=type=cache,target=/x,sharing=weird a",
            "unsupported sharing value \"weird\"",
        ),
        (
            "RUN --mount=type=cache,target=/x,required a",
            "unexpected key 'required' for mount type 'cache'",
        ),
        (
            "RUN --mount=type=secret a",
            "invalid secret mount. one of source, target required",
        ),
        (
            "RUN --mount=type=secret,id=a,from=b a",
            "secret mount should not have a from",
        ),
        (
            "RUN --mount=type=secret,id=a,src=b a",
            "both source and id can't be set",
        ),
        (
            "RUN --mount=type=secret,id=a,ro=maybe a",
            "invalid value for ro: maybe",
        ),
        (
            "RUN --mount=type=tmpfs,target=/x,size=lots a",
            "invalid value lots for size",
        ),
        (
            "RUN --mount=type=cache,target=/x,size=1m a",
            "size not allowed for \"cache\" type mounts",
        ),
        (
            "RUN --mount=target=/x,a\\\"b a",
            "bare \" in non-quoted-field",
        ),
        (
            "RUN --mount=\\\"target=/x a",
            "extraneous or missing \" in quoted-field",
        ),
    ];
    for (line, want) in cases {
        let got = err(line);
        assert!(
            got.starts_with("Dockerfile:2: --mount=") && got.contains(want),
            "{line:?}: {got}"
        );
    }
}

#[test]
fn onbuild_refusals() {
    assert_eq!(
        err("ONBUILD ONBUILD RUN x"),
        "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("ONBUILD FROM x"),
        "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("onbuild maintainer me"),
        "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("ONBUILD FORM x"),
        "Dockerfile:2: unknown instruction: FORM (did you mean FROM?)"
    );
    assert_eq!(err("ONBUILD COPY a"), "Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined");
}

#[test]
fn healthcheck_errors() {
    assert_eq!(
        err("HEALTHCHECK NONE x"),
        "Dockerfile:2: HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("HEALTHCHECK CMD"),
        "Dockerfile:2: Missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("HEALTHCHECK CMD []"),
        "Dockerfile:2: Missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("HEALTHCHECK RUN x"),
        "Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("HEALTHCHECK --interval=10 CMD x"),
        "Dockerfile:2: invalid duration \"10\" for --interval: missing unit in duration"
    );
    assert_eq!(
        err("HEALTHCHECK --timeout=5q CMD x"),
        "Dockerfile:2: invalid duration \"5q\" for --timeout: unknown unit in duration"
    );
    assert_eq!(
        err("HEALTHCHECK --start-period=10us CMD x"),
        "Dockerfile:2: Interval \"start-period\" cannot be less than 1ms"
    );
    assert_eq!(
        err("HEALTHCHECK --interval=-1s CMD x"),
        "Dockerfile:2: Interval \"interval\" cannot be less than 1ms"
    );
    assert_eq!(
        err("HEALTHCHECK --retries=-1 CMD x"),
        "Dockerfile:2: --retries cannot be negative (-1)"
    );
    assert_eq!(
        err("HEALTHCHECK --retries=x CMD x"),
        "Dockerfile:2: invalid --retries value \"x\""
    );
    assert_eq!(
        err("HEALTHCHECK --retries=99999999999 CMD x"),
        "Dockerfile:2: invalid --retries value \"99999999999\""
    );
    assert_eq!(
        err("HEALTHCHECK --bogus=1 CMD x"),
        "Dockerfile:2: unknown flag: bogus"
    );
}

#[test]
fn directive_errors() {
    let e = at("# escape=x\nFROM a");
    assert_eq!(
        (e.line, e.to_string()),
        (
            1,
            "Dockerfile:1: invalid escape token 'x' does not match ` or \\".to_string()
        )
    );
    let e = at("# escape=`\n# Escape=\\\nFROM a");
    assert_eq!(
        (e.line, e.kind),
        (2, ErrorKind::RepeatedDirective("escape".into()))
    );
    let e = at("# syntax=a\n#syntax=b\nFROM a");
    assert_eq!(e.kind, ErrorKind::RepeatedDirective("syntax".into()));
}

#[test]
fn heredoc_errors() {
    let e = at("FROM a\nRUN <<EOF\necho hi\n");
    assert_eq!(
        (e.line, e.to_string()),
        (2, "Dockerfile:2: unterminated heredoc \"EOF\"".to_string())
    );
    assert_eq!(
        err("COPY a <<EOF\nx\nEOF"),
        "Dockerfile:2: COPY cannot accept a heredoc as a destination"
    );
    assert!(err("RUN <<${X\nEOF").starts_with("Dockerfile:2: invalid heredoc marker"));
}

#[test]
fn invalid_utf8() {
    let e = parse_bytes(b"FROM a\nRUN echo \xff\xfe\n").unwrap_err();
    assert_eq!((e.line, e.kind), (2, ErrorKind::NotUtf8));
    assert!(parse_bytes(b"FROM a\nRUN echo ok\n").is_ok());
}
