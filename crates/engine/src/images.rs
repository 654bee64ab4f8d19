//! Image operations over `berth_image::ImageService`, with Docker's JSON shapes and events.
use crate::util::{internal, parse_rfc3339, parse_time_arg, Filters};
use crate::*;
use berth_image::Progress as P;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn short(d: &berth_image::Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// Docker JSON-stream message for an image-crate progress event (None: not shown).
fn progress_json(p: &P) -> Option<Value> {
    Some(match p {
        P::Resolving { .. } => return None,
        P::Waiting { layer } => {
            json!({"status": "Waiting", "progressDetail": {}, "id": short(layer)})
        }
        P::Downloading {
            layer,
            current,
            total,
        } => {
            json!({"status": "Downloading", "progressDetail": {"current": current, "total": total}, "id": short(layer)})
        }
        P::Verifying { layer } => {
            json!({"status": "Verifying Checksum", "progressDetail": {}, "id": short(layer)})
        }
        P::DownloadComplete { layer } => {
            json!({"status": "Download complete", "progressDetail": {}, "id": short(layer)})
        }
        P::Extracting {
            layer,
            current,
            total,
        } => {
            json!({"status": "Extracting", "progressDetail": {"current": current, "total": total}, "id": short(layer)})
        }
        P::Complete { layer } => {
            json!({"status": "Pull complete", "progressDetail": {}, "id": short(layer)})
        }
        P::AlreadyExists { layer } => {
            json!({"status": "Already exists", "progressDetail": {}, "id": short(layer)})
        }
        P::Pushing {
            layer,
            current,
            total,
        } => {
            json!({"status": "Pushing", "progressDetail": {"current": current, "total": total}, "id": short(layer)})
        }
        P::Pushed { layer } => {
            json!({"status": "Pushed", "progressDetail": {}, "id": short(layer)})
        }
        P::Mounted { layer, from } => {
            json!({"status": format!("Mounted from {from}"), "progressDetail": {}, "id": short(layer)})
        }
        P::Done { .. } | P::Loaded { .. } => return None,
        P::Status(s) => json!({"status": s}),
    })
}

fn in_use_ids(e: &Engine) -> Vec<String> {
    e.inner
        .0
        .containers
        .lock()
        .by_id
        .values()
        .map(|c| c.rec.image_id.clone())
        .collect()
}

fn image_event(e: &Engine, action: &str, id: &str, name: &str) {
    let mut a = BTreeMap::new();
    a.insert("name".to_string(), name.to_string());
    e.inner.0.events.publish("image", action, id, a);
}

pub(crate) fn list(e: &Engine, all: bool, filters: &Value) -> Result<Vec<Value>> {
    let s = &e.inner.0;
    let f = Filters::parse(filters)?;
    f.validate(&[
        "dangling",
        "label",
        "label!",
        "reference",
        "before",
        "since",
        "until",
    ])?;
    let list = s.images.list().map_err(|er| internal("list images", er))?;
    let used = in_use_ids(e);
    let created_of = |x: &str| -> Result<i64> {
        let r = s.images.inspect(x).map_err(|er| image_error(x, er))?;
        Ok(parse_rfc3339(&r.created).unwrap_or(0.0) as i64)
    };
    let before = match f.get("before").first() {
        Some(b) => Some(created_of(b)?),
        None => None,
    };
    let since = match f.get("since").first() {
        Some(b) => Some(created_of(b)?),
        None => None,
    };
    let until = match f.get("until").first() {
        Some(u) => Some(parse_time_arg(u)? as i64),
        None => None,
    };
    // Docker's `reference` filter selects *references*, not just images: an image is listed
    // with only the tags (and digests) that match, and left out when none does.
    let patterns = f
        .get("reference")
        .iter()
        .map(|p| RefPattern::parse(p))
        .collect::<Result<Vec<_>>>()?;
    // A build's intermediate images (untagged, with a child) only with -a, as dockerd.
    let intermediate = if all {
        Default::default()
    } else {
        let live = list.iter().map(|i| i.id.as_str()).collect();
        crate::build::parents_of(&s.cfg.root, &live)
    };
    let mut out = Vec::new();
    for mut im in list {
        let dangling = im.repo_tags.is_empty();
        if dangling && intermediate.contains(&im.id) {
            continue;
        }
        if let Some(d) = f.get("dangling").first() {
            let want = matches!(d.as_str(), "true" | "1");
            if want != dangling {
                continue;
            }
        }
        if !f.match_labels("label", &im.labels) {
            continue;
        }
        if !patterns.is_empty() {
            let keep = |r: &String| patterns.iter().any(|p| p.matches_familiar(r));
            im.repo_tags.retain(|r| keep(r));
            im.repo_digests.retain(|r| keep(r));
            if im.repo_tags.is_empty() && im.repo_digests.is_empty() {
                continue;
            }
        }
        if before.is_some_and(|b| im.created >= b)
            || since.is_some_and(|b| im.created <= b)
            || until.is_some_and(|u| im.created > u)
        {
            continue;
        }
        let mut v = serde_json::to_value(&im).map_err(|er| internal("encode image summary", er))?;
        v["Containers"] = json!(used.iter().filter(|u| **u == im.id).count());
        if dangling {
            v["RepoTags"] = json!([]);
        }
        out.push(v);
    }
    Ok(out)
}

/// One token of a Go `path.Match` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobTok {
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// A literal character (a backslash escapes one).
    Lit(char),
    /// `[...]` / `[^...]`: one character in (or not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A `reference` filter value (`busybox`, `busybox:1.*`, `*/app:*`), matched as dockerd does
/// (`reference.FamiliarMatch`): Go `path.Match` against the familiar reference
/// (`busybox:latest`, `localhost:5000/app@sha256:...`), or else against its familiar name, so
/// that a bare repository matches every tag of it.
#[derive(Debug, Clone)]
struct RefPattern(Vec<GlobTok>);

impl RefPattern {
    /// Parses the whole pattern up front; a malformed one is refused (Go: `ErrBadPattern`).
    fn parse(pat: &str) -> Result<RefPattern> {
        let bad = || {
            Error::BadParameter(format!(
                "invalid reference filter {pat:?}: syntax error in pattern"
            ))
        };
        let mut toks = Vec::new();
        let mut it = pat.chars().peekable();
        // A character of a class: `\\c` escapes; `-` and `]` must be escaped.
        let class_char = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| match it.next() {
            None | Some('-') | Some(']') => None,
            Some('\\') => it.next(),
            Some(c) => Some(c),
        };
        while let Some(c) = it.next() {
            match c {
                '*' => {
                    if toks.last() != Some(&GlobTok::Star) {
                        toks.push(GlobTok::Star);
                    }
                }
                '?' => toks.push(GlobTok::One),
                '\\' => toks.push(GlobTok::Lit(it.next().ok_or_else(bad)?)),
                '[' => {
                    let negated = it.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        if !ranges.is_empty() && it.next_if_eq(&']').is_some() {
                            break;
                        }
                        let lo = class_char(&mut it).ok_or_else(bad)?;
                        let hi = if it.next_if_eq(&'-').is_some() {
                            class_char(&mut it).ok_or_else(bad)?
                        } else {
                            lo
                        };
                        ranges.push((lo, hi));
                    }
                    toks.push(GlobTok::Class { negated, ranges });
                }
                c => toks.push(GlobTok::Lit(c)),
            }
        }
        Ok(RefPattern(toks))
    }

    /// Does the whole of `s` match? Dynamic programming over (token, position): linear in
    /// both, whatever the number of stars.
    fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let n = s.len();
        // next[j]: do tokens i+1.. match s[j..]? cur[j]: do tokens i.. match s[j..]?
        let mut next = vec![false; n + 1];
        next[n] = true;
        for tok in self.0.iter().rev() {
            let mut cur = vec![false; n + 1];
            for j in (0..=n).rev() {
                let ch = s.get(j).copied();
                cur[j] = match tok {
                    GlobTok::Star => next[j] || ch.is_some_and(|c| c != '/') && cur[j + 1],
                    GlobTok::One => ch.is_some_and(|c| c != '/') && next[j + 1],
                    GlobTok::Lit(l) => ch == Some(*l) && next[j + 1],
                    GlobTok::Class { negated, ranges } => {
                        ch.is_some_and(|c| {
                            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
                        }) && next[j + 1]
                    }
                };
            }
            next = cur;
        }
        next[0]
    }

    /// dockerd's `FamiliarMatch` on one familiar reference string (a RepoTags or RepoDigests
    /// entry).
    fn matches_familiar(&self, r: &str) -> bool {
        self.matches(r) || self.matches(&familiar_repo(r))
    }
}

/// The repository of a familiar reference: `localhost:5000/app:1` -> `localhost:5000/app`,
/// `busybox@sha256:...` -> `busybox`.
fn familiar_repo(r: &str) -> String {
    if let Ok(p) = berth_image::Reference::parse_normalized(r) {
        return p.familiar_name();
    }
    let r = r.split_once('@').map_or(r, |x| x.0);
    match r.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name.to_string(),
        _ => r.to_string(),
    }
}

pub(crate) fn inspect(e: &Engine, name: &str) -> Result<Value> {
    let s = &e.inner.0;
    let r = s.images.inspect(name).map_err(|er| image_error(name, er))?;
    let mut v = serde_json::to_value(&r).map_err(|er| internal("encode image", er))?;
    v["Container"] = json!("");
    v["GraphDriver"] = json!({"Name": s.images.snapshotter_kind().to_string(), "Data": null});
    v["VirtualSize"] = v["Size"].clone();
    if v["Config"].is_null() {
        v["Config"] = json!({});
    }
    Ok(v)
}

pub(crate) fn history(e: &Engine, name: &str) -> Result<Value> {
    let s = &e.inner.0;
    let h = s.images.history(name).map_err(|er| image_error(name, er))?;
    serde_json::to_value(&h).map_err(|er| internal("encode history", er))
}

pub(crate) fn tag(e: &Engine, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
    let s = &e.inner.0;
    if repo.is_empty() {
        return Err(Error::BadParameter(
            "repository name must have at least one component".into(),
        ));
    }
    let target = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let _g = s.image_lock.lock();
    let rec = s.images.resolve(name).map_err(|er| image_error(name, er))?;
    s.images.tag(name, &target).map_err(|er| match er {
        berth_image::Error::InvalidReference { .. } => Error::BadParameter(er.to_string()),
        o => image_error(name, o),
    })?;
    image_event(e, "tag", &rec.id.to_string(), &target);
    Ok(())
}

/// Frees the blobs and unpacked layers no image, container or operation in flight needs any
/// more (called with the image lock held, after images went). Returns the bytes freed.
fn collect_garbage(s: &crate::shared::Shared) -> u64 {
    match s.images.gc(&[], &[]) {
        Ok(r) => r.bytes_freed,
        Err(er) => {
            // The images are gone either way; what stays is found by the next collection.
            tracing::warn!("image gc: {er}");
            0
        }
    }
}

pub(crate) fn remove(e: &Engine, name: &str, force: bool, noprune: bool) -> Result<Value> {
    let s = &e.inner.0;
    let _g = s.image_lock.lock();
    // A rootfs mounted ahead may stand on the layers about to go.
    crate::ready::drain_ready_rootfs(s);
    let used = in_use_ids(e);
    let in_use = |d: &berth_image::Digest| used.iter().any(|u| *u == d.to_string());
    let rep = s
        .images
        .delete(name, force, &in_use)
        .map_err(|er| image_error(name, er))?;
    let mut out = Vec::new();
    for u in &rep.untagged {
        out.push(json!({"Untagged": u}));
        image_event(e, "untag", u, u);
    }
    for d in &rep.deleted {
        out.push(json!({"Deleted": d}));
        image_event(e, "delete", d, d);
    }
    if !rep.deleted.is_empty() && !noprune {
        collect_garbage(s);
    }
    Ok(Value::Array(out))
}

pub(crate) fn prune(e: &Engine, filters: &Value) -> Result<Value> {
    let s = &e.inner.0;
    let f = Filters::parse(filters)?;
    f.validate(&["dangling", "until", "label", "label!"])?;
    let dangling_only = f
        .get("dangling")
        .first()
        .is_none_or(|d| matches!(d.as_str(), "true" | "1"));
    let until = match f.get("until").first() {
        Some(u) => Some(parse_time_arg(u)? as i64),
        None => None,
    };
    let used = in_use_ids(e);
    let list = s.images.list().map_err(|er| internal("list images", er))?;
    // A build's intermediate image with a child is not dangling (dockerd's rule).
    let parents = {
        let live = list.iter().map(|i| i.id.as_str()).collect();
        crate::build::parents_of(&s.cfg.root, &live)
    };
    let mut deleted = Vec::new();
    let mut space = 0;
    for im in list {
        if used.contains(&im.id)
            || (dangling_only && !im.repo_tags.is_empty())
            || (dangling_only && parents.contains(&im.id))
        {
            continue;
        }
        if !f.match_labels("label", &im.labels) || until.is_some_and(|u| im.created > u) {
            continue;
        }
        let _g = s.image_lock.lock();
        crate::ready::drain_ready_rootfs(s);
        if let Ok(rep) = s.images.delete(&im.id, true, &|_| false) {
            for u in rep.untagged {
                deleted.push(json!({"Untagged": u}));
            }
            for d in rep.deleted {
                image_event(e, "delete", &d, &d);
                deleted.push(json!({"Deleted": d}));
            }
        }
    }
    if !deleted.is_empty() {
        let _g = s.image_lock.lock();
        space = collect_garbage(s);
    }
    Ok(
        json!({"ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) }, "SpaceReclaimed": space}),
    )
}

pub(crate) fn load(
    e: &Engine,
    r: &mut (dyn Read + Send),
    quiet: bool,
    progress: Progress,
) -> Result<()> {
    let s = &e.inner.0;
    let sink = move |p: P| {
        if !quiet {
            if let Some(v) = progress_json(&p) {
                progress(v);
            }
        }
    };
    let loaded = s.images.load(r, &sink).map_err(|er| match er {
        berth_image::Error::InvalidImage { .. }
        | berth_image::Error::Json { .. }
        | berth_image::Error::UnsafeEntry { .. }
        | berth_image::Error::Unsupported(_) => Error::BadParameter(er.to_string()),
        o => Error::Internal(crate::Internal::cause(o)),
    })?;
    for im in loaded {
        if im.tags.is_empty() {
            progress(json!({"stream": format!("Loaded image ID: {}\n", im.id)}));
            image_event(e, "load", &im.id.to_string(), &im.id.to_string());
        }
        for t in &im.tags {
            progress(json!({"stream": format!("Loaded image: {t}\n")}));
            image_event(e, "load", &im.id.to_string(), t);
        }
    }
    Ok(())
}

pub(crate) fn save(e: &Engine, names: &[String], w: &mut dyn Write) -> Result<()> {
    let s = &e.inner.0;
    for n in names {
        s.images.resolve(n).map_err(|er| image_error(n, er))?;
    }
    let refs: Vec<&str> = names.iter().map(|x| x.as_str()).collect();
    s.images
        .save(&refs, w)
        .map_err(|er| internal("save images", er))?;
    for n in names {
        image_event(e, "save", n, n);
    }
    Ok(())
}

fn reg_opts(e: &Engine, auth: Option<&RegistryAuth>) -> berth_image::registry::RegistryOptions {
    let mut o = berth_image::registry::RegistryOptions {
        insecure_registries: e.inner.0.cfg.insecure_registries.clone(),
        ..Default::default()
    };
    if let Some(a) = auth {
        if !a.username.is_empty() {
            o.credentials = Some(berth_image::registry::Credentials {
                username: a.username.clone(),
                password: a.password.clone(),
            });
        }
    }
    o
}

fn reg_err(name: &str, er: berth_image::Error) -> Error {
    match er {
        berth_image::Error::ManifestUnknown { .. } => Error::NotFound(format!(
            "manifest for {name} not found: manifest unknown: manifest unknown"
        )),
        berth_image::Error::Unauthorized { .. } => Error::Forbidden(er.to_string()),
        berth_image::Error::InvalidReference { .. } => Error::BadParameter(er.to_string()),
        berth_image::Error::ImageNotFound(_) => Error::NotFound(format!(
            "An image does not exist locally with the tag: {name}"
        )),
        o => Error::Internal(crate::Internal::cause(o)),
    }
}

pub(crate) fn pull(
    e: &Engine,
    from: &str,
    tag: Option<&str>,
    platform: Option<&str>,
    auth: Option<&RegistryAuth>,
    progress: Progress,
) -> Result<()> {
    let s = &e.inner.0;
    let reference = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let r = berth_image::Reference::parse_with_default_tag(&reference)
        .map_err(|er| Error::BadParameter(er.to_string()))?;
    let plat = match platform.filter(|p| !p.is_empty()) {
        Some(p) => Some(
            berth_image::model::Platform::parse(p)
                .map_err(|er| Error::BadParameter(er.to_string()))?,
        ),
        None => None,
    };
    let fam = r.familiar_string();
    let before = s.images.resolve(&fam).ok().map(|x| x.id);
    let tag_or_digest = fam
        .rsplit_once([':', '@'])
        .map(|x| x.1.to_string())
        .unwrap_or_else(|| "latest".into());
    let repo_path = r.path().to_string();
    progress(json!({"status": format!("Pulling from {repo_path}"), "id": tag_or_digest}));
    let digest = std::sync::Mutex::new(None::<String>);
    let sink = |p: P| {
        if let P::Done {
            digest: Some(d), ..
        } = &p
        {
            if let Ok(mut g) = digest.lock() {
                *g = Some(d.to_string());
            }
        }
        if let Some(v) = progress_json(&p) {
            progress(v);
        }
    };
    let rec = s
        .images
        .pull(&reference, plat.as_ref(), &reg_opts(e, auth), &sink)
        .map_err(|er| reg_err(&fam, er))?;
    if let Some(d) = digest.lock().ok().and_then(|g| g.clone()) {
        progress(json!({"status": format!("Digest: {d}")}));
    }
    if before.as_ref() == Some(&rec.id) {
        progress(json!({"status": format!("Status: Image is up to date for {fam}")}));
    } else {
        progress(json!({"status": format!("Status: Downloaded newer image for {fam}")}));
    }
    image_event(e, "pull", &fam, &fam);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn import(
    e: &Engine,
    r: &mut (dyn Read + Send),
    repo: Option<&str>,
    tag: Option<&str>,
    changes: &[String],
    message: Option<&str>,
    platform: Option<&str>,
    progress: Progress,
) -> Result<()> {
    let s = &e.inner.0;
    let name = match (
        repo.filter(|x| !x.is_empty()),
        tag.filter(|x| !x.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        _ => None,
    };
    let plat = match platform.filter(|p| !p.is_empty()) {
        Some(p) => Some(
            berth_image::model::Platform::parse(p)
                .map_err(|er| Error::BadParameter(er.to_string()))?,
        ),
        None => None,
    };
    let rec = s
        .images
        .import(r, name.as_deref(), changes, message, plat.as_ref())
        .map_err(|er| match er {
            berth_image::Error::InvalidReference { .. }
            | berth_image::Error::UnsafeEntry { .. }
            | berth_image::Error::InvalidImage { .. } => Error::BadParameter(er.to_string()),
            o => Error::Internal(crate::Internal::cause(o)),
        })?;
    progress(json!({"status": rec.id.to_string()}));
    image_event(
        e,
        "import",
        &rec.id.to_string(),
        name.as_deref().unwrap_or(""),
    );
    Ok(())
}

pub(crate) fn push(
    e: &Engine,
    name: &str,
    tag: Option<&str>,
    auth: Option<&RegistryAuth>,
    progress: Progress,
) -> Result<()> {
    let s = &e.inner.0;
    let full = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let r = berth_image::Reference::parse_with_default_tag(&full)
        .map_err(|er| Error::BadParameter(er.to_string()))?;
    let fam = r.familiar_string();
    s.images.resolve(&fam).map_err(|_| {
        Error::NotFound(format!(
            "An image does not exist locally with the tag: {name}"
        ))
    })?;
    let tag_s = fam
        .rsplit_once(':')
        .map(|x| x.1.to_string())
        .unwrap_or_else(|| "latest".into());
    progress(
        json!({"status": format!("The push refers to repository [{}]", r.to_string().rsplit_once(':').map(|x| x.0.to_string()).unwrap_or_default())}),
    );
    let sink = |p: P| {
        if let Some(v) = progress_json(&p) {
            progress(v);
        }
    };
    let d = s
        .images
        .push(&fam, &reg_opts(e, auth), &sink)
        .map_err(|er| reg_err(&fam, er))?;
    let size = s.images.content.size(&d).unwrap_or(0);
    progress(json!({"status": format!("{tag_s}: digest: {d} size: {size}")}));
    progress(
        json!({"progressDetail": {}, "aux": {"Tag": tag_s, "Digest": d.to_string(), "Size": size}}),
    );
    image_event(e, "push", &fam, &fam);
    Ok(())
}

/// Options of `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Repository (without tag); empty = untagged image.
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Dockerfile instructions (`--change`): CMD ENTRYPOINT ENV WORKDIR USER EXPOSE LABEL ...
    pub changes: Vec<String>,
    /// The request body (a container Config): fields set here override the container's.
    pub config: Value,
}

pub(crate) fn commit(e: &Engine, container: &str, o: &CommitOptions) -> Result<Value> {
    let s = &e.inner.0;
    let (id, _op) = s.containers.find(container)?;
    let rec = s.containers.record(&id)?;
    let target = match (
        o.repo.as_deref().filter(|r| !r.is_empty()),
        o.tag.as_deref().filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        (None, Some(_)) => {
            return Err(Error::BadParameter(
                "commit: a tag was given without a repository".into(),
            ))
        }
        (None, None) => None,
    };
    if let Some(t) = &target {
        // Reject a bad name before any layer is packed.
        berth_image::Reference::parse_with_default_tag(t)
            .map_err(|er| Error::BadParameter(format!("commit: {er}")))?;
    }
    // The body is a Config: typed as create's (a wrongly typed field is a 400 naming it).
    if o.config.is_object() {
        crate::model::decode::<crate::model::Config>("", &o.config)?;
    } else if !o.config.is_null() {
        return Err(Error::BadParameter(
            "commit: invalid container config: expected a JSON object".into(),
        ));
    }
    // The new image's config: the container's Config (what Docker commits), with the
    // request body's fields on top, then the --change instructions.
    let mut merged = match serde_json::to_value(&rec.config) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    if let Value::Object(m) = &o.config {
        for (k, v) in m {
            let empty = v.is_null()
                || v.as_str() == Some("")
                || v.as_array().is_some_and(|a| a.is_empty())
                || v.as_object().is_some_and(|a| a.is_empty());
            if !empty {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let mut cc: berth_image::model::ContainerConfig = serde_json::from_value(Value::Object(merged))
        .map_err(|er| Error::BadParameter(format!("commit: invalid container config: {er}")))?;
    for c in &o.changes {
        berth_image::archive::apply_change(&mut cc, c)
            .map_err(|er| Error::BadParameter(format!("commit: {er}")))?;
    }
    let _g = s.image_lock.lock();
    let parent = s
        .images
        .resolve(&rec.image_id)
        .map_err(|er| image_error(&rec.image_id, er))?;
    let mut cfg = s
        .images
        .config_of(&parent)
        .map_err(|er| internal("read the parent image config", er))?;
    cfg.config = Some(cc);
    cfg.author = o.author.clone().filter(|a| !a.is_empty());
    cfg.comment = o.comment.clone().filter(|c| !c.is_empty());
    let created_by = std::iter::once(rec.path.as_str())
        .chain(rec.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let img = s
        .images
        .commit(
            &id,
            Some(&rec.image_id),
            cfg,
            &created_by,
            target.as_deref(),
        )
        .map_err(|er| match er {
            berth_image::Error::InvalidReference { .. } => Error::BadParameter(er.to_string()),
            o => internal(format!("commit container {id}"), o),
        })?;
    let img_id = img.id.to_string();
    s.event(
        &rec,
        "commit",
        &[("comment", o.comment.clone().unwrap_or_default())],
    );
    if let Some(t) = &target {
        image_event(e, "tag", &img_id, t);
    }
    Ok(json!({"Id": img_id}))
}

/// An image store error as the API reports it (a missing image named as Docker names it).
pub(crate) fn image_error(name: &str, e: berth_image::Error) -> Error {
    match e {
        berth_image::Error::ImageNotFound(_) => {
            Error::NotFound(format!("No such image: {}", normalize_ref(name)))
        }
        berth_image::Error::InvalidReference { .. } => Error::BadParameter(e.to_string()),
        berth_image::Error::Conflict(m) => Error::Conflict(m),
        o => Error::Internal(crate::Internal::cause(o)),
    }
}
fn normalize_ref(name: &str) -> String {
    if name.starts_with("sha256:") || name.contains('@') {
        return name.to_string();
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, r: &str) -> bool {
        RefPattern::parse(pat).unwrap().matches_familiar(r)
    }

    #[test]
    fn reference_patterns_match_as_dockerd_does() {
        // A repository alone matches all its tags and digests, and only its own.
        assert!(m("busybox", "busybox:latest"));
        assert!(m("busybox", "busybox:1.36"));
        assert!(m("busybox", "busybox@sha256:0123"));
        assert!(!m("busybox", "other:latest"));
        assert!(!m("busybox", "busybox2:latest"));
        assert!(!m("busybox", "library/busybox-x:1"));
        // repo:tag is exact.
        assert!(m("busybox:1.36", "busybox:1.36"));
        assert!(!m("busybox:1.36", "busybox:latest"));
        assert!(!m("busybox:latest", "busybox@sha256:0123"));
        // Registries with ports.
        assert!(m("localhost:5000/app", "localhost:5000/app:1"));
        assert!(m("localhost:5000/app:1", "localhost:5000/app:1"));
        assert!(!m("localhost:5000/app", "localhost:5000/app2:1"));
        // Wildcards never cross a '/'.
        assert!(m("*", "busybox:latest"));
        assert!(!m("*", "me/app:latest"));
        assert!(m("*/*", "me/app:latest"));
        assert!(m("*:latest", "busybox:latest"));
        assert!(!m("*:latest", "busybox:1"));
        assert!(m("busy*", "busybox:1"));
        assert!(m("busybox:1.*", "busybox:1.36"));
        assert!(m("b?sybox", "busybox:1"));
        assert!(!m("b?sybox", "bsybox:1"));
        assert!(m("me/a[pq]p", "me/app:2"));
        assert!(m("me/a[^q]p", "me/app:2"));
        assert!(!m("me/a[^p]p", "me/app:2"));
        assert!(m("me/a[a-z]p:[0-9]", "me/app:2"));
        assert!(m("busybox\\:1", "busybox:1"));
        // Many stars stay cheap.
        let long = format!("{}:latest", "a".repeat(200));
        assert!(!m(&"*a".repeat(60).replace("*a*a", "*a*b"), &long));
        // Malformed patterns are refused, as Go's path.Match refuses them.
        for bad in ["[", "[]", "a[-z]", "ab\\", "[a-]", "[^"] {
            assert!(RefPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
