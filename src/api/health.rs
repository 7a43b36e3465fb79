//! Health checks and API versions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{AppError, AppState};

/// `GET /versions`: the API versions, as Drydock lists them.
pub async fn versions() -> Json<Value> {
    Json(json!({"v1.0": {"path": "/api/v1.0", "status": "stable"}}))
}

/// `GET /api/v1.0/health`: 204 once a good revision is served, 503 before,
/// and 503 saying why when the database file was removed or replaced or the
/// applied revision cannot be read from the repository.
pub async fn health(State(state): State<AppState>) -> Response {
    match problem(&state, &read(&state)) {
        None => StatusCode::NO_CONTENT.into_response(),
        Some((reason, message)) => {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, reason, message).into_response()
        }
    }
}

/// Why the server is not (fully) serving, if it is not: the reason word and
/// the message of a 503. The database file is looked at now (one `stat`).
fn problem(
    state: &AppState,
    status: &crate::reconcile::ServeStatus,
) -> Option<(&'static str, String)> {
    if let Err(e) = state.boot.check_database() {
        return Some(("DatabaseReplaced", e.to_string()));
    }
    if status.applied.is_none() {
        return Some((
            "NoRevision",
            "no valid design revision has been applied yet".to_string(),
        ));
    }
    match state.boot.serving() {
        crate::boot::ServingState::Unavailable { commit, reason } => Some((
            "RevisionUnavailable",
            format!(
                "the applied revision {commit} cannot be served: {reason}; boot data answers \
                 503, deployments and status reports are served from the database"
            ),
        )),
        _ => None,
    }
}

/// `GET /api/v1.0/health/extended`: what is served and how the loop is doing.
pub async fn extended(State(state): State<AppState>) -> Result<Response, AppError> {
    let status = read(&state);
    let applied = match status.applied.clone() {
        Some(commit) => state.with_store(move |s| s.revision(&commit)).await?,
        None => None,
    };
    let problem = problem(&state, &status);
    let body = json!({
        "status": match &problem {
            None => "ok",
            Some(("NoRevision", _)) => "waiting",
            Some(_) => "degraded",
        },
        "problem": problem.as_ref().map(|(reason, message)| json!({
            "reason": reason,
            "message": message,
        })),
        "serving": state.boot.serving(),
        "applied_revision": applied.map(|r| json!({
            "commit": r.revision.commit,
            "summary": r.revision.summary,
            "author": r.revision.author,
            "committed_at": super::revisions::rfc3339(r.revision.committed_at),
            "seen_at": super::revisions::rfc3339(r.seen_at),
        })),
        "last_pass": status.last_pass.as_ref().map(pass_view),
        "last_applied": status.last_applied.as_ref().map(pass_view),
        "passes": status.passes,
        "documents": status.documents,
        "nodes": status.nodes,
        "db": state.db_path,
        "uptime_secs": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if problem.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

/// A copy of the shared status (a poisoned lock still holds usable data).
fn read(state: &AppState) -> crate::reconcile::ServeStatus {
    match state.status.read() {
        Ok(s) => s.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// A reconcile pass's report as JSON.
fn pass_view(p: &crate::reconcile::PassReport) -> serde_json::Value {
    json!({
        "finished_at": super::revisions::rfc3339(p.finished_at),
        "result": p.result,
        "commit": p.commit,
        "detail": p.detail,
        "duration_ms": p.duration_ms,
    })
}
