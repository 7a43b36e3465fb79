//! Serving boot data (DESIGN §4–5): deployments of the applied revision's
//! nodes, their keys, rendered boot data and status reports.
//!
//! [`BootService`] ties the pieces together without owning any of their
//! libraries: the design of the applied commit is read through
//! [`crate::source`] and validated once per commit, its templates compiled
//! once ([`CompiledActions`]), deployments kept in [`crate::state`], keys
//! derived by [`crate::keys`]. Rendered bytes are cached per (node,
//! deployment, kind) until a new revision is applied. Every method blocks
//! (git, SQLite, rendering): call them off the async runtime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;

use sha2::{Digest, Sha256};

use crate::design::{self, filter, Design};
use crate::keys::{self, KeyCheck, Secret};
use crate::metrics::Metrics;
use crate::render::bootdata::{self, BootDataKind, CompiledActions, NodeAction};
use crate::render::context::{ActionValues, ContextBuilder};
use crate::source::Repo;
use crate::state::{
    BootActionDetail, BootActionRecord, DeploymentInputs, DeploymentRecord, ReportOutcome,
    StateError, Store,
};

/// Where the service finds designs and what it tells nodes.
#[derive(Debug, Clone)]
pub struct BootConfig {
    /// A path inside the design repository.
    pub repo: PathBuf,
    /// Design root inside the repository (`None`: `designs/` or the root).
    pub design_dir: Option<String>,
    /// `action.report_url` of templates.
    pub report_url: String,
}

/// Why a boot request failed.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// No applied revision is being served yet.
    #[error("no applied revision is being served yet")]
    NotServing,
    /// The node is not in the applied design.
    #[error("node {0} is not in the applied design")]
    UnknownNode(String),
    /// The database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The applied commit could not be read or validated again.
    #[error("reading the applied revision {commit}: {message}")]
    Revision {
        /// The commit.
        commit: String,
        /// What went wrong.
        message: String,
    },
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] bootdata::RenderError),
}

/// A node's deployment and its boot actions. Cheap to clone: it shares the
/// in-memory entry that also holds the deployment's rendered boot data.
#[derive(Clone)]
pub struct NodeDeployment {
    entry: Arc<Entry>,
    loaded: Arc<Loaded>,
}

/// A deployment as served from memory, with its rendered boot data (one
/// slot per kind, filled on first request).
struct Entry {
    record: DeploymentRecord,
    actions: Vec<BootActionRecord>,
    rendered: [OnceLock<Arc<Rendered>>; 4],
}

impl NodeDeployment {
    /// The deployment row.
    pub fn record(&self) -> &DeploymentRecord {
        &self.entry.record
    }

    /// Its boot actions, by action name (statuses as of when the deployment
    /// was read; [`BootService::deployment`] reads them fresh).
    pub fn actions(&self) -> &[BootActionRecord] {
        &self.entry.actions
    }
}

impl std::fmt::Debug for NodeDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDeployment")
            .field("record", &self.entry.record)
            .field("actions", &self.entry.actions)
            .field("commit", &self.loaded.commit)
            .finish()
    }
}

/// Rendered boot data and its ETag.
#[derive(Debug)]
pub struct Rendered {
    /// The bytes served (shared, not copied, per response).
    pub bytes: Bytes,
    /// sha256 of the bytes as hex (quote it for the `ETag` header).
    pub sha256: String,
    /// The `ETag` header value: the quoted sha256.
    pub etag: String,
}

/// The design of one applied commit, compiled for rendering.
struct Loaded {
    commit: String,
    design: Design,
    by_name: HashMap<String, usize>,
    /// Node index to the indices of the BootActions that target it.
    targets: Vec<Vec<usize>>,
    compiled: CompiledActions,
}

/// See the module docs.
pub struct BootService {
    cfg: BootConfig,
    secret: Secret,
    store: Arc<Mutex<Store>>,
    loaded: Mutex<Option<Arc<Loaded>>>,
    served: RwLock<Served>,
    metrics: Arc<Metrics>,
    /// The report writer (group commit), started on the first report.
    reports: Mutex<Option<std::sync::mpsc::Sender<ReportJob>>>,
    /// The threads that run blocking work (database, rendering) for requests:
    /// a fixed few, so a boot storm queues here instead of starting a thread
    /// (with its stack, allocator cache and deflate tables) per request.
    workers: rayon::ThreadPool,
}

/// Worker threads per CPU (see [`BootService::run`]).
const WORKERS_PER_CPU: usize = 4;

impl std::fmt::Debug for BootService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootService")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The deployments being served from memory, by node. An entry is valid as
/// long as its node's inputs are unchanged: an applied revision drops the
/// entries of the nodes it affects (and only those), a redeploy or revoke
/// drops the node's. `generation` counts those drops, so a database read that
/// raced one is not cached.
#[derive(Default)]
struct Served {
    generation: u64,
    nodes: HashMap<String, Arc<Entry>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl BootService {
    /// A service using its own database connection `store`.
    pub fn new(
        cfg: BootConfig,
        secret: Secret,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> BootService {
        BootService {
            cfg,
            secret,
            store: Arc::new(Mutex::new(store)),
            loaded: Mutex::new(None),
            served: RwLock::new(Served::default()),
            metrics,
            reports: Mutex::new(None),
            workers: rayon::ThreadPoolBuilder::new()
                .num_threads(
                    WORKERS_PER_CPU
                        * std::thread::available_parallelism()
                            .map(usize::from)
                            .unwrap_or(2),
                )
                .thread_name(|i| format!("boot-worker-{i}"))
                // A panicking job drops its reply: the request gets a 500, the
                // worker goes on.
                .panic_handler(|_| tracing::error!("a boot-data job panicked"))
                .build()
                .expect("boot workers start"),
        }
    }

    /// Runs blocking work on the service's worker threads (a few per CPU)
    /// and waits for it without holding a thread; `None` when the job
    /// panicked.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&BootService) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        self.workers.spawn(move || {
            let _ = tx.send(f(&me));
        });
        rx.await.ok()
    }

    /// The metrics this service counts renders and reports in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StateError>,
    ) -> Result<T, BootError> {
        let mut guard = self
            .store
            .lock()
            .map_err(|_| BootError::State(StateError::Sql("database lock poisoned".into())))?;
        Ok(f(&mut guard)?)
    }

    /// The design of `commit`, loaded and compiled once.
    fn load(&self, commit: &str) -> Result<Arc<Loaded>, BootError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = slot.as_ref().filter(|l| l.commit == commit) {
            return Ok(l.clone());
        }
        let err = |message: String| BootError::Revision {
            commit: commit.to_string(),
            message,
        };
        let t = std::time::Instant::now();
        let repo = Repo::discover(&self.cfg.repo).map_err(|e| err(e.to_string()))?;
        let files = repo
            .design_files(commit, self.cfg.design_dir.as_deref())
            .map_err(|e| err(e.to_string()))?;
        let v = design::validate(&files);
        let design = match v.design {
            Some(d) if v.messages.iter().all(|m| m.level != design::Level::Error) => d,
            _ => return Err(err(format!("{} validation error(s)", v.error_count()))),
        };
        let l = Arc::new(compile(commit, design)?);
        tracing::info!(
            %commit,
            took_ms = t.elapsed().as_millis() as u64,
            "boot data: applied revision read again and compiled"
        );
        *slot = Some(l.clone());
        Ok(l)
    }

    /// Hands over the design of a revision just applied, so the first boot
    /// request after an apply does not read and validate it again. `changed`
    /// names the nodes whose boot-data inputs the revision changed or that it
    /// removed: only their in-memory deployments and rendered data are
    /// dropped. Each of them that was being served (had a deployment in
    /// memory) gets its new deployment and the kinds of boot data it had
    /// asked for rendered now, so its next request is served from memory.
    /// Returns how many nodes were rendered again.
    pub fn preload<'a>(
        &self,
        commit: &str,
        design: Design,
        changed: impl IntoIterator<Item = &'a str>,
    ) -> usize {
        let t = std::time::Instant::now();
        let loaded = match compile(commit, design) {
            Ok(l) => Arc::new(l),
            // Rendering will report it per request; serving goes on.
            Err(e) => {
                tracing::warn!(%commit, error = %e, "boot data: cannot compile the applied revision");
                self.invalidate(changed);
                return 0;
            }
        };
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
        let dropped = self.invalidate(changed);
        let compiled_ms = t.elapsed().as_millis() as u64;
        let mut rerendered = 0;
        for (node, old) in &dropped {
            let kinds: Vec<BootDataKind> = BootDataKind::ALL
                .into_iter()
                .filter(|k| old.rendered[k.index()].get().is_some())
                .collect();
            // A node the revision removed, or one that fails, is left to its
            // next request, which reports the failure.
            let Ok(d) = self.deployment(node) else {
                continue;
            };
            if kinds.iter().all(|&k| self.render(&d, k).is_ok()) {
                rerendered += 1;
            }
        }
        self.metrics.nodes_rerendered(rerendered);
        tracing::info!(
            %commit,
            compiled_ms,
            dropped = dropped.len(),
            rerendered,
            took_ms = t.elapsed().as_millis() as u64,
            "boot data: applied revision compiled; changed nodes rendered again"
        );
        rerendered
    }

    /// Drops the in-memory deployments of `nodes`; returns those dropped.
    fn invalidate<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(String, Arc<Entry>)> {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        served.generation += 1;
        nodes
            .into_iter()
            .filter_map(|n| served.nodes.remove_entry(n))
            .collect()
    }

    /// The node's deployment when it is served from memory: no database
    /// read, no blocking. `None` sends the caller to [`BootService::deployment`].
    pub fn cached_deployment(&self, node: &str) -> Option<NodeDeployment> {
        let loaded = self
            .loaded
            .try_lock()
            .ok()
            .and_then(|l| l.as_ref().cloned())?;
        let entry = self
            .served
            .read()
            .ok()
            .and_then(|s| s.nodes.get(node).cloned())?;
        Some(NodeDeployment { entry, loaded })
    }

    /// The node's current deployment, made (or renewed) when its inputs
    /// changed since the last one, read from the database (statuses fresh)
    /// and kept in memory for [`BootService::cached_deployment`]. Fails with
    /// [`BootError::UnknownNode`] when the node is not in the applied design.
    pub fn deployment(&self, node: &str) -> Result<NodeDeployment, BootError> {
        let generation = self
            .served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation;
        let (applied, record) = self.with_store(|s| {
            let applied = s.applied_revision()?;
            let record = s.node(node)?;
            let rev = match &record {
                Some(r) => s.revision(&r.revision)?,
                None => None,
            };
            Ok((applied, record.map(|r| (r, rev))))
        })?;
        let applied = applied.ok_or(BootError::NotServing)?;
        let (node_rec, node_rev) = record.ok_or_else(|| BootError::UnknownNode(node.into()))?;
        let loaded = self.load(&applied.revision.commit)?;
        let idx = *loaded
            .by_name
            .get(node)
            .ok_or_else(|| BootError::UnknownNode(node.into()))?;
        let actions: Vec<(String, bool)> = loaded.targets[idx]
            .iter()
            .map(|&b| {
                (
                    loaded.compiled.name(b).to_string(),
                    loaded.compiled.signaling(b),
                )
            })
            .collect();
        let committed_at = node_rev
            .map(|r| r.revision.committed_at)
            .unwrap_or(applied.revision.committed_at);
        let inputs = DeploymentInputs {
            inputs_hash: &node_rec.inputs_hash,
            design_ref: &node_rec.revision,
            committed_at,
            actions: &actions,
        };
        let (record, actions) =
            self.with_store(|s| s.ensure_deployment(node, &inputs, now(), &mut keys::new_ulid))?;
        // Keep the in-memory entry (and what it rendered) when it is the same
        // deployment; replace it otherwise, unless an invalidation raced us.
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        let entry = match served.nodes.get(node) {
            Some(e) if e.record == record => Arc::new(Entry {
                record,
                actions,
                rendered: e.rendered.clone(),
            }),
            _ => Arc::new(Entry {
                record,
                actions,
                rendered: Default::default(),
            }),
        };
        if served.generation == generation {
            served.nodes.insert(node.to_string(), entry.clone());
        }
        Ok(NodeDeployment { entry, loaded })
    }

    /// The identity key of a deployment.
    pub fn identity_key(&self, d: &DeploymentRecord) -> String {
        self.secret.identity_key(&d.node, &d.deployment)
    }

    /// Checks a presented identity key against a deployment.
    pub fn check_identity_key(&self, d: &DeploymentRecord, presented: &str) -> KeyCheck {
        self.secret
            .check_identity_key(&d.node, &d.deployment, presented)
    }

    /// Checks a key presented for a boot action: its own key, or the
    /// identity key of the node's deployment it belongs to.
    pub fn check_action_key(&self, action: &BootActionRecord, presented: &str) -> KeyCheck {
        let check = match self.secret.check_action_key(&action.action_id, presented) {
            KeyCheck::Wrong => {
                self.secret
                    .check_identity_key(&action.node, &action.deployment, presented)
            }
            other => other,
        };
        // A revoked deployment's keys are wrong from then on.
        match check {
            KeyCheck::Valid if action.status == crate::state::BOOT_ACTION_REVOKED => {
                KeyCheck::Wrong
            }
            other => other,
        }
    }

    /// The nodes of the applied design a filter selects (all without one).
    pub fn select_nodes(
        &self,
        filter: Option<&design::model::NodeFilter>,
    ) -> Result<Vec<String>, BootError> {
        let applied = self
            .with_store(|s| s.applied_revision())?
            .ok_or(BootError::NotServing)?;
        let loaded = self.load(&applied.revision.commit)?;
        Ok(
            filter::select(&loaded.design, loaded.design.effective_nodes(), filter)
                .into_iter()
                .map(|i| loaded.design.effective_nodes()[i].name.clone())
                .collect(),
        )
    }

    /// Starts a new deployment for a node (`deploy_nodes`): new action ids and
    /// keys, whatever its inputs. The previous deployment's actions stay on
    /// record.
    pub fn redeploy(&self, node: &str) -> Result<NodeDeployment, BootError> {
        self.with_store(|s| s.end_deployment(node, false))?;
        self.invalidate([node]);
        self.deployment(node)
    }

    /// Revokes a node's deployment (`destroy_nodes`): its identity and action
    /// keys are refused; a later request makes a new deployment with new keys.
    /// Returns whether there was a deployment to revoke.
    pub fn revoke(&self, node: &str) -> Result<bool, BootError> {
        let ended = self.with_store(|s| s.end_deployment(node, true))?;
        self.invalidate([node]);
        Ok(ended.is_some())
    }

    /// The node's boot data of `kind` for its current deployment: the same
    /// bytes as long as the deployment lasts, rendered once.
    pub fn render(
        &self,
        deployment: &NodeDeployment,
        kind: BootDataKind,
    ) -> Result<Arc<Rendered>, BootError> {
        let slot = &deployment.entry.rendered[kind.index()];
        if let Some(r) = slot.get() {
            self.metrics.boot_data_cache_hit();
            return Ok(r.clone());
        }
        let t = std::time::Instant::now();
        let bytes = render_with(
            &deployment.loaded,
            deployment,
            &self.secret,
            &self.cfg.report_url,
            kind,
        )?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let r = Arc::new(Rendered {
            bytes: Bytes::from(bytes),
            etag: format!("\"{sha256}\""),
            sha256,
        });
        self.metrics.boot_data_rendered(kind.word(), t.elapsed());
        // Two first requests racing both render; the first stored wins, so
        // every response of the deployment carries the same bytes.
        Ok(slot.get_or_init(|| r).clone())
    }

    /// The cached boot data of `kind`, when it was rendered already.
    pub fn rendered(
        &self,
        deployment: &NodeDeployment,
        kind: BootDataKind,
    ) -> Option<Arc<Rendered>> {
        let r = deployment.entry.rendered[kind.index()].get().cloned();
        if r.is_some() {
            self.metrics.boot_data_cache_hit();
        }
        r
    }

    /// One boot action by id.
    pub fn action(&self, action_id: &str) -> Result<Option<BootActionRecord>, BootError> {
        self.with_store(|s| s.boot_action(action_id))
    }

    /// The details reported for a boot action.
    pub fn details(&self, action_id: &str) -> Result<Vec<BootActionDetail>, BootError> {
        self.with_store(|s| s.boot_action_details(action_id))
    }

    /// Hands a status report to the report writer; the receiver gets its
    /// outcome once it is committed (durable). The caller waits without
    /// holding a thread, so many nodes reporting at once cost no threads.
    pub fn submit_report(
        &self,
        action_id: &str,
        status: Option<&str>,
        details: &[BootActionDetail],
    ) -> Result<tokio::sync::oneshot::Receiver<Result<ReportOutcome, BootError>>, BootError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send_report(ReportJob {
            action_id: action_id.to_string(),
            status: status.map(str::to_string),
            details: details.to_vec(),
            reply: Reply::Async(reply),
        })?;
        Ok(answer)
    }

    fn send_report(&self, job: ReportJob) -> Result<(), BootError> {
        let mut w = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            let path = self.with_store(|s| Ok(s.path().to_string()))?;
            *w = Some(spawn_report_writer(std::path::Path::new(&path))?);
        }
        let tx = w.as_ref().expect("writer just started");
        if tx.send(job).is_err() {
            *w = None;
            return Err(writer_gone());
        }
        Ok(())
    }

    /// Records a status report; returns once it is committed (durable).
    /// Reports arriving together share one transaction and one sync (group
    /// commit) on the report writer's own connection, so a boot storm's
    /// reports cost a few syncs instead of one each.
    pub fn report(
        &self,
        action_id: &str,
        status: Option<&str>,
        details: &[BootActionDetail],
    ) -> Result<ReportOutcome, BootError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.send_report(ReportJob {
            action_id: action_id.to_string(),
            status: status.map(str::to_string),
            details: details.to_vec(),
            reply: Reply::Blocking(reply),
        })?;
        answer.recv().map_err(|_| writer_gone())?
    }
}

/// The error of a report the writer could not take or answer.
pub fn writer_gone() -> BootError {
    BootError::State(StateError::Sql(
        "the boot-action report writer stopped".into(),
    ))
}

/// Where a report's outcome goes.
enum Reply {
    Blocking(std::sync::mpsc::SyncSender<Result<ReportOutcome, BootError>>),
    Async(tokio::sync::oneshot::Sender<Result<ReportOutcome, BootError>>),
}

impl Reply {
    fn send(self, r: Result<ReportOutcome, BootError>) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// A report waiting for the writer, and where its outcome goes.
struct ReportJob {
    action_id: String,
    status: Option<String>,
    details: Vec<BootActionDetail>,
    reply: Reply,
}

/// Most reports committed in one transaction.
const REPORT_BATCH: usize = 512;

/// Starts the report writer on its own connection to the database at
/// `path`: it takes whatever reports are waiting (up to [`REPORT_BATCH`]),
/// commits them in one transaction, answers each, and repeats; it ends when
/// the service is dropped.
fn spawn_report_writer(
    path: &std::path::Path,
) -> Result<std::sync::mpsc::Sender<ReportJob>, BootError> {
    let mut store = Store::open(path)?;
    let (tx, rx) = std::sync::mpsc::channel::<ReportJob>();
    std::thread::Builder::new()
        .name("report-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < REPORT_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let reports: Vec<crate::state::Report<'_>> = jobs
                    .iter()
                    .map(|j| crate::state::Report {
                        action_id: &j.action_id,
                        status: j.status.as_deref(),
                        details: &j.details,
                    })
                    .collect();
                let result = store.report_boot_actions(&reports, now());
                drop(reports);
                match result {
                    Ok(outcomes) => {
                        for (j, o) in jobs.into_iter().zip(outcomes) {
                            j.reply.send(o.map_err(BootError::from));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, reports = jobs.len(), "recording boot-action reports failed");
                        for j in jobs {
                            j.reply
                                .send(Err(BootError::State(StateError::Sql(e.to_string()))));
                        }
                    }
                }
            }
        })
        .map_err(|e| BootError::State(StateError::Sql(format!("starting the report writer: {e}"))))?;
    Ok(tx)
}

/// Compiles a valid design for rendering: nodes, targets, templates.
fn compile(commit: &str, design: Design) -> Result<Loaded, BootError> {
    let nodes = design.effective_nodes();
    let mut targets = vec![Vec::new(); nodes.len()];
    for (bi, ba) in design.boot_actions.iter().enumerate() {
        for n in filter::select(&design, nodes, ba.data.node_filter.as_ref()) {
            targets[n].push(bi);
        }
    }
    let by_name = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    let compiled = CompiledActions::compile(&design)?;
    Ok(Loaded {
        commit: commit.to_string(),
        design,
        by_name,
        targets,
        compiled,
    })
}

/// Renders one node's boot data with its deployment's action values.
fn render_with(
    loaded: &Loaded,
    d: &NodeDeployment,
    secret: &Secret,
    report_url: &str,
    kind: BootDataKind,
) -> Result<Vec<u8>, BootError> {
    let idx = *loaded
        .by_name
        .get(&d.record().node)
        .ok_or_else(|| BootError::UnknownNode(d.record().node.clone()))?;
    let node = &loaded.design.effective_nodes()[idx];
    let ctx = ContextBuilder::new(&loaded.design).node(node);
    let actions: Vec<NodeAction> = loaded.targets[idx]
        .iter()
        .filter_map(|&b| {
            let name = loaded.compiled.name(b);
            let rec = d.actions().iter().find(|a| a.action == name)?;
            Some(NodeAction {
                index: b,
                values: ActionValues {
                    action_id: rec.action_id.clone(),
                    action_key: secret.action_key(&rec.action_id),
                    report_url: report_url.to_string(),
                    design_ref: d.record().design_ref.clone(),
                },
            })
        })
        .collect();
    let mtime = d.record().committed_at.max(0) as u64;
    Ok(bootdata::render_node(
        &loaded.compiled,
        &ctx,
        &actions,
        kind,
        mtime,
    )?)
}

/// Renders a node's boot data offline (`slipway render`): `actions` gives
/// the action values per BootAction name; a name missing gets placeholder
/// values (`ActionValues::placeholder`) with `design_ref` and `report_url` set.
pub fn render_offline(
    design: &Design,
    node: &str,
    kind: BootDataKind,
    mtime: u64,
    design_ref: &str,
    report_url: &str,
    action_values: &dyn Fn(&str) -> Option<ActionValues>,
) -> Result<Vec<u8>, BootError> {
    let nodes = design.effective_nodes();
    let idx = nodes
        .iter()
        .position(|n| n.name == node)
        .ok_or_else(|| BootError::UnknownNode(node.into()))?;
    let compiled = CompiledActions::compile(design)?;
    let actions: Vec<NodeAction> = design
        .boot_actions
        .iter()
        .enumerate()
        .filter(|(_, ba)| {
            filter::select(design, nodes, ba.data.node_filter.as_ref()).contains(&idx)
        })
        .map(|(b, ba)| NodeAction {
            index: b,
            values: action_values(&ba.name).unwrap_or_else(|| ActionValues {
                design_ref: design_ref.to_string(),
                report_url: report_url.to_string(),
                ..ActionValues::placeholder()
            }),
        })
        .collect();
    let ctx = ContextBuilder::new(design).node(&nodes[idx]);
    Ok(bootdata::render_node(
        &compiled, &ctx, &actions, kind, mtime,
    )?)
}

/// What [`render_site`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteRender {
    /// Nodes rendered.
    pub nodes: usize,
    /// Bytes of boot data produced, all nodes.
    pub bytes: u64,
}

/// Renders every node's boot data of `kind` from a valid design, the work a
/// server does when every node of a site asks once: compile the templates,
/// then per node derive its action keys (HMAC with `secret`) and render and
/// pack its data, nodes in parallel. Action ids are placeholders numbered per
/// node. Used by the site benchmark; the server renders the same way per node.
pub fn render_site(
    design: &Design,
    secret: &Secret,
    report_url: &str,
    kind: BootDataKind,
    mtime: u64,
) -> Result<SiteRender, BootError> {
    use rayon::prelude::*;
    let nodes = design.effective_nodes();
    let mut targets = vec![Vec::new(); nodes.len()];
    for (bi, ba) in design.boot_actions.iter().enumerate() {
        for n in filter::select(design, nodes, ba.data.node_filter.as_ref()) {
            targets[n].push(bi);
        }
    }
    let compiled = CompiledActions::compile(design)?;
    let bytes = nodes
        .par_iter()
        .enumerate()
        .map(|(i, node)| {
            let ctx = ContextBuilder::new(design).node(node);
            let actions: Vec<NodeAction> = targets[i]
                .iter()
                .map(|&b| {
                    let action_id = format!("{:026}", i * 64 + b);
                    NodeAction {
                        index: b,
                        values: ActionValues {
                            action_key: secret.action_key(&action_id),
                            action_id,
                            report_url: report_url.to_string(),
                            design_ref: "bench".to_string(),
                        },
                    }
                })
                .collect();
            bootdata::render_node(&compiled, &ctx, &actions, kind, mtime).map(|b| b.len() as u64)
        })
        .collect::<Result<Vec<u64>, _>>()?;
    Ok(SiteRender {
        nodes: nodes.len(),
        bytes: bytes.iter().sum(),
    })
}
