//! User-defined bridge networks: the create request checked, the record
//! (`<root>/network/user/<id>/network.json`, written temp-then-rename into a directory made
//! first; a directory without a readable record is a half-made network, removed at start-up
//! with its IPAM file), the subnet picked from Docker's pools clear of host routes and of
//! every other network.
use crate::util::{internal, labels_of, now_rfc3339, random_id};
use crate::{Error, Result};
use berth_net::{AddressPool, Family, IpamStore, PoolConfig, StoreError, Subnet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The option naming the bridge device.
pub(super) const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";

/// A user network as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The Linux bridge.
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Subnet>,
    pub aux: BTreeMap<String, Ipv4Addr>,
}

/// The create request, checked (not yet given a subnet).
pub(super) struct CreateReq {
    pub name: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Subnet>,
    pub aux: BTreeMap<String, Ipv4Addr>,
}

fn bad(m: String) -> Error {
    Error::BadParameter(m)
}

fn str_map(v: &Value, field: &str) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(_) => Ok(labels_of(v)),
        _ => Err(bad(format!("{field}: expected an object of strings"))),
    }
}

fn v4_subnet(s: &str, what: &str) -> Result<Subnet> {
    let sub: Subnet = s
        .parse()
        .map_err(|e| bad(format!("invalid {what} {s}: {e}")))?;
    if !sub.is_ipv4() {
        return Err(bad(format!(
            "{what} {s}: IPv6 networks are not supported by berth yet"
        )));
    }
    Ok(sub)
}

fn v4_addr(s: &str, what: &str) -> Result<Ipv4Addr> {
    s.parse()
        .map_err(|_| bad(format!("invalid {what} {s}: not an IPv4 address")))
}

/// `POST /networks/create`'s body, checked.
pub(super) fn parse_create(body: &Value) -> Result<CreateReq> {
    let name = body["Name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(bad("network name is required (Name)".into()));
    }
    // (dockerd takes any name, spaces included: it names no file or device.)
    if name.contains('\0') {
        return Err(bad(format!("invalid network name {name:?}: a NUL byte")));
    }
    match body["Driver"].as_str().unwrap_or("") {
        "" | "bridge" => {}
        d => {
            return Err(Error::NotFound(format!(
                "plugin \"{d}\" not found (berth has the bridge driver only)"
            )))
        }
    }
    for (k, what) in [
        ("EnableIPv6", "IPv6 (EnableIPv6)"),
        ("Ingress", "Ingress"),
        ("ConfigOnly", "ConfigOnly"),
    ] {
        if body[k].as_bool() == Some(true) {
            return Err(bad(format!("{what} is not supported by berth yet")));
        }
    }
    if body["EnableIPv4"].as_bool() == Some(false) {
        return Err(bad("EnableIPv4=false is not supported by berth yet".into()));
    }
    let options = str_map(&body["Options"], "Options")?;
    if let Some(k) = options.keys().find(|k| k.as_str() != OPT_BRIDGE_NAME) {
        return Err(bad(format!(
            "network option {k:?} is not supported by berth yet (only {OPT_BRIDGE_NAME})"
        )));
    }
    if let Some(b) = options.get(OPT_BRIDGE_NAME) {
        if b.is_empty() || b.len() > 15 || b.contains(['/', ' ', '\0', ':']) {
            return Err(bad(format!(
                "invalid {OPT_BRIDGE_NAME} {b:?}: 1 to 15 characters, no '/', ':' or space"
            )));
        }
    }
    let ipam = &body["IPAM"];
    match ipam["Driver"].as_str().unwrap_or("") {
        "" | "default" => {}
        d => return Err(Error::NotFound(format!("IPAM driver \"{d}\" not found"))),
    }
    let configs = ipam["Config"].as_array().cloned().unwrap_or_default();
    if configs.len() > 1 {
        return Err(bad(
            "more than one IPAM.Config (several subnets) is not supported by berth yet".into(),
        ));
    }
    let mut req = CreateReq {
        name,
        internal: body["Internal"].as_bool().unwrap_or(false),
        attachable: body["Attachable"].as_bool().unwrap_or(false),
        labels: str_map(&body["Labels"], "Labels")?,
        options,
        subnet: None,
        gateway: None,
        ip_range: None,
        aux: BTreeMap::new(),
    };
    if let Some(c) = configs.first() {
        let get = |k: &str| c[k].as_str().filter(|s| !s.is_empty());
        req.subnet = get("Subnet").map(|s| v4_subnet(s, "subnet")).transpose()?;
        req.ip_range = get("IPRange")
            .map(|s| v4_subnet(s, "ip-range"))
            .transpose()?;
        req.gateway = get("Gateway").map(|s| v4_addr(s, "gateway")).transpose()?;
        for (k, v) in str_map(&c["AuxiliaryAddresses"], "AuxiliaryAddresses")? {
            req.aux.insert(k, v4_addr(&v, "auxiliary address")?);
        }
        if req.subnet.is_none() && (req.ip_range.is_some() || req.gateway.is_some()) {
            return Err(bad("ip-range and gateway need a subnet (--subnet)".into()));
        }
    }
    Ok(req)
}

/// Give the network its subnet and record its addresses in IPAM (the caller holds the
/// host-wide subnet claim). A subnet asked for must overlap no host route (Docker's
/// `docker0` among them) and no other network: 403 as dockerd's "Pool overlaps".
pub(super) fn allocate(
    req: &CreateReq,
    ipam: &mut IpamStore,
    id: &str,
    host: &[Subnet],
) -> Result<NetRecord> {
    let subnet = match req.subnet {
        Some(s) => {
            if let Some(h) = host.iter().find(|h| h.overlaps(&s)) {
                return Err(Error::Forbidden(format!(
                    "invalid pool request: subnet {s} overlaps {h}, a route or address of this host"
                )));
            }
            s
        }
        None => ipam
            .pick_subnet(&AddressPool::docker_defaults(), Family::V4, host)
            .map_err(|e| match e {
                StoreError::Pool(p) => Error::Forbidden(format!(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: {p}"
                )),
                e => internal("pick a subnet", e),
            })?,
    };
    let mut pc = PoolConfig::new(subnet);
    if let Some(r) = req.ip_range {
        pc = pc.with_ip_range(r);
    }
    if let Some(g) = req.gateway {
        pc = pc.with_gateway(IpAddr::V4(g));
    }
    for (k, a) in &req.aux {
        pc = pc.with_aux_address(k.clone(), IpAddr::V4(*a));
    }
    let n = ipam.create_network(id, vec![pc]).map_err(|e| match e {
        StoreError::SubnetTaken { .. } => Error::Forbidden(format!(
            "invalid pool request: Pool overlaps with other one on this address space ({e})"
        )),
        StoreError::Ipam { source, .. } => Error::BadParameter(source.to_string()),
        e => internal(format!("record the addresses of network {}", req.name), e),
    })?;
    let gateway = match n.gateway(Family::V4) {
        Some(IpAddr::V4(g)) => g,
        _ => return Err(Error::internal_msg(format!("no gateway in {subnet}"))),
    };
    Ok(NetRecord {
        id: id.to_string(),
        name: req.name.clone(),
        created: now_rfc3339(),
        internal: req.internal,
        attachable: req.attachable,
        labels: req.labels.clone(),
        options: req.options.clone(),
        bridge: req
            .options
            .get(OPT_BRIDGE_NAME)
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12])),
        subnet,
        gateway,
        ip_range: req.ip_range,
        aux: req.aux.clone(),
    })
}

/// A new network ID.
pub(super) fn new_id() -> Result<String> {
    random_id()
}

/// The records' directory (`<root>/network/user`).
pub(super) struct RecordDir(pub PathBuf);

impl RecordDir {
    pub(super) fn net_dir(&self, id: &str) -> PathBuf {
        self.0.join(id)
    }

    pub(super) fn write(&self, r: &NetRecord) -> Result<()> {
        let d = self.net_dir(&r.id);
        std::fs::create_dir_all(&d).map_err(|e| internal(format!("create {}", d.display()), e))?;
        crate::util::write_json_atomic(&d.join("network.json"), r)
    }

    /// Remove a network's directory: renamed to a `.rm-` tombstone first (one atomic step).
    pub(super) fn remove(&self, id: &str) -> Result<()> {
        let d = self.net_dir(id);
        let tomb = self.0.join(format!(".rm-{id}"));
        match std::fs::rename(&d, &tomb) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(internal(format!("remove {}", d.display()), e)),
        }
        let _ = std::fs::remove_dir_all(&tomb);
        Ok(())
    }

    /// Every record; half-made networks and tombstones are removed (their IPAM files are
    /// released by the caller: no record names them).
    pub(super) fn load_all(&self) -> Result<Vec<NetRecord>> {
        std::fs::create_dir_all(&self.0)
            .map_err(|e| internal(format!("create {}", self.0.display()), e))?;
        let rd = std::fs::read_dir(&self.0)
            .map_err(|e| internal(format!("read {}", self.0.display()), e))?;
        let mut ok = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            match load(&p.join("network.json")) {
                Some(r) if r.id == name => ok.push(r),
                _ => {
                    tracing::warn!("removing half-made network directory {}", p.display());
                    let _ = std::fs::remove_dir_all(&p);
                }
            }
        }
        Ok(ok)
    }
}

fn load(p: &Path) -> Option<NetRecord> {
    std::fs::read(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_request_checked() {
        let r = parse_create(&json!({"Name": "n1", "IPAM": {"Config": [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.254", "IPRange": "10.77.0.128/25"}]}, "Labels": {"a": "b"}})).unwrap();
        assert_eq!(r.subnet.unwrap().to_string(), "10.77.0.0/24");
        assert_eq!(r.gateway.unwrap().to_string(), "10.77.0.254");
        assert_eq!(r.labels["a"], "b");
        assert!(parse_create(&json!({"Name": ""})).is_err());
        assert!(parse_create(&json!({"Name": "-x"})).is_err());
        assert!(matches!(
            parse_create(&json!({"Name": "x", "Driver": "overlay"})),
            Err(Error::NotFound(_))
        ));
        assert!(parse_create(&json!({"Name": "x", "EnableIPv6": true})).is_err());
        assert!(
            parse_create(&json!({"Name": "x", "IPAM": {"Config": [{"Gateway": "10.0.0.1"}]}}))
                .is_err()
        );
    }

    #[test]
    fn subnet_avoids_host_and_others() {
        let d = tempfile::tempdir().unwrap();
        let mut ipam = IpamStore::open(d.path().join("ipam")).unwrap();
        let host: Vec<Subnet> = vec!["172.17.0.0/16".parse().unwrap()];
        let req = parse_create(&json!({"Name": "a"})).unwrap();
        let a = allocate(&req, &mut ipam, "aaaaaaaaaaaaaaaa", &host).unwrap();
        assert_eq!(a.subnet.to_string(), "172.18.0.0/16");
        assert_eq!(a.gateway.to_string(), "172.18.0.1");
        assert_eq!(a.bridge, "br-aaaaaaaaaaaa");
        let b = allocate(&req, &mut ipam, "bbbbbbbbbbbbbbbb", &host).unwrap();
        assert_eq!(b.subnet.to_string(), "172.19.0.0/16");
        let clash =
            parse_create(&json!({"Name": "c", "IPAM": {"Config": [{"Subnet": "172.18.5.0/24"}]}}))
                .unwrap();
        assert!(matches!(
            allocate(&clash, &mut ipam, "cccccccccccccccc", &host),
            Err(Error::Forbidden(_))
        ));
        let on_host =
            parse_create(&json!({"Name": "d", "IPAM": {"Config": [{"Subnet": "172.17.3.0/24"}]}}))
                .unwrap();
        assert!(matches!(
            allocate(&on_host, &mut ipam, "dddddddddddddddd", &host),
            Err(Error::Forbidden(_))
        ));
    }
}
