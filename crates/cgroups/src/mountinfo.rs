//! Discovery of cgroup hierarchies from /proc/self/mountinfo and of our own cgroup from
//! /proc/self/cgroup.

use std::path::{Path, PathBuf};

use crate::{fsutil, Error, Result};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The cgroup inside the hierarchy that is the mount's root (field 4 of mountinfo).
    pub root: String,
    /// v1: the controllers bound to it (e.g. ["cpu", "cpuacct"] or ["name=systemd"]); empty for v2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// Undo the octal escapes mountinfo uses for space, tab, newline and backslash.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let lf: Vec<&str> = left.split(' ').collect();
        let rf: Vec<&str> = right.split(' ').collect();
        if lf.len() < 5 || rf.len() < 3 {
            continue;
        }
        let fstype = rf[0];
        let (v2, controllers) = match fstype {
            "cgroup2" => (true, Vec::new()),
            "cgroup" => {
                let ctrls: Vec<String> = rf[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        ) && !o.starts_with("release_agent=")
                            && *o != "clone_children"
                            && *o != "xattr"
                            && *o != "noprefix"
                            && *o != "cpuset_v2_mode"
                    })
                    .map(str::to_string)
                    .collect();
                if ctrls.is_empty() {
                    continue;
                }
                (false, ctrls)
            }
            _ => continue,
        };
        mounts.push(CgroupMount {
            mountpoint: PathBuf::from(unescape(lf[4])),
            root: unescape(lf[3]),
            controllers,
            v2,
        });
    }
    // If a hierarchy is mounted twice keep the first mount.
    let mut seen: Vec<CgroupMount> = Vec::new();
    for m in mounts {
        if !seen
            .iter()
            .any(|s| s.v2 == m.v2 && s.controllers == m.controllers)
        {
            seen.push(m);
        }
    }
    seen
}

pub(crate) fn cgroup_mounts() -> Result<Vec<CgroupMount>> {
    let text = fsutil::read(Path::new("/proc/self/mountinfo"))?;
    Ok(parse_mountinfo(&text))
}

/// One line of /proc/self/cgroup: hierarchy id, controllers, path.
#[derive(Debug, Clone)]
pub(crate) struct OwnCgroup {
    pub controllers: Vec<String>,
    pub path: String,
    pub v2: bool,
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some(OwnCgroup {
                v2: id == "0" && ctrls.is_empty(),
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

pub(crate) fn own_cgroups() -> Result<Vec<OwnCgroup>> {
    let text = fsutil::read(Path::new("/proc/self/cgroup"))?;
    Ok(parse_proc_cgroup(&text))
}

/// The directory of our own cgroup in `mount` (for relative cgroupsPath, as runc's cgroupfs
/// driver does).
pub(crate) fn own_dir(mount: &CgroupMount, own: &[OwnCgroup]) -> Result<PathBuf> {
    let entry = own
        .iter()
        .find(|o| {
            if mount.v2 {
                o.v2
            } else {
                let mut a = o.controllers.clone();
                let mut b = mount.controllers.clone();
                a.sort();
                b.sort();
                a == b
            }
        })
        .ok_or_else(|| Error::Parse {
            path: PathBuf::from("/proc/self/cgroup"),
            reason: format!(
                "no entry for the hierarchy mounted at {}",
                mount.mountpoint.display()
            ),
        })?;
    // The path is relative to the hierarchy's root; the mount shows the subtree at `root`.
    let rel = if mount.root == "/" {
        entry.path.as_str()
    } else {
        entry
            .path
            .strip_prefix(mount.root.as_str())
            .unwrap_or(entry.path.as_str())
    };
    Ok(mount.mountpoint.join(rel.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_hybrid() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[0].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[2].controllers, vec!["name=systemd"]);
        assert!(m[3].v2);
    }

    #[test]
    fn own_dir_strips_mount_root() {
        let m = CgroupMount {
            mountpoint: "/sys/fs/cgroup/memory".into(),
            root: "/docker/abc".into(),
            controllers: vec!["memory".into()],
            v2: false,
        };
        let own = parse_proc_cgroup("4:memory:/docker/abc/sub\n0::/x\n");
        assert_eq!(
            own_dir(&m, &own).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/sub")
        );
    }

    #[test]
    fn unescapes_spaces() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
