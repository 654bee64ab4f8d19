//! Docker-style (pflag) argument parsing: `-abc` clusters, `-e X`, `-eX`, `--name x`,
//! `--name=x`, `--flag=false`, `--`; commands that stop at the first positional (run, exec).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// boolean switch
    Bool,
    /// takes a value; repeated use keeps every value
    Value,
}

/// One flag of a command.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub short: Option<char>,
    pub long: &'static str,
    pub kind: Kind,
    /// type name shown in help (`string`, `list`, `int`, `bytes`...)
    pub ty: &'static str,
    pub help: &'static str,
    pub default: &'static str,
    pub hidden: bool,
}

pub const fn b(short: char, long: &'static str, help: &'static str) -> Flag {
    Flag {
        short: Some(short),
        long,
        kind: Kind::Bool,
        ty: "",
        help,
        default: "",
        hidden: false,
    }
}
pub const fn bl(long: &'static str, help: &'static str) -> Flag {
    Flag {
        short: None,
        long,
        kind: Kind::Bool,
        ty: "",
        help,
        default: "",
        hidden: false,
    }
}
pub const fn v(short: char, long: &'static str, ty: &'static str, help: &'static str) -> Flag {
    Flag {
        short: Some(short),
        long,
        kind: Kind::Value,
        ty,
        help,
        default: "",
        hidden: false,
    }
}
pub const fn vl(long: &'static str, ty: &'static str, help: &'static str) -> Flag {
    Flag {
        short: None,
        long,
        kind: Kind::Value,
        ty,
        help,
        default: "",
        hidden: false,
    }
}
impl Flag {
    pub const fn def(mut self, d: &'static str) -> Flag {
        self.default = d;
        self
    }
    pub const fn hide(mut self) -> Flag {
        self.hidden = true;
        self
    }
    fn display_name(&self) -> String {
        match self.short {
            Some(s) => format!("-{s}, --{}", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// How many positional arguments a command takes.
#[derive(Debug, Clone, Copy)]
pub enum Nargs {
    None,
    Exact(usize),
    AtLeast(usize),
    Range(usize, usize),
    Any,
}

/// A command's grammar.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    /// usage line after `berth `
    pub usage: &'static str,
    pub about: &'static str,
    pub nargs: Nargs,
    /// stop flag parsing at the first positional (run, exec, create)
    pub stop_at_positional: bool,
    pub flags: &'static [Flag],
    pub aliases: &'static [&'static str],
}

/// Parse failure: a usage error (exit 125) with docker's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub cmd: String,
    pub usage: String,
    pub msg: String,
    /// arg-count errors are phrased `berth: 'berth run' requires ...`
    pub arg_count: bool,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.arg_count {
            write!(
                f,
                "berth: {}\n\nUsage:  berth {}\n\nSee 'berth {} --help' for more information",
                self.msg, self.usage, self.cmd
            )
        } else {
            write!(
                f,
                "{}\n\nUsage:  berth {}\n\nRun 'berth {} --help' for more information",
                self.msg, self.usage, self.cmd
            )
        }
    }
}

/// Parsed flags and positionals.
#[derive(Debug, Default, Clone)]
pub struct Matches {
    pub args: Vec<String>,
    values: Vec<(&'static str, String)>,
    bools: Vec<(&'static str, bool)>,
    defaults: Vec<(&'static str, &'static str)>,
    pub help: bool,
}

impl Matches {
    /// Value of a boolean flag (its default when unset).
    pub fn flag(&self, long: &str) -> bool {
        match self.bools.iter().rev().find(|(k, _)| *k == long) {
            Some((_, v)) => *v,
            None => self
                .defaults
                .iter()
                .any(|(k, d)| *k == long && *d == "true"),
        }
    }
    /// Whether a flag appeared on the command line.
    pub fn changed(&self, long: &str) -> bool {
        self.bools.iter().any(|(k, _)| *k == long) || self.values.iter().any(|(k, _)| *k == long)
    }
    /// Last value given for a flag.
    pub fn value(&self, long: &str) -> Option<&str> {
        match self.values.iter().rev().find(|(k, _)| *k == long) {
            Some((_, v)) => Some(v.as_str()),
            None => self
                .defaults
                .iter()
                .find(|(k, d)| *k == long && !d.is_empty())
                .map(|(_, d)| *d),
        }
    }
    /// Adds a value as if given on the command line.
    pub fn with_value(mut self, long: &'static str, val: &str) -> Self {
        self.values.push((long, val.to_string()));
        self
    }
    /// Every value given for a flag, in order; comma lists are not split.
    pub fn values(&self, long: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Flags every command accepts.
const HELP: Flag = bl("help", "Print usage");

impl Spec {
    fn err(&self, msg: String) -> UsageError {
        UsageError {
            cmd: self.name.to_string(),
            usage: self.usage.to_string(),
            msg,
            arg_count: false,
        }
    }

    fn find_long(&self, name: &str) -> Option<&Flag> {
        if name == "help" {
            return Some(&HELP);
        }
        self.flags.iter().find(|f| f.long == name)
    }
    fn find_short(&self, c: char) -> Option<&Flag> {
        if c == 'h' && !self.flags.iter().any(|f| f.short == Some('h')) {
            return Some(&HELP);
        }
        self.flags.iter().find(|f| f.short == Some(c))
    }

    /// Parses `argv` (after the command name).
    pub fn parse(&self, argv: &[String]) -> Result<Matches, UsageError> {
        let mut m = Matches {
            defaults: self
                .flags
                .iter()
                .filter(|f| !f.default.is_empty())
                .map(|f| (f.long, f.default))
                .collect(),
            ..Matches::default()
        };
        let mut i = 0;
        let mut only_pos = false;
        while i < argv.len() {
            let a = &argv[i];
            i += 1;
            if only_pos || a == "-" || !a.starts_with('-') {
                m.args.push(a.clone());
                if self.stop_at_positional {
                    only_pos = true;
                }
                continue;
            }
            if a == "--" {
                only_pos = true;
                continue;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let f = *self
                    .find_long(name)
                    .ok_or_else(|| self.err(format!("unknown flag: --{name}")))?;
                self.apply(&mut m, &f, inline, argv, &mut i, &format!("--{name}"))?;
            } else {
                let chars: Vec<char> = a[1..].chars().collect();
                let mut j = 0;
                while j < chars.len() {
                    let c = chars[j];
                    let f = *self
                        .find_short(c)
                        .ok_or_else(|| self.err(format!("unknown shorthand flag: '{c}' in {a}")))?;
                    match f.kind {
                        Kind::Bool => {
                            if chars.get(j + 1) == Some(&'=') {
                                let rest: String = chars[j + 2..].iter().collect();
                                self.apply(
                                    &mut m,
                                    &f,
                                    Some(rest),
                                    argv,
                                    &mut i,
                                    &format!("'{c}' in {a}"),
                                )?;
                                break;
                            }
                            self.apply(&mut m, &f, None, argv, &mut i, &format!("'{c}' in {a}"))?;
                            j += 1;
                        }
                        Kind::Value => {
                            let rest: String = chars[j + 1..].iter().collect();
                            let inline = if rest.is_empty() {
                                None
                            } else {
                                Some(rest.strip_prefix('=').map(str::to_string).unwrap_or(rest))
                            };
                            self.apply(&mut m, &f, inline, argv, &mut i, &format!("'{c}' in {a}"))?;
                            break;
                        }
                    }
                }
            }
        }
        if m.help {
            return Ok(m);
        }
        self.check_nargs(m.args.len())?;
        Ok(m)
    }

    fn apply(
        &self,
        m: &mut Matches,
        f: &Flag,
        inline: Option<String>,
        argv: &[String],
        i: &mut usize,
        shown: &str,
    ) -> Result<(), UsageError> {
        if f.long == "help" {
            m.help = true;
            return Ok(());
        }
        match f.kind {
            Kind::Bool => {
                let val = match inline {
                    None => true,
                    Some(s) => parse_bool(&s).ok_or_else(|| {
                        self.err(format!(
                            "invalid argument {s:?} for \"{}\" flag: strconv.ParseBool: parsing {s:?}: invalid syntax",
                            f.display_name()
                        ))
                    })?,
                };
                m.bools.push((f.long, val));
            }
            Kind::Value => {
                let val = match inline {
                    Some(s) => s,
                    None => {
                        if *i >= argv.len() {
                            return Err(self.err(format!("flag needs an argument: {shown}")));
                        }
                        *i += 1;
                        argv[*i - 1].clone()
                    }
                };
                self.validate(f, &val)?;
                m.values.push((f.long, val));
            }
        }
        Ok(())
    }

    fn validate(&self, f: &Flag, val: &str) -> Result<(), UsageError> {
        let bad = |why: String| {
            self.err(format!(
                "invalid argument {val:?} for \"{}\" flag: {why}",
                f.display_name()
            ))
        };
        match f.ty {
            "int" | "uint16" => {
                val.parse::<i64>().map_err(|_| {
                    bad(format!("strconv.ParseInt: parsing {val:?}: invalid syntax"))
                })?;
            }
            // -1 means "unlimited" for --memory-swap
            "bytes" if val != "-1" => {
                crate::units::ram_in_bytes(val).map_err(bad)?;
            }
            "decimal" => {
                val.parse::<f64>()
                    .map_err(|_| bad(format!("failed to parse {val:?} as a rational number")))?;
            }
            "duration" if crate::units::parse_go_duration(val).is_none() => {
                return Err(bad(format!("time: invalid duration {val:?}")));
            }
            _ => {}
        }
        Ok(())
    }

    pub fn check_nargs(&self, n: usize) -> Result<(), UsageError> {
        let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
        let msg = match self.nargs {
            Nargs::None if n > 0 => Some(format!("'berth {}' accepts no arguments", self.name)),
            Nargs::Exact(k) if n != k => {
                Some(format!("'berth {}' requires {k} {}", self.name, plural(k)))
            }
            Nargs::AtLeast(k) if n < k => Some(format!(
                "'berth {}' requires at least {k} {}",
                self.name,
                plural(k)
            )),
            Nargs::Range(lo, hi) if n < lo || n > hi => Some(format!(
                "'berth {}' requires at least {lo} and at most {hi} arguments",
                self.name
            )),
            _ => None,
        };
        match msg {
            Some(msg) => Err(UsageError {
                cmd: self.name.into(),
                usage: self.usage.into(),
                msg,
                arg_count: true,
            }),
            None => Ok(()),
        }
    }

    /// The `--help` text.
    pub fn help(&self) -> String {
        let mut s = format!("\nUsage:  berth {}\n\n{}\n", self.usage, self.about);
        if !self.aliases.is_empty() {
            let mut al: Vec<String> = self.aliases.iter().map(|a| format!("berth {a}")).collect();
            al.push(format!("berth {}", self.name));
            s.push_str(&format!("\nAliases:\n  {}\n", al.join(", ")));
        }
        let flags: Vec<&Flag> = self.flags.iter().filter(|f| !f.hidden).collect();
        if !flags.is_empty() {
            s.push_str("\nOptions:\n");
            let lefts: Vec<String> = flags
                .iter()
                .map(|f| {
                    let short = match f.short {
                        Some(c) => format!("-{c}, "),
                        None => "    ".into(),
                    };
                    let ty = if f.ty.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", f.ty)
                    };
                    format!("  {short}--{}{ty}", f.long)
                })
                .collect();
            let w = lefts.iter().map(|l| l.len()).max().unwrap_or(0) + 3;
            for (f, l) in flags.iter().zip(lefts) {
                // continuation lines of multi-line help align under the text column
                let mut h = f.help.replace('\n', &format!("\n{}", " ".repeat(w)));
                if !f.default.is_empty() {
                    if f.ty == "string" {
                        h.push_str(&format!(" (default \"{}\")", f.default));
                    } else {
                        h.push_str(&format!(" (default {})", f.default));
                    }
                }
                s.push_str(&format!("{l:w$}{h}\n"));
            }
        }
        s
    }
}
