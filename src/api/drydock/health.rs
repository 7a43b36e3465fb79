//! Health checks and API versions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::IsOperator;
use super::{AppState, HttpError};

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
            HttpError::new(StatusCode::SERVICE_UNAVAILABLE, reason, message).into_response()
        }
    }
}

/// Why the server is not (fully) serving, if it is not: the reason word and
/// the message of a 503. The database file is looked at now (one `stat`).
fn problem(
    state: &AppState,
    status: &crate::services::ServeStatus,
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
        crate::services::ServingState::Unavailable { commit, reason } => Some((
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
/// The route is public (monitoring reaches it without a token), so a client
/// that is not an operator (see `auth.rs`) gets the redacted view: no file
/// paths (the database), no commit author (an e-mail address) or subject,
/// no pass detail (raw errors); `"redacted": true` says so.
pub async fn extended(
    State(state): State<AppState>,
    IsOperator(full): IsOperator,
) -> Result<Response, HttpError> {
    let status = read(&state);
    let applied = match status.applied.clone() {
        Some(commit) => state.records(move |s| s.revision(&commit)).await?,
        None => None,
    };
    let problem = problem(&state, &status);
    let mut body = json!({
        "status": match &problem {
            None => "ok",
            Some(("NoRevision", _)) => "waiting",
            Some(_) => "degraded",
        },
        // The message can name files (the database, the repository): operators only.
        "problem": problem.as_ref().map(|(reason, message)| if full {
            json!({"reason": reason, "message": message})
        } else {
            json!({"reason": reason})
        }),
        "serving": state.boot.serving(),
        "applied_revision": applied.map(|r| {
            let mut v = json!({
                "commit": r.revision.commit,
                "committed_at": super::revisions::rfc3339(r.revision.committed_at),
                "seen_at": super::revisions::rfc3339(r.seen_at),
            });
            if full {
                v["summary"] = json!(r.revision.summary);
                v["author"] = json!(r.revision.author);
            }
            v
        }),
        "last_pass": status.last_pass.as_ref().map(|p| pass_view(p, full)),
        "last_applied": status.last_applied.as_ref().map(|p| pass_view(p, full)),
        "passes": status.passes,
        "documents": status.documents,
        "nodes": status.nodes,
        "uptime_secs": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if full {
        body["db"] = json!(state.db_path);
    } else {
        // Why a revision cannot be read names repository files.
        if let Some(serving) = body["serving"].as_object_mut() {
            serving.remove("reason");
        }
        body["redacted"] = json!(true);
    }
    let code = if problem.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(body)).into_response())
}

/// A copy of the shared status (a poisoned lock still holds usable data).
fn read(state: &AppState) -> crate::services::ServeStatus {
    match state.status.read() {
        Ok(s) => s.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// A reconcile pass's report as JSON; its detail (counts, or a raw error)
/// only for an operator.
fn pass_view(p: &crate::services::PassReport, full: bool) -> serde_json::Value {
    let mut v = json!({
        "finished_at": super::revisions::rfc3339(p.finished_at),
        "result": p.result,
        "commit": p.commit,
        "duration_ms": p.duration_ms,
    });
    if full {
        v["detail"] = json!(p.detail);
    }
    v
}
