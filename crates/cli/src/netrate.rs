//! `--network-rate`: bandwidth limits as the annotations berthd shapes a container's veth
//! from (the CNI bandwidth plugin's keys; rates in bits per second, e.g. `10M`, `1G`, `500k`).
//!
//! `RATE` limits both directions; `ingress=RATE` (into the container), `egress=RATE` (out of
//! it), `ingress-burst=SIZE`, `egress-burst=SIZE` (bits) one each; several comma-separated or
//! repeated. `none` (or `0`) lifts a limit: at `update` it sends an empty value.
use anyhow::{anyhow, Result};
use serde_json::{Map, Value};

const INGRESS: &str = "kubernetes.io/ingress-bandwidth";
const EGRESS: &str = "kubernetes.io/egress-bandwidth";
const INGRESS_BURST: &str = "io.berth.ingress-burst";
const EGRESS_BURST: &str = "io.berth.egress-burst";

/// The annotations the `--network-rate` values set (a lifted limit: an empty value).
pub fn annotations(values: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for v in values {
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (keys, rate): (&[&str], &str) = match item.split_once('=') {
                None => (&[INGRESS, EGRESS], item),
                Some(("ingress", r)) => (&[INGRESS], r),
                Some(("egress", r)) => (&[EGRESS], r),
                Some(("ingress-burst", r)) => (&[INGRESS_BURST], r),
                Some(("egress-burst", r)) => (&[EGRESS_BURST], r),
                Some((d, _)) => {
                    return Err(anyhow!(
                        "invalid argument {item:?} for \"--network-rate\" flag: {d:?} is not ingress, egress, ingress-burst or egress-burst"
                    ))
                }
            };
            if rate.is_empty() {
                return Err(anyhow!(
                    "invalid argument {item:?} for \"--network-rate\" flag: no rate"
                ));
            }
            let rate = if matches!(rate, "none" | "0") {
                ""
            } else {
                rate
            };
            for k in keys {
                out.insert((*k).to_string(), Value::String(rate.to_string()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Result<Map<String, Value>> {
        annotations(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn directions_bursts_and_lifting() {
        let m = a(&["10M"]).unwrap();
        assert_eq!(m[INGRESS], "10M");
        assert_eq!(m[EGRESS], "10M");
        let m = a(&["egress=5M,egress-burst=1M", "ingress=none"]).unwrap();
        assert_eq!(m[EGRESS], "5M");
        assert_eq!(m[EGRESS_BURST], "1M");
        assert_eq!(m[INGRESS], "");
        assert_eq!(m.len(), 3);
        assert!(a(&["up=1M"]).is_err());
        assert!(a(&["egress="]).is_err());
    }
}
