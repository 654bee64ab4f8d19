//! Docker's `HostConfig` (swagger `HostConfig`, with its `Resources`): the non-portable part
//! of a container's configuration. Also the body of `POST /containers/{id}/update`, whose
//! fields are a subset of it.
use super::{docker_object, StrList, StrMap};
use serde_json::{Map, Value};

docker_object! {
    pub(crate) struct HostConfig {
        // Resources
        "CpuShares" cpu_shares: i64,
        "Memory" memory: i64,
        "CgroupParent" cgroup_parent: String,
        "BlkioWeight" blkio_weight: i64,
        "CpuPeriod" cpu_period: i64,
        "CpuQuota" cpu_quota: i64,
        "CpusetCpus" cpuset_cpus: String,
        "CpusetMems" cpuset_mems: String,
        "Devices" devices: Vec<DeviceMapping>,
        "KernelMemory" kernel_memory: i64,
        "MemoryReservation" memory_reservation: i64,
        "MemorySwap" memory_swap: i64,
        "NanoCpus" nano_cpus: i64,
        "OomKillDisable" oom_kill_disable: bool,
        "Init" init: bool,
        "PidsLimit" pids_limit: i64,
        "Ulimits" ulimits: Vec<Ulimit>,
        // HostConfig
        "Binds" binds: StrList,
        "LogConfig" log_config: LogConfig,
        "NetworkMode" network_mode: String,
        "PortBindings" port_bindings: Map<String, Value>,
        "RestartPolicy" restart_policy: RestartPolicy,
        "AutoRemove" auto_remove: bool,
        "VolumesFrom" volumes_from: StrList,
        "Mounts" mounts: Vec<Mount>,
        /// `[height, width]`
        "ConsoleSize" console_size: Vec<u64>,
        "CapAdd" cap_add: StrList,
        "CapDrop" cap_drop: StrList,
        "Dns" dns: StrList,
        "ExtraHosts" extra_hosts: StrList,
        "GroupAdd" group_add: StrList,
        "IpcMode" ipc_mode: String,
        "OomScoreAdj" oom_score_adj: i64,
        "PidMode" pid_mode: String,
        "Privileged" privileged: bool,
        "ReadonlyRootfs" readonly_rootfs: bool,
        "SecurityOpt" security_opt: StrList,
        /// path -> "size=..,mode=.."
        "Tmpfs" tmpfs: StrMap,
        "UTSMode" uts_mode: String,
        "ShmSize" shm_size: i64,
        "Sysctls" sysctls: StrMap,
        "Runtime" runtime: String,
        "Isolation" isolation: String,
        "MaskedPaths" masked_paths: Vec<String>,
        "ReadonlyPaths" readonly_paths: Vec<String>,
    }
}

docker_object! {
    pub(crate) struct DeviceMapping {
        "PathOnHost" path_on_host: String,
        "PathInContainer" path_in_container: String,
        "CgroupPermissions" cgroup_permissions: String,
    }
}

docker_object! {
    pub(crate) struct Ulimit {
        "Name" name: String,
        "Soft" soft: i64,
        "Hard" hard: i64,
    }
}

docker_object! {
    pub(crate) struct LogConfig {
        "Type" kind: String,
        "Config" config: StrMap,
    }
}

docker_object! {
    pub(crate) struct RestartPolicy {
        /// "" | no | always | unless-stopped | on-failure
        "Name" name: String,
        "MaximumRetryCount" maximum_retry_count: i64,
    }
}

docker_object! {
    /// An entry of `HostConfig.Mounts` (`--mount`).
    pub(crate) struct Mount {
        "Target" target: String,
        "Source" source: String,
        /// bind | volume | tmpfs | npipe | cluster | image
        "Type" kind: String,
        "ReadOnly" read_only: bool,
        "Consistency" consistency: String,
        "BindOptions" bind_options: BindOptions,
        "VolumeOptions" volume_options: VolumeOptions,
        "TmpfsOptions" tmpfs_options: TmpfsOptions,
    }
}

docker_object! {
    pub(crate) struct BindOptions {
        "Propagation" propagation: String,
        "NonRecursive" non_recursive: bool,
        "CreateMountpoint" create_mountpoint: bool,
        "ReadOnlyNonRecursive" read_only_non_recursive: bool,
        "ReadOnlyForceRecursive" read_only_force_recursive: bool,
    }
}

docker_object! {
    pub(crate) struct VolumeOptions {
        "NoCopy" no_copy: bool,
        "Labels" labels: StrMap,
        "DriverConfig" driver_config: DriverConfig,
        "Subpath" subpath: String,
    }
}

docker_object! {
    pub(crate) struct DriverConfig {
        "Name" name: String,
        "Options" options: StrMap,
    }
}

docker_object! {
    pub(crate) struct TmpfsOptions {
        "SizeBytes" size_bytes: i64,
        "Mode" mode: i64,
        /// `[["noexec"], ["uid", "1000"]]`
        "Options" options: Vec<Vec<String>>,
    }
}

impl HostConfig {
    pub(crate) fn restart_policy_name(&self) -> &str {
        self.restart_policy
            .get()
            .map(|r| r.name.str())
            .unwrap_or("")
    }

    /// AutoRemove without a restart policy (Docker never restarts those).
    pub(crate) fn auto_removes(&self) -> bool {
        self.auto_remove.val() && matches!(self.restart_policy_name(), "" | "no")
    }

    pub(crate) fn log_type(&self) -> &str {
        self.log_config.get().map(|l| l.kind.str()).unwrap_or("")
    }

    /// A `LogConfig.Config` option.
    pub(crate) fn log_opt(&self, k: &str) -> Option<&str> {
        self.log_config
            .get()?
            .config
            .get()?
            .0
            .get(k)
            .map(String::as_str)
    }

    /// `ConsoleSize` when both are set: (height, width).
    pub(crate) fn console(&self) -> Option<(u16, u16)> {
        match self.console_size.items() {
            [h, w, ..] if *h > 0 && *w > 0 => Some((*h as u16, *w as u16)),
            _ => None,
        }
    }
}
