//! A node's power: `GET /api/v1.0/nodes/{hostname}/power` (its power state,
//! read from the BMC now, and its journal of recent operations) and `POST`
//! with `{"action": …}` (runs it and answers when it is done, bounded by the
//! power service's timeout and retries). Through `services::power` only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{bad_request, parse_json, RawBody};
use super::{AppState, HttpError};
use crate::services::power::{
    parse_action, NodeFailure, NodeOutcome, PowerOp, PowerOutcome as Outcome,
    PowerRecord as OperationRecord, ACTION_NAMES,
};

/// The body of `POST …/power`.
#[derive(Debug, Deserialize)]
pub struct PowerRequest {
    action: Option<Value>,
}

/// The schema of that body, for the route table.
pub fn body_schema() -> Value {
    json!({
        "type": "object",
        "required": ["action"],
        "properties": {"action": {"type": "string", "enum": [
            "status", "on", "off", "soft_off", "cycle", "pxe-once", "disk-once",
            "identify-on", "identify-off"
        ]}}
    })
}

/// One journal record as JSON (RFC 3339 times; a record holds no credential).
fn record_json(r: &OperationRecord) -> Value {
    let t = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(Value::Null, |d| {
                Value::String(super::revisions::rfc3339(d.as_secs() as i64))
            })
    };
    let (outcome, failure) = match r.outcome {
        Outcome::Queued => ("queued", None),
        Outcome::Running => ("running", None),
        Outcome::Succeeded => ("succeeded", None),
        Outcome::Failed(k) => ("failed", Some(k.to_string())),
    };
    json!({
        "id": r.id.0,
        "operation": r.op.to_string(),
        "driver": r.driver.to_string(),
        "requested": t(Some(r.requested)),
        "started": t(r.started),
        "finished": t(r.finished),
        "attempts": r.attempts,
        "outcome": outcome,
        "failure": failure,
        "power": r.power.map(|p| p.to_string()),
        "message": r.message,
    })
}

/// Runs `op` on the served node and presents the outcome (or its failure).
async fn act(state: &AppState, hostname: &str, op: PowerOp) -> Result<Json<Value>, HttpError> {
    let names = [hostname.to_string()];
    let mut targets = state.power.served_targets(&state.boot, &names)?;
    let (name, target) = targets.pop().expect("one target per name");
    let o: NodeOutcome = state.power.run_node(&name, target, &[op]).await;
    match &o.failure {
        None => {}
        Some(NodeFailure::UnknownNode) => {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no node `{hostname}` in the applied design"),
            ))
        }
        Some(NodeFailure::NoDriver(_)) => {
            return Err(HttpError::new(
                StatusCode::CONFLICT,
                "NoPowerDriver",
                format!("node {hostname}: {}", o.message),
            ))
        }
        Some(NodeFailure::Bmc(kind)) => {
            return Err(HttpError::new(
                StatusCode::BAD_GATEWAY,
                "BmcFailure",
                format!("node {hostname}: {op} failed ({kind}): {}", o.message),
            ))
        }
    }
    let journal: Vec<Value> = state
        .power
        .journal(hostname)
        .iter()
        .map(record_json)
        .collect();
    Ok(Json(json!({
        "hostname": hostname,
        "action": op.to_string(),
        "outcome": "succeeded",
        "power": o.power.map(|p| p.to_string()),
        "message": o.message,
        "operation": o.operations.last().map(record_json),
        "journal": journal,
    })))
}

/// `GET …/power`: the power state read from the BMC now, and the journal.
pub async fn get(
    State(state): State<AppState>,
    Path(hostname): Path<String>,
) -> Result<Json<Value>, HttpError> {
    act(&state, &hostname, PowerOp::Status).await
}

/// `POST …/power` `{"action": …}`: runs it; 200 when done.
pub async fn post(
    State(state): State<AppState>,
    Path(hostname): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, HttpError> {
    let req: PowerRequest = parse_json(&body)?;
    let word = match req.action {
        Some(Value::String(a)) => a,
        None | Some(Value::Null) => return Err(bad_request("missing required field `action`")),
        Some(_) => return Err(bad_request("`action` must be a string")),
    };
    let Some(op) = parse_action(&word) else {
        return Err(bad_request(format!(
            "unknown power action `{word}`; expected one of {ACTION_NAMES}"
        )));
    };
    act(&state, &hostname, op).await
}
