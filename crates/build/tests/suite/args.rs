//! ARG scoping, predefined arguments and the unused build-arg report.

use berth_build::*;

use crate::parse_ok;

fn platforms() -> BuildArgs {
    BuildArgs::new(Vec::<(String, String)>::new())
}

fn given(pairs: &[(&str, &str)]) -> BuildArgs {
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let arm = Platform::parse("linux/arm/v7").unwrap();
    BuildArgs::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .with_platforms(amd64, arm)
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn global_args_reach_from_lines_only() {
    let df = parse_ok("ARG VERSION=1.22\nARG BASE=golang\nFROM $BASE:$VERSION AS build\nRUN echo $VERSION\nFROM alpine\nARG VERSION\nRUN echo $VERSION\n");
    let r = resolve(&df, &given(&[]), None).unwrap();
    assert_eq!(r.stages[0].image, "golang:1.22");
    assert_eq!(r.stages[0].name.as_deref(), Some("build"));
    assert!(
        r.stages[0].args.is_empty(),
        "not re-declared: not in the stage"
    );
    assert_eq!(r.stages[1].args, pairs(&[("VERSION", "1.22")]));
    assert!(r.unused.is_empty());
}

#[test]
fn build_arg_overrides_default_and_global() {
    let df = parse_ok("ARG V=global\nFROM a\nARG V\nFROM b\nARG V=stage\nFROM c\nARG V=stage\n");
    let r = resolve(&df, &given(&[]), None).unwrap();
    let values: Vec<&[(String, String)]> = r.stages.iter().map(|s| s.args.as_slice()).collect();
    assert_eq!(
        values,
        vec![
            &pairs(&[("V", "global")])[..],
            &pairs(&[("V", "stage")])[..],
            &pairs(&[("V", "stage")])[..]
        ]
    );
    let r = resolve(&df, &given(&[("V", "cli")]), None).unwrap();
    assert!(r.stages.iter().all(|s| s.args == pairs(&[("V", "cli")])));
}

#[test]
fn declared_without_value_is_unset() {
    let df = parse_ok("FROM a\nARG NOVALUE\nARG EMPTY=\n");
    let r = resolve(&df, &given(&[]), None).unwrap();
    assert_eq!(r.stages[0].args, pairs(&[("EMPTY", "")]));
}

#[test]
fn env_wins_over_arg_and_feeds_defaults() {
    let df = parse_ok("FROM a\nARG X=arg\nENV X=env Y=$X\nARG Z=$X-$Y\nENV abc=hello\nENV abc=bye def=$abc\nARG G=$def\n");
    let r = resolve(&df, &given(&[]), None).unwrap();
    assert_eq!(
        r.stages[0].args,
        pairs(&[("X", "arg"), ("Z", "env-arg"), ("G", "hello")])
    );
}

#[test]
fn predefined_platform_args() {
    let df = parse_ok("FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETOS TARGETARCH TARGETVARIANT\nARG BUILDARCH\nFROM --platform=$TARGETPLATFORM alpine\n");
    let r = resolve(&df, &given(&[]), None).unwrap();
    assert_eq!(r.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        r.stages[0].args,
        pairs(&[
            ("TARGETOS", "linux"),
            ("TARGETARCH", "arm"),
            ("TARGETVARIANT", "v7"),
            ("BUILDARCH", "amd64")
        ])
    );
    assert_eq!(r.stages[1].platform.as_deref(), Some("linux/arm/v7"));
    assert!(
        r.stages[1].args.is_empty(),
        "platform args need ARG inside a stage"
    );
    let host = platforms();
    let host_platform = Platform::host();
    assert!(host
        .platform_args()
        .contains(&("TARGETPLATFORM".to_string(), host_platform.to_string())));
    assert_eq!(host_platform.os, std::env::consts::OS);
}

#[test]
fn platform_parsing() {
    assert_eq!(
        Platform::parse("linux/arm64")
            .map(|p| p.to_string())
            .as_deref(),
        Some("linux/arm64")
    );
    assert_eq!(
        Platform::parse("linux/arm/v6")
            .and_then(|p| p.variant)
            .as_deref(),
        Some("v6")
    );
    for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
        assert_eq!(Platform::parse(bad), None, "{bad}");
    }
}

#[test]
fn unused_build_args_warning() {
    let df = parse_ok("ARG USED_GLOBAL\nFROM a\nARG USED\n");
    let args = given(&[
        ("USED", "1"),
        ("USED_GLOBAL", "2"),
        ("NOPE", "3"),
        ("ALSO_NOPE", "4"),
        ("HTTP_PROXY", "http://p"),
        ("no_proxy", "x"),
    ]);
    let r = resolve(&df, &args, None).unwrap();
    assert_eq!(r.unused, vec!["ALSO_NOPE".to_string(), "NOPE".to_string()]);
    assert_eq!(
        r.warning().as_deref(),
        Some("[Warning] One or more build-args [ALSO_NOPE NOPE] were not consumed")
    );
    let r = resolve(&df, &given(&[("USED", "1")]), None).unwrap();
    assert_eq!(r.warning(), None);
}

#[test]
fn target_limits_the_stages_walked() {
    let df = parse_ok("FROM a AS one\nARG FIRST\nFROM b AS two\nARG SECOND\nFROM c\nARG THIRD\n");
    let args = given(&[("FIRST", "1"), ("SECOND", "2"), ("THIRD", "3")]);
    let r = resolve(&df, &args, Some("TWO")).unwrap();
    assert_eq!(r.stages.len(), 2);
    assert_eq!(r.unused, vec!["THIRD".to_string()]);
    assert_eq!(
        resolve(&df, &args, Some("nope")).unwrap_err().to_string(),
        "failed to reach build target nope in Dockerfile"
    );
}

#[test]
fn proxies_reach_run_without_arg() {
    let mut args = given(&[("HTTPS_PROXY", "http://proxy:3128"), ("V", "1")]);
    args.begin_stage();
    assert_eq!(
        args.value("HTTPS_PROXY").as_deref(),
        Some("http://proxy:3128")
    );
    assert_eq!(args.value("V"), None);
    args.declare("V", Some("default".into()));
    assert_eq!(args.value("V").as_deref(), Some("1"));
    assert_eq!(args.stage_values(), pairs(&[("V", "1")]));
    assert_eq!(
        args.run_env(),
        pairs(&[("V", "1"), ("HTTPS_PROXY", "http://proxy:3128")])
    );
    args.begin_stage();
    assert_eq!(
        args.value("V"),
        None,
        "a new stage forgets the previous stage's ARGs"
    );
    assert_eq!(args.unused_warning(), None);
}

#[test]
fn meta_vars_for_from() {
    let mut args = given(&[("HTTP_PROXY", "p")]);
    args.declare_meta("TAG", Some("3.20".into()));
    args.declare_meta("NOVAL", None);
    let v = args.meta_vars();
    assert_eq!(expand("alpine:$TAG", &v).unwrap(), "alpine:3.20");
    assert_eq!(
        expand("${NOVAL:-x}|$TARGETARCH|$HTTP_PROXY", &v).unwrap(),
        "x|arm|p"
    );
}

#[test]
fn expansion_errors_in_args_are_located() {
    let df = parse_ok("ARG A=${B\nFROM a");
    let e = resolve(&df, &given(&[]), None).unwrap_err();
    assert!(
        e.to_string().starts_with("Dockerfile:1: failed to process"),
        "{e}"
    );
    let df = parse_ok("FROM a\nENV X=1\n\nENV Y=\"${X\n");
    let e = resolve(&df, &given(&[]), None).unwrap_err();
    assert!(e.to_string().starts_with("Dockerfile:4:"), "{e}");
}
