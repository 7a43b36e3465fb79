//! What a machine reports about itself, checked against git. Pure domain: no
//! I/O, no HTTP.
//!
//! The Ironic agent (IPA) posts its inventory to `/v1/continue` (inspector) or
//! `/v1/continue_inspection` (Ironic's built-in inspection). This module reads
//! that body ([`inventory`]), finds the design's node it names the way
//! ironic-inspector does ([`matching`]), lists where the machine and the design
//! disagree ([`compare`]) and, for a machine the design does not know, writes a
//! proposed `BaremetalNode` document for review ([`propose`]).
//!
//! Where the design states a machine's identity (docs/ironic.md):
//! `metadata.boot_mac`, each interface's `labels.mac_address` (one MAC, or
//! several separated by commas or spaces for a bond's slaves: Drydock has no
//! MAC field, labels are free-form), and the address on the node's
//! `oob.network`.

pub mod compare;
pub mod inventory;
pub mod matching;
pub mod propose;

pub use compare::{compare, Disagreement};
pub use inventory::{parse, Callback, InventoryError};
pub use matching::{lookup_addresses, Match, NodeIndex};
pub use propose::{propose, Proposal, ProposeError};

/// The node an inspection callback names, as ironic-inspector's
/// `node_cache.find_node` finds it (see [`NodeIndex::match_callback`]).
pub fn match_node<'a>(cb: &Callback, index: &'a NodeIndex) -> Match<'a> {
    index.match_callback(cb)
}

/// The interface label that states an interface's MAC address(es).
pub const MAC_LABEL: &str = "mac_address";

/// A MAC address as a number (so `02:BD:…`, `02-bd-…` compare equal).
pub fn mac_key(text: &str) -> Option<u64> {
    let t = text.trim();
    // PXE's BOOTIF form `01-aa-bb-cc-dd-ee-ff` (hardware type 1, Ethernet),
    // which ironic-inspector also accepts as a boot interface.
    let t = match t.strip_prefix("01-") {
        Some(rest) if rest.len() == 17 => rest,
        _ => t,
    };
    crate::design::rules::identity::parse_mac(t)
}

/// A MAC as lowercase colon-separated octets.
pub fn mac_text(key: u64) -> String {
    let b = key.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

/// The MACs a design interface states in its `mac_address` label.
pub fn labelled_macs(labels: &crate::design::model::Labels) -> Vec<u64> {
    match labels.get(MAC_LABEL) {
        Some(serde_json::Value::String(s)) => crate::design::model::maas_list::split(s)
            .iter()
            .filter_map(|m| mac_key(m))
            .collect(),
        _ => Vec::new(),
    }
}

/// The example site of `designs/`, with n00001's interfaces stating their
/// MACs, for the tests of this module.
#[cfg(test)]
pub(crate) mod test_site {
    use crate::design::{Design, DesignFile};
    use crate::validate;

    /// The first node's document gets these interface labels.
    const N00001_INTERFACES: &str = "  interfaces:\n    pxe:\n      labels:\n        mac_address: '02:bd:50:00:00:01'\n    bond0:\n      labels:\n        mac_address: '3c:fd:fe:00:01:02, 3c:fd:fe:00:01:03'\n";

    /// The files of the site.
    pub fn files() -> Vec<DesignFile> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("designs");
        let mut files = crate::source::read_dir_files(&dir).unwrap();
        let f = files
            .iter_mut()
            .find(|f| f.path.ends_with("rack-01.yaml"))
            .unwrap();
        let text = String::from_utf8(f.bytes.clone()).unwrap();
        let anchor = "data:\n  host_profile: control-node\n";
        let at = text.find(anchor).unwrap() + anchor.len();
        f.bytes = format!("{}{N00001_INTERFACES}{}", &text[..at], &text[at..]).into_bytes();
        files
    }

    /// The site, validated.
    pub fn design() -> Design {
        let v = validate(&files());
        assert!(v.is_valid(), "{:?}", v.messages);
        v.design.unwrap()
    }
}
