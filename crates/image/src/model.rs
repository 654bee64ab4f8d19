//! Image data model: OCI manifest/index, Docker schema2 manifest/list, image config.
//! Configs and manifests are kept as the exact bytes received (IDs are digests of bytes);
//! these types are for reading them.
use crate::digest::Digest;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const MEDIA_DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    pub fn linux_amd64() -> Platform {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            os_version: None,
        }
    }
    /// Parse `os/arch[/variant]` (docker's `--platform`).
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid(
                format!("platform {s:?}"),
                "expected os/arch[/variant]",
            ));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
        })
    }
    pub fn matches(&self, want: &Platform) -> bool {
        self.os == want.os
            && self.architecture == want.architecture
            && (want.variant.is_none() || self.variant == want.variant)
    }
}
impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: None,
            urls: None,
        }
    }
}

/// OCI image manifest or Docker schema2 manifest (same shape).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// OCI index or Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest-ish document, classified.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum ManifestKind {
    Image(Manifest),
    Index(Index),
}

/// Classify manifest bytes by (content-type or embedded) media type; schema1 is refused.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
    what: &str,
) -> Result<ManifestKind> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::json(what, e))?;
    let mt = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()));
    let schema = v.get("schemaVersion").and_then(|s| s.as_u64()).unwrap_or(0);
    if schema == 1
        || matches!(
            mt.as_deref(),
            Some(MEDIA_DOCKER_SCHEMA1) | Some(MEDIA_DOCKER_SCHEMA1_SIGNED)
        )
    {
        return Err(Error::Unsupported(format!(
            "{what} is a Docker Image manifest schema version 1 (v1 manifests are unsupported); re-push the image with a modern client (docker >= 1.10) to upgrade it to schema 2"
        )));
    }
    let is_index = match mt.as_deref() {
        Some(MEDIA_OCI_INDEX) | Some(MEDIA_DOCKER_LIST) => true,
        Some(MEDIA_OCI_MANIFEST) | Some(MEDIA_DOCKER_MANIFEST) => false,
        _ => v.get("manifests").is_some(),
    };
    if is_index {
        Ok(ManifestKind::Index(
            serde_json::from_value(v).map_err(|e| Error::json(what, e))?,
        ))
    } else {
        if v.get("config").is_none() {
            return Err(Error::Unsupported(format!(
                "{what}: unknown manifest media type {mt:?}"
            )));
        }
        Ok(ManifestKind::Image(
            serde_json::from_value(v).map_err(|e| Error::json(what, e))?,
        ))
    }
}

/// Pick the manifest for `want` from an index (docker's default: linux/amd64).
pub fn select_platform<'a>(
    idx: &'a Index,
    want: &Platform,
    reference: &str,
) -> Result<&'a Descriptor> {
    let cands: Vec<&Descriptor> = idx
        .manifests
        .iter()
        .filter(|d| d.media_type != "application/vnd.in-toto+json")
        .filter(|d| {
            d.platform
                .as_ref()
                .map(|p| p.matches(want))
                .unwrap_or(false)
        })
        .collect();
    // prefer an exact variant match, then the first listed
    if let Some(d) = cands
        .iter()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.clone()) == want.variant)
    {
        return Ok(d);
    }
    cands
        .first()
        .copied()
        .ok_or_else(|| Error::NoMatchingPlatform {
            reference: reference.into(),
            platform: want.to_string(),
        })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HealthConfig {
    #[serde(rename = "Test", default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(rename = "Interval", default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(rename = "Timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(
        rename = "StartPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<i64>,
    #[serde(
        rename = "StartInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_interval: Option<i64>,
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The runtime part of an image config (Docker's names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ContainerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<HealthConfig>,
    #[serde(
        rename = "ArgsEscaped",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub args_escaped: Option<bool>,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// Image config (OCI config / Docker image JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
        let c: ImageConfig = serde_json::from_slice(bytes).map_err(|e| Error::json(what, e))?;
        if c.rootfs.kind != "layers" {
            return Err(Error::invalid(
                what,
                format!("rootfs.type is {:?}, expected \"layers\"", c.rootfs.kind),
            ));
        }
        Ok(c)
    }
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
            os_version: None,
        }
    }
}

pub fn is_layer_media_type(mt: &str) -> bool {
    mt.contains("layer") || mt.contains("rootfs.diff")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn schema1_refused_clearly() {
        let m = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let e = parse_manifest(m, None, "manifest x:y")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("schema version 1") && e.contains("re-push"),
            "{e}"
        );
    }
    #[test]
    fn platform_selection() {
        let d = |a: &str, v: Option<&str>, n: u8| Descriptor {
            platform: Some(Platform {
                architecture: a.into(),
                os: "linux".into(),
                variant: v.map(Into::into),
                os_version: None,
            }),
            ..Descriptor::new(MEDIA_OCI_MANIFEST, Digest::of(&[n]), 1)
        };
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                d("arm", Some("v7"), 1),
                d("arm64", Some("v8"), 2),
                d("amd64", None, 3),
            ],
            annotations: None,
        };
        assert_eq!(
            select_platform(&idx, &Platform::linux_amd64(), "x")
                .unwrap()
                .digest,
            Digest::of(&[3])
        );
        assert_eq!(
            select_platform(&idx, &Platform::parse("linux/arm64").unwrap(), "x")
                .unwrap()
                .digest,
            Digest::of(&[2])
        );
        let e = select_platform(&idx, &Platform::parse("linux/s390x").unwrap(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux/s390x"));
    }
}
