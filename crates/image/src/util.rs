//! Small helpers: RFC 3339 timestamps without a date crate.

/// Seconds since the epoch -> `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil from days (Howard Hinnant's algorithm)
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

pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Parse the date/time part of an RFC 3339 string to Unix seconds (best effort; 0 if invalid).
pub fn parse_rfc3339(s: &str) -> i64 {
    let b = s.as_bytes();
    if b.len() < 19 {
        return 0;
    }
    let num = |a: usize, z: usize| s.get(a..z).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (
        num(0, 4),
        num(5, 7),
        num(8, 10),
        num(11, 13),
        num(14, 16),
        num(17, 19),
    ) else {
        return 0;
    };
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // timezone offset
    let mut off = 0;
    if let Some(pos) = s[19..].find(['+', '-']).map(|p| p + 19) {
        if let (Some(oh), Some(om)) = (num(pos + 1, pos + 3), num(pos + 4, pos + 6)) {
            off = (oh * 3600 + om * 60) * if b[pos] == b'+' { 1 } else { -1 };
        }
    }
    days * 86400 + h * 3600 + mi * 60 + se - off
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_roundtrip() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000, 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            super::parse_rfc3339("2023-11-14T22:13:20.5Z"),
            1_700_000_000
        );
        assert_eq!(
            super::parse_rfc3339("2023-11-14T23:13:20+01:00"),
            1_700_000_000
        );
    }
}
