//! Events: an in-memory ring of recent events plus live subscribers.
use crate::util::{now_f64, Filters};
use crate::{Engine, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::Duration;

const RING: usize = 1000;

#[derive(Default)]
pub(crate) struct Bus {
    inner: Mutex<BusInner>,
}

#[derive(Default)]
struct BusInner {
    /// Recent events as their JSON text, by time (ns): one allocation each. As `Value`s (some
    /// 30 small allocations each, spread over the heap) the last 1000 events of a churn kept
    /// megabytes of otherwise free heap pages resident.
    ring: VecDeque<(i64, Box<str>)>,
    subs: Vec<Sender<Value>>,
}

impl Bus {
    /// Publish an event of `typ` ("container", "image"), `action`, actor `id` and attributes.
    pub(crate) fn publish(
        &self,
        typ: &str,
        action: &str,
        id: &str,
        attrs: BTreeMap<String, String>,
    ) {
        let t = now_f64();
        let secs = t.floor() as i64;
        let nanos = (t * 1e9) as i128;
        let mut ev = json!({
            "Type": typ,
            "Action": action,
            "Actor": {"ID": id, "Attributes": attrs},
            "scope": "local",
            "time": secs,
            "timeNano": nanos as i64,
        });
        if typ == "container" || typ == "image" {
            // Legacy fields the docker CLI still prints.
            ev["status"] = json!(action);
            ev["id"] = json!(id);
            if let Some(img) = attrs.get("image") {
                ev["from"] = json!(img);
            }
        }
        let Ok(mut g) = self.inner.lock() else { return };
        g.ring
            .push_back((nanos as i64, ev.to_string().into_boxed_str()));
        while g.ring.len() > RING {
            g.ring.pop_front();
        }
        g.subs.retain(|s| s.send(ev.clone()).is_ok());
    }
}

/// Blocking stream of Docker event messages (`{"Type","Action","Actor":{"ID","Attributes"},
/// "scope":"local","time","timeNano", and the legacy "status","id","from"}`).
pub struct EventStream {
    pub(crate) rx: Receiver<Value>,
    pub(crate) until: Option<f64>,
    pub(crate) filter: Box<dyn Fn(&Value) -> bool + Send>,
    pub(crate) backlog: VecDeque<Value>,
}

impl EventStream {
    /// Next matching event; `Ok(None)` on timeout (so the caller can check its client is still
    /// there); `Err(())` when the stream has ended (until passed, engine gone).
    #[allow(clippy::result_unit_err)]
    pub fn next_timeout(&mut self, d: Duration) -> std::result::Result<Option<Value>, ()> {
        if let Some(v) = self.backlog.pop_front() {
            return Ok(Some(v));
        }
        let deadline = std::time::Instant::now() + d;
        loop {
            if let Some(u) = self.until {
                if now_f64() > u {
                    return Err(());
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let wait = match self.until {
                Some(u) => left.min(Duration::from_secs_f64((u - now_f64()).max(0.0) + 0.001)),
                None => left,
            };
            match self.rx.recv_timeout(wait) {
                Ok(v) => {
                    if let Some(u) = self.until {
                        if v["time"].as_f64().unwrap_or(0.0) > u {
                            return Err(());
                        }
                    }
                    if (self.filter)(&v) {
                        return Ok(Some(v));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if std::time::Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Err(()),
            }
        }
    }
}

impl Iterator for EventStream {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        loop {
            match self.next_timeout(Duration::from_secs(1)) {
                Ok(Some(v)) => return Some(v),
                Ok(None) => continue,
                Err(()) => return None,
            }
        }
    }
}

fn matcher(f: Filters) -> impl Fn(&Value) -> bool + Send {
    move |v: &Value| {
        let typ = v["Type"].as_str().unwrap_or("");
        let action = v["Action"].as_str().unwrap_or("");
        let id = v["Actor"]["ID"].as_str().unwrap_or("");
        let attrs: BTreeMap<String, String> = crate::util::labels_of(&v["Actor"]["Attributes"]);
        let any = |k: &str, pred: &dyn Fn(&str) -> bool| -> bool {
            !f.has(k) || f.get(k).iter().any(|x| pred(x))
        };
        any("type", &|x| x == typ)
            && any("event", &|x| {
                x == action || action.starts_with(&format!("{x}:"))
            })
            && any("container", &|x| {
                typ == "container"
                    && (id.starts_with(x) || attrs.get("name").is_some_and(|n| n == x))
            })
            && any("image", &|x| {
                attrs.get("image").is_some_and(|n| n == x)
                    || (typ == "image" && (id == x || id.starts_with(x)))
            })
            && f.match_labels("label", &attrs)
    }
}

pub(crate) fn subscribe(
    e: &Engine,
    since: Option<f64>,
    until: Option<f64>,
    filters: &Value,
) -> Result<EventStream> {
    let f = Filters::parse(filters)?;
    f.validate(&[
        "type",
        "event",
        "container",
        "image",
        "label",
        "scope",
        "network",
        "volume",
        "daemon",
        "plugin",
        "node",
        "service",
        "secret",
        "config",
    ])?;
    let filter = matcher(f);
    let (tx, rx) = std::sync::mpsc::channel();
    let bus = &e.inner.0.events;
    let mut backlog = VecDeque::new();
    {
        let mut g = bus
            .inner
            .lock()
            .map_err(|_| crate::Error::Internal("event bus poisoned".into()))?;
        if let Some(s) = since {
            for (nanos, text) in &g.ring {
                let t = *nanos as f64 / 1e9;
                if t < s || until.is_some_and(|u| t > u) {
                    continue;
                }
                match serde_json::from_str::<Value>(text) {
                    Ok(ev) if filter(&ev) => backlog.push_back(ev),
                    _ => {}
                }
            }
        }
        if until.is_none_or(|u| u > now_f64()) {
            g.subs.push(tx);
        }
    }
    Ok(EventStream {
        rx,
        until,
        filter: Box::new(filter),
        backlog,
    })
}
