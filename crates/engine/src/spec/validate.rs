//! Checks of a HostConfig at create and update: what the user can fix gets a 400 then, not
//! an error at start. (The mounts are checked as they are resolved: `model::mounts`.)
use super::net_mode;
use super::security::{capabilities, rlimits};
use super::values;
use crate::model::HostConfig;
use crate::{Error, Result};

fn bad(msg: impl Into<String>) -> Error {
    Error::BadParameter(msg.into())
}

fn security_opts(host: &HostConfig) -> Result<()> {
    for so in host.security_opt.list() {
        let (k, v) = so.split_once(['=', ':']).unwrap_or((so.as_str(), ""));
        match k {
            "seccomp" => {
                if v != "unconfined" && serde_json::from_str::<serde_json::Value>(v).is_err() {
                    return Err(bad(format!(
                        "invalid seccomp profile in --security-opt: {}",
                        v.chars().take(60).collect::<String>()
                    )));
                }
            }
            "no-new-privileges" | "label" | "apparmor" => {}
            _ => return Err(bad(format!("invalid --security-opt: {so:?}"))),
        }
    }
    Ok(())
}

fn restart_policy(host: &HostConfig) -> Result<()> {
    let Some(rp) = host.restart_policy.get() else {
        return Ok(());
    };
    let max = rp.maximum_retry_count.val();
    match rp.name.str() {
        "" | "no" | "always" | "unless-stopped" => {
            if max != 0 {
                return Err(bad("invalid restart policy: maximum retry count can only be used with 'on-failure'"));
            }
        }
        "on-failure" => {
            if max < 0 {
                return Err(bad("invalid restart policy: maximum retry count cannot be negative"));
            }
        }
        o => return Err(bad(format!("invalid restart policy: unknown policy '{o}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))),
    }
    if host.auto_remove.val() && !matches!(rp.name.str(), "" | "no") {
        return Err(bad(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    Ok(())
}

fn resources(host: &HostConfig) -> Result<()> {
    let mem = host.memory.val();
    if mem != 0 && mem < 6 * 1024 * 1024 {
        return Err(bad("Minimum memory limit allowed is 6MB"));
    }
    let swap = host.memory_swap.val();
    if swap > 0 && mem > 0 && swap < mem {
        return Err(bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if host.nano_cpus.val() != 0 && (host.cpu_quota.val() != 0 || host.cpu_period.val() != 0) {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    let w = host.blkio_weight.val();
    if w != 0 && !(10..=1000).contains(&w) {
        return Err(bad("Range of blkio weight is from 10 to 1000"));
    }
    Ok(())
}

/// Validate the HostConfig at create and update (after `model::unsupported`'s refusals).
pub(crate) fn validate(host: &HostConfig) -> Result<()> {
    net_mode(host)?;
    values::modes(host)?;
    values::log_config(host)?;
    values::cpu(host)?;
    values::memory(host)?;
    values::misc(host)?;
    capabilities(host)?;
    rlimits(host)?;
    security_opts(host)?;
    restart_policy(host)?;
    crate::networks::shaping::limits(host)?;
    for d in host.devices.items() {
        let p = d.path_on_host.str();
        if std::fs::metadata(p).is_err() {
            return Err(bad(format!("error gathering device information while adding custom device {p:?}: no such file or directory")));
        }
    }
    resources(host)
}
