//! Luna2's monitor routes (`daemon/routes/monitor.py`): a node's status as
//! the node posts it while it installs (`POST /monitor/node/{node}`, the
//! issue's `/monitor/status/{node}` too, an operator's token or the node's
//! install-time token), read back without a token (`GET`), stored by
//! [`crate::services::node_status`]; and `GET /monitor/service/luna2`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

use super::auth::NodeToken;
use super::boot::strict_name;
use crate::api::http::body::{bad_request, RawBody};
use crate::api::http::routes::Route;
use crate::api::http::{AppState, HttpError};
use crate::services::node_status::{NodeState, StatusError};
use crate::services::LOAD_WAIT;

/// The monitor routes.
pub fn routes() -> Vec<Route> {
    let body = json!({"type": "object", "required": ["monitor"], "properties": {
        "monitor": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "object", "additionalProperties": {"type": "object",
                "required": ["state"], "properties": {
                    "state": {"type": "string"}, "status": {"type": "string"}}}}}}}});
    let node = |path: &'static str| {
        [
            super::route(
                "GET",
                path,
                "A node's latest status, as it posted it",
                None,
                &[200],
                &[400, 404],
                get(node_get),
            ),
            super::route(
                "POST",
                path,
                "A node posts its status (operator's token or the node's install-time token)",
                Some(body.clone()),
                &[204],
                &[400, 401, 403, 404],
                axum::routing::post(node_post),
            ),
        ]
    };
    let mut all = Vec::new();
    all.extend(node("/monitor/node/{node}"));
    all.extend(node("/monitor/status/{node}"));
    all.push(super::route(
        "GET",
        "/monitor/service/{name}",
        "A service's status (luna2: this server)",
        None,
        &[200],
        &[400, 404],
        get(service),
    ));
    all
}

fn status_error(e: StatusError) -> HttpError {
    match e {
        StatusError::UnknownNode(n) => {
            HttpError::new(StatusCode::NOT_FOUND, "NotFound", format!("{n} not found"))
        }
        StatusError::Invalid(m) => bad_request(m),
        StatusError::Service(e) => HttpError::from(e),
    }
}

fn present(node: &str, s: &NodeState) -> Value {
    json!({"monitor": {"status": {node: {"status": s.status, "state": s.state}}}})
}

/// `GET /monitor/node/{node}`: 200 with the latest status; 404 for a node
/// the design lacks or one that never posted a status (Luna2's 404).
async fn node_get(
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Json<Value>, HttpError> {
    strict_name("node", &node)?;
    state.boot.wait_ready(LOAD_WAIT).await;
    let known = state.node_status.known(&node).map_err(status_error)?;
    if known {
        if let Some(Some(s)) = state.node_status.cached(&node) {
            return Ok(Json(present(&node, &s)));
        }
    }
    let svc = state.node_status.clone();
    let n = node.clone();
    let latest = tokio::task::spawn_blocking(move || svc.get(&n))
        .await
        .map_err(|e| HttpError::internal(format!("status task failed: {e}")))?
        .map_err(status_error)?;
    match latest {
        Some(s) => Ok(Json(present(&node, &s))),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{node} not found"),
        )),
    }
}

/// `POST /monitor/node/{node}` with `{"monitor":{"status":{"<node>":{"state"[,"status"]}}}}`:
/// 204 once stored; 400 for another shape or a body naming another node.
async fn node_post(
    token: NodeToken,
    State(state): State<AppState>,
    Path(node): Path<String>,
    RawBody(body): RawBody,
) -> Result<StatusCode, HttpError> {
    strict_name("node", &node)?;
    token.for_node(&node)?;
    state.boot.wait_ready(LOAD_WAIT).await;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("data is not valid json"))?;
    let incomplete = || bad_request("data structure incomplete or incorrect");
    let entry = v
        .get("monitor")
        .and_then(|m| m.get("status"))
        .and_then(|s| s.as_object())
        .filter(|s| s.len() == 1)
        .and_then(|s| s.get(&node))
        .ok_or_else(incomplete)?;
    let st = entry
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(incomplete)?
        .to_string();
    let status = match entry.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(incomplete()),
    };
    let svc = state.node_status.clone();
    tokio::task::spawn_blocking(move || svc.set(&node, &st, status.as_deref()))
        .await
        .map_err(|e| HttpError::internal(format!("status task failed: {e}")))?
        .map_err(status_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /monitor/service/luna2`: this server's health in Luna2's words
/// (`OK` while a revision is served). Under `Service` as the real daemon and
/// CLI write it, and `service` as the seed does. Luna2's `dhcp` and `dns`
/// are not slipway's services: 404.
async fn service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    strict_name("service", &name)?;
    if name != "luna2" {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("service {name} is not run by slipway"),
        ));
    }
    let (code, text) = match state.boot.serving() {
        crate::services::ServingState::Ready { .. } => (StatusCode::OK, "OK".to_string()),
        crate::services::ServingState::Nothing => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no revision applied yet".to_string(),
        ),
        crate::services::ServingState::Loading { commit } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("loading the applied revision {commit}"),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the applied revision cannot be served".to_string(),
        ),
    };
    Ok((
        code,
        Json(json!({"monitor": {"Service": {"luna2": text}, "service": {"luna2": text}}})),
    ))
}
