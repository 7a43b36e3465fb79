//! A node with its host-profile chain applied, as Drydock compiles it.
//!
//! Merge rules are Drydock's (`objects.Utils`): a scalar from the child wins,
//! `'!'` unsets it; lists and maps merge, and a child entry `!name` removes the
//! parent's `name`; interfaces, devices, partitions, volume groups and logical
//! volumes merge by name. Deviation: Drydock keeps only its last parent device
//! when both child and parent define storage (a bug); slipway keeps them all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::model::*;
use super::{Design, Entity};

/// A node as it will be deployed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EffectiveNode {
    pub name: String,
    /// Index of the node's document in [`Design::documents`].
    pub doc: usize,
    /// Profile names from the node's own `host_profile` up to the root.
    pub profile_chain: Vec<String>,
    /// A profile named in the chain that does not exist.
    pub missing_profile: Option<String>,
    /// The chain loops back to this profile.
    pub profile_cycle: Option<String>,
    pub hardware_profile: Option<String>,
    pub primary_network: Option<String>,
    pub oob: Option<Oob>,
    // Profile-derived collections are shared between the nodes of a profile
    // (copy on write), so compiling 10,000 nodes does not copy them 10,000 times.
    pub physical_devices: Arc<Vec<(String, PhysicalDevice)>>,
    pub volume_groups: Arc<Vec<(String, VolumeGroup)>>,
    pub interfaces: Arc<Vec<(String, Interface)>>,
    pub image: Option<String>,
    pub kernel: Option<String>,
    pub kernel_params: Arc<BTreeMap<String, serde_json::Value>>,
    pub tags: Vec<String>,
    pub owner_data: BTreeMap<String, String>,
    pub rack: Option<String>,
    pub boot_mac: Option<String>,
    /// `(network, address)`; `address` may be `dhcp`.
    pub addressing: Vec<(Option<String>, Option<String>)>,
}

impl EffectiveNode {
    /// The static (non-DHCP) address on a network.
    pub fn address_on(&self, network: &str) -> Option<&str> {
        self.addressing.iter().find_map(|(n, a)| match (n, a) {
            (Some(n), Some(a)) if n == network && a != "dhcp" => Some(a.as_str()),
            _ => None,
        })
    }

    /// The interface of that name.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| i)
    }
}

/// A host profile with its own parents applied, ready to receive a node's layer.
#[derive(Debug, Clone, Default)]
struct CompiledProfile {
    base: EffectiveNode,
    chain: Vec<String>,
    missing: Option<String>,
    cycle: Option<String>,
}

/// Compiles a profile chain starting at `start` (root first, then each child).
fn compile_profile(design: &Design, start: Option<&str>) -> CompiledProfile {
    let mut layers: Vec<&HostData> = Vec::new();
    let mut out = CompiledProfile::default();
    let mut next = start.map(str::to_string);
    while let Some(p) = next {
        if out.chain.contains(&p) {
            out.cycle = Some(p);
            break;
        }
        match design.host_profile(&p) {
            Some(profile) => {
                out.chain.push(p);
                layers.push(&profile.data);
                next = profile.data.host_profile.clone();
            }
            None => {
                out.missing = Some(p);
                break;
            }
        }
    }
    for layer in layers.iter().rev() {
        apply_layer(&mut out.base, layer);
    }
    out
}

fn finish(design_node: &Entity<HostData>, profile: &CompiledProfile) -> EffectiveNode {
    let mut eff = profile.base.clone();
    apply_layer(&mut eff, &design_node.data);
    eff.name = design_node.name.clone();
    eff.doc = design_node.doc;
    eff.profile_chain = profile.chain.clone();
    eff.missing_profile = profile.missing.clone();
    eff.profile_cycle = profile.cycle.clone();
    eff.boot_mac = design_node
        .data
        .metadata
        .as_ref()
        .and_then(|m| m.boot_mac.clone());
    eff.addressing = design_node
        .data
        .addressing
        .iter()
        .flatten()
        .flatten()
        .map(|a| (a.network.clone(), a.address.clone()))
        .collect();
    eff
}

/// Applies the profile chain to one node.
pub fn compile(design: &Design, node: &Entity<HostData>) -> EffectiveNode {
    finish(
        node,
        &compile_profile(design, node.data.host_profile.as_deref()),
    )
}

/// A host profile with its parent chain applied, as a node using it with no
/// layer of its own would be (`name` is the profile's; no addressing).
pub fn compile_host_profile(design: &Design, profile: &str) -> EffectiveNode {
    let compiled = compile_profile(design, Some(profile));
    let mut eff = compiled.base;
    eff.name = profile.to_string();
    eff.profile_chain = compiled.chain;
    eff.missing_profile = compiled.missing;
    eff.profile_cycle = compiled.cycle;
    eff
}

/// The compiled nodes of an earlier design, to reuse those whose inputs are
/// the very same (shared) typed documents.
#[derive(Default)]
pub struct Previous {
    /// Every HostProfile of that design, by name (first of each name).
    profiles: HashMap<String, Arc<HostData>>,
    /// Node name to its typed data, its document index and its compiled form.
    nodes: HashMap<String, (Arc<HostData>, Arc<EffectiveNode>)>,
}

impl Previous {
    /// What [`compile_all`] may reuse of `design`'s compiled nodes.
    pub fn of(design: &Design) -> Previous {
        let mut p = Previous::default();
        for h in &design.host_profiles {
            p.profiles.entry(h.name.clone()).or_insert(h.data.clone());
        }
        for (n, e) in design.nodes.iter().zip(design.effective_nodes()) {
            p.nodes
                .entry(n.name.clone())
                .or_insert((n.data.clone(), e.clone()));
        }
        p
    }

    /// Whether `design` has exactly these host profiles (the same shared
    /// typed data under the same names).
    fn same_profiles(&self, design: &Design) -> bool {
        let mut firsts: HashMap<&str, &Arc<HostData>> = HashMap::new();
        for h in &design.host_profiles {
            firsts.entry(h.name.as_str()).or_insert(&h.data);
        }
        firsts.len() == self.profiles.len()
            && firsts.iter().all(|(name, data)| {
                self.profiles
                    .get(*name)
                    .is_some_and(|p| Arc::ptr_eq(p, data))
            })
    }
}

/// Compiles every node, each host-profile chain once. With `previous`, a
/// node whose typed document is the very one compiled before (shared by the
/// validation cache), at the same document index, under the same host
/// profiles, reuses its compiled form instead of being compiled again.
pub fn compile_all(design: &Design, previous: Option<&Previous>) -> Vec<Arc<EffectiveNode>> {
    use rayon::prelude::*;
    let previous = previous.filter(|p| p.same_profiles(design));
    let mut profiles: std::collections::HashMap<Option<&str>, CompiledProfile> =
        std::collections::HashMap::new();
    for n in &design.nodes {
        let key = n.data.host_profile.as_deref();
        profiles
            .entry(key)
            .or_insert_with(|| compile_profile(design, key));
    }
    design
        .nodes
        .par_iter()
        .map(|n| {
            let reused = previous
                .and_then(|p| p.nodes.get(&n.name))
                .filter(|(data, e)| Arc::ptr_eq(data, &n.data) && e.doc == n.doc);
            match reused {
                Some((_, e)) => e.clone(),
                None => Arc::new(finish(n, &profiles[&n.data.host_profile.as_deref()])),
            }
        })
        .collect()
}

fn inherit(child: &Option<String>, parent: &mut Option<String>) {
    match child.as_deref() {
        None => {}
        Some("!") => *parent = None,
        Some(v) => *parent = Some(v.to_string()),
    }
}

/// Drydock's `merge_lists`: child entries first, then the parent's not removed.
pub fn merge_list(child: &[String], parent: &[String]) -> Vec<String> {
    let mut out: Vec<String> = child
        .iter()
        .filter(|x| !x.starts_with('!'))
        .cloned()
        .collect();
    for p in parent {
        if !child.contains(&format!("!{p}")) && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// Drydock's `merge_dicts`: parent entries not removed, overridden by the child's.
pub fn merge_map<V: Clone>(
    child: &BTreeMap<String, V>,
    parent: &BTreeMap<String, V>,
) -> BTreeMap<String, V> {
    let mut out: BTreeMap<String, V> = parent
        .iter()
        .filter(|(k, _)| !child.contains_key(&format!("!{k}")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in child {
        if !k.starts_with('!') {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Merges named items: a child `!name` removes, a same name merges, others add.
fn merge_named<T: Clone>(
    child: Vec<(String, T)>,
    parent: Vec<(String, T)>,
    merge: impl Fn(&T, &T) -> T,
) -> Vec<(String, T)> {
    let mut out = Vec::new();
    for (pn, pv) in &parent {
        if child.iter().any(|(cn, _)| *cn == format!("!{pn}")) {
            continue;
        }
        match child.iter().find(|(cn, _)| cn == pn) {
            Some((_, cv)) => out.push((pn.clone(), merge(cv, pv))),
            None => out.push((pn.clone(), pv.clone())),
        }
    }
    for (cn, cv) in child {
        if !cn.starts_with('!') && !parent.iter().any(|(pn, _)| *pn == cn) {
            out.push((cn, cv));
        }
    }
    out
}

fn apply_layer(eff: &mut EffectiveNode, layer: &HostData) {
    inherit(&layer.hardware_profile, &mut eff.hardware_profile);
    inherit(&layer.primary_network, &mut eff.primary_network);
    if let Some(oob) = &layer.oob {
        let mut merged = eff.oob.clone().unwrap_or_default();
        inherit(&oob.oob_type, &mut merged.oob_type);
        inherit(&oob.network, &mut merged.network);
        inherit(&oob.account, &mut merged.account);
        inherit(&oob.credential, &mut merged.credential);
        merged.other = merge_map(&oob.other, &merged.other);
        eff.oob = Some(merged);
    }
    if let Some(platform) = &layer.platform {
        inherit(&platform.image, &mut eff.image);
        inherit(&platform.kernel, &mut eff.kernel);
        if let Some(kp) = &platform.kernel_params {
            eff.kernel_params = Arc::new(merge_map(kp, &eff.kernel_params));
        }
    }
    if let Some(meta) = &layer.metadata {
        inherit(&meta.rack, &mut eff.rack);
        if let Some(tags) = &meta.tags {
            eff.tags = merge_list(tags, &eff.tags);
        }
        if let Some(od) = &meta.owner_data {
            eff.owner_data = merge_map(od, &eff.owner_data);
        }
    }
    if let Some(storage) = &layer.storage {
        let devs: Vec<_> = storage
            .physical_devices
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let parent = Arc::unwrap_or_clone(std::mem::take(&mut eff.physical_devices));
        eff.physical_devices = Arc::new(merge_named(devs, parent, merge_device));
        let vgs: Vec<_> = storage
            .volume_groups
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let parent = Arc::unwrap_or_clone(std::mem::take(&mut eff.volume_groups));
        eff.volume_groups = Arc::new(merge_named(vgs, parent, merge_vg));
    }
    // A null interface (`bond0: ~`) is skipped, as Drydock's ingester does.
    let ifaces: Vec<_> = layer
        .interfaces
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    if !ifaces.is_empty() || !layer.interfaces.is_empty() {
        let parent = Arc::unwrap_or_clone(std::mem::take(&mut eff.interfaces));
        eff.interfaces = Arc::new(merge_named(ifaces, parent, merge_interface));
    }
}

fn merge_opt_list(
    child: &Option<Vec<String>>,
    parent: &Option<Vec<String>>,
) -> Option<Vec<String>> {
    match (child, parent) {
        (None, p) => p.clone(),
        (c, None) => c.as_ref().map(|c| merge_list(c, &[])),
        (Some(c), Some(p)) => Some(merge_list(c, p)),
    }
}

fn merge_interface(child: &Interface, parent: &Interface) -> Interface {
    let mut out = child.clone();
    out.device_link = parent.device_link.clone();
    inherit(&child.device_link, &mut out.device_link);
    out.slaves = merge_opt_list(&child.slaves, &parent.slaves);
    out.networks = merge_opt_list(&child.networks, &parent.networks);
    out.labels = merge_map(&child.labels, &parent.labels);
    if out.sriov.is_none() {
        out.sriov = parent.sriov.clone();
    }
    out
}

fn merge_device(child: &PhysicalDevice, parent: &PhysicalDevice) -> PhysicalDevice {
    let mut out = child.clone();
    out.volume_group = parent.volume_group.clone();
    inherit(&child.volume_group, &mut out.volume_group);
    out.labels = merge_map(&child.labels, &parent.labels);
    out.partitions = match (&child.partitions, &parent.partitions) {
        (None, p) => p.clone(),
        (c, None) => c.clone(),
        (Some(c), Some(p)) => Some(
            merge_named(named_parts(c), named_parts(p), |c, _| c.clone())
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        ),
    };
    out
}

fn named_parts(parts: &[Partition]) -> Vec<(String, Partition)> {
    parts
        .iter()
        .map(|p| (p.name.clone().unwrap_or_default(), p.clone()))
        .collect()
}

fn merge_vg(child: &VolumeGroup, parent: &VolumeGroup) -> VolumeGroup {
    let mut out = child.clone();
    out.vg_uuid = parent.vg_uuid.clone();
    inherit(&child.vg_uuid, &mut out.vg_uuid);
    let named = |lvs: &[LogicalVolume]| -> Vec<(String, LogicalVolume)> {
        lvs.iter()
            .map(|l| (l.name.clone().unwrap_or_default(), l.clone()))
            .collect()
    };
    out.logical_volumes = merge_named(
        named(&child.logical_volumes),
        named(&parent.logical_volumes),
        |c, _| c.clone(),
    )
    .into_iter()
    .map(|(_, v)| v)
    .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn child_list_entries_come_first_and_bang_removes() {
        assert_eq!(
            merge_list(&s(&["a", "!b"]), &s(&["b", "c", "a"])),
            s(&["a", "c"])
        );
    }

    #[test]
    fn child_map_entries_override_and_bang_removes() {
        let c: BTreeMap<String, i32> = [("a".to_string(), 1), ("!b".to_string(), 0)].into();
        let p: BTreeMap<String, i32> = [
            ("a".to_string(), 9),
            ("b".to_string(), 2),
            ("c".to_string(), 3),
        ]
        .into();
        let m = merge_map(&c, &p);
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"], 1);
        assert_eq!(m["c"], 3);
    }
}
