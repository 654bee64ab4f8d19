//! User-defined bridge networks: the create request checked, the record
//! (`<root>/network/user/<id>/network.json`, written temp-then-rename into a directory made
//! first; a directory without a readable record is a half-made network, removed at start-up
//! with its IPAM file), the subnet picked from Docker's pools clear of host routes and of
//! every other network. With `--ipv6` (`EnableIPv6`) a network also has an IPv6 subnet: the
//! one given (`IPAM.Config` entry of that family), else a /64 of this host's ULA prefix
//! (`fdXX:XXXX:XXXX::/48`, the 40-bit global ID derived from `/etc/machine-id` as dockerd
//! derives it from its engine ID), clear of host routes and other networks.
use crate::util::{internal, labels_of, now_rfc3339, random_id};
use crate::{Error, Result};
use berth_net::{AddressPool, Family, IpamStore, PoolConfig, StoreError, Subnet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// The IPv6 side of a network made with `--ipv6` (absent in older records: no IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<V6Record>,
}

/// A network's IPv6 subnet, gateway and range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct V6Record {
    pub subnet: Subnet,
    pub gateway: Ipv6Addr,
    pub ip_range: Option<Subnet>,
}

/// The IPv6 part of a create request (`--ipv6`, and an `IPAM.Config` entry of that family).
#[derive(Debug, Default)]
pub(super) struct V6Req {
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv6Addr>,
    pub ip_range: Option<Subnet>,
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
    /// `EnableIPv6`.
    pub ipv6: Option<V6Req>,
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

fn v6_subnet(s: &str, what: &str) -> Result<Subnet> {
    let sub: Subnet = s
        .parse()
        .map_err(|e| bad(format!("invalid {what} {s}: {e}")))?;
    if sub.is_ipv4() || sub.prefix_len() > 126 {
        return Err(bad(format!(
            "invalid {what} {s}: an IPv6 subnet of prefix length 126 or less is needed"
        )));
    }
    Ok(sub)
}

fn v6_addr(s: &str, what: &str) -> Result<Ipv6Addr> {
    s.parse()
        .map_err(|_| bad(format!("invalid {what} {s}: not an IPv6 address")))
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
    for (k, what) in [("Ingress", "Ingress"), ("ConfigOnly", "ConfigOnly")] {
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
    let is_v6 = |c: &Value| c["Subnet"].as_str().is_some_and(|s| s.contains(':'));
    let (v6_configs, v4_configs): (Vec<Value>, Vec<Value>) =
        configs.into_iter().partition(|c| is_v6(c));
    if v4_configs.len() > 1 || v6_configs.len() > 1 {
        return Err(bad(
            "more than one IPAM.Config of a family (several subnets) is not supported by berth yet"
                .into(),
        ));
    }
    let enable_v6 = body["EnableIPv6"].as_bool() == Some(true);
    if !v6_configs.is_empty() && !enable_v6 {
        return Err(bad(
            "an IPv6 subnet needs IPv6 enabled on the network (--ipv6, EnableIPv6)".into(),
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
        ipv6: None,
    };
    if enable_v6 {
        req.ipv6 = Some(parse_v6(v6_configs.first())?);
    }
    if let Some(c) = v4_configs.first() {
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

/// The IPv6 `IPAM.Config` entry (subnet, gateway, range; no auxiliary addresses).
fn parse_v6(c: Option<&Value>) -> Result<V6Req> {
    let Some(c) = c else {
        return Ok(V6Req::default());
    };
    let get = |k: &str| c[k].as_str().filter(|s| !s.is_empty());
    if c["AuxiliaryAddresses"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(bad(
            "auxiliary addresses on an IPv6 subnet are not supported by berth yet".into(),
        ));
    }
    let r = V6Req {
        subnet: get("Subnet").map(|s| v6_subnet(s, "subnet")).transpose()?,
        gateway: get("Gateway").map(|s| v6_addr(s, "gateway")).transpose()?,
        ip_range: get("IPRange")
            .map(|s| v6_subnet(s, "ip-range"))
            .transpose()?,
    };
    Ok(r)
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
    let mut pcs = vec![pc];
    let v6 = match &req.ipv6 {
        Some(v6) => Some(v6_pool(v6, ipam, host)?),
        None => None,
    };
    pcs.extend(v6.clone());
    let n = ipam.create_network(id, pcs).map_err(|e| match e {
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
    let ipv6 = match (v6, n.gateway(Family::V6)) {
        (Some(pc), Some(IpAddr::V6(g))) => Some(V6Record {
            subnet: pc.subnet,
            gateway: g,
            ip_range: pc.ip_range,
        }),
        (None, _) => None,
        (Some(pc), _) => return Err(Error::internal_msg(format!("no gateway in {}", pc.subnet))),
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
        ipv6,
    })
}

/// The IPv6 pool of a `--ipv6` network: the subnet given (clear of the host's routes and
/// addresses: 403), else a /64 of this host's ULA prefix clear of them and of every network.
fn v6_pool(v6: &V6Req, ipam: &IpamStore, host: &[Subnet]) -> Result<PoolConfig> {
    let subnet = match v6.subnet {
        Some(s) => {
            if let Some(h) = host.iter().find(|h| h.overlaps(&s)) {
                return Err(Error::Forbidden(format!(
                    "invalid pool request: subnet {s} overlaps {h}, a route or address of this host"
                )));
            }
            s
        }
        None => ipam
            .pick_subnet(&[AddressPool::ula_for_host(&host_id())], Family::V6, host)
            .map_err(|e| match e {
                StoreError::Pool(p) => Error::Forbidden(format!(
                    "could not find an available, non-overlapping IPv6 address pool to assign to the network: {p}"
                )),
                e => internal("pick an IPv6 subnet", e),
            })?,
    };
    let mut pc = PoolConfig::new(subnet);
    if let Some(r) = v6.ip_range {
        pc = pc.with_ip_range(r);
    }
    if let Some(g) = v6.gateway {
        pc = pc.with_gateway(IpAddr::V6(g));
    }
    Ok(pc)
}

/// What this host's ULA prefix derives from: `/etc/machine-id` (stable per host, as dockerd's
/// engine ID), else the hostname.
fn host_id() -> Vec<u8> {
    match std::fs::read("/etc/machine-id") {
        Ok(b) if !b.trim_ascii().is_empty() => b.trim_ascii().to_vec(),
        _ => std::fs::read("/proc/sys/kernel/hostname").unwrap_or_default(),
    }
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
        assert!(matches!(
            parse_create(&json!({"Name": "x", "Driver": "overlay"})),
            Err(Error::NotFound(_))
        ));
        let v6 = parse_create(&json!({"Name": "x", "EnableIPv6": true})).unwrap();
        assert!(v6.ipv6.unwrap().subnet.is_none());
        let v6 = parse_create(
            &json!({"Name": "x", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "fd12:3456:789a::/64", "Gateway": "fd12:3456:789a::fe"},
            {"Subnet": "10.78.0.0/24"}]}}),
        )
        .unwrap();
        assert_eq!(v6.subnet.unwrap().to_string(), "10.78.0.0/24");
        let six = v6.ipv6.unwrap();
        assert_eq!(six.subnet.unwrap().to_string(), "fd12:3456:789a::/64");
        assert_eq!(six.gateway.unwrap().to_string(), "fd12:3456:789a::fe");
        // An IPv6 subnet without --ipv6, two of a family, a v4 gateway on v6: refused.
        for bad in [
            json!({"Name": "x", "IPAM": {"Config": [{"Subnet": "fd12::/64"}]}}),
            json!({"Name": "x", "EnableIPv6": true, "IPAM": {"Config": [{"Subnet": "fd12::/64"}, {"Subnet": "fd13::/64"}]}}),
            json!({"Name": "x", "EnableIPv6": true, "IPAM": {"Config": [{"Subnet": "fd12::/64", "Gateway": "10.0.0.1"}]}}),
        ] {
            assert!(parse_create(&bad).is_err(), "{bad}");
        }
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

    #[test]
    fn ipv6_subnets_picked_given_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let mut ipam = IpamStore::open(d.path().join("ipam")).unwrap();
        let host: Vec<Subnet> = vec!["fd00::/64".parse().unwrap()];
        let req = parse_create(&json!({"Name": "a", "EnableIPv6": true})).unwrap();
        let a = allocate(&req, &mut ipam, "aaaaaaaaaaaaaaaa", &host).unwrap();
        let a6 = a.ipv6.unwrap();
        assert_eq!(a6.subnet.prefix_len(), 64);
        assert!(a6.subnet.to_string().starts_with("fd"), "{}", a6.subnet);
        assert_eq!(a6.gateway, a6.subnet.first_host().unwrap());
        let b = allocate(&req, &mut ipam, "bbbbbbbbbbbbbbbb", &host).unwrap();
        assert!(!b.ipv6.unwrap().subnet.overlaps(&a6.subnet));
        let given = parse_create(
            &json!({"Name": "c", "EnableIPv6": true, "IPAM": {"Config": [
            {"Subnet": "fd42:1:2:3::/64", "Gateway": "fd42:1:2:3::9"}]}}),
        )
        .unwrap();
        let c = allocate(&given, &mut ipam, "cccccccccccccccc", &host).unwrap();
        let c6 = c.ipv6.unwrap();
        assert_eq!(
            (c6.subnet.to_string(), c6.gateway.to_string()),
            ("fd42:1:2:3::/64".into(), "fd42:1:2:3::9".into())
        );
        let gw6 = IpAddr::V6(c6.gateway);
        let ip = ipam.allocate("cccccccccccccccc", Family::V6).unwrap();
        assert_ne!(ip, gw6);
        assert!(ipam.request("cccccccccccccccc", gw6).is_err());
        for (name, sub) in [("d", "fd42:1:2::/48"), ("e", "fd00::/56")] {
            let r = parse_create(
                &json!({"Name": name, "EnableIPv6": true, "IPAM": {"Config": [{"Subnet": sub}]}}),
            )
            .unwrap();
            assert!(
                matches!(
                    allocate(&r, &mut ipam, "dddddddddddddddd", &host),
                    Err(Error::Forbidden(_))
                ),
                "{sub}"
            );
        }
    }
}
