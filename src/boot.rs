//! Serving boot data (DESIGN §4–5): deployments of the applied revision's
//! nodes, their keys, rendered boot data and status reports.
//!
//! [`BootService`] ties the pieces together without owning any of their
//! libraries: the design of the applied commit is read through
//! [`crate::source`] and validated once per commit, its templates compiled
//! once ([`CompiledActions`]), deployments kept in [`crate::state`], keys
//! derived by [`crate::keys`]. Rendered bytes are cached per (node,
//! deployment, kind) until a new revision is applied.
//!
//! Threads and locks (issue 10): the applied design is loaded by the
//! reconciler ([`BootService::load_applied`], on its own thread), never on a
//! request's; a request that arrives first waits for it without a thread
//! ([`BootService::wait_ready`], bounded). No lock of the service is held
//! while waiting on git, validation, rendering or another thread pool: the
//! served design and the in-memory deployments change together under one
//! short write lock. Every other method blocks (SQLite, rendering): call
//! them off the async runtime.
//!
//! A revision is applied together with the deployments of the nodes it
//! changes ([`BootService::prepare_revision`]): their ids are chosen and
//! their boot data rendered with the very ids and keys it will be served
//! with before anything is written, so a revision whose templates fail for
//! real ids is refused instead of answering 500 to its nodes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::design::{self, filter, Design, Message};
use crate::keys::{self, KeyCheck, Secret};
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::render::bootdata::{self, BootDataKind, CompiledActions, NodeAction, RenderError};
use crate::render::context::{ActionValues, ContextBuilder};
use crate::source::Repo;
use crate::state::{
    BootActionDetail, BootActionRecord, DatabaseFile, DeploymentInputs, DeploymentRecord,
    NewDeployment, ReportOutcome, Snapshot, StateError, Store,
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
    /// Byte caps the applied revision was read within, so a restart reads it
    /// with the caps it was applied under.
    pub limits: design::Limits,
}

/// Why a boot request failed.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// No applied revision is being served yet.
    #[error("no applied revision is being served yet")]
    NotServing,
    /// The applied revision is being read (after a start) or replaced by the
    /// one just applied; it is a matter of moments.
    #[error("the applied revision {commit} is being loaded; retry shortly")]
    Loading {
        /// The commit being loaded.
        commit: String,
    },
    /// The applied revision's design cannot be read or validated again, so
    /// its boot data cannot be rendered; what the database holds is served.
    #[error("the applied revision {commit} cannot be served: {reason}")]
    Unavailable {
        /// The applied commit.
        commit: String,
        /// Why (repository missing, object unreadable, no longer valid).
        reason: String,
    },
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
    /// A new deployment's boot data does not render with its own ids and
    /// keys; it was not made.
    #[error("boot data of node {node} does not render with a new deployment's action ids and keys, so none was made: {error}")]
    DoesNotRender {
        /// The node.
        node: String,
        /// What failed.
        error: bootdata::RenderError,
    },
}

/// A node's deployment and its boot actions. Cheap to clone: it shares the
/// in-memory entry that also holds the deployment's rendered boot data.
#[derive(Clone)]
pub struct NodeDeployment {
    entry: Arc<Entry>,
    /// The design the entry is served with (`None` while none is loaded).
    loaded: Option<Arc<Loaded>>,
}

/// A deployment as served from memory, with its rendered boot data (one
/// slot per kind, filled on first request or by the pass that made it).
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
            .field("commit", &self.loaded.as_ref().map(|l| &l.commit))
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

impl Rendered {
    fn of(bytes: Vec<u8>) -> Arc<Rendered> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Arc::new(Rendered {
            bytes: Bytes::from(bytes),
            etag: format!("\"{sha256}\""),
            sha256,
        })
    }
}

/// What rendering needs of a design: nodes by name, targets, templates.
struct Index {
    by_name: HashMap<String, usize>,
    /// Node index to the indices of the BootActions that target it.
    targets: Vec<Vec<usize>>,
    compiled: CompiledActions,
}

/// The design of one applied commit, compiled for rendering.
struct Loaded {
    commit: String,
    design: Design,
    index: Index,
}

/// Which design is being served.
#[derive(Clone)]
enum Serving {
    /// No applied revision (yet).
    Nothing,
    /// The applied revision `commit` is being read after a start.
    Loading(String),
    /// The applied revision, ready.
    Ready(Arc<Loaded>),
    /// The applied revision cannot be read or validated again.
    Unavailable { commit: String, reason: String },
}

/// What the service serves, for health checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServingState {
    /// No applied revision.
    Nothing,
    /// The applied revision is being read after a start.
    Loading {
        /// Its commit.
        commit: String,
    },
    /// The applied revision's design is loaded.
    Ready {
        /// Its commit.
        commit: String,
    },
    /// The applied revision cannot be served (boot data answers 503).
    Unavailable {
        /// Its commit.
        commit: String,
        /// Why.
        reason: String,
    },
}

/// See the module docs.
pub struct BootService {
    cfg: BootConfig,
    secret: Secret,
    /// The service's own connection; held for single queries only, never
    /// across rendering or another lock.
    store: Mutex<Store>,
    served: RwLock<Served>,
    /// Bumped whenever `served.design` changes, for [`BootService::wait_ready`].
    changes: tokio::sync::watch::Sender<u64>,
    metrics: Arc<Metrics>,
    /// The database file's identity; writes are refused once it changed.
    db: Option<Arc<DatabaseFile>>,
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

/// The design being served and the deployments served from memory, by
/// node; they change together, under one write lock. An entry is valid as
/// long as its node's inputs are unchanged: an applied revision drops the
/// entries of the nodes it affects (and only those), a redeploy or revoke
/// drops the node's. `generation` counts those drops, so a database read that
/// raced one is not cached.
struct Served {
    generation: u64,
    design: Serving,
    nodes: HashMap<String, Arc<Entry>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Boot data rendered for a new deployment (the kinds its node had asked
/// for), by kind.
type RenderedKinds = [Option<Arc<Rendered>>; 4];

/// A valid revision made ready to serve before it is applied (see
/// [`BootService::prepare_revision`]).
pub struct PreparedRevision {
    commit: String,
    index: Index,
    /// The deployments to write with the revision.
    deployments: Vec<NewDeployment>,
    /// For the nodes being served from memory: the index of their new
    /// deployment and its boot data, rendered.
    rendered: Vec<(usize, RenderedKinds)>,
}

impl PreparedRevision {
    /// The deployments to write in the revision's apply transaction.
    pub fn deployments(&self) -> &[NewDeployment] {
        &self.deployments
    }
}

impl std::fmt::Debug for PreparedRevision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRevision")
            .field("commit", &self.commit)
            .field("deployments", &self.deployments.len())
            .finish()
    }
}

/// Message code of a revision whose boot data does not render with the
/// deployments' real action ids and keys (docs/validation.md).
pub const DOES_NOT_RENDER: &str = "SW396";

impl BootService {
    /// A service using its own database connection `store`. It serves
    /// nothing until [`BootService::load_applied`] or
    /// [`BootService::install`] gives it a design.
    pub fn new(
        cfg: BootConfig,
        secret: Secret,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> BootService {
        BootService {
            cfg,
            secret,
            store: Mutex::new(store),
            served: RwLock::new(Served {
                generation: 0,
                design: Serving::Nothing,
                nodes: HashMap::new(),
            }),
            changes: tokio::sync::watch::channel(0).0,
            metrics,
            db: None,
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

    /// Refuses writes (deployments, reports) once `db` no longer names the
    /// file the server opened.
    pub fn with_database_file(mut self, db: Arc<DatabaseFile>) -> BootService {
        self.db = Some(db);
        self
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

    /// `Ok` while the database file is the one the server opened (always,
    /// without one given); [`StateError::Replaced`] once it is not.
    pub fn check_database(&self) -> Result<(), BootError> {
        match &self.db {
            Some(db) => Ok(db.check()?),
            None => Ok(()),
        }
    }

    /// Why the database can no longer be written, once a check found it
    /// removed or replaced.
    pub fn database_problem(&self) -> Option<String> {
        self.db.as_ref().and_then(|d| d.problem())
    }

    /// What is being served, for health checks.
    pub fn serving(&self) -> ServingState {
        match &self.read().design {
            Serving::Nothing => ServingState::Nothing,
            Serving::Loading(c) => ServingState::Loading { commit: c.clone() },
            Serving::Ready(l) => ServingState::Ready {
                commit: l.commit.clone(),
            },
            Serving::Unavailable { commit, reason } => ServingState::Unavailable {
                commit: commit.clone(),
                reason: reason.clone(),
            },
        }
    }

    /// Whether the design of `commit` is the one served.
    pub fn serves(&self, commit: &str) -> bool {
        matches!(&self.read().design, Serving::Ready(l) if l.commit == commit)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Served> {
        self.served.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Served> {
        self.served.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the served design (under the write lock, with `edit` on the
    /// nodes served from memory) and wakes whoever waits for it. The old
    /// design is dropped after the lock is released.
    fn set_design(&self, design: Serving, edit: impl FnOnce(&mut Served)) {
        let old = {
            let mut served = self.write();
            served.generation += 1;
            edit(&mut served);
            std::mem::replace(&mut served.design, design)
        };
        drop(old);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Marks the applied revision `commit` as being read again (at start),
    /// so requests wait for it instead of failing.
    pub fn begin_loading(&self, commit: &str) {
        self.set_design(Serving::Loading(commit.to_string()), |_| {});
    }

    /// Marks that there is no applied revision to serve.
    pub fn serve_nothing(&self) {
        if !matches!(self.read().design, Serving::Nothing) {
            self.set_design(Serving::Nothing, |s| s.nodes.clear());
        }
    }

    /// Waits (without a thread, at most `bound`) while the applied revision
    /// is being loaded. Requests call it before work that needs the design.
    pub async fn wait_ready(&self, bound: Duration) {
        // Subscribed before looking, so a change in between is not missed.
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + bound;
        while matches!(self.read().design, Serving::Loading(_)) {
            // Past the bound (or the service gone), the caller answers 503.
            let Ok(Ok(())) = tokio::time::timeout_at(deadline, changes.changed()).await else {
                return;
            };
        }
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

    /// Reads the applied revision `commit` again (git, validation with
    /// `cache`, compile) and serves it. For the reconciler (at start, or
    /// while it could not be read) and the offline `slipway node-key`;
    /// never on a request's thread. No lock is held while it works; on
    /// failure the revision is marked unavailable (health says why) and the
    /// error returned.
    pub fn load_applied(
        &self,
        commit: &str,
        cache: Option<&mut design::ValidationCache>,
    ) -> Result<(), BootError> {
        let t = std::time::Instant::now();
        match read_design(&self.cfg, commit, cache) {
            Ok(loaded) => {
                tracing::info!(
                    %commit,
                    took_ms = t.elapsed().as_millis() as u64,
                    "boot data: applied revision read again and compiled"
                );
                let loaded = Arc::new(loaded);
                // A node served from memory keeps its entry: its deployment
                // was made from this very revision's inputs.
                self.set_design(Serving::Ready(loaded), |_| {});
                Ok(())
            }
            Err(e) => {
                let reason = match &e {
                    BootError::Revision { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                tracing::error!(%commit, %reason, "boot data: the applied revision cannot be served; serving what the database holds");
                self.set_design(
                    Serving::Unavailable {
                        commit: commit.to_string(),
                        reason: reason.clone(),
                    },
                    |_| {},
                );
                Err(BootError::Unavailable {
                    commit: commit.to_string(),
                    reason,
                })
            }
        }
    }

    /// Makes a valid revision ready to serve before it is applied: a new
    /// deployment (new action ids and keys) for every node whose boot-data
    /// inputs the plan changes, and that node's boot data rendered with
    /// exactly those ids and keys (every asset of every BootAction that
    /// targets it; the kinds it had asked for kept as served bytes). Nodes
    /// are rendered in parallel; nothing is written and no lock is held.
    /// `Err` lists the SW396 messages (node, BootAction, asset, template
    /// error) when any node's boot data fails: the revision must then be
    /// recorded invalid.
    pub fn prepare_revision(
        &self,
        commit: &str,
        committed_at: i64,
        design: &Design,
        plan: &Plan,
        applied: &Snapshot,
    ) -> Result<PreparedRevision, Vec<Message>> {
        let index = match Index::build(design) {
            Ok(i) => i,
            Err(e) => return Err(vec![compile_failure(design, &e)]),
        };
        let at = now();
        // A node whose stored inputs are unchanged (its row rewritten for
        // another reason) keeps the deployment made from them.
        let changed: Vec<&crate::plan::NodeWrite> = plan
            .node_writes
            .iter()
            .filter(|n| applied.nodes.get(&n.name) != Some(&n.inputs_hash))
            .filter(|n| index.by_name.contains_key(&n.name))
            .collect();
        // The kinds each changed node had asked for, so its next request is
        // answered from memory.
        let asked: HashMap<&str, Vec<BootDataKind>> = {
            let served = self.read();
            changed
                .iter()
                .filter_map(|n| {
                    let e = served.nodes.get(&n.name)?;
                    let kinds: Vec<BootDataKind> = BootDataKind::ALL
                        .into_iter()
                        .filter(|k| e.rendered[k.index()].get().is_some())
                        .collect();
                    Some((n.name.as_str(), kinds))
                })
                .collect()
        };
        let results: Vec<Result<(NewDeployment, RenderedKinds), (String, RenderError)>> = changed
            .par_iter()
            .map(|n| {
                let idx = index.by_name[&n.name];
                let actions = index.actions_of(idx);
                let inputs = DeploymentInputs {
                    inputs_hash: &n.inputs_hash,
                    design_ref: commit,
                    committed_at,
                    actions: &actions,
                };
                let new = crate::state::new_deployment(&n.name, &inputs, at, &mut keys::new_ulid);
                let kinds = asked.get(n.name.as_str()).map_or(&[][..], Vec::as_slice);
                let rendered = self
                    .render_new(design, &index, &new, kinds)
                    .map_err(|e| (n.name.clone(), e))?;
                Ok((new, rendered))
            })
            .collect();
        let mut deployments = Vec::with_capacity(results.len());
        let mut rendered = Vec::new();
        let mut failures = Vec::new();
        for r in results {
            match r {
                Ok((new, kinds)) => {
                    if kinds.iter().any(Option::is_some) {
                        rendered.push((deployments.len(), kinds));
                    }
                    deployments.push(new);
                }
                Err(f) => failures.push(f),
            }
        }
        if !failures.is_empty() {
            return Err(render_failure_messages(design, failures));
        }
        Ok(PreparedRevision {
            commit: commit.to_string(),
            index,
            deployments,
            rendered,
        })
    }

    /// Renders a new deployment's boot data: the kinds in `keep` as served
    /// bytes, and every unit and file asset at least once (the tarball and
    /// package list around them cannot fail), so any template failure shows.
    fn render_new(
        &self,
        design: &Design,
        index: &Index,
        new: &NewDeployment,
        keep: &[BootDataKind],
    ) -> Result<RenderedKinds, RenderError> {
        let mut rendered: RenderedKinds = Default::default();
        for &kind in keep {
            let t = std::time::Instant::now();
            let bytes = render_with(
                design,
                index,
                &new.record,
                &new.actions,
                &self.secret,
                &self.cfg.report_url,
                kind,
            )
            .map_err(|e| match e {
                BootError::Render(r) => r,
                other => RenderError::Archive(other.to_string()),
            })?;
            self.metrics.boot_data_rendered(kind.word(), t.elapsed());
            rendered[kind.index()] = Some(Rendered::of(bytes));
        }
        let covered = keep.contains(&BootDataKind::All)
            || (keep.contains(&BootDataKind::Units) && keep.contains(&BootDataKind::Files));
        if !covered {
            check_assets(
                design,
                index,
                &new.record,
                &new.actions,
                &self.secret,
                &self.cfg.report_url,
            )?;
        }
        Ok(rendered)
    }

    /// Serves the revision just applied (with the deployments
    /// [`BootService::prepare_revision`] made for it): the design, and for
    /// the nodes it changed or removed (`changed`), their in-memory entries
    /// dropped and, for those that were being served, replaced by their new
    /// deployment with the boot data already rendered. One short write lock.
    /// Returns how many nodes were rendered again.
    pub fn install<'a>(
        &self,
        prepared: PreparedRevision,
        mut design: Design,
        changed: impl IntoIterator<Item = &'a str>,
    ) -> usize {
        // Stored now; the served design needs only its typed data.
        design.release_canonical();
        let PreparedRevision {
            commit,
            index,
            deployments,
            rendered,
        } = prepared;
        let mut fresh = Vec::with_capacity(rendered.len());
        // `rendered` is in deployment order.
        let mut rendered = rendered.into_iter().peekable();
        for (i, new) in deployments.into_iter().enumerate() {
            let Some((_, kinds)) = rendered.next_if(|(j, _)| *j == i) else {
                continue;
            };
            let entry = Entry {
                record: new.record,
                actions: new.actions,
                rendered: kinds.map(|r| {
                    let slot = OnceLock::new();
                    if let Some(r) = r {
                        let _ = slot.set(r);
                    }
                    slot
                }),
            };
            fresh.push((entry.record.node.clone(), Arc::new(entry)));
        }
        let rerendered = fresh.len();
        let loaded = Arc::new(Loaded {
            commit: commit.clone(),
            design,
            index,
        });
        let changed: Vec<&str> = changed.into_iter().collect();
        let mut dropped = 0;
        self.set_design(Serving::Ready(loaded), |served| {
            for n in &changed {
                dropped += usize::from(served.nodes.remove(*n).is_some());
            }
            served.nodes.extend(fresh);
        });
        self.metrics.nodes_rerendered(rerendered);
        tracing::info!(
            %commit,
            dropped,
            rerendered,
            "boot data: applied revision served; changed nodes' deployments replaced"
        );
        rerendered
    }

    /// Drops the in-memory deployments of `nodes`.
    fn invalidate<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) {
        let mut served = self.write();
        served.generation += 1;
        for n in nodes {
            served.nodes.remove(n);
        }
    }

    /// The node's deployment when it is served from memory: no database
    /// read, no blocking. `None` sends the caller to [`BootService::deployment`].
    pub fn cached_deployment(&self, node: &str) -> Option<NodeDeployment> {
        let served = self.served.read().ok()?;
        let entry = served.nodes.get(node)?.clone();
        let loaded = match &served.design {
            Serving::Ready(l) => Some(l.clone()),
            _ => None,
        };
        Some(NodeDeployment { entry, loaded })
    }

    /// The design being served, or why none is.
    fn loaded(&self) -> Result<Arc<Loaded>, BootError> {
        serving_error(&self.read().design)
    }

    /// The node's current deployment, read from the database (statuses
    /// fresh) and kept in memory for [`BootService::cached_deployment`].
    /// A node without one (never deployed, or revoked) gets a new one, made
    /// only if its boot data renders with the new ids and keys. Fails with
    /// [`BootError::UnknownNode`] when the node is not in the applied design.
    /// While the design cannot be served, an existing deployment is still
    /// answered from the database.
    pub fn deployment(&self, node: &str) -> Result<NodeDeployment, BootError> {
        let (generation, design) = {
            let served = self.read();
            (served.generation, served.design.clone())
        };
        if let Serving::Nothing = design {
            return Err(BootError::NotServing);
        }
        let (applied, record, current) = self.with_store(|s| {
            let applied = s.applied_revision()?;
            let record = s.node(node)?;
            let current = s.deployment_with_actions(node)?;
            Ok((applied, record, current))
        })?;
        let applied = applied.ok_or(BootError::NotServing)?;
        let node_rec = record.ok_or_else(|| BootError::UnknownNode(node.into()))?;
        let (loaded, why_not) = match &design {
            Serving::Ready(l) if l.commit == applied.revision.commit => (Some(l.clone()), None),
            // Just applied, not yet served: a matter of moments.
            Serving::Ready(_) => (
                None,
                Some(BootError::Loading {
                    commit: applied.revision.commit.clone(),
                }),
            ),
            other => (None, serving_error(other).err()),
        };
        let (record, actions) = match current {
            Some((d, a)) if d.inputs_hash == node_rec.inputs_hash => (d, a),
            _ => {
                let Some(loaded) = loaded.clone() else {
                    return Err(why_not.unwrap_or(BootError::NotServing));
                };
                let new = self.checked_deployment(&loaded, &node_rec, &applied)?;
                self.check_database()?;
                let adopted = self.with_store(|s| s.adopt_deployment(&new))?;
                self.check_database()?;
                adopted
            }
        };
        // Keep the in-memory entry (and what it rendered) when it is the same
        // deployment; replace it otherwise, unless an invalidation raced us.
        let mut served = self.write();
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

    /// A new deployment of the node `node_rec` (new ids, not written),
    /// provided its boot data renders with those ids and keys.
    fn checked_deployment(
        &self,
        loaded: &Loaded,
        node_rec: &crate::state::NodeRecord,
        applied: &crate::state::RevisionRecord,
    ) -> Result<NewDeployment, BootError> {
        let node = node_rec.name.as_str();
        let idx = loaded.index.node_index(node)?;
        // The commit that last changed the node's inputs gives design_ref
        // and the tarballs' mtime.
        let committed_at = self
            .with_store(|s| s.revision(&node_rec.revision))?
            .map_or(applied.revision.committed_at, |r| r.revision.committed_at);
        let actions = loaded.index.actions_of(idx);
        let inputs = DeploymentInputs {
            inputs_hash: &node_rec.inputs_hash,
            design_ref: &node_rec.revision,
            committed_at,
            actions: &actions,
        };
        let new = crate::state::new_deployment(node, &inputs, now(), &mut keys::new_ulid);
        check_assets(
            &loaded.design,
            &loaded.index,
            &new.record,
            &new.actions,
            &self.secret,
            &self.cfg.report_url,
        )
        .map_err(|error| BootError::DoesNotRender {
            node: node.to_string(),
            error,
        })?;
        Ok(new)
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

    /// Checks a presented key for a boot action: its own key, or the
    /// identity key of the node's deployment it belongs to. The keys of an
    /// ended deployment (redeployed, revoked, removed, changed) check as they
    /// always did; the caller refuses the action itself (`ended`), with a
    /// message saying why.
    pub fn check_action_key(&self, action: &BootActionRecord, presented: &str) -> KeyCheck {
        match self.secret.check_action_key(&action.action_id, presented) {
            KeyCheck::Wrong => {
                self.secret
                    .check_identity_key(&action.node, &action.deployment, presented)
            }
            other => other,
        }
    }

    /// The nodes of the applied design a filter selects (all without one).
    pub fn select_nodes(
        &self,
        filter: Option<&design::model::NodeFilter>,
    ) -> Result<Vec<String>, BootError> {
        let loaded = self.loaded()?;
        Ok(
            filter::select(&loaded.design, loaded.design.effective_nodes(), filter)
                .into_iter()
                .map(|i| loaded.design.effective_nodes()[i].name.clone())
                .collect(),
        )
    }

    /// Starts a new deployment for a node (`deploy_nodes`): new action ids and
    /// keys, whatever its inputs, made only if the node's boot data renders
    /// with them (otherwise the current deployment stays). The previous
    /// deployment's actions stay on record, ended: their keys are refused.
    pub fn redeploy(&self, node: &str) -> Result<NodeDeployment, BootError> {
        let loaded = self.loaded()?;
        let (applied, node_rec) =
            self.with_store(|s| Ok((s.applied_revision()?, s.node(node)?)))?;
        let applied = applied.ok_or(BootError::NotServing)?;
        if applied.revision.commit != loaded.commit {
            return Err(BootError::Loading {
                commit: applied.revision.commit,
            });
        }
        let node_rec = node_rec.ok_or_else(|| BootError::UnknownNode(node.into()))?;
        let new = self.checked_deployment(&loaded, &node_rec, &applied)?;
        self.check_database()?;
        self.with_store(|s| s.replace_deployment(&new))?;
        self.check_database()?;
        self.invalidate([node]);
        self.deployment(node)
    }

    /// Revokes a node's deployment (`destroy_nodes`): its identity and action
    /// keys are refused; a later request makes a new deployment with new keys.
    /// Returns whether there was a deployment to revoke.
    pub fn revoke(&self, node: &str) -> Result<bool, BootError> {
        self.check_database()?;
        let ended = self.with_store(|s| s.end_deployment(node, true))?;
        self.invalidate([node]);
        self.check_database()?;
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
        let loaded = match &deployment.loaded {
            Some(l) => l.clone(),
            None => self.loaded()?,
        };
        let t = std::time::Instant::now();
        let bytes = render_with(
            &loaded.design,
            &loaded.index,
            deployment.record(),
            deployment.actions(),
            &self.secret,
            &self.cfg.report_url,
            kind,
        )?;
        let r = Rendered::of(bytes);
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
            *w = Some(spawn_report_writer(
                std::path::Path::new(&path),
                self.db.clone(),
            )?);
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

/// The design of `serving`, or the error a request gets without one.
fn serving_error(serving: &Serving) -> Result<Arc<Loaded>, BootError> {
    match serving {
        Serving::Ready(l) => Ok(l.clone()),
        Serving::Nothing => Err(BootError::NotServing),
        Serving::Loading(c) => Err(BootError::Loading { commit: c.clone() }),
        Serving::Unavailable { commit, reason } => Err(BootError::Unavailable {
            commit: commit.clone(),
            reason: reason.clone(),
        }),
    }
}

/// Reads, validates and compiles the design of `commit`.
fn read_design(
    cfg: &BootConfig,
    commit: &str,
    cache: Option<&mut design::ValidationCache>,
) -> Result<Loaded, BootError> {
    let err = |message: String| BootError::Revision {
        commit: commit.to_string(),
        message,
    };
    let repo = Repo::discover(&cfg.repo).map_err(|e| err(e.to_string()))?;
    let files = repo
        .design_files_within(commit, cfg.design_dir.as_deref(), &cfg.limits)
        .map_err(|e| err(e.to_string()))?;
    drop(repo);
    let v = match cache {
        Some(c) => crate::validate_cached(&files, c),
        None => crate::validate(&files),
    };
    drop(files);
    let mut design = match v.design {
        Some(d) if v.messages.iter().all(|m| m.level != design::Level::Error) => d,
        _ => {
            return Err(err(format!(
                "it no longer validates ({} error(s)); see `slipway validate --rev {commit}`",
                v.error_count()
            )))
        }
    };
    design.release_canonical();
    let index = Index::build(&design).map_err(|e| err(e.to_string()))?;
    Ok(Loaded {
        commit: commit.to_string(),
        design,
        index,
    })
}

/// The SW396 message of a design whose templates cannot even be compiled
/// for serving (validation's SW392 normally finds it first).
fn compile_failure(design: &Design, e: &RenderError) -> Message {
    let m = Message::error(
        DOES_NOT_RENDER,
        format!("boot data cannot be prepared for serving: {e}"),
        "Fix the BootAction so its templates compile and its permissions parse.",
    );
    match e {
        RenderError::Asset { action, .. } => {
            match design.boot_actions.iter().find(|b| &b.name == action) {
                Some(ba) => design.msg_at(m, ba.doc, "/assets"),
                None => m,
            }
        }
        RenderError::Archive(_) => m,
    }
}

/// One SW396 message per (BootAction, asset, error), naming the first
/// failing node and counting the others, at the asset's line.
fn render_failure_messages(design: &Design, failures: Vec<(String, RenderError)>) -> Vec<Message> {
    // (action, asset, error without the node) -> (nodes, sorted)
    let mut grouped: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for (node, e) in failures {
        let key = match e {
            RenderError::Asset {
                action,
                asset,
                message,
            } => {
                let prefix = format!("rendering for node {node}: ");
                let message = message
                    .strip_prefix(&prefix)
                    .unwrap_or(&message)
                    .to_string();
                (action, asset, message)
            }
            RenderError::Archive(m) => (String::new(), String::new(), m),
        };
        grouped.entry(key).or_default().push(node);
    }
    grouped
        .into_iter()
        .map(|((action, asset, error), mut nodes)| {
            nodes.sort();
            let others = match nodes.len() {
                1 => String::new(),
                n => format!(" (and {} more nodes)", n - 1),
            };
            let m = Message::error(
                DOES_NOT_RENDER,
                format!(
                    "BootAction {action}: asset {asset} does not render for node {}{others} with the action ids and keys of its deployment: {error}",
                    nodes[0]
                ),
                "Validation renders templates with placeholder action values (action_id 26 zeros, action_key 64 zeros); this template's output depends on the real ones. Make it render for any id and key: do not branch on action.action_id or action.action_key, or guard what it reads with `is defined`. The previous revision keeps serving.",
            );
            let located = design
                .boot_actions
                .iter()
                .find(|b| b.name == action)
                .map(|ba| {
                    let ai = ba.data.assets.iter().enumerate().position(|(i, a)| {
                        a.path.as_deref() == Some(asset.as_str()) || format!("#{i}") == asset
                    });
                    let pointer = ai.map_or_else(|| "/assets".to_string(), |i| format!("/assets/{i}/data"));
                    (ba.doc, pointer)
                });
            match located {
                Some((doc, pointer)) => design.msg_at(m, doc, &pointer),
                None => m,
            }
        })
        .collect()
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
    db: Option<Arc<DatabaseFile>>,
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
                // The file is looked at before the batch and again before
                // anything is acknowledged: a report committed into a file
                // removed or replaced meanwhile is lost, so it gets a 503.
                let check = || db.as_ref().map_or(Ok(()), |d| d.check());
                let result = check()
                    .and_then(|()| store.report_boot_actions(&reports, now()))
                    .and_then(|outcomes| check().map(|()| outcomes));
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
                            let e = match &e {
                                StateError::Replaced { path, why } => StateError::Replaced {
                                    path: path.clone(),
                                    why: why.clone(),
                                },
                                other => StateError::Sql(other.to_string()),
                            };
                            j.reply.send(Err(BootError::State(e)));
                        }
                    }
                }
            }
        })
        .map_err(|e| BootError::State(StateError::Sql(format!("starting the report writer: {e}"))))?;
    Ok(tx)
}

impl Index {
    /// Compiles a valid design for rendering: nodes, targets, templates.
    fn build(design: &Design) -> Result<Index, RenderError> {
        let nodes = design.effective_nodes();
        let mut targets = vec![Vec::new(); nodes.len()];
        for (bi, ba) in design.boot_actions.iter().enumerate() {
            for n in filter::select(design, nodes, ba.data.node_filter.as_ref()) {
                targets[n].push(bi);
            }
        }
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let compiled = CompiledActions::compile(design)?;
        Ok(Index {
            by_name,
            targets,
            compiled,
        })
    }

    /// `(action name, signaling)` of every BootAction targeting node `idx`.
    fn actions_of(&self, idx: usize) -> Vec<(String, bool)> {
        self.targets[idx]
            .iter()
            .map(|&b| {
                (
                    self.compiled.name(b).to_string(),
                    self.compiled.signaling(b),
                )
            })
            .collect()
    }

    /// Node `idx`'s BootActions with the values of `actions` (its deployment's).
    fn node_actions(
        &self,
        idx: usize,
        record: &DeploymentRecord,
        actions: &[BootActionRecord],
        secret: &Secret,
        report_url: &str,
    ) -> Vec<NodeAction> {
        self.targets[idx]
            .iter()
            .filter_map(|&b| {
                let name = self.compiled.name(b);
                let rec = actions.iter().find(|a| a.action == name)?;
                Some(NodeAction {
                    index: b,
                    values: ActionValues {
                        action_id: rec.action_id.clone(),
                        action_key: secret.action_key(&rec.action_id),
                        report_url: report_url.to_string(),
                        design_ref: record.design_ref.clone(),
                    },
                })
            })
            .collect()
    }

    fn node_index(&self, node: &str) -> Result<usize, BootError> {
        self.by_name
            .get(node)
            .copied()
            .ok_or_else(|| BootError::UnknownNode(node.to_string()))
    }
}

/// Renders one node's boot data with its deployment's action values.
fn render_with(
    design: &Design,
    index: &Index,
    record: &DeploymentRecord,
    actions: &[BootActionRecord],
    secret: &Secret,
    report_url: &str,
    kind: BootDataKind,
) -> Result<Vec<u8>, BootError> {
    let idx = index.node_index(&record.node)?;
    let node = &design.effective_nodes()[idx];
    let ctx = ContextBuilder::new(design).node(node);
    let actions = index.node_actions(idx, record, actions, secret, report_url);
    let mtime = record.committed_at.max(0) as u64;
    Ok(bootdata::render_node(
        &index.compiled,
        &ctx,
        &actions,
        kind,
        mtime,
    )?)
}

/// Renders every unit and file asset of a deployment once, keeping nothing:
/// whether its boot data of any kind renders (packing a tarball or the
/// package list cannot fail on the values).
fn check_assets(
    design: &Design,
    index: &Index,
    record: &DeploymentRecord,
    actions: &[BootActionRecord],
    secret: &Secret,
    report_url: &str,
) -> Result<(), RenderError> {
    let Some(&idx) = index.by_name.get(&record.node) else {
        return Ok(());
    };
    let node = &design.effective_nodes()[idx];
    let ctx = ContextBuilder::new(design).node(node);
    let actions = index.node_actions(idx, record, actions, secret, report_url);
    index
        .compiled
        .render_files(&ctx, &actions, BootDataKind::All)
        .map(|_| ())
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
