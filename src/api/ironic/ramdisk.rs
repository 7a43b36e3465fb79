//! The agent's calls (`ironic/api/controllers/v1/ramdisk.py`): `GET
//! /v1/lookup` and `POST /v1/heartbeat/{node_ident}`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::versions::base_url;
use super::{agent_error, AppState, HttpError};
use crate::api::http::body::{bad_request, RawBody};
use crate::inspection::lookup_addresses;
use crate::services::agents::Heartbeat;
use crate::services::LOAD_WAIT;

/// The lookup's query: `addresses` (comma-separated MACs) and `node_uuid`;
/// other parameters are ignored, as Ironic ignores them.
fn lookup_query(query: Vec<(String, String)>) -> (String, Option<String>) {
    let mut addresses = String::new();
    let mut node_uuid = None;
    for (k, v) in query {
        match k.as_str() {
            "addresses" => {
                if !addresses.is_empty() {
                    addresses.push(',');
                }
                addresses.push_str(&v);
            }
            "node_uuid" if !v.is_empty() => node_uuid = Some(v),
            _ => {}
        }
    }
    (addresses, node_uuid)
}

/// `GET /v1/lookup?addresses=…&node_uuid=…`: 400 without a MAC or a UUID,
/// 404 when no single node that may run the agent matches, else the node
/// and the agent's configuration (its token the first time only).
pub async fn lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, HttpError> {
    let (addresses, node_uuid) = lookup_query(query);
    let macs = lookup_addresses(&addresses);
    // An agent looking up again is answered from memory, on this task;
    // a first lookup (a token to issue), an index to build or a restriction
    // the database decides takes a blocking thread.
    let found = match state.agents.lookup_in_memory(&macs, node_uuid.as_deref()) {
        Some(found) => found,
        None => {
            state.boot.wait_ready(LOAD_WAIT).await;
            let agents = state.agents.clone();
            tokio::task::spawn_blocking(move || agents.lookup(&macs, node_uuid.as_deref()))
                .await
                .map_err(|e| HttpError::internal(format!("lookup task failed: {e}")))?
        }
    }
    .map_err(agent_error)?;
    let base = base_url(&headers);
    let uuid = &found.uuid;
    Ok(Json(json!({
        "node": {
            "uuid": uuid,
            "properties": {},
            "instance_info": {},
            "driver_internal_info": {},
            "links": [
                {"href": format!("{base}/v1/nodes/{uuid}"), "rel": "self"},
                {"href": format!("{base}/nodes/{uuid}"), "rel": "bookmark"},
            ],
        },
        "config": {
            "heartbeat_timeout": state.agents.config().heartbeat_timeout,
            "agent_token": found.token.text(),
            "agent_token_required": true,
            "agent_md5_checksum_enable": false,
            "disable_deep_image_inspection": false,
            "agent_skip_bmc_detect": false,
        },
    })))
}

/// What a heartbeat carries (unknown fields are ignored: a newer agent may
/// send more).
#[derive(Debug, Deserialize)]
struct HeartbeatBody {
    callback_url: String,
    #[serde(default)]
    agent_version: Option<String>,
    #[serde(default)]
    agent_token: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    agent_verify_ca: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    agent_status: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    agent_status_message: Option<String>,
}

/// `POST /v1/heartbeat/{node_ident}`: exactly 202 when the token is the
/// node's; 400 without one or with another (Ironic's messages), 404 for an
/// unknown node, 400 for a body that is not a heartbeat.
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(node_ident): Path<String>,
    RawBody(body): RawBody,
) -> Result<StatusCode, HttpError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("Invalid heartbeat body: {e}")))?;
    if !value.is_object() {
        return Err(bad_request(
            "Invalid heartbeat body: a JSON object is required",
        ));
    }
    let hb: HeartbeatBody = serde_json::from_value(value)
        .map_err(|e| bad_request(format!("Invalid heartbeat body: {e}")))?;
    if hb.callback_url.trim().is_empty() {
        return Err(bad_request("Invalid heartbeat body: callback_url is empty"));
    }
    state.boot.wait_ready(LOAD_WAIT).await;
    let agents = state.agents.clone();
    let hb = Heartbeat {
        callback_url: hb.callback_url,
        agent_version: hb.agent_version,
        agent_token: hb.agent_token,
    };
    tokio::task::spawn_blocking(move || agents.heartbeat(&node_ident, &hb))
        .await
        .map_err(|e| HttpError::internal(format!("heartbeat task failed: {e}")))?
        .map_err(agent_error)?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_query_reads_addresses_and_node_uuid() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let (a, u) = lookup_query(q(&[
            ("addresses", "aa:bb:cc:dd:ee:ff"),
            ("node_uuid", "x"),
            ("addresses", "52:54:00:12:34:56"),
            ("other", "y"),
        ]));
        assert_eq!(a, "aa:bb:cc:dd:ee:ff,52:54:00:12:34:56");
        assert_eq!(u.as_deref(), Some("x"));
        assert_eq!(lookup_query(q(&[("node_uuid", "")])), (String::new(), None));
    }
}
