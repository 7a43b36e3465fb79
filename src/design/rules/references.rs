//! Documents and references (SW301–SW319): duplicate documents, the single
//! Region, and every name one document uses to point at another.
//!
//! References are checked on the document that writes them (node or profile),
//! not on compiled nodes, so a dangling name in a profile shared by 10,000
//! nodes gives one message at the line that holds it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::Ctx;
use crate::design::message::Message;
use crate::design::model::HostData;
use crate::design::{Design, EffectiveNode, Kind};

/// Runs the document and reference rules.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    let names = Names::new(d);
    duplicate_documents(d, out);
    regions(d, out);
    profile_parents(d, &names, out);
    for e in d.host_profiles.iter().chain(&d.nodes) {
        host_references(d, &names, e.doc, &e.data, out);
    }
    interfaces_without_link(ctx, out);
    links(d, &names, out);
    racks(d, &names, out);
}

/// A fast, non-cryptographic hasher (the Fx algorithm of rustc) for the
/// name lookups these rules do per node: design names are not attacker-chosen
/// keys of a long-lived table, and SipHash dominated the rules' run time on
/// 10,000-node sites.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A HashMap with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A HashSet with [`FxHasher`].
pub(crate) type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// A JSON pointer from path segments, escaped per RFC 6901.
pub(crate) fn ptr(parts: &[&str]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push('/');
        for c in p.chars() {
            match c {
                '~' => s.push_str("~0"),
                '/' => s.push_str("~1"),
                c => s.push(c),
            }
        }
    }
    s
}

/// The documents a compiled node is made of: the node first, then its
/// profiles from the nearest to the root. The first layer that writes a
/// field is where that field's value came from.
pub(crate) fn layers<'a>(d: &'a Design, node: &EffectiveNode) -> Vec<(usize, &'a HostData)> {
    let mut v = Vec::with_capacity(node.profile_chain.len() + 1);
    if let Some(n) = d.node(&node.name).filter(|n| n.doc == node.doc) {
        v.push((n.doc, &*n.data));
    } else if let Some(n) = d.nodes.iter().find(|n| n.doc == node.doc) {
        v.push((n.doc, &*n.data));
    }
    for p in &node.profile_chain {
        if let Some(p) = d.host_profile(p) {
            v.push((p.doc, &p.data));
        }
    }
    v
}

/// Where a node's interface field was written: the first layer whose
/// interface `iface` has `field` (or, failing that, defines `iface`).
pub(crate) fn interface_field_site(
    layers: &[(usize, &HostData)],
    iface: &str,
    field: &str,
    wants: impl Fn(&crate::design::model::Interface) -> bool,
) -> (usize, String) {
    for (doc, data) in layers {
        if let Some(Some(i)) = data.interfaces.get(iface) {
            if wants(i) {
                return (*doc, ptr(&["interfaces", iface, field]));
            }
        }
    }
    for (doc, data) in layers {
        if data.interfaces.contains_key(iface) {
            return (*doc, ptr(&["interfaces", iface]));
        }
    }
    let doc = layers.first().map(|l| l.0).unwrap_or(0);
    (doc, ptr(&["interfaces"]))
}

/// The names of each kind's documents, built once so that checking 10,000
/// nodes does no allocation per lookup.
pub(crate) struct Names<'a> {
    pub networks: FxSet<&'a str>,
    pub links: FxSet<&'a str>,
    pub racks: FxSet<&'a str>,
    pub hardware_profiles: FxSet<&'a str>,
    pub host_profiles: FxMap<&'a str, &'a HostData>,
}

impl<'a> Names<'a> {
    /// Collects the names of a design's documents.
    pub(crate) fn new(d: &'a Design) -> Self {
        Names {
            networks: d.networks.iter().map(|e| e.name.as_str()).collect(),
            links: d.links.iter().map(|e| e.name.as_str()).collect(),
            racks: d.racks.iter().map(|e| e.name.as_str()).collect(),
            hardware_profiles: d
                .hardware_profiles
                .iter()
                .map(|e| e.name.as_str())
                .collect(),
            // The first document of a name wins, as in Design's lookups.
            host_profiles: d
                .host_profiles
                .iter()
                .rev()
                .map(|e| (e.name.as_str(), &*e.data))
                .collect(),
        }
    }
}

/// The compiled nodes whose interfaces can differ from those of a node
/// already yielded. A node whose own document writes no `interfaces` has
/// exactly the interfaces of its profile chain, so only the first node of
/// each chain is worth checking; interface rules report at the profile line
/// anyway. This turns 10,000 identical checks into one per profile.
pub(crate) fn nodes_by_interfaces<'c>(ctx: &'c Ctx) -> impl Iterator<Item = &'c EffectiveNode> {
    let mut chains: FxSet<Option<&str>> = FxSet::default();
    ctx.nodes
        .iter()
        .zip(&ctx.design.nodes)
        .filter(move |(eff, doc)| {
            debug_assert_eq!(eff.doc, doc.doc);
            !doc.data.interfaces.is_empty() || chains.insert(doc.data.host_profile.as_deref())
        })
        .map(|(eff, _)| &**eff)
}

/// A reference value that names something (not unset with `!`, not empty).
fn named(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty() && *s != "!")
}

fn duplicate_documents(d: &Design, out: &mut Vec<Message>) {
    let mut first: FxMap<(Kind, &str), usize> =
        FxMap::with_capacity_and_hasher(d.documents.len(), Default::default());
    for (i, doc) in d.documents.iter().enumerate() {
        match first.get(&(doc.kind, doc.name.as_str())) {
            None => {
                first.insert((doc.kind, doc.name.as_str()), i);
            }
            Some(&f) => {
                let fd = &d.documents[f];
                let m = Message::error(
                    "SW301",
                    format!(
                        "duplicate {} '{}': expected one document of this kind and name, found another at {}:{}",
                        doc.kind.name(),
                        doc.name,
                        fd.file,
                        fd.line
                    ),
                    "Rename or remove one of the two documents; only the first is used.",
                );
                out.push(d.msg_at(m, i, "").about(fd.schema(), &fd.name));
            }
        }
    }
}

fn regions(d: &Design, out: &mut Vec<Message>) {
    if let [first, rest @ ..] = d.regions.as_slice() {
        for r in rest {
            let m = Message::error(
                "SW302",
                format!(
                    "second Region '{}': expected exactly one Region per site, found '{}' as well",
                    r.name, first.name
                ),
                "Keep one Region document; merge authorized_keys, repositories and tag_definitions into it.",
            );
            out.push(
                d.msg_at(m, r.doc, "")
                    .about(Kind::Region.schema(), &first.name),
            );
        }
    }
}

fn profile_parents(d: &Design, names: &Names, out: &mut Vec<Message>) {
    for e in d.host_profiles.iter().chain(&d.nodes) {
        if let Some(p) = named(&e.data.host_profile) {
            if !names.host_profiles.contains_key(p) {
                let m = Message::error(
                    "SW303",
                    format!(
                        "host_profile '{p}' is not defined: expected the name of a HostProfile"
                    ),
                    "Define a HostProfile of that name or correct host_profile.",
                );
                out.push(d.msg_at(m, e.doc, "/host_profile"));
            }
        }
    }
    // Parent cycles: walk each profile's chain once; a profile already known
    // to be acyclic (done) ends the walk early, so this is linear overall.
    let mut done: FxSet<&str> = FxSet::default();
    let mut reported: FxSet<&str> = FxSet::default();
    for start in &d.host_profiles {
        let mut path: Vec<&str> = Vec::new();
        let mut cur = Some(start.name.as_str());
        while let Some(name) = cur {
            if done.contains(name) {
                break;
            }
            if let Some(pos) = path.iter().position(|p| *p == name) {
                let cycle = &path[pos..];
                if !cycle.iter().any(|p| reported.contains(p)) {
                    reported.extend(cycle.iter().copied());
                    // Report on the member written first, at its host_profile.
                    let Some(first) = cycle
                        .iter()
                        .filter_map(|n| d.host_profile(n))
                        .min_by_key(|e| e.doc)
                    else {
                        break;
                    };
                    let mut names: Vec<&str> = cycle.to_vec();
                    names.push(name);
                    let m = Message::error(
                        "SW304",
                        format!(
                            "host-profile parents form a cycle: {}; expected a chain that ends at a profile without host_profile",
                            names.join(" -> ")
                        ),
                        "Remove host_profile from one profile of the cycle so the chain has a root.",
                    );
                    out.push(d.msg_at(m, first.doc, "/host_profile"));
                }
                break;
            }
            path.push(name);
            cur = names
                .host_profiles
                .get(name)
                .and_then(|p| named(&p.host_profile));
        }
        done.extend(path);
    }
}

/// The names a host profile or node refers to, each defined, in the order
/// they report.
fn host_references(d: &Design, names: &Names, doc: usize, h: &HostData, out: &mut Vec<Message>) {
    profile_and_rack_references(d, names, doc, h, out);
    interface_references(d, names, doc, h, out);
    addressing_references(d, names, doc, h, out);
    oob_reference(d, names, doc, h, out);
}

/// SW3nn "not defined": what was named, the kind expected, how to fix it.
fn undefined(code: &str, what: &str, kind: &str, name: &str, fix: &str) -> Message {
    Message::error(
        code,
        format!("{what} '{name}' is not defined: expected the name of a {kind}"),
        fix.to_string(),
    )
}

/// SW305 (hardware_profile), SW306 (primary_network), SW307 (metadata.rack, a warning).
fn profile_and_rack_references(
    d: &Design,
    names: &Names,
    doc: usize,
    h: &HostData,
    out: &mut Vec<Message>,
) {
    if let Some(hw) = named(&h.hardware_profile) {
        if !names.hardware_profiles.contains(hw) {
            let m = undefined(
                "SW305",
                "hardware_profile",
                "HardwareProfile",
                hw,
                "Define a HardwareProfile of that name or correct hardware_profile.",
            );
            out.push(d.msg_at(m, doc, "/hardware_profile"));
        }
    }
    if let Some(pn) = named(&h.primary_network) {
        if !names.networks.contains(pn) {
            let m = undefined(
                "SW306",
                "primary_network",
                "Network",
                pn,
                "Define a Network of that name or correct primary_network.",
            );
            out.push(d.msg_at(m, doc, "/primary_network"));
        }
    }
    if let Some(rack) = h.metadata.as_ref().and_then(|m| named(&m.rack)) {
        if !names.racks.contains(rack) {
            // A warning: Drydock never resolves metadata.rack, and its own
            // valid samples (deckhand_fullsite.yaml, validation.yaml) place
            // nodes in racks rack2 and rack3 that have no Rack document.
            let m = Message::warning(
                "SW307",
                format!("metadata.rack '{rack}' is not defined: expected the name of a Rack"),
                "Define a Rack of that name or correct metadata.rack; rack-based node filters and rack data will not apply.",
            );
            out.push(d.msg_at(m, doc, "/metadata/rack"));
        }
    }
}

/// SW308 (an interface's device_link), SW310 (an interface's networks).
fn interface_references(
    d: &Design,
    names: &Names,
    doc: usize,
    h: &HostData,
    out: &mut Vec<Message>,
) {
    for (name, iface) in &h.interfaces {
        let Some(iface) = iface else { continue };
        if let Some(link) = named(&iface.device_link) {
            if !names.links.contains(link) {
                let m = undefined(
                    "SW308",
                    &format!("interface {name} device_link"),
                    "NetworkLink",
                    link,
                    "Define a NetworkLink of that name or correct device_link.",
                );
                out.push(d.msg_at(m, doc, &ptr(&["interfaces", name, "device_link"])));
            }
        }
        for (i, net) in iface.networks.iter().flatten().enumerate() {
            if net.starts_with('!') || names.networks.contains(net.as_str()) {
                continue;
            }
            let m = undefined(
                "SW310",
                &format!("interface {name} network"),
                "Network",
                net,
                "Define a Network of that name or remove it from the interface's networks.",
            );
            out.push(d.msg_at(
                m,
                doc,
                &ptr(&["interfaces", name, "networks", &i.to_string()]),
            ));
        }
    }
}

/// SW313: each address names a defined network.
fn addressing_references(
    d: &Design,
    names: &Names,
    doc: usize,
    h: &HostData,
    out: &mut Vec<Message>,
) {
    for (i, a) in h.addressing.iter().flatten().enumerate() {
        let Some(a) = a else { continue };
        // Built only for a message: most entries are fine.
        let p = || ptr(&["addressing", &i.to_string()]);
        match named(&a.network) {
            None => {
                let m = Message::error(
                    "SW313",
                    "address has no network: expected addressing entries of the form {network, address}",
                    "Name the Network the address belongs to.",
                );
                out.push(d.msg_at(m, doc, &p()));
            }
            Some(net) if !names.networks.contains(net) => {
                let m = undefined(
                    "SW313",
                    "addressing network",
                    "Network",
                    net,
                    "Define a Network of that name or correct the address's network.",
                );
                out.push(d.msg_at(m, doc, &format!("{}/network", p())));
            }
            Some(_) => {}
        }
    }
}

/// SW314: the out-of-band network is defined.
fn oob_reference(d: &Design, names: &Names, doc: usize, h: &HostData, out: &mut Vec<Message>) {
    if let Some(net) = h.oob.as_ref().and_then(|o| named(&o.network)) {
        if !names.networks.contains(net) {
            let m = undefined(
                "SW314",
                "oob network",
                "Network",
                net,
                "Define a Network of that name or correct oob.network.",
            );
            out.push(d.msg_at(m, doc, "/oob/network"));
        }
    }
}

/// Interfaces without a `device_link` that carry networks, checked on
/// compiled nodes because the link may come from any profile of the chain.
pub(crate) fn interfaces_without_link(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    let mut seen: FxSet<(usize, String)> = FxSet::default();
    for node in nodes_by_interfaces(ctx) {
        let mut node_layers = None;
        for (name, iface) in node.interfaces.iter() {
            if named(&iface.device_link).is_some()
                || iface.networks.as_ref().is_none_or(|n| n.is_empty())
            {
                continue;
            }
            let layers = node_layers.get_or_insert_with(|| layers(d, node));
            let (doc, p) = interface_field_site(layers, name, "networks", |i| i.networks.is_some());
            if !seen.insert((doc, p.clone())) {
                continue;
            }
            let m = Message::error(
                "SW309",
                format!(
                    "interface {name} of node {} carries networks but has no device_link: expected the NetworkLink it is cabled to",
                    node.name
                ),
                "Add device_link naming the NetworkLink of this interface.",
            );
            out.push(d.msg_at(m, doc, &p));
        }
    }
}

fn links(d: &Design, names: &Names, out: &mut Vec<Message>) {
    for l in &d.links {
        for (i, net) in l.data.allowed_networks.iter().flatten().enumerate() {
            if !names.networks.contains(net.as_str()) {
                let m = Message::error(
                    "SW311",
                    format!(
                        "allowed network '{net}' is not defined: expected the name of a Network"
                    ),
                    "Define a Network of that name or remove it from allowed_networks.",
                );
                out.push(d.msg_at(m, l.doc, &ptr(&["allowed_networks", &i.to_string()])));
            }
        }
        let default = l
            .data
            .trunking
            .as_ref()
            .and_then(|t| named(&t.default_network));
        if let Some(net) = default {
            if !names.networks.contains(net) {
                let m = Message::error(
                    "SW312",
                    format!(
                        "trunking.default_network '{net}' is not defined: expected the name of a Network"
                    ),
                    "Define a Network of that name or correct trunking.default_network.",
                );
                out.push(d.msg_at(m, l.doc, "/trunking/default_network"));
            }
        }
    }
}

fn racks(d: &Design, names: &Names, out: &mut Vec<Message>) {
    for r in &d.racks {
        for (i, net) in r.data.local_networks.iter().enumerate() {
            if !names.networks.contains(net.as_str()) {
                // A warning: Drydock never reads local_networks, and its own
                // valid sample deckhand_fullsite.yaml names an undefined one.
                let m = Message::warning(
                    "SW315",
                    format!("local network '{net}' is not defined: expected the name of a Network"),
                    "Define a Network of that name or remove it from local_networks.",
                );
                out.push(d.msg_at(m, r.doc, &ptr(&["local_networks", &i.to_string()])));
            }
        }
    }
}
