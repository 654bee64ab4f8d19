//! Multi-stage builds: which stages the target needs (a graph of `FROM stage`,
//! `COPY --from=stage` and `RUN --mount=from=stage` edges), the table through which stages
//! built concurrently hand each other their results, and the output of concurrent stages
//! kept in Dockerfile order.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::args::BuildArgs;
use crate::ast::{Dockerfile, Instruction};
use crate::builder::{BuildError, Event, State};
use crate::lex::Lexer;

/// The stages `last` needs, itself included, in Dockerfile order.
pub(crate) fn needed(df: &Dockerfile, last: usize, lexer: &Lexer, args: &BuildArgs) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![last];
    while let Some(i) = todo.pop() {
        if seen.insert(i) {
            todo.extend(deps(df, i, lexer, args));
        }
    }
    seen.into_iter().collect()
}

/// The earlier stages stage `i` reads from. A `--from` with a variable in it (known only
/// when the step runs) counts as a dependency on every earlier stage.
fn deps(df: &Dockerfile, i: usize, lexer: &Lexer, args: &BuildArgs) -> Vec<usize> {
    let names: Vec<Option<&str>> = df.stages.iter().map(|s| s.name()).collect();
    let stage = &df.stages[i];
    let mut out = Vec::new();
    if let Ok(from) = stage.from.expand(lexer, &args.meta_vars()) {
        let image = from.image.to_ascii_lowercase();
        out.extend((0..i).rev().find(|j| names[*j] == Some(image.as_str())));
    }
    let mut refs: Vec<&str> = Vec::new();
    for ins in &stage.instructions {
        match &ins.node {
            Instruction::Copy(c) => refs.extend(c.from.as_deref()),
            Instruction::Run(r) => refs.extend(r.mounts.iter().filter_map(|m| m.from.as_deref())),
            _ => {}
        }
    }
    for f in refs {
        if f.contains('$') {
            return (0..i).collect();
        }
        if let Some(j) = stage_ref(&names[..i], f, false) {
            out.push(j);
        }
    }
    out
}

/// The stage a `--from`/`FROM` names among `names` (the stages before the one asking):
/// by name (the last such stage for `FROM`, the first for `--from`, as the classic builder
/// looks them up), or by index for `--from`.
fn stage_ref(names: &[Option<&str>], f: &str, for_from: bool) -> Option<usize> {
    let lower = f.to_ascii_lowercase();
    let named = |j: &usize| names[*j] == Some(lower.as_str());
    if for_from {
        return (0..names.len()).rev().find(named);
    }
    (0..names.len())
        .find(named)
        .or_else(|| f.parse::<usize>().ok().filter(|j| *j < names.len()))
}

enum Slot {
    /// Built by this build, not done yet.
    Pending,
    /// Not needed by the target: never built.
    Skipped,
    Done(Box<State>),
    Failed,
}

/// The stages of one build: their results as they finish, and the build-wide stop (a failed
/// stage stops the others).
pub(crate) struct Table {
    names: Vec<Option<String>>,
    slots: Mutex<Vec<Slot>>,
    changed: Condvar,
    abort: AtomicBool,
    /// The stage whose failure stopped the build (its error is the build's).
    first_failure: Mutex<Option<usize>>,
}

impl Table {
    pub(crate) fn new(df: &Dockerfile, needed: &[usize]) -> Table {
        let slots = (0..df.stages.len())
            .map(|i| {
                if needed.contains(&i) {
                    Slot::Pending
                } else {
                    Slot::Skipped
                }
            })
            .collect();
        Table {
            names: df
                .stages
                .iter()
                .map(|s| s.name().map(str::to_string))
                .collect(),
            slots: Mutex::new(slots),
            changed: Condvar::new(),
            abort: AtomicBool::new(false),
            first_failure: Mutex::new(None),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stage before `before` that `f` names (see [`stage_ref`]).
    pub(crate) fn find(&self, f: &str, before: usize, for_from: bool) -> Option<usize> {
        let names: Vec<Option<&str>> = self.names[..before.min(self.names.len())]
            .iter()
            .map(|n| n.as_deref())
            .collect();
        stage_ref(&names, f, for_from)
    }

    /// Stage `i`'s final state, once it is built (waits for it).
    pub(crate) fn wait(&self, i: usize) -> Result<State, BuildError> {
        let mut slots = self.slots();
        loop {
            match &slots[i] {
                Slot::Done(st) => return Ok((**st).clone()),
                Slot::Failed => return Err(BuildError::Cancelled),
                Slot::Skipped => {
                    return Err(BuildError::Invalid(format!(
                        "stage {} is not built for this target",
                        self.names[i].as_deref().unwrap_or(&i.to_string())
                    )))
                }
                Slot::Pending if self.stopped() => return Err(BuildError::Cancelled),
                Slot::Pending => {
                    slots = self.changed.wait(slots).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// Records how stage `i` ended; a failure stops the build.
    pub(crate) fn finish(&self, i: usize, st: Option<State>) {
        let failed = st.is_none();
        self.slots()[i] = match st {
            Some(st) => Slot::Done(Box::new(st)),
            None => Slot::Failed,
        };
        if failed {
            let mut first = self.first_failure.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(i);
            self.abort.store(true, Ordering::SeqCst);
        }
        self.changed.notify_all();
    }

    /// Whether a stage failed: the others stop (a running step is killed).
    pub(crate) fn stopped(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    pub(crate) fn first_failure(&self) -> Option<usize> {
        *self.first_failure.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks its stage failed if dropped before [`StageGuard::done`] (a panicking stage must not
/// leave the others waiting for it).
pub(crate) struct StageGuard<'a> {
    pub table: &'a Table,
    pub index: usize,
    pub finished: bool,
}

impl Drop for StageGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.table.finish(self.index, None);
        }
    }
}

/// The output of concurrent stages, in Dockerfile order: the earliest stage not done
/// streams live; the others' events wait in memory until every stage before them is done,
/// so the stream reads as a sequential build's.
pub(crate) struct Ordered<'a> {
    inner: Mutex<OrderedInner<'a>>,
}

struct OrderedInner<'a> {
    order: Vec<usize>,
    pos: usize,
    done: BTreeSet<usize>,
    held: HashMap<usize, Vec<Event>>,
    out: &'a mut (dyn FnMut(Event) + Send),
}

impl<'a> Ordered<'a> {
    pub(crate) fn new(order: Vec<usize>, out: &'a mut (dyn FnMut(Event) + Send)) -> Ordered<'a> {
        Ordered {
            inner: Mutex::new(OrderedInner {
                order,
                pos: 0,
                done: BTreeSet::new(),
                held: HashMap::new(),
                out,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OrderedInner<'a>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn emit(&self, stage: usize, ev: Event) {
        let mut o = self.lock();
        if o.order.get(o.pos) == Some(&stage) {
            (o.out)(ev);
        } else {
            o.held.entry(stage).or_default().push(ev);
        }
    }

    /// Stage `stage` emits nothing more: the next stages' held output follows it.
    pub(crate) fn done(&self, stage: usize) {
        let mut o = self.lock();
        o.done.insert(stage);
        while o.pos < o.order.len() && o.done.contains(&o.order[o.pos]) {
            o.pos += 1;
            if let Some(&next) = o.order.get(o.pos) {
                for ev in o.held.remove(&next).unwrap_or_default() {
                    (o.out)(ev);
                }
            }
        }
    }

    /// Everything still held, in stage order (a failed build's last words).
    pub(crate) fn flush(&self) {
        let mut o = self.lock();
        let order = o.order.clone();
        for s in order {
            for ev in o.held.remove(&s).unwrap_or_default() {
                (o.out)(ev);
            }
        }
        o.pos = o.order.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, last: usize) -> Vec<usize> {
        let df = crate::parse(text).unwrap();
        let mut args = BuildArgs::new(Vec::<(String, String)>::new());
        for a in &df.args_before_from {
            for d in &a.node.args {
                args.declare_meta(&d.name, d.default.clone());
            }
        }
        needed(&df, last, &Lexer::new('\\'), &args)
    }

    #[test]
    fn only_what_the_target_needs() {
        let df = "ARG B=base\nFROM x AS base\nFROM y AS unused\nFROM z AS other\n\
                  FROM ${B} AS mid\nCOPY --from=other /a /a\nFROM w\nRUN --mount=from=mid,target=/m true\n";
        assert_eq!(plan(df, 4), vec![0, 2, 3, 4]);
        assert_eq!(plan(df, 1), vec![1]);
        assert_eq!(plan(df, 3), vec![0, 2, 3]);
        // By index, and a variable: every earlier stage.
        assert_eq!(
            plan("FROM a\nFROM b\nFROM c\nCOPY --from=0 /x /x\n", 2),
            vec![0, 2]
        );
        assert_eq!(
            plan("FROM a\nFROM b\nFROM c\nCOPY --from=$S /x /x\n", 2),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn ordered_output_follows_the_dockerfile() {
        let mut got = Vec::new();
        let mut out = |e: Event| {
            if let Event::Stream(s) = e {
                got.push(s)
            }
        };
        let o = Ordered::new(vec![0, 2, 3], &mut out);
        let s = |t: &str| Event::Stream(t.into());
        o.emit(2, s("b1"));
        o.emit(0, s("a1"));
        o.emit(3, s("c1"));
        o.done(3);
        o.emit(0, s("a2"));
        o.done(0);
        o.emit(2, s("b2"));
        o.done(2);
        drop(o);
        assert_eq!(got, ["a1", "a2", "b1", "b2", "c1"]);
    }
}
