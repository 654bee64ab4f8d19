//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`): private parsers,
//! reached without duplicating them.

/// A `WWW-Authenticate` challenge as the registry client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parse a registry's `WWW-Authenticate` header value (None: no challenge berth answers).
pub fn www_authenticate(header: &str) -> Option<Challenge> {
    crate::registry::parse_challenge(header).map(|c| match c {
        crate::registry::Challenge::Basic => Challenge::Basic,
        crate::registry::Challenge::Bearer { realm, service } => {
            Challenge::Bearer { realm, service }
        }
    })
}
