//! The `process` section: command, environment, user, working directory, capabilities,
//! rlimits.
use super::security::{oci_capabilities, process_rlimits};
use super::user::{resolve_user, User};
use super::{SpecInput, DEFAULT_PATH};
use crate::{Error, Result};
use oci_spec::runtime::Process;
use std::path::Path;

/// Entrypoint + Cmd, behind the init when `Init` asks for one.
fn args(inp: &SpecInput) -> Result<Vec<String>> {
    let c = inp.config;
    let mut args: Vec<String> = c.entrypoint.list().to_vec();
    args.extend(c.cmd.list().iter().cloned());
    if args.is_empty() {
        return Err(Error::BadParameter("no command specified".into()));
    }
    if inp.host.init.val() {
        if inp.init_path.is_none() {
            return Err(Error::Internal(
                "--init: the berth init binary was not found".into(),
            ));
        }
        let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        a.extend(args);
        args = a;
    }
    Ok(args)
}

/// Env with HOSTNAME, TERM (with a TTY), PATH and HOME unless it sets them.
fn env(inp: &SpecInput, user: &User) -> Vec<String> {
    let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(k));
    let mut env = inp.config.env.list().to_vec();
    if !has(&env, "HOSTNAME=") {
        env.push(format!("HOSTNAME={}", inp.hostname));
    }
    if inp.config.tty.val() && !has(&env, "TERM=") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "PATH=") {
        env.insert(0, DEFAULT_PATH.into());
    }
    if !has(&env, "HOME=") {
        let home = if user.home.is_empty() {
            "/"
        } else {
            &user.home
        };
        env.push(format!("HOME={home}"));
    }
    env
}

/// `WorkingDir` (absolute; "/" when empty), made in the rootfs when missing.
fn cwd(inp: &SpecInput) -> Result<String> {
    let cwd = match inp.config.working_dir.str() {
        "" => "/".to_string(),
        w if w.starts_with('/') => w.to_string(),
        w => {
            return Err(Error::BadParameter(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )))
        }
    };
    refuse_proc_cwd(&cwd)?;
    // (A component that is a file, say: the user's path cannot be a directory.)
    crate::util::mkdir_all_in_root(inp.rootfs, Path::new(&cwd), 0o755).map_err(|e| match e {
        Error::Internal(_) | Error::BadParameter(_) => Error::BadParameter(format!(
            "the working directory '{cwd}' cannot be made in the container: {e}"
        )),
        e => e,
    })?;
    Ok(cwd)
}

/// A working directory below /proc is refused: it would be made in the image's mount point of
/// the container's procfs (where nothing can be made), and `/proc/self/fd/N` names a
/// descriptor of the runtime (CVE-2024-21626). `/proc` itself is a directory like another.
fn refuse_proc_cwd(cwd: &str) -> Result<()> {
    let mut parts = Path::new(cwd)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)));
    if parts.next().is_some_and(|c| c.as_os_str() == "proc") && parts.next().is_some() {
        return Err(Error::BadParameter(format!(
            "the working directory '{cwd}' is refused: it is below /proc, the container's \
             process information file system"
        )));
    }
    Ok(())
}

fn oci_user(u: &User) -> oci_spec::runtime::User {
    let mut o = oci_spec::runtime::User::default();
    o.set_uid(u.uid)
        .set_gid(u.gid)
        .set_umask(None)
        .set_username(None);
    o.set_additional_gids((!u.additional.is_empty()).then(|| u.additional.clone()));
    o
}

pub(super) fn process(
    inp: &SpecInput,
    caps: &[String],
    no_new_privileges: bool,
) -> Result<Process> {
    let args = args(inp)?;
    let user = resolve_user(inp.rootfs, inp.config.user.str(), inp.host.group_add.list())?;
    let env = env(inp, &user);
    let cwd = cwd(inp)?;
    let oom = match inp.host.oom_score_adj.val() {
        0 => None,
        v => Some(i32::try_from(v).map_err(|_| {
            Error::BadParameter(format!("invalid OomScoreAdj: {v} is out of range"))
        })?),
    };
    let mut p = Process::default();
    p.set_terminal(Some(inp.config.tty.val()))
        .set_console_size(None)
        .set_user(oci_user(&user))
        .set_args(Some(args))
        .set_env(Some(env))
        .set_cwd(cwd.into())
        .set_capabilities(Some(oci_capabilities(caps)?))
        .set_rlimits(Some(process_rlimits(inp.host)?))
        .set_no_new_privileges(Some(no_new_privileges))
        .set_apparmor_profile(None)
        .set_oom_score_adj(oom)
        .set_selinux_label(None);
    Ok(p)
}
