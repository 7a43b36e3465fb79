//! Tasks (`/api/v1.0/tasks`): parse Drydock's request, hand it to the task
//! engine ([`crate::services::tasks`], which runs it), present tasks in
//! Drydock's JSON shape.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{bad_request, parse_json, RawBody};
use super::nodes::parse_filter;
use super::{AppState, HttpError};
use crate::services::tasks::TaskAction;
use crate::services::{TaskMessage, TaskRecord};

/// The body of `POST /tasks`.
#[derive(Debug, Deserialize)]
pub struct CreateTask {
    action: Option<Value>,
    design_ref: Option<Value>,
    node_filter: Option<Value>,
}

fn rfc3339_or_null(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(super::revisions::rfc3339(t)))
}

/// A task in Drydock's JSON shape.
fn task_json(t: &TaskRecord, messages: &[TaskMessage]) -> Value {
    let errors = messages.iter().filter(|m| m.error).count();
    let result = t.result.clone().unwrap_or_else(|| "incomplete".into());
    json!({
        "kind": "Task",
        "apiVersion": "v1",
        "task_id": t.task_id,
        "action": t.action,
        "parent_task_id": t.parent_task_id,
        "design_ref": t.design_ref,
        "status": t.status,
        "result": {
            "kind": "Status",
            "apiVersion": "v1.0",
            "metadata": {},
            "message": t.body.get("message").cloned().unwrap_or(Value::Null),
            "reason": t.body.get("reason").cloned().unwrap_or(Value::Null),
            "status": result,
            "successes": t.body.get("successes").cloned().unwrap_or(json!([])),
            "failures": t.body.get("failures").cloned().unwrap_or(json!([])),
            "links": [],
            "details": {
                "errorCount": errors,
                "messageList": messages.iter().map(|m| json!({
                    "message": m.message,
                    "error": m.error,
                    "context_type": m.context_type,
                    "context": m.context,
                    "ts": super::revisions::rfc3339(m.ts),
                    "extra": m.extra,
                })).collect::<Vec<_>>(),
            },
        },
        "node_filter": t.node_filter,
        "subtask_id_list": [],
        "created": super::revisions::rfc3339(t.created),
        "created_by": t.created_by,
        "updated": rfc3339_or_null(t.updated),
        "terminated": rfc3339_or_null(t.terminated),
        "terminated_by": Value::Null,
    })
}

/// `POST /api/v1.0/tasks`: creates a task, runs it in the background and
/// answers 201 with the queued task.
pub async fn create(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    let req: CreateTask = parse_json(&body)?;
    let action = match req.action {
        Some(Value::String(a)) => a,
        None | Some(Value::Null) => return Err(bad_request("missing required field `action`")),
        Some(_) => return Err(bad_request("`action` must be a string")),
    };
    let Ok(action) = action.parse::<TaskAction>() else {
        return Err(bad_request(format!(
            "unknown action `{action}`; known: validate_design, verify_site, prepare_site, \
             verify_nodes, prepare_nodes, deploy_nodes, redeploy_server, destroy_nodes, \
             relabel_nodes, configure_hardware"
        )));
    };
    let design_ref = match req.design_ref {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad_request("`design_ref` must be a string")),
    };
    let node_filter = match req.node_filter {
        None | Some(Value::Null) => None,
        Some(v) => {
            parse_filter(&v).map_err(bad_request)?;
            Some(v)
        }
    };
    let task = state.tasks.create(action, design_ref, node_filter).await?;
    let view = task_json(&task, &[]);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1.0/tasks`: every task, oldest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Value>>, HttpError> {
    let tasks = state.tasks.list().await?;
    Ok(Json(tasks.iter().map(|(t, m)| task_json(t, m)).collect()))
}

/// `GET /api/v1.0/tasks/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let task = state.tasks.get(&id).await?;
    task.map(|(t, m)| Json(task_json(&t, &m)))
        .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, "NotFound", format!("no task `{id}`")))
}
