//! The context a boot-action template sees (DESIGN §4), as Drydock builds it
//! in `BootActionAsset._get_template_context`:
//!
//! ```text
//! node.hostname, node.domain, node.tags, node.labels,
//! node.network.<net>.{ip, cidr, dns_suffix}   (+ `default`: the primary network's)
//! node.interfaces.<dev>.{sriov, vf_count, trustedmode}
//! action.action_id, action.action_key, action.report_url, action.design_ref
//! ```
//!
//! A pure function of (design, effective node, action values): no I/O, no
//! clock, so validation (with placeholder action values) and boot-data
//! rendering (with the deployment's real values) see the same shape.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::design::{Design, EffectiveNode};

/// Drydock's default `[bootactions] report_url`.
pub const DEFAULT_REPORT_URL: &str = "http://localhost:9000/api/v1.0/bootactions/";

/// The per-(node, boot action) values of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionValues {
    /// 26-character ULID in Crockford base32.
    pub action_id: String,
    /// The action's key as 64 hex characters.
    pub action_key: String,
    /// Where the node reports status; the action id is appended by templates.
    pub report_url: String,
    /// The design reference the deployment was made from.
    pub design_ref: String,
}

impl ActionValues {
    /// Stand-in values of the right shape, used to render templates during
    /// validation, when no deployment exists yet.
    pub fn placeholder() -> Self {
        ActionValues {
            action_id: "00000000000000000000000000".to_string(),
            action_key: "0".repeat(64),
            report_url: DEFAULT_REPORT_URL.to_string(),
            design_ref: "validation".to_string(),
        }
    }
}

/// `node.network.<net>`: a static address and its network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkContext {
    pub ip: String,
    /// `None` renders as `none`, as Jinja2 renders Python's `None`.
    pub cidr: Option<String>,
    pub dns_suffix: Option<String>,
}

/// `node.interfaces.<dev>`; `vf_count` and `trustedmode` only with SR-IOV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceContext {
    pub sriov: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vf_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trustedmode: Option<bool>,
}

/// The `node` half of the context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeContext {
    pub hostname: String,
    /// The primary network's DNS domain, `local` when it has none.
    pub domain: String,
    pub tags: Vec<String>,
    /// The node's `metadata.owner_data` (Drydock's choice, not the envelope labels).
    pub labels: BTreeMap<String, String>,
    pub network: BTreeMap<String, NetworkContext>,
    pub interfaces: BTreeMap<String, InterfaceContext>,
}

/// Everything a template sees.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateContext {
    pub node: NodeContext,
    pub action: ActionValues,
}

/// The `node` context of one node. Addresses on networks the design does not
/// define are left out (Drydock raises there; another rule reports it).
pub fn node_context(design: &Design, node: &EffectiveNode) -> NodeContext {
    ContextBuilder::new(design).node(node)
}

/// The type of what a variable path gives in a node's template context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Not defined (an error under strict undefined).
    Undefined,
    None,
    Str,
    Bool,
    Int,
    List,
    Map,
}

/// A network as templates see it: (name, cidr, dns domain).
type NetworkRow<'d> = (&'d str, Option<&'d str>, Option<&'d str>);

/// Builds node contexts for many nodes of one design, looking each network
/// up once instead of once per node.
pub struct ContextBuilder<'d> {
    /// (name, cidr, dns domain) of each network, first of a name only. A
    /// site has a handful of networks: a scan beats hashing the name.
    networks: Vec<NetworkRow<'d>>,
}

impl<'d> ContextBuilder<'d> {
    /// Indexes the design's networks.
    pub fn new(design: &'d Design) -> Self {
        let mut networks: Vec<NetworkRow<'d>> = Vec::new();
        for n in &design.networks {
            // The first of duplicate names wins, as in `Design::network`.
            if networks.iter().any(|r| r.0 == n.name) {
                continue;
            }
            networks.push((
                n.name.as_str(),
                n.data.cidr.as_deref(),
                n.data.dns.as_ref().and_then(|d| d.domain.as_deref()),
            ));
        }
        ContextBuilder { networks }
    }

    fn network(&self, name: &str) -> Option<(Option<&'d str>, Option<&'d str>)> {
        self.networks
            .iter()
            .find(|r| r.0 == name)
            .map(|r| (r.1, r.2))
    }

    /// What `path` gives in the context of `node` with any action values,
    /// without building the context: the same answer as looking the path up
    /// in `TemplateContext { node: self.node(node), action }`. Anything read
    /// below a scalar is undefined, as it is for the template engine.
    pub fn kind_of(&self, node: &EffectiveNode, path: &[String]) -> ValueKind {
        use ValueKind::*;
        // No defined value is deeper than 4; a fixed buffer avoids an allocation
        // per lookup (this runs for every path of every template and node).
        let mut buf = [""; 5];
        if path.len() > buf.len() {
            return Undefined;
        }
        for (b, seg) in buf.iter_mut().zip(path) {
            *b = seg.as_str();
        }
        match &buf[..path.len()] {
            [] | ["node"] | ["action"] => Map,
            ["action", "action_id" | "action_key" | "report_url" | "design_ref"] => Str,
            ["node", "hostname" | "domain"] => Str,
            ["node", "tags"] => List,
            ["node", "labels" | "network" | "interfaces"] => Map,
            ["node", "labels", key] => {
                if node.owner_data.contains_key(*key) {
                    Str
                } else {
                    Undefined
                }
            }
            ["node", "network", net, rest @ ..] => {
                let Some((cidr, dns)) = self.network_entry(node, net) else {
                    return Undefined;
                };
                match rest {
                    [] => Map,
                    ["ip"] => Str,
                    ["cidr"] => cidr.map_or(None, |_| Str),
                    ["dns_suffix"] => dns.map_or(None, |_| Str),
                    _ => Undefined,
                }
            }
            ["node", "interfaces", dev, rest @ ..] => {
                let Some(i) = node.interface(dev) else {
                    return Undefined;
                };
                match (rest, i.sriov.is_some()) {
                    ([], _) => Map,
                    (["sriov"], _) => Bool,
                    (["vf_count"], true) => Int,
                    (["trustedmode"], true) => Bool,
                    _ => Undefined,
                }
            }
            _ => Undefined,
        }
    }

    /// `node.network.<net>` as [`ContextBuilder::node`] would fill it:
    /// the (cidr, dns domain) of the entry, if there is one.
    fn network_entry(
        &self,
        node: &EffectiveNode,
        net: &str,
    ) -> Option<(Option<&'d str>, Option<&'d str>)> {
        let wanted = if net == "default" {
            node.primary_network.as_deref()?
        } else {
            net
        };
        node.addressing.iter().find_map(|(n, a)| {
            let (n, a) = (n.as_deref()?, a.as_deref()?);
            if n != wanted || a == "dhcp" {
                return None;
            }
            self.network(n)
        })
    }

    /// The `node` context of one node.
    pub fn node(&self, node: &EffectiveNode) -> NodeContext {
        let domain = node
            .primary_network
            .as_deref()
            .and_then(|n| self.network(n))
            .and_then(|(_, dns)| dns)
            .filter(|d| !d.is_empty())
            .unwrap_or("local")
            .to_string();
        let mut network = BTreeMap::new();
        for (net, addr) in &node.addressing {
            let (Some(net), Some(addr)) = (net, addr) else {
                continue;
            };
            // Drydock's context holds static addresses only.
            if addr == "dhcp" {
                continue;
            }
            let Some((cidr, dns)) = self.network(net) else {
                continue;
            };
            let entry = NetworkContext {
                ip: addr.clone(),
                cidr: cidr.map(str::to_string),
                dns_suffix: dns.map(str::to_string),
            };
            if node.primary_network.as_deref() == Some(net.as_str()) {
                network.insert("default".to_string(), entry.clone());
            }
            network.insert(net.clone(), entry);
        }
        let interfaces = node
            .interfaces
            .iter()
            .map(|(name, i)| {
                let ctx = match &i.sriov {
                    Some(s) => InterfaceContext {
                        sriov: true,
                        vf_count: Some(s.vf_count.map_or(0, |v| v as i64)),
                        trustedmode: Some(s.trustedmode.unwrap_or(false)),
                    },
                    None => InterfaceContext {
                        sriov: false,
                        vf_count: None,
                        trustedmode: None,
                    },
                };
                (name.clone(), ctx)
            })
            .collect();
        NodeContext {
            hostname: node.name.clone(),
            domain,
            tags: node.tags.clone(),
            labels: node.owner_data.clone(),
            network,
            interfaces,
        }
    }
}

/// The full context of one node and one boot action.
pub fn template_context(
    design: &Design,
    node: &EffectiveNode,
    action: &ActionValues,
) -> TemplateContext {
    TemplateContext {
        node: node_context(design, node),
        action: action.clone(),
    }
}
