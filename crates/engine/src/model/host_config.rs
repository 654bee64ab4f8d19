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
        /// (Gone from the API since v1.42; older clients still send it, update takes it.)
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
        "PublishAllPorts" publish_all_ports: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{decode, Config};
    use serde_json::json;

    /// A body as compose (moby's Go client: every field, nulls for nil slices and maps)
    /// sends it: decoded, and echoed as it came.
    #[test]
    fn compose_like_body_round_trips() {
        let host = json!({"Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": null},
            "NetworkMode": "none", "PortBindings": {}, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
            "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "ConsoleSize": [0, 0],
            "Annotations": null, "CapAdd": null, "CapDrop": null, "CgroupnsMode": "", "Dns": null,
            "DnsOptions": null, "DnsSearch": null, "ExtraHosts": [], "GroupAdd": null, "IpcMode": "",
            "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
            "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null, "StorageOpt": null,
            "Tmpfs": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Sysctls": null, "Runtime": "",
            "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
            "BlkioWeight": 0, "BlkioWeightDevice": null, "BlkioDeviceReadBps": null,
            "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpusetCpus": "", "CpusetMems": "", "Devices": null, "DeviceCgroupRules": null,
            "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
            "OomKillDisable": null, "PidsLimit": null, "Ulimits": null, "CpuCount": 0, "CpuPercent": 0,
            "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "Mounts": [{"Type": "bind", "Source": "/src", "Target": "/dst", "BindOptions": {"CreateMountpoint": true}},
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 0, "Mode": 0, "Options": [["noexec"]]}}],
            "MaskedPaths": null, "ReadonlyPaths": null, "Init": null});
        let h: HostConfig = decode("HostConfig", &host).unwrap();
        assert_eq!(serde_json::to_value(&h).unwrap(), host);
        assert!(h.extra.contains_key("Annotations") && h.extra.contains_key("CpuRealtimePeriod"));
        assert!(h.mounts.items()[0]
            .bind_options
            .get()
            .unwrap()
            .create_mountpoint
            .val());
        let config = json!({"Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
            "AttachStdout": true, "AttachStderr": true, "ExposedPorts": {"80/tcp": {}}, "Tty": false,
            "OpenStdin": false, "StdinOnce": false, "Env": ["A=1"], "Cmd": null,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}, "Image": "busybox",
            "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null,
            "Labels": {"com.docker.compose.project": "p"}, "StopTimeout": null, "Shell": null,
            "MacAddress": ""});
        let c: Config = decode("", &config).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), config);
    }

    #[test]
    fn helpers() {
        let h: HostConfig = decode("HostConfig", &json!({"AutoRemove": true,
            "RestartPolicy": {"Name": "always"}, "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
            "ConsoleSize": [24, 80]})).unwrap();
        assert!(!h.auto_removes());
        assert_eq!(h.restart_policy_name(), "always");
        assert_eq!(
            (h.log_type(), h.log_opt("max-size")),
            ("json-file", Some("1m"))
        );
        assert_eq!(h.console(), Some((24, 80)));
        let h = HostConfig::default();
        assert!(!h.auto_removes() && h.console().is_none() && h.log_opt("x").is_none());
    }
}
