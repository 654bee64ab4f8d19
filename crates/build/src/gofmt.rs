//! What dockerd's Go code prints where a history entry shows a Go value: `HEALTHCHECK`'s
//! `%q` of a `*container.HealthConfig` (`&{["CMD-SHELL" "x"] "5s" "2s" "0s" "0s" '\x00'}`:
//! the strings quoted, each `time.Duration` through its `String`, the retry count as a
//! quoted rune).

use berth_image::model::HealthConfig;

/// The `HEALTHCHECK` history text (after `#(nop)  `), as dockerd's classic builder writes it
/// (API 1.44+ HealthConfig: Test, Interval, Timeout, StartPeriod, StartInterval, Retries).
pub(crate) fn healthcheck_text(hc: &HealthConfig) -> String {
    let test: Vec<String> = hc
        .test
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|s| quote(s))
        .collect();
    let d = |v: Option<i64>| quote(&duration(v.unwrap_or(0)));
    format!(
        "HEALTHCHECK &{{[{}] {} {} {} {} {}}}",
        test.join(" "),
        d(hc.interval),
        d(hc.timeout),
        d(hc.start_period),
        d(hc.start_interval),
        quote_rune(hc.retries.unwrap_or(0)),
    )
}

/// Go's `strconv.Quote` for the characters a command holds.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        out.push_str(&escape(c, '"'));
    }
    out.push('"');
    out
}

fn escape(c: char, quote: char) -> String {
    match c {
        '\u{7}' => "\\a".into(),
        '\u{8}' => "\\b".into(),
        '\u{c}' => "\\f".into(),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\u{b}' => "\\v".into(),
        '\\' => "\\\\".into(),
        c if c == quote => format!("\\{c}"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02x}", c as u32),
        c if c.is_control() => format!("\\u{:04x}", c as u32),
        c => c.to_string(),
    }
}

/// Go's `%q` of an integer: a quoted rune.
fn quote_rune(n: i64) -> String {
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some(c) => format!("'{}'", escape(c, '\'')),
        None => "'\u{fffd}'".into(),
    }
}

/// Go's `time.Duration.String`.
pub(crate) fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut s = if u < 1_000_000_000 {
        let (unit, scale) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        format!("{}{unit}", fraction(u, scale))
    } else {
        let secs = u / 1_000_000_000;
        let (h, m) = (secs / 3600, (secs / 60) % 60);
        let sec = fraction(u % 60_000_000_000, 1_000_000_000);
        match (h, m) {
            (0, 0) => format!("{sec}s"),
            (0, m) => format!("{m}m{sec}s"),
            (h, m) => format!("{h}h{m}m{sec}s"),
        }
    };
    if neg {
        s.insert(0, '-');
    }
    s
}

/// `v / scale` with its fraction, trailing zeros dropped (`1.5`, `2`).
fn fraction(v: u64, scale: u64) -> String {
    let (int, frac) = (v / scale, v % scale);
    if frac == 0 {
        return int.to_string();
    }
    let width = scale.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(duration(5_000_000_000), "5s");
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(1_500_000), "1.5ms");
        assert_eq!(duration(0), "0s");
        assert_eq!(quote_rune(0), "'\\x00'");
        assert_eq!(quote_rune(3), "'\\x03'");
        assert_eq!(quote_rune(10), "'\\n'");
        assert_eq!(quote_rune(65), "'A'");
        let hc = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "test -f \"/a\"".into()]),
            interval: Some(5_000_000_000),
            timeout: Some(2_000_000_000),
            ..Default::default()
        };
        assert_eq!(
            healthcheck_text(&hc),
            r#"HEALTHCHECK &{["CMD-SHELL" "test -f \"/a\""] "5s" "2s" "0s" "0s" '\x00'}"#
        );
    }
}
