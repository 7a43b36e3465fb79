//! Networks (SW320–SW344): CIDRs, ranges, routes, node addresses, MTUs,
//! trunking, bonding, which link carries which network, and host names.
//!
//! Drydock's network validators (CidrValidity, IpLocalityCheck, MtuRational,
//! NetworkTrunkingRational, NoDuplicateIpsCheck, RationalNetworkBond,
//! UniqueNetworkCheck, HostnameValidity) are matched here, plus the address
//! rules Drydock lets through. Every address is parsed once, up front, so
//! nothing below can fail on text that is not an address.

use std::net::IpAddr;

use ipnet::IpNet;

use super::references::{layers, nodes_by_interfaces, ptr, FxMap, FxSet};
use super::Ctx;
use crate::design::message::Message;
use crate::design::model::{NetworkData, NetworkLinkData};
use crate::design::{Design, Entity, Kind};

/// Drydock's MTU bounds (MtuRational).
const MIN_MTU: f64 = 1280.0;
const MAX_MTU: f64 = 65536.0;

/// Runs the network rules.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    let nets = compile_networks(d, out);
    if d.networks.is_empty() {
        out.push(Message::warning(
            "SW322",
            "no Network documents: expected the networks the nodes are addressed on",
            "Define the site's Networks; a design without networks is likely incomplete.",
        ));
    }
    if d.nodes.is_empty() {
        out.push(Message::warning(
            "SW323",
            "no BaremetalNode documents: expected at least one node",
            "Define the site's BaremetalNodes; a design without nodes is likely incomplete.",
        ));
    }
    overlapping_cidrs(d, &nets, out);
    for l in &d.links {
        link_mtu(d, l, out);
        trunking(d, l, out);
        bonding(d, l, out);
    }
    network_mtu_vs_link(d, out);
    unique_networks(d, out);
    vlans_per_link(d, out);
    let dhcp_addressed = node_addresses(d, &nets, out);
    pxe_untagged(d, &dhcp_addressed, out);
    interface_networks_allowed(ctx, out);
    hostnames(ctx, out);
}

/// A Network's parsed addresses; `None` where the text did not parse.
#[derive(Default)]
struct Net {
    /// The CIDR with host bits cleared (Drydock's locality check does the same).
    cidr: Option<IpNet>,
    /// `(index, type, start, end)` of each range whose bounds parsed.
    ranges: Vec<(usize, String, IpAddr, IpAddr)>,
    gateways: Vec<IpAddr>,
}

/// Parses a CIDR the way Python's `ip_network` does: a bare address is a
/// host network. Returns the text's own network (host bits kept).
fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

fn not_an_ip(field: &str, found: Option<&str>) -> Message {
    let found = match found {
        Some(v) => format!("'{v}'"),
        None => "nothing".to_string(),
    };
    Message::error(
        "SW325",
        format!("{field}: expected an IP address, found {found}"),
        "Write a single IPv4 or IPv6 address, e.g. 10.0.0.1.",
    )
}

fn outside(field: &str, ip: &str, cidr: &IpNet, net: &str) -> Message {
    Message::error(
        "SW326",
        format!("{field} {ip} is not within the CIDR {cidr} of network {net}"),
        "Use an address inside the network's CIDR, or correct the CIDR's prefix length.",
    )
}

fn compile_networks(d: &Design, out: &mut Vec<Message>) -> Vec<Net> {
    d.networks
        .iter()
        .map(|n| compile_network(d, n, out))
        .collect()
}

/// A network's own rules, in the order they report; what later rules need
/// of it (its CIDR, ranges and gateways), parsed.
fn compile_network(d: &Design, n: &Entity<NetworkData>, out: &mut Vec<Message>) -> Net {
    let mut net = Net::default();
    network_cidr(d, n, &mut net, out);
    if let Some(mtu) = n.data.mtu {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            out.push(d.msg_at(mtu_range(mtu), n.doc, "/mtu"));
        }
    }
    network_routes(d, n, &mut net, out);
    network_servers(d, n, &net, out);
    network_ranges(d, n, &mut net, out);
    overlapping_ranges(d, n, &net, out);
    net
}

/// SW320 (does not parse), SW321 (host bits set).
fn network_cidr(d: &Design, n: &Entity<NetworkData>, net: &mut Net, out: &mut Vec<Message>) {
    let data = &n.data;
    if let Some(text) = &data.cidr {
        match parse_cidr(text) {
            None => {
                let m = Message::error(
                    "SW320",
                    format!("cidr '{text}' does not parse: expected address/prefix, e.g. 10.0.0.0/24"),
                    "Write the network address and a prefix length valid for its family (≤ 32 for IPv4, ≤ 128 for IPv6).",
                );
                out.push(d.msg_at(m, n.doc, "/cidr"));
            }
            Some(c) => {
                if c.trunc() != c {
                    let m = Message::error(
                        "SW321",
                        format!("cidr {text} has host bits set: expected {}", c.trunc()),
                        format!("Write the network address: cidr: {}", c.trunc()),
                    );
                    out.push(d.msg_at(m, n.doc, "/cidr"));
                }
                net.cidr = Some(c.trunc());
            }
        }
    }
}

/// Each route: SW320 (subnet does not parse), SW324 (no gateway), SW325
/// (gateway not an address), SW326 (gateway outside the CIDR).
fn network_routes(d: &Design, n: &Entity<NetworkData>, net: &mut Net, out: &mut Vec<Message>) {
    let data = &n.data;
    for (i, r) in data.routes.iter().enumerate() {
        let at = format!("/routes/{i}");
        if let Some(subnet) = &r.subnet {
            if parse_cidr(subnet).is_none() {
                let m = Message::error(
                    "SW320",
                    format!("route subnet '{subnet}' does not parse: expected address/prefix, e.g. 0.0.0.0/0"),
                    "Write the destination network and a prefix length valid for its family.",
                );
                out.push(d.msg_at(m, n.doc, &format!("{at}/subnet")));
            }
        }
        match r.gateway.as_deref().filter(|g| !g.trim().is_empty()) {
            None => {
                let m = Message::error(
                    "SW324",
                    format!("route {i} of network {} has no gateway: expected a gateway address on this network", n.name),
                    "Add the route's next hop as gateway; it must lie inside the network's CIDR.",
                );
                out.push(d.msg_at(m, n.doc, &at));
            }
            Some(g) => match parse_ip(g) {
                None => out.push(d.msg_at(
                    not_an_ip(&format!("route {i} gateway"), Some(g)),
                    n.doc,
                    &format!("{at}/gateway"),
                )),
                Some(ip) => {
                    if let Some(c) = &net.cidr {
                        if !c.contains(&ip) {
                            out.push(d.msg_at(
                                outside(&format!("route {i} gateway"), g, c, &n.name),
                                n.doc,
                                &format!("{at}/gateway"),
                            ));
                        }
                    }
                    net.gateways.push(ip);
                }
            },
        }
    }
}

/// SW325 (a DNS server or the DHCP relay is not an address), SW326 (the
/// relay's own address is outside the CIDR).
fn network_servers(d: &Design, n: &Entity<NetworkData>, net: &Net, out: &mut Vec<Message>) {
    let data = &n.data;
    // DNS servers and the DHCP relay are handed to MAAS as addresses; Drydock
    // passes the text through unchecked (the list is split as MAAS splits it).
    if let Some(servers) = data.dns.as_ref().and_then(|d| d.servers.as_deref()) {
        for server in servers {
            if parse_ip(server).is_none() {
                out.push(d.msg_at(not_an_ip("dns server", Some(server)), n.doc, "/dns/servers"));
            }
        }
    }
    if let Some(relay) = &data.dhcp_relay {
        for (field, v) in [
            ("self_ip", &relay.self_ip),
            ("upstream_target", &relay.upstream_target),
        ] {
            let Some(text) = v.as_deref() else { continue };
            let at = format!("/dhcp_relay/{field}");
            match parse_ip(text) {
                None => out.push(d.msg_at(
                    not_an_ip(&format!("dhcp_relay {field}"), Some(text)),
                    n.doc,
                    &at,
                )),
                // The relay's own address answers on this network; the
                // upstream server is elsewhere by design.
                Some(ip) if field == "self_ip" => {
                    if let Some(c) = net.cidr.as_ref().filter(|c| !c.contains(&ip)) {
                        out.push(d.msg_at(
                            outside("dhcp_relay self_ip", text, c, &n.name),
                            n.doc,
                            &at,
                        ));
                    }
                }
                Some(_) => {}
            }
        }
    }
}

/// Each range: SW325 (a bound is missing or not an address), SW326 (outside
/// the CIDR), SW338 (reversed, or mixing families).
fn network_ranges(d: &Design, n: &Entity<NetworkData>, net: &mut Net, out: &mut Vec<Message>) {
    let data = &n.data;
    for (i, r) in data.ranges.iter().enumerate() {
        let at = format!("/ranges/{i}");
        let mut bounds = [None, None];
        for (k, (field, v)) in [("start", &r.start), ("end", &r.end)]
            .into_iter()
            .enumerate()
        {
            let p = format!("{at}/{field}");
            match v.as_deref().map(|s| (s, parse_ip(s))) {
                None => {
                    out.push(d.msg_at(not_an_ip(&format!("range {i} {field}"), None), n.doc, &at))
                }
                Some((s, None)) => {
                    out.push(d.msg_at(not_an_ip(&format!("range {i} {field}"), Some(s)), n.doc, &p))
                }
                Some((s, Some(ip))) => {
                    if let Some(c) = &net.cidr {
                        if !c.contains(&ip) {
                            out.push(d.msg_at(
                                outside(&format!("range {i} {field}"), s, c, &n.name),
                                n.doc,
                                &p,
                            ));
                        }
                    }
                    bounds[k] = Some(ip);
                }
            }
        }
        if let [Some(start), Some(end)] = bounds {
            if start.is_ipv4() != end.is_ipv4() || start > end {
                let m = Message::error(
                    "SW338",
                    format!("range {i} is reversed or mixes address families: start {start} is not ≤ end {end}"),
                    "Swap start and end, or correct the address that is wrong.",
                );
                out.push(d.msg_at(m, n.doc, &at));
            } else {
                let kind = r.range_type.clone().unwrap_or_default();
                net.ranges.push((i, kind, start, end));
            }
        }
    }
}

fn mtu_range(mtu: f64) -> Message {
    Message::error(
        "SW327",
        format!("mtu {mtu} is out of range: expected between {MIN_MTU} and {MAX_MTU}"),
        "Use a valid MTU; standard Ethernet is 1500, jumbo frames 9000.",
    )
}

fn overlapping_ranges(d: &Design, n: &Entity<NetworkData>, net: &Net, out: &mut Vec<Message>) {
    let mut sorted: Vec<&(usize, String, IpAddr, IpAddr)> = net.ranges.iter().collect();
    sorted.sort_by_key(|r| (r.2, r.0));
    // The range reaching furthest so far; any range starting before its end overlaps it.
    let mut reach: Option<&(usize, String, IpAddr, IpAddr)> = None;
    for r in sorted {
        if let Some(h) = reach {
            if h.3.is_ipv4() == r.2.is_ipv4() && r.2 <= h.3 {
                let m = Message::error(
                    "SW339",
                    format!(
                        "range {} ({} {}–{}) overlaps range {} ({} {}–{}): expected disjoint ranges",
                        r.0, r.1, r.2, r.3, h.0, h.1, h.2, h.3
                    ),
                    "Move one range's start or end so that no address belongs to two ranges.",
                );
                out.push(d.msg_at(m, n.doc, &format!("/ranges/{}", r.0)));
            }
        }
        if reach.is_none_or(|h| h.3.is_ipv4() != r.3.is_ipv4() || r.3 > h.3) {
            reach = Some(r);
        }
    }
}

fn overlapping_cidrs(d: &Design, nets: &[Net], out: &mut Vec<Message>) {
    let mut sorted: Vec<(IpNet, usize)> = nets
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.cidr.map(|c| (c, i)))
        .collect();
    sorted.sort_by_key(|(c, i)| (c.network(), c.prefix_len(), *i));
    // CIDRs either nest or are disjoint, so one that overlaps any earlier
    // CIDR lies inside the earlier CIDR that reaches furthest.
    let mut reach: Option<(IpNet, usize)> = None;
    for (c, i) in sorted {
        if let Some((h, hi)) = reach {
            if h.contains(&c.network()) {
                let (first, second) = if d.networks[hi].doc < d.networks[i].doc {
                    (hi, i)
                } else {
                    (i, hi)
                };
                let (a, b) = (&d.networks[first], &d.networks[second]);
                let m = Message::error(
                    "SW342",
                    format!(
                        "cidr {} of network {} overlaps cidr {} of network {}: expected disjoint CIDRs",
                        nets[second].cidr.map(|c| c.to_string()).unwrap_or_default(),
                        b.name,
                        nets[first].cidr.map(|c| c.to_string()).unwrap_or_default(),
                        a.name
                    ),
                    "Give each Network its own address space; routedomains do not separate address spaces.",
                );
                out.push(
                    d.msg_at(m, b.doc, "/cidr")
                        .about(Kind::Network.schema(), &a.name),
                );
                continue;
            }
        }
        if reach.is_none_or(|(h, _)| {
            h.network().is_ipv4() != c.network().is_ipv4() || c.broadcast() > h.broadcast()
        }) {
            reach = Some((c, i));
        }
    }
}

fn link_mtu(d: &Design, l: &Entity<NetworkLinkData>, out: &mut Vec<Message>) {
    if let Some(mtu) = l.data.mtu {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            out.push(d.msg_at(mtu_range(mtu), l.doc, "/mtu"));
        }
    }
}

/// A link whose trunking mode is absent or `disabled` carries one untagged network.
fn untrunked(l: &NetworkLinkData) -> bool {
    l.trunking
        .as_ref()
        .and_then(|t| t.mode.as_deref())
        .is_none_or(|m| m == "disabled")
}

fn default_network(l: &NetworkLinkData) -> Option<&str> {
    l.trunking
        .as_ref()
        .and_then(|t| t.default_network.as_deref())
        .filter(|n| !n.is_empty())
}

fn vlan_of(n: &NetworkData) -> Option<&str> {
    n.vlan.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn trunking(d: &Design, l: &Entity<NetworkLinkData>, out: &mut Vec<Message>) {
    if !untrunked(&l.data) {
        return;
    }
    let allowed = l.data.allowed_networks.as_deref().unwrap_or_default();
    if allowed.len() > 1 {
        let m = Message::error(
            "SW329",
            format!(
                "link {} is not trunked but allows {} networks ({}): expected at most one",
                l.name,
                allowed.len(),
                allowed.join(", ")
            ),
            "Set trunking.mode: 802.1q, or keep one network in allowed_networks.",
        );
        out.push(d.msg_at(m, l.doc, "/allowed_networks"));
    }
    match default_network(&l.data) {
        None => {
            let at = if l.data.trunking.is_some() {
                "/trunking"
            } else {
                ""
            };
            let m = Message::error(
                "SW330",
                format!("link {} is not trunked and has no trunking.default_network: expected its native network", l.name),
                "Add trunking.default_network naming the network this link carries untagged.",
            );
            out.push(d.msg_at(m, l.doc, at));
        }
        Some(native) => {
            if let Some(n) = d.network(native) {
                if let Some(vlan) = vlan_of(&n.data) {
                    let m = Message::error(
                        "SW331",
                        format!(
                            "network {native} has vlan {vlan} but is the native network of untrunked link {}: expected no vlan",
                            l.name
                        ),
                        "Remove vlan from the network, or enable trunking (802.1q) on the link.",
                    );
                    out.push(
                        d.msg_at(m, n.doc, "/vlan")
                            .about(Kind::NetworkLink.schema(), &l.name),
                    );
                }
            }
        }
    }
}

fn bonding(d: &Design, l: &Entity<NetworkLinkData>, out: &mut Vec<Message>) {
    let Some(b) = &l.data.bonding else { return };
    let mode = b.mode.as_deref().unwrap_or("disabled");
    match mode {
        "802.3ad" => {
            // Drydock's ingester defaults: mon_rate 100, up/down_delay 200.
            let mon = b.mon_rate.unwrap_or(100.0);
            for (field, v) in [("up_delay", b.up_delay), ("down_delay", b.down_delay)] {
                let val = v.unwrap_or(200.0);
                if val < mon {
                    let m = Message::error(
                        "SW333",
                        format!("bonding {field} {val} is less than mon_rate {mon}: expected {field} ≥ mon_rate"),
                        format!("Raise {field} to at least {mon}, or lower mon_rate."),
                    );
                    let at = if v.is_some() {
                        format!("/bonding/{field}")
                    } else {
                        "/bonding".into()
                    };
                    out.push(d.msg_at(m, l.doc, &at));
                }
            }
        }
        "active-backup" | "balance-rr" | "disabled" => {
            let fields: &[(&str, bool)] = &[
                ("hash", b.hash.is_some()),
                ("peer_rate", b.peer_rate.is_some()),
                ("mon_rate", b.mon_rate.is_some() && mode == "disabled"),
                ("up_delay", b.up_delay.is_some() && mode == "disabled"),
                ("down_delay", b.down_delay.is_some() && mode == "disabled"),
            ];
            for (field, set) in fields {
                if *set {
                    let why = if mode == "disabled" {
                        "a link without bonding takes no bond options"
                    } else {
                        "hash and peer_rate apply to LACP (802.3ad) only"
                    };
                    let m = Message::error(
                        "SW334",
                        format!("bonding {field} is set on a link with bonding mode {mode}: {why}"),
                        format!("Remove bonding.{field}, or use bonding mode 802.3ad."),
                    );
                    out.push(d.msg_at(m, l.doc, &format!("/bonding/{field}")));
                }
            }
        }
        _ => {}
    }
}

fn network_mtu_vs_link(d: &Design, out: &mut Vec<Message>) {
    for l in &d.links {
        let (Some(link_mtu), Some(native)) = (l.data.mtu, default_network(&l.data)) else {
            continue;
        };
        let Some(n) = d.network(native) else { continue };
        if let Some(mtu) = n.data.mtu {
            if mtu > link_mtu {
                let m = Message::error(
                    "SW328",
                    format!(
                        "network {} mtu {mtu} is larger than mtu {link_mtu} of link {}, whose default_network it is: expected ≤ {link_mtu}",
                        n.name, l.name
                    ),
                    "Lower the network's mtu or raise the link's mtu.",
                );
                out.push(
                    d.msg_at(m, n.doc, "/mtu")
                        .about(Kind::NetworkLink.schema(), &l.name),
                );
            }
        }
    }
}

fn unique_networks(d: &Design, out: &mut Vec<Message>) {
    let mut first: FxMap<&str, &str> = FxMap::default();
    for l in &d.links {
        let mut here: FxSet<&str> = FxSet::default();
        for (i, net) in l.data.allowed_networks.iter().flatten().enumerate() {
            if !here.insert(net) {
                continue;
            }
            match first.get(net.as_str()) {
                None => {
                    first.insert(net, &l.name);
                }
                Some(other) => {
                    let m = Message::error(
                        "SW335",
                        format!("network {net} is allowed on link {other} and on link {}: expected one link per network", l.name),
                        "Each network may cross a single NetworkLink; remove it from one allowed_networks list.",
                    );
                    out.push(
                        d.msg_at(m, l.doc, &ptr(&["allowed_networks", &i.to_string()]))
                            .about(Kind::NetworkLink.schema(), other),
                    );
                }
            }
        }
    }
}

/// VLAN ids compare as numbers when they are numbers (`'0100'` is `100`).
fn vlan_key(v: &str) -> String {
    v.parse::<u32>()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| v.to_string())
}

fn vlans_per_link(d: &Design, out: &mut Vec<Message>) {
    for l in &d.links {
        let mut seen: FxMap<String, &str> = FxMap::default();
        for (i, net) in l.data.allowed_networks.iter().flatten().enumerate() {
            let Some(n) = d.network(net) else { continue };
            let Some(vlan) = vlan_of(&n.data) else {
                continue;
            };
            match seen.get(&vlan_key(vlan)) {
                None => {
                    seen.insert(vlan_key(vlan), net);
                }
                Some(other) if *other == net => {}
                Some(other) => {
                    let m = Message::error(
                        "SW343",
                        format!("networks {other} and {net} both have vlan {vlan} on link {}: expected one network per VLAN on a link", l.name),
                        "Give one of the networks another vlan, or carry it on another link.",
                    );
                    out.push(
                        d.msg_at(m, l.doc, &ptr(&["allowed_networks", &i.to_string()]))
                            .about(Kind::Network.schema(), other)
                            .about(Kind::Network.schema(), net),
                    );
                }
            }
        }
    }
}

/// Checks every node address; returns the networks some node addresses with `dhcp`.
fn node_addresses<'a>(d: &'a Design, nets: &[Net], out: &mut Vec<Message>) -> FxSet<&'a str> {
    let net_index: FxMap<&str, usize> = d
        .networks
        .iter()
        .enumerate()
        .rev() // the first document of a name wins, as in Design's lookups
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut dhcp = FxSet::default();
    // Address (parsed when possible) -> (node index, address index) of first use.
    let mut used: FxMap<Result<IpAddr, &str>, (usize, usize)> =
        FxMap::with_capacity_and_hasher(d.nodes.len() * 4, Default::default());
    for (ni, node) in d.nodes.iter().enumerate() {
        for (ai, a) in node.data.addressing.iter().flatten().enumerate() {
            let Some(a) = a else { continue };
            let Some(text) = a.address.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            // The pointer is built only for a message: most addresses are fine.
            let at = || format!("/addressing/{ai}/address");
            if text == "dhcp" {
                if let Some(net) = &a.network {
                    dhcp.insert(net.as_str());
                }
                continue;
            }
            let ip = parse_ip(text);
            let key = ip.ok_or(text);
            let entry = used.entry(key);
            if let std::collections::hash_map::Entry::Occupied(o) = &entry {
                let (fn_, fa) = *o.get();
                let first = &d.nodes[fn_];
                let where_ = if fn_ == ni {
                    format!("addressing entry {fa} of the same node")
                } else {
                    format!("node {}", first.name)
                };
                let m = Message::error(
                    "SW332",
                    format!("address {text} is also assigned to {where_}: expected each static address once"),
                    "Give each node address a unique IP.",
                );
                out.push(
                    d.msg_at(m, node.doc, &at())
                        .about(Kind::BaremetalNode.schema(), &first.name),
                );
            } else {
                entry.or_insert((ni, ai));
            }
            let Some(ip) = ip else {
                out.push(d.msg_at(
                    not_an_ip(&format!("address {ai}"), Some(text)),
                    node.doc,
                    &at(),
                ));
                continue;
            };
            let Some(name) = a.network.as_deref() else {
                continue;
            };
            let Some(&idx) = net_index.get(name) else {
                continue;
            };
            let net = &nets[idx];
            let ndoc = &d.networks[idx];
            let Some(cidr) = &net.cidr else { continue };
            if !cidr.contains(&ip) {
                out.push(
                    d.msg_at(
                        outside(&format!("address {ai}"), text, cidr, name),
                        node.doc,
                        &at(),
                    )
                    .about(Kind::Network.schema(), name),
                );
                continue;
            }
            if let Some(r) = net
                .ranges
                .iter()
                .find(|r| r.1 == "dhcp" && r.2 <= ip && ip <= r.3)
            {
                let m = Message::error(
                    "SW340",
                    format!(
                        "static address {text} lies in dhcp range {} ({}–{}) of network {name}: expected an address outside DHCP ranges",
                        r.0, r.2, r.3
                    ),
                    "Pick a static address outside the network's dhcp ranges, or use address: dhcp.",
                );
                out.push(
                    d.msg_at(m, node.doc, &at())
                        .about(Kind::Network.schema(), &ndoc.name),
                );
            }
            let special = if ip == cidr.network() && host_bits(cidr) >= 2 {
                Some("the network address")
            } else if ip == cidr.broadcast() && cidr.network().is_ipv4() && host_bits(cidr) >= 2 {
                Some("the broadcast address")
            } else if net.gateways.contains(&ip) {
                Some("a route gateway")
            } else {
                None
            };
            if let Some(what) = special {
                let m = Message::error(
                    "SW341",
                    format!("static address {text} is {what} of network {name} ({cidr}): expected a host address"),
                    "Pick another host address inside the network's static range.",
                );
                out.push(
                    d.msg_at(m, node.doc, &at())
                        .about(Kind::Network.schema(), &ndoc.name),
                );
            }
        }
    }
    dhcp
}

fn host_bits(c: &IpNet) -> u8 {
    c.max_prefix_len() - c.prefix_len()
}

/// The PXE (boot) network: one with a `dhcp` range — Drydock's MAAS driver
/// turns DHCP on for exactly those, and nodes PXE boot from that DHCP — or one
/// a node addresses with `dhcp`. NIC firmware PXE boots untagged, so it must
/// have no vlan.
fn pxe_untagged(d: &Design, dhcp_addressed: &FxSet<&str>, out: &mut Vec<Message>) {
    for n in &d.networks {
        let has_dhcp_range = n
            .data
            .ranges
            .iter()
            .any(|r| r.range_type.as_deref() == Some("dhcp"));
        if !has_dhcp_range && !dhcp_addressed.contains(n.name.as_str()) {
            continue;
        }
        if let Some(vlan) = vlan_of(&n.data) {
            let why = if has_dhcp_range {
                "it has a dhcp range"
            } else {
                "a node addresses it with dhcp"
            };
            let m = Message::error(
                "SW344",
                format!("network {} is a PXE network ({why}) but has vlan {vlan}: expected it untagged", n.name),
                "Remove vlan: nodes PXE boot untagged; carry the network as the native network of its link.",
            );
            out.push(d.msg_at(m, n.doc, "/vlan"));
        }
    }
}

fn interface_networks_allowed(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    let allowed: FxMap<&str, FxSet<&str>> = d
        .links
        .iter()
        .rev()
        .map(|l| {
            let set = l
                .data
                .allowed_networks
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            (l.name.as_str(), set)
        })
        .collect();
    let defined: FxSet<&str> = d.networks.iter().map(|n| n.name.as_str()).collect();
    // A defect written in a profile is reported once, at the line that has it.
    let mut seen: FxSet<(usize, String)> = FxSet::default();
    for node in nodes_by_interfaces(ctx) {
        for (name, iface) in node.interfaces.iter() {
            let Some(link) = iface.device_link.as_deref() else {
                continue;
            };
            let Some(ok) = allowed.get(link) else {
                continue;
            };
            for net in iface.networks.iter().flatten() {
                if ok.contains(net.as_str()) || !defined.contains(net.as_str()) {
                    continue;
                }
                let (doc, p) = network_site(d, node, name, net);
                if !seen.insert((doc, p.clone())) {
                    continue;
                }
                let m = Message::error(
                    "SW336",
                    format!(
                        "interface {name} of node {} carries network {net}, which link {link} does not allow: expected one of [{}]",
                        node.name,
                        {
                            let mut v: Vec<&str> = ok.iter().copied().collect();
                            v.sort();
                            v.join(", ")
                        }
                    ),
                    "Add the network to the link's allowed_networks, or remove it from the interface.",
                );
                out.push(d.msg_at(m, doc, &p).about(Kind::NetworkLink.schema(), link));
            }
        }
    }
}

/// The document and pointer of the list entry that put `net` on an interface.
fn network_site(
    d: &Design,
    node: &crate::design::EffectiveNode,
    iface: &str,
    net: &str,
) -> (usize, String) {
    let ls = layers(d, node);
    for (doc, data) in &ls {
        if let Some(Some(i)) = data.interfaces.get(iface) {
            if let Some(pos) = i.networks.iter().flatten().position(|n| n == net) {
                return (
                    *doc,
                    ptr(&["interfaces", iface, "networks", &pos.to_string()]),
                );
            }
        }
    }
    (node.doc, ptr(&["interfaces"]))
}

/// A DNS label as MAAS and RFC 1123 accept it. Drydock's own pattern also
/// lets a label start or end with `-`; slipway does not (MAAS refuses it).
fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn hostnames(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    // Primary network name -> (its document, when defined; the node domain).
    let mut domains: FxMap<&str, (Option<&Entity<NetworkData>>, &str)> = FxMap::default();
    // Domain problems are reported once per Network, not once per node.
    let mut domain_checked: FxSet<&str> = FxSet::default();
    for node in ctx.nodes {
        let (pn, domain) = match node.primary_network.as_deref() {
            None => (None, "local"),
            Some(p) => *domains.entry(p).or_insert_with(|| {
                let n = d.network(p);
                let domain = n
                    .and_then(|n| n.data.dns.as_ref())
                    .and_then(|dns| dns.domain.as_deref())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("local");
                (n, domain)
            }),
        };
        let fqdn_len = node.name.len() + 1 + domain.len();
        if let Some(bad) = node.name.split('.').find(|l| !valid_label(l)) {
            let m = Message::error(
                "SW337",
                format!(
                    "host name of {}.{domain} is invalid: label '{bad}' is not 1–63 letters, digits or inner hyphens",
                    node.name
                ),
                "Rename the node: DNS labels hold A–Z, a–z, 0–9 and '-', not first or last, at most 63 characters.",
            );
            out.push(d.msg_at(m, node.doc, ""));
        } else if fqdn_len > 255 {
            let m = Message::error(
                "SW337",
                format!(
                    "FQDN {}.{domain} is {fqdn_len} characters: expected at most 255",
                    node.name
                ),
                "Shorten the node name or the primary network's dns.domain.",
            );
            out.push(d.msg_at(m, node.doc, ""));
        }
        if let Some(n) = pn {
            if domain_checked.insert(n.name.as_str()) {
                if let Some(l) = domain.split('.').find(|l| !valid_label(l)) {
                    let m = Message::error(
                        "SW337",
                        format!(
                            "dns.domain '{domain}' of network {}, the primary network of node {}, is invalid: label '{l}' is not 1–63 letters, digits or inner hyphens",
                            n.name, node.name
                        ),
                        "Correct the domain: DNS labels hold A–Z, a–z, 0–9 and '-', not first or last, at most 63 characters.",
                    );
                    out.push(d.msg_at(m, n.doc, "/dns/domain"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(yaml: &str) -> Vec<String> {
        let files = [crate::design::DesignFile {
            path: "t.yaml".into(),
            bytes: yaml.as_bytes().to_vec(),
        }];
        let v = crate::validate(&files);
        let mut c: Vec<String> = v.messages.iter().map(|m| m.code.clone()).collect();
        c.sort();
        c.dedup();
        c
    }

    fn doc(kind: &str, name: &str, data: &str) -> String {
        format!("---\nschema: drydock/{kind}/v1\nmetadata:\n  name: {name}\ndata:\n{data}\n")
    }

    #[test]
    fn odd_values_give_messages_not_panics() {
        let y = [
            doc("Network", "a", "  cidr: 'fe80::/129'\n  mtu: 0\n  vlan: abc\n  ranges:\n    - type: dhcp\n    - type: static\n      start: '::1'\n      end: 10.0.0.1\n  routes:\n    - subnet: nope\n      gateway: slaac"),
            doc("Network", "b", "  cidr: 10.0.0.0/8\n  ranges:\n    - type: dhcp\n      start: 10.0.0.10\n      end: 10.0.0.20\n  routes:\n    - gateway: 10.0.0.1"),
            doc("Network", "c", "  cidr: 10.1.0.0/16"),
            doc("NetworkLink", "l", "  mtu: 100000\n  bonding:\n    mode: balance-rr\n    peer_rate: fast\n  allowed_networks: [a, b, c, ghost]"),
            doc("HostProfile", "p", "  host_profile: p\n  interfaces:\n    i0:\n      device_link: l\n      slaves: [x, x]\n      networks: [b]\n    i1:\n      slaves: [x]"),
            doc("BaremetalNode", "-bad-", "  host_profile: p\n  addressing:\n    - network: b\n      address: slaac\n    - network: b\n      address: 10.0.0.15\n    - network: b\n      address: 10.0.0.0\n    - address: 10.0.0.3\n  metadata:\n    boot_mac: zz"),
        ]
        .concat();
        let c = codes(&y);
        for want in [
            "SW304", "SW320", "SW325", "SW327", "SW329", "SW334", "SW337", "SW340", "SW341",
            "SW342", "SW345", "SW347",
        ] {
            assert!(c.iter().any(|x| x == want), "missing {want} in {c:?}");
        }
    }

    /// Every address-like field of a valid site, replaced by tricky text,
    /// gives messages (each error with a source and a document), never a panic.
    #[test]
    fn tricky_values_in_a_valid_site_never_panic() {
        let site = include_str!("../../../tests/data/designs/ok/gen-site-3-nodes.yaml");
        let fields = [
            "cidr: 10.64.0.0/16",
            "gateway: 10.48.0.1",
            "start: 10.32.128.0",
            "end: 10.32.255.254",
            "address: 10.64.1.3",
            "boot_mac: '02:bd:50:00:00:03'",
            "vlan: '200'",
            "mtu: 9000",
            "default_network: mgmt",
            "domain: gensite.example.com",
        ];
        let values = [
            "''",
            "'/'",
            "'::'",
            "'::/0'",
            "'0.0.0.0/0'",
            "'10.0.0.0/-1'",
            "'255.255.255.255/32'",
            "'fe80::1%eth0'",
            "'1.2.3'",
            "'dhcp'",
            "'é'",
            "'~1/~0'",
            "'a..b'",
            "0",
            "-1",
            "1e308",
        ];
        for field in fields {
            let key = field.split(':').next().unwrap();
            for value in values {
                let text = site.replacen(field, &format!("{key}: {value}"), 1);
                let files = [crate::design::DesignFile {
                    path: "t.yaml".into(),
                    bytes: text.into_bytes(),
                }];
                let v = crate::validate(&files);
                for m in v.messages.iter().filter(|m| m.error) {
                    assert!(
                        m.source.is_some() && !m.documents.is_empty(),
                        "{field} -> {value}: {m:?}"
                    );
                }
            }
        }
    }

    /// Drydock's own samples (`../shared` beside the checkout; missing, the
    /// test fails).
    #[test]
    fn drydock_samples_get_drydocks_verdicts() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/drydock/yaml_samples"
        );
        assert!(std::path::Path::new(dir).is_dir(), "{dir} is missing");
        let run = |f: &str| {
            let bytes = std::fs::read(format!("{dir}/{f}")).expect("sample");
            let v = crate::validate(&[crate::design::DesignFile {
                path: f.into(),
                bytes,
            }]);
            v.messages
                .iter()
                .filter(|m| m.error && m.code.starts_with("SW3") && m.code.as_str() < "SW350")
                .map(|m| m.code.clone())
                .collect::<Vec<_>>()
        };
        for f in [
            "deckhand_fullsite.yaml",
            "deckhand_fullsite_no_nodes.yaml",
            "deckhand_fullsite_nic_autodetect.yaml",
            "deckhand_routedomain.yaml",
            "validation.yaml",
            "partitions_without_mountpoints.yaml",
        ] {
            assert_eq!(run(f), Vec::<String>::new(), "{f}");
        }
        for (f, want) in [
            (
                "invalid_validation.yaml",
                &[
                    "SW313", "SW326", "SW327", "SW328", "SW330", "SW332", "SW333", "SW336", "SW337",
                ][..],
            ),
            ("invalid_network_cidr.yaml", &["SW321"]),
            (
                "invalid_rational_network_trunking.yaml",
                &["SW329", "SW330", "SW331"],
            ),
            ("invalid_unique_network.yaml", &["SW335", "SW310"]),
            ("ip_locality_no_gateway.yaml", &["SW324"]),
            ("invalid_kernel.yaml", &["SW309"]),
            ("multidoc.yaml", &["SW312"]),
        ] {
            let got = run(f);
            for w in want {
                assert!(got.iter().any(|g| g == w), "{f}: missing {w} in {got:?}");
            }
        }
    }

    #[test]
    fn cidr_parsing_accepts_bare_addresses_and_rejects_bad_prefixes() {
        assert!(parse_cidr("10.0.0.0/24").is_some());
        assert_eq!(parse_cidr("10.0.0.1").unwrap().prefix_len(), 32);
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("fe80::/64").is_some());
        assert!(parse_cidr("slaac").is_none());
        let c = parse_cidr("172.16.100.1/24").unwrap();
        assert_ne!(c.trunc(), c);
    }

    #[test]
    fn labels_follow_rfc_1123() {
        assert!(valid_label("n00001"));
        assert!(valid_label("a-b"));
        assert!(!valid_label("bad__name"));
        assert!(!valid_label("-x"));
        assert!(!valid_label("x-"));
        assert!(!valid_label(""));
        assert!(!valid_label(&"a".repeat(64)));
    }
}
