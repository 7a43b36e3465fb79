//! Orchestration tasks (Drydock's `/api/v1.0/tasks`) and their result messages.

use super::db::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{Context, StateError, Store};

/// One task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's id (a UUID or ULID chosen by the caller).
    pub task_id: String,
    /// The task that spawned it, if any.
    pub parent_task_id: Option<String>,
    /// What it does (`verify_site`, `deploy_nodes`, ...).
    pub action: String,
    /// `requested`, `running`, `complete`, `terminated`, ...
    pub status: String,
    /// `Success`, `Failure`, `PartialSuccess`, `Incomplete`, if known.
    pub result: Option<String>,
    /// The design the task works on.
    pub design_ref: Option<String>,
    /// The node filter it was given, as JSON.
    pub node_filter: Option<serde_json::Value>,
    /// Seconds since the Unix epoch.
    pub created: i64,
    /// Who asked for it.
    pub created_by: Option<String>,
    /// Last status change, seconds since the Unix epoch.
    pub updated: Option<i64>,
    /// When it was terminated, seconds since the Unix epoch.
    pub terminated: Option<i64>,
    /// The task as served (any other fields), a JSON object.
    pub body: serde_json::Value,
}

/// One result message of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// Seconds since the Unix epoch.
    pub ts: i64,
    /// The message.
    pub message: String,
    /// Whether it reports an error.
    pub error: bool,
    /// What the message is about (`node`, `task`, ...).
    pub context_type: Option<String>,
    /// Which one (a node name, a task id, ...).
    pub context: Option<String>,
    /// Any other fields, a JSON object.
    pub extra: serde_json::Value,
}

const COLUMNS: &str = "task_id, parent_task_id, action, status, result, design_ref, node_filter, \
                       created, created_by, updated, terminated, body";

/// A row as a record; the inner error is a stored JSON value that cannot be read.
fn read(r: &Row<'_>) -> super::db::Result<Result<TaskRecord, StateError>> {
    let task_id: String = r.get(0)?;
    let node_filter: Option<String> = r.get(6)?;
    let body: String = r.get(11)?;
    let json = |what: &str, text: &str| {
        serde_json::from_str(text).map_err(|e| {
            StateError::Invalid(format!(
                "task {task_id}: expected JSON in `{what}`, found an unreadable value: {e}"
            ))
        })
    };
    let node_filter = match node_filter.as_deref().map(|t| json("node_filter", t)) {
        Some(Err(e)) => return Ok(Err(e)),
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let body = match json("body", &body) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(TaskRecord {
        parent_task_id: r.get(1)?,
        action: r.get(2)?,
        status: r.get(3)?,
        result: r.get(4)?,
        design_ref: r.get(5)?,
        node_filter,
        created: r.get(7)?,
        created_by: r.get(8)?,
        updated: r.get(9)?,
        terminated: r.get(10)?,
        body,
        task_id,
    }))
}

impl Store {
    /// Stores a new task, or replaces the stored task of that id (status
    /// changes rewrite the row; its messages are kept).
    pub fn put_task(&mut self, task: &TaskRecord) -> Result<(), StateError> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO tasks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (task_id) DO UPDATE SET
                     parent_task_id = excluded.parent_task_id, action = excluded.action,
                     status = excluded.status, result = excluded.result,
                     design_ref = excluded.design_ref, node_filter = excluded.node_filter,
                     created = excluded.created, created_by = excluded.created_by,
                     updated = excluded.updated, terminated = excluded.terminated,
                     body = excluded.body"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    task.task_id,
                    task.parent_task_id,
                    task.action,
                    task.status,
                    task.result,
                    task.design_ref,
                    task.node_filter.as_ref().map(|v| v.to_string()),
                    task.created,
                    task.created_by,
                    task.updated,
                    task.terminated,
                    task.body.to_string(),
                ])
            })
            .map(|_| ())
            .ctx(|| format!("storing task {}", task.task_id))
    }

    /// One task by id.
    pub fn task(&self, task_id: &str) -> Result<Option<TaskRecord>, StateError> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM tasks WHERE task_id = ?1"))
            .and_then(|mut s| s.query_row([task_id], read).optional())
            .ctx(|| format!("reading task {task_id}"))?
            .transpose()
    }

    /// Every task, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskRecord>, StateError> {
        let what = || "listing tasks".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM tasks ORDER BY created, task_id"
            ))
            .ctx(what)?;
        let rows = stmt.query_map([], read).ctx(what)?;
        rows.map(|r| r.ctx(what).and_then(|r| r)).collect()
    }

    /// Appends a result message to a task.
    pub fn add_task_message(&mut self, task_id: &str, m: &TaskMessage) -> Result<(), StateError> {
        self.conn
            .prepare_cached(
                "INSERT INTO task_messages (task_id, ts, message, error, context_type, context, extra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    task_id,
                    m.ts,
                    m.message,
                    m.error,
                    m.context_type,
                    m.context,
                    m.extra.to_string()
                ])
            })
            .map(|_| ())
            .ctx(|| format!("adding a message to task {task_id}"))
    }

    /// A task's result messages, oldest first.
    pub fn task_messages(&self, task_id: &str) -> Result<Vec<TaskMessage>, StateError> {
        let what = || format!("reading the messages of task {task_id}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, message, error, context_type, context, extra FROM task_messages
                 WHERE task_id = ?1 ORDER BY id",
            )
            .ctx(what)?;
        let rows = stmt
            .query_map([task_id], |r| {
                Ok((
                    TaskMessage {
                        ts: r.get(0)?,
                        message: r.get(1)?,
                        error: r.get(2)?,
                        context_type: r.get(3)?,
                        context: r.get(4)?,
                        extra: serde_json::Value::Null,
                    },
                    r.get::<_, String>(5)?,
                ))
            })
            .ctx(what)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut m, extra) = row.ctx(what)?;
            m.extra = serde_json::from_str(&extra).map_err(|e| {
                StateError::Invalid(format!(
                    "task {task_id}: expected JSON in a message's `extra`, found an unreadable value: {e}"
                ))
            })?;
            out.push(m);
        }
        Ok(out)
    }
}
