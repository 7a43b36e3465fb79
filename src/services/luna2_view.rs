//! The applied design as Luna2 config (what `GET /config/…` answers): nodes
//! (BaremetalNodes with their host-profile chain), groups (HostProfiles),
//! networks, node interfaces, BMC setups (`oob`), OS images (platform
//! images), racks and the cluster (the Region), in Luna2's JSON shapes.
//! Built once per served revision ([`SiteView`], shared behind an `Arc`),
//! never per request. The nodes are kept only serialised, in the one buffer
//! `GET /config/node` answers (each node a slice of it, parsed when one node
//! is asked for): at 10,000 nodes their JSON trees would hold several times
//! the 12 MB of the text. docs/compat.md maps each field.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{BootError, BootService};
use crate::design::effective::{compile_host_profile, EffectiveNode};
use crate::design::Design;

/// What slipway answers for a password (Luna2 answers the BMC password in
/// clear; slipway never serves a credential).
pub const HIDDEN: &str = "<hidden>";

/// Luna2's base64 text fields (the CLI decodes `kerneloptions`, `comment`,
/// `options` and the scripts).
/// The text a Luna2 client sent base64-encoded (`comment`, `kerneloptions`,
/// ...: the CLI encodes them), or `None` when `s` is not base64 of UTF-8
/// text (then it was sent as it is). For the config writes.
pub fn unb64_text(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(bytes).ok()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A network of the view: its Luna2 object, its prefix and who holds which address.
#[derive(Debug)]
pub struct NetworkView {
    /// `{"name","network",…}`.
    pub value: Value,
    /// The CIDR, when the design gives one.
    pub cidr: Option<ipnet::IpNet>,
    /// Address → the node holding it on this network (or its BMC).
    pub taken: BTreeMap<IpAddr, String>,
    /// The first address no node holds, in a static range (or the CIDR).
    pub next_free: Option<IpAddr>,
}

/// The answer about one address of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressStatus {
    /// Not in the network's CIDR.
    OutOfScope,
    /// Held by a node.
    Taken(String),
    /// Held by nobody.
    Free,
}

/// The served revision as Luna2 config.
#[derive(Debug, Default)]
pub struct SiteView {
    /// The revision it was built from.
    pub commit: String,
    /// Each node's JSON object, a slice of `node_list`.
    nodes: BTreeMap<String, bytes::Bytes>,
    /// `{"config":{"node":{…every node…}}}`, serialised once.
    node_list: bytes::Bytes,
    groups: BTreeMap<String, Value>,
    members: BTreeMap<String, Vec<String>>,
    networks: BTreeMap<String, NetworkView>,
    osimages: BTreeMap<String, Value>,
    bmcsetups: BTreeMap<String, Value>,
    racks: BTreeMap<String, Value>,
    cluster: Value,
}

fn wrap(kind: &str, body: Value) -> Value {
    json!({"config": {kind: body}})
}

fn one(kind: &str, name: &str, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert(name.to_string(), v.clone());
    wrap(kind, Value::Object(m))
}

fn all(kind: &str, items: &BTreeMap<String, Value>) -> Value {
    wrap(
        kind,
        Value::Object(items.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
    )
}

impl SiteView {
    /// `GET /config/node`: every node, serialised.
    pub fn node_list(&self) -> bytes::Bytes {
        self.node_list.clone()
    }
    /// Node names, sorted.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }
    /// Whether the design has this node.
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }
    /// A node's JSON object, parsed from its text.
    fn parsed_node(&self, name: &str) -> Option<Value> {
        // The text was serialised from a Value here, so it parses.
        self.nodes
            .get(name)
            .and_then(|text| serde_json::from_slice(text).ok())
    }
    /// `GET /config/node/{node}`.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.parsed_node(name).map(|v| one("node", name, &v))
    }
    /// `GET /config/node/{a,b,…}`: the named nodes (each must exist).
    pub fn nodes(&self, names: &[String]) -> Result<Value, String> {
        let mut m = Map::new();
        for n in names {
            let v = self.parsed_node(n).ok_or_else(|| n.clone())?;
            m.insert(n.clone(), v);
        }
        Ok(wrap("node", Value::Object(m)))
    }
    /// `GET /config/node/{node}/interfaces`.
    pub fn node_interfaces(&self, name: &str) -> Option<Value> {
        let v = self.parsed_node(name)?;
        Some(one("node", name, &json!({"interfaces": v["interfaces"]})))
    }
    /// `GET /config/node/{node}/interfaces/{if}`: `None` for an unknown node,
    /// `Some(None)` for an unknown interface.
    pub fn node_interface(&self, name: &str, interface: &str) -> Option<Option<Value>> {
        let v = self.parsed_node(name)?;
        let found = v["interfaces"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["interface"] == interface))
            .cloned();
        Some(found.map(|i| one("node", name, &json!({"interfaces": [i]}))))
    }
    /// `GET /config/group`.
    pub fn group_list(&self) -> Value {
        all("group", &self.groups)
    }
    /// `GET /config/group/{group}`.
    pub fn group(&self, name: &str) -> Option<Value> {
        self.groups.get(name).map(|v| one("group", name, v))
    }
    /// `GET /config/group/{group}/_member` (and `_list`).
    pub fn group_members(&self, name: &str) -> Option<Value> {
        self.groups.get(name)?;
        let members = self.members.get(name).cloned().unwrap_or_default();
        Some(one("group", name, &json!({"members": members})))
    }
    /// `GET /config/network`.
    pub fn network_list(&self) -> Value {
        wrap(
            "network",
            Value::Object(
                self.networks
                    .iter()
                    .map(|(k, n)| (k.clone(), n.value.clone()))
                    .collect(),
            ),
        )
    }
    /// `GET /config/network/{net}`.
    pub fn network(&self, name: &str) -> Option<Value> {
        self.networks
            .get(name)
            .map(|n| one("network", name, &n.value))
    }
    /// `GET /config/network/{net}/{ip}`.
    pub fn network_address(&self, name: &str, ip: IpAddr) -> Option<AddressStatus> {
        let n = self.networks.get(name)?;
        Some(match n.cidr {
            Some(c) if c.contains(&ip) => match n.taken.get(&ip) {
                Some(d) => AddressStatus::Taken(d.clone()),
                None => AddressStatus::Free,
            },
            _ => AddressStatus::OutOfScope,
        })
    }
    /// `GET /config/network/{net}/_list`: the taken addresses.
    pub fn network_taken(&self, name: &str) -> Option<Value> {
        let n = self.networks.get(name)?;
        let taken: Vec<Value> = n
            .taken
            .iter()
            .map(|(ip, d)| json!({"ipaddress": ip.to_string(), "device": d}))
            .collect();
        Some(one("network", name, &json!({"taken": taken})))
    }
    /// `GET /config/network/{net}/_nextfreeip`: `None` for an unknown
    /// network, `Some(None)` when none is free. Nothing is reserved.
    pub fn next_free(&self, name: &str) -> Option<Option<Value>> {
        let n = self.networks.get(name)?;
        Some(
            n.next_free
                .map(|ip| one("network", name, &json!({"nextip": ip.to_string()}))),
        )
    }
    /// `GET /config/osimage`.
    pub fn osimage_list(&self) -> Value {
        all("osimage", &self.osimages)
    }
    /// `GET /config/osimage/{image}`.
    pub fn osimage(&self, name: &str) -> Option<Value> {
        self.osimages.get(name).map(|v| one("osimage", name, v))
    }
    /// `GET /config/bmcsetup`.
    pub fn bmcsetup_list(&self) -> Value {
        all("bmcsetup", &self.bmcsetups)
    }
    /// `GET /config/bmcsetup/{name}`.
    pub fn bmcsetup(&self, name: &str) -> Option<Value> {
        self.bmcsetups.get(name).map(|v| one("bmcsetup", name, v))
    }
    /// `GET /config/rack`.
    pub fn rack_list(&self) -> Value {
        all("rack", &self.racks)
    }
    /// `GET /config/rack/{rack}`.
    pub fn rack(&self, name: &str) -> Option<Value> {
        self.racks.get(name).map(|v| one("rack", name, v))
    }
    /// `GET /config/cluster`.
    pub fn cluster(&self) -> Value {
        wrap("cluster", self.cluster.clone())
    }
}

/// `console=ttyS1,115200n8 quiet audit=1`: `true` is the bare key, `false`
/// and `null` are left out, anything else `key=value`.
pub fn kernel_options(params: &BTreeMap<String, Value>) -> String {
    params
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Bool(true) => Some(k.clone()),
            Value::Bool(false) | Value::Null => None,
            Value::String(s) => Some(format!("{k}={s}")),
            other => Some(format!("{k}={other}")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The interface a node boots from: `pxe` when it has one, else its first.
fn boot_interface(n: &EffectiveNode) -> Option<&str> {
    n.interface("pxe")
        .map(|_| "pxe")
        .or_else(|| n.interfaces.first().map(|(name, _)| name.as_str()))
}

/// Luna2's interface entries of a node (or a group, without addresses):
/// one per (interface, network), the first network under the interface's
/// name, the others as `<interface>:<network>`; the BMC as `BMC` on
/// `oob.network`.
fn interfaces(n: &EffectiveNode, with_addresses: bool) -> Vec<Value> {
    let boot = boot_interface(n).map(str::to_string);
    let mut out = Vec::new();
    for (name, iface) in n.interfaces.iter() {
        let networks = iface.networks.clone().unwrap_or_default();
        let nets: Vec<Option<&String>> = if networks.is_empty() {
            vec![None]
        } else {
            networks.iter().map(Some).collect()
        };
        for (i, net) in nets.into_iter().enumerate() {
            let label = match (i, net) {
                (0, _) | (_, None) => name.clone(),
                (_, Some(net)) => format!("{name}:{net}"),
            };
            let mut e = Map::new();
            e.insert("interface".into(), json!(label));
            e.insert("network".into(), json!(net));
            if with_addresses {
                if let Some(net) = net {
                    let dhcp = n.addressing.iter().any(|(nn, a)| {
                        nn.as_deref() == Some(net.as_str()) && a.as_deref() == Some("dhcp")
                    });
                    if dhcp {
                        e.insert("dhcp".into(), json!(true));
                    } else if let Some(a) = n.address_on(net) {
                        e.insert("ipaddress".into(), json!(a));
                    }
                }
                if i == 0 && boot.as_deref() == Some(name.as_str()) {
                    if let Some(mac) = &n.boot_mac {
                        e.insert("macaddress".into(), json!(mac));
                    }
                }
            }
            if let Some(slaves) = iface.slaves.as_ref().filter(|s| s.len() > 1) {
                if i == 0 {
                    e.insert("bond_slaves".into(), json!(slaves.join(",")));
                }
            }
            out.push(Value::Object(e));
        }
    }
    if let Some(oob) = &n.oob {
        let mut e = Map::new();
        e.insert("interface".into(), json!("BMC"));
        e.insert("network".into(), json!(oob.network));
        if with_addresses {
            if let Some(a) = oob.network.as_deref().and_then(|net| n.address_on(net)) {
                e.insert("ipaddress".into(), json!(a));
            }
        }
        out.push(Value::Object(e));
    }
    out
}

/// The BMC setup a node or profile uses: the profile of its chain that
/// defines `oob` nearest to it (a node's own `oob`: the node's name).
fn bmcsetup_of(design: &Design, own_oob: bool, name: &str, chain: &[String]) -> Option<String> {
    if own_oob {
        return Some(name.to_string());
    }
    chain
        .iter()
        .find(|p| design.host_profile(p).is_some_and(|h| h.data.oob.is_some()))
        .cloned()
}

/// The fields a node and a group share.
fn common(design: &Design, e: &EffectiveNode, bmcsetup: Option<String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("osimage".into(), json!(e.image));
    m.insert("osimagetag".into(), json!("default"));
    m.insert(
        "kerneloptions".into(),
        json!(b64(&kernel_options(&e.kernel_params))),
    );
    m.insert("setupbmc".into(), json!(e.oob.is_some()));
    m.insert("bmcsetup".into(), json!(bmcsetup));
    // The same flags the boot scripts follow (the seed's table), so
    // `/config/node` and `/boot` agree.
    let (netboot, bootmenu) = super::boot_scripts::flags(e);
    m.insert("netboot".into(), json!(netboot));
    m.insert("bootmenu".into(), json!(bootmenu));
    m.insert("roles".into(), Value::Null);
    m.insert("scripts".into(), Value::Null);
    for s in ["prescript", "partscript", "postscript"] {
        m.insert(s.into(), json!(""));
    }
    m.insert("provision_method".into(), json!("http"));
    m.insert("provision_fallback".into(), json!("http"));
    m.insert(
        "provision_interface".into(),
        json!(boot_interface(e).unwrap_or("BOOTIF")),
    );
    m.insert("ipxe_kernel".into(), json!("default"));
    m.insert("unmanaged_bmc_users".into(), Value::Null);
    // Luna2's free-text fields a config write keeps in `metadata.owner_data`
    // (the comment base64, as Luna2 stores it and its CLI decodes it).
    m.insert(
        "comment".into(),
        json!(e.owner_data.get("comment").map(|c| b64(c))),
    );
    m.insert("_override".into(), json!(false));
    let _ = design;
    m
}

fn node_value(design: &Design, e: &EffectiveNode) -> Value {
    let own_oob = design.node(&e.name).is_some_and(|n| n.data.oob.is_some());
    let mut m = common(
        design,
        e,
        bmcsetup_of(design, own_oob, &e.name, &e.profile_chain),
    );
    m.insert("name".into(), json!(e.name));
    m.insert("hostname".into(), json!(e.name));
    m.insert("group".into(), json!(e.profile_chain.first()));
    m.insert("status".into(), Value::Null);
    m.insert("service".into(), json!(false));
    m.insert("localinstall".into(), json!(false));
    m.insert("switch".into(), Value::Null);
    m.insert("switchport".into(), Value::Null);
    m.insert("cloud".into(), Value::Null);
    m.insert(
        "vendor".into(),
        json!(e.owner_data.get("vendor").cloned().or_else(|| e
            .hardware_profile
            .as_deref()
            .and_then(|h| design.hardware_profile(h))
            .and_then(|h| h.data.vendor.clone()))),
    );
    m.insert("assettag".into(), json!(e.owner_data.get("assettag")));
    m.insert("position".into(), Value::Null);
    m.insert("rack".into(), json!(e.rack));
    m.insert("macaddr".into(), json!(e.boot_mac));
    for t in ["tpm_uuid", "tpm_pubkey", "tpm_sha256"] {
        m.insert(t.into(), Value::Null);
    }
    m.insert("tpm_present".into(), json!(false));
    m.insert("interfaces".into(), Value::Array(interfaces(e, true)));
    Value::Object(m)
}

fn group_value(design: &Design, name: &str) -> Value {
    let e = compile_host_profile(design, name);
    let mut m = common(
        design,
        &e,
        bmcsetup_of(design, false, name, &e.profile_chain),
    );
    m.insert("name".into(), json!(name));
    m.insert("bmcsetupname".into(), m["bmcsetup"].clone());
    m.insert("domain".into(), json!(e.primary_network));
    m.insert("interfaces".into(), Value::Array(interfaces(&e, false)));
    Value::Object(m)
}

fn network_view(design: &Design, name: &str, taken: BTreeMap<IpAddr, String>) -> NetworkView {
    let data = design
        .network(name)
        .map(|n| n.data.clone())
        .unwrap_or_default();
    let cidr: Option<ipnet::IpNet> = data.cidr.as_deref().and_then(|c| c.parse().ok());
    let range = |kind: &str| {
        data.ranges
            .iter()
            .filter(|r| r.range_type.as_deref() == Some(kind))
            .filter_map(|r| {
                let s: IpAddr = r.start.as_deref()?.parse().ok()?;
                let e: IpAddr = r.end.as_deref()?.parse().ok()?;
                Some((s, e))
            })
            .collect::<Vec<_>>()
    };
    let (statics, dhcp, reserved) = (range("static"), range("dhcp"), range("reserved"));
    let gateway = data
        .routes
        .iter()
        .find(|r| matches!(r.subnet.as_deref(), Some("0.0.0.0/0") | Some("::/0")))
        .and_then(|r| r.gateway.clone());
    let ns = data
        .dns
        .as_ref()
        .and_then(|d| d.servers.as_ref())
        .and_then(|s| s.first().cloned());
    let mut v = Map::new();
    v.insert("name".into(), json!(name));
    v.insert("network".into(), json!(data.cidr));
    v.insert("type".into(), json!("ethernet"));
    v.insert("zone".into(), json!("internal"));
    v.insert("gateway".into(), json!(gateway));
    v.insert("ns_hostname".into(), Value::Null);
    v.insert("ns_ip".into(), json!(ns));
    v.insert("ntp_server".into(), Value::Null);
    v.insert(
        "domain".into(),
        json!(data.dns.as_ref().and_then(|d| d.domain.clone())),
    );
    v.insert("mtu".into(), json!(data.mtu.map(|m| m as u64)));
    v.insert("vlanid".into(), json!(data.vlan));
    v.insert("comment".into(), Value::Null);
    v.insert("dhcp".into(), json!(!dhcp.is_empty()));
    v.insert(
        "dhcp_range_begin".into(),
        json!(dhcp.first().map(|r| r.0.to_string())),
    );
    v.insert(
        "dhcp_range_end".into(),
        json!(dhcp.first().map(|r| r.1.to_string())),
    );
    v.insert("shared".into(), Value::Null);
    // The first address nobody holds: in a static range, else anywhere in the
    // CIDR outside the reserved and DHCP ranges, the gateway and the network's
    // own and broadcast addresses. Bounded: at most taken + 1 candidates each.
    let blocked = |ip: &IpAddr| {
        taken.contains_key(ip)
            || gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok()) == Some(*ip)
            || reserved
                .iter()
                .chain(&dhcp)
                .any(|(s, e)| s <= ip && ip <= e)
    };
    let pools: Vec<(IpAddr, IpAddr)> = if !statics.is_empty() {
        statics.clone()
    } else {
        match cidr {
            Some(ipnet::IpNet::V4(c)) => c
                .hosts()
                .next()
                .zip(c.hosts().last())
                .map(|(a, b)| vec![(IpAddr::V4(a), IpAddr::V4(b))])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let next_free = pools.iter().find_map(|(s, e)| first_free(*s, *e, &blocked));
    NetworkView {
        value: Value::Object(v),
        cidr,
        taken,
        next_free,
    }
}

/// The most addresses [`first_free`] looks at in one range.
const SCAN_LIMIT: usize = 1 << 20;

/// The first address from `start` to `end` not `blocked`, looking at
/// [`SCAN_LIMIT`] addresses at most (IPv4 only).
fn first_free(start: IpAddr, end: IpAddr, blocked: &dyn Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    let (IpAddr::V4(s), IpAddr::V4(e)) = (start, end) else {
        return None;
    };
    let (mut i, e) = (u32::from(s), u32::from(e));
    let mut looked = 0usize;
    while i <= e && looked < SCAN_LIMIT {
        let ip = IpAddr::V4(i.into());
        if !blocked(&ip) {
            return Some(ip);
        }
        looked += 1;
        i = i.checked_add(1)?;
    }
    None
}

/// Builds the view of a design.
pub fn build(commit: &str, design: &Design) -> SiteView {
    let eff = design.effective_nodes();
    // Each node once (the first of a name), in name order: the order of
    // the serialised list.
    let mut by_name: BTreeMap<&str, &EffectiveNode> = BTreeMap::new();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut taken: BTreeMap<String, BTreeMap<IpAddr, String>> = BTreeMap::new();
    let mut images: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut rack_nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in eff {
        if by_name.contains_key(e.name.as_str()) {
            continue;
        }
        by_name.insert(&e.name, e);
        if let Some(g) = e.profile_chain.first() {
            members.entry(g.clone()).or_default().push(e.name.clone());
        }
        for (net, addr) in &e.addressing {
            if let (Some(net), Some(Ok(ip))) = (net, addr.as_deref().map(str::parse::<IpAddr>)) {
                taken
                    .entry(net.clone())
                    .or_default()
                    .entry(ip)
                    .or_insert_with(|| e.name.clone());
            }
        }
        if let Some(img) = &e.image {
            let entry = images.entry(img.clone()).or_default();
            if let Some(k) = &e.kernel {
                if !entry.0.contains(k) {
                    entry.0.push(k.clone());
                }
            }
            entry.1.push(e.name.clone());
        }
        if let Some(r) = &e.rack {
            rack_nodes
                .entry(r.clone())
                .or_default()
                .push(e.name.clone());
        }
    }
    let mut groups = BTreeMap::new();
    for h in &design.host_profiles {
        if !groups.contains_key(&h.name) {
            groups.insert(h.name.clone(), group_value(design, &h.name));
            let e = compile_host_profile(design, &h.name);
            if let Some(img) = &e.image {
                let entry = images.entry(img.clone()).or_default();
                if let Some(k) = &e.kernel {
                    if !entry.0.contains(k) {
                        entry.0.push(k.clone());
                    }
                }
            }
        }
    }
    let mut networks = BTreeMap::new();
    for n in &design.networks {
        if !networks.contains_key(&n.name) {
            let t = taken.remove(&n.name).unwrap_or_default();
            networks.insert(n.name.clone(), network_view(design, &n.name, t));
        }
    }
    let osimages = images
        .into_iter()
        .map(|(name, (mut kernels, users))| {
            kernels.sort();
            let v = json!({
                "name": name,
                "kernelversion": kernels.join(","),
                "kernelfile": null, "initrdfile": null, "imagefile": null,
                "path": null, "distribution": null, "osrelease": null,
                "kerneloptions": b64(""), "comment": null,
                "nodes": users,
            });
            (name, v)
        })
        .collect();
    let mut bmcsetups = BTreeMap::new();
    let oob_value = |name: &str, oob: &crate::design::model::Oob| {
        json!({
            "name": name,
            "type": oob.oob_type,
            "network": oob.network,
            "userid": null,
            "username": oob.account,
            "password": HIDDEN,
            "netchannel": null,
            "mgmtchannel": null,
            "unmanaged_bmc_users": null,
            "comment": null,
        })
    };
    for h in &design.host_profiles {
        if h.data.oob.is_some() && !bmcsetups.contains_key(&h.name) {
            let e = compile_host_profile(design, &h.name);
            if let Some(oob) = &e.oob {
                bmcsetups.insert(h.name.clone(), oob_value(&h.name, oob));
            }
        }
    }
    // The compiled nodes are in the order of the design's nodes.
    for (n, e) in design.nodes.iter().zip(eff) {
        if n.data.oob.is_some() && !bmcsetups.contains_key(&n.name) {
            if let Some(oob) = &e.oob {
                bmcsetups.insert(n.name.clone(), oob_value(&n.name, oob));
            }
        }
    }
    let region = design.regions.first();
    let racks = design
        .racks
        .iter()
        .map(|r| {
            let devices: Vec<Value> = rack_nodes
                .get(&r.name)
                .map(|ns| {
                    ns.iter()
                        .map(|n| json!({"name": n, "type": "node", "orientation": "front"}))
                        .collect()
                })
                .unwrap_or_default();
            let loc = &r.data.location;
            let v = json!({
                "name": r.name,
                "site": region.map(|g| g.name.clone()),
                "room": loc.get("clli"),
                "order": loc.get("grid"),
                "size": null,
                "devices": devices,
                "tor_switches": r.data.tor_switches.keys().collect::<Vec<_>>(),
            });
            (r.name.clone(), v)
        })
        .collect();
    let cluster = json!({
        "name": region.map(|g| g.name.clone()),
        "controller": null,
        "technical_contacts": null,
        "provision_method": "http",
        "provision_fallback": "http",
        "nameserver_ip": null,
        "forwardserver_ip": null,
        "ntp_server": null,
        "domain_search": null,
        "debug": false,
        "security": true,
        "createnode_ondemand": false,
        "createnode_macashost": false,
        "nextnode_discover": false,
        "packing_bootpause": null,
        "user": null,
        "authorized_keys": region.map(|g| g.data.authorized_keys.len()),
    });
    let (node_list, nodes) = serialise_nodes(design, &by_name);
    SiteView {
        commit: commit.to_string(),
        nodes,
        node_list,
        groups,
        members,
        networks,
        osimages,
        bmcsetups,
        racks,
        cluster,
    }
}

/// `{"config":{"node":{…}}}` of `nodes`, serialised one node at a time (one
/// node's tree in memory at once), and each node's object as a slice of it.
fn serialise_nodes(
    design: &Design,
    nodes: &BTreeMap<&str, &EffectiveNode>,
) -> (bytes::Bytes, BTreeMap<String, bytes::Bytes>) {
    let mut text = Vec::with_capacity(nodes.len() * 1024);
    let mut ranges = Vec::with_capacity(nodes.len());
    text.extend_from_slice(br#"{"config":{"node":{"#);
    for (i, (name, e)) in nodes.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        // Strings and a Value with string keys serialise without failing.
        serde_json::to_writer(&mut text, name).expect("a string serialises");
        text.push(b':');
        let start = text.len();
        serde_json::to_writer(&mut text, &node_value(design, e)).expect("a Value serialises");
        ranges.push((name.to_string(), start..text.len()));
    }
    text.extend_from_slice(b"}}}");
    let text = bytes::Bytes::from(text);
    let nodes = ranges
        .into_iter()
        .map(|(name, r)| (name, text.slice(r)))
        .collect();
    (text, nodes)
}

/// The view of the served revision, built on first use after it changed.
pub struct Luna2Site {
    boot: Arc<BootService>,
    view: RwLock<Option<Arc<SiteView>>>,
    building: Mutex<()>,
}

impl std::fmt::Debug for Luna2Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Luna2Site").finish_non_exhaustive()
    }
}

impl Luna2Site {
    /// The service over the boot service's served design.
    pub fn new(boot: Arc<BootService>) -> Luna2Site {
        Luna2Site {
            boot,
            view: RwLock::new(None),
            building: Mutex::new(()),
        }
    }

    /// The view when it is built for the served revision (memory only).
    pub fn current(&self) -> Option<Arc<SiteView>> {
        let loaded = self.boot.served_design().ok()?;
        self.view
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|v| v.commit == loaded.commit)
            .cloned()
    }

    /// The view of the served revision (blocking: builds it once per revision).
    pub fn view(&self) -> Result<Arc<SiteView>, BootError> {
        let loaded = self.boot.served_design()?;
        let fresh =
            |v: &Option<Arc<SiteView>>| v.as_ref().filter(|v| v.commit == loaded.commit).cloned();
        if let Some(v) = fresh(&self.view.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(v);
        }
        let _b = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = fresh(&self.view.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(v);
        }
        let t = std::time::Instant::now();
        let v = Arc::new(build(&loaded.commit, &loaded.design));
        tracing::info!(commit = %loaded.commit, nodes = v.nodes.len(), took_ms = t.elapsed().as_millis() as u64, "luna2: config view built for the served revision");
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_options_are_words_true_bare_false_left_out() {
        let mut p = BTreeMap::new();
        p.insert("console".to_string(), json!("ttyS1,115200n8"));
        p.insert("quiet".to_string(), json!(true));
        p.insert("splash".to_string(), json!(false));
        p.insert("hugepages".to_string(), json!(32));
        assert_eq!(
            kernel_options(&p),
            "console=ttyS1,115200n8 hugepages=32 quiet"
        );
        assert_eq!(kernel_options(&BTreeMap::new()), "");
    }

    #[test]
    fn the_next_free_address_skips_taken_reserved_dhcp_and_the_gateway() {
        let yaml = r#"
schema: 'drydock/Network/v1'
metadata: {schema: 'metadata/Document/v1', name: net, layeringDefinition: {abstract: false, layer: site}, storagePolicy: cleartext}
data:
  cidr: 10.0.0.0/24
  routes: [{subnet: 0.0.0.0/0, gateway: 10.0.0.1, metric: 10}]
  ranges:
    - {type: reserved, start: 10.0.0.2, end: 10.0.0.9}
    - {type: dhcp, start: 10.0.0.200, end: 10.0.0.250}
"#;
        let files = [crate::design::DesignFile {
            path: "n.yaml".into(),
            bytes: yaml.as_bytes().to_vec(),
        }];
        let v = crate::validate(&files);
        let design = v.design.expect("parsed");
        let mut taken = BTreeMap::new();
        for i in 10..13 {
            taken.insert(IpAddr::from([10, 0, 0, i]), format!("n{i}"));
        }
        let n = network_view(&design, "net", taken.clone());
        // No static range: the CIDR's hosts, past the gateway (.1), the
        // reserved .2-.9 and the taken .10-.12.
        assert_eq!(n.next_free, Some(IpAddr::from([10, 0, 0, 13])));
        assert_eq!(n.value["gateway"], json!("10.0.0.1"));
        assert_eq!(n.value["dhcp"], json!(true));
        assert_eq!(n.value["dhcp_range_begin"], json!("10.0.0.200"));
        let view = SiteView {
            networks: [("net".to_string(), n)].into_iter().collect(),
            ..Default::default()
        };
        assert_eq!(
            view.network_address("net", IpAddr::from([10, 0, 0, 11])),
            Some(AddressStatus::Taken("n11".into()))
        );
        assert_eq!(
            view.network_address("net", IpAddr::from([10, 0, 0, 99])),
            Some(AddressStatus::Free)
        );
        assert_eq!(
            view.network_address("net", IpAddr::from([10, 0, 1, 1])),
            Some(AddressStatus::OutOfScope)
        );
        assert_eq!(
            view.network_address("other", IpAddr::from([10, 0, 0, 1])),
            None
        );
    }
}
