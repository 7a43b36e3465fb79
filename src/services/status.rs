//! What the server is serving: written by the reconcile loop after each
//! pass, read by every dialect's health routes. Lives below both so neither
//! imports the other.

use std::sync::{Arc, RwLock};

/// What the last reconcile pass did, for `/health/extended`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassReport {
    /// When the pass finished, seconds since the Unix epoch.
    pub finished_at: i64,
    /// `unchanged`, `applied`, `invalid` or `error`.
    pub result: String,
    /// The head commit the pass looked at, when it got that far.
    pub commit: Option<String>,
    /// Human-readable detail (counts, or the error).
    pub detail: String,
    /// How long the pass took.
    pub duration_ms: u64,
}

/// What the server is serving, shared by the loop (writer) and the API (reader).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServeStatus {
    /// The applied revision's commit; `None` until a good revision is loaded.
    pub applied: Option<String>,
    /// Documents of the applied design.
    pub documents: usize,
    /// Nodes of the applied design.
    pub nodes: usize,
    /// The last pass, if one finished.
    pub last_pass: Option<PassReport>,
    /// The last pass that applied a revision (kept when later passes find
    /// nothing to do), if one did since start.
    pub last_applied: Option<PassReport>,
    /// Passes finished since start.
    pub passes: u64,
}

/// Shared handle on [`ServeStatus`].
pub type SharedStatus = Arc<RwLock<ServeStatus>>;
