//! RFC 3339 timestamps in UTC (`Z`), from Unix seconds and nanoseconds, without a date crate.

use std::fmt::Write;

/// How the fraction of a second is printed.
#[derive(Clone, Copy)]
enum Frac {
    /// None at all.
    None,
    /// Go's `time.RFC3339Nano`: trailing zeros dropped, no dot for a whole second.
    Trimmed,
    /// Always nine digits.
    Fixed,
}

fn format(secs: i64, nanos: u32, frac: Frac) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(32);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    match frac {
        Frac::None => {}
        Frac::Fixed => {
            let _ = write!(s, ".{nanos:09}");
        }
        Frac::Trimmed if nanos > 0 => {
            let (mut n, mut width) = (nanos, 9usize);
            while n % 10 == 0 {
                n /= 10;
                width = width.saturating_sub(1);
            }
            let _ = write!(s, ".{n:0width$}");
        }
        Frac::Trimmed => {}
    }
    s.push('Z');
    s
}

/// The civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of an RFC 3339 time (`2026-11-24T20:33:00.027717241Z`, `...+02:00`; a space
/// instead of the `T` is accepted). The zone is required; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac = 0f64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = format!("0.{}", s.get(start..i)?).parse().ok()?;
    }
    let off = match b.get(i) {
        Some(b'Z') | Some(b'z') => 0,
        Some(c @ (b'+' | b'-')) => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            (oh * 3600 + om * 60) * if *c == b'+' { 1 } else { -1 }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86400 + h * 3600 + mi * 60 + se - off) as f64 + frac)
}

/// `2023-11-14T22:13:20Z`: seconds precision.
pub fn rfc3339(secs: i64) -> String {
    format(secs, 0, Frac::None)
}

/// `2023-11-14T22:13:20.12Z`, as Go's `time.RFC3339Nano` prints it: the fraction without its
/// trailing zeros, none for a whole second (`2023-11-14T22:13:20Z`). What runc and Docker print
/// for container times.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    format(secs, nanos, Frac::Trimmed)
}

/// `2023-11-14T22:13:20.120000000Z`: always nine digits of fraction (image store records).
pub fn rfc3339_nano_fixed(secs: i64, nanos: u32) -> String {
    format(secs, nanos, Frac::Fixed)
}

/// Now as (Unix seconds, nanoseconds); the epoch for a clock set before it.
pub fn unix_now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// [`rfc3339_nano`] of now.
pub fn rfc3339_nano_now() -> String {
    let (s, n) = unix_now();
    rfc3339_nano(s, n)
}

/// [`rfc3339_nano_fixed`] of now.
pub fn rfc3339_nano_fixed_now() -> String {
    let (s, n) = unix_now();
    rfc3339_nano_fixed(s, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats_and_zones() {
        for secs in [-86_400 * 365 * 300, -1, 0, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs as f64));
            let days = secs.div_euclid(86400);
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000.5)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000.0)
        );
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20Z"), Some(1_700_000_000.0));
        for bad in [
            "",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:2xZ",
            "2023-11-14T22:13:20+1",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    /// berth-runtime's `state::rfc3339` before this crate, verbatim (the oracle).
    fn runtime_old(secs: i64, nanos: u32) -> String {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if m <= 2 { y + 1 } else { y };
        let mut frac = String::new();
        if nanos > 0 {
            frac = format!(".{nanos:09}");
            while frac.ends_with('0') {
                frac.pop();
            }
        }
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }

    /// berth-image's `util::rfc3339` before this crate, verbatim (the oracle).
    fn image_old(secs: i64, nanos: u32) -> String {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if m <= 2 { y + 1 } else { y };
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }

    /// berth-cli's `units::civil_from_days` and `format_rfc3339` before this crate, verbatim.
    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719468;
        let era = if z >= 0 { z } else { z - 146096 } / 146097;
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (if m <= 2 { y + 1 } else { y }, m, d)
    }
    fn cli_old(secs: i64) -> String {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    fn check(secs: i64, nanos: u32) {
        assert_eq!(
            rfc3339_nano(secs, nanos),
            runtime_old(secs, nanos),
            "{secs} {nanos}"
        );
        assert_eq!(
            rfc3339_nano_fixed(secs, nanos),
            image_old(secs, nanos),
            "{secs} {nanos}"
        );
        assert_eq!(rfc3339(secs), cli_old(secs), "{secs}");
    }

    #[test]
    fn known_values() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000, 120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400, 1),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339_nano(1_700_000_000, 999_999_999),
            "2023-11-14T22:13:20.999999999Z"
        );
        assert_eq!(rfc3339_nano_fixed(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano_fixed(1_700_000_000, 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(rfc3339(86400 * 365), "1971-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn byte_identical_to_the_old_formatters() {
        let secs = [
            0,
            1,
            -1,
            59,
            60,
            86_399,
            86_400,
            951_782_400,   // 2000-02-29
            4_107_542_400, // 2100-03-01 (2100 is no leap year)
            1_700_000_000,
            253_402_300_799, // 9999-12-31T23:59:59
            253_402_300_800, // year 10000
            -62_135_596_800, // 0001-01-01
            -62_167_219_200, // 0000-01-01
            -62_198_755_200, // year -1
            -1_000_000_000_000,
            1_000_000_000_000,
        ];
        let nanos = [
            0,
            1,
            10,
            100_000_000,
            120_000_000,
            123_456_789,
            999_999_999,
            500_000_000,
            // out of range inputs print as they always did
            1_000_000_000,
            1_500_000_000,
            u32::MAX,
        ];
        for &s in &secs {
            for &n in &nanos {
                check(s, n);
            }
        }
        // and a pseudo-random sweep over ±300000 years and all nanos
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = (x as i64) % 10_000_000_000_000;
            let n = match i % 4 {
                0 => 0,
                1 => (x >> 32) as u32 % 1_000_000_000,
                2 => ((x >> 40) as u32 % 1000) * 1_000_000,
                _ => (x >> 32) as u32,
            };
            check(s, n);
        }
    }

    #[test]
    fn now_is_now() {
        let (s, _) = unix_now();
        assert!(s > 1_700_000_000);
        let a = rfc3339_nano_now();
        assert!(a.ends_with('Z') && a.len() >= 20 && a.len() <= 30, "{a}");
        let b = rfc3339_nano_fixed_now();
        assert!(b.ends_with('Z') && b.len() == 30, "{b}");
    }
}
