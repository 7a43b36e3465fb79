//! Serving boot data (DESIGN §4–5): deployments of the applied revision's
//! nodes, their keys, rendered boot data and status reports.
//!
//! [`BootService`] ties the pieces together without owning any of their
//! libraries: the design of the applied commit is read through
//! [`crate::source`] and validated once per commit, its templates compiled
//! once ([`crate::render::bootdata::CompiledActions`]), deployments kept in
//! [`crate::state`], keys derived by [`crate::keys`]. Rendered bytes are
//! cached per (node, deployment, kind) until a new revision is applied
//! ([`super::render_cache`]); reports go to the report writer
//! ([`super::reports`]); requests' blocking work runs on the worker pool
//! ([`super::workers`]). The served design's life is in `deployments/applied.rs`,
//! the SW396 refusals in `deployments/refusals.rs`.
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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rayon::prelude::*;

use crate::clock::now;
use crate::design::{self, filter, Design, Message};
use crate::keys::{self, KeyCheck, Secret};
use crate::metrics::Metrics;
use crate::plan::{Plan, Snapshot};
use crate::render::bootdata::{self, BootDataKind, RenderError};
use crate::state::{
    BootActionDetail, BootActionRecord, BootActionStatus, DatabaseFile, DeploymentInputs,
    DeploymentRecord, NewDeployment, ReportOutcome, StateError, Store,
};

use super::render_cache::{
    check_assets, render_with, serving_error, Entry, Index, Loaded, Rendered, RenderedKinds,
    Served, Serving,
};
use super::reports::ReportWriter;
use super::workers::Workers;

mod applied;
mod refusals;

pub use refusals::DOES_NOT_RENDER;
use refusals::{compile_failure, render_failure_messages};

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
    /// The service's own machinery failed (a poisoned lock, the report
    /// writer gone); shown with the `database:` prefix it always had.
    #[error("database: {0}")]
    Service(String),
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

impl NodeDeployment {
    /// Whether the entry is served with `loaded` (the design being served
    /// when it was read).
    pub(in crate::services) fn served_with(&self, loaded: &Arc<Loaded>) -> bool {
        self.loaded.as_ref().is_some_and(|l| Arc::ptr_eq(l, loaded))
    }

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

/// See the module docs.
pub struct BootService {
    cfg: BootConfig,
    secret: Secret,
    /// The service's own connections (one on SQLite; several on a
    /// PostgreSQL database, whose every query is a round trip); each held
    /// for single queries only, never across rendering or another lock.
    stores: Vec<Mutex<Store>>,
    /// Which connection the next request waits for when all are busy.
    next_store: std::sync::atomic::AtomicUsize,
    served: RwLock<Served>,
    /// Bumped whenever `served.design` changes, for [`BootService::wait_ready`].
    changes: tokio::sync::watch::Sender<u64>,
    metrics: Arc<Metrics>,
    /// The database file's identity; writes are refused once it changed.
    db: Option<Arc<DatabaseFile>>,
    /// The report writer (group commit), started on the first report.
    reports: ReportWriter,
    /// The threads that run blocking work (database, rendering) for requests.
    workers: Workers,
    /// The database is shared with other replicas (PostgreSQL): another
    /// replica may replace or end a deployment, so none is answered from
    /// memory without reading the database.
    shared: bool,
}

impl std::fmt::Debug for BootService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootService")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

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
        let shared = store.is_postgres();
        BootService {
            shared,
            cfg,
            secret,
            stores: vec![Mutex::new(store)],
            next_store: Default::default(),
            served: RwLock::new(Served {
                generation: 0,
                design: Serving::Nothing,
                nodes: HashMap::new(),
            }),
            changes: tokio::sync::watch::channel(0).0,
            metrics,
            db: None,
            reports: ReportWriter::default(),
            workers: Workers::new(),
        }
    }

    /// More connections for requests to use at once (PostgreSQL: each
    /// query waits a round trip, so one connection bounds the request rate).
    pub fn with_more_stores(mut self, more: Vec<Store>) -> BootService {
        self.stores.extend(more.into_iter().map(Mutex::new));
        self
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
        let me = self.clone();
        self.workers.run(move || f(&me)).await
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

    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StateError>,
    ) -> Result<T, BootError> {
        let poisoned = || BootError::Service("database lock poisoned".into());
        // A free connection if there is one, else wait for the next in turn.
        let free = self.stores.iter().find_map(|m| match m.try_lock() {
            Ok(g) => Some(Ok(g)),
            Err(std::sync::TryLockError::WouldBlock) => None,
            Err(std::sync::TryLockError::Poisoned(_)) => Some(Err(poisoned())),
        });
        let mut guard = match free {
            Some(g) => g?,
            None => {
                let i = self
                    .next_store
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % self.stores.len();
                self.stores[i].lock().map_err(|_| poisoned())?
            }
        };
        Ok(f(&mut guard)?)
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
    /// read, no blocking. Always `None` on a database shared by replicas. `None` sends the caller to [`BootService::deployment`].
    pub fn cached_deployment(&self, node: &str) -> Option<NodeDeployment> {
        if self.shared {
            return None;
        }
        let served = self.served.read().ok()?;
        let entry = served.nodes.get(node)?.clone();
        let loaded = match &served.design {
            Serving::Ready(l) => Some(l.clone()),
            _ => None,
        };
        Some(NodeDeployment { entry, loaded })
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

    /// Runs `f` on the design being served (the power service reads nodes'
    /// OOB settings from it).
    pub fn with_design<T>(&self, f: impl FnOnce(&Design) -> T) -> Result<T, BootError> {
        let loaded = self.loaded()?;
        Ok(f(&loaded.design))
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
        status: Option<BootActionStatus>,
        details: &[BootActionDetail],
    ) -> Result<tokio::sync::oneshot::Receiver<Result<ReportOutcome, BootError>>, BootError> {
        self.reports
            .submit(action_id, status, details, || self.report_writer_target())
    }

    /// Records a status report; returns once it is committed (durable).
    /// Reports arriving together share one transaction and one sync (group
    /// commit) on the report writer's own connection, so a boot storm's
    /// reports cost a few syncs instead of one each.
    pub fn report(
        &self,
        action_id: &str,
        status: Option<BootActionStatus>,
        details: &[BootActionDetail],
    ) -> Result<ReportOutcome, BootError> {
        self.reports
            .report(action_id, status, details, || self.report_writer_target())
    }

    /// Where the report writer opens its own connection, and the file
    /// identity it checks around each batch.
    fn report_writer_target(&self) -> Result<(String, Option<Arc<DatabaseFile>>), BootError> {
        let path = self.with_store(|s| Ok(s.path().to_string()))?;
        Ok((path, self.db.clone()))
    }
}
