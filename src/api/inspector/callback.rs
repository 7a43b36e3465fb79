//! `POST /v1/continue`: the ramdisk's inspection callback. Public (the
//! ramdisk has no credentials, as in inspector). The body goes whole to
//! [`crate::services::inspection::InspectionService::callback`]; the reply
//! is always a JSON object holding `uuid` (IPA reads `resp.json().get('uuid')`:
//! an empty or `null` body crashes it).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::api::http::body::{bad_request, blocking, RawBody};
use crate::api::http::{AppState, HttpError};
use crate::services::inspection::{CallbackError, CallbackOutcome};
use crate::services::LOAD_WAIT;

/// The data path shared by `/v1/continue` and `/v1/continue_inspection`.
pub async fn process(
    state: &AppState,
    body: axum::body::Bytes,
) -> Result<CallbackOutcome, HttpError> {
    state.boot.wait_ready(LOAD_WAIT).await;
    let svc = state.inspection.clone();
    let agents = state.agents.clone();
    blocking(move || {
        let outcome = svc.callback(&body).map_err(|e| match e {
            CallbackError::Malformed(m) => bad_request(format!("Invalid data: {m}")),
            e @ CallbackError::Unproposable(_) => bad_request(e.to_string()),
            e @ CallbackError::Several(_) => {
                HttpError::new(StatusCode::NOT_FOUND, "NotFound", e.to_string())
            }
            e @ CallbackError::Proposal(_) => HttpError::internal(e),
            CallbackError::Service(e) => HttpError::from(e),
        })?;
        // A callback comes from a freshly started ramdisk: its agent has no
        // token yet, so its next lookup gets a fresh one (docs/ironic.md).
        if let CallbackOutcome::Matched { node, .. } = &outcome {
            if let Err(e) = agents.reset_token(&node.name, crate::services::agents::RESET_INSPECTED) {
                tracing::warn!(node = %node.name, error = %e, "cannot reset the agent token after an inspection");
            }
        }
        Ok(outcome)
    })
    .await
}

/// The reply: `uuid`, and for an unknown machine what was proposed.
pub fn reply(outcome: &CallbackOutcome) -> Value {
    match outcome {
        CallbackOutcome::Matched { node, .. } => json!({"uuid": node.uuid}),
        CallbackOutcome::Proposed { node, path, commit } => json!({
            "uuid": node.uuid,
            "proposed": {"name": node.name, "path": path, "commit": commit},
        }),
    }
}

/// `POST /v1/continue`: 200 `{"uuid": …}` (`process.py` L279).
pub async fn continue_(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, HttpError> {
    let outcome = process(&state, body).await?;
    Ok(Json(reply(&outcome)))
}
