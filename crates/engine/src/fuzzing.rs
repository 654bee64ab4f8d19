//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`): the engine's
//! handling of API request bodies and of json-file logs, reached without an [`crate::Engine`]
//! and without duplicating the private code they run.
use crate::{LogEntry, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `POST /containers/create`: what create makes of `body` (decoded, defaulted, checked,
/// merged with the image config `image`) up to the OCI spec; rootfs and /etc files at `dir`.
pub fn container_create(
    body: &Value,
    image: &berth_image::model::ContainerConfig,
    dir: &Path,
) -> Result<oci_spec::runtime::Spec> {
    crate::containers::spec_of_request(body, image, dir)
}

/// `POST /containers/{id}/update`: `body` merged onto the container's HostConfig `host`
/// (given as its JSON) and checked, and the resources update would set.
pub fn container_update(host: &Value, body: &Value) -> Result<oci_spec::runtime::LinuxResources> {
    let mut host: crate::model::HostConfig = crate::model::decode("HostConfig", host)?;
    crate::containers::resources_of_update(&mut host, body)
}

/// `POST /containers/{id}/exec` then start: the exec's OCI process in a container of OCI
/// spec `spec` (JSON) with its rootfs at `rootfs`.
pub fn exec(body: &Value, spec: &Value, rootfs: &Path) -> Result<Value> {
    crate::exec::process_of_request(body, spec, rootfs)
}

/// json-file logs: the entries of the complete log files `files` (oldest first) that a
/// logs request for these streams and this time range (seconds, 0 = unset) returns.
pub fn log_entries(
    files: Vec<PathBuf>,
    stdout: bool,
    stderr: bool,
    since: f64,
    until: f64,
) -> Vec<Result<LogEntry>> {
    crate::logs::file_entries(files, stdout, stderr, since, until)
}
