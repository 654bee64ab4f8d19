//! Docker image references, parsed and normalised as docker/distribution's
//! `reference.ParseNormalizedNamed` does:
//! `busybox` -> `docker.io/library/busybox`, `host:port/ns/name:tag@sha256:...`.
use crate::digest::Digest;
use crate::error::{Error, Result};
use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalised reference: domain, path, optional tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn err(reference: &str, reason: &str) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
}

/// domain := host [":" port], host := domain-name | "[" ipv6 "]"
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty()
            || !ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        let after = &rest[end + 1..];
        if after.is_empty() {
            return true;
        }
        match after.strip_prefix(':') {
            Some(p) => return !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty() && host.split('.').all(valid_domain_component)
}

/// tag := [\w][\w.-]{0,127}
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Split a name into (domain, remainder) the way docker does.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

impl Reference {
    /// Parse a user-supplied reference and normalise it (no default tag added).
    pub fn parse_normalized(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(err(s, "repository name must have at least one component"));
        }
        if is_hex64(s) {
            return Err(err(
                s,
                "invalid repository name, cannot specify 64-byte hexadecimal strings",
            ));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let (alg, hex) = d.split_once(':').ok_or_else(|| err(s, "invalid digest"))?;
                if alg != "sha256" {
                    return Err(err(s, "unsupported digest algorithm"));
                }
                let dg =
                    Digest::from_hex(hex).map_err(|_| err(s, "invalid checksum digest format"))?;
                (r, Some(dg))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(err(s, "invalid tag format"));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(err(s, "repository name must have at least one component"));
        }
        let (domain, remainder) = split_docker_domain(name);
        if remainder.to_lowercase() != remainder {
            return Err(err(s, "repository name must be lowercase"));
        }
        if !valid_domain(&domain) {
            return Err(err(s, "invalid domain"));
        }
        if !remainder.split('/').all(valid_path_component) {
            return Err(err(s, "invalid repository name component"));
        }
        if domain.len() + 1 + remainder.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(err(
                s,
                "repository name must not be more than 255 characters",
            ));
        }
        Ok(Reference {
            domain,
            path: remainder,
            tag,
            digest,
        })
    }

    /// Parse and add `:latest` when neither tag nor digest was given (docker's TagNameOnly).
    pub fn parse_with_default_tag(s: &str) -> Result<Reference> {
        Ok(Self::parse_normalized(s)?.with_default_tag())
    }

    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }
    pub fn with_tag(mut self, tag: &str) -> Result<Reference> {
        if !valid_tag(tag) {
            return Err(err(tag, "invalid tag format"));
        }
        self.tag = Some(tag.to_string());
        Ok(self)
    }
    pub fn with_digest(mut self, d: Digest) -> Reference {
        self.digest = Some(d);
        self
    }
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }
    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    /// Familiar repository name as docker shows it: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }
    /// Familiar string (`busybox:latest`, `busybox@sha256:...`).
    pub fn familiar_string(&self) -> String {
        self.render(&self.familiar_name())
    }
    fn render(&self, name: &str) -> String {
        let mut s = name.to_string();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
    /// Host to talk to for this reference's registry.
    pub fn registry_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            &self.domain
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.name()))
    }
}
impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}
impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse_normalized(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        Reference::parse_with_default_tag(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/user/app"),
            "docker.io/user/app:latest"
        );
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/ns/app:v1"), "localhost:5000/ns/app:v1");
        assert_eq!(norm("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(norm("quay.io/a/b/c:t"), "quay.io/a/b/c:t");
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(norm("Foo/bar"), "Foo/bar:latest"); // uppercase first component is a host
        let r = Reference::parse_with_default_tag(&format!("host:5000/ns/name:tag@{D}")).unwrap();
        assert_eq!(r.domain(), "host:5000");
        assert_eq!(r.path(), "ns/name");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        let r = Reference::parse_with_default_tag(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None, "digest-only references get no default tag");
        assert_eq!(r.familiar_string(), format!("busybox@{D}"));
        assert_eq!(norm("a-b__c/e---f"), "docker.io/a-b__c/e---f:latest");
        assert!(
            Reference::parse_normalized("a-b__c.d/e").is_err(),
            "underscore not allowed in a domain"
        );
    }

    #[test]
    fn familiar() {
        let f = |s: &str| {
            Reference::parse_with_default_tag(s)
                .unwrap()
                .familiar_string()
        };
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/user/app:1"), "user/app:1");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("localhost:5000/x"), "localhost:5000/x:latest");
    }

    /// Found by fuzz/ (target `reference`): the familiar form of some Docker Hub references
    /// does not read back as the same reference: a namespace that looks like a host
    /// (`docker.io/s.ha4-1/busybox` -> `s.ha4-1/busybox`, another registry; `a_b.io/...`, no
    /// valid host at all) and a 64-hex name (read as an image ID). Docker's FamiliarString
    /// and ParseNormalizedNamed do the same (Hub names cannot take these forms, so no real
    /// image is affected); this pins that berth stays like Docker.
    #[test]
    fn familiar_form_of_a_dotted_hub_namespace_is_dockers() {
        let r = Reference::parse_normalized("docker.io/s.ha4-1/busybox").unwrap();
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "s.ha4-1/busybox");
        assert_eq!(r.familiar_string(), "s.ha4-1/busybox");
        let again = Reference::parse_normalized(&r.familiar_string()).unwrap();
        assert_eq!(
            again.domain(),
            "s.ha4-1",
            "the familiar form reads as a registry host"
        );
        assert_eq!(
            Reference::parse_normalized(&r.to_string())
                .unwrap()
                .to_string(),
            r.to_string(),
            "the full form round-trips"
        );
        // a namespace valid as a path component but not as a host: no familiar round trip
        let r = Reference::parse_normalized("docker.io/a_b.io/li/box").unwrap();
        assert_eq!(r.familiar_string(), "a_b.io/li/box");
        assert!(Reference::parse_normalized(&r.familiar_string()).is_err());
        // a Hub repository named by 64 hex digits: its familiar form reads as an image ID
        let hex = "a25f".repeat(16);
        let r = Reference::parse_normalized(&format!("docker.io/{hex}")).unwrap();
        assert_eq!(r.familiar_string(), hex);
        assert!(Reference::parse_normalized(&hex).is_err());
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            ":tag",
            "busybox@sha256:abc",
            "busybox@md5:abc",
            "a//b",
            "-a",
            "a-",
            "a/b/",
            "busybox:-tag",
            "UPPER/lower/Name",
            "a..b",
            "a___b",
            "host:port/x",
            "localhost:/x",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            let e = Reference::parse_normalized(bad);
            assert!(e.is_err(), "{bad:?} should be invalid, got {e:?}");
            let msg = e.unwrap_err().to_string();
            assert!(
                msg.contains(&format!("{bad:?}")),
                "error names the reference: {msg}"
            );
        }
        let long = "a".repeat(256);
        assert!(Reference::parse_normalized(&long).is_err());
        let longtag = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse_normalized(&longtag).is_err());
    }
}
