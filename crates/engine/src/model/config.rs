//! Docker's container `Config` (swagger `ContainerConfig`): the request's top-level fields at
//! create, stored merged with the image's config.
use super::{docker_object, Field, HostConfig, Key, KeySet, StrList, StrMap};
use std::collections::BTreeMap;

docker_object! {
    /// The container's configuration, portable across hosts.
    pub(crate) struct Config {
        "Hostname" hostname: String,
        "Domainname" domainname: String,
        "User" user: String,
        "AttachStdin" attach_stdin: bool,
        "AttachStdout" attach_stdout: bool,
        "AttachStderr" attach_stderr: bool,
        /// `{"80/tcp": {}}`
        "ExposedPorts" exposed_ports: KeySet,
        "Tty" tty: bool,
        "OpenStdin" open_stdin: bool,
        "StdinOnce" stdin_once: bool,
        "Env" env: Vec<String>,
        "Cmd" cmd: StrList,
        "Healthcheck" healthcheck: crate::health::HealthConfig,
        "ArgsEscaped" args_escaped: bool,
        "Image" image: String,
        /// `{"/data": {}}`
        "Volumes" volumes: KeySet,
        "WorkingDir" working_dir: String,
        "Entrypoint" entrypoint: StrList,
        "NetworkDisabled" network_disabled: bool,
        "MacAddress" mac_address: String,
        "OnBuild" on_build: Vec<String>,
        "Labels" labels: StrMap,
        "StopSignal" stop_signal: String,
        "StopTimeout" stop_timeout: i64,
        "Shell" shell: StrList,
    }
}

docker_object! {
    /// The create request's `NetworkingConfig` (checked here; what is kept of it: `networks/attach.rs`).
    pub(crate) struct NetworkingConfig {
        /// network name -> Docker's `EndpointSettings`
        "EndpointsConfig" endpoints_config: BTreeMap<String, Field<EndpointSettings>>,
    }
}

docker_object! {
    /// A container's settings on one network (swagger `EndpointSettings`).
    pub(crate) struct EndpointSettings {
        "IPAMConfig" ipam_config: EndpointIpamConfig,
        "Links" links: Vec<String>,
        "MacAddress" mac_address: String,
        "Aliases" aliases: Vec<String>,
        "DriverOpts" driver_opts: StrMap,
        "GwPriority" gw_priority: i64,
        "NetworkID" network_id: String,
        "EndpointID" endpoint_id: String,
        "Gateway" gateway: String,
        "IPAddress" ip_address: String,
        "IPPrefixLen" ip_prefix_len: i64,
        "IPv6Gateway" ipv6_gateway: String,
        "GlobalIPv6Address" global_ipv6_address: String,
        "GlobalIPv6PrefixLen" global_ipv6_prefix_len: i64,
        "DNSNames" dns_names: Vec<String>,
    }
}

docker_object! {
    pub(crate) struct EndpointIpamConfig {
        "IPv4Address" ipv4_address: String,
        "IPv6Address" ipv6_address: String,
        "LinkLocalIPs" link_local_ips: Vec<String>,
    }
}

docker_object! {
    /// `POST /containers/{id}/exec`'s body (swagger `ExecConfig`).
    pub(crate) struct ExecConfig {
        "AttachStdin" attach_stdin: bool,
        "AttachStdout" attach_stdout: bool,
        "AttachStderr" attach_stderr: bool,
        /// `[height, width]`
        "ConsoleSize" console_size: Vec<u64>,
        "DetachKeys" detach_keys: String,
        "Tty" tty: bool,
        "Env" env: Vec<String>,
        "Cmd" cmd: Vec<String>,
        "Privileged" privileged: bool,
        "User" user: String,
        "WorkingDir" working_dir: String,
    }
}

impl Config {
    /// The labels (empty when none).
    pub(crate) fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.labels.get().map(|l| l.0.clone()).unwrap_or_default()
    }
}

/// `POST /containers/create`'s body: the Config fields at the top level, with `HostConfig` and
/// `NetworkingConfig` (read in one pass).
#[derive(Debug, Default)]
pub(crate) struct CreateRequest {
    pub config: Config,
    pub host_config: Field<HostConfig>,
    pub networking_config: Field<NetworkingConfig>,
}

impl<'de> serde::Deserialize<'de> for CreateRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CreateRequest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a container create request object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CreateRequest, A::Error> {
                let mut out = CreateRequest::default();
                while let Some(k) = map.next_key::<Key>()? {
                    match &*k.0 {
                        "HostConfig" => out.host_config = map.next_value()?,
                        "NetworkingConfig" => out.networking_config = map.next_value()?,
                        k => out.config.take_field(k, &mut map)?,
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode;
    use serde_json::json;

    #[test]
    fn create_request_splits_the_body() {
        let body = json!({"Image": "busybox", "Cmd": "true", "X": 1,
            "HostConfig": {"Memory": 7}, "NetworkingConfig": {"EndpointsConfig": {}}});
        let r: CreateRequest = decode("", &body).unwrap();
        assert_eq!(r.config.image.str(), "busybox");
        assert_eq!(r.config.cmd.list(), ["true"]);
        assert_eq!(r.config.extra.len(), 1);
        assert_eq!(r.host_config.get().map(|h| h.memory.val()), Some(7));
        assert!(r.networking_config.get().is_some());
        let e = decode::<CreateRequest>("", &json!({"HostConfig": {"Memory": "7"}})).unwrap_err();
        assert!(e.to_string().contains("HostConfig.Memory"), "{e}");
        let e = decode::<CreateRequest>("", &json!({"HostConfig": "x"})).unwrap_err();
        assert!(e.to_string().contains("invalid HostConfig"), "{e}");
        let e = decode::<CreateRequest>("", &json!({"Tty": 1})).unwrap_err();
        assert!(e.to_string().contains("invalid Tty"), "{e}");
    }
}
