//! A container's health as Docker shows it in `State.Health` (persisted in the record), and
//! how a check's result changes it (dockerd's `handleProbeResult`).
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Results kept (Docker's `maxLogEntries`).
pub(crate) const MAX_LOG: usize = 5;
/// Output kept of a check (Docker's `maxOutputLen`): more is cut and marked "...".
pub(crate) const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// What `docker ps` shows in parentheses after "Up ...".
    pub(crate) fn ps_suffix(self) -> &'static str {
        match self {
            HealthStatus::Starting => "health: starting",
            o => o.as_str(),
        }
    }
}

/// One check's result (`HealthcheckResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HealthResult {
    /// RFC 3339 (nanoseconds).
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    /// The last [`MAX_LOG`] results, oldest first.
    pub log: Vec<HealthResult>,
}

/// What a result's bookkeeping needs of the container.
pub(crate) struct Judge {
    pub retries: i64,
    pub start_period: Duration,
    /// Seconds from the container's start to the check's start.
    pub since_start: f64,
}

impl Health {
    /// A (re)started container's health: starting, no failures; the log stays.
    pub(crate) fn restart(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }

    /// Account for a result as dockerd does; returns the new status when it changed.
    /// A failure within the start period does not count while the container is starting.
    pub(crate) fn record(&mut self, r: HealthResult, j: &Judge) -> Option<HealthStatus> {
        let old = self.status;
        let ok = r.exit_code == 0;
        if self.log.len() >= MAX_LOG {
            self.log.drain(..self.log.len() + 1 - MAX_LOG);
        }
        self.log.push(r);
        if ok {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else {
            let in_grace = self.status == HealthStatus::Starting
                && j.since_start < j.start_period.as_secs_f64();
            if !in_grace {
                self.failing_streak += 1;
                if self.failing_streak >= j.retries {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        (self.status != old).then_some(self.status)
    }
}

/// A check's output as Docker keeps it: the first [`MAX_OUTPUT`] bytes of stdout and stderr
/// as they came, "..." appended when more came.
#[derive(Debug, Default)]
pub(crate) struct Output {
    buf: Vec<u8>,
    truncated: bool,
}

impl Output {
    pub(crate) fn push(&mut self, b: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(b.len());
        self.buf.extend_from_slice(&b[..keep]);
        if keep < b.len() {
            self.truncated = true;
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Docker's 8-byte-header frames (`[stream, 0, 0, 0, len u32 BE]` + payload) read in pieces:
/// the payloads go to an [`Output`].
#[derive(Debug, Default)]
pub(crate) struct Frames {
    head: [u8; 8],
    have: usize,
    left: usize,
}

impl Frames {
    pub(crate) fn feed(&mut self, mut b: &[u8], out: &mut Output) {
        while !b.is_empty() {
            if self.left > 0 {
                let n = self.left.min(b.len());
                out.push(&b[..n]);
                self.left -= n;
                b = &b[n..];
                continue;
            }
            let n = (8 - self.have).min(b.len());
            self.head[self.have..self.have + n].copy_from_slice(&b[..n]);
            self.have += n;
            b = &b[n..];
            if self.have == 8 {
                let h = self.head;
                self.left = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                self.have = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i64) -> HealthResult {
        HealthResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    fn judge(retries: i64, grace: u64, since: f64) -> Judge {
        Judge {
            retries,
            start_period: Duration::from_secs(grace),
            since_start: since,
        }
    }

    #[test]
    fn streaks_statuses_and_the_log() {
        let mut h = Health::default();
        let j = judge(2, 0, 10.0);
        assert_eq!(h.record(res(1), &j), None);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(h.record(res(1), &j), Some(HealthStatus::Unhealthy));
        assert_eq!(h.record(res(0), &j), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        for _ in 0..4 {
            h.record(res(3), &j);
        }
        assert_eq!(h.log.len(), MAX_LOG);
        assert_eq!(h.log[0].exit_code, 0); // the oldest two went
        assert_eq!(h.status, HealthStatus::Unhealthy);
        h.restart();
        assert_eq!(
            (h.status, h.failing_streak, h.log.len()),
            (HealthStatus::Starting, 0, 5)
        );
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        let mut h = Health::default();
        assert_eq!(h.record(res(1), &judge(1, 60, 1.0)), None);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        assert_eq!(
            h.record(res(1), &judge(1, 60, 61.0)),
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn output_is_cut_as_docker_cuts_it_and_frames_are_undone() {
        let mut o = Output::default();
        let mut f = Frames::default();
        let mut wire = vec![1, 0, 0, 0, 0, 0, 0, 3];
        wire.extend_from_slice(b"ab\n");
        wire.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        wire.extend_from_slice(b"e\n");
        for b in wire.chunks(3) {
            f.feed(b, &mut o);
        }
        assert_eq!(o.text(), "ab\ne\n");
        o.push(&vec![b'x'; MAX_OUTPUT]);
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.ends_with("xx..."));
        let mut exact = Output::default();
        exact.push(&vec![b'y'; MAX_OUTPUT]);
        assert!(!exact.text().ends_with("..."));
    }
}
