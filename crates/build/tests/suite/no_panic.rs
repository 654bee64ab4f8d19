//! Hostile input: truncated and corrupted fixtures, and random text, give `Ok` or `Err`,
//! never a panic (and substitution, resolution and .dockerignore likewise).

use berth_build::*;

use crate::fixtures::ALL;

/// xorshift64*: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Rounds of random input per test; `BERTH_FUZZ_ROUNDS` raises it for a longer local run.
fn rounds(default: usize) -> usize {
    std::env::var("BERTH_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes the parser gives meaning to, so that flips land on interesting ones.
const SPECIAL: &[u8] = b"\\`\"'$\n\r\t {}[]#<-=:,/*?!%+\xff\xc3";

/// Parses and then exercises everything downstream of a successful parse.
fn exercise(bytes: &[u8]) {
    let Ok(df) = parse_bytes(bytes) else { return };
    let lexer = Lexer::new(df.directives.escape);
    let vars = vec![
        ("A".to_string(), "x y".to_string()),
        ("EMPTY".to_string(), String::new()),
    ];
    for stage in &df.stages {
        let _ = stage.from.expand(&lexer, &vars);
        for ins in &stage.instructions {
            let _ = ins.expanded(&lexer, &vars);
        }
    }
    let _ = resolve(&df, &BuildArgs::new([("A", "1"), ("B", "2")]), None);
    let _ = df.steps().count();
}

#[test]
fn every_prefix_of_every_fixture() {
    for src in ALL {
        let bytes = src.as_bytes();
        for end in 0..=bytes.len() {
            exercise(&bytes[..end]);
        }
    }
}

#[test]
fn random_byte_flips() {
    let mut rng = Rng(0x5eed_0fbe);
    for src in ALL {
        for _ in 0..rounds(600) {
            let mut bytes = src.as_bytes().to_vec();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                let b = if rng.below(2) == 0 {
                    SPECIAL[rng.below(SPECIAL.len())]
                } else {
                    rng.next() as u8
                };
                match rng.below(3) {
                    0 => bytes[at] = b,
                    1 => bytes.insert(at, b),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            exercise(&bytes);
        }
    }
}

#[test]
fn random_text_from_special_bytes() {
    let mut rng = Rng(42);
    let words = [
        "FROM a\n",
        "RUN ",
        "COPY ",
        "ENV ",
        "ARG ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "<<EOF",
        "<<-X ",
        "EOF\n",
        "X\n",
        "--mount=",
        "--from=",
        "${",
        "}",
        "\\\n",
        "# escape=`\n",
        "[\"",
        "\"]",
    ];
    for _ in 0..rounds(600) * 5 {
        let mut text = Vec::new();
        for _ in 0..rng.below(40) {
            if rng.below(3) == 0 {
                text.extend_from_slice(words[rng.below(words.len())].as_bytes());
            } else {
                text.push(SPECIAL[rng.below(SPECIAL.len())]);
            }
        }
        exercise(&text);
        let as_text = String::from_utf8_lossy(&text);
        let _ = expand(&as_text, &vec![("A".to_string(), "v".to_string())]);
        let _ = Lexer::new('`').expand_words(&as_text, &());
        let _ = Lexer::new('\\').expand_heredoc(&as_text, &());
        if let Ok(ig) = DockerIgnore::parse(&as_text) {
            for path in ["a", "a/b", "", ".", "/x/../y", "[", "**"] {
                let _ = ig.is_excluded(path, false);
                let _ = ig.should_descend(path);
            }
        }
    }
}
