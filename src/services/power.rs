//! The power service where the design is: the one place a dialect, a task or
//! the CLI reaches [`crate::power`]. It turns a node of a design (the served
//! one, or one read by the CLI) into a `power::BmcTarget` from its effective
//! `oob` settings, runs a sequence of operations on one node or on many
//! (within the service's concurrency limit, timeouts and journal), and reads a
//! node's journal. A node without a power driver (`libvirt`, `manual`, no
//! `oob`) is a per-node failure with the reason, never a crash.

use crate::design::effective::EffectiveNode;
use crate::design::model::scalar_text;
use crate::design::Design;
use crate::power::{
    target_from_oob, BmcTarget, BootDevice, FailureKind, OobError, OobSettings, OperationRecord,
    Outcome, PowerConfig, PowerService, PowerSetupError,
};

use super::BootService;

/// The power types a dialect presents, as the core service defines them.
pub use crate::power::{
    OperationId, OperationRecord as PowerRecord, Outcome as PowerOutcome, PowerOp, PowerState,
};

/// How the server (or the CLI) sets the power service up.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerSettings {
    /// The service's limits (concurrency, per-call timeout, retries...).
    pub config: PowerConfig,
    /// The site's TLS switch: verify Redfish BMCs' certificates (`true` unless
    /// the operator passes `--bmc-insecure`; most BMCs ship self-signed ones).
    pub verify_tls: bool,
}

impl Default for PowerSettings {
    fn default() -> PowerSettings {
        PowerSettings {
            config: PowerConfig::default(),
            verify_tls: true,
        }
    }
}

/// Why one node's power request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFailure {
    /// The node is not in the design.
    UnknownNode,
    /// The node's OOB settings name no BMC the service can drive (the reason
    /// names the field; never a credential).
    NoDriver(String),
    /// The BMC call failed.
    Bmc(FailureKind),
}

impl NodeFailure {
    /// One word for the failure, as tasks, the route and the CLI show it.
    pub fn kind(&self) -> String {
        match self {
            NodeFailure::UnknownNode => "unknown node".into(),
            NodeFailure::NoDriver(_) => "no power driver".into(),
            NodeFailure::Bmc(k) => k.to_string(),
        }
    }
}

/// What a sequence of operations did to one node.
#[derive(Debug, Clone)]
pub struct NodeOutcome {
    /// The node's name.
    pub node: String,
    /// `None`: every operation succeeded.
    pub failure: Option<NodeFailure>,
    /// What happened, in words (the last operation's message, or the reason).
    pub message: String,
    /// The power state read, when an operation read one.
    pub power: Option<PowerState>,
    /// The records of the operations run, in order (empty when none could run).
    pub operations: Vec<OperationRecord>,
}

impl NodeOutcome {
    /// Every operation succeeded.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    fn failed(node: &str, failure: NodeFailure, message: String) -> NodeOutcome {
        NodeOutcome {
            node: node.to_string(),
            failure: Some(failure),
            message,
            power: None,
            operations: Vec::new(),
        }
    }
}

/// A power action by its name, as the route and the CLI take it: `status`,
/// `on`, `off`, `soft_off`, `cycle`, `pxe-once`, `disk-once`, `identify-on`,
/// `identify-off` (`-` and `_` are the same).
pub fn parse_action(word: &str) -> Option<PowerOp> {
    Some(match word.replace('_', "-").as_str() {
        "status" => PowerOp::Status,
        "on" => PowerOp::On,
        "off" => PowerOp::Off,
        "soft-off" => PowerOp::SoftOff,
        "cycle" | "reset" => PowerOp::Cycle,
        "pxe-once" | "pxe" => PowerOp::BootOnce(BootDevice::Pxe),
        "disk-once" | "disk" => PowerOp::BootOnce(BootDevice::Disk),
        "identify-on" => PowerOp::Identify(true),
        "identify-off" => PowerOp::Identify(false),
        _ => return None,
    })
}

/// The action names [`parse_action`] takes, for messages.
pub const ACTION_NAMES: &str =
    "status, on, off, soft_off, cycle, pxe-once, disk-once, identify-on, identify-off";

/// The BMC target of a node from its effective `oob` (and its address on
/// `oob.network`); pure.
pub fn target_of(node: &EffectiveNode, verify_tls: bool) -> Result<BmcTarget, OobError> {
    let Some(oob) = &node.oob else {
        return Err(OobError::Type {
            found: "nothing".into(),
        });
    };
    let other = |k: &str| oob.other.get(k).filter(|v| !v.is_null()).map(scalar_text);
    let (host, port, scheme, system, cipher) = (
        other("host"),
        other("port"),
        other("scheme"),
        other("system"),
        other("cipher_suite"),
    );
    let settings = OobSettings {
        oob_type: oob.oob_type.as_deref(),
        address: oob.network.as_deref().and_then(|n| node.address_on(n)),
        account: oob.account.as_deref(),
        credential: oob.credential.as_deref(),
        host: host.as_deref(),
        port: port.as_deref(),
        scheme: scheme.as_deref(),
        system: system.as_deref(),
        cipher_suite: cipher.as_deref(),
    };
    target_from_oob(&node.name, &settings, verify_tls)
}

/// One node to act on: its target, or why it has none.
pub type Planned = (String, Result<BmcTarget, NodeFailure>);

/// The power service with the design's view of nodes. Cheap to clone.
#[derive(Clone)]
pub struct NodePower {
    service: PowerService,
    verify_tls: bool,
}

impl NodePower {
    /// The service with these settings.
    pub fn new(settings: &PowerSettings) -> Result<NodePower, PowerSetupError> {
        Ok(NodePower {
            service: PowerService::new(settings.config.clone())?,
            verify_tls: settings.verify_tls,
        })
    }

    /// The core service (its gauges and limits).
    pub fn service(&self) -> &PowerService {
        &self.service
    }

    /// The targets of `names` in `design`, in that order.
    pub fn targets(&self, design: &Design, names: &[String]) -> Vec<Planned> {
        // Many names (a Luna2 hostlist) are found through one map, not a scan each.
        let by_name: Option<std::collections::HashMap<&str, &EffectiveNode>> = (names.len() > 8)
            .then(|| {
                design
                    .effective_nodes()
                    .iter()
                    .map(|n| (n.name.as_str(), n.as_ref()))
                    .collect()
            });
        names
            .iter()
            .map(|name| {
                let node = match &by_name {
                    Some(m) => m.get(name.as_str()).copied(),
                    None => design
                        .effective_nodes()
                        .iter()
                        .find(|n| &n.name == name)
                        .map(|n| n.as_ref()),
                };
                let target = match node {
                    None => Err(NodeFailure::UnknownNode),
                    Some(n) => target_of(n, self.verify_tls)
                        .map_err(|e| NodeFailure::NoDriver(e.to_string())),
                };
                (name.clone(), target)
            })
            .collect()
    }

    /// The targets of `names` in the served design.
    pub fn served_targets(
        &self,
        boot: &BootService,
        names: &[String],
    ) -> Result<Vec<Planned>, super::BootError> {
        boot.with_design(|d| self.targets(d, names))
    }

    /// Runs `ops` in order on every node at once (within the concurrency
    /// limit); a node stops at its first failure. Outcomes in the nodes' order.
    pub async fn run(&self, nodes: Vec<Planned>, ops: &[PowerOp]) -> Vec<NodeOutcome> {
        let mut tasks = Vec::with_capacity(nodes.len());
        for (name, target) in nodes {
            let me = self.clone();
            let ops = ops.to_vec();
            tasks.push((
                name.clone(),
                tokio::spawn(async move { me.run_node(&name, target, &ops).await }),
            ));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (name, t) in tasks {
            out.push(t.await.unwrap_or_else(|e| {
                NodeOutcome::failed(
                    &name,
                    NodeFailure::Bmc(FailureKind::Config),
                    format!("power task crashed: {e}"),
                )
            }));
        }
        out
    }

    /// Runs `ops` in order on one node; stops at the first failure.
    pub async fn run_node(
        &self,
        name: &str,
        target: Result<BmcTarget, NodeFailure>,
        ops: &[PowerOp],
    ) -> NodeOutcome {
        let target = match target {
            Ok(t) => t,
            Err(NodeFailure::UnknownNode) => {
                return NodeOutcome::failed(
                    name,
                    NodeFailure::UnknownNode,
                    format!("no node `{name}` in the design"),
                )
            }
            Err(f @ NodeFailure::NoDriver(_)) => {
                let NodeFailure::NoDriver(why) = &f else {
                    unreachable!()
                };
                let message = format!("no power driver: {why}");
                return NodeOutcome::failed(name, f, message);
            }
            Err(f) => return NodeOutcome::failed(name, f, "not run".into()),
        };
        let mut out = NodeOutcome {
            node: name.to_string(),
            failure: None,
            message: String::new(),
            power: None,
            operations: Vec::new(),
        };
        let mut said = Vec::new();
        for &op in ops {
            let rec = self.service.run(&target, op).await;
            if rec.power.is_some() {
                out.power = rec.power;
            }
            said.push(format!("{op}: {}", rec.message));
            let failed = match rec.outcome {
                Outcome::Failed(kind) => Some(kind),
                _ => None,
            };
            out.operations.push(rec);
            if let Some(kind) = failed {
                out.failure = Some(NodeFailure::Bmc(kind));
                break;
            }
        }
        out.message = said.join("; ");
        out
    }

    /// Sets PXE for the next boot and cycles the node (a machine that is off is
    /// powered on): what introspection and (re)deployment need.
    pub async fn pxe_boot_and_cycle(&self, boot: &BootService, node: &str) -> NodeOutcome {
        let target = match self.served_targets(boot, &[node.to_string()]) {
            Ok(mut t) => t
                .pop()
                .map(|(_, t)| t)
                .unwrap_or(Err(NodeFailure::UnknownNode)),
            Err(e) => {
                return NodeOutcome::failed(
                    node,
                    NodeFailure::Bmc(FailureKind::Config),
                    format!("no design served: {e}"),
                )
            }
        };
        self.run_node(node, target, &PXE_AND_CYCLE).await
    }

    /// A node's recent operations, oldest first (also those running).
    pub fn journal(&self, node: &str) -> Vec<OperationRecord> {
        self.service.journal(node)
    }
}

/// Boot from the network once, then cycle.
pub const PXE_AND_CYCLE: [PowerOp; 2] = [PowerOp::BootOnce(BootDevice::Pxe), PowerOp::Cycle];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::{Driver, Scheme};

    fn forwarded_site() -> Design {
        let bytes = include_bytes!("../../tests/data/designs/ok/bmc-behind-a-port-forward.yaml");
        let v = crate::validate(&[crate::design::DesignFile {
            path: "site.yaml".into(),
            bytes: bytes.to_vec(),
        }]);
        assert!(v.is_valid(), "{:?}", v.messages);
        v.design.unwrap()
    }

    #[test]
    fn a_nodes_target_comes_from_its_effective_oob_and_the_sites_tls_switch() {
        let d = forwarded_site();
        let power = NodePower::new(&PowerSettings {
            verify_tls: false,
            ..PowerSettings::default()
        })
        .unwrap();
        let names = ["n00001".to_string(), "nosuch".to_string()];
        let mut t = power.targets(&d, &names);
        assert_eq!(t[1], ("nosuch".to_string(), Err(NodeFailure::UnknownNode)));
        let target = t.remove(0).1.unwrap();
        // From the HostProfile chain: type, account, host, port, scheme, system.
        assert_eq!(target.driver, Driver::Redfish);
        assert_eq!(target.endpoint(), "https://bmc-gw.example.com:8443");
        assert_eq!(target.scheme, Scheme::Https);
        assert_eq!(target.system.as_deref(), Some("System.Embedded.1"));
        assert_eq!(target.username, "admin");
        assert!(!target.verify_tls);
    }

    #[test]
    fn a_node_without_a_power_driver_is_named_with_the_field() {
        let d = forwarded_site();
        let mut node = (*d.effective_nodes()[0]).clone();
        node.oob.as_mut().unwrap().oob_type = Some("libvirt".into());
        assert_eq!(
            target_of(&node, true).unwrap_err().to_string(),
            "oob.type: expected `ipmi` or `redfish`, found `libvirt`"
        );
        node.oob = None;
        assert_eq!(
            target_of(&node, true).unwrap_err().to_string(),
            "oob.type: expected `ipmi` or `redfish`, found nothing"
        );
    }

    #[test]
    fn action_names_parse_with_either_separator() {
        assert_eq!(parse_action("soft_off"), Some(PowerOp::SoftOff));
        assert_eq!(parse_action("soft-off"), Some(PowerOp::SoftOff));
        assert_eq!(
            parse_action("pxe-once"),
            Some(PowerOp::BootOnce(BootDevice::Pxe))
        );
        assert_eq!(parse_action("fly"), None);
        for w in ACTION_NAMES.split(", ") {
            assert!(parse_action(w).is_some(), "{w}");
        }
    }
}
