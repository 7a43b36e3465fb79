//! Boot-action status reports (DESIGN §5): `POST /api/v1.0/bootactions/{action_id}`
//! (alias `/api/v1.0/bootaction/{action_id}`). Each recorded report also shows
//! up in the node's build data (see `builddata.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::admission::Gate;
use super::bootdata::{blocking, for_node, forbidden, key_rejected, presented_key, unauthorized};
use super::revisions::rfc3339;
use super::{AppState, HttpError};
use crate::clock::now;
use crate::services::{BootActionDetail, BootActionRecord, BootActionStatus, ReportOutcome};

/// A parsed report: the final status, if any, and the details.
#[derive(Debug)]
struct Report {
    status: Option<BootActionStatus>,
    details: Vec<BootActionDetail>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn bad(message: String) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, "InvalidReport", message)
}

/// Checks a report body as Drydock's schema does, saying what is wrong.
fn parse_report(body: &[u8], now: i64) -> Result<Report, HttpError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(bad(format!(
            "expected a JSON object {{\"status\", \"details\"}}, found {}",
            kind_of(&v)
        )));
    };
    if let Some(k) = obj.keys().find(|k| *k != "status" && *k != "details") {
        return Err(bad(format!(
            "unexpected key `{k}`; expected only `status` and `details`"
        )));
    }
    let status = match obj.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "Success" || s == "success" => {
            Some(BootActionStatus::Success)
        }
        Some(Value::String(s)) if s == "Failure" || s == "failure" => {
            Some(BootActionStatus::Failure)
        }
        Some(other) => {
            return Err(bad(format!(
                "`status` must be one of Success, Failure, success, failure; found {other}"
            )))
        }
    };
    let details = match obj.get("details") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, d)| parse_detail(i, d, now))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(bad(format!(
                "`details` must be a list of {{\"message\", \"error\"}} objects, found {}",
                kind_of(other)
            )))
        }
    };
    Ok(Report { status, details })
}

fn parse_detail(i: usize, d: &Value, now: i64) -> Result<BootActionDetail, HttpError> {
    let Value::Object(m) = d else {
        return Err(bad(format!(
            "details[{i}] must be an object with `message` (string) and `error` (boolean), found {}",
            kind_of(d)
        )));
    };
    let message = match m.get("message") {
        Some(Value::String(s)) => s.clone(),
        None => {
            return Err(bad(format!(
                "details[{i}] has no `message`; expected a string"
            )))
        }
        Some(other) => {
            return Err(bad(format!(
                "details[{i}].message must be a string, found {}",
                kind_of(other)
            )))
        }
    };
    let error = match m.get("error") {
        Some(Value::Bool(b)) => *b,
        None => {
            return Err(bad(format!(
                "details[{i}] has no `error`; expected a boolean"
            )))
        }
        Some(other) => {
            return Err(bad(format!(
                "details[{i}].error must be a boolean, found {}",
                kind_of(other)
            )))
        }
    };
    let extra: serde_json::Map<String, Value> = m
        .iter()
        .filter(|(k, _)| *k != "message" && *k != "error")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(BootActionDetail {
        ts: now,
        message,
        error,
        extra: Value::Object(extra),
    })
}

/// A boot action as the API shows it, with its details.
fn record_view(r: &BootActionRecord, details: &[BootActionDetail]) -> Value {
    json!({
        "action_id": r.action_id,
        "node": r.node,
        "action": r.action,
        "deployment": r.deployment,
        "status": r.status,
        "created": rfc3339(r.created),
        "finalized": r.finalized.map(rfc3339),
        "details": details.iter().map(|d| json!({
            "ts": rfc3339(d.ts),
            "message": d.message,
            "error": d.error,
            "extra": d.extra,
        })).collect::<Vec<_>>(),
    })
}

fn unknown(action_id: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no boot action with id {action_id}"),
    )
}

/// The 403 of a report to a boot action whose deployment has ended: the
/// node was redeployed, revoked or removed, or a commit changed it, and the
/// action's keys went with that deployment.
fn ended(action: &BootActionRecord) -> Response {
    forbidden(&format!(
        "boot action {} belongs to deployment {} of node {}, which ended{} (the node was \
         redeployed, revoked or removed, or a commit changed it); its keys are refused: \
         expected a boot action of the node's current deployment",
        action.action_id,
        action.deployment,
        action.node,
        action
            .ended
            .map(|t| format!(" at {}", rfc3339(t)))
            .unwrap_or_default(),
    ))
}

/// `POST /api/v1.0/bootactions/{action_id}`: a node reports progress or its
/// final status. 404 unknown id, 401 no key, 403 wrong key or an action of
/// an ended deployment, 400 bad body, 409 already final (or not
/// signalling), else 200 with the record. Each
/// answer but a 500 is counted in `slipway_signals_total` by outcome.
pub async fn report(
    State(state): State<AppState>,
    gate: Gate,
    Path(action_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let result = for_node(record(&state, &gate, action_id, &headers, &body).await);
    let code = match &result {
        Ok(r) => r.status(),
        Err(e) => e.code(),
    };
    let outcome = match code {
        StatusCode::OK => Some("recorded"),
        StatusCode::NOT_FOUND => Some("unknown"),
        StatusCode::CONFLICT => Some("already_final"),
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Some("rejected")
        }
        _ => None,
    };
    if let Some(outcome) = outcome {
        state.metrics.signal(outcome);
    }
    result
}

/// [`report`] without the counting.
async fn record(
    state: &AppState,
    gate: &Gate,
    action_id: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, HttpError> {
    let id = action_id.clone();
    let Some(action) = blocking(state, move |b| Ok(b.action(&id)?)).await? else {
        return Err(unknown(&action_id));
    };
    let Some(key) = presented_key(headers) else {
        return Ok(unauthorized());
    };
    let check = state.boot.check_action_key(&action, &key);
    if let Some(r) = key_rejected(
        check,
        &format!(
            "the key of boot action {} or the identity key of its node's deployment",
            action.action_id
        ),
    ) {
        return Ok(r);
    }
    if action.ended.is_some() {
        return Ok(ended(&action));
    }
    let report = parse_report(body, now())?;
    // Only an authenticated, well-formed report takes an admission permit,
    // for the write.
    let _permit = match gate.enter() {
        Ok(p) => p,
        Err(full) => return Ok(full.into_response()),
    };
    // Committed by the report writer with whatever else is waiting (group
    // commit); this task waits without holding a thread.
    let answer = state
        .boot
        .submit_report(&action_id, report.status, &report.details)?;
    let outcome = answer
        .await
        .map_err(|_| HttpError::from(crate::services::writer_gone()))??;
    let outcome = match outcome {
        ReportOutcome::Recorded(r) => {
            let id = r.action_id.clone();
            let details = blocking(state, move |b| Ok(b.details(&id)?)).await?;
            (ReportOutcome::Recorded(r), details)
        }
        other => (other, Vec::new()),
    };
    match outcome {
        (ReportOutcome::Unknown, _) => Err(unknown(&action.action_id)),
        (ReportOutcome::Ended(r), _) => Ok(ended(&r)),
        (ReportOutcome::AlreadyFinalized(r), _) => Err(HttpError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "boot action {} is {}; it accepts no more reports",
                r.action_id,
                if r.finalized.is_some() {
                    format!("already finalised as {}", r.status)
                } else {
                    format!("{} (signaling: false)", r.status)
                }
            ),
        )),
        (ReportOutcome::Recorded(r), details) => {
            Ok((StatusCode::OK, Json(record_view(&r, &details))).into_response())
        }
    }
}
