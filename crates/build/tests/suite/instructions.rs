//! Every instruction form parses to the expected typed node.

use std::time::Duration;

use berth_build::*;

use crate::{one, parse_ok, s};

#[test]
fn from_forms() {
    let df = parse_ok("FROM alpine:3.20\nFROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nfrom scratch as out");
    let f: Vec<&From> = df.stages.iter().map(|s| &s.from.node).collect();
    assert_eq!(
        f[0],
        &From {
            image: "alpine:3.20".into(),
            name: None,
            platform: None
        }
    );
    assert_eq!(
        f[1],
        &From {
            image: "golang:1.22".into(),
            name: Some("build".into()),
            platform: Some("$BUILDPLATFORM".into())
        }
    );
    assert_eq!(f[2].name.as_deref(), Some("out"));
    assert_eq!(df.stages[1].from.line, 2);
    assert_eq!(
        df.stages[1].from.original,
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build"
    );
    assert_eq!(df.stage("BUILD").map(|s| s.from.line), Some(2));
    assert_eq!(df.stage("2").map(|s| s.from.line), Some(3));
}

#[test]
fn run_shell_and_exec() {
    let Instruction::Run(r) = one("RUN apt-get update && apt-get install -y curl") else {
        panic!()
    };
    assert_eq!(
        r.command,
        CommandLine::Shell("apt-get update && apt-get install -y curl".into())
    );
    assert!(r.mounts.is_empty() && r.network.is_none() && r.heredocs.is_empty());
    let Instruction::Run(r) = one(r#"RUN ["/bin/sh", "-c", "echo hi"]"#) else {
        panic!()
    };
    assert_eq!(
        r.command,
        CommandLine::Exec(s(&["/bin/sh", "-c", "echo hi"]))
    );
    let Instruction::Run(r) = one(r#"RUN [ "not json"#) else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("[ \"not json".into()));
    let Instruction::Run(r) = one("run echo '[1]'") else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("echo '[1]'".into()));
}

#[test]
fn run_mounts_and_network() {
    let line = "RUN --mount=type=cache,target=/root/.cache/go-build,id=gocache,sharing=locked \
                --mount=type=bind,source=go.sum,target=go.sum \
                --mount=type=tmpfs,target=/tmp,size=64m \
                --mount=type=secret,id=npmrc,target=/root/.npmrc,required \
                --mount=type=ssh \
                --network=none go build ./...";
    let Instruction::Run(r) = one(line) else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("go build ./...".into()));
    assert_eq!(r.network, Some(Network::None));
    let m = &r.mounts;
    assert_eq!(m.len(), 5);
    assert_eq!(
        (m[0].kind, m[0].target.as_deref(), m[0].id.as_deref()),
        (
            MountType::Cache,
            Some("/root/.cache/go-build"),
            Some("gocache")
        )
    );
    assert_eq!(m[0].sharing, Some(Sharing::Locked));
    assert!(!m[0].readonly, "cache mounts are writable by default");
    assert_eq!(
        (m[1].kind, m[1].source.as_deref()),
        (MountType::Bind, Some("go.sum"))
    );
    assert!(m[1].readonly, "bind mounts are read-only by default");
    assert_eq!((m[2].kind, m[2].size), (MountType::Tmpfs, Some(64 << 20)));
    assert_eq!((m[3].kind, m[3].required), (MountType::Secret, true));
    assert_eq!(m[4].kind, MountType::Ssh);
    let Instruction::Run(r) = one("RUN --mount=target=/src,rw,from=build --network=host true")
    else {
        panic!()
    };
    assert_eq!(r.network, Some(Network::Host));
    assert_eq!(
        (
            r.mounts[0].kind,
            r.mounts[0].readonly,
            r.mounts[0].from.as_deref()
        ),
        (MountType::Bind, false, Some("build"))
    );
    let Instruction::Run(r) =
        one("RUN --mount=type=cache,target=/c,mode=0700,uid=1000,gid=1000,ro true")
    else {
        panic!()
    };
    assert_eq!(
        (r.mounts[0].mode, r.mounts[0].uid, r.mounts[0].readonly),
        (Some(0o700), Some(1000), true)
    );
    let Instruction::Run(r) = one("RUN --mount=\"type=bind,target=/a b\" true") else {
        panic!()
    };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/a b"));
}

#[test]
fn cmd_entrypoint_shell() {
    assert_eq!(
        one("CMD [\"nginx\", \"-g\", \"daemon off;\"]"),
        Instruction::Cmd(CommandLine::Exec(s(&["nginx", "-g", "daemon off;"])))
    );
    assert_eq!(
        one("CMD echo $HOME"),
        Instruction::Cmd(CommandLine::Shell("echo $HOME".into()))
    );
    assert_eq!(one("CMD"), Instruction::Cmd(CommandLine::Exec(vec![])));
    assert_eq!(one("CMD []"), Instruction::Cmd(CommandLine::Exec(vec![])));
    assert_eq!(
        one("ENTRYPOINT [\"/entry.sh\"]"),
        Instruction::Entrypoint(CommandLine::Exec(s(&["/entry.sh"])))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b"),
        Instruction::Entrypoint(CommandLine::Shell("exec top -b".into()))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]"),
        Instruction::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"]))
    );
}

fn kv(key: &str, value: &str, legacy: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        legacy,
    }
}

#[test]
fn env_forms() {
    assert_eq!(one("ENV A=1"), Instruction::Env(vec![kv("A", "1", false)]));
    assert_eq!(
        one(r#"ENV A="a b" B=c\ d C='$x' D="""#),
        Instruction::Env(vec![
            kv("A", "\"a b\"", false),
            kv("B", "c\\ d", false),
            kv("C", "'$x'", false),
            kv("D", "\"\"", false)
        ])
    );
    assert_eq!(
        one("ENV PATH /usr/local/go/bin:$PATH"),
        Instruction::Env(vec![kv("PATH", "/usr/local/go/bin:$PATH", true)])
    );
    assert_eq!(
        one("ENV MSG   hello   world "),
        Instruction::Env(vec![kv("MSG", "hello   world", true)])
    );
    assert_eq!(
        one("ENV A= B=x"),
        Instruction::Env(vec![kv("A", "", false), kv("B", "x", false)])
    );
    assert_eq!(
        one("ENV A=b=c"),
        Instruction::Env(vec![kv("A", "b=c", false)])
    );
}

#[test]
fn label_arg_expose() {
    assert_eq!(
        one(r#"LABEL org.opencontainers.image.title="berth test" version=1"#),
        Instruction::Label(vec![
            kv("org.opencontainers.image.title", "\"berth test\"", false),
            kv("version", "1", false)
        ])
    );
    assert_eq!(
        one("LABEL maintainer someone"),
        Instruction::Label(vec![kv("maintainer", "someone", true)])
    );
    let Instruction::Arg(a) = one("ARG A B=2 C=\"x y\" D=") else {
        panic!()
    };
    let got: Vec<(&str, Option<&str>)> = a
        .args
        .iter()
        .map(|d| (d.name.as_str(), d.default.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("A", None),
            ("B", Some("2")),
            ("C", Some("\"x y\"")),
            ("D", Some(""))
        ]
    );
    assert_eq!(
        one("EXPOSE 80 443/tcp  53/udp"),
        Instruction::Expose(s(&["80", "443/tcp", "53/udp"]))
    );
}

#[test]
fn single_argument_instructions() {
    assert_eq!(one("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(one("USER a b"), Instruction::User("a b".into()));
    assert_eq!(
        one("WORKDIR /app dir"),
        Instruction::Workdir("/app dir".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGQUIT"),
        Instruction::StopSignal("SIGQUIT".into())
    );
    assert_eq!(
        one("MAINTAINER Jane <jane@example.org>"),
        Instruction::Maintainer("Jane <jane@example.org>".into())
    );
    assert_eq!(
        one("VOLUME /data /logs"),
        Instruction::Volume(s(&["/data", "/logs"]))
    );
    assert_eq!(
        one("VOLUME [\"/data\", \" /x \"]"),
        Instruction::Volume(s(&["/data", "/x"]))
    );
}

#[test]
fn copy_and_add() {
    let Instruction::Copy(c) =
        one("COPY --from=build --chown=app:app --chmod=0755 --link /out/app /usr/local/bin/")
    else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(
        (c.chown.as_deref(), c.chmod.as_deref(), c.link, c.parents),
        (Some("app:app"), Some("0755"), true, false)
    );
    assert_eq!(c.sources, vec![Source::Path("/out/app".into())]);
    assert_eq!(c.dest, "/usr/local/bin/");
    let Instruction::Copy(c) = one("COPY [\"a b.txt\", \"c\", \"/dst dir/\"]") else {
        panic!()
    };
    assert!(c.json);
    assert_eq!(
        c.sources,
        vec![Source::Path("a b.txt".into()), Source::Path("c".into())]
    );
    assert_eq!(c.dest, "/dst dir/");
    let Instruction::Copy(c) =
        one("COPY --exclude=*.md --exclude=tests --parents src/ docs/ /app/")
    else {
        panic!()
    };
    assert_eq!(
        (c.exclude.clone(), c.parents),
        (s(&["*.md", "tests"]), true)
    );
    let Instruction::Add(a) = one(
        "ADD --checksum=sha256:abc --keep-git-dir=true --chown=1:1 https://example.org/x.tgz /x/",
    ) else {
        panic!()
    };
    assert_eq!(
        (a.checksum.as_deref(), a.keep_git_dir, a.chown.as_deref()),
        (Some("sha256:abc"), true, Some("1:1"))
    );
    assert_eq!(
        a.sources,
        vec![Source::Path("https://example.org/x.tgz".into())]
    );
    let Instruction::Add(a) = one("add --link=false rootfs.tar.xz /") else {
        panic!()
    };
    assert!(!a.link);
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one("HEALTHCHECK --interval=5s none"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let Instruction::Healthcheck(Healthcheck::Check(h)) = one(
        "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1",
    ) else {
        panic!()
    };
    assert_eq!(
        h.command,
        CommandLine::Shell("curl -f http://localhost/ || exit 1".into())
    );
    assert_eq!(h.interval, Some(Duration::from_secs(30)));
    assert_eq!(h.timeout, Some(Duration::from_secs(3)));
    assert_eq!(h.start_period, Some(Duration::from_secs(60)));
    assert_eq!(h.start_interval, Some(Duration::from_millis(500)));
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        h.test(),
        s(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    let Instruction::Healthcheck(Healthcheck::Check(h)) =
        one("HEALTHCHECK --interval=0s --retries=0 cmd [\"/bin/check\", \"-q\"]")
    else {
        panic!()
    };
    assert_eq!((h.interval, h.retries), (None, None));
    assert_eq!(h.test(), s(&["CMD", "/bin/check", "-q"]));
}

#[test]
fn onbuild_wraps_an_instruction() {
    let Instruction::Onbuild(o) = one("ONBUILD COPY . /app/src") else {
        panic!()
    };
    assert_eq!(o.expression, "COPY . /app/src");
    let Instruction::Copy(c) = *o.trigger else {
        panic!()
    };
    assert_eq!(c.dest, "/app/src");
    let Instruction::Onbuild(o) = one("onbuild   run --mount=type=cache,target=/c make") else {
        panic!()
    };
    assert_eq!(o.expression, "run --mount=type=cache,target=/c make");
    assert!(matches!(*o.trigger, Instruction::Run(ref r) if r.mounts.len() == 1));
}

#[test]
fn keywords_are_case_insensitive() {
    let df = parse_ok("from alpine\nRuN echo\ncOpY a b\nWorkDir /x");
    let kws: Vec<&str> = df.stages[0]
        .instructions
        .iter()
        .map(|i| i.keyword())
        .collect();
    assert_eq!(kws, vec!["RUN", "COPY", "WORKDIR"]);
}

#[test]
fn parse_instruction_alone() {
    let l = parse_instruction("RUN a \\\n  b", '\\').unwrap();
    assert_eq!((l.line, l.end_line), (1, 2));
    assert_eq!(
        l.node,
        Instruction::Run(Run {
            command: CommandLine::Shell("a   b".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None
        })
    );
    let l = parse_instruction("RUN <<EOF\necho hi\nEOF\n", '\\').unwrap();
    assert!(matches!(l.node, Instruction::Run(ref r) if r.heredocs[0].content == "echo hi\n"));
    assert!(parse_instruction("RUN a\nRUN b", '\\').is_err());
    assert!(parse_instruction("", '\\').is_err());
}
