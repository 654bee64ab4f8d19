//! A subset of Go's text/template, enough for docker's `--format`:
//! fields (`{{.A.B}}`), `.`, variables (`$`, `$x`), strings, numbers, pipelines,
//! `if`/`else if`/`else`, `range` (with `$k, $v :=`), `with`, and the functions
//! json, index, join, split, upper, lower, title, println, print, printf, len,
//! truncate, pad, eq, ne, lt, gt, not, and, or. Whitespace trim markers `{{-`/`-}}`.

use serde_json::Value;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Ident(String),
    Sub(Box<Pipe>),
}

#[derive(Debug, Clone, PartialEq)]
struct Cmd {
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Comma,
}

fn lex_action(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let field_chain = |c: &[char], i: &mut usize| -> Vec<String> {
        let mut parts = Vec::new();
        while *i < c.len() && c[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            if j == start {
                break;
            }
            parts.push(c[start..j].iter().collect());
            *i = j;
        }
        parts
    };
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '|' {
            out.push(Tok::Pipe);
            i += 1;
        } else if ch == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if ch == ':' && c.get(i + 1) == Some(&'=') {
            out.push(Tok::Declare);
            i += 2;
        } else if ch == '=' {
            out.push(Tok::Declare);
            i += 1;
        } else if ch == '.' {
            if i > 0
                && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
                && matches!(out.last(), Some(Tok::Ident(_)))
            {
                return Err("unexpected <.> in operand".into());
            }
            let parts = field_chain(&c, &mut i);
            if parts.is_empty() {
                out.push(Tok::Dot);
                i += 1;
            } else {
                out.push(Tok::Field(parts));
            }
        } else if ch == '$' {
            let start = i + 1;
            let mut j = start;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            let name: String = c[start..j].iter().collect();
            i = j;
            let parts = field_chain(&c, &mut i);
            out.push(Tok::Var(name, parts));
        } else if ch == '"' {
            let mut j = i + 1;
            let mut sv = String::new();
            loop {
                if j >= c.len() {
                    return Err("unterminated quoted string".into());
                }
                match c[j] {
                    '"' => break,
                    '\\' if j + 1 < c.len() => {
                        j += 1;
                        sv.push(match c[j] {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            o => o,
                        });
                    }
                    o => sv.push(o),
                }
                j += 1;
            }
            out.push(Tok::Str(sv));
            i = j + 1;
        } else if ch == '`' {
            let rest: String = c[i + 1..].iter().collect();
            let end = rest.find('`').ok_or("unterminated raw quoted string")?;
            out.push(Tok::Str(rest[..end].to_string()));
            i += 1 + rest[..end].chars().count() + 1;
        } else if ch.is_ascii_digit()
            || (ch == '-' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut j = i + 1;
            while j < c.len() && (c[j].is_ascii_digit() || c[j] == '.') {
                j += 1;
            }
            let ns: String = c[i..j].iter().collect();
            out.push(Tok::Num(
                ns.parse()
                    .map_err(|_| format!("bad number syntax: {ns:?}"))?,
            ));
            i = j;
        } else if ch.is_alphabetic() || ch == '_' {
            let mut j = i;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push(Tok::Ident(c[i..j].iter().collect()));
            i = j;
        } else {
            return Err(format!("unexpected {ch:?} in command"));
        }
    }
    Ok(out)
}

struct TokParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl TokParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn pipe(&mut self, allow_decl: bool) -> Result<Pipe, String> {
        let mut decl = Vec::new();
        if allow_decl {
            // look ahead: $a := or $a, $b :=
            let save = self.pos;
            let mut names = Vec::new();
            loop {
                match self.toks.get(self.pos) {
                    Some(Tok::Var(n, f)) if f.is_empty() => {
                        names.push(n.clone());
                        self.pos += 1;
                    }
                    _ => break,
                }
                match self.toks.get(self.pos) {
                    Some(Tok::Comma) => self.pos += 1,
                    Some(Tok::Declare) => {
                        self.pos += 1;
                        decl = names.clone();
                        break;
                    }
                    _ => break,
                }
            }
            if decl.is_empty() {
                self.pos = save;
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            while let Some(t) = self.peek().cloned() {
                match t {
                    Tok::Pipe | Tok::RParen => break,
                    Tok::LParen => {
                        self.pos += 1;
                        let p = self.pipe(false)?;
                        if self.peek() != Some(&Tok::RParen) {
                            return Err("unclosed left paren".into());
                        }
                        self.pos += 1;
                        args.push(Arg::Sub(Box::new(p)));
                    }
                    Tok::Dot => {
                        self.pos += 1;
                        args.push(Arg::Dot)
                    }
                    Tok::Field(f) => {
                        self.pos += 1;
                        args.push(Arg::Field(f))
                    }
                    Tok::Var(n, f) => {
                        self.pos += 1;
                        args.push(Arg::Var(n, f))
                    }
                    Tok::Str(s) => {
                        self.pos += 1;
                        args.push(Arg::Str(s))
                    }
                    Tok::Num(n) => {
                        self.pos += 1;
                        args.push(Arg::Num(n))
                    }
                    Tok::Ident(id) => {
                        self.pos += 1;
                        args.push(match id.as_str() {
                            "true" => Arg::Bool(true),
                            "false" => Arg::Bool(false),
                            "nil" => Arg::Nil,
                            _ => Arg::Ident(id),
                        })
                    }
                    Tok::Comma | Tok::Declare => return Err("unexpected token in pipeline".into()),
                }
            }
            if args.is_empty() {
                return Err("missing value for command".into());
            }
            cmds.push(Cmd { args });
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
                continue;
            }
            break;
        }
        Ok(Pipe { decl, cmds })
    }
}

fn parse_pipe(s: &str, allow_decl: bool) -> Result<Pipe, String> {
    let toks = lex_action(s)?;
    let mut p = TokParser { toks, pos: 0 };
    let pipe = p.pipe(allow_decl)?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in operand", p.toks[p.pos]));
    }
    Ok(pipe)
}

enum Item {
    Text(String),
    Action(String),
}

fn split_items(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (after, trim_prev) = match after.strip_prefix("- ") {
            Some(a) => (a, true),
            None => (after, false),
        };
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let end = after.find("}}").ok_or("unclosed action")?;
        let mut inner = &after[..end];
        trim_next = false;
        if let Some(i) = inner.strip_suffix(" -") {
            inner = i;
            trim_next = true;
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            items.push(Item::Action(inner.to_string()));
        }
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        items.push(Item::Text(text.to_string()));
    }
    Ok(items)
}

fn keyword(a: &str) -> (&str, &str) {
    let a = a.trim();
    let end = a.find(|c: char| c.is_whitespace()).unwrap_or(a.len());
    (&a[..end], a[end..].trim())
}

/// Parses nodes until one of `stops` (returns which stop and its remainder).
fn parse_nodes(
    items: &[Item],
    pos: &mut usize,
    stop_at_else: bool,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        match &items[*pos] {
            Item::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                *pos += 1;
            }
            Item::Action(a) => {
                *pos += 1;
                let (kw, rest) = keyword(a);
                match kw {
                    "end" => return Ok((nodes, Some("end".into()))),
                    "else" => {
                        if !stop_at_else {
                            return Err("unexpected {{else}}".into());
                        }
                        return Ok((nodes, Some(format!("else {rest}"))));
                    }
                    "if" | "range" | "with" => {
                        let pipe = parse_pipe(rest, kw != "if")?;
                        let (body, stop) = parse_nodes(items, pos, true)?;
                        let mut els = Vec::new();
                        match stop.as_deref() {
                            Some("end") => {}
                            Some(s) if s.starts_with("else") => {
                                let cond = s["else".len()..].trim();
                                if let Some(c) = cond.strip_prefix("if ") {
                                    // else if: nest a new If that consumes the shared {{end}}
                                    let p2 = parse_pipe(c, false)?;
                                    let (b2, stop2) = parse_nodes(items, pos, true)?;
                                    let mut e2 = Vec::new();
                                    let mut st = stop2;
                                    // handle chains of else if
                                    let mut chain: Vec<(Pipe, Vec<Node>)> = vec![(p2, b2)];
                                    loop {
                                        match st.as_deref() {
                                            Some("end") => break,
                                            Some(s) if s.starts_with("else") => {
                                                let c = s["else".len()..].trim();
                                                if let Some(c) = c.strip_prefix("if ") {
                                                    let p = parse_pipe(c, false)?;
                                                    let (b, s2) = parse_nodes(items, pos, true)?;
                                                    chain.push((p, b));
                                                    st = s2;
                                                } else {
                                                    let (b, s2) = parse_nodes(items, pos, false)?;
                                                    if s2.as_deref() != Some("end") {
                                                        return Err("missing {{end}}".into());
                                                    }
                                                    e2 = b;
                                                    break;
                                                }
                                            }
                                            _ => return Err("missing {{end}}".into()),
                                        }
                                    }
                                    let mut acc = e2;
                                    while let Some((p, b)) = chain.pop() {
                                        acc = vec![Node::If(p, b, acc)];
                                    }
                                    els = acc;
                                } else {
                                    let (b, s2) = parse_nodes(items, pos, false)?;
                                    if s2.as_deref() != Some("end") {
                                        return Err("missing {{end}}".into());
                                    }
                                    els = b;
                                }
                            }
                            _ => {
                                return Err(format!(
                                    "unexpected EOF: missing {{{{end}}}} for {{{{{kw}}}}}"
                                ))
                            }
                        }
                        nodes.push(match kw {
                            "if" => Node::If(pipe, body, els),
                            "range" => Node::Range(pipe, body, els),
                            _ => Node::With(pipe, body, els),
                        });
                    }
                    _ => nodes.push(Node::Action(parse_pipe(a, true)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

impl Template {
    /// Parses a template; errors read like Go's (`template: :1: ...`).
    pub fn parse(src: &str) -> Result<Template, String> {
        let wrap = |e: String| format!("template parsing error: template: :1: {e}");
        let items = split_items(src).map_err(wrap)?;
        let mut pos = 0;
        let (nodes, stop) = parse_nodes(&items, &mut pos, false).map_err(wrap)?;
        if let Some(s) = stop {
            return Err(wrap(format!("unexpected {{{{{s}}}}}")));
        }
        Ok(Template { nodes })
    }

    /// Executes the template against `data`.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        let mut out = String::new();
        let mut vars = vec![("".to_string(), data.clone())];
        exec_nodes(&self.nodes, data, &mut vars, &mut out)
            .map_err(|e| format!("template: :1: executing \"\" {e}"))?;
        Ok(out)
    }
}

fn exec_nodes(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&to_display(&v));
                }
            }
            Node::If(p, then, els) => {
                let v = eval_pipe(p, dot, vars)?;
                let mark = vars.len();
                if truthy(&v) {
                    exec_nodes(then, dot, vars, out)?;
                } else {
                    exec_nodes(els, dot, vars, out)?;
                }
                vars.truncate(mark);
            }
            Node::With(p, body, els) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars)?;
                if truthy(&v) {
                    exec_nodes(body, &v, vars, out)?;
                } else {
                    exec_nodes(els, dot, vars, out)?;
                }
                vars.truncate(mark);
            }
            Node::Range(p, body, els) => {
                let mark = vars.len();
                let inner = Pipe {
                    decl: vec![],
                    cmds: p.cmds.clone(),
                };
                let v = eval_pipe(&inner, dot, vars)?;
                let pairs: Vec<(Value, Value)> = match &v {
                    m if is_missing(m) => vec![],
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(o) => {
                        let mut ks: Vec<_> = o.iter().collect();
                        ks.sort_by(|a, b| a.0.cmp(b.0));
                        ks.into_iter()
                            .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                            .collect()
                    }
                    Value::Null => vec![],
                    Value::Number(n) => {
                        let c = n.as_i64().unwrap_or(0).max(0);
                        (0..c).map(|i| (Value::from(i), Value::from(i))).collect()
                    }
                    other => return Err(format!("range can't iterate over {}", to_display(other))),
                };
                if pairs.is_empty() {
                    exec_nodes(els, dot, vars, out)?;
                }
                for (k, x) in pairs {
                    let m2 = vars.len();
                    match p.decl.len() {
                        0 => {}
                        1 => vars.push((p.decl[0].clone(), x.clone())),
                        _ => {
                            vars.push((p.decl[0].clone(), k));
                            vars.push((p.decl[1].clone(), x.clone()));
                        }
                    }
                    exec_nodes(body, &x, vars, out)?;
                    vars.truncate(m2);
                }
                vars.truncate(mark);
            }
        }
    }
    Ok(())
}

fn lookup(v: &Value, path: &[String]) -> Result<Value, String> {
    let mut cur = v.clone();
    for p in path {
        cur = match &cur {
            Value::Object(o) => match o.get(p) {
                Some(x) => x.clone(),
                None => missing(),
            },
            Value::Null => {
                return Err(format!(
                    "at <.{p}>: nil pointer evaluating interface {{}}.{p}"
                ))
            }
            other => {
                return Err(format!(
                    "at <.{p}>: can't evaluate field {p} in type {}",
                    type_name(other)
                ))
            }
        };
    }
    Ok(cur)
}

/// Marker for "map has no such key" (Go prints `<no value>`).
fn missing() -> Value {
    let mut m = serde_json::Map::new();
    m.insert("\u{0}missing".into(), Value::Bool(true));
    Value::Object(m)
}

fn is_missing(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.len() == 1 && o.contains_key("\u{0}missing"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

fn eval_arg(a: &Arg, dot: &Value, vars: &[(String, Value)]) -> Result<Value, String> {
    match a {
        Arg::Dot => Ok(dot.clone()),
        Arg::Field(f) => lookup(dot, f),
        Arg::Var(n, f) => {
            let base = vars
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("undefined variable: ${n}"))?;
            lookup(&base, f)
        }
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Num(n) => Ok(if n.fract() == 0.0 {
            Value::from(*n as i64)
        } else {
            Value::from(*n)
        }),
        Arg::Bool(b) => Ok(Value::Bool(*b)),
        Arg::Nil => Ok(Value::Null),
        Arg::Sub(p) => eval_pipe(p, dot, &mut vars.to_vec()),
        Arg::Ident(f) => call(f, vec![]),
    }
}

fn eval_pipe(p: &Pipe, dot: &Value, vars: &mut Vec<(String, Value)>) -> Result<Value, String> {
    let mut prev: Option<Value> = None;
    for c in &p.cmds {
        let v = eval_cmd(c, dot, vars, prev.take())?;
        prev = Some(v);
    }
    let v = prev.unwrap_or(Value::Null);
    if !p.decl.is_empty() {
        vars.push((p.decl[0].clone(), v.clone()));
    }
    Ok(v)
}

fn eval_cmd(
    c: &Cmd,
    dot: &Value,
    vars: &[(String, Value)],
    piped: Option<Value>,
) -> Result<Value, String> {
    let first = &c.args[0];
    match first {
        Arg::Ident(name) => {
            let mut args = Vec::new();
            for a in &c.args[1..] {
                args.push(eval_arg(a, dot, vars)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            call(name, args)
        }
        Arg::Field(path) if c.args.len() > 1 || piped.is_some() => {
            // A "method" call with arguments: docker's `.Label "key"`.
            let (last, base) = path.split_last().ok_or("empty field")?;
            let obj = lookup(dot, base)?;
            let mut args = Vec::new();
            for a in &c.args[1..] {
                args.push(eval_arg(a, dot, vars)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            let methods = obj.get("\u{0}methods").and_then(|m| m.get(last.as_str()));
            match (methods, args.first()) {
                (Some(Value::Object(m)), Some(Value::String(k))) => {
                    Ok(m.get(k).cloned().unwrap_or(Value::String(String::new())))
                }
                _ => Err(format!(
                    "at <.{last}>: {last} is not a method but has arguments"
                )),
            }
        }
        _ => {
            if c.args.len() > 1 {
                return Err(format!("can't give argument to non-function {:?}", first));
            }
            if piped.is_some() {
                return Err("can't give argument to non-function".into());
            }
            eval_arg(first, dot, vars)
        }
    }
}

fn truthy(v: &Value) -> bool {
    if is_missing(v) {
        return false;
    }
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn num_display(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f.abs() >= 1e21 {
            return format!("{f:e}");
        }
        // Go prints large integral floats in exponent form, e.g. 1e+06.
        if f.abs() >= 1e6 {
            let e = f.abs().log10().floor() as i32;
            let m = f / 10f64.powi(e);
            let ms = format!("{m}");
            return format!("{ms}e+{e:02}");
        }
        return format!("{}", f as i64);
    }
    format!("{f}")
}

/// Go's `%v` rendering of a JSON value.
pub fn to_display(v: &Value) -> String {
    if is_missing(v) {
        return "<no value>".into();
    }
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => num_display(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(to_display).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let mut ks: Vec<_> = o.iter().filter(|(k, _)| !k.starts_with('\u{0}')).collect();
            ks.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = ks
                .iter()
                .map(|(k, v)| format!("{k}:{}", to_display(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_display(other),
    }
}

fn strip_internal(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            if is_missing(v) {
                return Value::Null;
            }
            Value::Object(
                o.iter()
                    .filter(|(k, _)| !k.starts_with('\u{0}'))
                    .map(|(k, x)| (k.clone(), strip_internal(x)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_internal).collect()),
        o => o.clone(),
    }
}

fn cmp_values(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn need(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "error calling {name}: wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "json" => {
            need(name, &args, 1)?;
            Ok(Value::String(
                serde_json::to_string(&strip_internal(&args[0])).map_err(|e| e.to_string())?,
            ))
        }
        "upper" => {
            need(name, &args, 1)?;
            Ok(Value::String(as_str(&args[0]).to_uppercase()))
        }
        "lower" => {
            need(name, &args, 1)?;
            Ok(Value::String(as_str(&args[0]).to_lowercase()))
        }
        "title" => {
            need(name, &args, 1)?;
            let s = as_str(&args[0]);
            let mut out = String::new();
            let mut up = true;
            for ch in s.chars() {
                if up && ch.is_alphabetic() {
                    out.extend(ch.to_uppercase());
                } else {
                    out.push(ch);
                }
                up = !ch.is_alphanumeric();
            }
            Ok(Value::String(out))
        }
        "join" => {
            need(name, &args, 2)?;
            let list = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect::<Vec<_>>(),
                Value::Null => vec![],
                o => {
                    return Err(format!(
                        "error calling join: expected a list, got {}",
                        type_name(o)
                    ))
                }
            };
            Ok(Value::String(list.join(&as_str(&args[1]))))
        }
        "split" => {
            need(name, &args, 2)?;
            let s = as_str(&args[0]);
            let sep = as_str(&args[1]);
            Ok(Value::Array(
                s.split(sep.as_str())
                    .map(|x| Value::String(x.into()))
                    .collect(),
            ))
        }
        "println" | "print" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0
                    && (name == "println"
                        || !(matches!(a, Value::String(_))
                            || matches!(args[i - 1], Value::String(_))))
                {
                    s.push(' ');
                }
                s.push_str(&to_display(a));
            }
            if name == "println" {
                s.push('\n');
            }
            Ok(Value::String(s))
        }
        "printf" => {
            let fmt = args
                .first()
                .map(as_str)
                .ok_or("error calling printf: missing format")?;
            let mut rest = args.iter().skip(1);
            let mut s = String::new();
            let mut chars = fmt.chars().peekable();
            while let Some(ch) = chars.next() {
                if ch != '%' {
                    s.push(ch);
                    continue;
                }
                match chars.next() {
                    Some('%') => s.push('%'),
                    Some('q') => {
                        let _ = write!(s, "{:?}", rest.next().map(as_str).unwrap_or_default());
                    }
                    Some(_) => s.push_str(
                        &rest
                            .next()
                            .map(to_display)
                            .unwrap_or_else(|| "%!v(MISSING)".into()),
                    ),
                    None => s.push('%'),
                }
            }
            Ok(Value::String(s))
        }
        "index" => {
            if args.is_empty() {
                return Err("error calling index: missing arguments".into());
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Object(o), key) => o.get(&as_str(key)).cloned().unwrap_or_else(missing),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("error calling index: bad index")? as usize;
                        a.get(i).cloned().ok_or_else(|| {
                            format!("error calling index: index out of range: {i}")
                        })?
                    }
                    (Value::Null, _) => Value::Null,
                    (o, _) => {
                        return Err(format!(
                            "error calling index: can't index item of type {}",
                            type_name(o)
                        ))
                    }
                };
            }
            Ok(cur)
        }
        "len" => {
            need(name, &args, 1)?;
            Ok(Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.len(),
                o => return Err(format!("error calling len: len of type {}", type_name(o))),
            }))
        }
        "truncate" => {
            need(name, &args, 2)?;
            let s = as_str(&args[0]);
            let n = args[1].as_u64().unwrap_or(0) as usize;
            Ok(Value::String(s.chars().take(n).collect()))
        }
        "pad" => {
            need(name, &args, 3)?;
            let s = as_str(&args[0]);
            let l = args[1].as_u64().unwrap_or(0) as usize;
            let r = args[2].as_u64().unwrap_or(0) as usize;
            Ok(Value::String(format!(
                "{}{}{}",
                " ".repeat(l),
                s,
                " ".repeat(r)
            )))
        }
        "eq" | "ne" => {
            if args.len() < 2 {
                return Err(format!(
                    "error calling {name}: missing argument for comparison"
                ));
            }
            let eq = args[1..].iter().any(|b| {
                let a = &args[0];
                match (a, b) {
                    (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                    _ => a == b,
                }
            });
            Ok(Value::Bool(if name == "eq" { eq } else { !eq }))
        }
        "lt" | "le" | "gt" | "ge" => {
            need(name, &args, 2)?;
            let o = cmp_values(&args[0], &args[1]).ok_or_else(|| {
                format!("error calling {name}: incompatible types for comparison")
            })?;
            Ok(Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            }))
        }
        "not" => {
            need(name, &args, 1)?;
            Ok(Value::Bool(!truthy(&args[0])))
        }
        "and" => Ok(args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null)),
        "or" => Ok(args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null)),
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Go text/tabwriter with docker's settings (minwidth 10, padding 3, no flags):
/// every tab-terminated cell is padded to its column's width.
pub fn tabwrite(text: &str) -> String {
    tabwrite_with(text, 10, 3)
}

pub fn tabwrite_with(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                break; // trailing text is not a cell
            }
            let w = c.chars().count() + padding;
            if widths.len() <= i {
                widths.push(minwidth.max(w));
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    for (li, cells) in lines.iter().enumerate() {
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i + 1 < cells.len() {
                let w = c.chars().count();
                for _ in w..widths[i] {
                    out.push(' ');
                }
            }
        }
        if li + 1 < lines.len() {
            out.push('\n');
        }
    }
    out
}
