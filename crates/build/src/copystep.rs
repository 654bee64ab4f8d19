//! `COPY` and `ADD`: sources from the context or a stage/image (`--from`), written into a
//! container of the current image (its rootfs mounted, never started) and committed.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::ast::{Add, Copy, Source};
use crate::builder::{short, BuildError, Builder, State};
use crate::copy::{self, CopyMeta};
use crate::sources::{self, Matched};

/// What `COPY` and `ADD` have in common.
pub(crate) struct CopySpec {
    add: bool,
    from: Option<String>,
    chown: Option<String>,
    chmod: Option<String>,
    sources: Vec<Source>,
    dest: String,
}

impl From<Copy> for CopySpec {
    fn from(c: Copy) -> Self {
        CopySpec {
            add: false,
            from: c.from,
            chown: c.chown,
            chmod: c.chmod,
            sources: c.sources,
            dest: c.dest,
        }
    }
}

impl From<Add> for CopySpec {
    fn from(a: Add) -> Self {
        CopySpec {
            add: true,
            from: None,
            chown: a.chown,
            chmod: a.chmod,
            sources: a.sources,
            dest: a.dest,
        }
    }
}

fn io_err(step: &'static str) -> impl Fn(std::io::Error) -> BuildError {
    move |source| BuildError::Copy { step, source }
}

/// An I/O error with the path it was about.
fn at(what: &str, path: &str) -> impl Fn(std::io::Error) -> std::io::Error {
    let ctx = format!("{what} {path}");
    move |e| std::io::Error::new(e.kind(), format!("{ctx}: {e}"))
}

impl Builder<'_> {
    pub(crate) fn copy_step(&mut self, st: &mut State, c: &CopySpec) -> Result<(), BuildError> {
        let step = if c.add { "ADD" } else { "COPY" };
        let mode = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| BuildError::Invalid(format!("invalid chmod parameter: {m:?}")))?,
            ),
            None => None,
        };
        // Where the sources come from: the context, or a container of a stage/image.
        let mut from_container = None;
        let mut image_key = None;
        let src_root: PathBuf = match &c.from {
            None => self.context.to_path_buf(),
            Some(f) => {
                let image = self.source_image(f)?;
                // An image never changes: its ID and the step's words key the step without
                // a container to read the sources from.
                let words = format!(
                    "{:?}|{}|{}|{:?}|{:?}",
                    c.sources,
                    c.dest,
                    st.workdir(),
                    c.chown,
                    c.chmod
                );
                let key = self.key(st.image.as_deref(), &[step, "from-image", &image, &words]);
                if self.cached(st, &key, None)? {
                    return Ok(());
                }
                image_key = Some(key);
                let cc = berth_image::model::ContainerConfig {
                    cmd: Some(vec!["#(nop)".into()]),
                    entrypoint: Some(vec![]),
                    ..Default::default()
                };
                let cid = self.backend.create(&image, &cc, false, &[])?;
                let root = self.backend.rootfs(&cid);
                from_container = Some(cid);
                match root {
                    Ok(r) => r,
                    Err(e) => {
                        self.drop_container(&mut from_container);
                        return Err(e.into());
                    }
                }
            }
        };
        let r = self.copy_from(st, c, step, mode, &src_root);
        self.drop_container(&mut from_container);
        r?;
        if let (Some(key), Some(id)) = (image_key, &st.image) {
            self.backend.cache_put(&key, id)?;
        }
        Ok(())
    }

    fn drop_container(&mut self, c: &mut Option<String>) {
        if let Some(id) = c.take() {
            self.backend.remove(&id);
        }
    }

    /// An image for `--from`: a built stage (by name or index) or an image name.
    pub(crate) fn source_image(&mut self, f: &str) -> Result<String, BuildError> {
        if let Some(i) = self.table.find(f, self.index, false) {
            let mut st = self.table.wait(i)?;
            return self.base_image(&mut st);
        }
        Ok(self.backend.resolve_image(f)?.id)
    }

    fn copy_from(
        &mut self,
        st: &mut State,
        c: &CopySpec,
        step: &'static str,
        mode: Option<u32>,
        src_root: &Path,
    ) -> Result<(), BuildError> {
        let mut matched: Vec<Matched> = Vec::new();
        let mut remote: Vec<Matched> = Vec::new();
        let mut heredocs = Vec::new();
        let mut many = c.sources.len() > 1;
        for s in &c.sources {
            match s {
                Source::Path(p)
                    if c.add && (p.starts_with("http://") || p.starts_with("https://")) =>
                {
                    // A download is a file (never extracted), mode 0600 unless --chmod, as
                    // Docker's ADD of a URL.
                    let real = self.backend.fetch(p)?;
                    let rel = real
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    remote.push(Matched { rel, real });
                }
                Source::Path(p) => {
                    many |= sources::is_pattern(p);
                    matched.extend(sources::match_sources(src_root, p).map_err(io_err(step))?);
                }
                Source::Heredoc(h) => heredocs.push(h.clone()),
            }
        }
        let dest = if c.dest.starts_with('/') {
            c.dest.clone()
        } else {
            format!("{}/{}", st.workdir().trim_end_matches('/'), c.dest)
        };
        let dir_dest = c.dest.ends_with('/') || c.dest == "." || c.dest.ends_with("/.");
        let downloads: Vec<PathBuf> = remote.iter().map(|m| m.real.clone()).collect();
        matched.extend(remote);
        if many && !dir_dest && matched.len() + heredocs.len() > 1 {
            return Err(BuildError::Invalid(format!(
                "When using {step} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let hash = sources::content_hash(&matched).map_err(io_err(step))?;
        let here: String = heredocs
            .iter()
            .map(|h| format!("{}\0{}", h.name, h.content))
            .collect();
        let what = format!(
            "{}:{hash} in {dest}",
            if matched.len() == 1 && matched[0].real.is_dir() {
                "dir"
            } else {
                "file"
            }
        );
        let key = self.key(
            st.image.as_deref(),
            &[
                step,
                &what,
                c.chown.as_deref().unwrap_or(""),
                c.chmod.as_deref().unwrap_or(""),
                &here,
                c.from.as_deref().unwrap_or(""),
            ],
        );
        // dockerd's text: its digest of the sources, `--chown=` glued to it, the
        // destination as written.
        let origin = match c.from {
            None => crate::dockerhash::Origin::Context,
            Some(_) => crate::dockerhash::Origin::Image,
        };
        let docker_hash = crate::dockerhash::source_hash(&matched, origin).map_err(io_err(step))?;
        let created_by = format!(
            "{} #(nop) {step} {}{docker_hash} in {} ",
            st.shell().join(" "),
            c.chown
                .as_deref()
                .map(|o| format!("--chown={o}"))
                .unwrap_or_default(),
            c.dest
        );
        if self.cached(st, &key, Some(&created_by))? {
            return Ok(());
        }
        let parent = self.base_image(st)?;
        let mut cc = st.config.config.clone().unwrap_or_default();
        cc.healthcheck = None;
        cc.cmd = Some(vec![format!("#(nop) {step}")]);
        cc.entrypoint = Some(vec![]);
        let cid = self.backend.create(&parent, &cc, false, &[])?;
        let srcs = Sources {
            matched: &matched,
            heredocs: &heredocs,
            downloads: &downloads,
        };
        let r = self.write_sources(&cid, c, step, mode, &dest, dir_dest, &srcs);
        let committed = r.and_then(|()| {
            Ok(self
                .backend
                .commit(&cid, &parent, st.config.clone(), &created_by)?)
        });
        self.backend.remove(&cid);
        let id = committed?;
        self.backend.cache_put(&key, &id)?;
        st.config = self.backend.resolve_image(&id)?.config;
        st.image = Some(id.clone());
        self.say(format!(" ---> {}\n", short(&id)));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn write_sources(
        &self,
        cid: &str,
        c: &CopySpec,
        step: &'static str,
        mode: Option<u32>,
        dest: &str,
        dir_dest: bool,
        srcs: &Sources,
    ) -> Result<(), BuildError> {
        let root = self.backend.rootfs(cid)?;
        let owner = match &c.chown {
            Some(spec) => Some(resolve_owner(&root, spec)?),
            None => None,
        };
        let e = io_err(step);
        for m in srcs.matched {
            let downloaded = srcs.downloads.contains(&m.real);
            let meta = CopyMeta {
                owner,
                mode: mode.or(downloaded.then_some(0o600)),
            };
            let md = fs::metadata(&m.real).map_err(&e)?;
            if md.is_dir() {
                let target = copy::mkdir_all(&root, dest, owner)
                    .map_err(at("create", dest))
                    .map_err(&e)?;
                for entry in fs::read_dir(&m.real).map_err(&e)? {
                    let name = entry.map_err(&e)?.file_name();
                    copy::copy_entry(&m.real.join(&name), &target.join(&name), meta)
                        .map_err(at("copy into", dest))
                        .map_err(&e)?;
                }
            } else if c.add && !downloaded && is_archive(&m.real) {
                let target = copy::mkdir_all(&root, dest, owner).map_err(&e)?;
                let f = fs::File::open(&m.real).map_err(&e)?;
                let opts = berth_image::layer::UnpackOptions {
                    whiteouts: berth_image::layer::WhiteoutMode::Apply,
                    name: m.rel.clone(),
                };
                berth_image::layer::unpack_layer(f, &target, &opts).map_err(|er| {
                    BuildError::Invalid(format!("ADD failed: extract {}: {er}", m.rel))
                })?;
            } else {
                let base = m.rel.rsplit('/').next().unwrap_or(&m.rel);
                let target = file_target(&root, dest, dir_dest, base, owner)
                    .map_err(at("create", dest))
                    .map_err(&e)?;
                copy::copy_entry(&m.real, &target, meta)
                    .map_err(at(&format!("copy {} to", m.rel), dest))
                    .map_err(&e)?;
            }
        }
        for h in srcs.heredocs {
            let target = file_target(&root, dest, dir_dest, &h.name, owner).map_err(&e)?;
            copy::write_file(&target, h.content.as_bytes(), CopyMeta { owner, mode })
                .map_err(&e)?;
        }
        Ok(())
    }
}

/// What a COPY/ADD writes: matched paths (downloads among them), heredoc files.
struct Sources<'a> {
    matched: &'a [Matched],
    heredocs: &'a [crate::ast::Heredoc],
    downloads: &'a [PathBuf],
}

/// Where a single file goes: `dest/name` when `dest` is a directory (written with a `/` or
/// one in the image), else `dest` itself.
fn file_target(
    root: &Path,
    dest: &str,
    dir_dest: bool,
    name: &str,
    owner: Option<(u32, u32)>,
) -> std::io::Result<PathBuf> {
    let is_dir = dir_dest || copy::resolve(root, dest).is_ok_and(|p| p.is_dir());
    if is_dir {
        return Ok(copy::mkdir_all(root, dest, owner)?.join(name));
    }
    let trimmed = dest.trim_end_matches('/');
    let (parent, file) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    Ok(copy::mkdir_all(root, parent, owner)?.join(file))
}

fn is_archive(p: &Path) -> bool {
    let mut head = vec![0u8; 512];
    let Ok(mut f) = fs::File::open(p) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head.truncate(n);
    if head.starts_with(&[0x1f, 0x8b]) {
        return true;
    }
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// `--chown=user[:group]`: names looked up in the image's `/etc/passwd` and `/etc/group`.
fn resolve_owner(root: &Path, spec: &str) -> Result<(u32, u32), BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |f: &str| {
        copy::resolve(root, f)
            .and_then(fs::read_to_string)
            .unwrap_or_default()
    };
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("etc/passwd", user).ok_or_else(|| {
            BuildError::Invalid(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ))
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("etc/group")
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_resolves_names_in_the_image() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_owner(t.path(), "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_owner(t.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_owner(t.path(), "7").unwrap(), (7, 7));
        assert_eq!(resolve_owner(t.path(), "7:8").unwrap(), (7, 8));
        assert!(resolve_owner(t.path(), "nobody").is_err());
        assert!(resolve_owner(t.path(), "app:nogroup").is_err());
    }
}
