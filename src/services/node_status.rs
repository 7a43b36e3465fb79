//! What a node says about itself while it installs (Luna2's
//! `POST /monitor/node/{node}`): its `state` (`installer.started`,
//! `installer.completed`, …) and a status line, stored durably as the node's
//! build data (generator [`GENERATOR`], JSON `{"state", "status"}`, history
//! kept) and read back as its latest record. Any dialect reads it here:
//! Luna2's `GET /monitor/node/{node}`, Commissaire's host availability
//! ([`NodeStatusService::get`], [`NodeState::installed`]).
//!
//! The latest status of each node is kept in memory once read or written,
//! so a repeated read takes no database call. Every method blocks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::json;

use super::{BootService, ServiceError};
use crate::state::{BuildDataRecord, Store};

/// The build-data generator of node statuses.
pub const GENERATOR: &str = "luna2-monitor";

/// The longest state or status line kept (bytes).
pub const MAX_TEXT: usize = 512;

/// A node's latest status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// The state word the node posted (`installer.completed`).
    pub state: String,
    /// The status line (posted, or made from the state).
    pub status: String,
    /// When it was posted, seconds since the epoch.
    pub at: i64,
}

impl NodeState {
    /// The node said its installation completed (`….completed` or
    /// `….ok`, Luna2's installer words), and nothing since.
    pub fn installed(&self) -> bool {
        self.state.ends_with(".completed") || self.state.ends_with(".ok")
    }

    /// The node reported a failure (`….error`, `….failed`).
    pub fn failed(&self) -> bool {
        self.state.ends_with(".error") || self.state.ends_with(".failed")
    }
}

/// Why a status cannot be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No node of that name in the served design.
    #[error("{0} not found")]
    UnknownNode(String),
    /// The state or status is empty, too long or not printable text.
    #[error("{0}")]
    Invalid(String),
    /// Storage or the served design failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::state::StateError> for StatusError {
    fn from(e: crate::state::StateError) -> Self {
        StatusError::Service(e.into())
    }
}

impl From<super::BootError> for StatusError {
    fn from(e: super::BootError) -> Self {
        StatusError::Service(e.into())
    }
}

/// See the module docs.
pub struct NodeStatusService {
    boot: Arc<BootService>,
    store: Arc<Mutex<Store>>,
    latest: RwLock<HashMap<String, Option<NodeState>>>,
}

impl std::fmt::Debug for NodeStatusService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStatusService").finish_non_exhaustive()
    }
}

fn text_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= MAX_TEXT && s.chars().all(|c| !c.is_control())
}

/// The status line of a state, when the node posted none.
pub fn status_of(state: &str) -> String {
    if state.ends_with(".error") || state.ends_with(".failed") {
        format!("Luna installer: error ({state})")
    } else {
        "Luna installer: No errors".to_string()
    }
}

impl NodeStatusService {
    /// The service on `store` (the API's connection).
    pub fn new(boot: Arc<BootService>, store: Arc<Mutex<Store>>) -> NodeStatusService {
        NodeStatusService {
            boot,
            store,
            latest: RwLock::new(HashMap::new()),
        }
    }

    /// True when the served design has a node of that name.
    pub fn known(&self, node: &str) -> Result<bool, StatusError> {
        Ok(self.boot.with_design(|d| d.node(node).is_some())?)
    }

    /// The node's latest status from memory, when it was read or written
    /// since the start (`Some(None)`: known to have none).
    pub fn cached(&self, node: &str) -> Option<Option<NodeState>> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }

    /// The node's latest status (`None`: it never posted one).
    pub fn get(&self, node: &str) -> Result<Option<NodeState>, StatusError> {
        if !self.known(node)? {
            return Err(StatusError::UnknownNode(node.to_string()));
        }
        if let Some(c) = self.cached(node) {
            return Ok(c);
        }
        let records = {
            let store = self
                .store
                .lock()
                .map_err(|_| ServiceError::Internal("database lock poisoned".into()))?;
            store.build_data(node, true)?
        };
        let latest = records
            .into_iter()
            .find(|r| r.generator == GENERATOR)
            .and_then(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.data_element).ok()?;
                let state = v.get("state")?.as_str()?.to_string();
                let status = v
                    .get("status")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| status_of(&state));
                Some(NodeState {
                    state,
                    status,
                    at: r.collected_at,
                })
            });
        self.latest
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), latest.clone());
        Ok(latest)
    }

    /// Stores what a node posted (durable before it returns).
    pub fn set(
        &self,
        node: &str,
        state: &str,
        status: Option<&str>,
    ) -> Result<NodeState, StatusError> {
        if !text_ok(state) {
            return Err(StatusError::Invalid(
                "Invalid request: state must be a non-empty line of text".into(),
            ));
        }
        if let Some(s) = status {
            if !text_ok(s) {
                return Err(StatusError::Invalid(
                    "Invalid request: status must be a non-empty line of text".into(),
                ));
            }
        }
        if !self.known(node)? {
            return Err(StatusError::UnknownNode(node.to_string()));
        }
        let now = crate::clock::now();
        let st = NodeState {
            state: state.to_string(),
            status: status
                .map(str::to_string)
                .unwrap_or_else(|| status_of(state)),
            at: now,
        };
        let rec = BuildDataRecord {
            node: node.to_string(),
            task_id: None,
            generator: GENERATOR.to_string(),
            data_format: "application/json".to_string(),
            data_element: json!({"state": st.state, "status": st.status}).to_string(),
            collected_at: now,
        };
        self.boot.check_database()?;
        {
            let mut store = self
                .store
                .lock()
                .map_err(|_| ServiceError::Internal("database lock poisoned".into()))?;
            store.add_build_data(&rec)?;
        }
        self.boot.check_database()?;
        self.latest
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), Some(st.clone()));
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_say_installed_or_failed() {
        let s = |state: &str| NodeState {
            state: state.into(),
            status: status_of(state),
            at: 0,
        };
        assert!(s("installer.completed").installed());
        assert!(s("installer.ok").installed());
        assert!(!s("installer.started").installed());
        assert!(s("installer.error").failed());
        assert_eq!(s("installer.ok").status, "Luna installer: No errors");
        assert!(!text_ok("") && !text_ok("a\nb") && text_ok("installer.ok"));
    }
}
