//! The pure diff of a design against the applied state.

use std::collections::BTreeSet;

use crate::design::{Design, Kind};
use crate::state::Snapshot;

/// One document to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWrite {
    pub kind: Kind,
    pub name: String,
    pub hash: String,
    pub body: String,
    pub file: String,
    pub line: u32,
}

/// One node to write: its name and the hash of everything its boot data depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeWrite {
    pub name: String,
    pub inputs_hash: String,
    /// The compiled node (JSON) as stored for the API.
    pub body: String,
}

/// What applying a design changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub creates: Vec<DocumentWrite>,
    pub updates: Vec<DocumentWrite>,
    pub deletes: Vec<(Kind, String)>,
    pub node_writes: Vec<NodeWrite>,
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
}

/// Compares a valid design with the applied state. Pure: no I/O.
pub fn plan(_design: &Design, _state: &Snapshot) -> Plan {
    todo!()
}

/// The snapshot that applying `design` to an empty store would leave.
pub fn snapshot_of(_design: &Design) -> Snapshot {
    todo!()
}

impl Plan {
    /// Human-readable lines: `+ Kind/name`, `~ Kind/name`, `- Kind/name`, node lines.
    pub fn summary_lines(&self) -> Vec<String> {
        todo!()
    }
}
