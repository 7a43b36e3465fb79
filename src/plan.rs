//! The pure diff of a design against the applied state.
//!
//! Documents are compared by content hash per (kind, name); nodes by an
//! `inputs_hash` over everything their boot data depends on, so a change to a
//! Network re-renders exactly the nodes on it. No I/O here: the state comes in
//! as a [`Snapshot`] and the result goes out as a [`Plan`] for `Store::apply`.
//!
//! A node's inputs are hashed in two layers so that planning 10,000 nodes does
//! not compile 10,000 nodes:
//! - `source_hash`: the node's document, its host-profile chain (which together
//!   determine the compiled node), and every Network, NetworkLink,
//!   HardwareProfile, Rack and Region those documents name. Cheap: no compile.
//! - `inputs_hash`: `source_hash` plus the BootActions that target the node.
//!   Targeting needs the compiled node, so it is computed only for nodes whose
//!   source changed, or for every node when a BootAction changed.
//!
//! Hashing the inputs of the compile rather than its output can only
//! over-report a change (a profile field a node overrides), never miss one.

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::design::model::HostData;
use crate::design::{Design, Document, EffectiveNode, Entity, Kind};

/// A stored document's identity and hash, enough for planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// The document's kind.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// sha256 of the document's canonical JSON.
    pub hash: String,
}

/// The applied state that `plan` compares a design against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Commit of the applied revision.
    pub revision: Option<String>,
    /// Every stored document by (kind, name).
    pub documents: HashMap<(Kind, String), StoredDocument>,
    /// Node name to the hash of everything its boot data depends on.
    pub nodes: HashMap<String, String>,
    /// Node name to its `source_hash` (inputs but boot-action targeting), which
    /// lets `plan` skip compiling nodes whose sources did not change.
    pub node_sources: HashMap<String, String>,
}

impl Snapshot {
    /// The snapshot `Store::snapshot` (the state module) reads once `plan` is applied as
    /// revision `commit` over this one, computed without reading the
    /// database: the reconciler keeps it for the next pass.
    pub fn after(mut self, plan: &Plan, commit: &str) -> Snapshot {
        self.revision = Some(commit.to_string());
        for d in plan.creates.iter().chain(&plan.updates) {
            self.documents.insert(
                (d.kind, d.name.clone()),
                StoredDocument {
                    kind: d.kind,
                    name: d.name.clone(),
                    hash: d.hash.clone(),
                },
            );
        }
        for key in &plan.deletes {
            self.documents.remove(key);
        }
        for n in &plan.node_writes {
            self.nodes.insert(n.name.clone(), n.inputs_hash.clone());
            self.node_sources
                .insert(n.name.clone(), n.source_hash.clone());
        }
        for n in &plan.node_deletes {
            self.nodes.remove(n);
            self.node_sources.remove(n);
        }
        self
    }
}

/// One document to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWrite {
    /// The document's kind.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// sha256 of the canonical JSON.
    pub hash: String,
    /// The canonical JSON of the whole document (shared with the design's).
    pub body: std::sync::Arc<str>,
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
    /// sha256 over `source_hash` and the BootActions that target the node.
    pub inputs_hash: String,
    /// sha256 over the node's document, its profile chain and the documents
    /// they name: everything but boot-action targeting (see the module docs).
    pub source_hash: String,
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
    plan_with(design, state, true)
}

/// [`plan`] with every `NodeWrite::body` left empty: the caller gives the
/// bodies to the apply as it writes them ([`NodeBodies`]), so a large first
/// apply never holds every compiled node's JSON at once.
pub fn plan_without_bodies(design: &Design, state: &Snapshot) -> Plan {
    plan_with(design, state, false)
}

/// The stored JSON of the design's compiled nodes, made one at a time.
pub struct NodeBodies<'a> {
    by_name: HashMap<&'a str, &'a EffectiveNode>,
}

impl<'a> NodeBodies<'a> {
    /// The design's nodes (first of each name) by name.
    pub fn new(design: &'a Design) -> Self {
        let mut by_name = HashMap::with_capacity(design.nodes.len());
        for n in design.effective_nodes() {
            by_name.entry(n.name.as_str()).or_insert(&**n);
        }
        NodeBodies { by_name }
    }

    /// The body [`plan`] would have put in the node's `NodeWrite` (empty for
    /// a node not in the design).
    pub fn body(&self, name: &str) -> String {
        self.by_name
            .get(name)
            .map(|n| node_body(n))
            .unwrap_or_default()
    }
}

fn plan_with(design: &Design, state: &Snapshot, bodies: bool) -> Plan {
    let docs = first_documents(design);
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for (&(kind, name), doc) in &docs {
        match state.documents.get(&(kind, name.to_string())) {
            None => creates.push(write_of(doc)),
            Some(stored) if stored.hash != doc.hash => updates.push(write_of(doc)),
            Some(_) => {}
        }
    }
    let mut deletes: Vec<(Kind, String)> = state
        .documents
        .keys()
        .filter(|(k, n)| !docs.contains_key(&(*k, n.as_str())))
        .cloned()
        .collect();
    // HashMap order is arbitrary; sorting makes plans comparable and output stable.
    creates.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    updates.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    deletes.sort();

    // A changed BootAction may target any node, unchanged ones included.
    let retarget = creates
        .iter()
        .chain(&updates)
        .map(|d| d.kind)
        .chain(deletes.iter().map(|(k, _)| *k))
        .any(|k| k == Kind::BootAction);
    let mut node_writes = node_writes(design, &docs, state, retarget, bodies);
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
    let mut nodes = HashMap::new();
    let mut node_sources = HashMap::new();
    for n in node_writes(design, &docs, &Snapshot::default(), true, false) {
        node_sources.insert(n.name.clone(), n.source_hash);
        nodes.insert(n.name, n.inputs_hash);
    }
    let documents = docs
        .into_iter()
        .map(|((kind, name), d)| {
            let stored = StoredDocument {
                kind,
                name: name.to_string(),
                hash: d.hash.clone(),
            };
            ((kind, name.to_string()), stored)
        })
        .collect();
    Snapshot {
        revision: None,
        documents,
        nodes,
        node_sources,
    }
}

/// The first document of each (kind, name), keyed without copying names. Later
/// duplicates are reported by a semantic rule and must not flip-flop the state
/// with document order.
type Documents<'a> = HashMap<(Kind, &'a str), &'a Document>;

fn first_documents(design: &Design) -> Documents<'_> {
    let mut out = HashMap::with_capacity(design.documents.len());
    for d in &design.documents {
        out.entry((d.kind, d.name.as_str())).or_insert(d);
    }
    out
}

fn write_of(d: &Document) -> DocumentWrite {
    DocumentWrite {
        kind: d.kind,
        name: d.name.clone(),
        hash: d.hash.clone(),
        body: d.canonical_text(),
        file: d.file.clone(),
        line: d.line,
    }
}

/// Changes when the compiled node's shape or the hashing changes, so an
/// upgraded slipway rewrites stored node bodies once instead of keeping stale ones.
const NODE_FORMAT: &str = concat!("slipway node v2, ", env!("CARGO_PKG_VERSION"));

/// The nodes (first of each name) whose inputs differ from `state`: all of them
/// checked by `source_hash`, and compiled only when their source changed or
/// `retarget` says boot-action targeting must be recomputed. `bodies`: also
/// serialise the compiled node (not needed for a snapshot).
fn node_writes(
    design: &Design,
    docs: &Documents<'_>,
    state: &Snapshot,
    retarget: bool,
    bodies: bool,
) -> Vec<NodeWrite> {
    let mut seen = HashSet::with_capacity(design.nodes.len());
    // (index in `design.nodes`, node), first of each name.
    let entities: Vec<(usize, &Entity<HostData>)> = design
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| seen.insert(n.name.as_str()))
        .collect();

    let mut regions: Vec<(&str, &str)> = docs
        .iter()
        .filter(|((k, _), _)| *k == Kind::Region)
        .map(|((_, n), d)| (*n, d.hash.as_str()))
        .collect();
    regions.sort_unstable();
    let mut chains: HashMap<Option<&str>, [u8; 32]> = HashMap::new();
    for (_, n) in &entities {
        let start = n.data.host_profile.as_deref();
        chains
            .entry(start)
            .or_insert_with(|| chain_digest(design, docs, start));
    }

    // Phase 1: every node's source hash; keep those that must be compiled.
    let candidates: Vec<(usize, String)> = entities
        .par_iter()
        .map(|(i, n)| {
            let chain = &chains[&n.data.host_profile.as_deref()];
            (*i, source_hash(docs, &regions, chain, n))
        })
        .filter(|(i, source)| {
            retarget || state.node_sources.get(&design.nodes[*i].name) != Some(source)
        })
        .collect();

    // Phase 2: their compiled form (the design's, compiled once) and the boot
    // actions that target each.
    let all = design.effective_nodes();
    let compiled: Vec<&EffectiveNode> = candidates.iter().map(|(i, _)| &*all[*i]).collect();
    // Position of each candidate by its index in the design.
    let position: HashMap<usize, usize> = candidates
        .iter()
        .enumerate()
        .map(|(pos, (i, _))| (*i, pos))
        .collect();
    let mut actions: Vec<Vec<&str>> = vec![Vec::new(); compiled.len()];
    let mut seen_actions = HashSet::new();
    let targets = design.boot_action_targets();
    for (bi, ba) in design.boot_actions.iter().enumerate() {
        if !seen_actions.insert(ba.name.as_str()) {
            continue;
        }
        let hash = hash_of(docs, Kind::BootAction, &ba.name);
        for &i in &targets[bi] {
            if let Some(list) = position.get(&i).and_then(|&p| actions.get_mut(p)) {
                list.push(hash);
            }
        }
    }

    compiled
        .into_par_iter()
        .zip(candidates)
        .zip(actions)
        .filter_map(|((node, (_, source)), mut actions)| {
            actions.sort_unstable();
            let mut h = Sha256::new();
            h.update(source.as_bytes());
            for a in actions {
                entry(&mut h, &["BootAction", a]);
            }
            let inputs_hash = hex::encode(h.finalize());
            let unchanged = state.nodes.get(&node.name) == Some(&inputs_hash)
                && state.node_sources.get(&node.name) == Some(&source);
            if unchanged {
                return None;
            }
            Some(node_write(node, source, inputs_hash, bodies))
        })
        .collect()
}

/// A digest of a host-profile chain starting at `start`: each profile's name
/// and document hash, the documents it names, and where the chain breaks.
fn chain_digest(design: &Design, docs: &Documents<'_>, start: Option<&str>) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut visited: Vec<&str> = Vec::new();
    let mut next = start;
    while let Some(name) = next {
        if visited.contains(&name) {
            entry(&mut h, &["cycle", name]);
            break;
        }
        visited.push(name);
        let Some(profile) = design.host_profile(name) else {
            entry(&mut h, &["missing", name]);
            break;
        };
        entry(
            &mut h,
            &["HostProfile", name, hash_of(docs, Kind::HostProfile, name)],
        );
        hash_references(&mut h, docs, &profile.data);
        next = profile.data.host_profile.as_deref();
    }
    h.finalize().into()
}

/// The node's `source_hash` (see the module docs).
fn source_hash(
    docs: &Documents<'_>,
    regions: &[(&str, &str)],
    chain: &[u8; 32],
    node: &Entity<HostData>,
) -> String {
    let mut h = Sha256::new();
    entry(&mut h, &[NODE_FORMAT]);
    let own = hash_of(docs, Kind::BaremetalNode, &node.name);
    entry(&mut h, &["BaremetalNode", &node.name, own]);
    entry(&mut h, &["chain"]);
    h.update(chain);
    hash_references(&mut h, docs, &node.data);
    for (name, hash) in regions {
        entry(&mut h, &["Region", name, hash]);
    }
    hex::encode(h.finalize())
}

/// Hashes the documents a node or profile layer names, sorted. A layer's names
/// are a superset of what the compiled node keeps (a child may remove them),
/// which can only over-report a change.
fn hash_references<'d>(h: &mut Sha256, docs: &Documents<'_>, data: &'d HostData) {
    let mut refs: BTreeSet<(Kind, &'d str)> = BTreeSet::new();
    let mut add = |kind, name: Option<&'d str>| {
        if let Some(n) = name {
            refs.insert((kind, n));
        }
    };
    add(Kind::HardwareProfile, data.hardware_profile.as_deref());
    add(Kind::Network, data.primary_network.as_deref());
    if let Some(oob) = &data.oob {
        add(Kind::Network, oob.network.as_deref());
    }
    if let Some(meta) = &data.metadata {
        add(Kind::Rack, meta.rack.as_deref());
    }
    for iface in data.interfaces.values().flatten() {
        add(Kind::NetworkLink, iface.device_link.as_deref());
        for n in iface.networks.iter().flatten() {
            add(Kind::Network, Some(n));
        }
    }
    for a in data.addressing.iter().flatten().flatten() {
        add(Kind::Network, a.network.as_deref());
    }
    for (kind, name) in refs {
        // `!name` removes an inherited entry; the named document still matters.
        let name = name.strip_prefix('!').unwrap_or(name);
        entry(h, &[kind.name(), name, hash_of(docs, kind, name)]);
    }
}

/// Feeds one entry to a hash, each part prefixed with its length so that no
/// two different entries feed the same bytes, whatever the names contain.
/// Avoids a `format!` per entry in the per-node loop.
fn entry(h: &mut Sha256, parts: &[&str]) {
    h.update((parts.len() as u64).to_le_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
}

/// The hash of the named document, or a marker when it does not exist (an
/// invalid design; the marker still changes if the document appears later).
fn hash_of<'a>(docs: &Documents<'a>, kind: Kind, name: &str) -> &'a str {
    docs.get(&(kind, name))
        .map(|d| d.hash.as_str())
        .unwrap_or("missing")
}

fn node_write(
    node: &EffectiveNode,
    source_hash: String,
    inputs_hash: String,
    bodies: bool,
) -> NodeWrite {
    let body = if bodies {
        node_body(node)
    } else {
        String::new()
    };
    let addresses = node
        .addressing
        .iter()
        .filter_map(|(n, a)| Some((n.clone()?, a.clone()?)))
        .collect();
    NodeWrite {
        name: node.name.clone(),
        inputs_hash,
        source_hash,
        body,
        addresses,
    }
}

/// A compiled node as stored: its JSON without the document index (which
/// depends on where the node sits in the design, not on what it is; storing
/// it would make bodies depend on document order).
fn node_body(node: &EffectiveNode) -> String {
    let mut value = serde_json::to_value(node).unwrap_or(serde_json::Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.remove("doc");
    }
    value.to_string()
}
