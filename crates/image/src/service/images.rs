//! The image views (ls, inspect, history) with Docker's field names, and tag/delete.
use super::{familiar, layer_chains, names_image, ImageService};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::model::{self};
use crate::reference::Reference;
use serde::Serialize;

/// `docker image inspect` data, with Docker's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: Option<model::ContainerConfig>,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    pub root_f_s: RootFsInspect,
    pub metadata: InspectMetadata,
}
#[derive(Debug, Clone, Serialize)]
pub struct RootFsInspect {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}
#[derive(Debug, Clone, Serialize)]
pub struct InspectMetadata {
    #[serde(rename = "LastTagTime")]
    pub last_tag_time: String,
}

/// `docker image ls` row.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Labels")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "ParentId")]
    pub parent_id: String,
    #[serde(rename = "Containers")]
    pub containers: i64,
    #[serde(rename = "SharedSize")]
    pub shared_size: i64,
}

/// `docker history` row.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "CreatedBy")]
    pub created_by: String,
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Comment")]
    pub comment: String,
}

/// What `delete` did (Docker's `Untagged` / `Deleted` items).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteReport {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

impl ImageService {
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for rec in self.meta.list() {
            let cfg = self.config_of(&rec).ok();
            out.push(ImageSummary {
                id: rec.id.to_string(),
                repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
                repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
                created: cfg
                    .as_ref()
                    .and_then(|c| c.created.as_deref())
                    .map(crate::util::parse_rfc3339)
                    .unwrap_or(0),
                size: rec.size,
                labels: cfg
                    .as_ref()
                    .and_then(|c| c.config.as_ref())
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default(),
                parent_id: String::new(),
                containers: -1,
                shared_size: -1,
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(out)
    }

    /// Each image (by ID) with its layers' chain IDs and unpacked sizes, bottom to top: what
    /// `system df` counts once per layer however many images share it.
    pub fn layer_sizes(&self) -> Vec<(String, Vec<(Digest, u64)>)> {
        self.meta
            .list()
            .into_iter()
            .map(|rec| {
                let sizes = layer_chains(&rec)
                    .into_iter()
                    .map(|c| {
                        let n = self.snapshots.committed_meta(&c).map_or(0, |m| m.size);
                        (c, n)
                    })
                    .collect();
                (rec.id.to_string(), sizes)
            })
            .collect()
    }

    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let rec = self.resolve(name)?;
        let cfg = self.config_of(&rec)?;
        Ok(ImageInspect {
            id: rec.id.to_string(),
            repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
            parent: String::new(),
            comment: cfg.comment.clone().unwrap_or_default(),
            created: cfg.created.clone().unwrap_or_default(),
            docker_version: cfg.docker_version.clone().unwrap_or_default(),
            author: cfg.author.clone().unwrap_or_default(),
            config: cfg.config.clone(),
            architecture: cfg.architecture.clone(),
            variant: cfg.variant.clone(),
            os: cfg.os.clone(),
            size: rec.size,
            root_f_s: RootFsInspect {
                kind: "layers".into(),
                layers: cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            metadata: InspectMetadata {
                last_tag_time: rec.stored_at.clone(),
            },
        })
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let rec = self.resolve(name)?;
        let cfg = self.config_of(&rec)?;
        let chains = layer_chains(&rec);
        let sizes: Vec<u64> = chains
            .iter()
            .map(|c| {
                self.snapshots
                    .committed_meta(c)
                    .map(|m| m.size)
                    .unwrap_or(0)
            })
            .collect();
        let mut li = 0;
        let mut out = Vec::new();
        let hist = if cfg.history.is_empty() {
            rec.layers
                .iter()
                .map(|_| model::History::default())
                .collect()
        } else {
            cfg.history.clone()
        };
        for h in &hist {
            let size = if h.empty_layer {
                0
            } else {
                li += 1;
                sizes.get(li - 1).copied().unwrap_or(0)
            };
            out.push(HistoryEntry {
                id: "<missing>".into(),
                created: h
                    .created
                    .as_deref()
                    .map(crate::util::parse_rfc3339)
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: None,
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        if let Some(first) = out.first_mut() {
            first.id = rec.id.to_string();
            let tags: Vec<String> = rec.repo_tags.iter().map(|t| familiar(t)).collect();
            first.tags = if tags.is_empty() { None } else { Some(tags) };
        }
        Ok(out)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference> {
        let rec = self.resolve(source)?;
        self.meta.tag(&rec.id, target)
    }

    /// `docker rmi`: a name removes that name (and the image when it was the last name and
    /// not in use); an ID removes the image (needs `force` when it has several names).
    /// `in_use` says whether a container uses the image (then it is refused without force).
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<DeleteReport> {
        let rec = self.resolve(name)?;
        let mut rep = DeleteReport::default();
        let by_id = !names_image(&rec, name);
        if !by_id {
            let (id, last) = self.meta.untag(name)?;
            rep.untagged.push(familiar(
                &Reference::parse_with_default_tag(name)?.to_string(),
            ));
            // Digest references that went with the repository's last tag.
            let left = self
                .meta
                .get(&id)
                .map(|r| r.repo_digests)
                .unwrap_or_default();
            for d in rec.repo_digests.iter().filter(|d| !left.contains(d)) {
                let f = familiar(d);
                if !rep.untagged.contains(&f) {
                    rep.untagged.push(f);
                }
            }
            if last && !in_use(&id) {
                self.meta.remove(&id)?;
                rep.deleted.push(id.to_string());
            }
            return Ok(rep);
        }
        if in_use(&rec.id) && !force {
            return Err(Error::Conflict(format!(
                "unable to delete {} (must be forced) - image is being used by a container",
                rec.id.short()
            )));
        }
        if rec.repo_tags.len() > 1 && !force {
            return Err(Error::Conflict(format!("unable to delete {} (must be forced) - image is referenced in multiple repositories", rec.id.short())));
        }
        for t in rec.repo_tags.iter().chain(rec.repo_digests.iter()) {
            rep.untagged.push(familiar(t));
        }
        self.meta.remove(&rec.id)?;
        rep.deleted.push(rec.id.to_string());
        Ok(rep)
    }
}
