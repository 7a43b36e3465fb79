//! Node identity (SW345–SW349): boot MACs and which NIC belongs to which
//! interface. Drydock checks none of this; MAAS finds a node by its boot MAC,
//! so two nodes with one MAC, or one NIC enslaved twice, break deployment.

use std::collections::{HashMap, HashSet};

use super::references::{layers, ptr};
use super::Ctx;
use crate::design::message::Message;
use crate::design::model::{Interface, Labels};
use crate::design::Kind;

/// Runs the node identity rules.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    boot_macs(ctx, out);
    nics(ctx, out);
}

/// A MAC address as six hex octets separated by `:` or `-`, normalised to
/// lower case with `:`; `None` when it is not one.
pub(crate) fn normalize_mac(s: &str) -> Option<String> {
    let s = s.trim();
    let sep = if s.contains(':') { ':' } else { '-' };
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

fn boot_macs(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    let mut first: HashMap<String, &str> = HashMap::new();
    for node in &ctx.nodes {
        let Some(mac) = node.boot_mac.as_deref() else {
            continue;
        };
        let at = "/metadata/boot_mac";
        let Some(norm) = normalize_mac(mac) else {
            let m = Message::error(
                "SW345",
                format!("boot_mac '{mac}' of node {} is not a MAC address: expected six hex octets like 02:00:00:00:00:01", node.name),
                "Write the MAC of the node's PXE NIC as six two-digit hex octets separated by ':'.",
            );
            out.push(d.msg_at(m, node.doc, at));
            continue;
        };
        match first.get(&norm) {
            None => {
                first.insert(norm, &node.name);
            }
            Some(other) => {
                let m = Message::error(
                    "SW346",
                    format!("boot_mac {mac} of node {} is also the boot_mac of node {other}: expected one node per MAC", node.name),
                    "Correct the boot_mac of one node; MAAS identifies a machine by it.",
                );
                out.push(
                    d.msg_at(m, node.doc, at)
                        .about(Kind::BaremetalNode.schema(), other),
                );
            }
        }
    }
}

/// An interface labelled `noconfig` is left alone by the provisioner (the
/// Drydock samples use it for the PXE NIC that is also a bond slave), so its
/// slaves may appear in another interface.
fn unconfigured(labels: &Labels) -> bool {
    match labels.get("noconfig") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => !matches!(
            s.to_ascii_lowercase().as_str(),
            "false" | "no" | "disabled" | "0" | ""
        ),
        Some(_) => true,
    }
}

fn nics(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    // A defect written in a profile is reported once, at the line that has it.
    let mut seen: HashSet<(usize, String)> = HashSet::new();
    for node in &ctx.nodes {
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for (name, iface) in &node.interfaces {
            if unconfigured(&iface.labels) {
                continue;
            }
            let mut here: HashSet<&str> = HashSet::new();
            for slave in iface.slaves.iter().flatten() {
                if !here.insert(slave) {
                    continue;
                }
                match owner.get(slave.as_str()) {
                    None => {
                        owner.insert(slave, name);
                    }
                    Some(other) => {
                        let (doc, p) = slave_site(ctx, node, name, slave);
                        if !seen.insert((doc, p.clone())) {
                            continue;
                        }
                        let m = Message::error(
                            "SW347",
                            format!(
                                "NIC {slave} is a slave of interfaces {other} and {name} of node {}: expected each NIC in one interface",
                                node.name
                            ),
                            "Remove the NIC from one interface's slaves, or label the interface that is not configured noconfig: true.",
                        );
                        out.push(d.msg_at(m, doc, &p));
                    }
                }
            }
        }
    }
}

/// The document and pointer of the slave entry `slave` of interface `iface`.
fn slave_site(
    ctx: &Ctx,
    node: &crate::design::EffectiveNode,
    iface: &str,
    slave: &str,
) -> (usize, String) {
    let has = |i: &Interface| i.slaves.iter().flatten().position(|s| s == slave);
    for (doc, data) in layers(ctx.design, node) {
        if let Some(Some(i)) = data.interfaces.get(iface) {
            if let Some(pos) = has(i) {
                return (doc, ptr(&["interfaces", iface, "slaves", &pos.to_string()]));
            }
        }
    }
    (node.doc, ptr(&["interfaces"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalise_and_reject_garbage() {
        assert_eq!(
            normalize_mac("02:BD:50:00:00:01").as_deref(),
            Some("02:bd:50:00:00:01")
        );
        assert_eq!(
            normalize_mac("02-bd-50-00-00-01").as_deref(),
            Some("02:bd:50:00:00:01")
        );
        assert!(normalize_mac("02:bd:50:00:00").is_none());
        assert!(normalize_mac("02:bd:50:00:00:0g").is_none());
        assert!(normalize_mac("").is_none());
    }
}
