//! `--cache-from`: images given as cache sources stand in for steps, as dockerd's classic
//! builder (`image/cache`) lets them. A step on parent P with history text T matches a source
//! S when P's history and layers are a prefix of S's and S's next history entry reads T. If
//! that entry is S's last, the step's image is S itself (so a rebuild gives S's ID); otherwise
//! the step's image is *restored*: P's layers plus S's layer of that entry (if it made one),
//! P's history plus that entry, and the step's config; the build then keeps to that source.
//! With sources given, a local cache hit counts only if it is a source or one of their
//! ancestors (dockerd's rule: the sources are what the user trusts).

use std::sync::{Mutex, PoisonError};

use berth_image::model::ImageConfig;

use crate::backend::{BackendError, BaseImage, BuildBackend};
use crate::builder::State;

/// The `--cache-from` images found here (those that are not are skipped, as dockerd does).
#[derive(Default)]
pub(crate) struct CacheSources {
    images: Mutex<Vec<BaseImage>>,
}

impl CacheSources {
    pub fn new(backend: &dyn BuildBackend, names: &[String]) -> CacheSources {
        let images = names
            .iter()
            .filter(|n| !n.is_empty())
            .filter_map(|n| backend.local_image(n))
            .collect();
        CacheSources {
            images: Mutex::new(images),
        }
    }

    fn images(&self) -> Vec<BaseImage> {
        self.images
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a local cache hit may be used: always without sources; with them, only one
    /// that is a source or an ancestor of one.
    pub fn trusts(&self, backend: &dyn BuildBackend, image: &str) -> bool {
        let sources = self.images();
        if sources.is_empty() {
            return true;
        }
        sources
            .iter()
            .any(|s| s.id == image || backend.ancestors(&s.id).iter().any(|a| a == image))
    }

    /// The image a source gives for the step on `st` whose history entry is `created_by`.
    pub fn lookup(
        &self,
        backend: &dyn BuildBackend,
        st: &State,
        created_by: &str,
    ) -> Result<Option<String>, BackendError> {
        let sources = self.images();
        if sources.is_empty() {
            return Ok(None);
        }
        let parent = match &st.image {
            Some(id) => Some(backend.resolve_image(id)?),
            None => None,
        };
        let at = parent.as_ref().map_or(0, |p| p.config.history.len());
        for target in &sources {
            if !valid_parent(&target.config, parent.as_ref().map(|p| &p.config))
                || target.config.history[at].created_by.as_deref() != Some(created_by)
            {
                continue;
            }
            let parent_id = parent.as_ref().map(|p| p.id.as_str());
            if target.config.history.len() - 1 == at {
                if let Some(p) = parent_id {
                    backend.set_parent(&target.id, p)?;
                }
                return Ok(Some(target.id.clone()));
            }
            let entry = target.config.history[at].clone();
            let mut config = st.config.clone();
            config.history = parent
                .as_ref()
                .map(|p| p.config.history.clone())
                .unwrap_or_default();
            config.history.push(entry.clone());
            config.created = entry.created.clone();
            let layer = layer_of(&target.config, at);
            let id = backend.restore(parent_id, &target.id, layer, config)?;
            // Keep to this source from here on (dockerd: "avoid jumping to different target").
            *self.images.lock().unwrap_or_else(PoisonError::into_inner) = vec![target.clone()];
            return Ok(Some(id));
        }
        Ok(None)
    }
}

/// dockerd's `isValidParent`: `parent`'s history and layers begin `img`'s, which has an entry
/// more.
fn valid_parent(img: &ImageConfig, parent: Option<&ImageConfig>) -> bool {
    if img.history.is_empty() {
        return false;
    }
    let Some(p) = parent else {
        return true;
    };
    if p.history.is_empty() && p.rootfs.diff_ids.is_empty() {
        return true;
    }
    p.history.len() < img.history.len()
        && p.rootfs.diff_ids.len() <= img.rootfs.diff_ids.len()
        && img.history.starts_with(&p.history)
        && img.rootfs.diff_ids.starts_with(&p.rootfs.diff_ids)
}

/// The index among the image's layers of the one history entry `at` made (`None` for an
/// empty-layer entry, or one past the layers the config lists).
fn layer_of(img: &ImageConfig, at: usize) -> Option<usize> {
    if img.history[at].empty_layer {
        return None;
    }
    let n = img.history[..at].iter().filter(|h| !h.empty_layer).count();
    (n < img.rootfs.diff_ids.len()).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::model::{History, RootFs};

    fn img(entries: &[(&str, bool)], layers: &[&str]) -> ImageConfig {
        ImageConfig {
            history: entries
                .iter()
                .map(|(by, empty)| History {
                    created_by: Some(by.to_string()),
                    empty_layer: *empty,
                    ..Default::default()
                })
                .collect(),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: layers
                    .iter()
                    .map(|l| format!("sha256:{}", l.repeat(64)).parse().unwrap())
                    .collect(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn parents_and_layers_as_dockerd_matches_them() {
        let base = img(&[("base", false)], &["a"]);
        let full = img(
            &[("base", false), ("ENV", true), ("RUN", false)],
            &["a", "b"],
        );
        assert!(valid_parent(&full, Some(&base)));
        assert!(valid_parent(&full, None));
        assert!(!valid_parent(&base, Some(&full)));
        let other = img(&[("base", false)], &["c"]);
        assert!(!valid_parent(&full, Some(&other)));
        assert_eq!(layer_of(&full, 1), None);
        assert_eq!(layer_of(&full, 2), Some(1));
        assert_eq!(layer_of(&full, 0), Some(0));
    }
}
