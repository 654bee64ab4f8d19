//! Variable substitution tables and instruction-level substitution.

use std::collections::BTreeMap;

use berth_build::*;

use crate::{one, s};

fn vars() -> BTreeMap<String, String> {
    [
        ("HOME", "/root"),
        ("EMPTY", ""),
        ("NAME", "berth"),
        ("FILE", "archive.tar.gz"),
        ("PATHV", "/usr/local/bin:/usr/bin"),
        ("PORTS", "80  443/tcp"),
        ("SP", " a  b "),
        ("1", "one"),
        ("Ü", "umlaut"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn substitution_table() {
    let v = vars();
    let table: &[(&str, &str)] = &[
        ("$HOME", "/root"),
        ("${HOME}", "/root"),
        ("${HOME}_x", "/root_x"),
        ("$HOME_x", ""),
        ("$UNSET", ""),
        ("a${UNSET}b", "ab"),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${UNSET-default}", "default"),
        ("${NAME:-default}", "berth"),
        ("${NAME:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$HOME/x}", "/root/x"),
        ("${UNSET:-${NAME:-no}}", "berth"),
        ("${UNSET:-'a b'}", "a b"),
        ("${NAME:?}", "berth"),
        ("${EMPTY?}", ""),
        ("${FILE%.*}", "archive.tar"),
        ("${FILE%%.*}", "archive"),
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("${FILE#nomatch}", "archive.tar.gz"),
        ("${PATHV/bin/sbin}", "/usr/local/sbin:/usr/bin"),
        ("${PATHV//bin/sbin}", "/usr/local/sbin:/usr/sbin"),
        ("${PATHV//:/ }", "/usr/local/bin /usr/bin"),
        ("${FILE/a*./X}", "Xgz"),
        ("${UNSET/a/b}", ""),
        ("${FILE#\\*}", "archive.tar.gz"),
        ("$1", "one"),
        ("$12", ""),
        ("$Ü", "umlaut"),
        ("$", "$"),
        ("a$", "a$"),
        ("$ x", "$ x"),
        ("$/", "$/"),
        ("$$", ""),
        ("\\$HOME", "$HOME"),
        ("\\${HOME}", "${HOME}"),
        ("'$HOME'", "$HOME"),
        ("\"$HOME\"", "/root"),
        ("\"a \\\" b\"", "a \" b"),
        ("\"\\$HOME\"", "$HOME"),
        ("\"\\n\"", "\\n"),
        ("'\\n'", "\\n"),
        ("a\\ b", "a b"),
        ("a\\", "a"),
        ("\\\\", "\\"),
        ("\"\"", ""),
        ("x\"y z\"'w'", "xy zw"),
        ("\"${SP}\"", " a  b "),
    ];
    for (word, want) in table {
        assert_eq!(expand(word, &v).as_deref(), Ok(*want), "{word}");
    }
}

#[test]
fn substitution_errors() {
    let v = vars();
    let table: &[(&str, &str)] = &[
        ("${", "syntax error: missing '}'"),
        ("${HOME", "syntax error: missing '}'"),
        ("${HOME:-x", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:-x}", "syntax error: bad substitution"),
        ("${{x}}", "syntax error: bad substitution"),
        ("${HOME^^}", "unsupported modifier (^) in substitution"),
        ("${HOME:=x}", "unsupported modifier (:=) in substitution"),
        ("${UNSET:?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${UNSET?must be set}", "UNSET: must be set"),
        ("${HOME/x}", "syntax error: missing '/' in ${}"),
        ("${HOME#\\a}", "invalid escape '\\a'"),
        (
            "'abc",
            "unexpected end of statement while looking for matching single-quote",
        ),
        (
            "\"abc",
            "unexpected end of statement while looking for matching double-quote",
        ),
    ];
    for (word, want) in table {
        let e = expand(word, &v).expect_err(word);
        assert!(e.to_string().contains(want), "{word}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("failed to process {word:?}")),
            "{e}"
        );
    }
}

#[test]
fn word_splitting() {
    let v = vars();
    let lx = Lexer::new('\\');
    assert_eq!(
        lx.expand_words("$PORTS", &v).unwrap(),
        s(&["80", "443/tcp"])
    );
    assert_eq!(
        lx.expand_words("\"$PORTS\"", &v).unwrap(),
        s(&["80  443/tcp"])
    );
    assert_eq!(lx.expand_words("a\\ b c", &v).unwrap(), s(&["a b", "c"]));
    assert_eq!(
        lx.expand_words("x${SP}y", &v).unwrap(),
        s(&["x", "a", "b", "y"])
    );
    assert_eq!(
        lx.expand_words("'' \"\" $UNSET", &v).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(lx.expand("  keep  inner  ", &v).unwrap(), "  keep  inner  ");
}

#[test]
fn backtick_escape() {
    let v = vars();
    let lx = Lexer::new('`');
    assert_eq!(lx.expand("`$HOME", &v).unwrap(), "$HOME");
    assert_eq!(lx.expand("c:\\dir\\$NAME", &v).unwrap(), "c:\\dir\\berth");
    assert_eq!(lx.expand("\"`\"x\"", &v).unwrap(), "\"x");
}

#[test]
fn vars_sources() {
    let pairs = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(expand("$A", &pairs).unwrap(), "2");
    assert_eq!(expand("$A", &()).unwrap(), "");
    let f = VarFn(|n: &str| (n == "X").then(|| "x".to_string()));
    assert_eq!(expand("$X$Y", &f).unwrap(), "x");
    let h: std::collections::HashMap<String, String> = [("K".to_string(), "v".to_string())].into();
    assert_eq!(expand("${K}", &h).unwrap(), "v");
}

#[test]
fn env_and_label_values_lose_their_quotes() {
    let v = vars();
    let lx = Lexer::new('\\');
    let Instruction::Env(kvs) = one(r#"ENV A="a b" B='$HOME' C=$HOME D="${NAME}-x" E=a\ b"#)
        .expand(&lx, &v)
        .unwrap()
    else {
        panic!()
    };
    let got: Vec<(&str, &str)> = kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("A", "a b"),
            ("B", "$HOME"),
            ("C", "/root"),
            ("D", "berth-x"),
            ("E", "a b")
        ]
    );
    let Instruction::Env(kvs) = one("ENV MSG \"hello\"   $NAME").expand(&lx, &v).unwrap() else {
        panic!()
    };
    assert_eq!(kvs[0].value, "hello   berth");
    let Instruction::Label(kvs) = one("LABEL \"com.x.name\"=\"$NAME app\"")
        .expand(&lx, &v)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (kvs[0].key.as_str(), kvs[0].value.as_str()),
        ("com.x.name", "berth app")
    );
}

#[test]
fn instruction_fields_docker_substitutes() {
    let v = vars();
    let lx = Lexer::new('\\');
    let x = |line: &str| one(line).expand(&lx, &v).unwrap();
    assert_eq!(
        x("WORKDIR $HOME/app"),
        Instruction::Workdir("/root/app".into())
    );
    assert_eq!(
        x("USER ${NAME}:${NAME}"),
        Instruction::User("berth:berth".into())
    );
    assert_eq!(
        x("STOPSIGNAL ${SIG:-SIGTERM}"),
        Instruction::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        x("VOLUME $HOME /data"),
        Instruction::Volume(s(&["/root", "/data"]))
    );
    assert_eq!(
        x("EXPOSE $PORTS 53/udp"),
        Instruction::Expose(s(&["80", "443/tcp", "53/udp"]))
    );
    let Instruction::Arg(a) = x("ARG A=$HOME B") else {
        panic!()
    };
    assert_eq!(a.args[0].default.as_deref(), Some("/root"));
    let Instruction::Copy(c) =
        x("COPY --from=$NAME --chown=$NAME --chmod=${M:-644} $FILE \\$HOME $HOME/")
    else {
        panic!()
    };
    assert_eq!(
        (c.from.as_deref(), c.chown.as_deref(), c.chmod.as_deref()),
        (Some("berth"), Some("berth"), Some("644"))
    );
    assert_eq!(
        c.sources,
        vec![
            Source::Path("archive.tar.gz".into()),
            Source::Path("$HOME".into())
        ]
    );
    assert_eq!(c.dest, "/root/");
    let Instruction::Add(a) = x("ADD --checksum=${SUM:-sha256:1} https://x/$FILE /") else {
        panic!()
    };
    assert_eq!(
        (a.checksum.as_deref(), &a.sources[0]),
        (
            Some("sha256:1"),
            &Source::Path("https://x/archive.tar.gz".into())
        )
    );
    // Not substituted: RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER.
    for line in [
        "RUN echo $HOME",
        "CMD echo $HOME",
        "ENTRYPOINT [\"$HOME\"]",
        "SHELL [\"$HOME\"]",
        "HEALTHCHECK CMD $HOME",
        "ONBUILD WORKDIR $HOME",
        "MAINTAINER $NAME",
    ] {
        assert_eq!(x(line), one(line), "{line}");
    }
    let df = crate::parse_ok("FROM --platform=$P ${IMG:-alpine}:${TAG} AS x");
    let f = df.stages[0].from.expand(&lx, &v).unwrap();
    assert_eq!(
        (f.image.as_str(), f.platform.as_deref(), f.name.as_deref()),
        ("alpine:", Some(""), Some("x"))
    );
}

#[test]
fn copy_heredoc_bodies() {
    let v = vars();
    let lx = Lexer::new('\\');
    let Instruction::Copy(c) =
        one("COPY <<EOF <<'RAW' /\nhome=$HOME \"q\" 'q' \\$HOME\nEOF\nhome=$HOME\nRAW")
            .expand(&lx, &v)
            .unwrap()
    else {
        panic!()
    };
    let bodies: Vec<&str> = c
        .sources
        .iter()
        .map(|s| match s {
            Source::Heredoc(h) => h.content.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(bodies, vec!["home=/root \"q\" 'q' $HOME\n", "home=$HOME\n"]);
}

#[test]
fn located_errors_carry_the_line() {
    let df = crate::parse_ok("FROM a\n\nWORKDIR ${X");
    let e = df.stages[0].instructions[0]
        .expanded(&Lexer::new('\\'), &())
        .unwrap_err();
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .starts_with("Dockerfile:3: failed to process \"${X\": syntax error: missing '}'"),
        "{e}"
    );
}

#[test]
fn hostile_substitutions_end_in_errors_not_crashes() {
    let nested = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
    let e = expand(&nested, &()).unwrap_err();
    assert!(
        e.to_string().contains("nested too deeply"),
        "{}",
        &e.to_string()[..80]
    );
    let ok = format!("{}x{}", "${A:-".repeat(60), "}".repeat(60));
    assert_eq!(expand(&ok, &()).unwrap(), "x");
    let long = vec![("V".to_string(), "ab".repeat(100_000))];
    let started = std::time::Instant::now();
    assert_eq!(expand("${V//*x/-}", &long).unwrap().len(), 200_000);
    assert_eq!(expand("${V%%b*}", &long).unwrap(), "a");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
