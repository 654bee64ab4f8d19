//! `RUN --mount`: cache directories kept between builds, tmpfs, and read-only binds of the
//! context or of a stage's / image's filesystem.

use crate::ast::Run;
use crate::backend::RunMount;
use crate::builder::{BuildError, Builder, State};
use crate::mount::MountType;
use crate::steps::clean_abs;
use crate::{copy, sources};

impl Builder<'_> {
    /// The step's mounts, and what of them goes into its cache key (the options, and the
    /// content of what a bind from the context shows).
    pub(crate) fn run_mounts(
        &mut self,
        st: &State,
        run: &Run,
        from_containers: &mut Vec<String>,
    ) -> Result<(Vec<RunMount>, String), BuildError> {
        let mut out = Vec::new();
        let mut key = String::new();
        for m in &run.mounts {
            key.push_str(&format!("{m:?}\n"));
            if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                return Err(BuildError::Invalid(format!(
                    "RUN --mount=type={}: not supported by berth's builder yet",
                    if m.kind == MountType::Secret {
                        "secret"
                    } else {
                        "ssh"
                    }
                )));
            }
            let target = match &m.target {
                Some(t) if t.starts_with('/') => clean_abs(t),
                Some(t) => clean_abs(&format!("{}/{t}", st.workdir())),
                None => {
                    return Err(BuildError::Invalid(
                        "RUN --mount: a target is required".into(),
                    ))
                }
            };
            match m.kind {
                MountType::Cache => out.push(RunMount::Cache {
                    id: m.id.clone().unwrap_or_else(|| target.clone()),
                    target,
                    mode: m.mode.unwrap_or(0o755),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                }),
                MountType::Tmpfs => out.push(RunMount::Tmpfs {
                    target,
                    size: m.size,
                }),
                MountType::Bind => {
                    let root = match &m.from {
                        None => self.context.to_path_buf(),
                        Some(f) => {
                            let image = self.source_image(f)?;
                            let cc = berth_image::model::ContainerConfig {
                                cmd: Some(vec!["#(nop)".into()]),
                                entrypoint: Some(vec![]),
                                ..Default::default()
                            };
                            let cid = self.backend.create(&image, &cc, false, &[])?;
                            from_containers.push(cid.clone());
                            key.push_str(&image);
                            self.backend.rootfs(&cid)?
                        }
                    };
                    let src = m.source.clone().unwrap_or_default();
                    let source = copy::resolve(&root, &src).map_err(|e| BuildError::Copy {
                        step: "RUN --mount",
                        source: std::io::Error::new(e.kind(), format!("{src}: {e}")),
                    })?;
                    if m.from.is_none() {
                        let matched = [sources::Matched {
                            rel: src.clone(),
                            real: source.clone(),
                        }];
                        let hash =
                            sources::content_hash(&matched).map_err(|e| BuildError::Copy {
                                step: "RUN --mount",
                                source: e,
                            })?;
                        key.push_str(&hash);
                    }
                    // Read-only always: BuildKit drops the writes of an `rw` bind, which
                    // here would reach the context or the stage (not supported yet).
                    out.push(RunMount::Bind {
                        source,
                        target,
                        readonly: true,
                    });
                }
                MountType::Secret | MountType::Ssh => {}
            }
        }
        Ok((out, key))
    }
}
