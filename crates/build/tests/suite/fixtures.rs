//! Realistic multi-stage Dockerfiles parse to the expected trees.

use berth_build::*;

use crate::{parse_ok, s};

pub const GO: &str = include_str!("../fixtures/go.Dockerfile");
pub const RUST: &str = include_str!("../fixtures/rust.Dockerfile");
pub const PYTHON: &str = include_str!("../fixtures/python.Dockerfile");
pub const NODE: &str = include_str!("../fixtures/node.Dockerfile");
pub const ALL: [&str; 4] = [GO, RUST, PYTHON, NODE];

fn keywords(stage: &Stage) -> Vec<&'static str> {
    stage.instructions.iter().map(|i| i.keyword()).collect()
}

fn lx(df: &Dockerfile) -> Lexer {
    Lexer::new(df.directives.escape)
}

#[test]
fn go_service() {
    let df = parse_ok(GO);
    assert_eq!(
        df.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(df.args_before_from.len(), 2);
    assert_eq!(df.stages.len(), 2);
    let build = &df.stages[0];
    assert_eq!(build.from.line, 7);
    assert_eq!(
        build.from.image,
        "golang:${GO_VERSION}-alpine${ALPINE_VERSION}"
    );
    assert_eq!(build.from.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(
        keywords(build),
        vec!["WORKDIR", "ARG", "ENV", "COPY", "RUN", "COPY", "RUN"]
    );
    let Instruction::Env(env) = &build.instructions[2].node else {
        panic!()
    };
    assert_eq!(
        (env[1].key.as_str(), env[1].value.as_str()),
        ("GOFLAGS", "\"-trimpath -mod=readonly\"")
    );
    let Instruction::Run(run) = &build.instructions[6].node else {
        panic!()
    };
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(
        run.command,
        CommandLine::Shell("GOOS=$TARGETOS GOARCH=$TARGETARCH     go build -ldflags=\"-s -w\" -o /out/server ./cmd/server".into())
    );
    assert_eq!(
        (build.instructions[6].line, build.instructions[6].end_line),
        (16, 19)
    );
    let runtime = &df.stages[1];
    assert_eq!(runtime.name(), Some("runtime"));
    let Instruction::Copy(c) = &runtime.instructions[1].node else {
        panic!()
    };
    assert_eq!(
        (c.from.as_deref(), c.chown.as_deref(), c.dest.as_str()),
        (Some("build"), Some("nonroot:nonroot"), "/server")
    );
    let Instruction::Healthcheck(Healthcheck::Check(h)) = &runtime.instructions[4].node else {
        panic!()
    };
    assert_eq!(h.test(), s(&["CMD", "/server", "healthcheck"]));
    assert_eq!(df.step_count(), 2 + 7 + 6);

    let args = BuildArgs::new([("GO_VERSION", "1.23")]).with_platforms(
        Platform::parse("linux/amd64").unwrap(),
        Platform::parse("linux/arm64").unwrap(),
    );
    let r = resolve(&df, &args, None).unwrap();
    assert_eq!(r.stages[0].image, "golang:1.23-alpine3.20");
    assert_eq!(r.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        r.stages[0].args,
        vec![
            ("TARGETOS".to_string(), "linux".to_string()),
            ("TARGETARCH".to_string(), "arm64".to_string())
        ]
    );
    assert_eq!(r.warning(), None);
    let Instruction::Label(l) = runtime.instructions[0].expanded(&lx(&df), &()).unwrap() else {
        panic!()
    };
    assert_eq!(l[0].value, "https://example.org/server");
}

#[test]
fn rust_chef() {
    let df = parse_ok(RUST);
    assert_eq!(df.directives.escape, '\\');
    let names: Vec<Option<&str>> = df.stages.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        vec![Some("chef"), Some("planner"), Some("builder"), None]
    );
    assert_eq!(df.stages[1].from.image, "chef");
    let Instruction::Run(run) = &df.stages[2].instructions[3].node else {
        panic!()
    };
    assert_eq!(
        run.command,
        CommandLine::Shell(
            "cargo build --release --bin app &&     strip target/release/app".into()
        )
    );
    let last = &df.stages[3];
    assert_eq!(
        keywords(last),
        vec!["RUN", "RUN", "COPY", "COPY", "USER", "STOPSIGNAL", "CMD"]
    );
    let Instruction::Run(run) = &last.instructions[0].node else {
        panic!()
    };
    assert_eq!(run.heredocs[0].content, "set -eux\napt-get update\napt-get install -y --no-install-recommends ca-certificates\nrm -rf /var/lib/apt/lists/*\n");
    assert_eq!(
        (
            last.instructions[0].line,
            last.instructions[0].end_line,
            last.instructions[1].line
        ),
        (22, 27, 28)
    );
    let Instruction::Copy(c) = &last.instructions[3].node else {
        panic!()
    };
    let Source::Heredoc(h) = &c.sources[0] else {
        panic!()
    };
    assert_eq!(
        (h.name.as_str(), h.expand, h.strip_tabs),
        ("CONF", false, true)
    );
    assert_eq!(
        h.content,
        "listen = \"0.0.0.0:3000\"\nlog = \"$LOG_LEVEL\"\n"
    );
    assert_eq!(c.dest, "/etc/app/config.toml");
    let Instruction::Copy(c) = last.instructions[3]
        .expanded(&lx(&df), &vec![("LOG_LEVEL".into(), "debug".into())])
        .unwrap()
    else {
        panic!()
    };
    assert!(
        matches!(&c.sources[0], Source::Heredoc(h) if h.content.contains("$LOG_LEVEL")),
        "quoted delimiter: no expansion"
    );
    assert_eq!(
        last.instructions[5].node,
        Instruction::StopSignal("SIGINT".into())
    );
    let r = resolve(&df, &BuildArgs::new([("UNUSED", "x")]), Some("planner")).unwrap();
    assert_eq!(
        r.stages
            .iter()
            .map(|s| s.image.as_str())
            .collect::<Vec<_>>(),
        vec!["rust:1.80-slim-bookworm", "chef"]
    );
    assert_eq!(
        r.warning().as_deref(),
        Some("[Warning] One or more build-args [UNUSED] were not consumed")
    );
}

#[test]
fn python_app() {
    let df = parse_ok(PYTHON);
    assert!(df.args_before_from.is_empty());
    assert_eq!(df.stages.len(), 3);
    let Instruction::Env(env) = &df.stages[0].instructions[0].node else {
        panic!()
    };
    assert_eq!(
        env.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        vec![
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONUNBUFFERED",
            "PIP_NO_CACHE_DIR"
        ]
    );
    let last = &df.stages[2];
    assert_eq!(
        keywords(last),
        vec![
            "ARG",
            "ARG",
            "RUN",
            "COPY",
            "COPY",
            "ENV",
            "EXPOSE",
            "VOLUME",
            "USER",
            "SHELL",
            "HEALTHCHECK",
            "CMD"
        ]
    );
    let Instruction::Env(env) = &last.instructions[5].node else {
        panic!()
    };
    assert_eq!(
        env[0],
        KeyValue {
            key: "PORT".into(),
            value: "8000".into(),
            legacy: true
        }
    );
    let vars = vec![
        ("PORT".to_string(), "8000".to_string()),
        ("APP_USER".to_string(), "svc".to_string()),
    ];
    assert_eq!(
        last.instructions[6].expanded(&lx(&df), &vars).unwrap(),
        Instruction::Expose(s(&["8000"]))
    );
    assert_eq!(
        last.instructions[8].expanded(&lx(&df), &vars).unwrap(),
        Instruction::User("svc".into())
    );
    let Instruction::Copy(c) = last.instructions[4].expanded(&lx(&df), &vars).unwrap() else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("svc:svc"));
    assert_eq!(
        last.instructions[7].node,
        Instruction::Volume(s(&["/app/data"]))
    );
    let Instruction::Healthcheck(Healthcheck::Check(h)) = &last.instructions[10].node else {
        panic!()
    };
    assert!(matches!(&h.command, CommandLine::Shell(c) if c.ends_with("|| exit 1")));
    let r = resolve(&df, &BuildArgs::new([("APP_UID", "2000")]), None).unwrap();
    assert_eq!(
        r.stages[2].args,
        vec![
            ("APP_USER".to_string(), "app".to_string()),
            ("APP_UID".to_string(), "2000".to_string())
        ]
    );
}

#[test]
fn node_app() {
    let df = parse_ok(NODE);
    assert_eq!(df.stages.len(), 3);
    assert_eq!(df.stages[1].from.image, "deps");
    let Instruction::Run(run) = &df.stages[0].instructions[2].node else {
        panic!()
    };
    assert_eq!(run.mounts[1].kind, MountType::Secret);
    assert_eq!(run.mounts[1].id.as_deref(), Some("npmrc"));
    let last = &df.stages[2];
    let Some(Instruction::Onbuild(o)) = last
        .instructions
        .iter()
        .map(|i| &i.node)
        .find(|i| i.keyword() == "ONBUILD")
    else {
        panic!()
    };
    assert_eq!(o.expression, "COPY . /usr/src/app/extra");
    assert_eq!(
        last.instructions.last().map(|i| i.node.clone()),
        Some(Instruction::Cmd(CommandLine::Exec(s(&[
            "node",
            "dist/server.js"
        ]))))
    );
    let r = resolve(&df, &BuildArgs::new([("NODE_VERSION", "22")]), None).unwrap();
    assert_eq!(
        r.stages
            .iter()
            .map(|s| s.image.as_str())
            .collect::<Vec<_>>(),
        vec!["node:22-alpine", "deps", "node:22-alpine"]
    );
}

#[test]
fn every_step_has_its_original_text() {
    for src in ALL {
        let df = parse_ok(src);
        let lines: Vec<&str> = src.lines().collect();
        for (original, line) in df.steps() {
            let first = lines[line - 1].trim();
            assert!(
                original.starts_with(first.trim_end_matches('\\').trim_end()),
                "{original:?} vs line {line}: {first:?}"
            );
        }
    }
}
