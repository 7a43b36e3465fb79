//! Durable state in SQLite: revisions seen, the applied design, nodes.
//!
//! The only user of `rusqlite`. Migrations are append-only and keyed by
//! `PRAGMA user_version`; a database written by a newer slipway is refused.
//! One writer; WAL so readers never block it.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::design::{Kind, Message};
use crate::plan::Plan;
use crate::revision::Revision;

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("database {path}: schema version {found} is newer than this slipway understands ({supported}); upgrade slipway or use another --db")]
    NewerSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("database: {0}")]
    Sql(String),
}

/// Outcome of a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevisionStatus {
    /// The revision being served.
    Applied,
    /// Rejected by validation; never applied.
    Invalid,
    /// Was applied, then replaced by a newer applied revision.
    Superseded,
}

/// A revision as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionRecord {
    #[serde(flatten)]
    pub revision: Revision,
    /// When slipway first saw it, seconds since the Unix epoch.
    pub seen_at: i64,
    pub status: RevisionStatus,
    pub messages: Vec<Message>,
}

/// A stored document's identity and hash, enough for planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub kind: Kind,
    pub name: String,
    pub hash: String,
}

/// The applied state that `plan` compares a design against.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Commit of the applied revision.
    pub revision: Option<String>,
    pub documents: HashMap<(Kind, String), StoredDocument>,
    /// Node name to the hash of everything its boot data depends on.
    pub nodes: HashMap<String, String>,
}

/// The open database.
pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(_path: &Path) -> Result<Store, StateError> {
        todo!()
    }

    /// The applied state, for planning.
    pub fn snapshot(&self) -> Result<Snapshot, StateError> {
        todo!()
    }

    /// Writes a plan for a valid revision in one transaction and records the
    /// revision as applied (the previous applied one becomes superseded).
    pub fn apply(&mut self, _plan: &Plan, _rev: &Revision) -> Result<(), StateError> {
        todo!()
    }

    /// Records a revision rejected by validation, with its messages.
    pub fn record_invalid(
        &mut self,
        _rev: &Revision,
        _messages: &[Message],
    ) -> Result<(), StateError> {
        todo!()
    }

    /// Revisions, newest first.
    pub fn revisions(&self, _limit: usize) -> Result<Vec<RevisionRecord>, StateError> {
        todo!()
    }

    /// The revision being served, if any.
    pub fn applied_revision(&self) -> Result<Option<RevisionRecord>, StateError> {
        todo!()
    }

    /// The record of one commit, if seen.
    pub fn revision(&self, _commit: &str) -> Result<Option<RevisionRecord>, StateError> {
        todo!()
    }
}
