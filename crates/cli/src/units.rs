//! Sizes and durations formatted the way docker's go-units does, and time parsing.

use std::time::{SystemTime, UNIX_EPOCH};

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Go's `%.{prec}g` for values in [0, 1000) plus trimming like Go does.
fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    // Rounding may carry to an extra digit (999.96 -> 1000.0); recompute.
    let int_digits = s
        .split('.')
        .next()
        .map(|x| x.trim_start_matches('-').len())
        .unwrap_or(0);
    if int_digits > prec {
        // Go switches to exponent form here; mimic the visible result for sizes.
        let e = int_digits - 1;
        let mant = v / 10f64.powi(e as i32);
        let mut m = format!("{mant:.0$}", prec.saturating_sub(1));
        if m.contains('.') {
            m = m.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        return format!("{m}e+{e:02}");
    }
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s
}

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units HumanSizeWithPrecision: decimal units, `prec` significant digits.
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let (s, u) = size_and_unit(size, 1000.0, &DECIMAL);
    format!("{}{}", fmt_g(s, prec), u)
}

/// go-units HumanSize (4 significant digits).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units BytesSize: binary units, `%.4g`.
pub fn bytes_size(size: f64) -> String {
    let (s, u) = size_and_unit(size, 1024.0, &BINARY);
    format!("{}{}", fmt_g(s, 4), u)
}

/// go-units HumanDuration.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0 / 24.0 / 365.0) as i64)
}

/// Parses docker's RAMInBytes syntax: `512`, `512k`, `64m`, `1.5g`, `2GB`, `1gib`.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let err = || format!("invalid size: '{s}'");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(err());
    }
    let n: f64 = num.parse().map_err(|_| err())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mul: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(err()),
    };
    Ok((n * mul) as i64)
}

use berth_fsutil::civil_from_days;

/// Parses RFC 3339 (`2026-11-24T20:33:00.027717241Z`, `...+02:00`) to unix seconds; a time
/// without a zone is taken as UTC.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    berth_fsutil::parse_rfc3339(s).or_else(|| {
        let zoneless = s.get(19..).is_some_and(|r| !r.contains(['Z', 'z', '+', '-']));
        zoneless.then(|| berth_fsutil::parse_rfc3339(&format!("{s}Z"))).flatten()
    })
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats unix seconds like Go's `time.Time.String()` in UTC: `2026-11-24 20:33:00 +0000 UTC`.
pub fn format_go_time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 3339 in UTC with seconds precision.
pub fn format_rfc3339(secs: i64) -> String {
    berth_fsutil::rfc3339(secs)
}

/// Converts a user's `--since`/`--until` value (RFC 3339, unix timestamp, or a Go
/// duration like `10m`, `1h30m`, `45s` meaning "ago") to a unix timestamp string.
pub fn parse_timestamp_arg(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Ok(String::new());
    }
    if v.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(v.to_string());
    }
    if let Some(t) = parse_rfc3339(v) {
        return Ok(format!("{}", t as i64));
    }
    if v.len() == 10 {
        if let Some(t) = parse_rfc3339(&format!("{v}T00:00:00Z")) {
            return Ok(format!("{}", t as i64));
        }
    }
    let d = parse_go_duration(v).ok_or_else(|| format!("invalid value for time: {v:?} (use RFC 3339, a unix timestamp, or a duration like 10m)"))?;
    Ok(format!("{}", (now() - d) as i64))
}

/// Parses Go duration strings: `1h30m`, `10s`, `250ms`, `2.5h`.
pub fn parse_go_duration(v: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = v;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if end == 0 {
            return None;
        }
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let uend = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mul = match &rest[..uend] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mul;
        rest = &rest[uend..];
    }
    Some(total)
}

/// Go's `time.ANSIC` layout in UTC: `Thu May  7 21:09:36 2026`.
pub fn format_ansic(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {y}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
