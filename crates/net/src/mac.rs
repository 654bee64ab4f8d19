//! MAC addresses of container interfaces.
//!
//! Docker derives a container's MAC address from its IPv4 address: `02:42` (a locally
//! administered, unicast prefix) followed by the four address bytes, so `172.17.0.2` gets
//! `02:42:ac:11:00:02`. The same IP always gets the same MAC, and no two containers on a network
//! share one.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A 48-bit MAC address; displays as `02:42:ac:11:00:02`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

/// Why a MAC address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MAC address {text:?}: expected six hex bytes separated by ':' (02:42:ac:11:00:02)"
)]
pub struct MacParseError {
    /// The text given.
    pub text: String,
}

/// The MAC address Docker gives the container holding `ip`: `02:42` and the address bytes.
pub fn mac_for(ip: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = ip.octets();
    MacAddr([0x02, 0x42, a, b, c, d])
}

impl MacAddr {
    /// The six bytes.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True if the locally administered bit is set (Docker's `02:42:...` addresses are).
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// True for a multicast address (never valid for an interface).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> [u8; 6] {
        mac.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Parses `aa:bb:cc:dd:ee:ff` (either case; `-` also accepted as separator).
    fn from_str(text: &str) -> Result<MacAddr, MacParseError> {
        let err = || MacParseError {
            text: text.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = text.split([':', '-']);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mac_from_ipv4() {
        let mac = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac.octets(), [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(<[u8; 6]>::from(mac), [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        assert!(mac.is_local());
        assert!(!mac.is_multicast());
        assert_eq!(
            mac_for(Ipv4Addr::new(192, 168, 255, 254)).to_string(),
            "02:42:c0:a8:ff:fe"
        );
        assert_ne!(
            mac_for(Ipv4Addr::new(10, 0, 0, 2)),
            mac_for(Ipv4Addr::new(10, 0, 0, 3))
        );
    }

    #[test]
    fn parse_round_trip_and_errors() {
        let mac: MacAddr = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(mac, mac_for(Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!("02-42-ac-11-00-02".parse::<MacAddr>().unwrap(), mac);
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "02:42:ac:11:00:2",
            "02:42:ac:11:00:0g",
            "0242ac110002",
            "02:42:ac:11:00:+2",
        ] {
            let e = bad.parse::<MacAddr>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
