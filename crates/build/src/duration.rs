//! Go's `time.ParseDuration` (the `HEALTHCHECK` option format): a sequence of decimal
//! numbers, each with an optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`),
//! optionally signed, e.g. `30s`, `1m30s`, `1.5h`, `0`.

/// The duration in nanoseconds (negative when signed so), or why it is not one.
pub(crate) fn parse_go_duration(text: &str) -> Result<i128, &'static str> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("invalid duration");
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                f.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("invalid duration");
        }
        let unit_end = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale: i128 = match unit {
            "" => return Err("missing unit in duration"),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err("unknown unit in duration"),
        };
        total += component(int_part, frac_part, scale)?;
        if total > i64::MAX as i128 {
            return Err("invalid duration");
        }
        rest = after;
    }
    Ok(if negative { -total } else { total })
}

fn component(int_part: &str, frac_part: &str, scale: i128) -> Result<i128, &'static str> {
    let mut value: i128 = 0;
    for d in int_part.bytes() {
        value = value * 10 + i128::from(d - b'0');
        if value > i64::MAX as i128 {
            return Err("invalid duration");
        }
    }
    let mut nanos = value * scale;
    let mut divisor: i128 = 1;
    let mut frac: i128 = 0;
    for d in frac_part.bytes().take(18) {
        frac = frac * 10 + i128::from(d - b'0');
        divisor *= 10;
    }
    nanos += frac * scale / divisor;
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as p;

    #[test]
    fn go_durations() {
        assert_eq!(p("30s"), Ok(30_000_000_000));
        assert_eq!(p("1m30s"), Ok(90_000_000_000));
        assert_eq!(p("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(p("300ms"), Ok(300_000_000));
        assert_eq!(p("2us"), Ok(2_000));
        assert_eq!(p("2µs"), Ok(2_000));
        assert_eq!(p(".5s"), Ok(500_000_000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("-1s"), Ok(-1_000_000_000));
        assert_eq!(p("10"), Err("missing unit in duration"));
        assert_eq!(p("10x"), Err("unknown unit in duration"));
        assert_eq!(p(""), Err("invalid duration"));
        assert_eq!(p("."), Err("invalid duration"));
        assert_eq!(p("s"), Err("invalid duration"));
        assert_eq!(p("99999999999999999999h"), Err("invalid duration"));
        assert_eq!(p("3000000h"), Err("invalid duration"));
    }
}
