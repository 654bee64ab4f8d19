//! .dockerignore matching, including the examples of Docker's documentation.

use berth_build::{DockerIgnore, IgnoreError};

fn m(content: &str) -> DockerIgnore {
    DockerIgnore::parse(content).unwrap_or_else(|e| panic!("{e}"))
}

fn check(content: &str, table: &[(&str, bool)]) {
    let ignore = m(content);
    for (path, excluded) in table {
        assert_eq!(
            ignore.is_excluded(path, false),
            *excluded,
            "{content:?}: {path}"
        );
    }
}

#[test]
fn docs_example_wildcards() {
    // The example .dockerignore of Docker's documentation.
    let content = "# comment\n*/temp*\n*/*/temp*\ntemp?\n";
    check(
        content,
        &[
            ("somedir/temporary.txt", true),
            ("somedir/temp", true),
            ("somedir/temp/file", true),
            ("temporary.txt", false),
            ("somedir/subdir/temporary.txt", true),
            ("a/b/c/temporary.txt", false),
            ("tempa", true),
            ("tempb", true),
            ("temp", false),
            ("tempab", false),
            ("somedir/tempa", true),
            ("# comment", false),
        ],
    );
}

#[test]
fn docs_example_double_star() {
    check(
        "**/*.go",
        &[
            ("main.go", true),
            ("cmd/x/main.go", true),
            ("main.go.txt", false),
            ("a/go", false),
        ],
    );
}

#[test]
fn docs_example_exceptions() {
    check(
        "*.md\n!README.md",
        &[
            ("CHANGELOG.md", true),
            ("README.md", false),
            ("docs/x.md", false),
        ],
    );
    check(
        "*.md\n!README*.md\nREADME-secret.md",
        &[
            ("CHANGELOG.md", true),
            ("README.md", false),
            ("README-public.md", false),
            ("README-secret.md", true),
        ],
    );
    check(
        "*.md\nREADME-secret.md\n!README*.md",
        &[
            ("CHANGELOG.md", true),
            ("README.md", false),
            ("README-secret.md", false),
        ],
    );
}

#[test]
fn root_patterns_and_cleaning() {
    check(
        "/node_modules\n./build/\n.git\ndist//out/../bin\n",
        &[
            ("node_modules", true),
            ("node_modules/x/y.js", true),
            ("src/node_modules", false),
            ("build", true),
            ("build/a", true),
            ("./build/a", true),
            ("/build/a/", true),
            (".git/HEAD", true),
            (".gitignore", false),
            ("dist/bin/x", true),
            ("dist/out/x", false),
        ],
    );
    // `.` and `/` never exclude the context itself.
    check(".\n/\n", &[("a", false), ("", false), (".", false)]);
    assert!(!m("*").is_excluded(".", true));
    assert!(!m("*").is_excluded("", true));
}

#[test]
fn star_question_and_classes() {
    let table = [
        ("a.txt", true),
        ("b.log", true),
        ("c.bin", false),
        ("x1", true),
        ("x12", false),
        ("d/a.txt", false),
        ("lib-a.so", true),
        ("lib-d.so", false),
        ("lib-^.so", false),
        ("data9", false),
        ("datax", true),
        ("weird[name]", true),
        ("star*", true),
        ("starx", false),
    ];
    check(
        "*.txt\n*.log\nx?\nlib-[a-c].so\ndata[^0-9]\nweird\\[name]\nstar\\*\n",
        &table,
    );
}

#[test]
fn bracket_bang_is_literal_as_in_docker() {
    check("[!a]bc", &[("!bc", true), ("abc", true), ("xbc", false)]);
}

#[test]
fn double_star_forms() {
    check("**", &[("a", true), ("a/b/c", true)]);
    check(
        "a/**",
        &[("a", false), ("a/b", true), ("a/b/c", true), ("ab", false)],
    );
    check(
        "a/**/b",
        &[
            ("a/b", true),
            ("a/x/b", true),
            ("a/x/y/b", true),
            ("a/xb", false),
            ("a/b/c", true),
        ],
    );
    check(
        "**/test/**",
        &[
            ("test/x", true),
            ("a/test/x", true),
            ("a/test", false),
            ("a/testing/x", false),
        ],
    );
    check("a**b", &[("ab", true), ("ax/b", true), ("axb", false)]);
}

#[test]
fn last_match_wins_and_parents_match() {
    let content = "docs\n!docs/keep\ndocs/keep/secret\n";
    check(
        content,
        &[
            ("docs", true),
            ("docs/a.md", true),
            ("docs/keep", false),
            ("docs/keep/a", false),
            ("docs/keep/secret", true),
            ("docs/keep/secret/x", true),
        ],
    );
    // An exception on a parent re-includes what an earlier pattern excluded below it.
    check("a/b\n!a\n", &[("a/b", false), ("a/b/c", false)]);
}

#[test]
fn walking_excluded_directories() {
    let ig = m("node_modules\n!node_modules/keep.js\nbuild\n!**/important\ncache\n");
    assert!(ig.has_exceptions());
    assert!(ig.should_descend("src"), "not excluded");
    assert!(
        ig.should_descend("node_modules"),
        "an exception names a path below"
    );
    assert!(ig.should_descend("build"), "!**/important may match below");
    assert!(ig.is_excluded("build/x", false));
    assert!(!ig.is_excluded("build/important", false));
    assert!(!ig.is_excluded("build/sub/important/f", false));
    let ig = m("node_modules\n!src/keep\n");
    assert!(
        !ig.should_descend("node_modules"),
        "no exception can match below"
    );
    assert!(!ig.has_exceptions() || ig.should_descend("src"));
    let ig = m("tmp\n");
    assert!(!ig.should_descend("tmp"));
    assert!(!m("a\n!a/b*/c\n").should_descend("a/x"));
    assert!(m("a\n!a/b*/c\n").should_descend("a/bee"));
    assert!(m("a\n!a/*\n").should_descend("a"));
}

#[test]
fn file_format() {
    let ig = m("\u{feff}# comment\n  spaced.txt  \n\n  # not a comment\n! keep\r\n");
    let pats: Vec<(&str, bool, usize)> = ig
        .patterns()
        .iter()
        .map(|p| (p.pattern.as_str(), p.exception, p.line))
        .collect();
    assert_eq!(
        pats,
        vec![
            ("spaced.txt", false, 2),
            ("# not a comment", false, 4),
            ("keep", true, 5)
        ]
    );
    assert!(ig.is_excluded("spaced.txt", false));
    assert!(ig.is_excluded("# not a comment", false));
    let ig = DockerIgnore::from_patterns(["*.tmp", "!keep.tmp"]).unwrap();
    assert!(ig.is_excluded("a.tmp", false) && !ig.is_excluded("keep.tmp", false));
}

#[test]
fn pattern_errors() {
    assert_eq!(
        DockerIgnore::parse("a\n!\n"),
        Err(IgnoreError::LoneExclamation { line: 2 })
    );
    assert_eq!(
        DockerIgnore::parse("! \n").unwrap_err().to_string(),
        ".dockerignore:1: illegal exclusion pattern: \"!\""
    );
    for bad in ["[", "a[", "[]", "[^]", "[z-a]", "x\\", "[a-"] {
        let e = DockerIgnore::parse(&format!("ok\n{bad}\n")).unwrap_err();
        assert!(
            matches!(e, IgnoreError::BadPattern { line: 2, .. }),
            "{bad}: {e}"
        );
        assert!(
            e.to_string()
                .starts_with(".dockerignore:2: syntax error in pattern"),
            "{e}"
        );
    }
}

#[test]
fn no_pathological_slowness() {
    let ig = m(&format!("{}b\n", "*a".repeat(30)));
    let path = "a".repeat(200);
    assert!(!ig.is_excluded(&path, false));
    let ig = m(&format!("{}x\n", "**/".repeat(30)));
    assert!(!ig.is_excluded(&"a/".repeat(100), false));
}
