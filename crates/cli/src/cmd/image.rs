//! Image commands: images, pull, push, load, save, import, tag, rmi, history, image prune.

use crate::args::Matches;
use crate::client::filters_json;
use crate::cmd::auth::registry_auth_header;
use crate::http::{enc, Body};
use crate::output::{self, image_rows, images_header, short_id, split_repo_tag};
use crate::progress::{self, Mode};
use crate::units::{human_duration, human_size_prec, now};
use crate::{fail, CmdResult, Ctx};
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{Read, Write};

/// Splits a reference into (repository, tag or digest param) for /images/create.
pub fn pull_params(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let (repo, tag) = split_repo_tag(image);
    (repo.to_string(), tag.to_string())
}

/// `linux/arm64/v8` -> the OCI platform JSON the API takes for push/load/save.
pub fn platform_json(p: &str) -> String {
    let mut it = p.split('/');
    let os = it.next().unwrap_or("");
    let arch = it.next().unwrap_or("");
    let mut v = serde_json::json!({"os": os, "architecture": arch});
    if let Some(var) = it.next() {
        v["variant"] = serde_json::json!(var);
    }
    v.to_string()
}

/// docker's normalized name: `busybox` -> `docker.io/library/busybox`.
pub fn normalize_name(repo: &str) -> String {
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    }
}

/// Registry host of a repository name (`docker.io` when none).
pub fn registry_of(repo: &str) -> String {
    let n = normalize_name(repo);
    n.split('/').next().unwrap_or("docker.io").to_string()
}

fn mode(quiet: bool, to_stderr: bool) -> Mode {
    let fd = if to_stderr { 2 } else { 1 };
    if quiet {
        Mode::Quiet
    } else if crate::term::is_tty(fd) {
        Mode::Bars
    } else {
        Mode::Plain
    }
}

/// POST /images/create with progress; returns the full reference pulled.
pub fn pull_image(
    ctx: &Ctx,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<String> {
    pull_image_tags(ctx, image, platform, quiet, to_stderr, false)
}

/// Like [`pull_image`]; with `all_tags` every tag of the repository is pulled.
pub fn pull_image_tags(
    ctx: &Ctx,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
    all_tags: bool,
) -> Result<String> {
    let (repo, tag) = pull_params(image);
    let mut q = if all_tags {
        format!("/images/create?fromImage={}", enc(&repo))
    } else {
        format!("/images/create?fromImage={}&tag={}", enc(&repo), enc(&tag))
    };
    if let Some(p) = platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let auth = registry_auth_header(ctx, &registry_of(&repo));
    let resp = ctx
        .client
        .send("POST", &q, &[("X-Registry-Auth", auth)], Body::None)?;
    let out =
        progress::render(resp, mode(quiet, to_stderr), to_stderr).context("read pull progress")?;
    if let Some(e) = out.error {
        return Err(fail(
            if to_stderr { 125 } else { 1 },
            if to_stderr { format!("berth: {e}") } else { e },
        ));
    }
    if all_tags {
        return Ok(normalize_name(&repo));
    }
    let sep = if tag.starts_with("sha256:") { "@" } else { ":" };
    Ok(format!("{}{sep}{tag}", normalize_name(&repo)))
}

pub fn pull(ctx: &Ctx, m: &Matches) -> CmdResult {
    let image = &m.args[0];
    if m.flag("all-tags") {
        if image.contains(':') && !image.rsplit('/').next().unwrap_or("").contains(':') {
            // a registry port, fine
        } else if image.rsplit('/').next().unwrap_or("").contains(':') {
            return Err(fail(1, "tag can't be used with --all-tags/-a"));
        }
    }
    let r = pull_image_tags(
        ctx,
        image,
        m.value("platform"),
        m.flag("quiet"),
        false,
        m.flag("all-tags"),
    )?;
    println!("{r}");
    Ok(0)
}

pub fn push(ctx: &Ctx, m: &Matches) -> CmdResult {
    let image = &m.args[0];
    let (repo, tag) = split_repo_tag(image);
    let mut q = format!("/images/{}/push", enc(repo));
    let mut params = Vec::new();
    if !m.flag("all-tags") {
        params.push(format!("tag={}", enc(tag)));
    }
    if let Some(p) = m.value("platform") {
        params.push(format!("platform={}", enc(&platform_json(p))));
    }
    if !params.is_empty() {
        q.push_str(&format!("?{}", params.join("&")));
    }
    let auth = registry_auth_header(ctx, &registry_of(repo));
    let resp = ctx
        .client
        .send("POST", &q, &[("X-Registry-Auth", auth)], Body::None)?;
    let out = progress::render(resp, mode(m.flag("quiet"), false), false)
        .context("read push progress")?;
    if let Some(e) = out.error {
        return Err(fail(1, e));
    }
    if m.flag("quiet") {
        println!("{image}");
    }
    Ok(0)
}

pub fn images(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut q = format!("/images/json?all={}", m.flag("all") as u8);
    if m.flag("digests") {
        q.push_str("&digests=1");
    }
    let mut filters = m.values("filter");
    if let Some(r) = m.args.first() {
        filters.push(format!("reference={r}"));
    }
    if let Some(f) = filters_json(&filters).map_err(|e| fail(125, e))? {
        q.push_str(&format!("&filters={}", enc(&f)));
    }
    let list = ctx.client.get_json(&q)?;
    let mut imgs: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    imgs.sort_by_key(|i| std::cmp::Reverse(i.get("Created").and_then(Value::as_i64).unwrap_or(0)));
    let trunc = !m.flag("no-trunc");
    let mut rows = Vec::new();
    for i in &imgs {
        rows.extend(image_rows(i, trunc, None));
    }
    if m.flag("quiet") {
        // docker prints one ID per listed row: an image with two tags shows twice
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let def = if m.flag("digests") {
        output::IMAGES_TABLE_DIGESTS
    } else {
        output::IMAGES_TABLE
    };
    let s =
        output::render(m.value("format"), def, &images_header(), &rows).map_err(|e| fail(1, e))?;
    print!("{s}");
    Ok(0)
}

pub fn load(ctx: &Ctx, m: &Matches) -> CmdResult {
    // like docker: no progress stream unless stdout is a terminal
    let quiet = m.flag("quiet") || !crate::term::is_tty(1);
    let mut input: Box<dyn Read> = match m.value("input") {
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| format!("open {p}"))?),
        None => {
            if crate::term::is_tty(0) {
                return Err(fail(1, "requested load from stdin, but stdin is empty"));
            }
            Box::new(std::io::stdin())
        }
    };
    let mut q = format!("/images/load?quiet={}", quiet as u8);
    for p in m.values("platform") {
        q.push_str(&format!("&platform={}", enc(&platform_json(&p))));
    }
    let resp = ctx.client.send(
        "POST",
        &q,
        &[],
        Body::Stream(&mut input, "application/x-tar"),
    )?;
    let is_json = resp
        .header("Content-Type")
        .is_some_and(|c| c.contains("json"));
    if !is_json {
        let b = resp.bytes().context("read load response")?;
        std::io::stdout().write_all(&b)?;
        return Ok(0);
    }
    let md = if quiet {
        Mode::Plain
    } else {
        mode(false, false)
    };
    let out = progress::render(resp, md, false).context("read load output")?;
    if let Some(e) = out.error {
        return Err(fail(1, e));
    }
    Ok(0)
}

/// How -o FILE is written: atomically (temp file in the same directory, fsync, rename; no
/// fsync of the directory).
const SAVE_FILE: berth_fsutil::AtomicFile = berth_fsutil::AtomicFile::new().sync_dir(false);

/// Streams a tar to -o FILE or stdout (refusing a terminal, like docker).
pub fn tar_out(mut resp: crate::http::Response, output: Option<&str>, what: &str) -> CmdResult {
    match output {
        Some(p) if crate::term::is_tty(2) => {
            let pb = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} Writing {msg}: {bytes} ({bytes_per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb.set_message(p.to_string());
            let mut r = pb.wrap_read(&mut resp);
            SAVE_FILE
                .write_from(std::path::Path::new(p), &mut r)
                .with_context(|| format!("failed to save {what}"))?;
            pb.finish();
        }
        Some(p) => {
            SAVE_FILE
                .write_from(std::path::Path::new(p), &mut resp)
                .with_context(|| format!("failed to save {what}"))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut resp, &mut out).context("write tar to stdout")?;
            out.flush()?;
        }
    }
    Ok(0)
}

pub fn save(ctx: &Ctx, m: &Matches) -> CmdResult {
    let output = m.value("output");
    if output.is_none() && crate::term::is_tty(1) {
        return Err(fail(
            1,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q: Vec<String> = m.args.iter().map(|n| format!("names={}", enc(n))).collect();
    for p in m.values("platform") {
        q.push(format!("platform={}", enc(&platform_json(&p))));
    }
    let resp = ctx.client.get(&format!("/images/get?{}", q.join("&")))?;
    tar_out(resp, output, "image")
}

pub fn import(ctx: &Ctx, m: &Matches) -> CmdResult {
    let src = &m.args[0];
    let mut q = String::from("/images/create?");
    let mut params = Vec::new();
    if let Some(r) = m.args.get(1) {
        let (repo, tag) = split_repo_tag(r);
        params.push(format!("repo={}", enc(repo)));
        params.push(format!("tag={}", enc(tag)));
    }
    if let Some(msg) = m.value("message") {
        params.push(format!("message={}", enc(msg)));
    }
    for c in m.values("change") {
        params.push(format!("changes={}", enc(&c)));
    }
    if let Some(p) = m.value("platform") {
        params.push(format!("platform={}", enc(p)));
    }
    let resp = if src.starts_with("http://") || src.starts_with("https://") {
        params.push(format!("fromSrc={}", enc(src)));
        q.push_str(&params.join("&"));
        ctx.client.send("POST", &q, &[], Body::None)?
    } else {
        params.push("fromSrc=-".into());
        q.push_str(&params.join("&"));
        let mut input: Box<dyn Read> = if src == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(src).with_context(|| format!("open {src}"))?)
        };
        ctx.client.send(
            "POST",
            &q,
            &[],
            Body::Stream(&mut input, "application/x-tar"),
        )?
    };
    let out = progress::render(resp, Mode::Quiet, false)?;
    if let Some(e) = out.error {
        return Err(fail(1, e));
    }
    println!("{}", out.last_status.unwrap_or_default());
    Ok(0)
}

pub fn tag(ctx: &Ctx, m: &Matches) -> CmdResult {
    let (repo, tag) = split_repo_tag(&m.args[1]);
    ctx.client.post_ok(
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            enc(&m.args[0]),
            enc(repo),
            enc(tag)
        ),
        None,
    )?;
    Ok(0)
}

pub fn rmi(ctx: &Ctx, m: &Matches) -> CmdResult {
    let mut failed = Vec::new();
    for img in &m.args {
        let q = format!(
            "/images/{}?force={}&noprune={}",
            enc(img),
            m.flag("force") as u8,
            m.flag("no-prune") as u8
        );
        match ctx.client.delete(&q).and_then(crate::client::read_json) {
            Ok(v) => {
                for item in v.as_array().cloned().unwrap_or_default() {
                    if let Some(u) = item.get("Untagged").and_then(Value::as_str) {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item.get("Deleted").and_then(Value::as_str) {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    crate::cmd::run::finish_multi(failed)
}

pub fn history(ctx: &Ctx, m: &Matches) -> CmdResult {
    let v = ctx
        .client
        .get_json(&format!("/images/{}/history", enc(&m.args[0])))?;
    let trunc = !m.flag("no-trunc");
    let human = m.flag("human");
    let items = v.as_array().cloned().unwrap_or_default();
    if m.flag("quiet") {
        for h in &items {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("<missing>");
            println!(
                "{}",
                if trunc && id != "<missing>" {
                    short_id(id)
                } else {
                    id.to_string()
                }
            );
        }
        return Ok(0);
    }
    let mut rows = Vec::new();
    for h in &items {
        let id = h.get("Id").and_then(Value::as_str).unwrap_or("<missing>");
        let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let by = h
            .get("CreatedBy")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\t', " ");
        let size = h.get("Size").and_then(Value::as_i64).unwrap_or(0);
        rows.push(serde_json::json!({
            "ID": if trunc && id != "<missing>" { short_id(id) } else { id.to_string() },
            "CreatedSince": if human { format!("{} ago", human_duration(now() - created as f64)) } else { crate::units::format_rfc3339(created) },
            "CreatedAt": crate::units::format_rfc3339(created),
            "CreatedBy": if trunc { output::ellipsis(&by, 45) } else { by },
            "Size": if human { human_size_prec(size as f64, 3) } else { size.to_string() },
            "Comment": h.get("Comment").and_then(Value::as_str).unwrap_or(""),
        }));
    }
    let header = serde_json::json!({"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    let s = output::render(
        m.value("format"),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &header,
        &rows,
    )
    .map_err(|e| fail(1, e))?;
    print!("{s}");
    Ok(0)
}

/// Asks for confirmation on stdin (`[y/N]`); non-interactive stdin answers no.
pub fn confirm(msg: &str) -> bool {
    print!("{msg}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

pub fn image_prune(ctx: &Ctx, m: &Matches) -> CmdResult {
    let all = m.flag("all");
    let warn = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !m.flag("force") && !confirm(warn) {
        return Ok(0);
    }
    let (n, space) = prune_images(ctx, all, &m.values("filter"))?;
    let _ = n;
    println!(
        "Total reclaimed space: {}",
        human_size_prec(space as f64, 3)
    );
    Ok(0)
}

/// POST /images/prune; prints deleted items; returns (count, bytes reclaimed).
pub fn prune_images(ctx: &Ctx, all: bool, filters: &[String]) -> Result<(usize, i64)> {
    let mut f = filters.to_vec();
    f.push(format!("dangling={}", !all));
    let fj = filters_json(&f)
        .map_err(|e| fail(125, e))?
        .unwrap_or_default();
    let v = ctx
        .client
        .post_json(&format!("/images/prune?filters={}", enc(&fj)), None)?;
    let items = v
        .get("ImagesDeleted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in &items {
            if let Some(u) = i.get("Untagged").and_then(Value::as_str) {
                println!("untagged: {u}");
            }
            if let Some(d) = i.get("Deleted").and_then(Value::as_str) {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    Ok((
        items.len(),
        v.get("SpaceReclaimed").and_then(Value::as_i64).unwrap_or(0),
    ))
}
