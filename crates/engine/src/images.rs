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

pub(crate) fn list(e: &Engine, _all: bool, filters: &Value) -> Result<Vec<Value>> {
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
    let mut out = Vec::new();
    for im in list {
        let dangling = im.repo_tags.is_empty();
        if let Some(d) = f.get("dangling").first() {
            let want = matches!(d.as_str(), "true" | "1");
            if want != dangling {
                continue;
            }
        }
        if !f.match_labels("label", &im.labels) {
            continue;
        }
        if f.has("reference")
            && !f
                .get("reference")
                .iter()
                .any(|p| im.repo_tags.iter().any(|t| ref_match(p, t)))
        {
            continue;
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

/// Docker's reference filter: a glob on "name:tag" or on the name alone.
fn ref_match(pat: &str, tag: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..]))
            }
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let name = tag.rsplit_once(':').map(|x| x.0).unwrap_or(tag);
    glob(pat.as_bytes(), tag.as_bytes()) || glob(pat.as_bytes(), name.as_bytes())
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

pub(crate) fn remove(e: &Engine, name: &str, force: bool, _noprune: bool) -> Result<Value> {
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
    let mut deleted = Vec::new();
    let mut space = 0u64;
    for im in list {
        if used.contains(&im.id) || (dangling_only && !im.repo_tags.is_empty()) {
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
            space += im.size;
        }
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
        o => Error::Internal(o.to_string()),
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
        o => Error::Internal(o.to_string()),
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
            o => Error::Internal(o.to_string()),
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
        o => Error::Internal(o.to_string()),
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
