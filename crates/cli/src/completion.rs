//! `berth completion bash|zsh`: completion scripts generated from the command specs.

use crate::spec;

fn all_commands() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = spec::COMMON
        .iter()
        .chain(spec::OTHERS.iter())
        .copied()
        .collect();
    v.extend(spec::MANAGEMENT.iter().map(|(n, _)| *n));
    v.sort();
    v
}

fn flags_of(cmd: &str) -> Vec<String> {
    let mut out = vec!["--help".to_string()];
    if let Some(s) = spec::spec(cmd) {
        for f in s.flags.iter().filter(|f| !f.hidden) {
            out.push(format!("--{}", f.long));
            if let Some(c) = f.short {
                out.push(format!("-{c}"));
            }
        }
    }
    out
}

pub fn bash() -> String {
    let mut s = String::from("# bash completion for berth\n_berth() {\n    local cur prev words cword\n    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n    local cmd=\"\" i\n    for ((i=1; i<COMP_CWORD; i++)); do\n        case \"${COMP_WORDS[i]}\" in\n            -H|--host|--config|-l|--log-level) ((i++));;\n            -*) ;;\n            *) cmd=\"${COMP_WORDS[i]}\"; break;;\n        esac\n    done\n    case \"$cmd\" in\n");
    s.push_str(&format!("        \"\") COMPREPLY=($(compgen -W \"{} --host -H --help --version\" -- \"$cur\")); return;;\n", all_commands().join(" ")));
    for (g, subs) in spec::MANAGEMENT_SUBS {
        s.push_str(&format!(
            "        {g}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return;;\n",
            subs.join(" ")
        ));
    }
    s.push_str(
        "        completion) COMPREPLY=($(compgen -W \"bash zsh\" -- \"$cur\")); return;;\n",
    );
    for c in spec::COMMON.iter().chain(spec::OTHERS.iter()) {
        s.push_str(&format!("        {c})\n            if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return; fi;;\n", flags_of(c).join(" ")));
    }
    s.push_str("    esac\n    case \"$cmd\" in\n        run|create|pull|push|rmi|history|save|tag) COMPREPLY=($(compgen -W \"$(berth images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)\" -- \"$cur\"));;\n        *) COMPREPLY=($(compgen -W \"$(berth ps -a --format '{{.Names}}' 2>/dev/null)\" -- \"$cur\"));;\n    esac\n}\ncomplete -F _berth berth\n");
    s
}

fn zsh_escape(s: &str) -> String {
    s.replace('\'', "'\\''")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace(':', "\\:")
}

pub fn zsh() -> String {
    let mut s = String::from("#compdef berth\n\n_berth() {\n  local -a commands\n  commands=(\n");
    for c in all_commands() {
        let about = spec::MANAGEMENT
            .iter()
            .find(|(n, _)| *n == c)
            .map(|x| x.1)
            .unwrap_or_else(|| spec::about(c));
        s.push_str(&format!("    '{}:{}'\n", c, zsh_escape(about)));
    }
    s.push_str("  )\n  if (( CURRENT == 2 )); then\n    _describe 'command' commands\n    return\n  fi\n  local cmd=${words[2]}\n  case $cmd in\n");
    for c in spec::COMMON.iter().chain(spec::OTHERS.iter()) {
        let sp = match spec::spec(c) {
            Some(x) => x,
            None => continue,
        };
        s.push_str(&format!("    {c})\n      _arguments \\\n"));
        for f in sp.flags.iter().filter(|f| !f.hidden) {
            let help = zsh_escape(f.help.lines().next().unwrap_or(""));
            let arg = if f.ty.is_empty() {
                String::new()
            } else {
                format!(":{}:", f.ty)
            };
            s.push_str(&format!("        '--{}[{help}]{arg}' \\\n", f.long));
            if let Some(sh) = f.short {
                s.push_str(&format!("        '-{sh}[{help}]{arg}' \\\n"));
            }
        }
        s.push_str("        '*::arg:_default'\n      ;;\n");
    }
    for (g, subs) in spec::MANAGEMENT_SUBS {
        s.push_str(&format!(
            "    {g}) _values 'subcommand' {} ;;\n",
            subs.join(" ")
        ));
    }
    s.push_str("    completion) _values 'shell' bash zsh ;;\n  esac\n}\n\ncompdef _berth berth\n");
    s
}

/// Prints the script; exit status.
pub fn run(shell: &str) -> i32 {
    match shell {
        "bash" => {
            print!("{}", bash());
            0
        }
        "zsh" => {
            print!("{}", zsh());
            0
        }
        other => {
            eprintln!("berth: unsupported shell {other:?} (use bash or zsh)");
            125
        }
    }
}
