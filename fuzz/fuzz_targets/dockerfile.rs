//! Dockerfiles: `berth_build::parse_bytes` (directives, continuations, heredocs, JSON and
//! shell forms, flags), then stage resolution with build args and the variable expansion of
//! every instruction.
#![no_main]
use berth_build::{parse_bytes, resolve, BuildArgs, Lexer, Vars};
use libfuzzer_sys::fuzz_target;

struct Env;
impl Vars for Env {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "A" => Some("a b".into()),
            "EMPTY" => Some(String::new()),
            "P" => Some("/p/*.txt".into()),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(df) = parse_bytes(data) else { return };
    let _ = df.step_count();
    let _: Vec<_> = df.steps().collect();
    let args = BuildArgs::new([("A", "1"), ("B", "")]);
    let _ = resolve(&df, &args, None);
    let lexer = Lexer::new(df.directives.escape);
    for st in &df.stages {
        for ins in &st.instructions {
            let _ = ins.expanded(&lexer, &Env);
        }
    }
});
