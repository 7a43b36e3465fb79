//! Tasks (`/api/v1.0/tasks`): Drydock's asynchronous actions, persisted in
//! SQLite with real status transitions (`queued` -> `running` -> `complete`).
//!
//! What each action really does is in `docs/api.md`: slipway validates and
//! plans; it has no hardware control, so node actions end as `failure` with a
//! message naming what is missing, never as a fake success.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::body::{bad_request, parse_json, read_design, RawBody};
use super::nodes::parse_filter;
use super::{AppError, AppState};
use crate::design::Message;
use crate::plan;
use crate::state::{TaskMessage, TaskRecord};

/// Actions slipway can carry out (validation and planning).
const DESIGN_ACTIONS: [&str; 3] = ["validate_design", "verify_site", "prepare_site"];

/// Drydock's node actions slipway carries out with its own deployment
/// bookkeeping: `deploy_nodes` and `redeploy_server` start a new deployment
/// (new action ids and keys) for each selected node; `destroy_nodes` revokes
/// the selected nodes' deployments (their keys are refused from then on).
const DEPLOYMENT_ACTIONS: [&str; 3] = ["deploy_nodes", "redeploy_server", "destroy_nodes"];

/// Drydock's node actions slipway cannot carry out, and what each one needs.
const NODE_ACTIONS: [(&str, &str); 4] = [
    ("verify_nodes", "out-of-band hardware control (BMC access)"),
    (
        "prepare_nodes",
        "out-of-band hardware control (BMC power and boot device)",
    ),
    ("relabel_nodes", "a Kubernetes API client to relabel nodes"),
    (
        "configure_hardware",
        "out-of-band hardware control (BMC and firmware settings)",
    ),
];

/// Every action name accepted by `POST /tasks`.
pub const ACTIONS: [&str; 10] = [
    "validate_design",
    "verify_site",
    "prepare_site",
    "verify_nodes",
    "prepare_nodes",
    "deploy_nodes",
    "redeploy_server",
    "destroy_nodes",
    "relabel_nodes",
    "configure_hardware",
];

/// Whether `POST /tasks` accepts an action.
pub fn known_action(a: &str) -> bool {
    DESIGN_ACTIONS.contains(&a)
        || DEPLOYMENT_ACTIONS.contains(&a)
        || NODE_ACTIONS.iter().any(|(n, _)| *n == a)
}

/// The body of `POST /tasks`.
#[derive(Debug, Deserialize)]
pub struct CreateTask {
    action: Option<Value>,
    design_ref: Option<Value>,
    node_filter: Option<Value>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random-looking UUID (version 4 layout) from time, pid and a counter.
fn new_task_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
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
) -> Result<(StatusCode, Json<Value>), AppError> {
    let req: CreateTask = parse_json(&body)?;
    let action = match req.action {
        Some(Value::String(a)) => a,
        None | Some(Value::Null) => return Err(bad_request("missing required field `action`")),
        Some(_) => return Err(bad_request("`action` must be a string")),
    };
    if !known_action(&action) {
        return Err(bad_request(format!(
            "unknown action `{action}`; known: validate_design, verify_site, prepare_site, \
             verify_nodes, prepare_nodes, deploy_nodes, redeploy_server, destroy_nodes, \
             relabel_nodes, configure_hardware"
        )));
    }
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
    let task = TaskRecord {
        task_id: new_task_id(),
        parent_task_id: None,
        action,
        status: "queued".into(),
        result: Some("incomplete".into()),
        design_ref,
        node_filter,
        created: now(),
        created_by: Some("operator".into()),
        updated: None,
        terminated: None,
        body: json!({"message": "queued", "reason": "queued"}),
    };
    let stored = task.clone();
    state.with_store_mut(move |s| s.put_task(&stored)).await?;
    let view = task_json(&task, &[]);
    tokio::spawn(run(state, task));
    Ok((StatusCode::CREATED, Json(view)))
}

/// Runs a task to completion, recording each transition.
async fn run(state: AppState, mut task: TaskRecord) {
    task.status = "running".into();
    task.updated = Some(now());
    task.body = json!({"message": "running", "reason": "running"});
    let t = task.clone();
    if let Err(e) = state.with_store_mut(move |s| s.put_task(&t)).await {
        tracing::error!(task = %task.task_id, error = ?e, "cannot record task start");
        return;
    }
    let src = state.design.clone();
    let applied = state.status.read().ok().and_then(|s| s.applied.clone());
    let action = task.action.clone();
    let design_ref = task.design_ref.clone();
    let store = state.store.clone();
    let boot = state.boot.clone();
    let filter = task.node_filter.clone();
    if DEPLOYMENT_ACTIONS.contains(&task.action.as_str()) {
        // Deployments need the applied design, read again after a start.
        state.boot.wait_ready(crate::reconcile::LOAD_WAIT).await;
    }
    let outcome = tokio::task::spawn_blocking(move || {
        if DEPLOYMENT_ACTIONS.contains(&action.as_str()) {
            return deployments(&boot, &action, filter);
        }
        execute(
            &action,
            design_ref.as_deref(),
            applied.as_deref(),
            &src,
            &store,
        )
    })
    .await
    .unwrap_or_else(|e| Outcome::failure(format!("task crashed: {e}"), Vec::new()));

    let id = task.task_id.clone();
    let messages = outcome.messages;
    task.status = "complete".into();
    task.result = Some(outcome.result.into());
    task.updated = Some(now());
    task.body = json!({"message": outcome.message, "reason": outcome.result});
    let t = task.clone();
    let r = state
        .with_store_mut(move |s| {
            for m in &messages {
                s.add_task_message(&id, m)?;
            }
            s.put_task(&t)
        })
        .await;
    if let Err(e) = r {
        tracing::error!(task = %task.task_id, error = ?e, "cannot record task completion");
    } else {
        tracing::info!(task = %task.task_id, action = %task.action, result = outcome.result, "task complete");
    }
}

/// What a task ended with.
struct Outcome {
    result: &'static str,
    message: String,
    messages: Vec<TaskMessage>,
}

impl Outcome {
    fn failure(message: String, mut messages: Vec<TaskMessage>) -> Outcome {
        messages.push(task_msg(&message, true, None));
        Outcome {
            result: "failure",
            message,
            messages,
        }
    }
}

fn task_msg(text: &str, error: bool, context: Option<String>) -> TaskMessage {
    TaskMessage {
        ts: now(),
        message: text.to_string(),
        error,
        context_type: Some(
            if context.is_some() {
                "document"
            } else {
                "task"
            }
            .into(),
        ),
        context,
        extra: json!({}),
    }
}

fn from_design_message(m: &Message) -> TaskMessage {
    let context = m.source.as_ref().map(|s| format!("{}:{}", s.file, s.line));
    let mut t = task_msg(&format!("{}: {}", m.code, m.message), m.error, context);
    t.extra = serde_json::to_value(m).unwrap_or(json!({}));
    t
}

/// `deploy_nodes`, `redeploy_server`: a new deployment per selected node;
/// `destroy_nodes`: the selected nodes' deployments revoked (blocking).
fn deployments(
    boot: &crate::boot::BootService,
    action: &str,
    filter: Option<serde_json::Value>,
) -> Outcome {
    let filter: Option<crate::design::model::NodeFilter> = match filter {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match serde_json::from_value(v) {
            Ok(f) => Some(f),
            Err(e) => {
                return Outcome::failure(format!("node_filter cannot be read: {e}"), Vec::new())
            }
        },
    };
    let nodes = match boot.select_nodes(filter.as_ref()) {
        Ok(n) => n,
        Err(e) => return Outcome::failure(format!("cannot select nodes: {e}"), Vec::new()),
    };
    if nodes.is_empty() {
        return Outcome::failure(
            "the node filter selects no node of the applied design".into(),
            Vec::new(),
        );
    }
    let mut messages = Vec::new();
    let mut failed = 0;
    for node in &nodes {
        let (text, error) = if action == "destroy_nodes" {
            match boot.revoke(node) {
                Ok(true) => (
                    format!("{node}: deployment revoked; its keys are refused"),
                    false,
                ),
                Ok(false) => (format!("{node}: no deployment to revoke"), false),
                Err(e) => (format!("{node}: cannot revoke: {e}"), true),
            }
        } else {
            match boot.redeploy(node) {
                Ok(d) => (
                    format!("{node}: new deployment {}", d.record().deployment),
                    false,
                ),
                Err(e) => (format!("{node}: cannot redeploy: {e}"), true),
            }
        };
        failed += usize::from(error);
        messages.push(task_msg(&text, error, Some(node.clone())));
    }
    let done = nodes.len() - failed;
    let (result, message) = match (done, failed) {
        (_, 0) => ("success", format!("{action}: {done} node(s)")),
        (0, _) => (
            "failure",
            format!("{action}: failed for all {failed} node(s)"),
        ),
        _ => (
            "partial_success",
            format!("{action}: {done} node(s) done, {failed} failed"),
        ),
    };
    Outcome {
        result,
        message,
        messages,
    }
}

/// Carries out an action (blocking).
fn execute(
    action: &str,
    design_ref: Option<&str>,
    applied: Option<&str>,
    src: &super::DesignSource,
    store: &std::sync::Mutex<crate::state::Store>,
) -> Outcome {
    if let Some((_, needs)) = NODE_ACTIONS.iter().find(|(n, _)| *n == action) {
        return Outcome::failure(
            format!("{action} is not supported by slipway: it needs {needs}, which slipway does not have"),
            Vec::new(),
        );
    }
    let Some(reference) = design_ref.or(applied) else {
        return Outcome::failure(
            "no design_ref given and no applied revision to fall back on".into(),
            Vec::new(),
        );
    };
    let files = match read_design(src, reference) {
        Ok(f) => f,
        Err(e) => return Outcome::failure(e.message().to_string(), Vec::new()),
    };
    let v = crate::validate(&files);
    let mut messages: Vec<TaskMessage> = v.messages.iter().map(from_design_message).collect();
    if !v.is_valid() {
        let n = v.error_count();
        return Outcome::failure(
            format!("design {reference} is invalid: {n} error(s)"),
            messages,
        );
    }
    if action != "prepare_site" {
        let text = format!("design {reference} is valid");
        messages.push(task_msg(&text, false, None));
        return Outcome {
            result: "success",
            message: text,
            messages,
        };
    }
    let Some(d) = v.design else {
        return Outcome::failure("the design could not be built".into(), messages);
    };
    let snapshot = match store.lock() {
        Ok(s) => s.snapshot(),
        Err(_) => return Outcome::failure("database lock poisoned".into(), messages),
    };
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => return Outcome::failure(format!("cannot read the applied state: {e}"), messages),
    };
    let p = plan::plan(&d, &snapshot);
    messages.push(task_msg(
        &format!(
            "plan: {} document(s) to create, {} to update, {} to delete; {} node(s) to write, {} to delete",
            p.creates.len(),
            p.updates.len(),
            p.deletes.len(),
            p.node_writes.len(),
            p.node_deletes.len()
        ),
        false,
        None,
    ));
    for line in p.summary_lines() {
        messages.push(task_msg(&format!("plan: {line}"), false, None));
    }
    let text =
        format!(
        "design {reference} is valid; plan against the applied state computed ({}), not applied: \
         slipway applies what is committed to the watched branch",
        if p.is_empty() { "no change" } else { "changes listed" }
    );
    messages.push(task_msg(&text, false, None));
    Outcome {
        result: "success",
        message: text,
        messages,
    }
}

/// Ends tasks a previous run left `queued` or `running` (the process stopped
/// under them): `complete` with result `failure` and a message saying so, so
/// no task stays in flight forever. Returns how many were ended.
pub fn recover_interrupted(
    store: &mut crate::state::Store,
) -> Result<usize, crate::state::StateError> {
    let mut n = 0;
    for mut t in store.tasks()? {
        if t.status != "queued" && t.status != "running" {
            continue;
        }
        let text = "interrupted: the server stopped before the task finished; submit it again";
        store.add_task_message(&t.task_id, &task_msg(text, true, None))?;
        t.status = "complete".into();
        t.result = Some("failure".into());
        t.updated = Some(now());
        t.body = json!({"message": text, "reason": "failure"});
        store.put_task(&t)?;
        n += 1;
    }
    Ok(n)
}

/// `GET /api/v1.0/tasks`: every task, oldest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Value>>, AppError> {
    let tasks = state
        .with_store(|s| {
            let mut out = Vec::new();
            for t in s.tasks()? {
                let m = s.task_messages(&t.task_id)?;
                out.push(task_json(&t, &m));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(tasks))
}

/// `GET /api/v1.0/tasks/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let key = id.clone();
    let task = state
        .with_store(move |s| match s.task(&key)? {
            None => Ok(None),
            Some(t) => {
                let m = s.task_messages(&key)?;
                Ok(Some(task_json(&t, &m)))
            }
        })
        .await?;
    task.map(Json)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, "NotFound", format!("no task `{id}`")))
}
