//! Node inventory and the applied state's history, read-only: revisions,
//! nodes (by name) with their boot-action counts, build data, tasks. A
//! dialect reads through [`Inventory::read`], which hands its closure
//! [`Records`] (the queries a dialect may make) on a blocking thread, on the
//! API's own connection. Lookups by IP are here ([`Records::nodes_by_address`]);
//! by MAC (the applied design's `boot_mac` and interface MAC labels) through
//! the agents' node index ([`super::agents::AgentService::index`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::ServiceError;
use crate::state::{
    BuildDataRecord, NodeRecord, RevisionRecord, StateError, Store, TaskMessage, TaskRecord,
};

/// Read access to the applied state. Cheap to clone.
#[derive(Clone)]
pub struct Inventory {
    store: Arc<Mutex<Store>>,
}

impl Inventory {
    /// Reads on `store` (shared with the task engine, which writes tasks on it).
    pub fn new(store: Arc<Mutex<Store>>) -> Inventory {
        Inventory { store }
    }

    /// The connection, for the services that write on it (tasks).
    pub fn connection(&self) -> Arc<Mutex<Store>> {
        self.store.clone()
    }

    /// Runs `f` with the records on a blocking thread: SQLite calls must not
    /// stall the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(Records<'_>) -> Result<T, StateError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let guard = store.lock().map_err(|_| ServiceError::poisoned())?;
            Ok(f(Records { store: &guard })?)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("database task failed: {e}")))?
    }
}

/// The queries a dialect may make, for the length of one [`Inventory::read`].
pub struct Records<'a> {
    store: &'a Store,
}

impl Records<'_> {
    /// The newest `limit` revisions, newest first.
    pub fn revisions(&self, limit: usize) -> Result<Vec<RevisionRecord>, StateError> {
        self.store.revisions(limit)
    }

    /// One revision by commit.
    pub fn revision(&self, commit: &str) -> Result<Option<RevisionRecord>, StateError> {
        self.store.revision(commit)
    }

    /// A node's build data (only the newest per generator with `latest`).
    pub fn build_data(&self, node: &str, latest: bool) -> Result<Vec<BuildDataRecord>, StateError> {
        self.store.build_data(node, latest)
    }

    /// Every applied node's name, sorted.
    pub fn node_names(&self) -> Result<Vec<String>, StateError> {
        self.store.node_names()
    }

    /// One applied node by name, with its addresses.
    pub fn node(&self, name: &str) -> Result<Option<NodeRecord>, StateError> {
        self.store.node(name)
    }

    /// The applied nodes holding an IP `address` (on any network), with
    /// their addresses; what the Ironic agent and inspector dialects look
    /// nodes up by.
    pub fn nodes_by_address(&self, address: &str) -> Result<Vec<NodeRecord>, StateError> {
        let mut out = Vec::new();
        for name in self.store.nodes_with_address(address)? {
            out.extend(self.store.node(&name)?);
        }
        Ok(out)
    }

    /// A node's latest introspection (the inspector dialect's row).
    pub fn introspection(
        &self,
        node: &str,
    ) -> Result<Option<crate::state::IntrospectionRecord>, StateError> {
        self.store.introspection(node)
    }

    /// Where a node's latest inspection disagreed with the design.
    pub fn inspection_messages(
        &self,
        node: &str,
    ) -> Result<Vec<crate::state::InspectionMessage>, StateError> {
        self.store.inspection_messages(node)
    }

    /// Boot-action counts per node and status.
    pub fn boot_action_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, u64>>, StateError> {
        self.store.boot_action_counts()
    }

    /// Every task, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskRecord>, StateError> {
        self.store.tasks()
    }

    /// One task by id.
    pub fn task(&self, id: &str) -> Result<Option<TaskRecord>, StateError> {
        self.store.task(id)
    }

    /// A task's messages, in order.
    pub fn task_messages(&self, id: &str) -> Result<Vec<TaskMessage>, StateError> {
        self.store.task_messages(id)
    }
}
