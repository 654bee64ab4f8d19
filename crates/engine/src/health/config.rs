//! Docker's `Config.Healthcheck` (swagger `HealthConfig`): typed, checked as dockerd checks it,
//! merged with the image's, and what it means for a check (command, durations with
//! Docker's defaults).
use crate::model::{docker_object, Field};
use crate::{Error, Result};
use std::time::Duration;

docker_object! {
    /// A container's (or image's) healthcheck. Durations are nanoseconds; 0 (or absent, or
    /// `null`, as docker-py sends) means Docker's default.
    pub(crate) struct HealthConfig {
        /// `["NONE"]`, `["CMD", arg...]` or `["CMD-SHELL", "command"]`; empty = inherit.
        "Test" test: Vec<String>,
        "Interval" interval: i64,
        "Timeout" timeout: i64,
        "StartPeriod" start_period: i64,
        "StartInterval" start_interval: i64,
        "Retries" retries: i64,
    }
}

/// Docker's defaults (daemon/health.go).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_RETRIES: i64 = 3;
/// The shortest duration Docker accepts (`container.MinimumDuration`).
const MINIMUM_NS: i64 = 1_000_000;

/// What a check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `CMD`: the arguments as they are.
    Cmd(Vec<String>),
    /// `CMD-SHELL`: the arguments after the container's shell (Config.Shell, or `/bin/sh -c`).
    Shell(Vec<String>),
}

impl HealthConfig {
    /// dockerd's `validateHealthCheck`: a 400 naming the field.
    pub(crate) fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("Interval", self.interval.val()),
            ("Timeout", self.timeout.val()),
            ("StartPeriod", self.start_period.val()),
            ("StartInterval", self.start_interval.val()),
        ] {
            if v != 0 && v < MINIMUM_NS {
                return Err(Error::BadParameter(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if self.retries.val() < 0 {
            return Err(Error::BadParameter(
                "Retries in Healthcheck cannot be negative".into(),
            ));
        }
        Ok(())
    }

    /// The check to run: `None` for `NONE`, no test, or a type Docker does not know (it
    /// warns and runs nothing).
    pub(crate) fn probe(&self) -> Option<Probe> {
        let t = self.test.items();
        match t.first().map(String::as_str) {
            Some("CMD") => Some(Probe::Cmd(t[1..].to_vec())),
            Some("CMD-SHELL") => Some(Probe::Shell(t[1..].to_vec())),
            Some("NONE") | None => None,
            Some(other) => {
                tracing::warn!("unknown healthcheck type '{other}' (expected 'CMD'): no check");
                None
            }
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        or_default(self.interval.val(), DEFAULT_INTERVAL)
    }
    pub(crate) fn timeout(&self) -> Duration {
        or_default(self.timeout.val(), DEFAULT_TIMEOUT)
    }
    pub(crate) fn start_period(&self) -> Duration {
        or_default(self.start_period.val(), Duration::ZERO)
    }
    pub(crate) fn start_interval(&self) -> Duration {
        or_default(self.start_interval.val(), DEFAULT_START_INTERVAL)
    }
    pub(crate) fn retries(&self) -> i64 {
        match self.retries.val() {
            r if r <= 0 => DEFAULT_RETRIES,
            r => r,
        }
    }

    /// dockerd's merge with the image's healthcheck: the image's as a whole when the
    /// container has none; else each field the container left empty (or 0) from the image.
    pub(crate) fn merge(
        c: &mut Field<HealthConfig>,
        image: Option<&berth_image::model::HealthConfig>,
    ) {
        let Some(ih) = image else { return };
        let Field::Set(h) = c else {
            *c = Field::Set(HealthConfig::from_image(ih));
            return;
        };
        if h.test.items().is_empty() {
            if let Some(t) = &ih.test {
                h.test = Field::Set(t.clone());
            }
        }
        for (f, v) in [
            (&mut h.interval, ih.interval),
            (&mut h.timeout, ih.timeout),
            (&mut h.start_period, ih.start_period),
            (&mut h.start_interval, ih.start_interval),
            (&mut h.retries, ih.retries),
        ] {
            if let (0, Some(v)) = (f.val(), v) {
                *f = Field::Set(v);
            }
        }
    }

    fn from_image(ih: &berth_image::model::HealthConfig) -> HealthConfig {
        let set = |v: Option<i64>| v.map_or(Field::Absent, Field::Set);
        HealthConfig {
            test: ih.test.clone().map_or(Field::Absent, Field::Set),
            interval: set(ih.interval),
            timeout: set(ih.timeout),
            start_period: set(ih.start_period),
            start_interval: set(ih.start_interval),
            retries: set(ih.retries),
            extra: Default::default(),
        }
    }
}

fn or_default(ns: i64, d: Duration) -> Duration {
    if ns <= 0 {
        d
    } else {
        Duration::from_nanos(ns as u64)
    }
}

impl Probe {
    /// The exec's command: `shell` is the container's Config.Shell (empty: `/bin/sh -c`).
    pub(crate) fn command(&self, shell: &[String]) -> Vec<String> {
        match self {
            Probe::Cmd(a) => a.clone(),
            Probe::Shell(a) => {
                let mut c: Vec<String> = if shell.is_empty() {
                    vec!["/bin/sh".into(), "-c".into()]
                } else {
                    shell.to_vec()
                };
                c.extend(a.iter().cloned());
                c
            }
        }
    }
}

/// A duration as Go's `time.Duration.String()` writes it ("30s", "1m0s", "500ms", "1.5s"):
/// Docker's messages show them so.
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (div, unit) = match ns {
            n if n < 1_000 => (1, "ns"),
            n if n < 1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{unit}", fraction(ns, div));
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s = format!("{}s", fraction(ns % 60_000_000_000, 1_000_000_000));
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// `v / div` with its decimals, trailing zeros dropped.
fn fraction(v: u128, div: u128) -> String {
    let (i, f) = (v / div, v % div);
    if f == 0 {
        return i.to_string();
    }
    let width = div.ilog10() as usize;
    let frac = format!("{f:0width$}");
    format!("{i}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode;
    use serde_json::json;

    #[test]
    fn docker_py_nulls_and_absent_fields_are_defaults() {
        let h: HealthConfig = decode(
            "Healthcheck",
            &json!({"Test": ["CMD-SHELL", "true"], "Interval": null, "Timeout": null,
                "Retries": null, "StartPeriod": null}),
        )
        .unwrap();
        assert_eq!(h.interval(), DEFAULT_INTERVAL);
        assert_eq!(h.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(h.start_interval(), DEFAULT_START_INTERVAL);
        assert_eq!(h.start_period(), Duration::ZERO);
        assert_eq!(h.retries(), 3);
        assert_eq!(h.probe(), Some(Probe::Shell(vec!["true".into()])));
        // As it came, for inspect.
        assert_eq!(serde_json::to_value(&h).unwrap()["Interval"], json!(null));
        assert!(serde_json::to_value(&h)
            .unwrap()
            .get("StartInterval")
            .is_none());
    }

    #[test]
    fn wrong_types_and_values_name_the_field() {
        let e = decode::<crate::model::Config>("", &json!({"Healthcheck": {"Interval": "1s"}}))
            .unwrap_err();
        assert!(e.to_string().contains("Healthcheck.Interval"), "{e}");
        let e = decode::<crate::model::Config>("", &json!({"Healthcheck": {"Test": "true"}}))
            .unwrap_err();
        assert!(e.to_string().contains("Healthcheck.Test"), "{e}");
        let h: HealthConfig = decode("", &json!({"Interval": 1000})).unwrap();
        let e = h.validate().unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert_eq!(
            e.to_string(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        let h: HealthConfig = decode("", &json!({"Retries": -1})).unwrap();
        assert!(h.validate().is_err());
    }

    #[test]
    fn merge_takes_what_the_container_left_empty() {
        let ih = berth_image::model::HealthConfig {
            test: Some(vec!["CMD".into(), "a".into()]),
            interval: Some(5_000_000_000),
            retries: Some(7),
            ..Default::default()
        };
        let mut none = Field::Absent;
        HealthConfig::merge(&mut none, Some(&ih));
        assert_eq!(
            none.get().unwrap().probe(),
            Some(Probe::Cmd(vec!["a".into()]))
        );
        let mut c = Field::Set(
            decode(
                "",
                &json!({"Test": ["CMD-SHELL", "b"], "Interval": 2000000000}),
            )
            .unwrap(),
        );
        HealthConfig::merge(&mut c, Some(&ih));
        let h = c.get().unwrap();
        assert_eq!(h.probe(), Some(Probe::Shell(vec!["b".into()])));
        assert_eq!(h.interval(), Duration::from_secs(2));
        assert_eq!(h.retries(), 7);
        let mut off = Field::Set(decode("", &json!({"Test": ["NONE"]})).unwrap());
        HealthConfig::merge(&mut off, Some(&ih));
        assert_eq!(off.get().unwrap().probe(), None);
        let mut c = Field::Null;
        HealthConfig::merge(&mut c, None);
        assert!(c.is_none());
    }

    #[test]
    fn shell_and_go_durations() {
        let p = Probe::Shell(vec!["test -f /ok".into()]);
        assert_eq!(p.command(&[]), ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(
            p.command(&["/bin/ash".into(), "-ec".into()])[..2],
            ["/bin/ash", "-ec"]
        );
        for (ns, s) in [
            (0, "0s"),
            (1_000_000_000, "1s"),
            (30_000_000_000, "30s"),
            (1_500_000_000, "1.5s"),
            (500_000_000, "500ms"),
            (60_000_000_000, "1m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (1_500, "1.5µs"),
        ] {
            assert_eq!(go_duration(Duration::from_nanos(ns)), s);
        }
    }
}
