//! The grammar of every berth command (flags, usage lines, help text).

use crate::args::{b, bl, v, vl, Flag, Nargs, Spec};

pub const GLOBAL_FLAGS: &[Flag] = &[
    vl("config", "string", "Location of client config files").def("~/.docker"),
    b('D', "debug", "Enable debug mode"),
    v(
        'H',
        "host",
        "string",
        "Daemon socket to connect to (unix:///path or tcp://host:port)",
    ),
    v(
        'l',
        "log-level",
        "string",
        "Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")",
    )
    .def("info"),
    b('v', "version", "Print version information and quit"),
];

const CREATE_FLAGS: &[Flag] = &[
    vl("add-host", "list", "Add a custom host-to-IP mapping (host:ip)"),
    v('a', "attach", "list", "Attach to STDIN, STDOUT or STDERR"),
    vl("cap-add", "list", "Add Linux capabilities"),
    vl("cap-drop", "list", "Drop Linux capabilities"),
    vl("cgroupns", "string", "Cgroup namespace to use (host|private)"),
    vl("annotation", "map", "Add an annotation to the container (passed through to the OCI runtime)"),
    vl("cidfile", "string", "Write the container ID to the file"),
    v('c', "cpu-shares", "int", "CPU shares (relative weight)"),
    vl("cpus", "decimal", "Number of CPUs"),
    vl("cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)"),
    vl("device", "list", "Add a host device to the container"),
    vl("dns", "list", "Set custom DNS servers"),
    vl("dns-option", "list", "Set DNS options"),
    vl("dns-search", "list", "Set custom DNS search domains"),
    vl("entrypoint", "string", "Overwrite the default ENTRYPOINT of the image"),
    v('e', "env", "list", "Set environment variables"),
    vl("env-file", "list", "Read in a file of environment variables"),
    vl("expose", "list", "Expose a port or a range of ports"),
    vl("group-add", "list", "Add additional groups to join"),
    vl("health-cmd", "string", "Command to run to check health"),
    vl("health-interval", "duration", "Time between running the check (ms|s|m|h)"),
    vl("health-retries", "int", "Consecutive failures needed to report unhealthy"),
    vl("health-start-period", "duration", "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)"),
    vl("health-start-interval", "duration", "Time between running the check during the start period (ms|s|m|h)"),
    vl("health-timeout", "duration", "Maximum time to allow one check to run (ms|s|m|h)"),
    v('h', "hostname", "string", "Container host name"),
    bl("init", "Run an init inside the container that forwards signals and reaps processes"),
    b('i', "interactive", "Keep STDIN open even if not attached"),
    vl("ip", "string", "IPv4 address (e.g., 172.30.100.104)"),
    vl("ip6", "string", "IPv6 address (e.g., 2001:db8::33)"),
    vl("ipc", "string", "IPC mode to use"),
    v('l', "label", "list", "Set meta data on a container"),
    vl("label-file", "list", "Read in a line delimited file of labels"),
    vl("log-driver", "string", "Logging driver for the container"),
    vl("log-opt", "list", "Log driver options"),
    v('m', "memory", "bytes", "Memory limit"),
    vl("memory-reservation", "bytes", "Memory soft limit"),
    vl("memory-swap", "bytes", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    vl("mount", "mount", "Attach a filesystem mount to the container"),
    vl("name", "string", "Assign a name to the container"),
    vl("network", "network", "Connect a container to a network"),
    vl("net", "network", "Connect a container to a network").hide(),
    vl("network-alias", "list", "Add network-scoped alias for the container"),
    vl("network-rate", "list", "Bandwidth limit in bits/s: RATE, ingress=RATE, egress=RATE, ingress-burst=, egress-burst= (e.g. egress=10M)"),
    bl("no-healthcheck", "Disable any container-specified HEALTHCHECK"),
    bl("oom-kill-disable", "Disable OOM Killer"),
    vl("pid", "string", "PID namespace to use"),
    vl("pids-limit", "int", "Tune container pids limit (set -1 for unlimited)"),
    vl("platform", "string", "Set platform if server is multi-platform capable"),
    bl("privileged", "Give extended privileges to this container"),
    v('p', "publish", "list", "Publish a container's port(s) to the host"),
    b('P', "publish-all", "Publish all exposed ports to random ports"),
    vl("pull", "string", "Pull image before running (\"always\", \"missing\", \"never\")").def("missing"),
    b('q', "quiet", "Suppress the pull output"),
    bl("read-only", "Mount the container's root filesystem as read only"),
    vl("restart", "string", "Restart policy to apply when a container exits").def("no"),
    bl("rm", "Automatically remove the container and its associated anonymous volumes when it exits"),
    vl("runtime", "string", "Runtime to use for this container"),
    vl("security-opt", "list", "Security Options"),
    vl("shm-size", "bytes", "Size of /dev/shm"),
    vl("stop-signal", "string", "Signal to stop the container"),
    vl("stop-timeout", "int", "Timeout (in seconds) to stop a container"),
    vl("sysctl", "map", "Sysctl options"),
    vl("tmpfs", "list", "Mount a tmpfs directory"),
    b('t', "tty", "Allocate a pseudo-TTY"),
    vl("ulimit", "ulimit", "Ulimit options"),
    v('u', "user", "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
    vl("userns", "string", "User namespace to use"),
    vl("uts", "string", "UTS namespace to use"),
    v('v', "volume", "list", "Bind mount a volume"),
    vl("volumes-from", "list", "Mount volumes from the specified container(s)"),
    v('w', "workdir", "string", "Working directory inside the container"),
];

const RUN_ONLY: &[Flag] = &[
    b(
        'd',
        "detach",
        "Run container in background and print container ID",
    ),
    vl(
        "detach-keys",
        "string",
        "Override the key sequence for detaching a container",
    ),
    bl("sig-proxy", "Proxy received signals to the process").def("true"),
];

/// run = create flags + detach, detach-keys, sig-proxy (merged at first use).
pub fn run_flags() -> &'static [Flag] {
    use std::sync::OnceLock;
    static F: OnceLock<Vec<Flag>> = OnceLock::new();
    F.get_or_init(|| {
        let mut v: Vec<Flag> = CREATE_FLAGS
            .iter()
            .chain(RUN_ONLY.iter())
            .copied()
            .collect();
        v.sort_by(|a, b| a.long.cmp(b.long));
        v
    })
}

macro_rules! spec {
    ($name:expr, $usage:expr, $about:expr, $nargs:expr, [$($f:expr),* $(,)?], aliases: [$($a:expr),*]) => {
        Spec { name: $name, usage: $usage, about: $about, nargs: $nargs, stop_at_positional: false, flags: { const F: &[Flag] = &[$($f),*]; F }, aliases: &[$($a),*] }
    };
    ($name:expr, $usage:expr, $about:expr, $nargs:expr, [$($f:expr),* $(,)?]) => {
        Spec { name: $name, usage: $usage, about: $about, nargs: $nargs, stop_at_positional: false, flags: { const F: &[Flag] = &[$($f),*]; F }, aliases: &[] }
    };
}

const EXEC_FLAGS: &[Flag] = &[
    b(
        'd',
        "detach",
        "Detached mode: run command in the background",
    ),
    vl(
        "detach-keys",
        "string",
        "Override the key sequence for detaching a container",
    ),
    v('e', "env", "list", "Set environment variables"),
    vl(
        "env-file",
        "list",
        "Read in a file of environment variables",
    ),
    b('i', "interactive", "Keep STDIN open even if not attached"),
    bl("privileged", "Give extended privileges to the command"),
    b('t', "tty", "Allocate a pseudo-TTY"),
    v(
        'u',
        "user",
        "string",
        "Username or UID (format: \"<name|uid>[:<group|gid>]\")",
    ),
    v(
        'w',
        "workdir",
        "string",
        "Working directory inside the container",
    ),
];

pub fn run_spec() -> Spec {
    Spec {
        name: "run",
        usage: "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        about: "Create and run a new container from an image",
        nargs: Nargs::AtLeast(1),
        stop_at_positional: true,
        flags: run_flags(),
        aliases: &["container run"],
    }
}

pub fn create_spec() -> Spec {
    Spec {
        name: "create",
        usage: "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
        about: "Create a new container",
        nargs: Nargs::AtLeast(1),
        stop_at_positional: true,
        flags: CREATE_FLAGS,
        aliases: &["container create"],
    }
}

const FORMAT_FLAG: Flag = vl("format", "string", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template");

/// All other commands, by name.
pub fn spec(name: &str) -> Option<Spec> {
    Some(match name {
        "run" => run_spec(),
        "create" => create_spec(),
        "start" => spec!("start", "start [OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", Nargs::AtLeast(1), [
            b('a', "attach", "Attach STDOUT/STDERR and forward signals"),
            vl("detach-keys", "string", "Override the key sequence for detaching a container"),
            b('i', "interactive", "Attach container's STDIN"),
        ], aliases: ["container start"]),
        "stop" => spec!("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", Nargs::AtLeast(1), [
            v('s', "signal", "string", "Signal to send to the container"),
            v('t', "time", "int", "Seconds to wait before killing the container"),
            vl("timeout", "int", "Seconds to wait before killing the container").hide(),
        ], aliases: ["container stop"]),
        "restart" => spec!("restart", "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", Nargs::AtLeast(1), [
            v('s', "signal", "string", "Signal to send to the container"),
            v('t', "time", "int", "Seconds to wait before killing the container"),
        ], aliases: ["container restart"]),
        "kill" => spec!("kill", "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", Nargs::AtLeast(1), [
            v('s', "signal", "string", "Signal to send to the container"),
        ], aliases: ["container kill"]),
        "rm" => spec!("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", Nargs::AtLeast(1), [
            b('f', "force", "Force the removal of a running container (uses SIGKILL)"),
            b('l', "link", "Remove the specified link"),
            b('v', "volumes", "Remove anonymous volumes associated with the container"),
        ], aliases: ["container rm", "container remove"]),
        "ps" => spec!("ps", "ps [OPTIONS]", "List containers", Nargs::None, [
            b('a', "all", "Show all containers (default shows just running)"),
            v('f', "filter", "filter", "Filter output based on conditions provided"),
            FORMAT_FLAG,
            v('n', "last", "int", "Show n last created containers (includes all states)").def("-1"),
            b('l', "latest", "Show the latest created container (includes all states)"),
            bl("no-trunc", "Don't truncate output"),
            b('q', "quiet", "Only display container IDs"),
            b('s', "size", "Display total file sizes"),
        ], aliases: ["container ls", "container list", "container ps"]),
        "logs" => spec!("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", Nargs::Exact(1), [
            bl("details", "Show extra details provided to logs"),
            b('f', "follow", "Follow log output"),
            vl("since", "string", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
            v('n', "tail", "string", "Number of lines to show from the end of the logs").def("all"),
            b('t', "timestamps", "Show timestamps"),
            vl("until", "string", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
        ], aliases: ["container logs"]),
        "exec" => Spec {
            name: "exec",
            usage: "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
            about: "Execute a command in a running container",
            nargs: Nargs::AtLeast(2),
            stop_at_positional: true,
            flags: EXEC_FLAGS,
            aliases: &["container exec"],
        },
        "attach" => spec!("attach", "attach [OPTIONS] CONTAINER", "Attach local standard input, output, and error streams to a running container", Nargs::Exact(1), [
            vl("detach-keys", "string", "Override the key sequence for detaching a container"),
            bl("no-stdin", "Do not attach STDIN"),
            bl("sig-proxy", "Proxy all received signals to the process").def("true"),
        ], aliases: ["container attach"]),
        "inspect" => spec!("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects", Nargs::AtLeast(1), [
            v('f', "format", "string", "Format output using a custom template"),
            b('s', "size", "Display total file sizes if the type is container"),
            vl("type", "string", "Only inspect objects of the given type"),
        ]),
        // Everything after CONTAINER is ps's own options, passed through as docker does.
        "top" => Spec {
            name: "top",
            usage: "top CONTAINER [ps OPTIONS]",
            about: "Display the running processes of a container",
            nargs: Nargs::AtLeast(1),
            stop_at_positional: true,
            flags: &[],
            aliases: &["container top"],
        },
        "stats" => spec!("stats", "stats [OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics", Nargs::Any, [
            b('a', "all", "Show all containers (default shows just running)"),
            FORMAT_FLAG,
            bl("no-stream", "Disable streaming stats and only pull the first result"),
            bl("no-trunc", "Do not truncate output"),
        ], aliases: ["container stats"]),
        "pause" => spec!("pause", "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", Nargs::AtLeast(1), [], aliases: ["container pause"]),
        "unpause" => spec!("unpause", "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers", Nargs::AtLeast(1), [], aliases: ["container unpause"]),
        "rename" => spec!("rename", "rename CONTAINER NEW_NAME", "Rename a container", Nargs::Exact(2), [], aliases: ["container rename"]),
        "wait" => spec!("wait", "wait CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes", Nargs::AtLeast(1), [], aliases: ["container wait"]),
        "cp" => spec!("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH", "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout.", Nargs::Exact(2), [
            b('a', "archive", "Archive mode (copy all uid/gid information)"),
            b('L', "follow-link", "Always follow symbol link in SRC_PATH"),
            b('q', "quiet", "Suppress progress output during copy"),
        ], aliases: ["container cp"]),
        "diff" => spec!("diff", "diff CONTAINER", "Inspect changes to files or directories on a container's filesystem", Nargs::Exact(1), [], aliases: ["container diff"]),
        "export" => spec!("export", "export [OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", Nargs::Exact(1), [
            v('o', "output", "string", "Write to a file, instead of STDOUT"),
        ], aliases: ["container export"]),
        "commit" => spec!("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes", Nargs::Range(1, 2), [
            v('a', "author", "string", "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")"),
            v('c', "change", "list", "Apply Dockerfile instruction to the created image"),
            v('m', "message", "string", "Commit message"),
            b('p', "pause", "Pause container during commit").def("true"),
        ], aliases: ["container commit"]),
        "port" => spec!("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container", Nargs::Range(1, 2), [], aliases: ["container port"]),
        "update" => spec!("update", "update [OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers", Nargs::AtLeast(1), [
            v('c', "cpu-shares", "int", "CPU shares (relative weight)"),
            vl("cpus", "decimal", "Number of CPUs"),
            vl("cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)"),
            v('m', "memory", "bytes", "Memory limit"),
            vl("memory-reservation", "bytes", "Memory soft limit"),
            vl("memory-swap", "bytes", "Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
            vl("network-rate", "list", "Bandwidth limit in bits/s: RATE, ingress=RATE, egress=RATE, ...-burst=, none lifts it (e.g. egress=10M)"),
            vl("pids-limit", "int", "Tune container pids limit (set -1 for unlimited)"),
            vl("restart", "string", "Restart policy to apply when a container exits"),
        ], aliases: ["container update"]),
        "images" => spec!("images", "images [OPTIONS] [REPOSITORY[:TAG]]", "List images", Nargs::Range(0, 1), [
            b('a', "all", "Show all images (default hides intermediate images)"),
            bl("digests", "Show digests"),
            v('f', "filter", "filter", "Filter output based on conditions provided"),
            FORMAT_FLAG,
            bl("no-trunc", "Don't truncate output"),
            b('q', "quiet", "Only show image IDs"),
        ], aliases: ["image ls", "image list"]),
        "pull" => spec!("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", Nargs::Exact(1), [
            b('a', "all-tags", "Download all tagged images in the repository"),
            vl("platform", "string", "Set platform if server is multi-platform capable"),
            b('q', "quiet", "Suppress verbose output"),
        ], aliases: ["image pull"]),
        "push" => spec!("push", "push [OPTIONS] NAME[:TAG]", "Upload an image to a registry", Nargs::Exact(1), [
            b('a', "all-tags", "Push all tags of an image to the repository"),
            vl("platform", "string", "Push a platform-specific manifest as a single-platform image to the registry"),
            b('q', "quiet", "Suppress verbose output"),
        ], aliases: ["image push"]),
        "build" => spec!("build", "build [OPTIONS] PATH | -", "Build an image from a Dockerfile", Nargs::Exact(1), [
            vl("build-arg", "list", "Set build-time variables"),
            vl("cache-from", "strings", "Images to consider as cache sources"),
            v('f', "file", "string", "Name of the Dockerfile (default: \"PATH/Dockerfile\")"),
            bl("force-rm", "Always remove intermediate containers"),
            vl("iidfile", "string", "Write the image ID to the file"),
            vl("label", "list", "Set metadata for an image"),
            bl("no-cache", "Do not use cache when building the image"),
            b('q', "quiet", "Suppress the build output and print image ID on success"),
            bl("rm", "Remove intermediate containers after a successful build").def("true"),
            v('t', "tag", "list", "Name and optionally a tag in the \"name:tag\" format"),
            vl("target", "string", "Set the target build stage to build"),
        ], aliases: ["image build"]),
        "load" => spec!("load", "load [OPTIONS]", "Load an image from a tar archive or STDIN", Nargs::None, [
            v('i', "input", "string", "Read from tar archive file, instead of STDIN"),
            vl("platform", "list", "Load only the given platform(s)"),
            b('q', "quiet", "Suppress the load output"),
        ], aliases: ["image load"]),
        "save" => spec!("save", "save [OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to STDOUT by default)", Nargs::AtLeast(1), [
            v('o', "output", "string", "Write to a file, instead of STDOUT"),
            vl("platform", "list", "Save only the given platform(s)"),
        ], aliases: ["image save"]),
        "import" => spec!("import", "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]", "Import the contents from a tarball to create a filesystem image", Nargs::Range(1, 2), [
            v('c', "change", "list", "Apply Dockerfile instruction to the created image"),
            v('m', "message", "string", "Set commit message for imported image"),
            vl("platform", "string", "Set platform if server is multi-platform capable"),
        ], aliases: ["image import"]),
        "tag" => spec!("tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", Nargs::Exact(2), [], aliases: ["image tag"]),
        "rmi" => spec!("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", Nargs::AtLeast(1), [
            b('f', "force", "Force removal of the image"),
            bl("no-prune", "Do not delete untagged parents"),
        ], aliases: ["image rm", "image remove"]),
        "history" => spec!("history", "history [OPTIONS] IMAGE", "Show the history of an image", Nargs::Exact(1), [
            FORMAT_FLAG,
            b('H', "human", "Print sizes and dates in human readable format").def("true"),
            bl("no-trunc", "Don't truncate output"),
            b('q', "quiet", "Only show image IDs"),
        ], aliases: ["image history"]),
        "image prune" => spec!("image prune", "image prune [OPTIONS]", "Remove unused images", Nargs::None, [
            b('a', "all", "Remove all unused images, not just dangling ones"),
            vl("filter", "filter", "Provide filter values (e.g. \"until=<timestamp>\")"),
            b('f', "force", "Do not prompt for confirmation"),
        ]),
        "builder prune" => spec!("builder prune", "builder prune [OPTIONS]", "Remove build cache", Nargs::None, [
            b('a', "all", "Remove all unused build cache, not just dangling ones"),
            vl("filter", "filter", "Provide filter values (e.g. \"until=24h\")"),
            b('f', "force", "Do not prompt for confirmation"),
            vl("keep-storage", "bytes", "Amount of disk space to keep for cache"),
        ]),
        "container prune" => spec!("container prune", "container prune [OPTIONS]", "Remove all stopped containers", Nargs::None, [
            vl("filter", "filter", "Provide filter values (e.g. \"until=<timestamp>\")"),
            b('f', "force", "Do not prompt for confirmation"),
        ]),
        "system prune" => spec!("system prune", "system prune [OPTIONS]", "Remove unused data", Nargs::None, [
            b('a', "all", "Remove all unused images not just dangling ones"),
            vl("filter", "filter", "Provide filter values (e.g. \"label=<key>=<value>\")"),
            b('f', "force", "Do not prompt for confirmation"),
            bl("volumes", "Prune anonymous volumes"),
        ]),
        "volume create" => spec!("volume create", "volume create [OPTIONS] [VOLUME]", "Create a volume", Nargs::Range(0, 1), [
            v('d', "driver", "string", "Specify volume driver name").def("local"),
            vl("label", "list", "Set metadata for a volume"),
            vl("name", "string", "Specify volume name").hide(),
            v('o', "opt", "map", "Set driver specific options"),
        ]),
        "volume ls" => spec!("volume ls", "volume ls [OPTIONS]", "List volumes", Nargs::None, [
            v('f', "filter", "filter", "Provide filter values (e.g. \"dangling=true\")"),
            FORMAT_FLAG,
            b('q', "quiet", "Only display volume names"),
        ]),
        "volume inspect" => spec!("volume inspect", "volume inspect [OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", Nargs::AtLeast(1), [
            v('f', "format", "string", "Format output using a custom template"),
        ]),
        "volume rm" => spec!("volume rm", "volume rm [OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes. You cannot remove a volume that is in use by a container.", Nargs::AtLeast(1), [
            b('f', "force", "Force the removal of one or more volumes"),
        ]),
        "volume prune" => spec!("volume prune", "volume prune [OPTIONS]", "Remove unused local volumes", Nargs::None, [
            b('a', "all", "Remove all unused volumes, not just anonymous ones"),
            vl("filter", "filter", "Provide filter values (e.g. \"label=<label>\")"),
            b('f', "force", "Do not prompt for confirmation"),
        ]),
        "network create" => spec!("network create", "network create [OPTIONS] NETWORK", "Create a network", Nargs::Exact(1), [
            v('d', "driver", "string", "Driver to manage the Network").def("bridge"),
            vl("gateway", "strings", "IPv4 Gateway for the master subnet"),
            bl("internal", "Restrict external access to the network"),
            bl("attachable", "Enable manual container attachment"),
            vl("ip-range", "strings", "Allocate container ip from a sub-range"),
            bl("ipv6", "Enable or disable IPv6 networking"),
            vl("ipam-driver", "string", "IP Address Management Driver").def("default"),
            vl("label", "list", "Set metadata on a network"),
            v('o', "opt", "map", "Set driver specific options"),
            vl("subnet", "strings", "Subnet in CIDR format that represents a network segment"),
        ]),
        "network ls" => spec!("network ls", "network ls [OPTIONS]", "List networks", Nargs::None, [
            v('f', "filter", "filter", "Provide filter values (e.g. \"driver=bridge\")"),
            FORMAT_FLAG,
            bl("no-trunc", "Do not truncate the output"),
            b('q', "quiet", "Only display network IDs"),
        ]),
        "network inspect" => spec!("network inspect", "network inspect [OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks", Nargs::AtLeast(1), [
            v('f', "format", "string", "Format output using a custom template"),
        ]),
        "network rm" => spec!("network rm", "network rm NETWORK [NETWORK...]", "Remove one or more networks", Nargs::AtLeast(1), [
            b('f', "force", "Do not error if the network does not exist"),
        ]),
        "network prune" => spec!("network prune", "network prune [OPTIONS]", "Remove all unused networks", Nargs::None, [
            vl("filter", "filter", "Provide filter values (e.g. \"until=<timestamp>\")"),
            b('f', "force", "Do not prompt for confirmation"),
        ]),
        "network connect" => spec!("network connect", "network connect [OPTIONS] NETWORK CONTAINER", "Connect a container to a network", Nargs::Exact(2), [
            vl("alias", "strings", "Add network-scoped alias for the container"),
            vl("ip", "string", "IPv4 address (e.g., \"172.30.100.104\")"),
            vl("ip6", "string", "IPv6 address (e.g., \"2001:db8::33\")"),
        ]),
        "network disconnect" => spec!("network disconnect", "network disconnect [OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network", Nargs::Exact(2), [
            b('f', "force", "Force the container to disconnect from a network"),
        ]),
        "system df" => spec!("system df", "system df [OPTIONS]", "Show docker disk usage", Nargs::None, [
            FORMAT_FLAG,
            b('v', "verbose", "Show detailed information on space usage"),
        ]),
        "info" => spec!("info", "info [OPTIONS]", "Display system-wide information", Nargs::None, [
            v('f', "format", "string", "Format output using a custom template"),
        ], aliases: ["system info"]),
        "version" => spec!("version", "version [OPTIONS]", "Show the berth version information", Nargs::None, [
            v('f', "format", "string", "Format output using a custom template"),
        ]),
        "events" => spec!("events", "events [OPTIONS]", "Get real time events from the server", Nargs::None, [
            v('f', "filter", "filter", "Filter output based on conditions provided"),
            vl("format", "string", "Format output using a custom template"),
            vl("since", "string", "Show all events created since timestamp"),
            vl("until", "string", "Stream events until this timestamp"),
        ], aliases: ["system events"]),
        "login" => spec!("login", "login [OPTIONS] [SERVER]", "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.", Nargs::Range(0, 1), [
            v('p', "password", "string", "Password or Personal Access Token (PAT)"),
            bl("password-stdin", "Take the Password or Personal Access Token (PAT) from stdin"),
            v('u', "username", "string", "Username"),
        ]),
        "logout" => spec!("logout", "logout [SERVER]", "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.", Nargs::Range(0, 1), []),
        "completion" => spec!("completion", "completion bash|zsh", "Generate the shell completion script for berth", Nargs::Exact(1), []),
        _ => return None,
    })
}

/// Top-level commands in help order: (name, about), grouped.
pub const COMMON: &[&str] = &[
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "info", "version",
];
pub const OTHERS: &[&str] = &[
    "attach", "commit", "cp", "create", "diff", "events", "export", "history", "import", "inspect",
    "kill", "load", "logs", "pause", "port", "rename", "restart", "rm", "rmi", "save", "start",
    "stats", "stop", "tag", "top", "unpause", "update", "wait",
];
pub const MANAGEMENT: &[(&str, &str)] = &[
    ("builder", "Manage builds"),
    ("container", "Manage containers"),
    ("image", "Manage images"),
    ("system", "Manage berth"),
    ("network", "Manage networks"),
    ("volume", "Manage volumes"),
    ("completion", "Generate the shell completion script"),
];

/// `berth container X`, `berth image X`, `berth system X` -> the command's canonical name.
pub fn resolve_management(group: &str, sub: &str) -> Option<&'static str> {
    Some(match (group, sub) {
        ("container", "ls" | "list" | "ps") => "ps",
        ("container", "prune") => "container prune",
        ("container", "inspect") => "container inspect",
        ("container", s) => match s {
            "attach" => "attach",
            "commit" => "commit",
            "cp" => "cp",
            "create" => "create",
            "diff" => "diff",
            "exec" => "exec",
            "export" => "export",
            "kill" => "kill",
            "logs" => "logs",
            "pause" => "pause",
            "port" => "port",
            "rename" => "rename",
            "restart" => "restart",
            "rm" | "remove" => "rm",
            "run" => "run",
            "start" => "start",
            "stats" => "stats",
            "stop" => "stop",
            "top" => "top",
            "unpause" => "unpause",
            "update" => "update",
            "wait" => "wait",
            _ => return None,
        },
        ("image", "ls" | "list") => "images",
        ("image", "rm" | "remove") => "rmi",
        ("image", "prune") => "image prune",
        ("image", "inspect") => "image inspect",
        ("image", s) => match s {
            "history" => "history",
            "import" => "import",
            "build" => "build",
            "load" => "load",
            "pull" => "pull",
            "push" => "push",
            "save" => "save",
            "tag" => "tag",
            _ => return None,
        },
        ("volume", "create") => "volume create",
        ("volume", "ls" | "list") => "volume ls",
        ("volume", "inspect") => "volume inspect",
        ("volume", "rm" | "remove") => "volume rm",
        ("volume", "prune") => "volume prune",
        ("network", "create") => "network create",
        ("network", "ls" | "list") => "network ls",
        ("network", "inspect") => "network inspect",
        ("network", "rm" | "remove") => "network rm",
        ("network", "prune") => "network prune",
        ("network", "connect") => "network connect",
        ("network", "disconnect") => "network disconnect",
        ("builder", "prune") => "builder prune",
        ("system", "df") => "system df",
        ("system", "prune") => "system prune",
        ("system", "info") => "info",
        ("system", "events") => "events",
        _ => return None,
    })
}

pub const MANAGEMENT_SUBS: &[(&str, &[&str])] = &[
    (
        "container",
        &[
            "attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill",
            "logs", "ls", "pause", "port", "prune", "rename", "restart", "rm", "run", "start",
            "stats", "stop", "top", "unpause", "update", "wait",
        ],
    ),
    (
        "image",
        &[
            "history", "import", "inspect", "load", "ls", "prune", "pull", "push", "rm", "save",
            "tag",
        ],
    ),
    (
        "network",
        &[
            "connect",
            "create",
            "disconnect",
            "inspect",
            "ls",
            "prune",
            "rm",
        ],
    ),
    ("builder", &["prune"]),
    ("system", &["df", "events", "info", "prune"]),
    ("volume", &["create", "inspect", "ls", "prune", "rm"]),
];

pub fn about(name: &str) -> &'static str {
    spec(name)
        .map(|s| s.about.split('\n').next().unwrap_or(""))
        .unwrap_or("")
}
