//! What every handler of every dialect can reach: the services and the
//! HTTP settings. Built once by the server.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use super::{HttpError, Tokens};
use crate::services::designs::DesignSource;
use crate::services::inspection::InspectionService;
use crate::services::inventory::{Inventory, Records};
use crate::services::tasks::TaskEngine;
use crate::services::{BootService, SharedStatus, StateError};

/// What every handler can reach: one shared [`AppParts`]. axum clones the
/// state for every extractor and middleware of every request, so a clone is
/// one reference count, not one per service (with twenty `Arc`s, cloning and
/// dropping the parts was 13 % of the server's time under `wrk`, every
/// count a cache line the two cores passed back and forth).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// The state of `parts`.
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The services and settings behind an [`AppState`].
pub struct AppParts {
    /// Reads of the applied state (revisions, nodes, build data) on the
    /// API's own connection (the reconciler has its own writer).
    pub inventory: Inventory,
    /// Tasks: created, run in the background, listed.
    pub tasks: TaskEngine,
    /// What is being served, as the reconciler last left it.
    pub status: SharedStatus,
    /// Wakes the reconciler (the git webhook).
    pub trigger: Arc<Notify>,
    /// The database file, shown by the extended health check.
    pub db_path: String,
    /// When the server started, for uptime.
    pub started: Instant,
    /// Deployments, keys, boot data and status reports (its own connection).
    pub boot: Arc<BootService>,
    /// Inspection callbacks and introspection rows (the inspector dialect).
    pub inspection: Arc<InspectionService>,
    /// Ironic agents: lookups, tokens, heartbeats.
    pub agents: Arc<crate::services::agents::AgentService>,
    /// Where design references are read from.
    pub design: DesignSource,
    /// Accepted operator tokens; `None`: operator routes are loopback-only.
    pub tokens: Option<Arc<Tokens>>,
    /// The server's metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Requests of nodes (boot data, signals) answered at once; more get 429.
    pub max_in_flight: usize,
    /// Longest wait for a request's body (`--body-timeout`); 408 after it.
    pub body_timeout: std::time::Duration,
    /// The power service on the served design's nodes.
    pub power: crate::services::power::NodePower,
    /// Clusters, hosts and networks of the served design (the Commissaire dialect).
    pub clusters: Arc<crate::services::clusters::ClusterService>,
    /// Design edits committed to git (Luna2 config writes, Commissaire membership).
    pub writeback: Arc<crate::services::writeback::WriteBack>,
    /// Users (the users file) and their session tokens (Luna2's JWTs).
    pub users: Arc<crate::services::users::UserService>,
    /// Boot scripts of the served revision (Luna2's `/boot/…`).
    pub boot_scripts: Arc<crate::services::boot_scripts::BootScriptService>,
    /// Nodes' own statuses (Luna2's `/monitor/node/…`; Commissaire reads them).
    pub node_status: Arc<crate::services::node_status::NodeStatusService>,
    /// Bulk power requests, polled (Luna2's `/control/…`).
    pub power_requests: crate::services::power_requests::PowerRequests,
    /// The served design as Luna2 config (built once per revision).
    pub luna: Arc<crate::services::luna2_view::Luna2Site>,
}

impl AppState {
    /// Runs `f` on the inventory's records on a blocking thread: SQLite
    /// calls must not stall the async runtime.
    pub async fn records<T, F>(&self, f: F) -> Result<T, HttpError>
    where
        T: Send + 'static,
        F: FnOnce(Records<'_>) -> Result<T, StateError> + Send + 'static,
    {
        Ok(self.inventory.read(f).await?)
    }
}
