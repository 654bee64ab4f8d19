#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use berth_cli::args::Matches;
use berth_cli::cmd::run::create_body;
use berth_cli::spec::spec;

fn p(cmd: &str, a: &[&str]) -> Result<Matches, berth_cli::args::UsageError> {
    let argv: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    spec(cmd).unwrap().parse(&argv)
}

#[test]
fn clusters_and_values() {
    let m = p(
        "run",
        &[
            "-it",
            "--rm",
            "-e",
            "A=1",
            "-eB=2",
            "--env=C=3",
            "--name",
            "x",
            "-w/tmp",
            "busybox",
            "sh",
            "-c",
            "echo -e",
        ],
    )
    .unwrap();
    assert!(m.flag("interactive") && m.flag("tty") && m.flag("rm"));
    assert!(!m.flag("detach"));
    assert_eq!(m.values("env"), vec!["A=1", "B=2", "C=3"]);
    assert_eq!(m.value("name"), Some("x"));
    assert_eq!(m.value("workdir"), Some("/tmp"));
    // parsing stops at the image: the rest belongs to the container
    assert_eq!(m.args, vec!["busybox", "sh", "-c", "echo -e"]);
}

#[test]
fn defaults_and_bool_values() {
    let m = p("run", &["busybox"]).unwrap();
    assert!(m.flag("sig-proxy"));
    assert_eq!(m.value("pull"), Some("missing"));
    assert!(!m.changed("pull"));
    let m = p("run", &["--sig-proxy=false", "busybox"]).unwrap();
    assert!(!m.flag("sig-proxy"));
    let e = p("run", &["--rm=maybe", "busybox"]).unwrap_err();
    assert!(e.msg.contains("invalid argument \"maybe\""), "{}", e.msg);
}

#[test]
fn interspersed_flags_for_other_commands() {
    let m = p("rm", &["a", "-f", "b"]).unwrap();
    assert!(m.flag("force"));
    assert_eq!(m.args, vec!["a", "b"]);
    let m = p("rm", &["--", "-weird"]).unwrap();
    assert_eq!(m.args, vec!["-weird"]);
}

#[test]
fn usage_errors_read_like_docker() {
    let e = p("ps", &["--foo"]).unwrap_err();
    assert_eq!(e.to_string(), "unknown flag: --foo\n\nUsage:  berth ps [OPTIONS]\n\nRun 'berth ps --help' for more information");
    let e = p("ps", &["-x"]).unwrap_err();
    assert_eq!(e.msg, "unknown shorthand flag: 'x' in -x");
    let e = p("run", &[]).unwrap_err();
    assert!(e.to_string().starts_with("berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"));
    let e = p("logs", &["a", "b"]).unwrap_err();
    assert_eq!(e.msg, "'berth logs' requires 1 argument");
    let e = p("ps", &["extra"]).unwrap_err();
    assert_eq!(e.msg, "'berth ps' accepts no arguments");
    let e = p("run", &["--name"]).unwrap_err();
    assert_eq!(e.msg, "flag needs an argument: --name");
    let e = p("run", &["-m", "lots", "img"]).unwrap_err();
    assert_eq!(
        e.msg,
        "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
    );
    let e = p("ps", &["-n", "x"]).unwrap_err();
    assert!(e
        .msg
        .starts_with("invalid argument \"x\" for \"-n, --last\" flag"));
}

#[test]
fn help_is_complete() {
    let h = spec("run").unwrap().help();
    for f in [
        "--detach",
        "--interactive",
        "--tty",
        "--rm",
        "--name",
        "--env-file",
        "--workdir",
        "--user",
        "--volume",
        "--mount",
        "--tmpfs",
        "--publish",
        "--publish-all",
        "--network",
        "--hostname",
        "--memory",
        "--cpus",
        "--pids-limit",
        "--restart",
        "--init",
        "--entrypoint",
        "--cap-add",
        "--cap-drop",
        "--privileged",
        "--read-only",
        "--security-opt",
        "--label",
        "--ulimit",
        "--device",
        "--shm-size",
        "--stop-signal",
        "--platform",
        "--pull",
        "--sig-proxy",
        "--detach-keys",
    ] {
        assert!(h.contains(f), "run --help lacks {f}");
    }
    assert!(h.contains("Usage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"));
    let m = p("run", &["--help"]).unwrap();
    assert!(m.help);
}

#[test]
fn create_body_maps_flags_to_api() {
    let m = p(
        "run",
        &[
            "-d",
            "--name",
            "n",
            "-e",
            "A=1",
            "-w",
            "/w",
            "-u",
            "1:2",
            "--memory",
            "64m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "20",
            "-p",
            "127.0.0.1:8080:80/udp",
            "-p",
            "9000:90",
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "--tmpfs",
            "/t:size=1m",
            "--restart",
            "on-failure:3",
            "--init",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--read-only",
            "--ulimit",
            "nofile=10:20",
            "--device",
            "/dev/fuse",
            "--shm-size",
            "1m",
            "--stop-signal",
            "SIGUSR1",
            "-l",
            "k=v",
            "--entrypoint",
            "",
            "--network",
            "none",
            "--hostname",
            "h",
            "--privileged",
            "--mount",
            "type=bind,source=/s,target=/d,readonly",
            "busybox",
            "echo",
            "hi",
        ],
    )
    .unwrap();
    let b = create_body(&m, &m.args[0], &m.args[1..]).unwrap();
    assert_eq!(b["Image"], "busybox");
    assert_eq!(b["Cmd"], serde_json::json!(["echo", "hi"]));
    assert_eq!(b["Entrypoint"], serde_json::json!([""]));
    assert_eq!(b["Env"], serde_json::json!(["A=1"]));
    assert_eq!(b["WorkingDir"], "/w");
    assert_eq!(b["User"], "1:2");
    assert_eq!(b["AttachStdout"], false);
    assert_eq!(b["Labels"]["k"], "v");
    assert_eq!(b["StopSignal"], "SIGUSR1");
    assert_eq!(b["Hostname"], "h");
    let hc = &b["HostConfig"];
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
    assert_eq!(hc["PidsLimit"], 20);
    assert_eq!(hc["PortBindings"]["80/udp"][0]["HostIp"], "127.0.0.1");
    assert_eq!(hc["PortBindings"]["80/udp"][0]["HostPort"], "8080");
    assert_eq!(hc["PortBindings"]["90/tcp"][0]["HostPort"], "9000");
    assert!(b["ExposedPorts"]["90/tcp"].is_object());
    assert_eq!(hc["Binds"], serde_json::json!(["/h:/c:ro"]));
    assert!(b["Volumes"]["/anon"].is_object());
    assert_eq!(hc["Tmpfs"]["/t"], "size=1m");
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(hc["Init"], true);
    assert_eq!(hc["CapAdd"][0], "NET_ADMIN");
    assert_eq!(hc["CapDrop"][0], "ALL");
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["Privileged"], true);
    assert_eq!(
        hc["Ulimits"][0],
        serde_json::json!({"Name": "nofile", "Soft": 10, "Hard": 20})
    );
    assert_eq!(hc["Devices"][0]["PathInContainer"], "/dev/fuse");
    assert_eq!(hc["ShmSize"], 1 << 20);
    assert_eq!(hc["NetworkMode"], "none");
    assert_eq!(hc["Mounts"][0]["Type"], "bind");
    assert_eq!(hc["Mounts"][0]["ReadOnly"], true);
}

#[test]
fn create_body_rejects_bad_values() {
    for bad in [
        vec!["-p", "notaport", "busybox"],
        vec!["--restart", "sometimes", "busybox"],
        vec!["--ulimit", "nofile=20:10", "busybox"],
        vec!["-v", "relative", "busybox"],
        vec!["--rm", "--restart", "always", "busybox"],
        vec!["-d", "-a", "stdout", "busybox"],
    ] {
        let m = p("run", &bad).unwrap();
        assert!(
            create_body(&m, &m.args[0], &m.args[1..]).is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn health_flags_as_the_docker_cli_sends_them() {
    let m = p(
        "run",
        &[
            "--health-cmd",
            "test -f /ok",
            "--health-interval",
            "1s",
            "--health-timeout",
            "500ms",
            "--health-start-period",
            "1m",
            "--health-start-interval",
            "1.5s",
            "--health-retries",
            "2",
            "busybox",
        ],
    )
    .unwrap();
    let b = create_body(&m, &m.args[0], &m.args[1..]).unwrap();
    assert_eq!(
        b["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000i64,
            "Timeout": 500_000_000, "StartPeriod": 60_000_000_000i64,
            "StartInterval": 1_500_000_000i64, "Retries": 2})
    );
    // Without --health-cmd the image's test stays (null).
    let m = p("run", &["--health-interval", "2s", "busybox"]).unwrap();
    let b = create_body(&m, "busybox", &[]).unwrap();
    assert!(b["Healthcheck"]["Test"].is_null());
    let m = p("run", &["--no-healthcheck", "busybox"]).unwrap();
    let b = create_body(&m, "busybox", &[]).unwrap();
    assert_eq!(b["Healthcheck"], serde_json::json!({"Test": ["NONE"]}));
    let m = p("run", &["busybox"]).unwrap();
    assert!(create_body(&m, "busybox", &[])
        .unwrap()
        .get("Healthcheck")
        .is_none());
    for (bad, msg) in [
        (
            vec!["--no-healthcheck", "--health-retries", "1"],
            "conflicts",
        ),
        (
            vec!["--health-retries", "-1"],
            "--health-retries cannot be negative",
        ),
    ] {
        let mut args = bad.clone();
        args.push("busybox");
        let m = p("run", &args).unwrap();
        let e = create_body(&m, "busybox", &[]).unwrap_err().to_string();
        assert!(e.contains(msg), "{bad:?}: {e}");
    }
    // Durations are checked as the flags are read.
    assert!(p("run", &["--health-timeout", "soon", "busybox"]).is_err());
    assert!(p("run", &["--health-start-interval", "-1s", "busybox"]).is_err());
}

#[test]
fn publish_ranges_expand() {
    use berth_cli::cmd::run::parse_port_spec;
    let v = parse_port_spec("127.0.0.1:8000-8001:80-81/udp").unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0],
        (
            "80/udp".to_string(),
            Some(("127.0.0.1".to_string(), "8000".to_string()))
        )
    );
    assert_eq!(
        v[1],
        (
            "81/udp".to_string(),
            Some(("127.0.0.1".to_string(), "8001".to_string()))
        )
    );
    assert_eq!(
        parse_port_spec("80").unwrap(),
        vec![("80/tcp".to_string(), None)]
    );
    assert_eq!(
        parse_port_spec("[::1]:8080:80").unwrap()[0].1,
        Some(("::1".to_string(), "8080".to_string()))
    );
    assert!(parse_port_spec("8000-8002:80-81").is_err());
    assert!(parse_port_spec("90-80").is_err());
    assert!(parse_port_spec("80/xyz").is_err());
    assert!(parse_port_spec("99999").is_err());
}

#[test]
fn unlimited_swap_and_negative_values() {
    let m = p(
        "run",
        &["--memory-swap", "-1", "--pids-limit", "-1", "busybox"],
    )
    .unwrap();
    let b = create_body(&m, "busybox", &[]).unwrap();
    assert_eq!(b["HostConfig"]["MemorySwap"], -1);
    assert_eq!(b["HostConfig"]["PidsLimit"], -1);
}

#[test]
fn interactive_attach_defaults() {
    let m = p("run", &["-i", "busybox"]).unwrap();
    let b = create_body(&m, "busybox", &[]).unwrap();
    assert_eq!(b["AttachStdin"], true);
    assert_eq!(b["OpenStdin"], true);
    assert_eq!(b["StdinOnce"], true);
    assert_eq!(b["AttachStdout"], true);
    assert!(b.get("Cmd").is_none());
}

#[test]
fn detach_keys_parse() {
    use berth_cli::term::parse_detach_keys;
    assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
    assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
    assert!(parse_detach_keys("ctrl-foo").is_err());
}

#[test]
fn detach_scanner_holds_back_partial_sequences() {
    use berth_cli::stream::DetachScanner;
    let mut s = DetachScanner::new(vec![16, 17]);
    assert_eq!(s.feed(b"ab"), (b"ab".to_vec(), false));
    assert_eq!(s.feed(&[16]), (vec![], false));
    assert_eq!(s.feed(b"x"), (vec![16, b'x'], false));
    assert_eq!(s.feed(&[b'y', 16, 17, b'z']), (vec![b'y'], true));
}

#[test]
fn filters_and_base64() {
    use berth_cli::client::filters_json;
    let f = filters_json(&["label=a=b".into(), "status=exited".into()])
        .unwrap()
        .unwrap();
    assert_eq!(f, r#"{"label":{"a=b":true},"status":{"exited":true}}"#);
    assert!(filters_json(&["nonsense".into()]).is_err());
    use berth_cli::cmd::auth::{base64_decode, base64_encode, base64url_encode, config_key};
    assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    assert_eq!(base64_encode(b"a"), "YQ==");
    assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8=");
    assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
    assert_eq!(config_key("docker.io"), "https://index.docker.io/v1/");
    assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
}

#[test]
fn image_names_normalize_like_docker() {
    use berth_cli::cmd::image::{normalize_name, pull_params, registry_of};
    assert_eq!(normalize_name("busybox"), "docker.io/library/busybox");
    assert_eq!(normalize_name("me/app"), "docker.io/me/app");
    assert_eq!(normalize_name("127.0.0.1:5055/bb"), "127.0.0.1:5055/bb");
    assert_eq!(registry_of("localhost/x"), "localhost");
    assert_eq!(pull_params("busybox"), ("busybox".into(), "latest".into()));
    assert_eq!(
        pull_params("h:5/x@sha256:ab"),
        ("h:5/x".into(), "sha256:ab".into())
    );
}

#[test]
fn start_errors_map_to_126_127() {
    use berth_cli::cmd::run::start_error_exit_code;
    assert_eq!(
        start_error_exit_code("exec: \"nope\": executable file not found in $PATH: unknown"),
        127
    );
    assert_eq!(
        start_error_exit_code("exec: \"/etc\": permission denied"),
        126
    );
    assert_eq!(start_error_exit_code("some other failure"), 125);
}
