//! Boot scripts of the served revision (what Luna2's `/boot/…` routes
//! answer): the menus, the local-disk script, a node's network boot found by
//! MAC or named by hand, the discovery script for an unknown MAC, and a
//! node's installer, rendered by [`crate::render::ipxe`] from the applied
//! design.
//!
//! Which script a known node gets follows the seed's table, from the node's
//! effective `metadata.owner_data` (inherited through its host profiles):
//! `luna2.netboot` (default `true`) and `luna2.bootmenu` (default `false`).
//! A node that does not netboot gets the local-disk script; one that does
//! gets its kernel, initrd and arguments: the host profile's `platform`
//! (image, kernel, kernel_params), its address on its primary network, and
//! the URL and identity key of its Drydock boot data (its current deployment,
//! `services::deployments`).
//!
//! Nodes are found by MAC through the agents' [`NodeIndex`] of the served
//! revision (one index per revision for the whole server). The menus are
//! rendered once per served revision and a node's script once per
//! deployment; a repeated request is answered from memory, without a
//! blocking thread. Every failure a booting machine can meet is an error
//! script (iPXE follows only 200s); the caller refuses hostile input first.

use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::agents::AgentService;
use super::render_cache::Loaded;
use super::{BootError, BootService};
use crate::design::effective::EffectiveNode;
use crate::design::Design;
use crate::inspection::{mac_key, mac_text, Match, NodeIndex};
use crate::render::ipxe::{self, BootScripts, MenuValues, NodeValues};

/// `metadata.owner_data` key: the node boots over the network (default true).
pub const NETBOOT_KEY: &str = "luna2.netboot";
/// `metadata.owner_data` key: the node is offered the full menu (default false).
pub const BOOTMENU_KEY: &str = "luna2.bootmenu";

/// Which script the seed's table gives a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Menu {
    /// Known, netboot, bootmenu: the full menu (also an unknown node).
    Normal,
    /// Known, netboot, no bootmenu: the short menu.
    Short,
    /// Known, no netboot: the local disk.
    Disk,
}

fn flag(node: &EffectiveNode, key: &str, default: bool) -> bool {
    match node
        .owner_data
        .get(key)
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => default,
        Some(v) => !matches!(v.as_str(), "false" | "no" | "0" | "off"),
    }
}

/// The node's `luna2.netboot` and `luna2.bootmenu` flags.
pub fn flags(node: &EffectiveNode) -> (bool, bool) {
    (
        flag(node, NETBOOT_KEY, true),
        flag(node, BOOTMENU_KEY, false),
    )
}

/// The seed's table: which template a node's DHCP entry names.
pub fn menu_of(node: Option<&EffectiveNode>) -> Menu {
    match node.map(flags) {
        None => Menu::Normal,
        Some((false, _)) => Menu::Disk,
        Some((true, true)) => Menu::Normal,
        Some((true, false)) => Menu::Short,
    }
}

/// A script to answer, and whether it is an error script (for logs and
/// metrics; the status is 200 either way).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The script.
    pub body: Bytes,
    /// True when the script only says what failed.
    pub error: bool,
}

/// Why the installer of a node cannot be given (a Luna2 `{"message"}`).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// No such node in the served design.
    #[error("node {0} not found")]
    UnknownNode(String),
    /// The node's values cannot be rendered.
    #[error("{0}")]
    Unrenderable(String),
    /// No design served.
    #[error(transparent)]
    Boot(#[from] BootError),
}

/// What is kept per served revision.
struct Served {
    loaded: Arc<Loaded>,
    /// The MAC index of `loaded` (its positions are the design's nodes').
    index: Arc<NodeIndex>,
    /// Each node's script by the seed's table, by position.
    menus: Vec<Menu>,
    menu: Bytes,
    short: Bytes,
    disk: Bytes,
    /// Each node's network-boot script (by position): the last one rendered,
    /// for one MAC and one deployment. One lock per node, so machines
    /// booting together do not share one.
    scripts: Vec<RwLock<Option<NodeScript>>>,
}

/// A node's rendered network boot.
struct NodeScript {
    mac: u64,
    deployment: String,
    body: Bytes,
}

/// See the module docs.
pub struct BootScriptService {
    boot: Arc<BootService>,
    agents: Arc<AgentService>,
    scripts: BootScripts,
    base: String,
    served: RwLock<Option<Arc<Served>>>,
    building: std::sync::Mutex<()>,
}

impl std::fmt::Debug for BootScriptService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootScriptService")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The origin (`scheme://authority`) of a URL.
pub fn origin(url: &str) -> String {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url[..i + 3 + j].to_string(),
            None => url.to_string(),
        },
        None => url.trim_end_matches('/').to_string(),
    }
}

impl BootScriptService {
    /// The service; scripts point machines at `base` (the server's origin,
    /// the one its boot-action reports go to).
    pub fn new(boot: Arc<BootService>, agents: Arc<AgentService>, base: &str) -> Self {
        BootScriptService {
            boot,
            agents,
            scripts: BootScripts::new(),
            base: origin(base),
            served: RwLock::new(None),
            building: std::sync::Mutex::new(()),
        }
    }

    /// The origin scripts point at.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The error script for `message`, chaining to `retry`.
    pub fn error(&self, retry: &str, message: &str) -> Answer {
        Answer {
            body: Bytes::from(self.scripts.error(&self.base, retry, message)),
            error: true,
        }
    }

    /// The served revision's cache when it is built (memory only).
    fn current(&self) -> Option<Arc<Served>> {
        let loaded = self.boot.served_design().ok()?;
        let g = self.served.read().unwrap_or_else(|p| p.into_inner());
        g.as_ref()
            .filter(|s| Arc::ptr_eq(&s.loaded, &loaded))
            .cloned()
    }

    /// The served revision's cache, built on first use (blocking: builds the
    /// node index and renders the menus).
    fn served(&self) -> Result<Arc<Served>, String> {
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let _b = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.current() {
            return Ok(s);
        }
        let loaded = self.boot.served_design().map_err(|e| e.to_string())?;
        let design = &loaded.design;
        // The agents' index of this revision (positions are the design's);
        // one of its own if the agents have moved to another.
        let index = self.agents.index().map_err(|e| e.to_string())?;
        let index = if index.indexes(design) {
            index
        } else {
            Arc::new(NodeIndex::build(design))
        };
        let mut nodes: Vec<String> = design
            .effective_nodes()
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| ipxe::name(n))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let mut groups: Vec<String> = design
            .host_profiles
            .iter()
            .map(|p| p.name.clone())
            .filter(|n| ipxe::name(n))
            .collect();
        groups.sort_unstable();
        let values = |path: &str| MenuValues {
            base: self.base.clone(),
            path: path.to_string(),
            nodes: nodes.clone(),
            groups: groups.clone(),
        };
        let render = |r: Result<String, crate::render::template::TemplateError>| {
            r.map(Bytes::from).map_err(|e| e.to_string())
        };
        let served = Arc::new(Served {
            menu: render(self.scripts.menu(false, &values("/boot")))?,
            short: render(self.scripts.menu(true, &values("/boot/short")))?,
            disk: render(self.scripts.disk(&self.base, "asked for"))?,
            menus: design
                .effective_nodes()
                .iter()
                .map(|n| menu_of(Some(n)))
                .collect(),
            scripts: (0..design.effective_nodes().len())
                .map(|_| RwLock::new(None))
                .collect(),
            loaded: loaded.clone(),
            index,
        });
        *self.served.write().unwrap_or_else(|p| p.into_inner()) = Some(served.clone());
        Ok(served)
    }

    /// `GET /boot`, `/boot/short`, `/boot/disk` from memory, when the served
    /// revision's scripts are built.
    pub fn menu_in_memory(&self, menu: Menu) -> Option<Answer> {
        self.current().map(|s| pick(&s, menu))
    }

    /// `GET /boot`, `/boot/short`, `/boot/disk` (blocking on first use).
    pub fn menu(&self, menu: Menu) -> Answer {
        let retry = match menu {
            Menu::Normal => "/boot",
            Menu::Short => "/boot/short",
            Menu::Disk => "/boot/disk",
        };
        match self.served() {
            Ok(s) => pick(&s, menu),
            Err(e) => self.error(retry, &format!("no boot menu: {e}")),
        }
    }

    /// The script of the machine with this MAC (already checked by the
    /// caller) from memory, when it was rendered for the node's current
    /// deployment; `None` sends the caller to [`Self::by_mac`] on a
    /// blocking thread.
    pub fn by_mac_in_memory(&self, mac: u64) -> Option<Answer> {
        // The cache as built, checked against the served design below (by
        // the node's deployment, or by `current` where there is none).
        let s = self
            .served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let i = match s.index.nodes_with_mac(mac) {
            [] => {
                self.current()?;
                return Some(self.discovery(mac));
            }
            [one] => *one as usize,
            _ => return None,
        };
        if s.menus[i] == Menu::Disk {
            self.current()?;
            return Some(pick(&s, Menu::Disk));
        }
        let name = &s.loaded.design.effective_nodes()[i].name;
        let d = self.boot.cached_deployment(name)?;
        if !d.served_with(&s.loaded) {
            return None;
        }
        let slot = s.scripts[i].read().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|c| c.mac == mac && c.deployment == d.record().deployment)
            .map(|c| Answer {
                body: c.body.clone(),
                error: false,
            })
    }

    fn discovery(&self, mac: u64) -> Answer {
        match self.scripts.discovery(&self.base, &mac_text(mac)) {
            Ok(s) => Answer {
                body: Bytes::from(s),
                error: false,
            },
            Err(e) => self.error("/boot", &e.to_string()),
        }
    }

    /// `GET /boot/search/mac/{mac}` (blocking: may build the revision's
    /// scripts, read or make the node's deployment).
    pub fn by_mac(&self, mac: u64) -> Answer {
        let retry = format!("/boot/search/mac/{}", mac_text(mac));
        let s = match self.served() {
            Ok(s) => s,
            Err(e) => return self.error(&retry, &format!("no boot script: {e}")),
        };
        let name = match s.index.lookup_macs(&[mac]) {
            Match::Node(n) => n.to_string(),
            Match::Unknown => return self.discovery(mac),
            Match::Several(names) => {
                return self.error(
                    "/boot",
                    &format!(
                        "MAC {} belongs to several nodes: {}",
                        mac_text(mac),
                        names.join(", ")
                    ),
                )
            }
        };
        self.node_script(&s, &name, mac, &retry)
    }

    /// `GET /boot/manual/hostname/{node}[/{mac}]`: the node's network boot
    /// with that MAC (default: its boot MAC). The design is not changed
    /// (Luna2 rewrites its database; here that is a config write).
    pub fn manual(&self, node: &str, mac: Option<u64>) -> Answer {
        let retry = "/boot";
        let s = match self.served() {
            Ok(s) => s,
            Err(e) => return self.error(retry, &format!("no boot script: {e}")),
        };
        let Some(i) = s.index.position(node) else {
            return self.error(retry, &format!("node {node} is not in the design"));
        };
        let n = &s.loaded.design.effective_nodes()[i];
        let Some(mac) = mac.or_else(|| n.boot_mac.as_deref().and_then(mac_key)) else {
            return self.error(
                retry,
                &format!("node {node} has no boot MAC and none was given"),
            );
        };
        self.node_script(&s, node, mac, retry)
    }

    /// `GET /boot/manual/group/{group}/{mac}`: the first node (by name) of
    /// the group (its own host profile) that has no boot MAC yet.
    pub fn manual_group(&self, group: &str, mac: u64) -> Answer {
        let s = match self.served() {
            Ok(s) => s,
            Err(e) => return self.error("/boot", &format!("no boot script: {e}")),
        };
        if s.loaded.design.host_profile(group).is_none() {
            return self.error("/boot", &format!("group {group} is not in the design"));
        }
        let mut free: Vec<&EffectiveNode> = s
            .loaded
            .design
            .effective_nodes()
            .iter()
            .filter(|n| n.profile_chain.first().map(String::as_str) == Some(group))
            .filter(|n| n.boot_mac.is_none())
            .map(|n| n.as_ref())
            .collect();
        free.sort_by(|a, b| a.name.cmp(&b.name));
        match free.first() {
            Some(n) => {
                let name = n.name.clone();
                self.node_script(&s, &name, mac, "/boot")
            }
            None => self.error(
                "/boot",
                &format!("group {group} has no node without a boot MAC; add one to the design"),
            ),
        }
    }

    fn node_script(&self, s: &Served, name: &str, mac: u64, retry: &str) -> Answer {
        let Some(i) = s.index.position(name) else {
            return self.error(retry, &format!("node {name} is not in the design"));
        };
        let node = &s.loaded.design.effective_nodes()[i];
        if s.menus[i] == Menu::Disk {
            return pick(s, Menu::Disk);
        }
        let d = match self.boot.deployment(name) {
            Ok(d) => d,
            Err(e) => return self.error(retry, &format!("node {name}: {e}")),
        };
        let dep = &d.record().deployment;
        if let Some(c) = s.scripts[i]
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|c| c.mac == mac && &c.deployment == dep)
        {
            return Answer {
                body: c.body.clone(),
                error: false,
            };
        }
        let identity = self.boot.identity_key(d.record());
        let values = match node_values(
            &self.base,
            &s.loaded.design,
            &s.loaded.commit,
            node,
            mac,
            identity,
        ) {
            Ok(v) => v,
            Err(e) => return self.error(retry, &e),
        };
        match self.scripts.node(&values) {
            Ok(text) => {
                let body = Bytes::from(text);
                *s.scripts[i].write().unwrap_or_else(|p| p.into_inner()) = Some(NodeScript {
                    mac,
                    deployment: dep.clone(),
                    body: body.clone(),
                });
                Answer { body, error: false }
            }
            Err(e) => self.error(retry, &e.to_string()),
        }
    }

    /// `GET /boot/install/{node}`: the node's installer (blocking).
    pub fn install(&self, name: &str) -> Result<Bytes, InstallError> {
        let s = self.served().map_err(InstallError::Unrenderable)?;
        let Some(i) = s.index.position(name) else {
            return Err(InstallError::UnknownNode(name.to_string()));
        };
        let node = &s.loaded.design.effective_nodes()[i];
        let d = self.boot.deployment(name)?;
        let identity = self.boot.identity_key(d.record());
        let mac = node.boot_mac.as_deref().and_then(mac_key).unwrap_or(0);
        let values = node_values(
            &self.base,
            &s.loaded.design,
            &s.loaded.commit,
            node,
            mac,
            identity,
        )
        .map_err(InstallError::Unrenderable)?;
        self.scripts
            .install(&values)
            .map(Bytes::from)
            .map_err(|e| InstallError::Unrenderable(e.to_string()))
    }
}

fn pick(s: &Served, menu: Menu) -> Answer {
    Answer {
        body: match menu {
            Menu::Normal => s.menu.clone(),
            Menu::Short => s.short.clone(),
            Menu::Disk => s.disk.clone(),
        },
        error: false,
    }
}

/// The prefix length of a CIDR (`10.0.0.0/24` → 24).
fn prefix_len(cidr: &str) -> Option<u8> {
    cidr.split_once('/')?.1.parse().ok()
}

/// What a node's script carries, every value checked ([`ipxe::word`]).
fn node_values(
    base: &str,
    design: &Design,
    commit: &str,
    node: &EffectiveNode,
    mac: u64,
    identity: String,
) -> Result<NodeValues, String> {
    let name = &node.name;
    if !ipxe::name(name) {
        return Err("the node's name cannot be carried by a boot script".into());
    }
    let network = node
        .primary_network
        .as_deref()
        .and_then(|n| design.network(n));
    let domain = network
        .and_then(|n| n.data.dns.as_ref())
        .and_then(|d| d.domain.clone())
        .filter(|d| !d.is_empty());
    let hostname = match domain {
        Some(d) => format!("{name}.{d}"),
        None => name.clone(),
    };
    let address = node
        .primary_network
        .as_deref()
        .and_then(|n| node.address_on(n));
    let ip = match (address, network.and_then(|n| n.data.cidr.as_deref())) {
        (Some(a), Some(c)) => match prefix_len(c) {
            Some(p) => format!("{a}/{p}"),
            None => a.to_string(),
        },
        (Some(a), None) => a.to_string(),
        _ => String::new(),
    };
    let gateway = network
        .and_then(|n| {
            n.data
                .routes
                .iter()
                .find(|r| matches!(r.subnet.as_deref(), Some("0.0.0.0/0") | Some("::/0")))
        })
        .and_then(|r| r.gateway.clone())
        .unwrap_or_default();
    let image = node
        .image
        .clone()
        .ok_or_else(|| format!("node {name} has no platform image in its host profiles"))?;
    let kernel = node
        .kernel
        .clone()
        .ok_or_else(|| format!("node {name} has no platform kernel in its host profiles"))?;
    let params = ipxe::kernel_args(&node.kernel_params).map_err(|e| format!("node {name}: {e}"))?;
    let values = NodeValues {
        base: base.to_string(),
        files: format!("{base}/files"),
        node: name.clone(),
        hostname,
        mac: mac_text(mac),
        bootproto: if ip.is_empty() { "dhcp" } else { "static" },
        ip,
        gateway,
        kernel_file: format!("{image}-vmlinuz-{kernel}"),
        initrd_file: format!("{image}-initramfs-{kernel}"),
        image,
        kernel,
        params,
        bootdata: format!("{base}/api/v1.0/bootactions/nodes/{name}"),
        identity,
        commit: commit.to_string(),
    };
    for (what, v) in [
        ("the server's address", &values.base),
        ("the host name", &values.hostname),
        ("the platform image", &values.image),
        ("the platform kernel", &values.kernel),
    ] {
        if !ipxe::word(v) {
            return Err(format!(
                "node {name}: {what} cannot be carried by a boot script"
            ));
        }
    }
    for (what, v) in [
        ("the address", &values.ip),
        ("the gateway", &values.gateway),
    ] {
        if !v.is_empty() && !ipxe::word(v) {
            return Err(format!(
                "node {name}: {what} cannot be carried by a boot script"
            ));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_keeps_scheme_and_authority() {
        assert_eq!(
            origin("http://10.0.0.1:9000/api/v1.0/bootactions/"),
            "http://10.0.0.1:9000"
        );
        assert_eq!(origin("https://h"), "https://h");
    }

    #[test]
    fn the_seed_table_picks_the_menu_from_the_flags() {
        let mut n = EffectiveNode::default();
        assert_eq!(menu_of(None), Menu::Normal);
        assert_eq!(menu_of(Some(&n)), Menu::Short);
        n.owner_data.insert(BOOTMENU_KEY.into(), "true".into());
        assert_eq!(menu_of(Some(&n)), Menu::Normal);
        n.owner_data.insert(NETBOOT_KEY.into(), "False".into());
        assert_eq!(menu_of(Some(&n)), Menu::Disk);
    }
}
