//! A registry's `WWW-Authenticate` header (the registry client's challenge parser).
#![no_main]
use berth_image::fuzzing::{www_authenticate, Challenge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Challenge::Bearer { realm, service }) = www_authenticate(h) {
        // realm and service are substrings of the header
        assert!(h.contains(realm.as_str()));
        if let Some(s) = service {
            assert!(h.contains(s.as_str()));
        }
    }
});
