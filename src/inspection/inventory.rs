//! The body IPA 13 posts with its inspection data (docs/ironic.md; wire
//! facts in dialects.md §1.7).
//!
//! Lenient where IPA varies: every field may be missing or `null`, a body of
//! only `{"error": …}` is a valid callback, fields we do not read are kept as
//! they came. Strict where we read: a wrong type is an error naming its JSON
//! path.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object's fields this module does not read, kept as posted.
pub type Other = Map<String, Value>;

/// Why a callback body cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InventoryError {
    /// Not JSON at all.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the body is a JSON {found}; expected an object with `inventory`")]
    NotObject {
        /// What it is (`array`, `string`, `null`, …).
        found: &'static str,
    },
    /// A field we read has the wrong type.
    #[error("{path}: {message}")]
    WrongType {
        /// JSON path of the field (`inventory.interfaces[1].mac_address`).
        path: String,
        /// serde's description of what was expected and found.
        message: String,
    },
}

/// A whole inspection callback: the typed view and the posted JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// The typed fields.
    pub data: CallbackData,
    /// The body as parsed, every field kept. serde_json's maps sort their
    /// keys, so the build data stored is the request's own bytes (which
    /// the caller holds), not this re-serialised.
    pub posted: Value,
}

/// The top level of the body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallbackData {
    pub inventory: Option<Inventory>,
    pub root_disk: Option<Disk>,
    /// MAC of the NIC the machine booted from (or PXE's `01-…` form).
    pub boot_interface: Option<String>,
    /// Collector failures, as text.
    pub error: Option<String>,
    /// Old ramdisks' top-level BMC address (inspector's fallback).
    pub ipmi_address: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Inventory {
    pub interfaces: Option<Vec<NetworkInterface>>,
    pub cpu: Option<Cpu>,
    pub disks: Option<Vec<Disk>>,
    pub memory: Option<Memory>,
    pub bmc_address: Option<String>,
    pub bmc_v6address: Option<String>,
    pub bmc_mac: Option<String>,
    pub system_vendor: Option<SystemVendor>,
    pub boot: Option<Boot>,
    pub hostname: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory.interfaces[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInterface {
    pub name: Option<String>,
    pub mac_address: Option<String>,
    pub ipv4_address: Option<String>,
    pub pci_address: Option<String>,
    pub has_carrier: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory.cpu`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    pub model_name: Option<String>,
    pub count: Option<u64>,
    pub architecture: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory.disks[]` and `root_disk`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Disk {
    pub name: Option<String>,
    pub model: Option<String>,
    /// Bytes.
    pub size: Option<u64>,
    pub serial: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory.memory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// Bytes usable by the kernel.
    pub total: Option<u64>,
    /// MiB installed (from DMI), the figure inspector uses.
    pub physical_mb: Option<u64>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory.system_vendor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemVendor {
    pub product_name: Option<String>,
    pub serial_number: Option<String>,
    pub manufacturer: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// `inventory.boot`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Boot {
    /// `bios` or `uefi`.
    pub current_boot_mode: Option<String>,
    /// MAC of the PXE NIC (from the kernel's `BOOTIF`).
    pub pxe_interface: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

/// Reads a callback body.
pub fn parse(body: &[u8]) -> Result<Callback, InventoryError> {
    let posted: Value =
        serde_json::from_slice(body).map_err(|e| InventoryError::NotJson(e.to_string()))?;
    from_value(posted)
}

/// Reads an already parsed body.
pub fn from_value(posted: Value) -> Result<Callback, InventoryError> {
    let found = match &posted {
        Value::Object(_) => None,
        Value::Null => Some("null"),
        Value::Bool(_) => Some("boolean"),
        Value::Number(_) => Some("number"),
        Value::String(_) => Some("string"),
        Value::Array(_) => Some("array"),
    };
    if let Some(found) = found {
        return Err(InventoryError::NotObject { found });
    }
    let data: CallbackData =
        serde_path_to_error::deserialize(&posted).map_err(|e| InventoryError::WrongType {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    Ok(Callback { data, posted })
}

/// A BMC address inspector would use: `""`, `0.0.0.0` and `::/0` (what IPA
/// reports when it finds no BMC) and anything that is not an address are none.
fn usable_bmc(text: Option<&str>) -> Option<IpAddr> {
    let t = text?.trim();
    if t.is_empty() || t == "0.0.0.0" || t == "::/0" || t == "::" {
        return None;
    }
    t.parse().ok()
}

impl Callback {
    /// The inventory, or an empty one.
    pub fn inventory(&self) -> &Inventory {
        static EMPTY: std::sync::OnceLock<Inventory> = std::sync::OnceLock::new();
        self.data
            .inventory
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Inventory::default))
    }

    /// The machine's interfaces that have a MAC address, as (name, MAC key).
    pub fn interfaces(&self) -> Vec<(&NetworkInterface, u64)> {
        self.inventory()
            .interfaces
            .iter()
            .flatten()
            .filter_map(|i| Some((i, super::mac_key(i.mac_address.as_deref()?)?)))
            .collect()
    }

    /// Every MAC the machine reports (interfaces and boot interface), sorted,
    /// without duplicates.
    pub fn macs(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self.interfaces().into_iter().map(|(_, m)| m).collect();
        out.extend(self.boot_mac());
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The MAC the machine booted from: `boot_interface`, else
    /// `inventory.boot.pxe_interface`.
    pub fn boot_mac(&self) -> Option<u64> {
        let pxe = self.inventory().boot.as_ref();
        self.data
            .boot_interface
            .as_deref()
            .and_then(super::mac_key)
            .or_else(|| {
                pxe.and_then(|b| b.pxe_interface.as_deref())
                    .and_then(super::mac_key)
            })
    }

    /// The BMC's IPv4 address (`inventory.bmc_address`, else the top-level
    /// `ipmi_address` of old ramdisks), ignoring "no BMC" values.
    pub fn bmc_v4(&self) -> Option<IpAddr> {
        usable_bmc(self.inventory().bmc_address.as_deref())
            .or_else(|| usable_bmc(self.data.ipmi_address.as_deref()))
    }

    /// The BMC's IPv6 address, ignoring "no BMC" values.
    pub fn bmc_v6(&self) -> Option<IpAddr> {
        usable_bmc(self.inventory().bmc_v6address.as_deref())
    }

    /// The system's serial number, unless empty or a vendor placeholder.
    pub fn serial(&self) -> Option<&str> {
        let s = self
            .inventory()
            .system_vendor
            .as_ref()?
            .serial_number
            .as_deref()?
            .trim();
        let lower = s.to_ascii_lowercase();
        let placeholder = [
            "",
            "none",
            "null",
            "unknown",
            "not specified",
            "default string",
            "system serial number",
            "to be filled by o.e.m.",
            "0123456789",
            "0",
        ];
        (!placeholder.contains(&lower.as_str())).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPA_BODY: &str = r#"{
      "inventory": {
        "interfaces": [
          {"name": "eth0", "mac_address": "52:54:00:12:34:56", "ipv4_address": "10.32.1.7",
           "ipv6_address": null, "has_carrier": true, "lldp": null, "vendor": "0x8086",
           "product": "0x1572", "client_id": null, "biosdevname": null, "speed_mbps": 10000,
           "pci_address": "0000:19:00.0", "driver": "i40e"},
          {"name": "eth1", "mac_address": "52:54:00:AB:CD:EF", "ipv4_address": null}
        ],
        "cpu": {"model_name": "Xeon", "frequency": "2400.0000", "count": 48,
                "architecture": "x86_64", "flags": ["vmx"], "socket_count": 2},
        "disks": [{"name": "/dev/sda", "model": "LOGICAL VOLUME", "size": 480103981056,
                   "rotational": false, "wwn": null, "serial": "PDNLH0", "vendor": "HPE",
                   "hctl": "0:0:0:0", "by_path": "/dev/disk/by-path/x", "tran": "sas"}],
        "memory": {"total": 270000000000, "physical_mb": 262144},
        "bmc_address": "10.16.1.7", "bmc_v6address": "::/0", "bmc_mac": "aa:bb:cc:dd:ee:ff",
        "system_vendor": {"product_name": "ProLiant DL380 Gen10", "serial_number": "CZ12345",
                          "manufacturer": "HPE", "firmware": {"vendor": "HPE", "version": "U30"}},
        "boot": {"current_boot_mode": "bios", "pxe_interface": "52:54:00:12:34:56"},
        "hostname": "localhost"
      },
      "root_disk": {"name": "/dev/sda", "size": 480103981056},
      "boot_interface": "01-52-54-00-12-34-56",
      "configuration": {"collectors": ["default", "logs"], "managers": [{"name": "generic_hardware_manager", "version": "1.2"}]},
      "logs": "H4sIAAAA",
      "error": null
    }"#;

    #[test]
    fn ipa_body_is_read_and_unknown_fields_are_kept_as_posted() {
        let cb = parse(IPA_BODY.as_bytes()).unwrap();
        let inv = cb.inventory();
        assert_eq!(inv.cpu.as_ref().unwrap().count, Some(48));
        assert_eq!(inv.memory.as_ref().unwrap().physical_mb, Some(262144));
        assert_eq!(cb.macs().len(), 2);
        assert_eq!(cb.boot_mac(), super::super::mac_key("52:54:00:12:34:56"));
        assert_eq!(cb.bmc_v4(), Some("10.16.1.7".parse().unwrap()));
        assert_eq!(cb.bmc_v6(), None, "::/0 means no BMC");
        assert_eq!(cb.serial(), Some("CZ12345"));
        // Not read, kept: the stored build data is the posted JSON.
        assert_eq!(cb.data.other["logs"], "H4sIAAAA");
        assert_eq!(inv.cpu.as_ref().unwrap().other["frequency"], "2400.0000");
        let posted: Value = serde_json::from_str(IPA_BODY).unwrap();
        assert_eq!(cb.posted, posted);
    }

    #[test]
    fn error_only_body_and_nulls_are_a_valid_callback() {
        let cb =
            parse(br#"{"error": "collector default failed: No such file 'udevadm'"}"#).unwrap();
        assert!(cb.data.inventory.is_none());
        assert!(cb.macs().is_empty());
        assert!(cb.data.error.unwrap().contains("udevadm"));
        let cb = parse(
            br#"{"inventory": {"interfaces": null, "cpu": null, "bmc_address": null,
            "system_vendor": {"serial_number": null}}, "boot_interface": null}"#,
        )
        .unwrap();
        assert!(cb.macs().is_empty() && cb.bmc_v4().is_none() && cb.serial().is_none());
        assert!(parse(b"{}").is_ok());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_with_what_it_is() {
        assert_eq!(
            parse(b"null").unwrap_err(),
            InventoryError::NotObject { found: "null" }
        );
        assert_eq!(
            parse(b"[1]").unwrap_err(),
            InventoryError::NotObject { found: "array" }
        );
        assert!(matches!(
            parse(b"").unwrap_err(),
            InventoryError::NotJson(_)
        ));
        assert!(matches!(
            parse(b"{\"inventory\":").unwrap_err(),
            InventoryError::NotJson(_)
        ));
    }

    #[test]
    fn a_wrong_type_where_we_read_names_its_json_path() {
        let e = parse(br#"{"inventory": {"interfaces": [{"name": "eth0"}, {"mac_address": 5}]}}"#)
            .unwrap_err();
        match e {
            InventoryError::WrongType { path, .. } => {
                assert_eq!(path, "inventory.interfaces[1].mac_address")
            }
            other => panic!("{other:?}"),
        }
        let e = parse(br#"{"inventory": {"cpu": {"count": "many"}}}"#).unwrap_err();
        assert!(e.to_string().starts_with("inventory.cpu.count: "), "{e}");
        let e = parse(br#"{"inventory": "x"}"#).unwrap_err();
        assert!(e.to_string().starts_with("inventory: "), "{e}");
    }

    #[test]
    fn no_bmc_values_and_vendor_placeholder_serials_are_ignored() {
        for none in ["", "0.0.0.0", "::/0", "not-an-ip"] {
            let body =
                serde_json::json!({"inventory": {"bmc_address": none, "bmc_v6address": none}});
            let cb = from_value(body).unwrap();
            assert_eq!((cb.bmc_v4(), cb.bmc_v6()), (None, None), "{none:?}");
        }
        let cb = from_value(serde_json::json!({"ipmi_address": "10.0.0.9"})).unwrap();
        assert_eq!(cb.bmc_v4(), Some("10.0.0.9".parse().unwrap()));
        let cb = from_value(serde_json::json!({"inventory": {"system_vendor": {"serial_number": "To Be Filled By O.E.M."}}})).unwrap();
        assert_eq!(cb.serial(), None);
    }
}
