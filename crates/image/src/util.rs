//! Small helpers: RFC 3339 parsing without a date crate (formatting: berth-fsutil).

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
        let t = berth_fsutil::rfc3339_nano_fixed(1_700_000_000, 5);
        assert_eq!(super::parse_rfc3339(&t), 1_700_000_000);
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
