//! Clusters, hosts and networks as the Commissaire dialect shows them: views
//! of the applied design (docs/compat.md, "Commissaire").
//!
//! - A **host** is a BaremetalNode by its static address on the host network
//!   ([`ClusterConfig::network`]; by default the node's `primary_network`,
//!   else its first static address off its OOB network).
//! - A **cluster** is the set of hosts whose effective
//!   `metadata.owner_data[<cluster key>]` names it ([`ClusterConfig::key`],
//!   default `commissaire-cluster`), plus the clusters a design Network
//!   declares in `data.labels[<cluster key>]` (a name, a comma-separated list
//!   or a list of names): that Network is the cluster's `network`, and a
//!   declared cluster exists without members.
//! - A **network** is a design Network.
//! - There is no container manager.
//!
//! The index ([`ClusterView`]) is built once per served revision, on the
//! first request that needs it (as the agents' node index). A host's status
//! and facts are read per request from what slipway knows of the node: its
//! boot actions' reports, its Ironic agent's heartbeats, its latest
//! inspection, and the Luna2 monitor ([`ClusterService::monitor_status`]: what
//! its installer last posted, through `services::node_status`).
//! Every method but [`ClusterService::new`] and [`ClusterService::view`]
//! may block on SQLite: call them off the async runtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use super::agents::AgentService;
use super::node_status::NodeStatusService;
use super::writeback::{Edit, EditError, WriteBack, WriteError};
use super::{BootError, BootService, ServiceError};
use crate::design::Design;
use crate::design::Kind;
use crate::state::Store;

/// Default of `--commissaire-cluster-key`.
pub const DEFAULT_CLUSTER_KEY: &str = "commissaire-cluster";

/// How the design is read as clusters (`ServeConfig.commissaire`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `owner_data` key naming a node's cluster, and the Network label
    /// key declaring clusters (`--commissaire-cluster-key`).
    pub key: String,
    /// The network whose static address is a host's address
    /// (`--commissaire-network`; `None`: each node's primary network, else
    /// its first static address off its OOB network).
    pub network: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            key: DEFAULT_CLUSTER_KEY.to_string(),
            network: None,
        }
    }
}

/// Commissaire's host statuses (`commissaire/constants.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStatus {
    /// Nothing is known of the machine yet.
    Investigating,
    /// It is being deployed: some boot actions have not reported.
    Bootstrapping,
    /// Deployed and up.
    Active,
    /// A boot action or its inspection failed.
    Failed,
}

impl HostStatus {
    /// The word Commissaire uses.
    pub fn word(self) -> &'static str {
        match self {
            HostStatus::Investigating => "investigating",
            HostStatus::Bootstrapping => "bootstrapping",
            HostStatus::Active => "active",
            HostStatus::Failed => "failed",
        }
    }
}

/// One host of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The host's address on the host network.
    pub address: String,
    /// The BaremetalNode.
    pub node: String,
    /// The network the address is on.
    pub network: String,
    /// The cluster its effective `owner_data` names.
    pub cluster: Option<String>,
    /// Whether that name is set by the node's own document.
    pub cluster_in_node: bool,
    /// Whether its host profile chain names a cluster (hidden with `!key`
    /// when the node leaves it).
    pub cluster_in_profile: bool,
    /// The host profile's platform image.
    pub os: String,
}

/// One cluster of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    /// The cluster's name.
    pub name: String,
    /// Its network: the Network declaring it, else its first member's host network.
    pub network: String,
    /// The Network whose labels declare it, if one does.
    pub declared_on: Option<String>,
    /// Member addresses, sorted.
    pub members: Vec<String>,
}

/// One network of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkEntry {
    /// The Network's name.
    pub name: String,
    /// Design facts shown as Commissaire's `options` (cidr, vlan, mtu).
    pub options: BTreeMap<String, serde_json::Value>,
}

/// The served revision as clusters, hosts and networks.
#[derive(Debug, Default)]
pub struct ClusterView {
    /// The commit it was built from.
    pub commit: String,
    /// Hosts by address.
    pub hosts: BTreeMap<String, HostEntry>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, ClusterEntry>,
    /// Networks by name.
    pub networks: BTreeMap<String, NetworkEntry>,
    /// Node name → address.
    pub by_node: HashMap<String, String>,
}

/// The names a Network label value declares.
pub fn declared_names(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        serde_json::Value::String(s) => s.split(',').map(|s| s.trim().to_string()).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(|s| s.trim().to_string()))
            .collect(),
        _ => Vec::new(),
    };
    out.retain(|s| !s.is_empty());
    out
}

impl ClusterView {
    /// The index of `design` under `cfg`.
    pub fn build(design: &Design, commit: &str, cfg: &ClusterConfig) -> ClusterView {
        let mut v = ClusterView {
            commit: commit.to_string(),
            ..Default::default()
        };
        for n in &design.networks {
            let mut options = BTreeMap::new();
            if let Some(c) = &n.data.cidr {
                options.insert("cidr".into(), c.clone().into());
            }
            if let Some(vlan) = &n.data.vlan {
                options.insert("vlan".into(), vlan.clone().into());
            }
            if let Some(mtu) = n.data.mtu {
                options.insert("mtu".into(), serde_json::json!(mtu));
            }
            v.networks.insert(
                n.name.clone(),
                NetworkEntry {
                    name: n.name.clone(),
                    options,
                },
            );
            if let Some(label) = n.data.labels.get(&cfg.key) {
                for c in declared_names(label) {
                    v.clusters.entry(c.clone()).or_insert(ClusterEntry {
                        name: c,
                        network: n.name.clone(),
                        declared_on: Some(n.name.clone()),
                        members: Vec::new(),
                    });
                }
            }
        }
        for node in design.effective_nodes() {
            let (network, address) = match &cfg.network {
                Some(net) => match node.address_on(net) {
                    Some(a) => (net.clone(), a.to_string()),
                    None => continue,
                },
                None => {
                    let oob = node.oob.as_ref().and_then(|o| o.network.clone());
                    let primary = node
                        .primary_network
                        .as_deref()
                        .and_then(|p| node.address_on(p).map(|a| (p.to_string(), a.to_string())));
                    let first = || {
                        node.addressing.iter().find_map(|(n, a)| match (n, a) {
                            (Some(n), Some(a)) if a != "dhcp" && Some(n) != oob.as_ref() => {
                                Some((n.clone(), a.clone()))
                            }
                            _ => None,
                        })
                    };
                    match primary.or_else(first) {
                        Some(x) => x,
                        None => continue,
                    }
                }
            };
            let cluster = node
                .owner_data
                .get(&cfg.key)
                .cloned()
                .filter(|c| !c.is_empty());
            let cluster_in_node = design
                .node(&node.name)
                .and_then(|e| e.data.metadata.as_ref())
                .and_then(|m| m.owner_data.as_ref())
                .is_some_and(|o| o.contains_key(&cfg.key));
            let hidden = format!("!{}", cfg.key);
            let cluster_in_profile = node
                .profile_chain
                .iter()
                .filter_map(|p| design.host_profile(p))
                .filter_map(|p| p.data.metadata.as_ref()?.owner_data.as_ref())
                .find(|o| o.contains_key(&cfg.key) || o.contains_key(&hidden))
                .is_some_and(|o| o.contains_key(&cfg.key));
            if let Some(c) = &cluster {
                let entry = v.clusters.entry(c.clone()).or_insert(ClusterEntry {
                    name: c.clone(),
                    network: network.clone(),
                    declared_on: None,
                    members: Vec::new(),
                });
                entry.members.push(address.clone());
            }
            v.by_node.insert(node.name.clone(), address.clone());
            v.hosts.entry(address.clone()).or_insert(HostEntry {
                address,
                node: node.name.clone(),
                network,
                cluster,
                cluster_in_node,
                cluster_in_profile,
                os: node.image.clone().unwrap_or_default(),
            });
        }
        for c in v.clusters.values_mut() {
            c.members.sort_by_key(|a| a.parse::<IpAddr>().ok());
            c.members.dedup();
        }
        v
    }
}

/// A host as Commissaire shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The host's entry in the index.
    pub entry: HostEntry,
    /// Its status.
    pub status: HostStatus,
    /// CPUs from its latest inspection (0: none).
    pub cpus: u64,
    /// Memory in KiB from its latest inspection.
    pub memory: u64,
    /// Disk space in KiB (every disk) from its latest inspection.
    pub space: u64,
    /// When slipway last heard of it (seconds since the epoch).
    pub last_check: Option<i64>,
}

/// A cluster as Commissaire shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The cluster's entry in the index.
    pub entry: ClusterEntry,
    /// `ok`, `degraded` or `failed` (Commissaire's rule).
    pub status: &'static str,
    /// Members that are `active`.
    pub available: usize,
    /// Members that are not.
    pub unavailable: usize,
}

struct Built {
    commit: String,
    view: Arc<ClusterView>,
}

/// See the module docs.
pub struct ClusterService {
    cfg: ClusterConfig,
    boot: Arc<BootService>,
    agents: Arc<AgentService>,
    store: Arc<Mutex<Store>>,
    writeback: Arc<WriteBack>,
    node_status: Arc<NodeStatusService>,
    view: RwLock<Option<Built>>,
    building: Mutex<()>,
}

impl std::fmt::Debug for ClusterService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterService")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// What slipway knows of a node, read once per request.
struct Known {
    counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ClusterService {
    /// The service on the served design, reading on `store` (the API's
    /// connection), writing through `writeback`.
    pub fn new(
        cfg: ClusterConfig,
        boot: Arc<BootService>,
        agents: Arc<AgentService>,
        store: Arc<Mutex<Store>>,
        writeback: Arc<WriteBack>,
        node_status: Arc<NodeStatusService>,
    ) -> ClusterService {
        ClusterService {
            cfg,
            boot,
            agents,
            store,
            writeback,
            node_status,
            view: RwLock::new(None),
            building: Mutex::new(()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.cfg
    }

    /// The index of the served revision, built once per served revision.
    pub fn view(&self) -> Result<Arc<ClusterView>, BootError> {
        let loaded = self.boot.served_design()?;
        let current = |b: &Option<Built>| {
            b.as_ref()
                .filter(|b| b.commit == loaded.commit)
                .map(|b| b.view.clone())
        };
        if let Some(v) = current(&self.view.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(v);
        }
        let _one = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = current(&self.view.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(v);
        }
        let view = Arc::new(ClusterView::build(
            &loaded.design,
            &loaded.commit,
            &self.cfg,
        ));
        tracing::info!(commit = %loaded.commit, hosts = view.hosts.len(), clusters = view.clusters.len(), "commissaire: cluster view built for the served revision");
        *self.view.write().unwrap_or_else(|p| p.into_inner()) = Some(Built {
            commit: loaded.commit.clone(),
            view: view.clone(),
        });
        Ok(view)
    }

    fn known(&self) -> Result<Known, ServiceError> {
        let store = self.store.lock().map_err(|_| ServiceError::poisoned())?;
        Ok(Known {
            counts: store.boot_action_counts()?,
        })
    }

    /// The Luna2 monitor's word on a node (what its installer last posted to
    /// `/monitor/status/{node}`): `active` once installed, `failed` on an
    /// error, `bootstrapping` while installing; `None` when it posted
    /// nothing. Blocks (SQLite on a cold cache).
    pub fn monitor_status(&self, node: &str) -> Option<HostStatus> {
        let state = match self.node_status.cached(node) {
            Some(s) => s,
            None => self.node_status.get(node).ok().flatten(),
        }?;
        Some(if state.installed() {
            HostStatus::Active
        } else if state.failed() {
            HostStatus::Failed
        } else {
            HostStatus::Bootstrapping
        })
    }

    fn info(&self, entry: &HostEntry, known: &Known) -> Result<HostInfo, ServiceError> {
        let (introspection, data) = {
            let store = self.store.lock().map_err(|_| ServiceError::poisoned())?;
            (
                store.introspection(&entry.node)?,
                store.inspection_data(&entry.node)?,
            )
        };
        let heartbeat = self.agents.view(&entry.node).and_then(|a| a.last_heartbeat);
        let counts = known.counts.get(&entry.node);
        let count = |s: &str| counts.and_then(|c| c.get(s)).copied().unwrap_or(0);
        let inspection_failed = introspection
            .as_ref()
            .is_some_and(|r| r.state == "error" || r.error.is_some());
        let status = if let Some(s) = self.monitor_status(&entry.node) {
            s
        } else if count("failure") > 0 || inspection_failed {
            HostStatus::Failed
        } else if count("success") > 0 && count("incomplete") == 0 {
            HostStatus::Active
        } else if count("success") > 0 || heartbeat.is_some() || introspection.is_some() {
            HostStatus::Bootstrapping
        } else {
            HostStatus::Investigating
        };
        let (mut cpus, mut memory, mut space) = (0, 0, 0);
        if let Some(d) = &data {
            if let Ok(cb) = crate::inspection::parse(d.data_element.as_bytes()) {
                let inv = cb.inventory();
                cpus = inv.cpu.as_ref().and_then(|c| c.count).unwrap_or(0);
                memory = inv
                    .memory
                    .as_ref()
                    .and_then(|m| {
                        m.physical_mb
                            .map(|mb| mb * 1024)
                            .or(m.total.map(|b| b / 1024))
                    })
                    .unwrap_or(0);
                space = inv
                    .disks
                    .iter()
                    .flatten()
                    .filter_map(|d| d.size)
                    .sum::<u64>()
                    / 1024;
            }
        }
        let last_check = [
            heartbeat,
            introspection.as_ref().and_then(|r| r.finished_at),
            data.as_ref().map(|d| d.collected_at),
        ]
        .into_iter()
        .flatten()
        .max();
        Ok(HostInfo {
            entry: entry.clone(),
            status,
            cpus,
            memory,
            space,
            last_check,
        })
    }

    /// One host by address (`None`: no host has it). Blocks.
    pub fn host(&self, address: &str) -> Result<Option<HostInfo>, ServiceError> {
        let view = self.view()?;
        let Some(entry) = view.hosts.get(address) else {
            return Ok(None);
        };
        let known = self.known()?;
        Ok(Some(self.info(entry, &known)?))
    }

    /// Every host, by address. Blocks.
    pub fn hosts(&self) -> Result<Vec<HostInfo>, ServiceError> {
        let view = self.view()?;
        let known = self.known()?;
        view.hosts.values().map(|e| self.info(e, &known)).collect()
    }

    /// One cluster with its members' availability (`None`: no such cluster). Blocks.
    pub fn cluster(&self, name: &str) -> Result<Option<ClusterInfo>, ServiceError> {
        let view = self.view()?;
        let Some(entry) = view.clusters.get(name) else {
            return Ok(None);
        };
        let known = self.known()?;
        let mut available = 0;
        for a in &entry.members {
            if let Some(h) = view.hosts.get(a) {
                if self.info(h, &known)?.status == HostStatus::Active {
                    available += 1;
                }
            }
        }
        let total = entry.members.len();
        let unavailable = total - available;
        // Commissaire's rule (handlers/clusters get_cluster).
        let status = if total > 0 && unavailable == total {
            "failed"
        } else if unavailable > 0 {
            "degraded"
        } else {
            "ok"
        };
        Ok(Some(ClusterInfo {
            entry: entry.clone(),
            status,
            available,
            unavailable,
        }))
    }

    /// The member set a list of addresses names, or the first address that
    /// is no host.
    pub fn address_set(view: &ClusterView, list: &[String]) -> Result<BTreeSet<String>, String> {
        let mut out = BTreeSet::new();
        for a in list {
            if !view.hosts.contains_key(a) {
                return Err(a.clone());
            }
            out.insert(a.clone());
        }
        Ok(out)
    }
}

/// A change of one document's `data`, re-applied to the document as the
/// head being edited holds it (so a concurrent commit's change is kept).
pub type DataChange = Arc<dyn Fn(&mut serde_json::Value) -> Result<(), String> + Send + Sync>;

/// A document a cluster write changes.
#[derive(Clone)]
pub struct DocChange {
    /// `true`: a BaremetalNode; `false`: a Network.
    pub node: bool,
    /// The document's name.
    pub name: String,
    /// What changes in its `data`.
    pub change: DataChange,
}

impl std::fmt::Debug for DocChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.node {
            "BaremetalNode"
        } else {
            "Network"
        };
        write!(f, "{kind}/{}", self.name)
    }
}

/// Why a cluster write was not made (nothing was committed).
#[derive(Debug, thiserror::Error)]
pub enum ClusterWriteError {
    /// No such cluster, host or network.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the design as it is (Commissaire's 409).
    #[error("{0}")]
    Conflict(String),
    /// The edited design would not validate: its messages (file:line each).
    #[error("the design would be invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The request cannot be written (a user name git refuses, no write-back).
    #[error("{0}")]
    Refused(String),
    /// The service failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<BootError> for ClusterWriteError {
    fn from(e: BootError) -> Self {
        ClusterWriteError::Service(e.into())
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The commit made (`None`: the design already said so).
    pub commit: Option<String>,
}

/// The JSON object at `v[key]`, made one if missing or null.
fn object<'a>(
    v: &'a mut serde_json::Value,
    key: &str,
) -> Result<&'a mut serde_json::Map<String, serde_json::Value>, String> {
    let map = v
        .as_object_mut()
        .ok_or_else(|| "the document's data is not a mapping".to_string())?;
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| serde_json::json!({}));
    if slot.is_null() {
        *slot = serde_json::json!({});
    }
    slot.as_object_mut()
        .ok_or_else(|| format!("`{key}` is not a mapping"))
}

/// A node's `data` with its own `metadata.owner_data[key]` naming
/// `cluster` (`None`: no cluster; `!key` hides a host profile's value when
/// `hide_profile`, Drydock's merge rule).
pub fn set_node_cluster(
    data: &mut serde_json::Value,
    key: &str,
    cluster: Option<&str>,
    hide_profile: bool,
) -> Result<(), String> {
    let meta = object(data, "metadata")?;
    let mut wrapped = serde_json::Value::Object(std::mem::take(meta));
    let owner = object(&mut wrapped, "owner_data")?;
    let hidden = format!("!{key}");
    match cluster {
        Some(c) => {
            owner.insert(key.to_string(), c.into());
            owner.remove(&hidden);
        }
        None => {
            owner.remove(key);
            if hide_profile {
                owner.insert(hidden, "".into());
            } else {
                owner.remove(&hidden);
            }
        }
    }
    let mut meta_map = match wrapped {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if meta_map
        .get("owner_data")
        .and_then(|o| o.as_object())
        .is_some_and(|o| o.is_empty())
    {
        meta_map.remove("owner_data");
    }
    let root = data
        .as_object_mut()
        .ok_or_else(|| "the document's data is not a mapping".to_string())?;
    if meta_map.is_empty() {
        root.remove("metadata");
    } else {
        root.insert("metadata".into(), serde_json::Value::Object(meta_map));
    }
    Ok(())
}

/// A Network's `data` with `cluster` added to (or removed from) the
/// clusters its `labels[key]` declares; a single name stays a string, more
/// become a comma-separated string, a list stays a list.
pub fn set_network_declares(
    data: &mut serde_json::Value,
    key: &str,
    cluster: &str,
    declared: bool,
) -> Result<(), String> {
    let labels = object(data, "labels")?;
    let old = labels.get(key).cloned().unwrap_or(serde_json::Value::Null);
    let mut names = declared_names(&old);
    names.retain(|n| n != cluster);
    if declared {
        names.push(cluster.to_string());
    }
    if names.is_empty() {
        labels.remove(key);
    } else if old.is_array() {
        labels.insert(key.to_string(), serde_json::json!(names));
    } else {
        labels.insert(key.to_string(), names.join(",").into());
    }
    if labels.is_empty() {
        data.as_object_mut().map(|m| m.remove("labels"));
    }
    Ok(())
}

/// How a host enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// A host of the design: its record.
    Known(HostInfo),
    /// An unknown address: a BaremetalNode proposed on the proposal branch.
    Proposed {
        /// The address.
        address: String,
        /// The proposed node's name.
        node: String,
        /// The file in the repository.
        path: String,
        /// The commit (`None`: the branch already held this proposal).
        commit: Option<String>,
    },
}

fn not_found(what: String) -> ClusterWriteError {
    ClusterWriteError::NotFound(what)
}

impl ClusterView {
    /// The network a new cluster gets when the request names none the design
    /// has (Commissaire falls back to its `default` network): the host
    /// network when configured, else the network most hosts are on, else
    /// the first Network.
    pub fn default_network(&self, cfg: &ClusterConfig) -> Option<String> {
        if let Some(n) = &cfg.network {
            return Some(n.clone());
        }
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for h in self.hosts.values() {
            *count.entry(&h.network).or_default() += 1;
        }
        let best = count
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(n, _)| n.to_string());
        best.or_else(|| self.networks.keys().next().cloned())
    }

    fn cluster_entry(&self, name: &str) -> Result<&ClusterEntry, ClusterWriteError> {
        self.clusters
            .get(name)
            .ok_or_else(|| not_found(format!("no cluster {name}")))
    }

    fn host_entry(&self, address: &str) -> Result<&HostEntry, ClusterWriteError> {
        self.hosts
            .get(address)
            .ok_or_else(|| not_found(format!("no host has address {address}")))
    }
}

impl ClusterService {
    fn node_change(&self, h: &HostEntry, cluster: Option<&str>) -> DocChange {
        let key = self.cfg.key.clone();
        let cluster = cluster.map(str::to_string);
        let hide = h.cluster_in_profile;
        DocChange {
            node: true,
            name: h.node.clone(),
            change: Arc::new(move |data| set_node_cluster(data, &key, cluster.as_deref(), hide)),
        }
    }

    fn network_change(&self, network: &str, cluster: &str, declared: bool) -> DocChange {
        let key = self.cfg.key.clone();
        let cluster = cluster.to_string();
        DocChange {
            node: false,
            name: network.to_string(),
            change: Arc::new(move |data| set_network_declares(data, &key, &cluster, declared)),
        }
    }

    /// The changes adding `address` to `cluster` (none when it is a member);
    /// a host in another cluster is a conflict (a node is in one cluster).
    pub fn plan_join(
        &self,
        view: &ClusterView,
        cluster: &str,
        address: &str,
    ) -> Result<Vec<DocChange>, ClusterWriteError> {
        view.cluster_entry(cluster)?;
        let h = view.host_entry(address)?;
        match h.cluster.as_deref() {
            Some(c) if c == cluster => Ok(Vec::new()),
            Some(c) => Err(ClusterWriteError::Conflict(format!(
                "host {address} is in cluster {c}; a host is in one cluster"
            ))),
            None => Ok(vec![self.node_change(h, Some(cluster))]),
        }
    }

    /// The changes removing `address` from `cluster` (none when it is not a
    /// member); the last member leaving an undeclared cluster declares it on
    /// its network, so the cluster stays.
    pub fn plan_leave(
        &self,
        view: &ClusterView,
        cluster: &str,
        address: &str,
    ) -> Result<Vec<DocChange>, ClusterWriteError> {
        let c = view.cluster_entry(cluster)?;
        if !c.members.iter().any(|m| m == address) {
            return Ok(Vec::new());
        }
        let h = view.host_entry(address)?;
        let mut out = vec![self.node_change(h, None)];
        if c.declared_on.is_none() && c.members.len() == 1 {
            out.push(self.network_change(&c.network, cluster, true));
        }
        Ok(out)
    }

    /// The changes making `new` the members of `cluster`, when `old` is its
    /// current member set (else a conflict, as Commissaire's 409).
    pub fn plan_members(
        &self,
        view: &ClusterView,
        cluster: &str,
        old: &BTreeSet<String>,
        new: &BTreeSet<String>,
    ) -> Result<Vec<DocChange>, ClusterWriteError> {
        let c = view.cluster_entry(cluster)?;
        let current: BTreeSet<String> = c.members.iter().cloned().collect();
        if &current != old {
            return Err(ClusterWriteError::Conflict(format!(
                "Conflict setting hosts for cluster {cluster}"
            )));
        }
        for a in new {
            view.host_entry(a)?;
        }
        let mut out = Vec::new();
        for a in new.difference(&current) {
            out.extend(self.plan_join(view, cluster, a)?);
        }
        for a in current.difference(new) {
            out.push(self.node_change(view.host_entry(a)?, None));
        }
        if new.is_empty() && !current.is_empty() && c.declared_on.is_none() {
            out.push(self.network_change(&c.network, cluster, true));
        }
        Ok(out)
    }

    /// The changes declaring `cluster` on `network` (a design Network; one
    /// the design lacks, or none, is the default network, as Commissaire
    /// falls back to its `default`), and the network it gets.
    pub fn plan_declare(
        &self,
        view: &ClusterView,
        cluster: &str,
        network: Option<&str>,
    ) -> Result<(Vec<DocChange>, String), ClusterWriteError> {
        let existing = view.clusters.get(cluster);
        let net = match network.filter(|n| view.networks.contains_key(*n)) {
            Some(n) => n.to_string(),
            None => match existing {
                Some(c) => c.network.clone(),
                None => view.default_network(&self.cfg).ok_or_else(|| {
                    ClusterWriteError::Conflict(
                        "the design has no Network to put a cluster on".into(),
                    )
                })?,
            },
        };
        if !view.networks.contains_key(&net) {
            return Err(ClusterWriteError::Conflict(format!(
                "the default network {net} is no Network of the design"
            )));
        }
        let mut out = Vec::new();
        match existing.and_then(|c| c.declared_on.as_deref()) {
            Some(on) if on == net => {}
            Some(on) => {
                out.push(self.network_change(on, cluster, false));
                out.push(self.network_change(&net, cluster, true));
            }
            None => out.push(self.network_change(&net, cluster, true)),
        }
        Ok((out, net))
    }

    /// The changes removing `cluster`'s declaration; a cluster with members
    /// is a conflict (its members' nodes name it).
    pub fn plan_undeclare(
        &self,
        view: &ClusterView,
        cluster: &str,
    ) -> Result<Vec<DocChange>, ClusterWriteError> {
        let c = view.cluster_entry(cluster)?;
        if !c.members.is_empty() {
            return Err(ClusterWriteError::Conflict(format!(
                "cluster {cluster} has {} member(s); remove them first",
                c.members.len()
            )));
        }
        Ok(c.declared_on
            .iter()
            .map(|on| self.network_change(on, cluster, false))
            .collect())
    }

    /// A host enrolling from `address`: a host of the served design gets its
    /// record (`cluster`, when named, must be its cluster: Commissaire's
    /// 409); an unknown address becomes a BaremetalNode proposed on the
    /// proposal branch (`cluster`, when named, must exist), never a change
    /// of the followed branch. Blocks (git).
    pub fn enrol(
        &self,
        inspection: &super::inspection::InspectionService,
        address: IpAddr,
        cluster: Option<&str>,
    ) -> Result<Enrolled, ClusterWriteError> {
        let view = self.view()?;
        let text = address.to_string();
        if let Some(c) = cluster {
            if !view.clusters.contains_key(c) {
                return Err(ClusterWriteError::Conflict(format!("no cluster {c}")));
            }
        }
        if let Some(h) = view.hosts.get(&text) {
            if let Some(c) = cluster {
                if h.cluster.as_deref() != Some(c) {
                    return Err(ClusterWriteError::Conflict(format!(
                        "host {text} is not in cluster {c}"
                    )));
                }
            }
            let known = self.known()?;
            return Ok(Enrolled::Known(self.info(h, &known)?));
        }
        let loaded = self.boot.served_design()?;
        let design = &loaded.design;
        let network = design
            .networks
            .iter()
            .find(|n| {
                n.data
                    .cidr
                    .as_deref()
                    .and_then(|c| c.trim().parse::<ipnet::IpNet>().ok())
                    .is_some_and(|net| net.contains(&address))
            })
            .map(|n| n.name.clone())
            .or_else(|| view.default_network(&self.cfg));
        let profile = design.host_profiles.first().map(|p| p.name.clone());
        let name = format!(
            "commissaire-{}",
            text.replace(['.', ':'], "-").trim_matches('-')
        );
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut y = String::new();
        y.push_str(
            "# Proposed by slipway: a host enrolled through Commissaire's PUT /api/v0/host\n",
        );
        y.push_str(&format!(
            "# from {text}, an address no node of the design has.\n"
        ));
        y.push_str(
            "# Check every REVIEW line, then merge this branch; the next reconcile applies it.\n",
        );
        y.push_str("schema: 'drydock/BaremetalNode/v1'\n");
        y.push_str("metadata:\n  schema: 'metadata/Document/v1'\n");
        y.push_str(&format!("  name: {}\n", q(&name)));
        y.push_str("  storagePolicy: 'cleartext'\n  labels:\n    application: 'drydock'\n");
        y.push_str("  layeringDefinition:\n    abstract: false\n    layer: site\n");
        y.push_str("data:\n");
        if let Some(p) = &profile {
            y.push_str(
                "  # REVIEW: the design's first HostProfile; nothing is known of the machine.\n",
            );
            y.push_str(&format!("  host_profile: {}\n", q(p)));
        }
        if let Some(n) = &network {
            y.push_str("  # REVIEW: the address the host enrolled from, on the network whose CIDR holds it.\n");
            y.push_str(&format!(
                "  addressing:\n    - network: {}\n      address: {}\n",
                q(n),
                q(&text)
            ));
        }
        if let Some(c) = cluster {
            y.push_str(&format!(
                "  metadata:\n    owner_data:\n      {}: {}\n",
                q(&self.cfg.key),
                q(c)
            ));
        }
        let message = format!(
            "commissaire: {name} ({text}) enrolled\n\nProposed by slipway from a Commissaire PUT /api/v0/host \
             of an address the design does not know. Review the `# REVIEW:` lines, then merge."
        );
        let (path, commit) = inspection
            .propose_document(
                &format!("{}/{name}.yaml", crate::inspection::propose::PROPOSAL_DIR),
                &y,
                &message,
            )
            .map_err(|e| match e {
                super::inspection::CallbackError::Service(e) => ClusterWriteError::Service(e),
                other => ClusterWriteError::Service(ServiceError::Internal(other.to_string())),
            })?;
        Ok(Enrolled::Proposed {
            address: text,
            node: name,
            path,
            commit,
        })
    }

    /// Commits `changes` for `user` through the design write-back (validated
    /// whole, committed only when valid; re-applied on a moved head).
    pub fn commit(
        &self,
        user: &str,
        what: &str,
        changes: Vec<DocChange>,
    ) -> Result<Written, ClusterWriteError> {
        if changes.is_empty() {
            return Ok(Written { commit: None });
        }
        let edits = changes
            .into_iter()
            .map(|c| {
                let change = c.change.clone();
                Edit::Update {
                    kind: if c.node {
                        Kind::BaremetalNode
                    } else {
                        Kind::Network
                    },
                    name: c.name,
                    change: Arc::new(move |f: &mut super::writeback::Fields| change(&mut f.data)),
                }
            })
            .collect();
        match self.writeback.edit(user, what, edits) {
            Ok(done) => {
                tracing::info!(commit = done.commit.as_deref().unwrap_or("unchanged"), branch = %done.branch, applied = ?done.applied, "commissaire: write committed: {what} by {user}");
                Ok(Written {
                    commit: done.commit,
                })
            }
            Err(e @ WriteError::Invalid { .. }) => {
                Err(ClusterWriteError::Invalid(e.message_lines()))
            }
            Err(e @ WriteError::HeadInvalid { .. }) => {
                Err(ClusterWriteError::Conflict(e.to_string()))
            }
            Err(WriteError::Edit(EditError::NotFound { kind, name })) => {
                Err(ClusterWriteError::Conflict(format!(
                    "{} {name} is no longer in the design",
                    kind.name()
                )))
            }
            Err(WriteError::Edit(e)) => Err(ClusterWriteError::Conflict(e.to_string())),
            Err(WriteError::Conflict(m)) => Err(ClusterWriteError::Conflict(m)),
            Err(WriteError::Refused(m)) => Err(ClusterWriteError::Refused(m)),
            Err(WriteError::Internal(m)) => {
                Err(ClusterWriteError::Service(ServiceError::Internal(m)))
            }
        }
    }
}
