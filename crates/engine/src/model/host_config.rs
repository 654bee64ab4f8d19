//! Docker's `HostConfig` (swagger `HostConfig`, with its `Resources`): the non-portable part
//! of a container's configuration. Also the body of `POST /containers/{id}/update`, whose
//! fields are a subset of it.
use super::{docker_object, StrList, StrMap};

docker_object! {
    /// Every field of the swagger's `HostConfig` (with `Resources`), typed as Docker's Go
    /// structs: a wrongly typed value is a 400 naming it (`model::decode`). What berth does
    /// not honour yet is refused by `model::unsupported`, the value checks are `spec::validate`.
    pub(crate) struct HostConfig {
        // Resources
        "CpuShares" cpu_shares: i64,
        "Memory" memory: i64,
        "CgroupParent" cgroup_parent: String,
        "BlkioWeight" blkio_weight: u16,
        "BlkioWeightDevice" blkio_weight_device: Vec<WeightDevice>,
        "BlkioDeviceReadBps" blkio_device_read_bps: Vec<ThrottleDevice>,
        "BlkioDeviceWriteBps" blkio_device_write_bps: Vec<ThrottleDevice>,
        "BlkioDeviceReadIOps" blkio_device_read_iops: Vec<ThrottleDevice>,
        "BlkioDeviceWriteIOps" blkio_device_write_iops: Vec<ThrottleDevice>,
        "CpuPeriod" cpu_period: i64,
        "CpuQuota" cpu_quota: i64,
        "CpuRealtimePeriod" cpu_realtime_period: i64,
        "CpuRealtimeRuntime" cpu_realtime_runtime: i64,
        "CpusetCpus" cpuset_cpus: String,
        "CpusetMems" cpuset_mems: String,
        "Devices" devices: Vec<DeviceMapping>,
        "DeviceCgroupRules" device_cgroup_rules: Vec<String>,
        "DeviceRequests" device_requests: Vec<DeviceRequest>,
        /// (Gone from the API since v1.42; older clients still send it.)
        "KernelMemory" kernel_memory: i64,
        /// (Gone from the API since v1.42.)
        "KernelMemoryTCP" kernel_memory_tcp: i64,
        "MemoryReservation" memory_reservation: i64,
        "MemorySwap" memory_swap: i64,
        "MemorySwappiness" memory_swappiness: i64,
        "NanoCpus" nano_cpus: i64,
        "OomKillDisable" oom_kill_disable: bool,
        "Init" init: bool,
        "PidsLimit" pids_limit: i64,
        "Ulimits" ulimits: Vec<Ulimit>,
        "CpuCount" cpu_count: i64,
        "CpuPercent" cpu_percent: i64,
        "IOMaximumIOps" io_maximum_iops: u64,
        "IOMaximumBandwidth" io_maximum_bandwidth: u64,
        // HostConfig
        "Binds" binds: Vec<String>,
        "ContainerIDFile" container_id_file: String,
        "LogConfig" log_config: LogConfig,
        "NetworkMode" network_mode: String,
        "PortBindings" port_bindings: PortMap,
        "RestartPolicy" restart_policy: RestartPolicy,
        "AutoRemove" auto_remove: bool,
        "VolumeDriver" volume_driver: String,
        "VolumesFrom" volumes_from: Vec<String>,
        "Mounts" mounts: Vec<Mount>,
        /// `[height, width]`
        "ConsoleSize" console_size: Vec<u64>,
        "Annotations" annotations: StrMap,
        "CapAdd" cap_add: StrList,
        "CapDrop" cap_drop: StrList,
        "CgroupnsMode" cgroupns_mode: String,
        "Dns" dns: Vec<String>,
        "DnsOptions" dns_options: Vec<String>,
        "DnsSearch" dns_search: Vec<String>,
        "ExtraHosts" extra_hosts: Vec<String>,
        "GroupAdd" group_add: Vec<String>,
        "IpcMode" ipc_mode: String,
        "Cgroup" cgroup: String,
        "Links" links: Vec<String>,
        "OomScoreAdj" oom_score_adj: i64,
        "PidMode" pid_mode: String,
        "Privileged" privileged: bool,
        "PublishAllPorts" publish_all_ports: bool,
        "ReadonlyRootfs" readonly_rootfs: bool,
        "SecurityOpt" security_opt: Vec<String>,
        "StorageOpt" storage_opt: StrMap,
        /// path -> "size=..,mode=.."
        "Tmpfs" tmpfs: StrMap,
        "UTSMode" uts_mode: String,
        "UsernsMode" userns_mode: String,
        "ShmSize" shm_size: i64,
        "Sysctls" sysctls: StrMap,
        "Runtime" runtime: String,
        "Isolation" isolation: String,
        "MaskedPaths" masked_paths: Vec<String>,
        "ReadonlyPaths" readonly_paths: Vec<String>,
    }
}

/// `PortBindings`: `"80/tcp"` -> the host ports it is published on (`null`: none).
pub(crate) type PortMap = std::collections::BTreeMap<String, super::Field<Vec<PortBinding>>>;

docker_object! {
    pub(crate) struct PortBinding {
        "HostIp" host_ip: String,
        "HostPort" host_port: String,
    }
}

docker_object! {
    pub(crate) struct WeightDevice {
        "Path" path: String,
        "Weight" weight: u16,
    }
}

docker_object! {
    pub(crate) struct ThrottleDevice {
        "Path" path: String,
        "Rate" rate: u64,
    }
}

docker_object! {
    pub(crate) struct DeviceRequest {
        "Driver" driver: String,
        "Count" count: i64,
        "DeviceIDs" device_ids: Vec<String>,
        "Capabilities" capabilities: Vec<Vec<String>>,
        "Options" options: StrMap,
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
        "ImageOptions" image_options: ImageOptions,
        "TmpfsOptions" tmpfs_options: TmpfsOptions,
    }
}

docker_object! {
    pub(crate) struct ImageOptions {
        "Subpath" subpath: String,
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
        "Mode" mode: u32,
        /// `[["noexec"], ["uid", "1000"]]`
        "Options" options: Vec<Vec<String>>,
    }
}

/// dockerd's logging drivers berth does not have (json-file and none it has).
pub(crate) const KNOWN_LOG_DRIVERS: [&str; 11] = [
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
    "loki",
];

/// json-file's options berth's log writer does not apply (it applies max-size and max-file).
pub(crate) const UNHONOURED_LOG_OPTS: [&str; 7] = [
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
    "mode",
];

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
            "MaskedPaths": null, "ReadonlyPaths": null, "Init": null, "AFutureField": {"x": [1]}});
        let h: HostConfig = decode("HostConfig", &host).unwrap();
        assert_eq!(serde_json::to_value(&h).unwrap(), host);
        // (Every swagger field is typed: only what berth does not know is kept as it came.)
        assert_eq!(h.extra.keys().collect::<Vec<_>>(), ["AFutureField"]);
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
