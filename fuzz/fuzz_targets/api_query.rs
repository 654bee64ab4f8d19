//! API query strings: percent-decoding, `Query` accessors and the `filters` JSON (both the
//! map-of-lists and the legacy map-of-bools forms), and the since/until time parser.
#![no_main]
use berth_api::query::{parse_filters, percent_decode, Query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let q = Query::parse(Some(&s));
    let _ = q.filters();
    let _ = q.int("limit");
    let _ = (
        q.bool("all"),
        q.bool_or("stream", true),
        q.get_all("t"),
        q.string("name"),
    );
    let _ = parse_filters(&s);
    let _ = percent_decode(&s, true);
    let _ = berth_api::system::parse_unix_time("since", Some(&s));
});
