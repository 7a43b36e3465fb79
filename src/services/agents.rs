//! Ironic agents (ironic-python-agent) as the Ironic dialect serves them:
//! the lookup by MAC or UUID over a [`NodeIndex`] built once per served
//! revision, the lookup restriction (`--agent-lookup`), agent tokens
//! (issued once, stored as a digest, masked afterwards, fresh after a
//! reboot signal, a new deployment or an operator's reset) and heartbeats
//! (the last one per node). No HTTP here: the dialect maps [`AgentError`].
//!
//! Every node's agent row is held in memory (loaded at start, written
//! through to SQLite), so a lookup that issues nothing reads no database
//! when the node's deployment is served from memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{BootError, BootService, ServiceError};
use crate::clock::now;
use crate::inspection::{Match, NodeIndex};
use crate::keys::{self, Secret};
use crate::state::{AgentRecord, BootActionStatus, StateError, Store};

/// Which nodes a lookup may find (`--agent-lookup`), Ironic's
/// `[api]restrict_lookup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupMode {
    /// Nodes expected to run the agent: a deployment with a boot action not
    /// finished yet, or a token reset or issued within the window.
    #[default]
    Expected,
    /// Every node of the applied design.
    Any,
    /// None: every lookup is a 404.
    None,
}

impl std::str::FromStr for LookupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expected" => Ok(LookupMode::Expected),
            "any" => Ok(LookupMode::Any),
            "none" => Ok(LookupMode::None),
            other => Err(format!(
                "unknown agent lookup mode `{other}` (expected, any, none)"
            )),
        }
    }
}

/// Settings of the agent service.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Which nodes a lookup may find.
    pub lookup: LookupMode,
    /// How long after a token reset (or issue) a node counts as expected
    /// to run the agent (`--agent-window`).
    pub window: Duration,
    /// `config.heartbeat_timeout` sent to agents (Ironic's default 300 s).
    pub heartbeat_timeout: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            lookup: LookupMode::Expected,
            window: DEFAULT_AGENT_WINDOW,
            heartbeat_timeout: 300,
        }
    }
}

/// Default of `--agent-window`.
pub const DEFAULT_AGENT_WINDOW: Duration = Duration::from_secs(3600);

/// What an agent is sent as its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A token issued by this lookup (shown once).
    Fresh(String),
    /// A token was issued before: Ironic's `"******"`.
    Masked,
}

impl Token {
    /// The text of `config.agent_token`.
    pub fn text(&self) -> &str {
        match self {
            Token::Fresh(t) => t,
            Token::Masked => "******",
        }
    }
}

/// A lookup's answer.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The node's name.
    pub node: String,
    /// Its UUID.
    pub uuid: String,
    /// Its agent token, or the mask.
    pub token: Token,
}

/// A heartbeat as the agent sent it.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Where the agent's API listens.
    pub callback_url: String,
    /// IPA's version.
    pub agent_version: Option<String>,
    /// The token it holds.
    pub agent_token: Option<String>,
}

/// The last heartbeat of a node's agent, for the node's view.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct AgentView {
    /// The agent's `callback_url`.
    pub callback_url: Option<String>,
    /// The agent's version.
    pub version: Option<String>,
    /// When it last heartbeat (seconds since the epoch).
    pub last_heartbeat: Option<i64>,
    /// When its current token was issued.
    pub token_issued_at: Option<i64>,
    /// A fresh token is issued on the next lookup (why).
    pub token_reset: Option<String>,
}

/// Why an agent call failed (the dialect answers with Ironic's codes).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Neither a MAC nor a node UUID: Ironic's `IncompleteLookup` (400).
    #[error("At least one of 'addresses' and 'node_uuid' parameters is required")]
    IncompleteLookup,
    /// No node, several nodes, or a node not expected to run the agent
    /// (404, one message for all, as in Ironic).
    #[error("Resource could not be found.")]
    LookupNotFound,
    /// The heartbeat's node is unknown (404).
    #[error("Node {0} could not be found.")]
    UnknownNode(String),
    /// A heartbeat without a token (400).
    #[error("Agent token is required for heartbeat processing.")]
    TokenRequired,
    /// A heartbeat with a token that is not the node's (400).
    #[error("Invalid or missing agent token received.")]
    InvalidToken,
    /// A heartbeat from another agent URL than the one on record (400).
    #[error("Detected change in ramdisk provided \"callback_url\"")]
    CallbackChanged,
    /// The service failed (no design served, the database).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<BootError> for AgentError {
    fn from(e: BootError) -> Self {
        AgentError::Service(ServiceError::Boot(e))
    }
}

impl From<StateError> for AgentError {
    fn from(e: StateError) -> Self {
        AgentError::Service(ServiceError::State(e))
    }
}

/// Why a lookup stopped: it failed, or (answering from memory) it needs the
/// database or an index build.
enum Step {
    Failed(AgentError),
    NeedsIo,
}

impl<E: Into<AgentError>> From<E> for Step {
    fn from(e: E) -> Self {
        Step::Failed(e.into())
    }
}

/// The index of the served revision.
struct Indexed {
    commit: String,
    index: Arc<NodeIndex>,
}

/// See the module docs.
pub struct AgentService {
    boot: Arc<BootService>,
    secret: Secret,
    store: Arc<Mutex<Store>>,
    cfg: AgentConfig,
    index: RwLock<Option<Indexed>>,
    /// Serialises index builds (one per served revision).
    building: Mutex<()>,
    /// Every node's agent row; written through to `store` under this lock,
    /// so two lookups never issue two tokens.
    agents: Mutex<HashMap<String, AgentRecord>>,
}

impl std::fmt::Debug for AgentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentService")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AgentService {
    /// The service, with every agent row read from `store` (the API's
    /// connection, shared with the inventory).
    pub fn new(
        boot: Arc<BootService>,
        secret: Secret,
        store: Arc<Mutex<Store>>,
        cfg: AgentConfig,
    ) -> Result<AgentService, StateError> {
        let agents = lock(&store)
            .agents()?
            .into_iter()
            .map(|a| (a.node.clone(), a))
            .collect();
        Ok(AgentService {
            boot,
            secret,
            store,
            cfg,
            index: RwLock::new(None),
            building: Mutex::new(()),
            agents: Mutex::new(agents),
        })
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// A node's stable UUID (`Secret::node_uuid`).
    pub fn uuid(&self, node: &str) -> String {
        self.secret.node_uuid(node)
    }

    /// The index of the served revision when it is built (memory only);
    /// `None` also while no revision is served (the caller waits for one).
    fn current_index(&self) -> Result<Option<Arc<NodeIndex>>, AgentError> {
        let Ok(loaded) = self.boot.served_design() else {
            return Ok(None);
        };
        Ok(self
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|i| i.commit == loaded.commit)
            .map(|i| i.index.clone()))
    }

    /// The index of the served revision, built on first use after the
    /// served revision changed (never per request).
    pub fn index(&self) -> Result<Arc<NodeIndex>, AgentError> {
        let loaded = self.boot.served_design()?;
        let current = |i: &Option<Indexed>| {
            i.as_ref()
                .filter(|i| i.commit == loaded.commit)
                .map(|i| i.index.clone())
        };
        if let Some(i) = current(&self.index.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(i);
        }
        let _building = lock(&self.building);
        if let Some(i) = current(&self.index.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(i);
        }
        let t = std::time::Instant::now();
        let index = Arc::new(NodeIndex::build_with_uuids(&loaded.design, &self.secret));
        self.boot.metrics().agent_index_built();
        tracing::info!(
            commit = %loaded.commit,
            nodes = index.len(),
            took_ms = t.elapsed().as_millis() as u64,
            "agents: node index built for the served revision"
        );
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Indexed {
            commit: loaded.commit.clone(),
            index: index.clone(),
        });
        Ok(index)
    }

    /// Ironic's lookup (blocking: it may read and write the database).
    /// `macs` are the valid MACs of `addresses`; `node_uuid` (or a name)
    /// takes precedence, as in Ironic.
    pub fn lookup(&self, macs: &[u64], node_uuid: Option<&str>) -> Result<Lookup, AgentError> {
        self.lookup_with(macs, node_uuid, true)
            .map_err(|e| match e {
                Step::Failed(e) => e,
                Step::NeedsIo => AgentError::Service(ServiceError::Internal(
                    "a lookup allowed to block asked to block".into(),
                )),
            })
    }

    /// [`AgentService::lookup`] when it can be answered from memory alone
    /// (the index built, the node's deployment served from memory, no token
    /// to issue, the restriction decided without the database) — the common
    /// case of an agent looking up again — so the caller answers it without
    /// a blocking thread; `None` when it needs the database.
    pub fn lookup_in_memory(
        &self,
        macs: &[u64],
        node_uuid: Option<&str>,
    ) -> Option<Result<Lookup, AgentError>> {
        match self.lookup_with(macs, node_uuid, false) {
            Ok(l) => Some(Ok(l)),
            Err(Step::Failed(e)) => Some(Err(e)),
            Err(Step::NeedsIo) => None,
        }
    }

    fn lookup_with(&self, macs: &[u64], node_uuid: Option<&str>, io: bool) -> Result<Lookup, Step> {
        if macs.is_empty() && node_uuid.is_none() {
            return Err(AgentError::IncompleteLookup.into());
        }
        let index = match self.current_index()? {
            Some(i) => i,
            None if io => self.index()?,
            None => return Err(Step::NeedsIo),
        };
        let name = match node_uuid {
            Some(u) => index.node(u).ok_or(AgentError::LookupNotFound)?,
            None => match index.lookup_macs(macs) {
                Match::Node(n) => n,
                Match::Several(_) | Match::Unknown => return Err(AgentError::LookupNotFound.into()),
            },
        }
        .to_string();
        if self.cfg.lookup == LookupMode::None {
            return Err(AgentError::LookupNotFound.into());
        }
        let now = now();
        let window = self.cfg.window.as_secs() as i64;
        let recent = lock(&self.agents).get(&name).is_some_and(|row| {
            [row.reset_at, row.token_issued_at]
                .into_iter()
                .flatten()
                .any(|t| now - t <= window)
        });
        let expected = self.cfg.lookup == LookupMode::Any || recent;
        // The deployment's id from memory when it is served from there (an
        // entry is dropped when a revision changes the node); its actions'
        // statuses from the database, only when they decide the lookup.
        let cached = self
            .boot
            .cached_deployment(&name)
            .map(|d| d.record().deployment.clone());
        let deployment = match cached {
            Some(d) if expected => Some(d),
            _ if !io => return Err(Step::NeedsIo),
            _ => {
                let (deployment, unfinished) = self.deployment(&name)?;
                if !expected && !unfinished {
                    return Err(AgentError::LookupNotFound.into());
                }
                deployment
            }
        };
        let mut agents = lock(&self.agents);
        let row = agents.get(&name).cloned().unwrap_or_else(|| AgentRecord {
            node: name.clone(),
            ..Default::default()
        });
        let fresh = row.token_digest.is_none()
            || row.reset_at.is_some()
            || (deployment.is_some() && row.deployment != deployment);
        let uuid = index
            .uuid(&name)
            .map_or_else(|| self.uuid(&name), str::to_string);
        if !fresh {
            self.boot.metrics().agent_lookup("masked");
            return Ok(Lookup {
                node: name,
                uuid,
                token: Token::Masked,
            });
        }
        if !io {
            return Err(Step::NeedsIo);
        }
        let token = keys::agent_token()
            .map_err(|e| ServiceError::Internal(format!("no random token: {e}")))?;
        let new = AgentRecord {
            node: name.clone(),
            token_digest: Some(self.secret.agent_token_digest(&token)),
            token_issued_at: Some(now),
            deployment,
            reset_at: None,
            reset_reason: None,
            // A new agent: its URL is its own.
            callback_url: None,
            agent_version: row.agent_version,
            last_heartbeat: row.last_heartbeat,
        };
        lock(&self.store).put_agent(&new)?;
        tracing::info!(node = %name, "agents: agent token issued");
        self.boot.metrics().agent_lookup("issued");
        agents.insert(name.clone(), new);
        Ok(Lookup {
            node: name,
            uuid,
            token: Token::Fresh(token),
        })
    }

    /// The node's current deployment, read (never made: a lookup makes no
    /// deployment), and whether any of its boot actions is unfinished.
    fn deployment(&self, node: &str) -> Result<(Option<String>, bool), AgentError> {
        let current = lock(&self.store).deployment_with_actions(node)?;
        Ok(match current {
            Some((d, actions)) => (
                Some(d.deployment),
                actions
                    .iter()
                    .any(|a| a.status == BootActionStatus::Incomplete),
            ),
            None => (None, false),
        })
    }

    /// Ironic's heartbeat (blocking: it writes the database). The token is
    /// checked first, in constant time, then the agent URL.
    pub fn heartbeat(&self, node_ident: &str, hb: &Heartbeat) -> Result<String, AgentError> {
        let outcome = self.beat(node_ident, hb);
        let word = match &outcome {
            Ok(_) => "accepted",
            Err(AgentError::TokenRequired) => "token_required",
            Err(AgentError::InvalidToken) => "invalid_token",
            Err(AgentError::CallbackChanged) => "callback_changed",
            Err(AgentError::UnknownNode(_)) => "unknown_node",
            Err(_) => return outcome,
        };
        self.boot.metrics().agent_heartbeat(word);
        outcome
    }

    fn beat(&self, node_ident: &str, hb: &Heartbeat) -> Result<String, AgentError> {
        let index = self.index()?;
        let name = index
            .node(node_ident)
            .ok_or_else(|| AgentError::UnknownNode(node_ident.to_string()))?
            .to_string();
        // As Ironic: no token is "required", an empty one is "invalid".
        let Some(token) = hb.agent_token.as_deref() else {
            return Err(AgentError::TokenRequired);
        };
        let mut agents = lock(&self.agents);
        let Some(row) = agents.get(&name) else {
            return Err(AgentError::InvalidToken);
        };
        let valid = row
            .token_digest
            .as_deref()
            .is_some_and(|d| self.secret.check_agent_token(d, token));
        if !valid {
            return Err(AgentError::InvalidToken);
        }
        if row
            .callback_url
            .as_deref()
            .is_some_and(|u| u != hb.callback_url)
        {
            return Err(AgentError::CallbackChanged);
        }
        let mut new = row.clone();
        new.callback_url = Some(hb.callback_url.clone());
        new.agent_version = hb.agent_version.clone();
        new.last_heartbeat = Some(now());
        lock(&self.store).put_agent(&new)?;
        agents.insert(name.clone(), new);
        Ok(name)
    }

    /// Asks for a fresh token on the node's next lookup (blocking when it
    /// writes): the machine is booting again, or an operator asked. Returns
    /// whether the node is in the served design (false: nothing done).
    /// A reset already pending is kept (its time and reason), so a boot
    /// storm writes once per node.
    pub fn reset_token(&self, node: &str, reason: &str) -> Result<bool, AgentError> {
        if self.index()?.node(node).is_none() {
            return Ok(false);
        }
        let mut agents = lock(&self.agents);
        let mut row = agents.get(node).cloned().unwrap_or_else(|| AgentRecord {
            node: node.to_string(),
            ..Default::default()
        });
        if row.reset_at.is_some() && reason != RESET_OPERATOR {
            return Ok(true);
        }
        row.reset_at = Some(now());
        row.reset_reason = Some(reason.to_string());
        lock(&self.store).put_agent(&row)?;
        tracing::info!(%node, %reason, "agents: a fresh agent token will be issued");
        agents.insert(node.to_string(), row);
        Ok(true)
    }

    /// Whether the machine booting again should get a fresh token (memory
    /// only): a token was issued and no reset is pending. The boot-data
    /// path asks before it takes a blocking thread, so a node without an
    /// agent, or one already reset, costs nothing.
    pub fn booting_needs_reset(&self, node: &str) -> bool {
        lock(&self.agents)
            .get(node)
            .is_some_and(|a| a.token_digest.is_some() && a.reset_at.is_none())
    }

    /// What the node's view shows of its agent; `None` before any lookup.
    pub fn view(&self, node: &str) -> Option<AgentView> {
        lock(&self.agents).get(node).map(|a| AgentView {
            callback_url: a.callback_url.clone(),
            version: a.agent_version.clone(),
            last_heartbeat: a.last_heartbeat,
            token_issued_at: a.token_issued_at,
            token_reset: a.reset_reason.clone(),
        })
    }
}

/// Reset reason: the node fetched its boot data (it is booting).
pub const RESET_BOOTING: &str = "boot data fetched";
/// Reset reason: an operator asked.
pub const RESET_OPERATOR: &str = "operator";
/// Reset reason: an inspection callback came (a new agent process).
pub const RESET_INSPECTED: &str = "inspection callback";
