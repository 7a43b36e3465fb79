//! Nodes: `POST /api/v1.0/nodefilter` (which nodes of a design a filter
//! selects), `GET /api/v1.0/nodes` and `GET /api/v1.0/nodes/{hostname}` (the
//! nodes of the applied revision).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::{bad_request, blocking, parse_json, RawBody};
use super::read_design;
use super::{AppState, HttpError};
use crate::design::model::NodeFilter;
use crate::services::designs::select_nodes;

/// Drydock's nodefilter body.
#[derive(Debug, Deserialize)]
pub struct FilterRequest {
    design_ref: Option<Value>,
    node_filter: Option<Value>,
}

const SET_KEYS: [&str; 2] = ["filter_set_type", "filter_set"];
const ENTRY_KEYS: [&str; 6] = [
    "filter_type",
    "node_names",
    "node_tags",
    "node_labels",
    "rack_names",
    "rack_labels",
];

/// Parses a node filter strictly: unknown keys, wrong types and filter types
/// other than `union`/`intersection` are refused with the reason.
pub fn parse_filter(v: &Value) -> Result<NodeFilter, String> {
    let obj = v.as_object().ok_or("node_filter must be a JSON object")?;
    for k in obj.keys() {
        if !SET_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "node_filter: unknown key `{k}` (expected filter_set_type, filter_set)"
            ));
        }
    }
    let kind = |at: &str, v: Option<&Value>| -> Result<(), String> {
        match v {
            None => Err(format!("{at} is required (`union` or `intersection`)")),
            Some(Value::String(s)) if s == "union" || s == "intersection" => Ok(()),
            Some(other) => Err(format!(
                "{at} must be `union` or `intersection`, found {other}"
            )),
        }
    };
    kind("node_filter.filter_set_type", obj.get("filter_set_type"))?;
    let set = match obj.get("filter_set") {
        None => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("node_filter.filter_set must be a list".into()),
    };
    for (i, e) in set.iter().enumerate() {
        let at = format!("node_filter.filter_set[{i}]");
        let eo = e.as_object().ok_or(format!("{at} must be an object"))?;
        for k in eo.keys() {
            if !ENTRY_KEYS.contains(&k.as_str()) {
                return Err(format!(
                    "{at}: unknown key `{k}` (expected one of {})",
                    ENTRY_KEYS.join(", ")
                ));
            }
        }
        kind(&format!("{at}.filter_type"), eo.get("filter_type"))?;
        for k in ["node_names", "node_tags", "rack_names"] {
            match eo.get(k) {
                None => {}
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
                Some(_) => return Err(format!("{at}.{k} must be a list of strings")),
            }
        }
        for k in ["node_labels", "rack_labels"] {
            match eo.get(k) {
                None => {}
                Some(Value::Object(m))
                    if m.values()
                        .all(|v| !(v.is_object() || v.is_array() || v.is_null())) => {}
                Some(_) => {
                    return Err(format!(
                        "{at}.{k} must be an object of scalar values (label: value)"
                    ))
                }
            }
        }
    }
    serde_json::from_value(v.clone()).map_err(|e| format!("node_filter: {e}"))
}

/// The node names a filter selects in the design `design_ref` names.
pub async fn nodefilter(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Vec<String>>, HttpError> {
    let req: FilterRequest = parse_json(&body)?;
    let design_ref = match req.design_ref {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(bad_request("missing required input value: design_ref"))
        }
        Some(_) => return Err(bad_request("design_ref must be a string")),
    };
    let filter = match req.node_filter {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_filter(&v).map_err(bad_request)?),
    };
    let src = state.design.clone();
    let names = blocking(move || {
        let files = read_design(&src, &design_ref)?;
        select_nodes(&files, filter.as_ref()).map_err(|e| bad_request(e.0))
    })
    .await?;
    Ok(Json(names))
}

/// One node of the applied revision.
#[derive(Debug, Serialize)]
pub struct NodeView {
    hostname: String,
    /// `deployed-design`: the node is in the applied design and its boot data
    /// is served; slipway has no hardware control, so no further state.
    status: &'static str,
    /// The commit that last changed the node's inputs.
    revision: String,
    /// Network name -> address.
    addresses: BTreeMap<String, String>,
    /// Boot actions of the node per status (`pending`, `success`, ...).
    boot_actions: BootActionSummary,
    /// The node's stable UUID in the Ironic dialects (`Secret::node_uuid`).
    uuid: String,
    /// Its Ironic agent's last heartbeat (`null` before any lookup); shown
    /// by `GET /api/v1.0/nodes/{hostname}` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<Option<crate::services::agents::AgentView>>,
    /// The node's latest inspection (`GET /api/v1.0/nodes/{hostname}` only):
    /// its state, when, and where the machine disagreed with the design.
    #[serde(skip_serializing_if = "Option::is_none")]
    inspection: Option<InspectionView>,
}

/// A node's latest inspection, as shown on the node.
#[derive(Debug, Serialize)]
pub struct InspectionView {
    state: String,
    finished_at: Option<i64>,
    error: Option<String>,
    messages: Vec<crate::services::InspectionMessage>,
}

/// Counts of a node's boot actions.
#[derive(Debug, Serialize, Default)]
pub struct BootActionSummary {
    total: u64,
    by_status: BTreeMap<String, u64>,
}

fn view(
    r: crate::services::NodeRecord,
    counts: &BTreeMap<String, BTreeMap<String, u64>>,
    agents: &crate::services::agents::AgentService,
) -> NodeView {
    let by_status = counts.get(&r.name).cloned().unwrap_or_default();
    NodeView {
        uuid: agents.uuid(&r.name),
        agent: None,
        boot_actions: BootActionSummary {
            total: by_status.values().sum(),
            by_status,
        },
        hostname: r.name,
        status: "deployed-design",
        revision: r.revision,
        addresses: r.addresses.into_iter().collect(),
        inspection: None,
    }
}

/// Every node of the applied revision, sorted by hostname.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<NodeView>>, HttpError> {
    let agents = state.agents.clone();
    let nodes = state
        .records(move |s| {
            let counts = s.boot_action_counts()?;
            let mut out = Vec::new();
            for name in s.node_names()? {
                if let Some(r) = s.node(&name)? {
                    out.push(view(r, &counts, &agents));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Json(nodes))
}

/// One node of the applied revision.
pub async fn get(
    State(state): State<AppState>,
    Path(hostname): Path<String>,
) -> Result<Json<NodeView>, HttpError> {
    let name = hostname.clone();
    let agents = state.agents.clone();
    let node = state
        .records(move |s| {
            let counts = s.boot_action_counts()?;
            let Some(mut v) = s.node(&name)?.map(|r| view(r, &counts, &agents)) else {
                return Ok(None);
            };
            v.agent = Some(agents.view(&v.hostname));
            if let Some(i) = s.introspection(&name)? {
                v.inspection = Some(InspectionView {
                    state: i.state,
                    finished_at: i.finished_at,
                    error: i.error,
                    messages: s.inspection_messages(&name)?,
                });
            }
            Ok(Some(v))
        })
        .await?;
    node.map(Json).ok_or_else(|| no_node(&hostname))
}

fn no_node(hostname: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no node `{hostname}` in the applied design"),
    )
}

/// `POST /api/v1.0/nodes/{hostname}/agent-token/reset`: the node's next
/// Ironic agent lookup gets a fresh token (the current agent's is refused
/// from then on), and the node may be looked up for `--agent-window`.
pub async fn reset_agent_token(
    State(state): State<AppState>,
    Path(hostname): Path<String>,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    state.boot.wait_ready(crate::services::LOAD_WAIT).await;
    let agents = state.agents.clone();
    let h = hostname.clone();
    let known = blocking(move || {
        agents
            .reset_token(&h, crate::services::agents::RESET_OPERATOR)
            .map_err(|e| match e {
                crate::services::agents::AgentError::Service(s) => HttpError::from(s),
                other => HttpError::internal(other),
            })
    })
    .await?;
    if !known {
        return Err(no_node(&hostname));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(super::status::success(
            StatusCode::ACCEPTED,
            "Accepted",
            &format!("node {hostname}: its next agent lookup gets a fresh agent token"),
        )),
    ))
}
