//! Convert a Docker seccomp profile to the OCI `linux.seccomp` form.
//!   cargo run -p berth-seccomp --example docker_to_oci -- PROFILE.json [CAP...] > oci.json
//! With no caps given, Docker's 14 default capabilities are used.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: docker_to_oci PROFILE.json [CAP...]");
        std::process::exit(2);
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("docker_to_oci: read {path}: {e}");
            std::process::exit(1);
        }
    };
    let default_caps = berth_seccomp::DOCKER_DEFAULT_CAPS;
    let caps: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        default_caps.iter().map(|s| s.to_string()).collect()
    };
    match berth_seccomp::docker_to_oci(&data, &caps, "amd64") {
        Ok(s) => match serde_json::to_string(&s) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("docker_to_oci: {e}");
                std::process::exit(1);
            }
        },
        Err(e) => {
            eprintln!("docker_to_oci: {path}: {e}");
            std::process::exit(1);
        }
    }
}
