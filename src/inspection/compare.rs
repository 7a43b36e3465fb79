//! Where a machine and its design node disagree: interface MACs, boot MAC,
//! BMC address, and what the node's hardware profile implies (vendor, boot
//! mode, CPUs its `cpu_sets` name, memory its `hugepages` take, disks its
//! device aliases and storage layout need). What the machine does not report
//! is not a disagreement: nothing is known to compare.

use serde::Serialize;

use super::inventory::{Callback, Disk};
use super::{labelled_macs, mac_key, mac_text};
use crate::design::effective::EffectiveNode;
use crate::design::rules::storage::{parse_size, Size};
use crate::design::Design;

/// One disagreement between the design and the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Disagreement {
    /// A MAC the design states for an interface is not on the machine.
    InterfaceMac {
        interface: String,
        design: String,
        /// The machine's MACs the design does not state.
        unlisted: Vec<String>,
    },
    /// The machine booted from another NIC than the design's `boot_mac`.
    BootMac {
        design: String,
        /// `None`: the machine reports no NIC with that MAC at all.
        machine: Option<String>,
    },
    /// The BMC reports another address than the node's OOB address.
    BmcAddress { design: String, machine: String },
    /// Fewer CPUs than the profile's `cpu_sets` name.
    CpuCount {
        profile: String,
        design_min: u64,
        machine: u64,
    },
    /// Less memory than the profile's huge pages take.
    Memory {
        profile: String,
        design_min_mib: u64,
        machine_mib: u64,
    },
    /// Fewer disks than the profile has disk aliases.
    DiskCount {
        profile: String,
        design_min: usize,
        machine: usize,
    },
    /// A device is smaller than its fixed-size partitions.
    DiskSize {
        device: String,
        design_min_bytes: u64,
        /// The disk compared: the alias's SCSI address, else the largest.
        machine_disk: String,
        machine_bytes: u64,
    },
    /// Another manufacturer than the profile's vendor.
    Vendor {
        profile: String,
        design: String,
        machine: String,
    },
    /// Another boot mode than the profile's.
    BootMode {
        profile: String,
        design: String,
        machine: String,
    },
}

impl Disagreement {
    /// A short name of the kind, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Disagreement::InterfaceMac { .. } => "interface_mac",
            Disagreement::BootMac { .. } => "boot_mac",
            Disagreement::BmcAddress { .. } => "bmc_address",
            Disagreement::CpuCount { .. } => "cpu_count",
            Disagreement::Memory { .. } => "memory",
            Disagreement::DiskCount { .. } => "disk_count",
            Disagreement::DiskSize { .. } => "disk_size",
            Disagreement::Vendor { .. } => "vendor",
            Disagreement::BootMode { .. } => "boot_mode",
        }
    }

    /// One line for the operator: the design's value and the machine's.
    pub fn message(&self) -> String {
        match self {
            Disagreement::InterfaceMac { interface, design, unlisted } => format!(
                "interface {interface}: the design's MAC {design} is not on the machine{}",
                if unlisted.is_empty() {
                    String::new()
                } else {
                    format!("; the machine has {} not in the design", unlisted.join(", "))
                }
            ),
            Disagreement::BootMac { design, machine: Some(m) } => {
                format!("boot MAC: the design says {design}, the machine booted from {m}")
            }
            Disagreement::BootMac { design, machine: None } => {
                format!("boot MAC: the design says {design}, the machine has no NIC with that MAC")
            }
            Disagreement::BmcAddress { design, machine } => {
                format!("BMC address: the design says {design}, the machine's BMC reports {machine}")
            }
            Disagreement::CpuCount { profile, design_min, machine } => format!(
                "CPUs: hardware profile {profile}'s cpu_sets need at least {design_min}, the machine has {machine}"
            ),
            Disagreement::Memory { profile, design_min_mib, machine_mib } => format!(
                "memory: hardware profile {profile}'s hugepages need at least {design_min_mib} MiB, the machine has {machine_mib} MiB"
            ),
            Disagreement::DiskCount { profile, design_min, machine } => format!(
                "disks: hardware profile {profile} names {design_min} disk device(s), the machine has {machine}"
            ),
            Disagreement::DiskSize { device, design_min_bytes, machine_disk, machine_bytes } => format!(
                "disk {device}: its partitions need at least {design_min_bytes} bytes, the machine's {machine_disk} has {machine_bytes}"
            ),
            Disagreement::Vendor { profile, design, machine } => format!(
                "vendor: hardware profile {profile} says {design}, the machine's manufacturer is {machine}"
            ),
            Disagreement::BootMode { profile, design, machine } => format!(
                "boot mode: hardware profile {profile} says {design}, the machine booted in {machine} mode"
            ),
        }
    }
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Every disagreement between a machine's inventory and its design node,
/// in a fixed order (identity first, then the hardware profile).
pub fn compare(cb: &Callback, node: &EffectiveNode, design: &Design) -> Vec<Disagreement> {
    let mut out = Vec::new();
    let machine = cb.macs();
    let mut stated: Vec<u64> = Vec::new();
    let boot = node.boot_mac.as_deref().and_then(mac_key);
    stated.extend(boot);
    for (_, iface) in node.interfaces.iter() {
        stated.extend(labelled_macs(&iface.labels));
    }
    let unlisted: Vec<String> = machine
        .iter()
        .filter(|m| !stated.contains(m))
        .map(|m| mac_text(*m))
        .collect();
    // A machine that reports no NIC (collectors failed) says nothing of MACs.
    for (name, iface) in node.interfaces.iter().filter(|_| !machine.is_empty()) {
        for mac in labelled_macs(&iface.labels) {
            if !machine.contains(&mac) {
                out.push(Disagreement::InterfaceMac {
                    interface: name.clone(),
                    design: mac_text(mac),
                    unlisted: unlisted.clone(),
                });
            }
        }
    }
    if let Some(b) = boot {
        match cb.boot_mac() {
            Some(m) if m != b => out.push(Disagreement::BootMac {
                design: mac_text(b),
                machine: Some(mac_text(m)),
            }),
            None if !machine.contains(&b) && !machine.is_empty() => {
                out.push(Disagreement::BootMac {
                    design: mac_text(b),
                    machine: None,
                })
            }
            _ => {}
        }
    }
    if let Some(design_bmc) = super::matching::bmc_address(node) {
        let reported = if design_bmc.is_ipv4() {
            cb.bmc_v4()
        } else {
            cb.bmc_v6()
        };
        if let Some(m) = reported.filter(|m| *m != design_bmc) {
            out.push(Disagreement::BmcAddress {
                design: design_bmc.to_string(),
                machine: m.to_string(),
            });
        }
    }
    if let Some((name, hw)) = node
        .hardware_profile
        .as_deref()
        .and_then(|n| design.hardware_profile(n).map(|p| (n, p)))
    {
        hardware(cb, name, &hw.data, &mut out);
    }
    storage(cb, node, design, &mut out);
    out
}

fn hardware(
    cb: &Callback,
    profile: &str,
    hw: &crate::design::model::HardwareProfileData,
    out: &mut Vec<Disagreement>,
) {
    let inv = cb.inventory();
    let vendor = inv.system_vendor.as_ref();
    if let (Some(d), Some(m)) = (
        hw.vendor.as_deref().filter(|s| !s.trim().is_empty()),
        vendor
            .and_then(|v| v.manufacturer.as_deref())
            .filter(|s| !s.trim().is_empty()),
    ) {
        let (dl, ml) = (d.trim().to_lowercase(), m.trim().to_lowercase());
        // "Dell" and "Dell Inc." are one vendor.
        if !ml.contains(&dl) && !dl.contains(&ml) {
            out.push(Disagreement::Vendor {
                profile: profile.to_string(),
                design: d.to_string(),
                machine: m.to_string(),
            });
        }
    }
    if let (Some(d), Some(m)) = (
        hw.boot_mode.as_deref(),
        inv.boot
            .as_ref()
            .and_then(|b| b.current_boot_mode.as_deref()),
    ) {
        if !d.eq_ignore_ascii_case(m) {
            out.push(Disagreement::BootMode {
                profile: profile.to_string(),
                design: d.to_string(),
                machine: m.to_string(),
            });
        }
    }
    let needed_cpus = hw.cpu_sets.values().filter_map(|s| highest_cpu(s)).max();
    if let (Some(need), Some(have)) = (needed_cpus, inv.cpu.as_ref().and_then(|c| c.count)) {
        if have < need {
            out.push(Disagreement::CpuCount {
                profile: profile.to_string(),
                design_min: need,
                machine: have,
            });
        }
    }
    let huge: u64 = hw.hugepages.values().filter_map(hugepage_bytes).sum();
    let mem = inv.memory.as_ref();
    let have_mib = mem
        .and_then(|m| m.physical_mb)
        .or_else(|| mem.and_then(|m| m.total).map(|b| b >> 20));
    if let (true, Some(have)) = (huge > 0, have_mib) {
        let need = huge.div_ceil(1 << 20);
        if have < need {
            out.push(Disagreement::Memory {
                profile: profile.to_string(),
                design_min_mib: need,
                machine_mib: have,
            });
        }
    }
    let disk_aliases = hw
        .device_aliases
        .values()
        .filter(|a| is_disk_alias(a))
        .count();
    if let Some(disks) = inv.disks.as_ref() {
        if disks.len() < disk_aliases {
            out.push(Disagreement::DiskCount {
                profile: profile.to_string(),
                design_min: disk_aliases,
                machine: disks.len(),
            });
        }
    }
}

/// One more than the highest CPU a `cpu_sets` list (`2-15,34-47`) names.
fn highest_cpu(list: &str) -> Option<u64> {
    list.split(',')
        .filter_map(|part| {
            let last = part.trim().rsplit('-').next()?;
            last.trim().parse::<u64>().ok()
        })
        .max()
        .map(|n| n + 1)
}

/// Bytes a `hugepages` entry (`{size: '1G', count: 32}`) takes.
fn hugepage_bytes(entry: &serde_json::Value) -> Option<u64> {
    let size = entry.get("size")?;
    let size = size
        .as_str()
        .map(str::to_string)
        .unwrap_or(size.to_string());
    let count = match entry.get("count")? {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let s = size.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    // Kernel huge page sizes are binary: 2M, 1G.
    let unit: u64 = match s[digits..].trim().to_ascii_uppercase().as_str() {
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit)?.checked_mul(count)
}

/// A device alias of a block device (by its bus; NICs are on `pci`).
fn is_disk_alias(alias: &serde_json::Value) -> bool {
    let bus = alias.get("bus_type").and_then(|b| b.as_str()).unwrap_or("");
    matches!(
        bus.to_ascii_lowercase().as_str(),
        "scsi" | "nvme" | "ata" | "sata" | "sas" | "ide" | "virtio" | "virtio-blk"
    )
}

/// The SCSI address of an alias (`0:0.1.0`, MAAS's host:bus.target.lun) as
/// Linux writes an `hctl` (`0:0:1:0`).
fn alias_hctl(alias: &serde_json::Value) -> Option<String> {
    let addr = alias.get("address")?.as_str()?;
    Some(addr.replace('.', ":"))
}

fn storage(cb: &Callback, node: &EffectiveNode, design: &Design, out: &mut Vec<Disagreement>) {
    let Some(disks) = cb.inventory().disks.as_ref().filter(|d| !d.is_empty()) else {
        return;
    };
    let aliases = node
        .hardware_profile
        .as_deref()
        .and_then(|n| design.hardware_profile(n))
        .map(|p| p.data.device_aliases.clone())
        .unwrap_or_default();
    let largest = disks
        .iter()
        .filter(|d| d.size.is_some())
        .max_by_key(|d| d.size);
    for (device, pd) in node.physical_devices.iter() {
        let need: u64 = pd
            .partitions
            .iter()
            .flatten()
            .filter_map(|p| match p.size.as_deref().and_then(parse_size) {
                Some(Size::Bytes { bytes, .. }) if bytes > 0 => u64::try_from(bytes).ok(),
                _ => None,
            })
            .sum();
        if need == 0 {
            continue;
        }
        let by_address = aliases.get(device).and_then(alias_hctl).and_then(|hctl| {
            disks
                .iter()
                .find(|d| d.other.get("hctl").and_then(|h| h.as_str()) == Some(hctl.as_str()))
        });
        let Some(disk) = by_address.or(largest) else {
            continue;
        };
        let have = disk.size.unwrap_or(0);
        if have < need {
            out.push(Disagreement::DiskSize {
                device: device.clone(),
                design_min_bytes: need,
                machine_disk: disk_name(disk),
                machine_bytes: have,
            });
        }
    }
}

fn disk_name(d: &Disk) -> String {
    d.name.clone().unwrap_or_else(|| "disk".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspection::inventory::from_value;
    use crate::inspection::test_site::design;
    use serde_json::{json, Value};

    /// What n00001 of the test site really is: the design's MACs, BMC and a
    /// gen10 machine that fits its profile.
    fn n00001_machine() -> Value {
        json!({"inventory": {
            "interfaces": [
                {"name": "eno1", "mac_address": "02:bd:50:00:00:01"},
                {"name": "ens1f0", "mac_address": "3c:fd:fe:00:01:02"},
                {"name": "ens1f1", "mac_address": "3c:fd:fe:00:01:03"}],
            "cpu": {"count": 64},
            "memory": {"physical_mb": 262144},
            "disks": [{"name": "/dev/sda", "size": 480_000_000_000u64, "hctl": "0:0:0:0"},
                      {"name": "/dev/sdb", "size": 4_000_000_000_000u64, "hctl": "0:0:1:0"}],
            "bmc_address": "10.16.1.1",
            "system_vendor": {"manufacturer": "HPE", "serial_number": "CZ1"},
            "boot": {"current_boot_mode": "bios", "pxe_interface": "02:bd:50:00:00:01"}},
         "boot_interface": "02:bd:50:00:00:01"})
    }

    fn check(machine: Value) -> Vec<Disagreement> {
        let d = design();
        let node = d
            .effective_nodes()
            .iter()
            .find(|n| n.name == "n00001")
            .unwrap()
            .clone();
        compare(&from_value(machine).unwrap(), &node, &d)
    }

    #[test]
    fn a_machine_as_designed_has_no_disagreement() {
        assert_eq!(check(n00001_machine()), vec![]);
    }

    #[test]
    fn a_nic_mac_that_differs_from_the_design_is_reported_with_both_values() {
        let mut m = n00001_machine();
        m["inventory"]["interfaces"][2]["mac_address"] = json!("3C:FD:FE:00:09:99");
        let found = check(m);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind(), "interface_mac");
        assert_eq!(
            found[0].message(),
            "interface bond0: the design's MAC 3c:fd:fe:00:01:03 is not on the machine; the machine has 3c:fd:fe:00:09:99 not in the design"
        );
    }

    #[test]
    fn boot_from_another_nic_and_another_bmc_address_are_reported() {
        let mut m = n00001_machine();
        m["boot_interface"] = json!("3c:fd:fe:00:01:02");
        m["inventory"]["bmc_address"] = json!("10.16.9.9");
        let kinds: Vec<String> = check(m).iter().map(|d| d.message()).collect();
        assert_eq!(kinds, [
            "boot MAC: the design says 02:bd:50:00:00:01, the machine booted from 3c:fd:fe:00:01:02",
            "BMC address: the design says 10.16.1.1, the machine's BMC reports 10.16.9.9",
        ]);
    }

    #[test]
    fn a_boot_mac_on_no_nic_of_the_machine_is_reported_without_a_boot_interface() {
        let mut m = n00001_machine();
        m.as_object_mut().unwrap().remove("boot_interface");
        m["inventory"]["boot"]
            .as_object_mut()
            .unwrap()
            .remove("pxe_interface");
        m["inventory"]["interfaces"][0]["mac_address"] = json!("02:bd:50:00:00:99");
        let msgs: Vec<String> = check(m).iter().map(|d| d.message()).collect();
        assert_eq!(msgs, [
            "interface pxe: the design's MAC 02:bd:50:00:00:01 is not on the machine; the machine has 02:bd:50:00:00:99 not in the design",
            "boot MAC: the design says 02:bd:50:00:00:01, the machine has no NIC with that MAC",
        ]);
    }

    #[test]
    fn a_machine_short_of_the_hardware_profile_is_reported_per_figure() {
        let mut m = n00001_machine();
        m["inventory"]["cpu"]["count"] = json!(32); // cpu_sets name CPU 47
        m["inventory"]["memory"] = json!({"physical_mb": 16384}); // 32 x 1G huge pages
        m["inventory"]["disks"] =
            json!([{"name": "/dev/sda", "size": 50_000_000_000u64, "hctl": "0:0:0:0"}]);
        m["inventory"]["system_vendor"]["manufacturer"] = json!("Dell Inc.");
        m["inventory"]["boot"]["current_boot_mode"] = json!("uefi");
        let found: Vec<&str> = check(m.clone()).iter().map(|d| d.kind()).collect();
        assert_eq!(
            found,
            [
                "vendor",
                "boot_mode",
                "cpu_count",
                "memory",
                "disk_count",
                "disk_size"
            ]
        );
        let msgs: Vec<String> = check(m).iter().map(|d| d.message()).collect();
        assert!(
            msgs.contains(
                &"CPUs: hardware profile gen10's cpu_sets need at least 48, the machine has 32"
                    .to_string()
            ),
            "{msgs:?}"
        );
        assert!(msgs.contains(&"memory: hardware profile gen10's hugepages need at least 32768 MiB, the machine has 16384 MiB".to_string()), "{msgs:?}");
        assert!(msgs.contains(&"disk bootdisk: its partitions need at least 62000000000 bytes, the machine's /dev/sda has 50000000000".to_string()), "{msgs:?}");
    }

    #[test]
    fn what_the_machine_does_not_report_is_not_a_disagreement() {
        assert_eq!(check(json!({"error": "collectors failed"})), vec![]);
        assert_eq!(
            check(
                json!({"inventory": {"interfaces": [{"mac_address": "02:bd:50:00:00:01"},
            {"mac_address": "3c:fd:fe:00:01:02"}, {"mac_address": "3c:fd:fe:00:01:03"}],
            "bmc_address": "0.0.0.0"}})
            ),
            vec![]
        );
    }

    #[test]
    fn cpu_lists_and_huge_pages_are_read_as_the_kernel_writes_them() {
        assert_eq!(highest_cpu("2-15,34-47"), Some(48));
        assert_eq!(highest_cpu("0"), Some(1));
        assert_eq!(highest_cpu("x"), None);
        assert_eq!(
            hugepage_bytes(&json!({"size": "2M", "count": "512"})),
            Some(1 << 30)
        );
        assert_eq!(
            hugepage_bytes(&json!({"size": "1G", "count": 2})),
            Some(2 << 30)
        );
        assert_eq!(hugepage_bytes(&json!({"size": "huge", "count": 2})), None);
    }
}
