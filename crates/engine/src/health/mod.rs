//! Healthchecks as Docker runs them: `Config.Healthcheck` typed and merged with the image's
//! (`config`), `State.Health` and how results change it (`state`), the checks run as execs in
//! the container by one scheduler thread for all containers (`scheduler`, `check`).
//!
//! The lifecycle calls in: [`started`] when a container starts (health "starting", checks
//! armed), [`stopped`] when it exits or pauses (checks end; "unhealthy", as dockerd),
//! [`resumed`] when it is unpaused or found running at start-up (checks armed again, the
//! status as it was).
mod check;
mod config;
mod scheduler;
mod state;

pub(crate) use config::HealthConfig;
pub(crate) use scheduler::{spawn, Scheduler};
pub(crate) use state::{Health, HealthStatus};

use crate::model::Status;
use crate::shared::Shared;

/// Container `id` started: its health is "starting" (the log stays), checks armed.
pub(crate) fn started(s: &Shared, id: &str) {
    let after = s.containers.update_unsaved(id, |en| {
        let hc = en.rec.config.healthcheck.get()?;
        hc.probe()?;
        let h = en.rec.state.health.get_or_insert_with(Health::default);
        h.restart();
        Some(scheduler::next_interval(hc, h.status, 0.0))
    });
    match after {
        Ok(Some(after)) => s.health.arm(id, after),
        _ => s.health.disarm(id),
    }
}

/// Container `id` exited or paused: no more checks; its health (if it has one) is
/// "unhealthy" until a check says otherwise (dockerd's `CloseMonitorChannel`). In memory: the
/// write of the exit or pause that follows carries it.
pub(crate) fn stopped(s: &Shared, id: &str) {
    s.health.disarm(id);
    let _ = s.containers.update_unsaved(id, |en| {
        if let Some(h) = en.rec.state.health.as_mut() {
            h.status = HealthStatus::Unhealthy;
        }
    });
}

/// Container `id` runs again (unpaused, or found running at start-up): checks armed, the
/// status kept.
pub(crate) fn resumed(s: &Shared, id: &str) {
    let after = s.containers.update_unsaved(id, |en| {
        if en.rec.state.status != Status::Running {
            return None;
        }
        let hc = en.rec.config.healthcheck.get()?;
        hc.probe()?;
        let now = crate::util::now_f64();
        let started = crate::util::parse_rfc3339(&en.rec.state.started_at).unwrap_or(now);
        let h = en.rec.state.health.get_or_insert_with(Health::default);
        Some(scheduler::next_interval(hc, h.status, now - started))
    });
    if let Ok(Some(after)) = after {
        s.health.arm(id, after);
    }
}

/// The `health` filter's value of a container: its status, or "none".
pub(crate) fn filter_value(h: Option<&Health>) -> &'static str {
    h.map_or("none", |h| h.status.as_str())
}

/// The values the `health` filter takes.
pub(crate) fn valid_filter(v: &str) -> bool {
    matches!(v, "starting" | "healthy" | "unhealthy" | "none")
}
