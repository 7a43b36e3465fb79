//! Host-profile inheritance on Drydock's own full-site sample.

use slipway::design::{self, DesignFile};

fn fullsite() -> design::Validation {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/drydock/yaml_samples/deckhand_fullsite.yaml"
    );
    slipway::validate(&[DesignFile {
        path: "deckhand_fullsite.yaml".into(),
        bytes: std::fs::read(path).unwrap(),
    }])
}

#[test]
fn nodes_inherit_their_profile_chain_and_bang_entries_remove() {
    let v = fullsite();
    let d = v.design.as_ref().unwrap();
    let nodes = d.effective_nodes();
    let c1 = nodes.iter().find(|n| n.name == "controller01").unwrap();
    // From k8-node (child) and defaults (root).
    assert_eq!(c1.profile_chain, ["k8-node", "defaults"]);
    assert_eq!(c1.hardware_profile.as_deref(), Some("HPGen9v3"));
    assert_eq!(c1.primary_network.as_deref(), Some("mgmt"));
    assert_eq!(c1.oob.as_ref().unwrap().oob_type.as_deref(), Some("ipmi"));
    assert_eq!(c1.image.as_deref(), Some("xenial"));
    assert!(c1.physical_devices.iter().any(|(n, _)| n == "sda"));
    assert!(c1.volume_groups.iter().any(|(n, _)| n == "log_vg"));
    // controller01 removes `private` from bond0 with '!private'.
    let bond0 = c1.interface("bond0").unwrap();
    assert_eq!(bond0.networks.as_deref().unwrap(), ["mgmt"]);
    assert_eq!(bond0.device_link.as_deref(), Some("gp"));
    let c2 = nodes.iter().find(|n| n.name == "compute01").unwrap();
    assert_eq!(
        c2.interface("bond0").unwrap().networks.as_deref().unwrap(),
        ["mgmt", "private"]
    );
    // Node-level owner_data overrides the profile's.
    let c3 = nodes.iter().find(|n| n.name == "compute02").unwrap();
    assert_eq!(c3.owner_data.get("foo").map(String::as_str), Some("baz"));
    assert_eq!(c1.owner_data.get("foo").map(String::as_str), Some("bar"));
    assert_eq!(c3.rack.as_deref(), Some("rack3"));
    assert_eq!(c1.address_on("mgmt"), Some("172.16.1.20"));
    assert_eq!(c1.address_on("pxe"), None, "dhcp is not a static address");
}
