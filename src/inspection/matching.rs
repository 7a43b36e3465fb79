//! Which design node a machine is, from what it reports: ironic-inspector's
//! `node_cache.find_node` rules (BMC v4/v6 address and MACs; the node with the
//! most matching attributes wins; a tie is no answer) and Ironic's lookup by
//! MACs, over an index built once per applied revision.

use std::collections::HashMap;
use std::net::IpAddr;

use super::inventory::Callback;
use crate::design::Design;
use crate::keys::Secret;

/// The outcome of matching a machine against the design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'a> {
    /// Exactly one node has the most matching attributes.
    Node(&'a str),
    /// Several nodes match the same, highest number of attributes (the
    /// dialects answer 404 "multiple nodes match").
    Several(Vec<&'a str>),
    /// No node has any of the machine's attributes: an unknown machine.
    Unknown,
}

/// The design's nodes by MAC and BMC address.
#[derive(Debug, Default, Clone)]
pub struct NodeIndex {
    names: Vec<String>,
    by_name: HashMap<String, u32>,
    by_mac: HashMap<u64, Vec<u32>>,
    by_bmc: HashMap<IpAddr, Vec<u32>>,
    /// Node UUIDs (`Secret::node_uuid`), when built with the secret.
    uuids: Vec<String>,
    by_uuid: HashMap<String, u32>,
}

fn push(map_entry: &mut Vec<u32>, node: u32) {
    if !map_entry.contains(&node) {
        map_entry.push(node);
    }
}

impl NodeIndex {
    /// Indexes every node of a design: its `metadata.boot_mac`, every
    /// interface's `labels.mac_address` and its address on `oob.network`.
    pub fn build(design: &Design) -> NodeIndex {
        let nodes = design.effective_nodes();
        let mut index = NodeIndex {
            names: Vec::with_capacity(nodes.len()),
            by_name: HashMap::with_capacity(nodes.len()),
            by_mac: HashMap::with_capacity(nodes.len() * 2),
            by_bmc: HashMap::with_capacity(nodes.len()),
            uuids: Vec::new(),
            by_uuid: HashMap::new(),
        };
        for (i, node) in nodes.iter().enumerate() {
            let id = i as u32;
            index.names.push(node.name.clone());
            index.by_name.insert(node.name.clone(), id);
            let boot = node.boot_mac.as_deref().and_then(super::mac_key);
            let labelled = node
                .interfaces
                .iter()
                .flat_map(|(_, iface)| super::labelled_macs(&iface.labels));
            for mac in boot.into_iter().chain(labelled) {
                push(index.by_mac.entry(mac).or_default(), id);
            }
            if let Some(addr) = bmc_address(node) {
                push(index.by_bmc.entry(addr).or_default(), id);
            }
        }
        index
    }

    /// The nodes with this MAC, as positions in the design's node order
    /// (each once): the one-MAC lookup of a booting machine, without
    /// allocating.
    pub fn nodes_with_mac(&self, mac: u64) -> &[u32] {
        self.by_mac.get(&mac).map_or(&[], Vec::as_slice)
    }

    /// The position of the node of this name in the design's node order.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).map(|&i| i as usize)
    }

    /// Whether this index was built from `design`'s nodes (the same names in
    /// the same order), so its positions are the design's.
    pub fn indexes(&self, design: &Design) -> bool {
        let nodes = design.effective_nodes();
        self.names.len() == nodes.len() && self.names.iter().zip(nodes).all(|(a, n)| *a == n.name)
    }

    /// [`NodeIndex::build`] plus each node's UUID (`Secret::node_uuid`), so
    /// routes can take a UUID where Ironic and inspector do.
    pub fn build_with_uuids(design: &Design, secret: &Secret) -> NodeIndex {
        let mut index = NodeIndex::build(design);
        index.uuids = index.names.iter().map(|n| secret.node_uuid(n)).collect();
        index.by_uuid = index
            .uuids
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i as u32))
            .collect();
        index
    }

    /// The node a route's `{node}` names: its UUID (case-insensitive, when
    /// built with UUIDs) or its name.
    pub fn node(&self, ident: &str) -> Option<&str> {
        let id = self
            .by_name
            .get(ident)
            .or_else(|| self.by_uuid.get(&ident.to_ascii_lowercase()))?;
        Some(&self.names[*id as usize])
    }

    /// The UUID of a node (built with UUIDs only).
    pub fn uuid(&self, name: &str) -> Option<&str> {
        let id = *self.by_name.get(name)?;
        self.uuids.get(id as usize).map(String::as_str)
    }

    /// Number of indexed nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the design has no nodes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The node an inspection callback names (inspector's `/v1/continue`).
    pub fn match_callback(&self, cb: &Callback) -> Match<'_> {
        let bmcs: Vec<IpAddr> = cb.bmc_v4().into_iter().chain(cb.bmc_v6()).collect();
        self.match_attributes(&bmcs, &cb.macs())
    }

    /// The node with the most matching attributes among BMC addresses and
    /// MACs (each distinct value counts once).
    pub fn match_attributes(&self, bmcs: &[IpAddr], macs: &[u64]) -> Match<'_> {
        // A machine has a handful of attributes, so counting in a small list
        // beats a map.
        let mut counts: Vec<(u32, u32)> = Vec::new();
        let mut count = |nodes: Option<&Vec<u32>>| {
            for &n in nodes.into_iter().flatten() {
                match counts.iter_mut().find(|(id, _)| *id == n) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((n, 1)),
                }
            }
        };
        let mut seen_bmc: Vec<IpAddr> = Vec::new();
        for b in bmcs {
            if !seen_bmc.contains(b) {
                seen_bmc.push(*b);
                count(self.by_bmc.get(b));
            }
        }
        let mut seen_mac: Vec<u64> = Vec::new();
        for m in macs {
            if !seen_mac.contains(m) {
                seen_mac.push(*m);
                count(self.by_mac.get(m));
            }
        }
        self.best(counts)
    }

    /// The node that has any of these MACs (Ironic's lookup: ports by
    /// address). Several different nodes are no answer, as in Ironic.
    pub fn lookup_macs(&self, macs: &[u64]) -> Match<'_> {
        let mut found: Vec<u32> = Vec::new();
        for m in macs {
            for &n in self.by_mac.get(m).into_iter().flatten() {
                push(&mut found, n);
            }
        }
        match found.as_slice() {
            [] => Match::Unknown,
            [one] => Match::Node(&self.names[*one as usize]),
            many => Match::Several(self.sorted_names(many.iter().copied())),
        }
    }

    fn best(&self, counts: Vec<(u32, u32)>) -> Match<'_> {
        let Some(top) = counts.iter().map(|(_, c)| *c).max() else {
            return Match::Unknown;
        };
        let leaders: Vec<u32> = counts
            .iter()
            .filter(|(_, c)| *c == top)
            .map(|(n, _)| *n)
            .collect();
        match leaders.as_slice() {
            [one] => Match::Node(&self.names[*one as usize]),
            _ => Match::Several(self.sorted_names(leaders.into_iter())),
        }
    }

    fn sorted_names(&self, ids: impl Iterator<Item = u32>) -> Vec<&str> {
        let mut names: Vec<&str> = ids.map(|n| self.names[n as usize].as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// The MACs of a lookup's `addresses` parameter (comma-separated, as IPA
/// sends them); what is not a MAC is skipped, as Ironic skips it. None left
/// (and no `node_uuid`) is Ironic's 400 "incomplete lookup".
pub fn lookup_addresses(addresses: &str) -> Vec<u64> {
    let mut out: Vec<u64> = addresses.split(',').filter_map(super::mac_key).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The node's BMC address: its static address on its `oob.network`.
pub fn bmc_address(node: &crate::design::EffectiveNode) -> Option<IpAddr> {
    let net = node.oob.as_ref()?.network.as_deref()?;
    node.address_on(net)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspection::inventory::from_value;
    use crate::inspection::test_site::design;
    use serde_json::json;

    fn cb(v: serde_json::Value) -> Callback {
        from_value(v).unwrap()
    }

    #[test]
    fn boot_mac_finds_its_node_case_insensitively() {
        let d = design();
        let idx = NodeIndex::build(&d);
        assert_eq!(idx.len(), d.nodes.len());
        let m = cb(
            json!({"inventory": {"interfaces": [{"name": "eth0", "mac_address": "02:BD:50:00:00:03"}]}}),
        );
        assert_eq!(idx.match_callback(&m), Match::Node("n00003"));
        let m = cb(json!({"boot_interface": "01-02-bd-50-00-00-05"}));
        assert_eq!(idx.match_callback(&m), Match::Node("n00005"));
    }

    #[test]
    fn bmc_address_alone_finds_its_node_and_no_bmc_values_find_nothing() {
        let idx = NodeIndex::build(&design());
        let m = cb(json!({"inventory": {"bmc_address": "10.16.1.2"}}));
        assert_eq!(idx.match_callback(&m), Match::Node("n00002"));
        for none in ["", "0.0.0.0"] {
            let m = cb(json!({"inventory": {"bmc_address": none, "bmc_v6address": "::/0"}}));
            assert_eq!(idx.match_callback(&m), Match::Unknown, "{none:?}");
        }
    }

    #[test]
    fn most_matching_attributes_wins_and_a_tie_is_several() {
        let idx = NodeIndex::build(&design());
        // BMC of n00002 and boot MAC of n00003: one each, a tie.
        let m = cb(json!({"inventory": {"bmc_address": "10.16.1.2",
            "interfaces": [{"mac_address": "02:bd:50:00:00:03"}]}}));
        assert_eq!(
            idx.match_callback(&m),
            Match::Several(vec!["n00002", "n00003"])
        );
        // Add n00003's BMC: two attributes beat one.
        let m = cb(
            json!({"inventory": {"bmc_address": "10.16.1.3", "bmc_v6address": "",
            "interfaces": [{"mac_address": "02:bd:50:00:00:03"}, {"mac_address": "02:bd:50:00:00:02"}]}}),
        );
        assert_eq!(idx.match_callback(&m), Match::Node("n00003"));
        // One MAC reported twice counts once: still a tie with the BMC.
        let m = cb(json!({"inventory": {"bmc_address": "10.16.1.2",
            "interfaces": [{"mac_address": "02:bd:50:00:00:03"}, {"name": "bond0", "mac_address": "02:BD:50:00:00:03"}]},
            "boot_interface": "02:bd:50:00:00:03"}));
        assert_eq!(
            idx.match_callback(&m),
            Match::Several(vec!["n00002", "n00003"])
        );
    }

    #[test]
    fn unknown_machine_is_unknown() {
        let idx = NodeIndex::build(&design());
        let m = cb(json!({"inventory": {"bmc_address": "192.0.2.1",
            "interfaces": [{"mac_address": "52:54:00:00:00:01"}]}}));
        assert_eq!(idx.match_callback(&m), Match::Unknown);
        assert_eq!(idx.match_callback(&cb(json!({}))), Match::Unknown);
    }

    #[test]
    fn lookup_by_macs_needs_one_node() {
        let idx = NodeIndex::build(&design());
        let k = |s| crate::inspection::mac_key(s).unwrap();
        assert_eq!(
            idx.lookup_macs(&[k("52:54:00:00:00:01"), k("02:bd:50:00:00:01")]),
            Match::Node("n00001")
        );
        assert_eq!(idx.lookup_macs(&[k("52:54:00:00:00:01")]), Match::Unknown);
        assert_eq!(
            idx.lookup_macs(&[k("02:bd:50:00:00:01"), k("02:bd:50:00:00:02")]),
            Match::Several(vec!["n00001", "n00002"])
        );
    }

    #[test]
    fn nodes_are_named_by_name_or_by_their_uuid() {
        let d = design();
        let secret = Secret::from_bytes([3; crate::keys::SECRET_LEN]);
        let idx = NodeIndex::build_with_uuids(&d, &secret);
        let uuid = secret.node_uuid("n00007");
        assert_eq!(idx.uuid("n00007"), Some(uuid.as_str()));
        assert_eq!(idx.node(&uuid), Some("n00007"));
        assert_eq!(idx.node(&uuid.to_uppercase()), Some("n00007"));
        assert_eq!(idx.node("n00007"), Some("n00007"));
        assert_eq!(idx.node("n99999"), None);
        assert_eq!(idx.node(&secret.node_uuid("n99999")), None);
        let plain = NodeIndex::build(&d);
        assert_eq!((plain.uuid("n00007"), plain.node(&uuid)), (None, None));
    }

    #[test]
    fn lookup_addresses_keep_macs_only() {
        let k = |s| crate::inspection::mac_key(s).unwrap();
        assert_eq!(
            lookup_addresses("02:BD:50:00:00:01,bogus,,02-bd-50-00-00-02,02:bd:50:00:00:01"),
            vec![k("02:bd:50:00:00:01"), k("02:bd:50:00:00:02")]
        );
        assert!(lookup_addresses("").is_empty());
        assert!(lookup_addresses("10.0.0.1").is_empty());
    }

    #[test]
    fn interface_mac_labels_are_indexed() {
        let idx = NodeIndex::build(&design());
        // The example site's n00001 states its bond's slave MACs in a label.
        let m = cb(json!({"inventory": {"interfaces": [{"mac_address": "3c:fd:fe:00:01:02"}]}}));
        assert_eq!(idx.match_callback(&m), Match::Node("n00001"));
    }
}
