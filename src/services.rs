//! Domain services that are not HTTP: what every dialect calls. A dialect
//! (a folder under `src/api/`) reaches the database, the applied design and
//! the background writers only through these, never `state` or `source`
//! directly (tests/architecture.rs enforces it); the record types it needs
//! are re-exported here.
//!
//! - [`agents`]: Ironic agents: lookup by MAC over a node index per served
//!   revision, agent tokens, heartbeats;
//! - [`clusters`]: clusters, hosts and networks of the Commissaire
//!   dialect, as a view of the served design;
//! - [`deployments`]: `BootService`, the applied revision served to nodes:
//!   node deployments and their keys, made with the revision that changes
//!   the node, and boot data through the render cache;
//! - [`render_cache`]: the applied design compiled for rendering and the
//!   boot data rendered per (node, deployment, kind);
//! - [`reports`]: the report writer (group commit on its own thread);
//! - [`workers`]: the worker pool for requests' blocking work;
//! - [`inspection`]: a ramdisk's inspection callback matched, stored,
//!   compared with the design or proposed; introspection rows;
//! - [`inventory`]: read-only lookups of nodes, revisions, build data, tasks;
//! - [`power`]: the power service on the nodes of a design (targets from
//!   their `oob`, operations on one node or many, the journal);
//! - [`tasks`]: the task engine;
//! - [`designs`]: design references resolved to design files;
//! - [`status`]: what the server serves, written by the reconcile loop;
//! - [`writeback`]: design edits through an API become validated commits.

pub mod agents;
pub mod boot_scripts;
pub mod clusters;
pub mod deployments;
pub mod designs;
pub mod inspection;
pub mod inventory;
pub mod luna2_view;
pub mod node_status;
pub mod power;
pub mod power_requests;
pub mod render_cache;
pub mod reports;
pub mod status;
pub mod tasks;
pub mod users;
pub mod workers;
pub mod writeback;

pub use deployments::{
    BootConfig, BootError, BootService, NodeDeployment, PreparedRevision, DOES_NOT_RENDER,
};
pub use render_cache::{render_offline, render_site, Rendered, ServingState, SiteRender};
pub use reports::writer_gone;
pub use status::{PassOutcome, PassReport, ServeStatus, SharedStatus};

/// The record types dialects present, as the state module defines them.
pub use crate::state::{
    BootActionDetail, BootActionRecord, BootActionStatus, BuildDataRecord, InspectionMessage,
    IntrospectionRecord, NodeRecord, ReportOutcome, RevisionRecord, RevisionStatus, StateError,
    TaskMessage, TaskRecord,
};

/// How long a boot-data request waits for the applied revision to be loaded
/// after a start before it gets 503 with `Retry-After`.
pub const LOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a service call failed, for a dialect to present.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Serving boot data or deployments failed (or the database was replaced).
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The service itself failed (a poisoned lock, a failed blocking task).
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// The error of a connection whose lock a panicking holder poisoned.
    fn poisoned() -> ServiceError {
        ServiceError::Internal("database lock poisoned".into())
    }
}
