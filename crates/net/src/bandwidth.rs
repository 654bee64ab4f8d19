//! Bandwidth limits as the CNI bandwidth plugin and Kubernetes take them: rates in **bits per
//! second** written as a Kubernetes quantity (`10M` = 10 000 000, `1Gi` = 2^30, `500k`,
//! `1.5M`, `2e6`), between 1 kbit/s and 1 Pbit/s. A [`Shape`] is one direction's rate and
//! burst; [`Limits`] a container's two directions, seen from the container (`ingress`: into
//! it, `egress`: out of it).

/// The annotation naming the rate into the container (the CNI bandwidth plugin's key).
pub const INGRESS_KEY: &str = "kubernetes.io/ingress-bandwidth";
/// The annotation naming the rate out of the container.
pub const EGRESS_KEY: &str = "kubernetes.io/egress-bandwidth";
/// berth's extension: the burst into the container, in bits (same syntax as a rate).
pub const INGRESS_BURST_KEY: &str = "io.berth.ingress-burst";
/// berth's extension: the burst out of the container, in bits.
pub const EGRESS_BURST_KEY: &str = "io.berth.egress-burst";

/// Every annotation key read here.
pub const KEYS: [&str; 4] = [INGRESS_KEY, EGRESS_KEY, INGRESS_BURST_KEY, EGRESS_BURST_KEY];

const MIN_BITS: u64 = 1_000;
const MAX_BITS: u64 = 1_000_000_000_000_000;

/// A rate or burst that is not a quantity in range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{0:?} is not a quantity (e.g. 10M, 500k, 1Gi)")]
    Syntax(String),
    #[error("{0:?} is unreasonably small (< 1kbit)")]
    TooSmall(String),
    #[error("{0:?} is unreasonably large (> 1Pbit)")]
    TooLarge(String),
}

/// Parse a Kubernetes quantity of bits (per second): digits with an optional fraction and
/// exponent, then an optional SI (`k`, `M`, `G`, `T`, `P`, `E`) or binary (`Ki` ... `Ei`)
/// suffix. Between 1 kbit and 1 Pbit, as the CNI bandwidth plugin checks.
pub fn parse_bits(s: &str) -> Result<u64, QuantityError> {
    let syntax = || QuantityError::Syntax(s.to_string());
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return Err(syntax());
    }
    let (mult, exp10): (f64, i32) = match rest {
        "" => (1.0, 0),
        "k" => (1.0, 3),
        "M" => (1.0, 6),
        "G" => (1.0, 9),
        "T" => (1.0, 12),
        "P" => (1.0, 15),
        "E" => (1.0, 18),
        "Ki" => (1024f64, 0),
        "Mi" => (1024f64.powi(2), 0),
        "Gi" => (1024f64.powi(3), 0),
        "Ti" => (1024f64.powi(4), 0),
        "Pi" => (1024f64.powi(5), 0),
        "Ei" => (1024f64.powi(6), 0),
        e if e.starts_with(['e', 'E']) => {
            let x: i32 = e[1..].parse().map_err(|_| syntax())?;
            if !(-30..=30).contains(&x) {
                return Err(syntax());
            }
            (1.0, x)
        }
        _ => return Err(syntax()),
    };
    let n: f64 = num.parse().map_err(|_| syntax())?;
    let v = n * mult * 10f64.powi(exp10);
    if !v.is_finite() {
        return Err(syntax());
    }
    if v < MIN_BITS as f64 {
        return Err(QuantityError::TooSmall(s.to_string()));
    }
    if v > MAX_BITS as f64 {
        return Err(QuantityError::TooLarge(s.to_string()));
    }
    // In range (<= 1e15 < 2^53): exact enough as an integer.
    Ok(v.round() as u64)
}

/// One direction's shaping: a token bucket of `burst_bytes` filled at `rate_bits` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub rate_bits: u64,
    pub burst_bytes: u32,
}

impl Shape {
    /// A rate with the given burst (bits), or the default burst: what the rate sends in 5 ms,
    /// at least 32 KiB (a few full-size packets and a kernel timer tick at high rates).
    pub fn new(rate_bits: u64, burst_bits: Option<u64>) -> Shape {
        let burst = match burst_bits {
            Some(b) => (b / 8).max(1),
            None => (rate_bits / 8 / 200).max(32 * 1024),
        };
        Shape {
            rate_bits,
            burst_bytes: u32::try_from(burst).unwrap_or(u32::MAX),
        }
    }

    /// Bytes per second.
    pub fn rate_bytes(&self) -> u64 {
        self.rate_bits / 8
    }

    /// The queue's length in bytes: 50 ms at the rate plus the burst (a TCP flow sees drops,
    /// not an endless queue).
    pub fn limit_bytes(&self) -> u32 {
        let l = self.rate_bytes() / 20 + u64::from(self.burst_bytes);
        u32::try_from(l).unwrap_or(u32::MAX)
    }
}

/// A container's limits, seen from the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Into the container (shaped on the host veth's egress).
    pub ingress: Option<Shape>,
    /// Out of the container (shaped on an ifb the host veth's ingress is redirected to).
    pub egress: Option<Shape>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.ingress.is_none() && self.egress.is_none()
    }

    /// The limits named by annotations (`get` returns a key's value); an error names the key.
    /// A burst without its rate is an error; an empty value is no value.
    pub fn from_annotations<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Limits, (&'static str, QuantityError)> {
        let val = |k: &'static str| -> Result<Option<u64>, (&'static str, QuantityError)> {
            match get(k).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => parse_bits(v).map(Some).map_err(|e| (k, e)),
            }
        };
        let dir = |rate_key: &'static str, burst_key: &'static str| {
            let rate = val(rate_key)?;
            let burst = val(burst_key)?;
            match (rate, burst) {
                (Some(r), b) => Ok(Some(Shape::new(r, b))),
                (None, Some(_)) => Err((
                    burst_key,
                    QuantityError::Syntax(format!("a burst needs {rate_key}")),
                )),
                (None, None) => Ok(None),
            }
        };
        Ok(Limits {
            ingress: dir(INGRESS_KEY, INGRESS_BURST_KEY)?,
            egress: dir(EGRESS_KEY, EGRESS_BURST_KEY)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn quantities_as_kubernetes_reads_them() {
        assert_eq!(parse_bits("10M"), Ok(10_000_000));
        assert_eq!(parse_bits("500k"), Ok(500_000));
        assert_eq!(parse_bits("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bits("1Mi"), Ok(1_048_576));
        assert_eq!(parse_bits("1.5M"), Ok(1_500_000));
        assert_eq!(parse_bits("2e6"), Ok(2_000_000));
        assert_eq!(parse_bits("1000"), Ok(1000));
        assert_eq!(parse_bits("1P"), Ok(MAX_BITS));
    }

    #[test]
    fn bad_quantities_are_refused() {
        for s in [
            "", "M", "10m", "10 M", "ten", "1.2.3M", "10MB", "-1M", "10Mbit",
        ] {
            assert!(
                matches!(parse_bits(s), Err(QuantityError::Syntax(_))),
                "{s}"
            );
        }
        assert!(matches!(parse_bits("999"), Err(QuantityError::TooSmall(_))));
        assert!(matches!(parse_bits("2P"), Err(QuantityError::TooLarge(_))));
    }

    #[test]
    fn limits_from_annotations() {
        let m: HashMap<&str, &str> = [(EGRESS_KEY, "10M"), (INGRESS_KEY, "")].into();
        let l = Limits::from_annotations(|k| m.get(k).copied()).unwrap();
        assert_eq!(l.ingress, None);
        let e = l.egress.unwrap();
        assert_eq!(e.rate_bits, 10_000_000);
        assert_eq!(e.burst_bytes, 32 * 1024);
        assert_eq!(e.limit_bytes(), 62_500 + 32 * 1024);

        let m: HashMap<&str, &str> = [(INGRESS_KEY, "1G"), (INGRESS_BURST_KEY, "8M")].into();
        let l = Limits::from_annotations(|k| m.get(k).copied()).unwrap();
        assert_eq!(l.ingress.unwrap().burst_bytes, 1_000_000);

        let m: HashMap<&str, &str> = [(EGRESS_KEY, "fast")].into();
        let (k, _) = Limits::from_annotations(|k| m.get(k).copied()).unwrap_err();
        assert_eq!(k, EGRESS_KEY);
        let m: HashMap<&str, &str> = [(EGRESS_BURST_KEY, "1M")].into();
        let (k, _) = Limits::from_annotations(|k| m.get(k).copied()).unwrap_err();
        assert_eq!(k, EGRESS_BURST_KEY);
    }
}
