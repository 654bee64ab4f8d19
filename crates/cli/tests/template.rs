#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use berth_cli::output::{self, image_rows, ps_header, ps_row};
use berth_cli::template::{tabwrite, Template};
use serde_json::json;

fn run(t: &str, v: &serde_json::Value) -> String {
    Template::parse(t).unwrap().execute(v).unwrap()
}

#[test]
fn fields_and_nesting() {
    let v = json!({"Name": "/web", "State": {"Status": "running", "Pid": 42, "Running": true}});
    assert_eq!(run("{{.Name}}", &v), "/web");
    assert_eq!(run("{{.State.Status}}/{{.State.Pid}}", &v), "running/42");
    assert_eq!(run("{{.State.Running}}", &v), "true");
    assert_eq!(run("x{{.Missing}}y", &v), "x<no value>y");
}

#[test]
fn json_function() {
    let v = json!({"Config": {"Cmd": ["sh", "-c", "echo <hi> & bye"], "Env": null}});
    assert_eq!(
        run("{{json .Config.Cmd}}", &v),
        r#"["sh","-c","echo <hi> & bye"]"#
    );
    assert_eq!(run("{{json .Config.Env}}", &v), "null");
    assert_eq!(run("{{json .}}", &json!({"a": 1})), r#"{"a":1}"#);
}

#[test]
fn range_index_if_else() {
    let v = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Labels": {"x": "1", "com.y": "2"}, "On": false});
    assert_eq!(run("{{range .Mounts}}{{.Source}},{{end}}", &v), "/a,/b,");
    assert_eq!(run("{{index .Labels \"com.y\"}}", &v), "2");
    assert_eq!(run("{{if .On}}yes{{else}}no{{end}}", &v), "no");
    assert_eq!(run("{{if .Labels}}has{{end}}", &v), "has");
    assert_eq!(
        run("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", &v),
        "com.y=2;x=1;"
    );
    assert_eq!(run("{{range .Nope}}x{{else}}empty{{end}}", &v), "empty");
    assert_eq!(
        run(
            "{{if eq .On true}}a{{else if .Labels}}b{{else}}c{{end}}",
            &v
        ),
        "b"
    );
    assert_eq!(run("{{with .Labels}}{{.x}}{{end}}", &v), "1");
}

#[test]
fn string_functions() {
    let v = json!({"Names": ["a", "b"], "S": "MiXed"});
    assert_eq!(run("{{join .Names \",\"}}", &v), "a,b");
    assert_eq!(run("{{upper .S}} {{lower .S}}", &v), "MIXED mixed");
    assert_eq!(run("{{println .S}}", &v), "MiXed\n");
    assert_eq!(run("{{.S | lower}}", &v), "mixed");
    assert_eq!(run("{{len .Names}}", &v), "2");
    assert_eq!(run("{{printf \"%s-%v\" .S 3}}", &v), "MiXed-3");
    assert_eq!(run("{{- .S -}}  ", &v), "MiXed");
}

#[test]
fn go_value_rendering() {
    let v =
        json!({"M": {"b": 2, "a": "x"}, "L": [1, "two"], "N": null, "F": 0.5, "Big": 1073741824});
    assert_eq!(run("{{.M}}", &v), "map[a:x b:2]");
    assert_eq!(run("{{.L}}", &v), "[1 two]");
    assert_eq!(run("{{.N}}", &v), "<nil>");
    assert_eq!(run("{{.F}}", &v), "0.5");
    assert_eq!(run("{{.Big}}", &v), "1073741824");
}

#[test]
fn parse_errors_are_reported() {
    assert!(Template::parse("{{.A").is_err());
    assert!(Template::parse("{{if .A}}x").is_err());
    assert!(Template::parse("{{end}}").is_err());
    let e = Template::parse("{{nosuchfn .A}}")
        .unwrap()
        .execute(&json!({"A": 1}))
        .unwrap_err();
    assert!(e.contains("nosuchfn"), "{e}");
}

#[test]
fn tabwriter_matches_docker_spacing() {
    let s = tabwrite("A\tBB\tC\nlonger-cell\tx\ty");
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "A             BB        C");
    assert_eq!(lines[1], "longer-cell   x         y");
}

fn sample_container() -> serde_json::Value {
    json!({
        "Id": "c909c7a956a1358329171fa44ee7415187a104f8056542253e77060453bfd02b",
        "Names": ["/web"], "Image": "busybox", "Command": "sh -c 'i=0; while true; do echo'",
        "Created": 0, "State": "running", "Status": "Up 3 seconds",
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 443, "Type": "tcp"}],
        "Labels": {"a": "b", "c": "d"}, "SizeRw": 12, "SizeRootFs": 1984000,
        "NetworkSettings": {"Networks": {"none": {}}}, "Mounts": []
    })
}

#[test]
fn ps_placeholders() {
    let r = ps_row(&sample_container(), true);
    assert_eq!(run("{{.ID}}", &r), "c909c7a956a1");
    assert_eq!(
        run("{{.Names}} {{.Image}} {{.Status}} {{.State}}", &r),
        "web busybox Up 3 seconds running"
    );
    assert_eq!(run("{{.Command}}", &r), "\"sh -c 'i=0; while t…\"");
    assert_eq!(run("{{.Ports}}", &r), "443/tcp, 0.0.0.0:8080->80/tcp");
    assert_eq!(run("{{.Label \"a\"}}|{{.Labels}}", &r), "b|a=b,c=d");
    assert_eq!(run("{{.Size}}", &r), "12B (virtual 1.98MB)");
    assert_eq!(run("{{.Networks}}", &r), "none");
    assert!(run("{{.RunningFor}}", &r).ends_with(" years ago"));
    assert_eq!(run("{{.CreatedAt}}", &r), "1970-01-01 00:00:00 +0000 UTC");
    let full = ps_row(&sample_container(), false);
    assert_eq!(run("{{.ID}}", &full).len(), 64);
    // json omits internal keys and is sorted like Go's map encoding
    let j = run("{{json .}}", &r);
    assert!(j.starts_with("{\"Command\":"), "{j}");
    assert!(!j.contains("methods"));
}

#[test]
fn ports_group_like_docker() {
    use berth_cli::output::ports_string;
    let p = json!([
        {"PrivatePort": 81, "Type": "tcp"}, {"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 82, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
        {"IP": "0.0.0.0", "PrivatePort": 9000, "PublicPort": 9000, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 9001, "PublicPort": 9001, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 22, "PublicPort": 2222, "Type": "tcp"},
    ]);
    assert_eq!(
        ports_string(&p),
        "53/udp, 80-82/tcp, 0.0.0.0:9000-9001->9000-9001/tcp, [::]:2222->22/tcp"
    );
    assert_eq!(ports_string(&json!([])), "");
}

#[test]
fn ps_table_render() {
    let rows = vec![ps_row(&sample_container(), true)];
    let out = output::render(
        Some("table {{.ID}}\\t{{.Names}}"),
        output::PS_TABLE,
        &ps_header(),
        &rows,
    )
    .unwrap();
    assert_eq!(out, "CONTAINER ID   NAMES\nc909c7a956a1   web\n");
    let def = output::render(None, output::PS_TABLE, &ps_header(), &rows).unwrap();
    assert!(def.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{def}");
    let plain = output::render(Some("{{.Names}}"), output::PS_TABLE, &ps_header(), &rows).unwrap();
    assert_eq!(plain, "web\n");
}

#[test]
fn images_rows() {
    let img = json!({"Id": "sha256:cf5e2f8ce7718bd26143ebeaa722962fba0af4cd860bc5e2a790097d3a33e9bf", "RepoTags": ["busybox:latest", "127.0.0.1:5055/bb:v1"], "RepoDigests": ["127.0.0.1:5055/bb@sha256:5401"], "Created": 0, "Size": 1984000});
    let rows = image_rows(&img, true, None);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        run(
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Digest}}",
            &rows[0]
        ),
        "busybox:latest cf5e2f8ce771 1.98MB <none>"
    );
    assert_eq!(
        run("{{.Repository}}:{{.Tag}} {{.Digest}}", &rows[1]),
        "127.0.0.1:5055/bb:v1 sha256:5401"
    );
    let dangling = json!({"Id": "sha256:ab", "RepoTags": [], "Created": 0, "Size": 0});
    assert_eq!(
        run(
            "{{.Repository}}:{{.Tag}}",
            &image_rows(&dangling, true, None)[0]
        ),
        "<none>:<none>"
    );
}

#[test]
fn split_repo_tag_handles_registry_ports() {
    assert_eq!(output::split_repo_tag("busybox"), ("busybox", "latest"));
    assert_eq!(
        output::split_repo_tag("127.0.0.1:5055/bb:v1"),
        ("127.0.0.1:5055/bb", "v1")
    );
    assert_eq!(
        output::split_repo_tag("127.0.0.1:5055/bb"),
        ("127.0.0.1:5055/bb", "latest")
    );
}
