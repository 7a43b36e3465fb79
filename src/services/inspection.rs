//! Inspection (issue 12): the one data path of a ramdisk's callback
//! (ironic-inspector's `/v1/continue`, Ironic's `/v1/continue_inspection`)
//! and the introspection rows the inspector client reads.
//!
//! A callback body is read by [`inspection::parse`], matched against the
//! served revision's [`NodeIndex`] (built once per served revision, on the
//! first request that needs it), stored as the node's build data (generator
//! `inspector`, the posted bytes), compared with the design
//! ([`inspection::compare`]): each disagreement is a message on the node and
//! a count in `slipway_inspection_disagreements_total{kind}`, and the node's
//! introspection row is finished, all in one transaction. A machine the
//! design does not know is proposed ([`inspection::propose`]) as a commit on
//! the proposal branch ([`Repo::propose`]; default `slipway/discovered`,
//! never the followed branch) and named by the UUID of the name it is
//! proposed under.
//!
//! Every method but [`InspectionService::new`] blocks (SQLite, git): call
//! them off the async runtime.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use super::render_cache::Loaded;
use super::{BootService, ServiceError};
use crate::clock::now;
use crate::inspection::{self, Match, NodeIndex};
use crate::keys::Secret;
use crate::metrics::Metrics;
use crate::source::{Person, Proposed, ProposedFile, Repo};
use crate::state::{InspectionMessage, InspectionResult, IntrospectionRecord, StateError, Store};

/// Default of `--proposal-branch`.
pub const DEFAULT_PROPOSAL_BRANCH: &str = "slipway/discovered";

/// Where proposals go.
#[derive(Debug, Clone)]
pub struct InspectionConfig {
    /// A path inside the design repository.
    pub repo: PathBuf,
    /// The followed branch (`None`: the checked-out branch).
    pub branch: Option<String>,
    /// Design root inside the repository (`None`: `designs/` or the root).
    pub design_dir: Option<String>,
    /// The branch proposals are committed on (never the followed one).
    pub proposal_branch: String,
}

/// A node as the inspector dialect names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The node's name in the design.
    pub name: String,
    /// Its UUID (`Secret::node_uuid`).
    pub uuid: String,
}

/// A node's introspection as shown: the row and the latest disagreements.
#[derive(Debug, Clone)]
pub struct IntrospectionView {
    /// The node.
    pub node: Named,
    /// Its latest introspection.
    pub record: IntrospectionRecord,
    /// Where its latest inspection disagreed with the design.
    pub messages: Vec<InspectionMessage>,
}

/// What a callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The machine is a node of the design: its data stored, compared.
    Matched {
        /// The node.
        node: Named,
        /// The disagreements' messages.
        disagreements: Vec<String>,
    },
    /// The machine is unknown: proposed on the proposal branch.
    Proposed {
        /// The proposed name and the UUID it will have.
        node: Named,
        /// The file written, in the repository.
        path: String,
        /// The commit made (`None`: the file already held this proposal).
        commit: Option<String>,
    },
}

impl CallbackOutcome {
    /// The UUID the ramdisk is answered with.
    pub fn uuid(&self) -> &str {
        match self {
            CallbackOutcome::Matched { node, .. } | CallbackOutcome::Proposed { node, .. } => {
                &node.uuid
            }
        }
    }
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The body is not a callback (not JSON, not an object, a wrong type).
    #[error("{0}")]
    Malformed(String),
    /// Several nodes match equally.
    #[error("multiple nodes match the machine: {}", .0.join(", "))]
    Several(Vec<String>),
    /// An unknown machine that cannot be proposed (no MAC, no HostProfile).
    #[error("look up error: the machine matches no node and cannot be proposed: {0}")]
    Unproposable(String),
    /// The proposal could not be written.
    #[error("the machine matches no node and its proposal could not be committed: {0}")]
    Proposal(String),
    /// The service failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StateError> for CallbackError {
    fn from(e: StateError) -> Self {
        CallbackError::Service(e.into())
    }
}

/// The served revision's index, kept while that revision is served.
struct ServedIndex {
    loaded: Weak<Loaded>,
    index: NodeIndex,
    /// Node name → its position in `design.effective_nodes()`.
    positions: HashMap<String, usize>,
}

/// See the module docs.
pub struct InspectionService {
    cfg: InspectionConfig,
    boot: Arc<BootService>,
    store: Arc<Mutex<Store>>,
    secret: Secret,
    metrics: Arc<Metrics>,
    served: Mutex<Option<Arc<ServedIndex>>>,
    /// One proposal written at a time (git's compare-and-swap would retry).
    proposing: Mutex<()>,
    /// Processed callbacks waiting to be written (see [`InspectionService::record`]).
    pending: Mutex<Vec<(Owned, Arc<Slot>)>>,
}

/// A processed callback, owned, waiting in [`InspectionService::record`].
struct Owned {
    node: String,
    data: String,
    messages: Vec<(String, String)>,
    error: Option<String>,
    at: i64,
}

/// Where the writer of a batch leaves one callback's outcome.
#[derive(Default)]
struct Slot(Mutex<Option<Result<(), String>>>);

impl Slot {
    fn set(&self, r: Result<(), String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    fn take(&self) -> Option<Result<(), String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl std::fmt::Debug for InspectionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectionService")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The author of proposal commits.
fn author() -> Person {
    Person {
        name: "slipway".into(),
        email: "slipway@localhost".into(),
    }
}

impl InspectionService {
    /// A service writing on `store` (the API's connection), reading the
    /// design `boot` serves.
    pub fn new(
        cfg: InspectionConfig,
        boot: Arc<BootService>,
        store: Arc<Mutex<Store>>,
        secret: Secret,
        metrics: Arc<Metrics>,
    ) -> InspectionService {
        InspectionService {
            cfg,
            boot,
            store,
            secret,
            metrics,
            served: Mutex::new(None),
            proposing: Mutex::new(()),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The service that serves the design (for `wait_ready`).
    pub fn boot(&self) -> &Arc<BootService> {
        &self.boot
    }

    /// The proposal branch.
    pub fn proposal_branch(&self) -> &str {
        &self.cfg.proposal_branch
    }

    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StateError>,
    ) -> Result<T, ServiceError> {
        let mut guard = self.store.lock().map_err(|_| ServiceError::poisoned())?;
        Ok(f(&mut guard)?)
    }

    /// The served design and its index, built once per served revision.
    fn served(&self) -> Result<(Arc<Loaded>, Arc<ServedIndex>), ServiceError> {
        let loaded = self.boot.loaded()?;
        let mut slot = self
            .served
            .lock()
            .map_err(|_| ServiceError::Internal("inspection index lock poisoned".into()))?;
        if let Some(s) = slot.as_ref() {
            if s.loaded.upgrade().is_some_and(|l| Arc::ptr_eq(&l, &loaded)) {
                return Ok((loaded, s.clone()));
            }
        }
        let t = std::time::Instant::now();
        let index = NodeIndex::build_with_uuids(&loaded.design, &self.secret);
        let positions = loaded
            .design
            .effective_nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let s = Arc::new(ServedIndex {
            loaded: Arc::downgrade(&loaded),
            index,
            positions,
        });
        tracing::info!(
            commit = %loaded.commit,
            nodes = s.index.len(),
            took_ms = t.elapsed().as_millis() as u64,
            "inspection: node index built for the served revision"
        );
        *slot = Some(s.clone());
        Ok((loaded, s))
    }

    fn named(&self, name: &str) -> Named {
        Named {
            name: name.to_string(),
            uuid: self.secret.node_uuid(name),
        }
    }

    /// The node a route's `{node}` names (UUID or name), in the served design.
    pub fn resolve(&self, ident: &str) -> Result<Option<Named>, ServiceError> {
        let (_, s) = self.served()?;
        Ok(s.index.node(ident).map(|n| self.named(n)))
    }

    /// Starts a node's introspection (`waiting`); `None` for an unknown node.
    pub fn start(
        &self,
        ident: &str,
        manage_boot: bool,
    ) -> Result<Option<IntrospectionView>, ServiceError> {
        let Some(node) = self.resolve(ident)? else {
            return Ok(None);
        };
        self.boot.check_database()?;
        let record = self.with_store(|s| s.start_introspection(&node.name, manage_boot, now()))?;
        Ok(Some(IntrospectionView {
            node,
            record,
            messages: Vec::new(),
        }))
    }

    /// Ends node `name`'s waiting introspection as `error` with `message`
    /// (its boot into the ramdisk failed); `false` when it was no longer waiting.
    pub fn fail(&self, name: &str, message: &str) -> Result<bool, ServiceError> {
        self.boot.check_database()?;
        self.with_store(|s| s.fail_introspection(name, message, now()))
    }

    /// A node's latest introspection; `Ok(None)` for an unknown node or one
    /// never inspected.
    pub fn status(&self, ident: &str) -> Result<Option<IntrospectionView>, ServiceError> {
        let Some(node) = self.resolve(ident)? else {
            return Ok(None);
        };
        let name = node.name.clone();
        let found = self.with_store(|s| {
            Ok(match s.introspection(&name)? {
                Some(r) => Some((r, s.inspection_messages(&name)?)),
                None => None,
            })
        })?;
        Ok(found.map(|(record, messages)| IntrospectionView {
            node,
            record,
            messages,
        }))
    }

    /// The newest `limit` introspections, newest first.
    pub fn list(&self, limit: usize) -> Result<Vec<IntrospectionView>, ServiceError> {
        let rows = self.with_store(|s| s.introspections(limit))?;
        Ok(rows
            .into_iter()
            .map(|record| IntrospectionView {
                node: self.named(&record.node),
                record,
                messages: Vec::new(),
            })
            .collect())
    }

    /// A node's newest inspection data as posted; `Ok(None)` when unknown
    /// or never inspected.
    pub fn data(&self, ident: &str) -> Result<Option<String>, ServiceError> {
        let Some(node) = self.resolve(ident)? else {
            return Ok(None);
        };
        let rec = self.with_store(|s| s.inspection_data(&node.name))?;
        Ok(rec.map(|r| r.data_element))
    }

    /// The whole data path of one ramdisk callback (see the module docs).
    pub fn callback(&self, body: &[u8]) -> Result<CallbackOutcome, CallbackError> {
        let out = self.process(body);
        let outcome = match &out {
            Ok(CallbackOutcome::Matched { .. }) => "matched",
            Ok(CallbackOutcome::Proposed { .. }) => "proposed",
            Err(CallbackError::Several(_)) => "several",
            Err(CallbackError::Malformed(_)) => "malformed",
            Err(_) => "refused",
        };
        self.metrics.inspection_callback(outcome);
        out
    }

    fn process(&self, body: &[u8]) -> Result<CallbackOutcome, CallbackError> {
        let cb = inspection::parse(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        // Stored as posted; a body that parsed as JSON is UTF-8.
        let text = std::str::from_utf8(body)
            .map_err(|e| CallbackError::Malformed(format!("the body is not UTF-8: {e}")))?;
        let (loaded, served) = self.served()?;
        match served.index.match_callback(&cb) {
            Match::Node(name) => {
                let node = &loaded.design.effective_nodes()[served.positions[name]];
                let found = inspection::compare(&cb, node, &loaded.design);
                let messages: Vec<(String, String)> = found
                    .iter()
                    .map(|d| (d.kind().to_string(), d.message()))
                    .collect();
                self.boot.check_database().map_err(ServiceError::from)?;
                let error = cb.data.error.as_deref().filter(|e| !e.is_empty());
                self.record(Owned {
                    node: name.to_string(),
                    data: text.to_string(),
                    messages: messages.clone(),
                    error: error.map(str::to_string),
                    at: now(),
                })?;
                for d in &found {
                    self.metrics.inspection_disagreement(d.kind());
                }
                if !found.is_empty() {
                    tracing::warn!(node = %name, disagreements = found.len(), "inspection: the machine disagrees with the design");
                }
                Ok(CallbackOutcome::Matched {
                    node: self.named(name),
                    disagreements: messages.into_iter().map(|(_, m)| m).collect(),
                })
            }
            Match::Several(names) => Err(CallbackError::Several(
                names.into_iter().map(str::to_string).collect(),
            )),
            Match::Unknown => self.propose(&cb, &loaded),
        }
    }

    /// Writes a processed callback with whatever others wait (group commit:
    /// one transaction and one sync for the batch, each in a savepoint), and
    /// returns once it is durable. The callback is queued first, then the
    /// connection taken: whoever holds it writes every callback queued by
    /// then and leaves each its outcome, so a callback either finds its
    /// outcome when it gets the connection or is still queued and written by
    /// its own thread.
    fn record(&self, r: Owned) -> Result<(), ServiceError> {
        let slot = Arc::new(Slot::default());
        self.pending
            .lock()
            .map_err(|_| ServiceError::poisoned())?
            .push((r, slot.clone()));
        let mut store = self.store.lock().map_err(|_| ServiceError::poisoned())?;
        if let Some(done) = slot.take() {
            return done.map_err(ServiceError::Internal);
        }
        let batch =
            std::mem::take(&mut *self.pending.lock().map_err(|_| ServiceError::poisoned())?);
        let views: Vec<InspectionResult<'_>> = batch
            .iter()
            .map(|(o, _)| InspectionResult {
                node: &o.node,
                data: &o.data,
                messages: &o.messages,
                error: o.error.as_deref(),
                at: o.at,
            })
            .collect();
        match store.finish_inspections(&views) {
            Ok(each) => {
                for ((_, s), r) in batch.iter().zip(each) {
                    s.set(r.map_err(|e| e.to_string()));
                }
            }
            Err(e) => {
                for (_, s) in &batch {
                    s.set(Err(e.to_string()));
                }
            }
        }
        drop(views);
        drop(store);
        slot.take()
            .unwrap_or_else(|| Err("an inspection was not written".into()))
            .map_err(ServiceError::Internal)
    }

    /// Proposes an unknown machine on the proposal branch.
    fn propose(
        &self,
        cb: &inspection::Callback,
        loaded: &Loaded,
    ) -> Result<CallbackOutcome, CallbackError> {
        let proposal = inspection::propose(cb, &loaded.design)
            .map_err(|e| CallbackError::Unproposable(e.to_string()))?;
        let failed = |e: crate::source::SourceError| CallbackError::Proposal(e.to_string());
        let _one = self
            .proposing
            .lock()
            .map_err(|_| ServiceError::Internal("proposal lock poisoned".into()))?;
        let repo = Repo::discover(&self.cfg.repo).map_err(failed)?;
        let followed = self.followed(&repo)?;
        let root = repo
            .design_root(&followed, self.cfg.design_dir.as_deref())
            .map_err(failed)?;
        let path = format!("{root}{}", proposal.path);
        let message = format!(
            "discovered: {} ({})\n\nProposed by slipway from an inspection callback of a machine \
             the design does not know. Review the `# REVIEW:` lines, then merge.",
            proposal.name, proposal.machine
        );
        let done = repo
            .propose(
                &self.cfg.proposal_branch,
                &followed,
                &path,
                proposal.yaml.as_bytes(),
                &author(),
                &message,
            )
            .map_err(failed)?;
        let commit = match done {
            Proposed::Committed { commit, .. } => Some(commit),
            Proposed::Unchanged => None,
        };
        tracing::info!(name = %proposal.name, %path, commit = commit.as_deref().unwrap_or("unchanged"), branch = %self.cfg.proposal_branch, "inspection: unknown machine proposed");
        Ok(CallbackOutcome::Proposed {
            node: self.named(&proposal.name),
            path,
            commit,
        })
    }

    /// Commits `yaml` as `rel_path` (relative to the design root) on the
    /// proposal branch, as an inspection's proposal is (one at a time, never
    /// the followed branch): the path in the repository and the commit
    /// (`None`: the file already held it). The Commissaire dialect's
    /// enrolment of an unknown address goes here.
    pub fn propose_document(
        &self,
        rel_path: &str,
        yaml: &str,
        message: &str,
    ) -> Result<(String, Option<String>), CallbackError> {
        let failed = |e: crate::source::SourceError| CallbackError::Proposal(e.to_string());
        let _one = self
            .proposing
            .lock()
            .map_err(|_| ServiceError::Internal("proposal lock poisoned".into()))?;
        let repo = Repo::discover(&self.cfg.repo).map_err(failed)?;
        let followed = self.followed(&repo)?;
        let root = repo
            .design_root(&followed, self.cfg.design_dir.as_deref())
            .map_err(failed)?;
        let path = format!("{root}{rel_path}");
        let done = repo
            .propose(
                &self.cfg.proposal_branch,
                &followed,
                &path,
                yaml.as_bytes(),
                &author(),
                message,
            )
            .map_err(failed)?;
        let commit = match done {
            Proposed::Committed { commit, .. } => Some(commit),
            Proposed::Unchanged => None,
        };
        tracing::info!(%path, commit = commit.as_deref().unwrap_or("unchanged"), branch = %self.cfg.proposal_branch, "proposal committed");
        Ok((path, commit))
    }

    fn followed(&self, repo: &Repo) -> Result<String, CallbackError> {
        self.cfg
            .branch
            .clone()
            .or_else(|| repo.current_branch())
            .ok_or_else(|| {
                CallbackError::Proposal(
                    "the repository's HEAD is on no branch; name the followed branch (--branch)"
                        .into(),
                )
            })
    }
}

/// The proposals on `branch` not yet on `followed` (`None`: the checked-out
/// branch), for `slipway discovered`.
pub fn proposals(
    repo: &std::path::Path,
    branch: &str,
    followed: Option<&str>,
) -> Result<Vec<ProposedFile>, String> {
    let repo = Repo::discover(repo).map_err(|e| e.to_string())?;
    let followed = match followed {
        Some(b) => b.to_string(),
        None => repo.current_branch().ok_or(
            "the repository's HEAD is on no branch; name the followed branch (--followed)",
        )?,
    };
    repo.proposals(branch, &followed).map_err(|e| e.to_string())
}
