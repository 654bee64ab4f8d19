//! Docker's `User` resolved against the image's /etc/passwd and /etc/group.
use crate::util::read_in_root;
use crate::{Error, Result};
use std::path::Path;

pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional: Vec<u32>,
    pub home: String,
}

/// Resolve Docker's `User` ("name", "uid", "name:group", "uid:gid") against the rootfs's
/// /etc/passwd and /etc/group, read inside the rootfs.
pub(crate) fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<User> {
    let passwd = read_text(rootfs, "/etc/passwd")?;
    let group = read_text(rootfs, "/etc/group")?;
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let pw = entries(&passwd, 7);
    let gr = entries(&group, 3);
    let (mut out, name) = user_entry(&pw, u)?;
    if let Some(g) = g {
        if let Ok(n) = g.parse::<u32>() {
            out.gid = n;
        } else {
            let e = gr.iter().find(|e| e[0] == g).ok_or_else(|| {
                Error::BadParameter(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?;
            out.gid = e[2].parse().unwrap_or(0);
        }
    }
    if !name.is_empty() {
        for e in &gr {
            if e.len() >= 4 && e[3].split(',').any(|m| m == name) {
                if let Ok(n) = e[2].parse::<u32>() {
                    if n != out.gid && !out.additional.contains(&n) {
                        out.additional.push(n);
                    }
                }
            }
        }
    }
    for ga in group_add {
        let n = match ga.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr
                .iter()
                .find(|e| e[0] == ga)
                .and_then(|e| e[2].parse().ok())
                .ok_or_else(|| {
                    Error::BadParameter(format!(
                        "unable to find group {ga}: no matching entries in group file"
                    ))
                })?,
        };
        if !out.additional.contains(&n) {
            out.additional.push(n);
        }
    }
    Ok(out)
}

fn read_text(rootfs: &Path, path: &str) -> Result<String> {
    Ok(read_in_root(rootfs, Path::new(path))?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

/// The entries of a passwd or group file with at least `fields` fields.
fn entries(text: &str, fields: usize) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= fields)
        .collect()
}

/// The user part of `User` ("" = root, a uid, or a name) against passwd: the user (with its
/// primary group and home) and its name, if passwd has it.
fn user_entry(pw: &[Vec<&str>], u: &str) -> Result<(User, String)> {
    let mut out = User {
        uid: 0,
        gid: 0,
        additional: vec![],
        home: "/".into(),
    };
    let mut name = String::new();
    if u.is_empty() {
        if let Some(e) = pw.iter().find(|e| e[2] == "0") {
            out.home = e[5].to_string();
            name = e[0].to_string();
        }
    } else if let Ok(n) = u.parse::<u32>() {
        out.uid = n;
        if let Some(e) = pw.iter().find(|e| e[2].parse::<u32>().ok() == Some(n)) {
            out.gid = e[3].parse().unwrap_or(0);
            out.home = e[5].to_string();
            name = e[0].to_string();
        }
    } else {
        let e = pw.iter().find(|e| e[0] == u).ok_or_else(|| {
            Error::BadParameter(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?;
        out.uid = e[2]
            .parse()
            .map_err(|_| Error::BadParameter(format!("invalid uid for user {u} in /etc/passwd")))?;
        out.gid = e[3].parse().unwrap_or(0);
        out.home = e[5].to_string();
        name = u.to_string();
    }
    Ok((out, name))
}
