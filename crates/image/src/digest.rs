//! `sha256:<hex>` digests.
use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// A validated sha256 content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = |reason: &str| Error::InvalidDigest {
            digest: s.to_string(),
            reason: reason.into(),
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("missing algorithm prefix"))?;
        if alg != "sha256" {
            return Err(bad("unsupported digest algorithm (only sha256)"));
        }
        Self::from_hex(hex).map_err(|_| bad("expected 64 lowercase hex characters"))
    }
    pub fn from_hex(hex: &str) -> Result<Digest> {
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::InvalidDigest {
                digest: hex.to_string(),
                reason: "expected 64 lowercase hex characters".into(),
            });
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
    pub fn of(data: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }
    pub fn hex(&self) -> &str {
        &self.hex
    }
    /// First 12 hex chars, as docker shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}
impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}
impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer/reader adaptor that hashes everything passing through it.
pub struct HashingReader<R> {
    pub inner: R,
    pub hasher: Sha256,
    pub count: u64,
}
impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.count)
    }
}
impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The chain ID of a layer stack (OCI image spec): ChainID(L0) = DiffID(L0),
/// ChainID(L0|..|Ln) = sha256(ChainID(L0|..|Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_digest() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        .is_err());
        assert!(
            Digest::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_err()
        );
    }
}
