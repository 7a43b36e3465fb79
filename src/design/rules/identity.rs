//! Node identity (SW345–SW349): boot MACs and which NIC belongs to which
//! interface. Drydock checks none of this; MAAS finds a node by its boot MAC,
//! so two nodes with one MAC, or one NIC enslaved twice, break deployment.

use super::references::{layers, nodes_by_interfaces, ptr, FxMap, FxSet};
use super::Ctx;
use crate::design::message::Message;
use crate::design::model::{Interface, Labels};
use crate::design::Kind;

/// Runs the node identity rules.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    boot_macs(ctx, out);
    nics(ctx, out);
}

/// A MAC address as six two-digit hex octets separated by `:` or `-`, as a
/// number (so `02:BD:…` and `02-bd-…` compare equal); `None` when it is not one.
pub(crate) fn parse_mac(s: &str) -> Option<u64> {
    let s = s.trim();
    let sep = if s.contains(':') { ':' } else { '-' };
    let mut value = 0u64;
    let mut octets = 0;
    for part in s.split(sep) {
        if part.len() != 2 || octets == 6 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        value = (value << 8) | u64::from(u8::from_str_radix(part, 16).ok()?);
        octets += 1;
    }
    (octets == 6).then_some(value)
}

fn boot_macs(ctx: &Ctx, out: &mut Vec<Message>) {
    let d = ctx.design;
    let mut first: FxMap<u64, &str> =
        FxMap::with_capacity_and_hasher(ctx.nodes.len(), Default::default());
    for node in ctx.nodes {
        let Some(mac) = node.boot_mac.as_deref() else {
            continue;
        };
        let at = "/metadata/boot_mac";
        let Some(norm) = parse_mac(mac) else {
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
    let mut seen: FxSet<(usize, String)> = FxSet::default();
    for node in nodes_by_interfaces(ctx) {
        // (slave, interface): a node has a handful, so a list beats a map.
        let mut owner: Vec<(&str, &str)> = Vec::new();
        for (name, iface) in node.interfaces.iter() {
            if unconfigured(&iface.labels) {
                continue;
            }
            let start = owner.len();
            for slave in iface.slaves.iter().flatten() {
                match owner.iter().find(|(s, _)| s == slave) {
                    // Listed twice in this interface: harmless, not two interfaces.
                    Some(_) if owner[start..].iter().any(|(s, _)| s == slave) => {}
                    None => owner.push((slave, name)),
                    Some((_, other)) => {
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
    fn macs_parse_in_either_notation_and_reject_garbage() {
        assert_eq!(parse_mac("02:BD:50:00:00:01"), Some(0x02bd_5000_0001));
        assert_eq!(parse_mac("02-bd-50-00-00-01"), Some(0x02bd_5000_0001));
        assert!(parse_mac("02:bd:50:00:00").is_none());
        assert!(parse_mac("02:bd:50:00:00:01:02").is_none());
        assert!(parse_mac("02:bd:50:00:00:0g").is_none());
        assert!(parse_mac("+2:bd:50:00:00:01").is_none());
        assert!(parse_mac("").is_none());
    }
}
