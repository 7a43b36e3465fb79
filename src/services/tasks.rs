//! The task engine: Drydock's asynchronous actions as tasks persisted in
//! SQLite with real status transitions (`queued` -> `running` -> `complete`).
//! A dialect creates, lists and shows tasks through [`TaskEngine`]; it never
//! runs one itself.
//!
//! What each action really does is in `docs/api.md`: slipway validates and
//! plans; node actions that imply power drive the power service
//! ([`super::power`]) and report one message per node (`context_type: node`),
//! ending `success`, `partial_success` (some nodes failed) or `failure` (all
//! failed), as Drydock does. Actions slipway cannot carry out end as `failure`
//! with a message naming what is missing, never as a fake success.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::designs::{read_design, DesignSource};
use super::{BootService, ServiceError, SharedStatus};
use crate::clock::now;
use crate::design::Message;
use crate::plan;
use crate::state::{StateError, Store, TaskMessage, TaskRecord};

mod kinds;

pub use kinds::{TaskAction, TaskResult, TaskStatus, ACTIONS};

/// A random-looking UUID (version 4 layout) from time, pid and a counter.
fn new_task_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = crate::clock::now_nanos();
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

/// Creates, runs, lists and shows tasks. Cheap to clone.
#[derive(Clone)]
pub struct TaskEngine {
    /// The API's connection (tasks are the few writes the API makes itself;
    /// SQLite serialises them with the reconciler's, WAL and busy timeout).
    store: Arc<Mutex<Store>>,
    boot: Arc<BootService>,
    status: SharedStatus,
    design: DesignSource,
    /// The power service (`None`: node power actions fail saying so).
    power: Option<super::power::NodePower>,
}

impl TaskEngine {
    /// An engine writing on `store`, deploying through `boot`, falling back
    /// on the applied revision of `status`, reading references from `design`.
    pub fn new(
        store: Arc<Mutex<Store>>,
        boot: Arc<BootService>,
        status: SharedStatus,
        design: DesignSource,
    ) -> TaskEngine {
        TaskEngine {
            store,
            boot,
            status,
            design,
            power: None,
        }
    }

    /// The engine driving node power through `power`.
    pub fn with_power(mut self, power: super::power::NodePower) -> TaskEngine {
        self.power = Some(power);
        self
    }

    /// Stores a new `queued` task and runs it in the background; returns it
    /// as stored.
    pub async fn create(
        &self,
        action: TaskAction,
        design_ref: Option<String>,
        node_filter: Option<serde_json::Value>,
    ) -> Result<TaskRecord, ServiceError> {
        let task = TaskRecord {
            task_id: new_task_id(),
            parent_task_id: None,
            action: action.as_str().into(),
            status: TaskStatus::Queued.as_str().into(),
            result: Some(TaskResult::Incomplete.as_str().into()),
            design_ref,
            node_filter,
            created: now(),
            created_by: Some("operator".into()),
            updated: None,
            terminated: None,
            body: json!({"message": "queued", "reason": "queued"}),
        };
        let stored = task.clone();
        self.write(move |s| s.put_task(&stored)).await?;
        tokio::spawn(run(self.clone(), task.clone(), action));
        Ok(task)
    }

    /// Every task with its messages, oldest first.
    pub async fn list(&self) -> Result<Vec<(TaskRecord, Vec<TaskMessage>)>, ServiceError> {
        self.read(|s| {
            let mut out = Vec::new();
            for t in s.tasks()? {
                let m = s.task_messages(&t.task_id)?;
                out.push((t, m));
            }
            Ok(out)
        })
        .await
    }

    /// One task with its messages.
    pub async fn get(
        &self,
        id: &str,
    ) -> Result<Option<(TaskRecord, Vec<TaskMessage>)>, ServiceError> {
        let key = id.to_string();
        self.read(move |s| match s.task(&key)? {
            None => Ok(None),
            Some(t) => {
                let m = s.task_messages(&key)?;
                Ok(Some((t, m)))
            }
        })
        .await
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StateError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let guard = store.lock().map_err(|_| ServiceError::poisoned())?;
            Ok(f(&guard)?)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("database task failed: {e}")))?
    }

    /// Like `read`, for a write: refused once the database file was removed
    /// or replaced, before the write and again before it is acknowledged.
    async fn write<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StateError> + Send + 'static,
    {
        let store = self.store.clone();
        let boot = self.boot.clone();
        tokio::task::spawn_blocking(move || {
            boot.check_database()?;
            let mut guard = store.lock().map_err(|_| ServiceError::poisoned())?;
            let out = f(&mut guard)?;
            boot.check_database()?;
            Ok(out)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("database task failed: {e}")))?
    }
}

/// Runs a task to completion, recording each transition.
async fn run(engine: TaskEngine, mut task: TaskRecord, action: TaskAction) {
    task.status = TaskStatus::Running.as_str().into();
    task.updated = Some(now());
    task.body = json!({"message": "running", "reason": "running"});
    let t = task.clone();
    if let Err(e) = engine.write(move |s| s.put_task(&t)).await {
        tracing::error!(task = %task.task_id, error = ?e, "cannot record task start");
        return;
    }
    let outcome = if action.is_deployment() || !action.power_ops().is_empty() {
        // Node actions need the served design, read again after a start.
        engine.boot.wait_ready(super::LOAD_WAIT).await;
        node_actions(&engine, action, task.node_filter.clone()).await
    } else {
        let src = engine.design.clone();
        let applied = engine.status.read().ok().and_then(|s| s.applied.clone());
        let design_ref = task.design_ref.clone();
        let store = engine.store.clone();
        tokio::task::spawn_blocking(move || {
            execute(
                action,
                design_ref.as_deref(),
                applied.as_deref(),
                &src,
                &store,
            )
        })
        .await
        .unwrap_or_else(|e| Outcome::failure(format!("task crashed: {e}"), Vec::new()))
    };

    let id = task.task_id.clone();
    let messages = outcome.messages;
    task.status = TaskStatus::Complete.as_str().into();
    task.result = Some(outcome.result.as_str().into());
    task.updated = Some(now());
    task.body = json!({
        "message": outcome.message,
        "reason": outcome.result.as_str(),
        "successes": outcome.successes,
        "failures": outcome.failures,
    });
    let t = task.clone();
    let r = engine
        .write(move |s| {
            for m in &messages {
                s.add_task_message(&id, m)?;
            }
            s.put_task(&t)
        })
        .await;
    if let Err(e) = r {
        tracing::error!(task = %task.task_id, error = ?e, "cannot record task completion");
    } else {
        tracing::info!(task = %task.task_id, action = %task.action, result = outcome.result.as_str(), "task complete");
    }
}

/// What a task ended with.
struct Outcome {
    result: TaskResult,
    message: String,
    messages: Vec<TaskMessage>,
    /// Nodes the action was carried out on (Drydock's `successes`).
    successes: Vec<String>,
    /// Nodes it failed on (Drydock's `failures`).
    failures: Vec<String>,
}

impl Outcome {
    fn failure(message: String, mut messages: Vec<TaskMessage>) -> Outcome {
        messages.push(task_msg(&message, true, None));
        Outcome {
            result: TaskResult::Failure,
            message,
            messages,
            successes: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn success(message: String, messages: Vec<TaskMessage>) -> Outcome {
        Outcome {
            result: TaskResult::Success,
            message,
            messages,
            successes: Vec::new(),
            failures: Vec::new(),
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

/// A per-node message (`context_type: node`, `context: <name>`).
fn node_msg(node: &str, text: &str, error: bool) -> TaskMessage {
    let mut m = task_msg(text, error, Some(node.to_string()));
    m.context_type = Some("node".into());
    m
}

/// The node actions: `deploy_nodes`, `redeploy_server` start a new
/// deployment per selected node, `destroy_nodes` revokes them (blocking,
/// first); then each node the step left standing gets the action's power
/// operations (`TaskAction::power_ops`) through the power service, every
/// node at once within its concurrency limit. One message per node and step.
async fn node_actions(
    engine: &TaskEngine,
    action: TaskAction,
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
    let boot = engine.boot.clone();
    let step = tokio::task::spawn_blocking(move || deployment_step(&boot, action, filter)).await;
    let (nodes, mut messages, mut failed) = match step {
        Ok(Ok(s)) => s,
        Ok(Err(o)) => return o,
        Err(e) => return Outcome::failure(format!("task crashed: {e}"), Vec::new()),
    };
    let ops = action.power_ops();
    let standing: Vec<String> = nodes
        .iter()
        .filter(|n| !failed.contains(*n))
        .cloned()
        .collect();
    if !ops.is_empty() && !standing.is_empty() {
        let outcomes = match &engine.power {
            None => standing
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        Err("the power service is not configured".to_string()),
                    )
                })
                .collect::<Vec<_>>(),
            Some(power) => match power.served_targets(&engine.boot, &standing) {
                Err(e) => standing
                    .iter()
                    .map(|n| (n.clone(), Err(format!("no served design: {e}"))))
                    .collect(),
                Ok(targets) => power
                    .run(targets, ops)
                    .await
                    .into_iter()
                    .map(|o| {
                        let text = match &o.failure {
                            None => Ok(o.message),
                            Some(f) => Err(format!("power {}: {}", f.kind(), o.message)),
                        };
                        (o.node, text)
                    })
                    .collect(),
            },
        };
        for (node, r) in outcomes {
            match r {
                Ok(text) => {
                    messages.push(node_msg(&node, &format!("{node}: power: {text}"), false))
                }
                Err(text) => {
                    messages.push(node_msg(&node, &format!("{node}: {text}"), true));
                    failed.push(node);
                }
            }
        }
    }
    let successes: Vec<String> = nodes
        .iter()
        .filter(|n| !failed.contains(*n))
        .cloned()
        .collect();
    let failures: Vec<String> = nodes
        .iter()
        .filter(|n| failed.contains(*n))
        .cloned()
        .collect();
    let (done, nfailed) = (successes.len(), failures.len());
    let (result, message) = match (done, nfailed) {
        (_, 0) => (TaskResult::Success, format!("{action}: {done} node(s)")),
        (0, _) => (
            TaskResult::Failure,
            format!("{action}: failed for all {nfailed} node(s)"),
        ),
        _ => (
            TaskResult::PartialSuccess,
            format!("{action}: {done} node(s) done, {nfailed} failed"),
        ),
    };
    Outcome {
        result,
        message,
        messages,
        successes,
        failures,
    }
}

/// The selected nodes, and for the deployment actions the deployment step
/// on each: its messages and the nodes it failed on (blocking).
#[allow(clippy::type_complexity)]
fn deployment_step(
    boot: &BootService,
    action: TaskAction,
    filter: Option<crate::design::model::NodeFilter>,
) -> Result<(Vec<String>, Vec<TaskMessage>, Vec<String>), Outcome> {
    let nodes = match boot.select_nodes(filter.as_ref()) {
        Ok(n) => n,
        Err(e) => {
            return Err(Outcome::failure(
                format!("cannot select nodes: {e}"),
                Vec::new(),
            ))
        }
    };
    if nodes.is_empty() {
        return Err(Outcome::failure(
            "the node filter selects no node of the applied design".into(),
            Vec::new(),
        ));
    }
    let mut messages = Vec::new();
    let mut failed = Vec::new();
    if !action.is_deployment() {
        return Ok((nodes, messages, failed));
    }
    for node in &nodes {
        let (text, error) = if action == TaskAction::DestroyNodes {
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
        if error {
            failed.push(node.clone());
        }
        messages.push(node_msg(node, &text, error));
    }
    Ok((nodes, messages, failed))
}

/// Carries out an action (blocking).
fn execute(
    action: TaskAction,
    design_ref: Option<&str>,
    applied: Option<&str>,
    src: &DesignSource,
    store: &Mutex<Store>,
) -> Outcome {
    if let Some(needs) = action.unsupported() {
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
        Err(e) => return Outcome::failure(e.to_string(), Vec::new()),
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
    if action != TaskAction::PrepareSite {
        let text = format!("design {reference} is valid");
        messages.push(task_msg(&text, false, None));
        return Outcome::success(text, messages);
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
    Outcome::success(text, messages)
}

/// Ends tasks a previous run left `queued` or `running` (the process stopped
/// under them): `complete` with result `failure` and a message saying so, so
/// no task stays in flight forever. Returns how many were ended.
pub fn recover_interrupted(store: &mut Store) -> Result<usize, StateError> {
    let mut n = 0;
    for mut t in store.tasks()? {
        let in_flight = matches!(
            t.status.parse(),
            Ok(TaskStatus::Queued | TaskStatus::Running)
        );
        if !in_flight {
            continue;
        }
        let text = "interrupted: the server stopped before the task finished; submit it again";
        store.add_task_message(&t.task_id, &task_msg(text, true, None))?;
        t.status = TaskStatus::Complete.as_str().into();
        t.result = Some(TaskResult::Failure.as_str().into());
        t.updated = Some(now());
        t.body = json!({"message": text, "reason": TaskResult::Failure.as_str()});
        store.put_task(&t)?;
        n += 1;
    }
    Ok(n)
}
