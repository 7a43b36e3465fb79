//! A proposed `drydock/BaremetalNode/v1` document for a machine the design
//! does not know, for an operator to review and merge (docs/ironic.md).
//!
//! What cannot be known from the machine is borrowed from the design, so the
//! proposal validates with it as written: the host profile is the design's
//! HostProfile whose hardware profile fits the machine best (NICs found at the
//! PCI addresses of its device aliases, then vendor, then boot mode; the first
//! in document order on a tie), the OOB network is the profile's when its CIDR
//! holds the BMC address, else the network whose CIDR does. What the design's
//! boot actions and templates need of a node (rack, tags, `owner_data`, a
//! static address on each network) is taken from the profile's first node in
//! document order (its *sibling*), each address being the first free one of the
//! network's `static` range. Every borrowed value carries a `REVIEW` comment.

use std::net::IpAddr;
use std::sync::Arc;

use super::inventory::{Callback, NetworkInterface};
use super::{mac_text, MAC_LABEL};
use crate::design::effective::{compile, EffectiveNode};
use crate::design::model::HostData;
use crate::design::{Design, Entity};

/// A proposed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The proposed node's name.
    pub name: String,
    /// The file it belongs in, relative to the design directory.
    pub path: String,
    /// The YAML document, comments included.
    pub yaml: String,
    /// The machine's key: the same machine always gets the same file.
    pub machine: String,
}

/// Why no proposal can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// The machine reported no MAC address: nothing would identify it.
    #[error("the machine reports no MAC address; expected at least one interface with `mac_address` to identify it")]
    NoMac,
    /// The design has no HostProfile to build a node on.
    #[error("the design has no HostProfile; expected one to base a proposed node on")]
    NoHostProfile,
}

/// The folder proposals are written to.
pub const PROPOSAL_DIR: &str = "discovered";

/// A host name label from free text: lowercase letters, digits and inner
/// hyphens, at most 63 characters; `None` when nothing is left.
pub fn hostname_label(text: &str) -> Option<String> {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

/// YAML single-quoted scalar.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Text from the machine made safe for a YAML comment: one line.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The proposal for an unknown machine.
pub fn propose(cb: &Callback, design: &Design) -> Result<Proposal, ProposeError> {
    let nics = cb.interfaces();
    let boot = cb
        .boot_mac()
        .or_else(|| {
            nics.iter()
                .find(|(i, _)| i.ipv4_address.as_deref().is_some_and(|a| !a.is_empty()))
                .map(|(_, m)| *m)
        })
        .or_else(|| nics.first().map(|(_, m)| *m))
        .ok_or(ProposeError::NoMac)?;
    let mac_name = format!("mac-{}", mac_text(boot).replace(':', ""));
    let mut name = cb
        .serial()
        .and_then(hostname_label)
        .unwrap_or_else(|| mac_name.clone());
    if design.node(&name).is_some() && name != mac_name {
        // A serial that is already a node's name (or looks like one).
        name = format!("{name}-{}", mac_text(boot).replace(':', ""));
        name = hostname_label(&name).unwrap_or(mac_name.clone());
    }

    let (profile, eff) = best_profile(cb, design).ok_or(ProposeError::NoHostProfile)?;
    let inv = cb.inventory();
    let mut y = String::new();
    let vendor = inv.system_vendor.as_ref();
    let field = |f: Option<&str>| comment(f.unwrap_or("?"));
    y.push_str("# Proposed by slipway from the inspection of a machine that matches no node.\n");
    y.push_str(&format!(
        "# Machine: {} {}, serial {}; {} CPU(s), {} MiB memory, {} disk(s).\n",
        field(vendor.and_then(|v| v.manufacturer.as_deref())),
        field(vendor.and_then(|v| v.product_name.as_deref())),
        field(vendor.and_then(|v| v.serial_number.as_deref())),
        inv.cpu
            .as_ref()
            .and_then(|c| c.count)
            .map_or("?".to_string(), |c| c.to_string()),
        inv.memory
            .as_ref()
            .and_then(|m| m.physical_mb)
            .map_or("?".to_string(), |c| c.to_string()),
        inv.disks.as_ref().map_or(0, |d| d.len()),
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
    y.push_str(&format!(
        "  # REVIEW: host profile chosen as the best fit of the design's HostProfiles (hardware profile {}).\n",
        eff.hardware_profile.as_deref().unwrap_or("none")
    ));
    y.push_str(&format!("  host_profile: {}\n", q(&profile)));

    // OOB: the profile's network when its CIDR holds the BMC, else another.
    let bmc = cb.bmc_v4().or_else(|| cb.bmc_v6());
    let profile_net = eff.oob.as_ref().and_then(|o| o.network.clone());
    let holding = bmc.and_then(|a| network_holding(design, a, profile_net.as_deref()));
    let mut oob_override = None;
    let (net, address, note) = match (bmc, holding, profile_net.clone()) {
        (Some(a), Some(n), p) => {
            if p.as_deref() != Some(n.as_str()) {
                oob_override = Some(n.clone());
            }
            (Some(n.clone()), a.to_string(), format!("the BMC's address as the machine reports it, on network {n} (its CIDR holds it)"))
        }
        // The templates may need a static address here: the first free one.
        (Some(a), None, Some(p)) => (
            Some(p.clone()),
            placeholder(design, &p),
            format!("the machine's BMC reports {a}, which no network of the design holds; a free address of {p} is proposed, set the BMC's"),
        ),
        (None, _, Some(p)) => (
            Some(p.clone()),
            placeholder(design, &p),
            format!("the machine reports no BMC address; a free address of {p} is proposed, set the BMC's"),
        ),
        (_, _, None) => (None, String::new(), String::new()),
    };
    if let Some(n) = &oob_override {
        y.push_str(&format!(
            "  # REVIEW: the profile's OOB network does not hold the BMC address; {n} does.\n  oob:\n    network: {}\n",
            q(n)
        ));
    }
    let sibling = design
        .effective_nodes()
        .iter()
        .find(|n| n.profile_chain.first() == Some(&profile))
        .cloned();
    y.push_str("  addressing:\n");
    let mut taken: Vec<IpAddr> = bmc.into_iter().collect();
    match &net {
        Some(n) => {
            y.push_str(&format!("    # REVIEW: {}.\n", comment(&note)));
            y.push_str(&format!(
                "    - network: {}\n      address: {}\n",
                q(n),
                q(&address)
            ));
        }
        None => {
            let p = eff
                .primary_network
                .clone()
                .unwrap_or_else(|| "pxe".to_string());
            y.push_str("    # REVIEW: the profile has no OOB network; an address on the primary network.\n");
            y.push_str(&format!(
                "    - network: {}\n      address: 'dhcp'\n",
                q(&p)
            ));
        }
    }
    if let Some(sib) = &sibling {
        for (n, a) in &sib.addressing {
            let (Some(n), Some(a)) = (n, a) else { continue };
            if Some(n) == net.as_ref() || a == "dhcp" {
                continue;
            }
            match free_address(design, n, &taken) {
                Some(free) => {
                    taken.push(free);
                    y.push_str(&format!(
                        "    # REVIEW: the first free address of {n}'s static range (node {} has one on {n}).\n",
                        sib.name
                    ));
                    y.push_str(&format!(
                        "    - network: {}\n      address: {}\n",
                        q(n),
                        q(&free.to_string())
                    ));
                }
                None => {
                    y.push_str(&format!(
                        "    # REVIEW: {n} has no free static address; node {} has one.\n",
                        sib.name
                    ));
                    y.push_str(&format!("    - network: {}\n      address: 'dhcp'\n", q(n)));
                }
            }
        }
    }

    // Interfaces: the profile's, each given the MACs of the machine's NICs
    // found where its slaves are (device alias PCI address, or NIC name).
    let aliases = eff
        .hardware_profile
        .as_deref()
        .and_then(|h| design.hardware_profile(h))
        .map(|p| p.data.device_aliases.clone())
        .unwrap_or_default();
    let mut used: Vec<u64> = Vec::new();
    let mut ifaces = String::new();
    for (iname, iface) in eff.interfaces.iter() {
        let mut macs = Vec::new();
        for slave in iface.slaves.iter().flatten() {
            let pci = aliases
                .get(slave)
                .and_then(|a| a.get("address"))
                .and_then(|a| a.as_str());
            let found = nics.iter().find(|(nic, _)| {
                pci.is_some_and(|p| nic.pci_address.as_deref() == Some(p))
                    || nic.name.as_deref() == Some(slave.as_str())
            });
            if let Some((_, m)) = found {
                macs.push(mac_text(*m));
                used.push(*m);
            }
        }
        if !macs.is_empty() {
            ifaces.push_str(&format!(
                "    {}:\n      labels:\n        {MAC_LABEL}: {}\n",
                q(iname),
                q(&macs.join(", "))
            ));
        }
    }
    let unmapped: Vec<&(&NetworkInterface, u64)> =
        nics.iter().filter(|(_, m)| !used.contains(m)).collect();
    if !ifaces.is_empty() || !unmapped.is_empty() {
        y.push_str("  # REVIEW: the machine's NICs found at the profile's device aliases (PCI address) or names.\n");
        for (nic, m) in &unmapped {
            y.push_str(&format!(
                "  # REVIEW: NIC {} {} (PCI {}) is in no interface of the profile.\n",
                comment(nic.name.as_deref().unwrap_or("?")),
                mac_text(*m),
                comment(nic.pci_address.as_deref().unwrap_or("?"))
            ));
        }
    }
    if !ifaces.is_empty() {
        y.push_str("  interfaces:\n");
        y.push_str(&ifaces);
    }
    y.push_str("  metadata:\n");
    if let Some(sib) = &sibling {
        y.push_str(&format!(
            "    # REVIEW: rack, tags and owner_data as node {} has them (same host profile).\n",
            sib.name
        ));
        if let Some(r) = &sib.rack {
            y.push_str(&format!("    rack: {}\n", q(r)));
        }
        if !sib.tags.is_empty() {
            y.push_str("    tags:\n");
            for t in &sib.tags {
                y.push_str(&format!("      - {}\n", q(t)));
            }
        }
        if !sib.owner_data.is_empty() {
            y.push_str("    owner_data:\n");
            for (k, v) in &sib.owner_data {
                y.push_str(&format!("      {}: {}\n", q(k), q(v)));
            }
        }
    }
    y.push_str("    # The MAC the machine booted from (PXE).\n");
    y.push_str(&format!("    boot_mac: {}\n", q(&mac_text(boot))));

    Ok(Proposal {
        path: format!("{PROPOSAL_DIR}/{mac_name}.yaml"),
        name,
        yaml: y,
        machine: mac_name,
    })
}

/// The design's HostProfile that fits the machine best, compiled.
fn best_profile(cb: &Callback, design: &Design) -> Option<(String, EffectiveNode)> {
    let inv = cb.inventory();
    let manufacturer = inv
        .system_vendor
        .as_ref()
        .and_then(|v| v.manufacturer.as_deref())
        .map(|m| m.trim().to_lowercase());
    let boot_mode = inv.boot.as_ref().and_then(|b| b.current_boot_mode.clone());
    let pcis: Vec<&str> = cb
        .interfaces()
        .iter()
        .filter_map(|(i, _)| i.pci_address.as_deref())
        .collect();
    let mut best: Option<((usize, bool, bool), String, EffectiveNode)> = None;
    for p in &design.host_profiles {
        let probe = Entity {
            name: "proposal".to_string(),
            doc: p.doc,
            data: Arc::new(HostData {
                host_profile: Some(p.name.clone()),
                ..HostData::default()
            }),
        };
        let eff = compile(design, &probe);
        if eff.missing_profile.is_some() || eff.profile_cycle.is_some() {
            continue;
        }
        let hw = eff
            .hardware_profile
            .as_deref()
            .and_then(|h| design.hardware_profile(h));
        let pci_hits = hw.map_or(0, |h| {
            h.data
                .device_aliases
                .values()
                .filter_map(|a| a.get("address").and_then(|a| a.as_str()))
                .filter(|a| pcis.contains(a))
                .count()
        });
        let vendor = hw
            .and_then(|h| h.data.vendor.as_deref())
            .zip(manufacturer.as_deref())
            .is_some_and(|(v, m)| {
                let v = v.trim().to_lowercase();
                !v.is_empty() && (m.contains(&v) || v.contains(m))
            });
        let mode = hw
            .and_then(|h| h.data.boot_mode.as_deref())
            .zip(boot_mode.as_deref())
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b));
        // A profile without a hardware profile fits nothing in particular.
        let score = (pci_hits, vendor && hw.is_some(), mode);
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, p.name.clone(), eff));
        }
    }
    best.map(|(_, n, e)| (n, e))
}

/// A free static address of the network as text, else `dhcp`.
fn placeholder(design: &Design, network: &str) -> String {
    free_address(design, network, &[]).map_or("dhcp".to_string(), |a| a.to_string())
}

/// The first address of a network's `static` ranges that no node has (and
/// not in `taken`); the search is bounded so a huge range costs little.
fn free_address(design: &Design, network: &str, taken: &[IpAddr]) -> Option<IpAddr> {
    let net = design.network(network)?;
    let used: std::collections::HashSet<IpAddr> = design
        .effective_nodes()
        .iter()
        .filter_map(|n| n.address_on(network))
        .filter_map(|a| a.trim().parse().ok())
        .chain(taken.iter().copied())
        .collect();
    let num = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    for r in net
        .data
        .ranges
        .iter()
        .filter(|r| r.range_type.as_deref() == Some("static"))
    {
        let (Some(start), Some(end)) = (
            r.start
                .as_deref()
                .and_then(|s| s.trim().parse::<IpAddr>().ok()),
            r.end
                .as_deref()
                .and_then(|s| s.trim().parse::<IpAddr>().ok()),
        ) else {
            continue;
        };
        let (lo, hi) = (num(start), num(end));
        let last = hi.min(lo.saturating_add(used.len() as u128 + 1));
        for n in lo..=last {
            let a = match start {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
            };
            if !used.contains(&a) {
                return Some(a);
            }
        }
    }
    None
}

/// The network whose CIDR holds `addr`: `preferred` when it does, else the
/// first in document order.
fn network_holding(design: &Design, addr: IpAddr, preferred: Option<&str>) -> Option<String> {
    let holds = |n: &Entity<crate::design::model::NetworkData>| {
        n.data
            .cidr
            .as_deref()
            .and_then(|c| c.parse::<ipnet::IpNet>().ok())
            .is_some_and(|c| c.contains(&addr))
    };
    if let Some(p) = preferred.and_then(|p| design.network(p)) {
        if holds(p) {
            return Some(p.name.clone());
        }
    }
    design
        .networks
        .iter()
        .find(|n| holds(n))
        .map(|n| n.name.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::design::DesignFile;
    use crate::inspection::inventory::from_value;
    use crate::inspection::test_site;
    use crate::validate;
    use serde_json::json;

    fn unknown_machine() -> serde_json::Value {
        json!({"inventory": {
            "interfaces": [
                {"name": "eno1", "mac_address": "52:54:00:AA:00:01", "ipv4_address": "10.32.200.9", "pci_address": "0000:1a:00.0"},
                {"name": "ens2f0", "mac_address": "52:54:00:aa:00:02", "pci_address": "0000:5e:00.0"},
                {"name": "ens2f1", "mac_address": "52:54:00:aa:00:03", "pci_address": "0000:5e:00.1"},
                {"name": "usb0", "mac_address": "52:54:00:aa:00:04"}],
            "cpu": {"count": 64}, "memory": {"physical_mb": 524288},
            "disks": [{"name": "/dev/sda", "size": 960_000_000_000u64, "hctl": "1:0:0:0"},
                      {"name": "/dev/sdb", "size": 3_840_000_000_000u64, "hctl": "1:0:1:0"}],
            "bmc_address": "10.16.7.7",
            "system_vendor": {"manufacturer": "HPE", "product_name": "DL380 Gen11", "serial_number": "CZ 2049/X7"},
            "boot": {"current_boot_mode": "uefi"}},
          "boot_interface": "52:54:00:aa:00:01"})
    }

    fn validate_with(p: &Proposal) -> crate::design::Validation {
        let mut files = test_site::files();
        files.push(DesignFile {
            path: p.path.clone(),
            bytes: p.yaml.clone().into_bytes(),
        });
        validate(&files)
    }

    #[test]
    fn an_unknown_machine_becomes_a_node_that_validates_with_the_design() {
        let d = test_site::design();
        let p = propose(&from_value(unknown_machine()).unwrap(), &d).unwrap();
        assert_eq!(p.name, "cz-2049-x7");
        assert_eq!(p.path, "discovered/mac-525400aa0001.yaml");
        let v = validate_with(&p);
        assert!(v.is_valid(), "{}\n{:#?}", p.yaml, v.messages);
        let design = v.design.unwrap();
        let node = design
            .effective_nodes()
            .iter()
            .find(|n| n.name == p.name)
            .unwrap()
            .clone();
        // gen11's PCI addresses found the NICs: the storage-node profile.
        assert_eq!(
            node.profile_chain.first().map(String::as_str),
            Some("storage-node")
        );
        assert_eq!(node.boot_mac.as_deref(), Some("52:54:00:aa:00:01"));
        assert_eq!(node.address_on("oob"), Some("10.16.7.7"));
        let bond = node.interface("bond0").unwrap();
        assert_eq!(
            bond.labels[MAC_LABEL],
            "52:54:00:aa:00:02, 52:54:00:aa:00:03"
        );
        assert!(
            p.yaml.contains("# REVIEW: NIC usb0 52:54:00:aa:00:04"),
            "{}",
            p.yaml
        );
        // And the machine now matches it and agrees with it.
        let cb = from_value(unknown_machine()).unwrap();
        let idx = crate::inspection::NodeIndex::build(&design);
        assert_eq!(
            idx.match_callback(&cb),
            crate::inspection::Match::Node("cz-2049-x7")
        );
        assert_eq!(crate::inspection::compare(&cb, &node, &design), vec![]);
    }

    #[test]
    fn without_a_serial_the_name_is_the_boot_mac_and_without_bmc_the_oob_is_for_review() {
        let d = test_site::design();
        let mut m = unknown_machine();
        m["inventory"]["system_vendor"]["serial_number"] = json!("To Be Filled By O.E.M.");
        m["inventory"]["bmc_address"] = json!("0.0.0.0");
        let p = propose(&from_value(m).unwrap(), &d).unwrap();
        assert_eq!(p.name, "mac-525400aa0001");
        assert!(
            p.yaml.contains(
                "# REVIEW: the machine reports no BMC address; a free address of oob is proposed"
            ),
            "{}",
            p.yaml
        );
        let v = validate_with(&p);
        assert!(v.is_valid(), "{}\n{:#?}", p.yaml, v.messages);
    }

    #[test]
    fn a_bmc_outside_the_profiles_oob_network_moves_the_node_to_the_network_holding_it() {
        let d = test_site::design();
        let mut m = unknown_machine();
        m["inventory"]["bmc_address"] = json!("10.48.9.9"); // mgmt's CIDR
        let p = propose(&from_value(m).unwrap(), &d).unwrap();
        assert!(
            p.yaml.contains("  oob:\n    network: 'mgmt'\n"),
            "{}",
            p.yaml
        );
        assert!(
            p.yaml
                .contains("- network: 'mgmt'\n      address: '10.48.9.9'"),
            "{}",
            p.yaml
        );
    }

    #[test]
    fn machine_text_cannot_break_out_of_a_comment_or_a_scalar() {
        let d = test_site::design();
        let mut m = unknown_machine();
        m["inventory"]["system_vendor"]["manufacturer"] = json!("Evil\nschema: 'x'");
        m["inventory"]["system_vendor"]["serial_number"] = json!("'; rm -rf /\n");
        m["inventory"]["interfaces"][3]["name"] = json!("usb0\n  host_profile: x");
        let p = propose(&from_value(m).unwrap(), &d).unwrap();
        assert_eq!(p.name, "rm-rf");
        let v = validate_with(&p);
        assert!(v.is_valid(), "{}\n{:#?}", p.yaml, v.messages);
    }

    #[test]
    fn a_serial_that_is_already_a_node_name_gets_the_mac_added() {
        let d = test_site::design();
        let mut m = unknown_machine();
        m["inventory"]["system_vendor"]["serial_number"] = json!("N00001");
        let p = propose(&from_value(m).unwrap(), &d).unwrap();
        assert_eq!(p.name, "n00001-525400aa0001");
        assert!(validate_with(&p).is_valid());
    }

    #[test]
    fn a_machine_without_macs_cannot_be_proposed() {
        let d = test_site::design();
        let cb = from_value(json!({"inventory": {"bmc_address": "10.16.7.7"}})).unwrap();
        assert_eq!(propose(&cb, &d), Err(ProposeError::NoMac));
    }

    #[test]
    fn hostname_labels_are_dns_labels() {
        assert_eq!(hostname_label("CZ 2049/X7").as_deref(), Some("cz-2049-x7"));
        assert_eq!(hostname_label("--a--b--").as_deref(), Some("a-b"));
        assert_eq!(hostname_label("///"), None);
        assert_eq!(hostname_label(&"x".repeat(80)).unwrap().len(), 63);
    }
}
