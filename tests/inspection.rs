//! `inspection` over a whole generated site: every node found by what its
//! machine would report, at 10,000 nodes, through the public API only.

mod common;

use std::time::Instant;

use common::GitRepo;
use serde_json::json;
use slipway::inspection::{self, Match, NodeIndex};
use slipway::source::read_dir_files;
use slipway::validate;

#[test]
fn every_node_of_a_10000_node_site_is_found_by_its_boot_mac_and_by_its_bmc_address() {
    let g = GitRepo::new();
    g.add_gen_site(&["--nodes", "10000"]);
    let v = validate(&read_dir_files(&g.path().join("designs")).unwrap());
    assert!(v.is_valid(), "{:?}", &v.messages[..v.messages.len().min(3)]);
    let design = v.design.unwrap();
    let secret = slipway::keys::Secret::from_bytes([9; slipway::keys::SECRET_LEN]);
    let started = Instant::now();
    let index = NodeIndex::build_with_uuids(&design, &secret);
    let built = started.elapsed();
    assert_eq!(index.len(), 10_000);
    let uuids: std::collections::HashSet<&str> = design
        .effective_nodes()
        .iter()
        .map(|n| index.uuid(&n.name).unwrap())
        .collect();
    assert_eq!(uuids.len(), 10_000, "one UUID per node");

    // What each machine would post: its boot NIC and its BMC.
    let callbacks: Vec<(String, inspection::Callback)> = design
        .effective_nodes()
        .iter()
        .map(|n| {
            let bmc = n.address_on("oob").unwrap().to_string();
            let body = json!({"inventory": {
                "interfaces": [{"name": "eno1", "mac_address": n.boot_mac.as_deref().unwrap().to_uppercase()},
                               {"name": "eno2", "mac_address": "52:54:00:ff:ff:ff"}],
                "bmc_address": bmc, "bmc_v6address": "::/0"}});
            (n.name.clone(), inspection::inventory::from_value(body).unwrap())
        })
        .collect();
    let started = Instant::now();
    for (name, cb) in &callbacks {
        assert_eq!(index.match_callback(cb), Match::Node(name));
    }
    let matched = started.elapsed();
    // Each by one attribute alone, too.
    for (name, cb) in callbacks.iter().step_by(97) {
        let macs = cb.macs();
        assert_eq!(index.lookup_macs(&macs), Match::Node(name));
        assert_eq!(
            index.match_attributes(&[cb.bmc_v4().unwrap()], &[]),
            Match::Node(name)
        );
    }
    // Figures only (a debug build on a shared machine): the benchmark asserts nothing either.
    eprintln!(
        "index of 10000 nodes built in {built:?}; 10000 callbacks matched in {matched:?} ({:.0}/s)",
        10_000.0 / matched.as_secs_f64()
    );
}

#[test]
fn a_machine_whose_nic_mac_differs_from_the_design_is_matched_and_told_so() {
    let g = GitRepo::new();
    g.add_example_site();
    // n00005 states its bond's MACs.
    let path = g.path().join("designs/nodes/rack-02.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let anchor = "  name: n00005\n";
    let at = text.find(anchor).unwrap();
    let data = text[at..].find("data:\n").unwrap() + at + "data:\n".len();
    let text = format!(
        "{}  interfaces:\n    bond0:\n      labels:\n        mac_address: '3c:fd:fe:00:05:01 3c:fd:fe:00:05:02'\n{}",
        &text[..data],
        &text[data..]
    );
    std::fs::write(&path, text).unwrap();
    let v = validate(&read_dir_files(&g.path().join("designs")).unwrap());
    assert!(v.is_valid(), "{:?}", v.messages);
    let design = v.design.unwrap();
    let index = NodeIndex::build(&design);
    let cb = inspection::parse(
        br#"{"inventory": {"interfaces": [
              {"name": "eno1", "mac_address": "02:bd:50:00:00:05"},
              {"name": "ens1f0", "mac_address": "3c:fd:fe:00:05:01"},
              {"name": "ens1f1", "mac_address": "3c:fd:fe:00:05:99"}],
            "bmc_address": "10.16.1.5"},
          "boot_interface": "02:bd:50:00:00:05"}"#,
    )
    .unwrap();
    let Match::Node(name) = index.match_callback(&cb) else {
        panic!("not matched")
    };
    assert_eq!(name, "n00005");
    let node = design
        .effective_nodes()
        .iter()
        .find(|n| n.name == name)
        .unwrap();
    let found: Vec<String> = inspection::compare(&cb, node, &design)
        .iter()
        .map(|d| d.message())
        .collect();
    assert_eq!(
        found,
        ["interface bond0: the design's MAC 3c:fd:fe:00:05:02 is not on the machine; the machine has 3c:fd:fe:00:05:99 not in the design"]
    );
}
