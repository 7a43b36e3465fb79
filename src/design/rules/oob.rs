//! Out-of-band rules (SW375–SW379): Drydock's IpmiValidity (DD4001) and
//! LibvirtValidity (DD4002), and the BMC connection fields slipway adds
//! (SW379, `design::oob`: what the power service will connect to).
//!
//! Drydock crashes (a `%` format bug) when an IPMI node lacks one of
//! `account`, `credential`, `network`; slipway reports each missing parameter.

use super::storage::{esc, locate, NodeReport, Origin};
use super::Ctx;
use crate::design::effective::EffectiveNode;
use crate::design::message::Message;
use crate::design::model::scalar_text;
use crate::design::Design;

/// Runs the OOB rules over every node.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let mut report = NodeReport::new(ctx.design);
    for node in ctx.nodes {
        check_node(ctx.design, node, &mut report);
    }
    report.finish(out);
}

/// The nearest layer that sets `oob.<field>`, else the nearest `oob`.
fn oob_origin(design: &Design, node: &EffectiveNode, field: &str) -> Origin {
    let o = locate(design, node, |d| {
        let oob = d.oob.as_ref()?;
        let set = match field {
            "type" => oob.oob_type.is_some(),
            "network" => oob.network.is_some(),
            "account" => oob.account.is_some(),
            "credential" => oob.credential.is_some(),
            other => oob.other.contains_key(other),
        };
        set.then(|| format!("/oob/{}", esc(field)))
    });
    if !o.pointer.is_empty() {
        return o;
    }
    locate(design, node, |d| d.oob.as_ref().map(|_| "/oob".to_string()))
}

fn check_node(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let Some(oob) = &node.oob else { return };
    connection_fields(design, node, r);
    match oob.oob_type.as_deref() {
        Some("ipmi") => {
            let params = [
                ("account", &oob.account),
                ("credential", &oob.credential),
                ("network", &oob.network),
            ];
            for (name, value) in params {
                if value.as_deref().is_none_or(str::is_empty) {
                    let origin = oob_origin(design, node, "type");
                    r.error(
                        node,
                        "SW375",
                        &origin,
                        format!("IPMI out-of-band parameter `{name}` is missing; expected a value"),
                        &format!("Set oob.{name} on the node or its host profile."),
                    );
                }
            }
            if let Some(net) = oob.network.as_deref().filter(|n| !n.is_empty()) {
                // Drydock accepts any address on the network, `dhcp` included.
                let has = node.addressing.iter().any(|(n, a)| {
                    n.as_deref() == Some(net) && a.as_deref().is_some_and(|a| !a.is_empty())
                });
                if !has {
                    r.error(
                        node,
                        "SW376",
                        &Origin {
                            doc: node.doc,
                            pointer: "/addressing".to_string(),
                            profile: None,
                        },
                        format!("no address on OOB network `{net}`; expected an `addressing` entry for it"),
                        "Add the BMC's address to the node's addressing on the OOB network.",
                    );
                }
            }
        }
        Some("redfish") => redfish_parameters(design, node, r),
        Some("libvirt") => {
            let uri = oob.other.get("libvirt_uri").map(scalar_text);
            match uri.as_deref() {
                Some(u) if u.starts_with("qemu+ssh") => {}
                found => {
                    let origin = oob_origin(design, node, "libvirt_uri");
                    r.error(
                        node,
                        "SW377",
                        &origin,
                        format!(
                            "libvirt_uri is {}; expected a `qemu+ssh://` URI",
                            found.map_or("missing".to_string(), |u| format!("`{u}`"))
                        ),
                        "Set oob.libvirt_uri to the hypervisor as qemu+ssh://user@host/system.",
                    );
                }
            }
            if node.boot_mac.as_deref().is_none_or(str::is_empty) {
                r.error(
                    node,
                    "SW378",
                    &Origin {
                        doc: node.doc,
                        pointer: "/metadata".to_string(),
                        profile: None,
                    },
                    "libvirt node has no metadata.boot_mac; expected the PXE MAC address"
                        .to_string(),
                    "Set metadata.boot_mac to the MAC of the VM's PXE interface.",
                );
            }
        }
        _ => {}
    }
}

/// SW379: the connection fields of an IPMI or Redfish node (`oob.host`, `port`,
/// `scheme`, `system`, `cipher_suite`) hold what the power service can use, each
/// on the driver it belongs to (docs/power.md).
fn connection_fields(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let Some(oob) = &node.oob else { return };
    let Some(driver @ ("ipmi" | "redfish")) = oob.oob_type.as_deref() else {
        return;
    };
    for &(field, only) in crate::design::oob::CONNECTION_FIELDS {
        let Some(value) = oob.other.get(field) else {
            continue;
        };
        let problem = match value {
            serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                Some(crate::design::oob::FieldProblem {
                    field,
                    expected: "a single value",
                    found: if value.is_array() {
                        "a list"
                    } else {
                        "a mapping"
                    }
                    .to_string(),
                })
            }
            serde_json::Value::Null => None,
            _ => {
                let text = scalar_text(value);
                let text = text.trim();
                if text.is_empty() {
                    None
                } else if only.is_some_and(|d| d != driver) {
                    Some(crate::design::oob::not_for(field, driver, text))
                } else {
                    match field {
                        "host" => crate::design::oob::host("host", text).err(),
                        "port" => crate::design::oob::port(text).err(),
                        "scheme" => crate::design::oob::https(text).err(),
                        "system" => crate::design::oob::system(text).err(),
                        _ => crate::design::oob::cipher_suite(text).err(),
                    }
                }
            }
        };
        if let Some(p) = problem {
            let origin = oob_origin(design, node, field);
            r.error(
                node,
                "SW379",
                &origin,
                format!("BMC connection setting {p}"),
                "See docs/power.md for the oob connection fields and their values.",
            );
        }
    }
}

/// SW379: what a Redfish node needs to be reached (IPMI has SW375/SW376):
/// an account and its credential, and an address (on `oob.network`, or
/// `oob.host`).
fn redfish_parameters(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let Some(oob) = &node.oob else { return };
    for (name, value) in [("account", &oob.account), ("credential", &oob.credential)] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            let origin = oob_origin(design, node, "type");
            r.error(
                node,
                "SW379",
                &origin,
                format!("Redfish out-of-band parameter `{name}` is missing; expected a value"),
                &format!("Set oob.{name} on the node or its host profile."),
            );
        }
    }
    let host = oob.other.get("host").map(scalar_text);
    if host.as_deref().is_some_and(|h| !h.trim().is_empty()) {
        return;
    }
    let address = oob
        .network
        .as_deref()
        .filter(|n| !n.is_empty())
        .and_then(|net| {
            node.addressing
                .iter()
                .find(|(n, _)| n.as_deref() == Some(net))
                .and_then(|(_, a)| a.as_deref())
        });
    if address.is_none_or(|a| a.is_empty() || a == "dhcp") {
        let origin = oob_origin(design, node, "network");
        r.error(
            node,
            "SW379",
            &origin,
            "Redfish node has no BMC address: expected an address on `oob.network` \
             (its addressing entry, not dhcp) or `oob.host`"
                .to_string(),
            "Add the BMC's address to the node's addressing on the OOB network, or set oob.host.",
        );
    }
}
