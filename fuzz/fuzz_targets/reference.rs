//! Image references (`Reference::parse_normalized` and friends) and digests. A parsed
//! reference prints to a string that parses back to the same reference.
#![no_main]
use berth_image::{Digest, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse_normalized(s) {
        let full = r.to_string();
        let again = Reference::parse_normalized(&full)
            .unwrap_or_else(|e| panic!("{s:?} -> {full:?} does not parse again: {e}"));
        assert_eq!(again.to_string(), full, "round trip of {s:?}");
        let fam = r.familiar_string();
        // As Docker's FamiliarString, the familiar form of a Docker Hub repository whose first
        // component looks like a host (`docker.io/a.b/c` -> `a.b/c`) reads as that host, or
        // as no valid reference when the component is no valid host (`a_b.c`): see the image
        // crate's test familiar_form_of_a_dotted_hub_namespace_is_dockers.
        let first = fam.split('/').next().unwrap_or("");
        let hub_looks_like_host = r.domain() == "docker.io"
            && fam.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        // Docker refuses a bare 64-hex name (it reads as an image ID), which is what the
        // familiar form of `docker.io/<64 hex>` is.
        let hex_id = fam.len() == 64 && fam.bytes().all(|b| b.is_ascii_hexdigit());
        if !hub_looks_like_host && !hex_id {
            let back = Reference::parse_normalized(&fam)
                .unwrap_or_else(|e| panic!("{s:?} -> familiar {fam:?} does not parse: {e}"));
            assert_eq!(back.to_string(), full, "familiar round trip of {s:?}");
        }
        let _ = (r.registry_host(), r.familiar_name(), r.name());
        let _ = r.clone().with_default_tag().without_tag_or_digest();
        let _ = r.with_tag("latest");
    }
    let _ = Reference::parse_with_default_tag(s);
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
    }
});
