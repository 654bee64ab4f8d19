#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test (or its helpers) is a failed test
use berth_cli::units::*;

#[test]
fn human_size_like_go_units() {
    assert_eq!(human_size(0.0), "0B");
    assert_eq!(human_size(999.0), "999B");
    assert_eq!(human_size(1000.0), "1kB");
    assert_eq!(human_size(5_200_000.0), "5.2MB");
    assert_eq!(human_size(1_984_000.0), "1.984MB");
    assert_eq!(human_size_prec(1_984_000.0, 3), "1.98MB");
    assert_eq!(human_size_prec(3_000_512.0, 3), "3MB");
    assert_eq!(human_size_prec(123_456_789.0, 3), "123MB");
    assert_eq!(human_size(2_500_000_000.0), "2.5GB");
    assert_eq!(bytes_size(67_108_864.0), "64MiB");
    assert_eq!(bytes_size(1536.0), "1.5KiB");
}

#[test]
fn human_duration_like_go_units() {
    assert_eq!(human_duration(0.4), "Less than a second");
    assert_eq!(human_duration(1.0), "1 second");
    assert_eq!(human_duration(3.0), "3 seconds");
    assert_eq!(human_duration(59.0), "59 seconds");
    assert_eq!(human_duration(60.0), "About a minute");
    assert_eq!(human_duration(120.0), "2 minutes");
    assert_eq!(human_duration(3599.0), "59 minutes");
    assert_eq!(human_duration(3600.0), "About an hour");
    assert_eq!(human_duration(2.0 * 3600.0), "2 hours");
    assert_eq!(human_duration(47.0 * 3600.0), "47 hours");
    assert_eq!(human_duration(3.0 * 86400.0), "3 days");
    assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
    assert_eq!(human_duration(90.0 * 86400.0), "3 months");
    assert_eq!(human_duration(3.0 * 365.0 * 86400.0), "3 years");
}

#[test]
fn ram_in_bytes_parses_docker_sizes() {
    assert_eq!(ram_in_bytes("512"), Ok(512));
    assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
    assert_eq!(ram_in_bytes("64MB"), Ok(64 << 20));
    assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
    assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
    assert_eq!(ram_in_bytes("2GiB"), Ok(2 << 30));
    assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".to_string()));
    assert!(ram_in_bytes("12x").is_err());
    assert!(ram_in_bytes("").is_err());
}

#[test]
fn rfc3339_and_go_time() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
    let t = parse_rfc3339("2026-11-24T20:33:00.5Z").unwrap();
    assert_eq!(format_go_time(t as i64), "2026-11-24 20:33:00 +0000 UTC");
    assert_eq!(
        parse_rfc3339("2026-11-24T22:33:00+02:00").unwrap() as i64,
        t as i64
    );
    assert_eq!(format_rfc3339(86400 * 365), "1971-01-01T00:00:00Z");
    assert!(parse_rfc3339("yesterday").is_none());
    let b = parse_rfc3339("2026-05-07T21:09:36.000000000+00:00").unwrap() as i64;
    assert_eq!(format_ansic(b), "Thu May  7 21:09:36 2026");
    assert_eq!(format_ansic(0), "Thu Jan  1 00:00:00 1970");
}

#[test]
fn go_durations_and_since_args() {
    assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
    assert_eq!(parse_go_duration("250ms"), Some(0.25));
    assert_eq!(parse_go_duration("10"), None);
    assert_eq!(parse_go_duration("5x"), None);
    assert_eq!(parse_timestamp_arg("1700000000").unwrap(), "1700000000");
    assert_eq!(
        parse_timestamp_arg("1970-01-02T00:00:00Z").unwrap(),
        "86400"
    );
    let ago: i64 = parse_timestamp_arg("10m").unwrap().parse().unwrap();
    assert!((now() as i64 - 600 - ago).abs() <= 2);
    assert!(parse_timestamp_arg("soon").is_err());
}
