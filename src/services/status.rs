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
    pub result: PassOutcome,
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

/// How a reconcile pass ended: served in health and used as the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PassOutcome {
    /// The head was already handled; nothing to do.
    Unchanged,
    /// A new revision was applied.
    Applied,
    /// The head was recorded invalid; the previous revision keeps serving.
    Invalid,
    /// The pass failed; retried on the next trigger.
    Error,
}

impl PassOutcome {
    /// The word served and used as the metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            PassOutcome::Unchanged => "unchanged",
            PassOutcome::Applied => "applied",
            PassOutcome::Invalid => "invalid",
            PassOutcome::Error => "error",
        }
    }
}

impl std::str::FromStr for PassOutcome {
    type Err = ();

    fn from_str(word: &str) -> Result<Self, ()> {
        [
            PassOutcome::Unchanged,
            PassOutcome::Applied,
            PassOutcome::Invalid,
            PassOutcome::Error,
        ]
        .into_iter()
        .find(|o| o.as_str() == word)
        .ok_or(())
    }
}
