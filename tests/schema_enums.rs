//! Every enumerated field of the project's schemas accepts exactly the values
//! Drydock accepts: each value of the table is accepted, an unlisted one is
//! refused (SW201), and the table covers every `enum` in `schemas/*.json`.
//!
//! Where each list comes from (airshipit/drydock, `python/drydock_provisioner`):
//! the schema enums are those of `schemas/*.yaml` (identical lists); the
//! NetworkLink modes are not enums in Drydock's schema but its objects'
//! enum fields (`objects/fields.py`: `NetworkLinkBondingMode`,
//! `NetworkLinkTrunkingMode`), which refuse any other value at ingestion.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use slipway::design::DesignFile;

/// Kind, JSON pointer into `data`, the values Drydock accepts, and a base
/// `data` the pointer is set in.
fn table() -> Vec<(&'static str, &'static str, Vec<&'static str>, Value)> {
    let asset = || json!({"assets": [{"type": "file", "path": "/etc/x", "data": "x", "location_pipeline": ["template"], "data_pipeline": ["utf8_decode"]}]});
    let filter = || {
        json!({"assets": [{"type": "file", "path": "/etc/x", "data": "x"}],
               "node_filter": {"filter_set_type": "union", "filter_set": [{"filter_type": "union", "node_names": ["n"]}]}})
    };
    vec![
        (
            "BootAction",
            "/assets/0/type",
            vec!["unit", "file", "pkg_list"],
            asset(),
        ),
        (
            "BootAction",
            "/assets/0/location_pipeline/0",
            vec!["template"],
            asset(),
        ),
        (
            "BootAction",
            "/assets/0/data_pipeline/0",
            vec![
                "base64_encode",
                "template",
                "base64_decode",
                "utf8_encode",
                "utf8_decode",
            ],
            asset(),
        ),
        (
            "BootAction",
            "/node_filter/filter_set_type",
            vec!["intersection", "union"],
            filter(),
        ),
        (
            "BootAction",
            "/node_filter/filter_set/0/filter_type",
            vec!["intersection", "union"],
            filter(),
        ),
        (
            "HardwareProfile",
            "/boot_mode",
            vec!["bios", "uefi"],
            json!({"boot_mode": "bios"}),
        ),
        (
            "HardwareProfile",
            "/bootstrap_protocol",
            vec!["pxe", "usb", "hdd"],
            json!({"bootstrap_protocol": "pxe"}),
        ),
        (
            "Region",
            "/tag_definitions/0/definition_type",
            vec!["lshw_xpath"],
            json!({"tag_definitions": [{"tag": "t", "definition_type": "lshw_xpath", "definition": "//x"}]}),
        ),
        (
            "NetworkLink",
            "/bonding/mode",
            vec!["disabled", "802.3ad", "balance-rr", "active-backup"],
            json!({"allowed_networks": ["a"], "bonding": {"mode": "disabled"}}),
        ),
        (
            "NetworkLink",
            "/trunking/mode",
            vec!["disabled", "802.1q"],
            json!({"allowed_networks": ["a"], "trunking": {"mode": "disabled"}}),
        ),
    ]
}

/// The SW201 messages of a design made of one document of `kind` with `data`.
fn schema_errors(kind: &str, data: &Value) -> Vec<String> {
    let doc =
        json!({"schema": format!("drydock/{kind}/v1"), "metadata": {"name": "x"}, "data": data});
    let v = slipway::validate(&[DesignFile {
        path: "enum.yaml".into(),
        // JSON is YAML.
        bytes: doc.to_string().into_bytes(),
    }]);
    v.messages
        .iter()
        .filter(|m| m.code == "SW201")
        .map(|m| m.message.clone())
        .collect()
}

fn set(mut data: Value, pointer: &str, value: &str) -> Value {
    *data
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} not in the base data")) = Value::from(value);
    data
}

#[test]
fn every_enumerated_field_accepts_exactly_drydocks_values() {
    let mut failures = Vec::new();
    for (kind, pointer, accepted, base) in table() {
        for value in &accepted {
            let errs = schema_errors(kind, &set(base.clone(), pointer, value));
            if !errs.is_empty() {
                failures.push(format!("{kind} {pointer} = {value:?} refused: {errs:?}"));
            }
        }
        // Unlisted: a neighbour of a real value in another case, and a stranger.
        let upper = accepted[0].to_uppercase();
        for value in [upper.as_str(), "unknown", ""] {
            if accepted.contains(&value) {
                continue;
            }
            let errs = schema_errors(kind, &set(base.clone(), pointer, value));
            if errs.is_empty() {
                failures.push(format!("{kind} {pointer} = {value:?} accepted"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `enum` of a schema, as (kind, pointer into `data`, values).
fn schema_enums() -> BTreeSet<(String, String, Vec<String>)> {
    fn walk(v: &Value, at: String, kind: &str, out: &mut BTreeSet<(String, String, Vec<String>)>) {
        let Value::Object(m) = v else { return };
        if let Some(Value::Array(values)) = m.get("enum") {
            let values = values
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            out.insert((kind.to_string(), at.clone(), values));
        }
        if let Some(Value::Object(props)) = m.get("properties") {
            for (k, p) in props {
                walk(p, format!("{at}/{k}"), kind, out);
            }
        }
        if let Some(items) = m.get("items") {
            walk(items, format!("{at}/0"), kind, out);
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let kind = p.file_stem().unwrap().to_string_lossy().into_owned();
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        walk(&schema, String::new(), &kind, &mut out);
    }
    out
}

#[test]
fn the_table_lists_every_enum_of_the_schemas_with_the_same_values() {
    let in_schemas = schema_enums();
    let in_table: BTreeSet<(String, String, Vec<String>)> = table()
        .into_iter()
        .map(|(k, p, v, _)| {
            (
                k.to_string(),
                p.to_string(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(in_schemas, in_table);
}
