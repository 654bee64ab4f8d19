//! Docker's container `Config` (swagger `ContainerConfig`): the request's top-level fields at
//! create, stored merged with the image's config.
use super::{docker_object, StrList, StrMap};
use serde_json::{Map, Value};

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
        "ExposedPorts" exposed_ports: Map<String, Value>,
        "Tty" tty: bool,
        "OpenStdin" open_stdin: bool,
        "StdinOnce" stdin_once: bool,
        "Env" env: StrList,
        "Cmd" cmd: StrList,
        "Healthcheck" healthcheck: Value,
        "ArgsEscaped" args_escaped: bool,
        "Image" image: String,
        /// `{"/data": {}}`
        "Volumes" volumes: Map<String, Value>,
        "WorkingDir" working_dir: String,
        "Entrypoint" entrypoint: StrList,
        "NetworkDisabled" network_disabled: bool,
        "MacAddress" mac_address: String,
        "OnBuild" on_build: Vec<String>,
        "Labels" labels: StrMap,
        "StopSignal" stop_signal: String,
        "StopTimeout" stop_timeout: i64,
        "Shell" shell: Vec<String>,
    }
}

docker_object! {
    /// The create request's `NetworkingConfig` (berth has no networks yet: checked, not kept).
    pub(crate) struct NetworkingConfig {
        /// network name -> Docker's `EndpointSettings`
        "EndpointsConfig" endpoints_config: Map<String, Value>,
    }
}

impl Config {
    /// The labels (empty when none).
    pub(crate) fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.labels.get().map(|l| l.0.clone()).unwrap_or_default()
    }
}
