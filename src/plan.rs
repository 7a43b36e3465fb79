//! The pure diff of a design against the applied state.
//!
//! Documents are compared by content hash per (kind, name); nodes by an
//! `inputs_hash` over everything their boot data depends on, so a change to a
//! Network re-renders exactly the nodes on it. No I/O here: the state comes in
//! as a [`Snapshot`] and the result goes out as a [`Plan`] for `Store::apply`.

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::design::{effective, filter, Design, Document, EffectiveNode, Kind};
use crate::state::{Snapshot, StoredDocument};

/// One document to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWrite {
    /// The document's kind.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// sha256 of the canonical JSON.
    pub hash: String,
    /// The canonical JSON of the whole document.
    pub body: String,
    /// File of the design it came from.
    pub file: String,
    /// 1-based line of its first line.
    pub line: u32,
}

/// One node to write: its name and the hash of everything its boot data depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeWrite {
    /// Hostname (the BaremetalNode's name).
    pub name: String,
    /// sha256 over the compiled node and every document its boot data reads.
    pub inputs_hash: String,
    /// The compiled node (JSON) as stored for the API.
    pub body: String,
    /// `(network, address)` pairs from the node's addressing; `dhcp` as written.
    pub addresses: Vec<(String, String)>,
}

/// What applying a design changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Documents new to the state, sorted by (kind, name).
    pub creates: Vec<DocumentWrite>,
    /// Documents whose content hash changed, sorted by (kind, name).
    pub updates: Vec<DocumentWrite>,
    /// Documents no longer in the design, sorted.
    pub deletes: Vec<(Kind, String)>,
    /// Nodes that are new or whose inputs changed, sorted by name.
    pub node_writes: Vec<NodeWrite>,
    /// Nodes no longer in the design, sorted.
    pub node_deletes: Vec<String>,
    /// Nodes whose boot data must be rendered again.
    pub affected_nodes: BTreeSet<String>,
}

impl Plan {
    /// True when applying changes nothing.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.updates.is_empty()
            && self.deletes.is_empty()
            && self.node_writes.is_empty()
            && self.node_deletes.is_empty()
    }

    /// One human-readable line per change: `+ Kind/name` (create), `~` (update),
    /// `- ` (delete), then `node NAME: ...` for each node whose boot data changes.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(
            self.creates.len()
                + self.updates.len()
                + self.deletes.len()
                + self.node_writes.len()
                + self.node_deletes.len(),
        );
        lines.extend(
            self.creates
                .iter()
                .map(|d| format!("+ {}/{}", d.kind.name(), d.name)),
        );
        lines.extend(
            self.updates
                .iter()
                .map(|d| format!("~ {}/{}", d.kind.name(), d.name)),
        );
        lines.extend(
            self.deletes
                .iter()
                .map(|(k, n)| format!("- {}/{n}", k.name())),
        );
        let created: HashSet<&str> = self
            .creates
            .iter()
            .filter(|d| d.kind == Kind::BaremetalNode)
            .map(|d| d.name.as_str())
            .collect();
        for n in &self.node_writes {
            if created.contains(n.name.as_str()) {
                lines.push(format!("node {}: new boot data", n.name));
            } else {
                lines.push(format!("node {}: boot data changes", n.name));
            }
        }
        lines.extend(
            self.node_deletes
                .iter()
                .map(|n| format!("node {n}: removed")),
        );
        lines
    }
}

/// Compares a valid design with the applied state. Pure: no I/O.
pub fn plan(design: &Design, state: &Snapshot) -> Plan {
    let docs = first_documents(design);
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for (key, doc) in &docs {
        match state.documents.get(key) {
            None => creates.push(write_of(doc)),
            Some(stored) if stored.hash != doc.hash => updates.push(write_of(doc)),
            Some(_) => {}
        }
    }
    let mut deletes: Vec<(Kind, String)> = state
        .documents
        .keys()
        .filter(|k| !docs.contains_key(*k))
        .cloned()
        .collect();
    // HashMap order is arbitrary; sorting makes plans comparable and output stable.
    creates.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    updates.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    deletes.sort();

    let nodes = compile_nodes(design, &docs);
    let mut node_writes: Vec<NodeWrite> = nodes
        .into_par_iter()
        .filter(|n| state.nodes.get(&n.name) != Some(&n.inputs_hash))
        .collect();
    node_writes.sort_by(|a, b| a.name.cmp(&b.name));
    let present: HashSet<&str> = design.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut node_deletes: Vec<String> = state
        .nodes
        .keys()
        .filter(|n| !present.contains(n.as_str()))
        .cloned()
        .collect();
    node_deletes.sort();
    let affected_nodes = node_writes
        .iter()
        .map(|n| n.name.clone())
        .chain(node_deletes.iter().cloned())
        .collect();
    Plan {
        creates,
        updates,
        deletes,
        node_writes,
        node_deletes,
        affected_nodes,
    }
}

/// The snapshot a store would hold after applying `design` to an empty store,
/// so two revisions can be compared without a database: `plan(to, &snapshot_of(from))`.
pub fn snapshot_of(design: &Design) -> Snapshot {
    let docs = first_documents(design);
    let nodes = compile_nodes(design, &docs)
        .into_iter()
        .map(|n| (n.name, n.inputs_hash))
        .collect();
    let documents = docs
        .into_iter()
        .map(|((kind, name), d)| {
            let stored = StoredDocument {
                kind,
                name: name.clone(),
                hash: d.hash.clone(),
            };
            ((kind, name), stored)
        })
        .collect();
    Snapshot {
        revision: None,
        documents,
        nodes,
    }
}

/// The first document of each (kind, name): later duplicates are reported by a
/// semantic rule and must not flip-flop the state with document order.
fn first_documents(design: &Design) -> HashMap<(Kind, String), &Document> {
    let mut out = HashMap::with_capacity(design.documents.len());
    for d in &design.documents {
        out.entry((d.kind, d.name.clone())).or_insert(d);
    }
    out
}

fn write_of(d: &Document) -> DocumentWrite {
    DocumentWrite {
        kind: d.kind,
        name: d.name.clone(),
        hash: d.hash.clone(),
        body: d.canonical.clone(),
        file: d.file.clone(),
        line: d.line,
    }
}

/// Every node of the design (first of each name) with its body and inputs hash.
fn compile_nodes(design: &Design, docs: &HashMap<(Kind, String), &Document>) -> Vec<NodeWrite> {
    let mut seen = HashSet::with_capacity(design.nodes.len());
    let entities: Vec<_> = design
        .nodes
        .iter()
        .filter(|n| seen.insert(n.name.as_str()))
        .collect();
    let effective: Vec<EffectiveNode> = entities
        .par_iter()
        .map(|n| effective::compile(design, n))
        .collect();

    // Which boot actions target each node, as the hashes of their documents.
    let mut actions: Vec<Vec<&str>> = vec![Vec::new(); effective.len()];
    let mut seen_actions = HashSet::new();
    for ba in &design.boot_actions {
        if !seen_actions.insert(ba.name.as_str()) {
            continue;
        }
        let hash = hash_of(docs, Kind::BootAction, &ba.name);
        for i in filter::select(design, &effective, ba.data.node_filter.as_ref()) {
            if let Some(list) = actions.get_mut(i) {
                list.push(hash);
            }
        }
    }
    let mut regions: Vec<(&str, &str)> = docs
        .iter()
        .filter(|((k, _), _)| *k == Kind::Region)
        .map(|((_, n), d)| (n.as_str(), d.hash.as_str()))
        .collect();
    regions.sort();

    effective
        .into_par_iter()
        .zip(actions)
        .map(|(node, actions)| node_write(docs, &regions, node, actions))
        .collect()
}

/// The hash of the named document, or a marker when it does not exist (an
/// invalid design; the marker still changes if the document appears later).
fn hash_of<'a>(docs: &HashMap<(Kind, String), &'a Document>, kind: Kind, name: &str) -> &'a str {
    docs.get(&(kind, name.to_string()))
        .map(|d| d.hash.as_str())
        .unwrap_or("missing")
}

fn node_write(
    docs: &HashMap<(Kind, String), &Document>,
    regions: &[(&str, &str)],
    node: EffectiveNode,
    mut actions: Vec<&str>,
) -> NodeWrite {
    // The document index depends on where the node sits in the design, not on
    // what it is; keeping it would make the hash depend on document order.
    let mut value = serde_json::to_value(&node).unwrap_or(serde_json::Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("doc");
    }
    let body = value.to_string();

    let mut deps: BTreeSet<(Kind, &str)> = BTreeSet::new();
    let mut networks: Vec<&str> = Vec::new();
    networks.extend(node.addressing.iter().filter_map(|(n, _)| n.as_deref()));
    for (_, iface) in &node.interfaces {
        networks.extend(iface.networks.iter().flatten().map(String::as_str));
        if let Some(link) = iface.device_link.as_deref() {
            deps.insert((Kind::NetworkLink, link));
        }
    }
    networks.extend(node.primary_network.as_deref());
    networks.extend(node.oob.as_ref().and_then(|o| o.network.as_deref()));
    deps.extend(networks.into_iter().map(|n| (Kind::Network, n)));
    deps.extend(
        node.hardware_profile
            .as_deref()
            .map(|h| (Kind::HardwareProfile, h)),
    );
    deps.extend(node.rack.as_deref().map(|r| (Kind::Rack, r)));

    let mut h = Sha256::new();
    h.update(b"node\0");
    h.update(body.as_bytes());
    for (kind, name) in &deps {
        h.update(format!("\n{}\0{name}\0{}", kind.name(), hash_of(docs, *kind, name)).as_bytes());
    }
    for (name, hash) in regions {
        h.update(format!("\nRegion\0{name}\0{hash}").as_bytes());
    }
    actions.sort_unstable();
    for a in actions {
        h.update(format!("\nBootAction\0{a}").as_bytes());
    }
    let addresses = node
        .addressing
        .iter()
        .filter_map(|(n, a)| Some((n.clone()?, a.clone()?)))
        .collect();
    NodeWrite {
        name: node.name,
        inputs_hash: hex::encode(h.finalize()),
        body,
        addresses,
    }
}
