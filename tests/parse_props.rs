//! Properties of the parse stage that must hold for any input.

use proptest::prelude::*;
use slipway::design::{self, DesignFile};

fn file(bytes: Vec<u8>) -> DesignFile {
    DesignFile {
        path: "fuzz.yaml".into(),
        bytes,
    }
}

/// YAML-ish fragments, so that random inputs reach deep into the parser rather
/// than failing on the first byte.
fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "---\n",
        "schema: drydock/Network/v1\n",
        "schema: drydock/BaremetalNode/v1\n",
        "metadata:\n",
        "  name: n1\n",
        "data:\n",
        "  cidr: 10.0.0.0/24\n",
        "  addressing:\n",
        "    - network: a\n",
        "      address: 10.0.0.1\n",
        "- ",
        ": ",
        "&a ",
        "*a ",
        "{",
        "}",
        "[",
        "]",
        "'",
        "\"",
        "|\n",
        ">\n",
        "  ",
        "\t",
        "#c\n",
        "? ",
        "!!str ",
        "%YAML 1.1\n",
        "0xff: x\n",
        "yes\n",
        "~\n",
        "...\n",
        "\u{feff}",
        "<<: *a\n",
        "<<: [*a, {k: v}]\n",
        "  <<:\n",
        "'<<': x\n",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validate_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let v = slipway::validate(&[file(bytes)]);
        // Every error carries a source position.
        for m in v.messages.iter().filter(|m| m.error) {
            prop_assert!(m.source.is_some(), "{m:?}");
        }
    }

    #[test]
    fn validate_never_panics_on_yaml_like_text(text in yamlish()) {
        let v = slipway::validate(&[file(text.into_bytes())]);
        for m in v.messages.iter().filter(|m| m.error) {
            prop_assert!(m.source.is_some(), "{m:?}");
        }
    }

    #[test]
    fn document_order_across_files_does_not_change_the_verdict(split in 0usize..21) {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/designs/ok/gen-site-3-nodes.yaml")).unwrap();
        let docs: Vec<&str> = text.split("\n---\n").collect();
        let split = split.min(docs.len());
        let a = docs[..split].join("\n---\n");
        let b = docs[split..].join("\n---\n");
        let whole = slipway::validate(&[file(text.clone().into_bytes())]);
        let parts = slipway::validate(&[
            DesignFile { path: "b.yaml".into(), bytes: a.into_bytes() },
            DesignFile { path: "a.yaml".into(), bytes: format!("---\n{b}").into_bytes() },
        ]);
        prop_assert_eq!(whole.is_valid(), parts.is_valid());
        let n = |v: &design::Validation| v.design.as_ref().map(|d| d.documents.len()).unwrap_or(0);
        prop_assert_eq!(n(&whole), n(&parts));
    }
}
