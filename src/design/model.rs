//! Typed `data` of the eight Drydock kinds.
//!
//! Field names are the design documents' own. Every field is optional and
//! unknown-to-us types are rejected earlier by the schema stage, so building
//! these from schema-valid JSON fails only on values the schema lets through but
//! no program could use (reported as SW202).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A JSON scalar that Drydock treats as text (`vlan: 100` and `vlan: '100'`).
pub type Labels = BTreeMap<String, serde_json::Value>;

/// `drydock/Region/v1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegionData {
    pub tag_definitions: Vec<TagDefinition>,
    pub authorized_keys: Vec<String>,
    /// Repository entries are free-form in Drydock's schema (see docs/compat.md).
    pub repositories: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagDefinition {
    pub tag: Option<String>,
    pub definition_type: Option<String>,
    pub definition: Option<String>,
}

/// `drydock/Rack/v1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RackData {
    /// Switch name to its parameters (`mgmt_ip`, `sdn_api_uri`).
    pub tor_switches: BTreeMap<String, serde_json::Value>,
    pub location: BTreeMap<String, serde_json::Value>,
    pub local_networks: Vec<String>,
    pub labels: Labels,
}

/// `drydock/NetworkLink/v1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkLinkData {
    pub bonding: Option<Bonding>,
    pub mtu: Option<f64>,
    pub linkspeed: Option<String>,
    pub trunking: Option<Trunking>,
    pub allowed_networks: Option<Vec<String>>,
    pub labels: Labels,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bonding {
    pub mode: Option<String>,
    pub hash: Option<String>,
    pub peer_rate: Option<String>,
    pub mon_rate: Option<f64>,
    pub up_delay: Option<f64>,
    pub down_delay: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Trunking {
    pub mode: Option<String>,
    pub default_network: Option<String>,
}

/// `drydock/Network/v1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkData {
    pub cidr: Option<String>,
    pub ranges: Vec<AddressRange>,
    pub dns: Option<Dns>,
    pub dhcp_relay: Option<DhcpRelay>,
    pub mtu: Option<f64>,
    pub vlan: Option<String>,
    pub routedomain: Option<String>,
    pub routes: Vec<Route>,
    pub labels: Labels,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressRange {
    #[serde(rename = "type")]
    pub range_type: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    pub domain: Option<String>,
    /// Written as one string (Drydock's schema); Drydock hands it to MAAS,
    /// which splits it at commas and whitespace (`8.8.8.8 8.8.4.4`,
    /// `8.8.8.8,8.8.4.4`), and so is it read here.
    #[serde(with = "maas_list")]
    pub servers: Option<Vec<String>>,
}

/// A list MAAS reads from one string (its `IPListFormField`: items separated
/// by commas and/or whitespace), written back space-separated as MAAS
/// normalises it.
pub mod maas_list {
    use serde::{Deserialize, Deserializer, Serializer};

    /// The items of `text`, in order, empty ones dropped.
    pub fn split(text: &str) -> Vec<String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Reads the string form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(|s| split(&s)))
    }

    /// Writes the space-separated form.
    pub fn serialize<S: Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(items) => s.serialize_some(&items.join(" ")),
            None => s.serialize_none(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DhcpRelay {
    pub self_ip: Option<String>,
    pub upstream_target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Route {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub metric: Option<f64>,
    pub routedomain: Option<String>,
}

/// `drydock/HardwareProfile/v1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HardwareProfileData {
    pub vendor: Option<String>,
    pub generation: Option<String>,
    pub hw_version: Option<String>,
    pub bios_version: Option<String>,
    pub boot_mode: Option<String>,
    pub bootstrap_protocol: Option<String>,
    pub pxe_interface: Option<f64>,
    /// Alias to `{address, dev_type, bus_type}`.
    pub device_aliases: BTreeMap<String, serde_json::Value>,
    pub cpu_sets: BTreeMap<String, String>,
    /// Name to `{size, count}` (not type-checked by Drydock's schema).
    pub hugepages: BTreeMap<String, serde_json::Value>,
}

/// The fields HostProfile and BaremetalNode share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostData {
    pub host_profile: Option<String>,
    pub hardware_profile: Option<String>,
    pub primary_network: Option<String>,
    pub oob: Option<Oob>,
    pub storage: Option<Storage>,
    /// Interface name to definition; a `null` value is kept (Drydock skips it).
    pub interfaces: BTreeMap<String, Option<Interface>>,
    pub platform: Option<Platform>,
    pub metadata: Option<HostMetadata>,
    /// BaremetalNode only.
    pub addressing: Option<Vec<Option<Address>>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Oob {
    #[serde(rename = "type", default)]
    pub oob_type: Option<String>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub credential: Option<String>,
    /// Other parameters, e.g. `libvirt_uri`.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Storage {
    pub physical_devices: BTreeMap<String, PhysicalDevice>,
    pub volume_groups: BTreeMap<String, VolumeGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhysicalDevice {
    pub labels: BTreeMap<String, String>,
    pub volume_group: Option<String>,
    pub partitions: Option<Vec<Partition>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Partition {
    pub name: Option<String>,
    pub size: Option<String>,
    pub part_uuid: Option<String>,
    pub volume_group: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub bootable: Option<bool>,
    pub filesystem: Option<Filesystem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filesystem {
    pub mountpoint: Option<String>,
    pub fstype: Option<String>,
    pub mount_options: Option<String>,
    pub fs_uuid: Option<String>,
    pub fs_label: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeGroup {
    pub vg_uuid: Option<String>,
    pub logical_volumes: Vec<LogicalVolume>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogicalVolume {
    pub name: Option<String>,
    pub lv_uuid: Option<String>,
    pub size: Option<String>,
    pub filesystem: Option<Filesystem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Interface {
    pub device_link: Option<String>,
    pub slaves: Option<Vec<String>>,
    pub networks: Option<Vec<String>>,
    pub labels: Labels,
    pub sriov: Option<Sriov>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sriov {
    pub vf_count: Option<f64>,
    pub trustedmode: Option<bool>,
    pub trustmode: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Platform {
    pub image: Option<String>,
    pub kernel: Option<String>,
    /// Values are strings, numbers or booleans; Drydock turns them into text.
    pub kernel_params: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostMetadata {
    pub tags: Option<Vec<String>>,
    pub owner_data: Option<BTreeMap<String, String>>,
    pub rack: Option<String>,
    pub boot_mac: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    pub network: Option<String>,
    pub address: Option<String>,
}

/// `drydock/BootAction/v1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BootActionData {
    pub signaling: Option<bool>,
    pub assets: Vec<Asset>,
    pub node_filter: Option<NodeFilter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Asset {
    pub path: Option<String>,
    pub location: Option<String>,
    #[serde(rename = "type")]
    pub asset_type: Option<super::pipeline::AssetType>,
    /// A string, or for `pkg_list` a map of package name to version (or null).
    pub data: Option<serde_json::Value>,
    pub location_pipeline: Vec<super::pipeline::PipelineStep>,
    pub data_pipeline: Vec<super::pipeline::PipelineStep>,
    pub permissions: Option<String>,
    /// slipway's opt-in for a mode with setuid, setgid or world-write bits
    /// (SW398); not in Drydock's schema.
    pub allow_unsafe_permissions: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeFilter {
    pub filter_set_type: Option<String>,
    pub filter_set: Vec<NodeFilterEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeFilterEntry {
    pub filter_type: Option<String>,
    pub node_names: Vec<String>,
    pub node_tags: Vec<String>,
    pub node_labels: BTreeMap<String, serde_json::Value>,
    pub rack_names: Vec<String>,
    pub rack_labels: BTreeMap<String, serde_json::Value>,
}

/// The text Drydock would make of a scalar (`True`, `9000`, `ttyS2`).
pub fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        serde_json::Value::Null => "None".to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}
