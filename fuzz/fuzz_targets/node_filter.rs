//! A BootAction `node_filter` of any JSON shape, in a valid site: read,
//! checked and evaluated without a panic, every error located.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway::design::DesignFile;

const SITE: &str = include_str!("../../tests/data/designs/ok/gen-site-3-nodes.yaml");

fuzz_target!(|data: &[u8]| {
    let Ok(filter) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let doc = serde_json::json!({
        "schema": "drydock/BootAction/v1",
        "metadata": {"name": "fuzz"},
        "data": {"assets": [{"type": "file", "path": "/etc/x", "data": "x", "data_pipeline": ["utf8_decode"]}], "node_filter": filter},
    });
    let text = format!("{SITE}\n---\n{doc}\n");
    let v = slipway::validate(&[DesignFile {
        path: "fuzz.yaml".into(),
        bytes: text.into_bytes(),
    }]);
    for m in v.messages.iter().filter(|m| m.error) {
        assert!(m.source.is_some(), "{m:?}");
    }
});
