//! Validation and rendering run an asset's `data_pipeline` through one
//! interpreter: a design validates exactly when every node a BootAction
//! targets renders (units, files, all, pkg_list).
//!
//! Generated: one BootAction added to the 3-node gen-site, with 1–3 assets of
//! any type (`unit`, `file`, `pkg_list`), each with any sequence of up to five
//! pipeline steps over generated data (plain text, base64 of text, base64 of
//! non-UTF-8 bytes, not-base64 text, templates that compile and render, that
//! do not compile, that read an undefined variable, that render base64 or
//! another template), targeting every node or one.
//! Not generated: `location` assets (not fetched, so never rendered) and
//! `pkg_list` data that is not a mapping of valid versions (the package list
//! is not a pipeline; SW381/SW382 refuse what rendering ignores).

use proptest::prelude::*;

use slipway::design::{Design, DesignFile};
use slipway::render::bootdata::{render_node, BootDataKind, CompiledActions, NodeAction};
use slipway::render::context::{ActionValues, ContextBuilder};

const STEPS: [&str; 5] = [
    "base64_decode",
    "base64_encode",
    "utf8_decode",
    "utf8_encode",
    "template",
];

const DATA: [&str; 12] = [
    "plain text\n",
    // base64 of "hello {{ node.hostname }}\n"
    "aGVsbG8ge3sgbm9kZS5ob3N0bmFtZSB9fQo=",
    // base64 of bytes ff fe fd
    "//79",
    "not*base64!",
    "host={{ node.hostname }}",
    "{% if %}broken",
    "zone={{ node.labels.nosuch }}",
    "{{ 'aGk=' }}",
    "{{ '{{ node.hostname }}' }}",
    "{{ '{% if %}' }}",
    "{% if node.labels.zone is defined %}{{ node.labels.zone }}{% endif %}",
    "aGk=",
];

#[derive(Debug, Clone)]
struct GenAsset {
    kind: usize,
    data: usize,
    steps: Vec<usize>,
}

/// Indices into [`STEPS`] that each take what the step before gives (data
/// enters as bytes): random steps are mostly ill-typed, and the interesting
/// failures (content after a template) need well-typed prefixes.
fn well_typed(choices: Vec<usize>) -> Vec<usize> {
    let mut text = false;
    choices
        .into_iter()
        .map(|c| {
            // bytes: base64_decode, base64_encode, utf8_decode;
            // text: base64_decode, utf8_encode, template.
            let options: [usize; 3] = if text { [0, 3, 4] } else { [0, 1, 2] };
            let s = options[c % 3];
            text = matches!(s, 2 | 4);
            s
        })
        .collect()
}

fn steps() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        proptest::collection::vec(0..STEPS.len(), 0..=5),
        proptest::collection::vec(0usize..3, 0..=5).prop_map(well_typed),
    ]
}

fn asset() -> impl Strategy<Value = GenAsset> {
    (0usize..3, 0..DATA.len(), steps()).prop_map(|(kind, data, steps)| GenAsset {
        kind,
        data,
        steps,
    })
}

fn base() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/designs/ok/gen-site-3-nodes.yaml"
    ))
    .unwrap()
}

/// The gen-site with a `generated` BootAction of these assets.
fn design_with(assets: &[GenAsset], only: Option<&str>) -> Vec<DesignFile> {
    let mut doc = String::from(
        "---\nschema: 'drydock/BootAction/v1'\nmetadata:\n  schema: 'metadata/Document/v1'\n  name: generated\n  storagePolicy: 'cleartext'\n  layeringDefinition:\n    abstract: false\n    layer: site\ndata:\n  signaling: false\n",
    );
    if let Some(node) = only {
        doc.push_str(&format!(
            "  node_filter:\n    filter_set_type: union\n    filter_set:\n      - filter_type: union\n        node_names:\n          - {node}\n"
        ));
    }
    doc.push_str("  assets:\n");
    for (i, a) in assets.iter().enumerate() {
        let kind = ["unit", "file", "pkg_list"][a.kind];
        doc.push_str(&format!(
            "    - path: '/etc/generated/{i}'\n      type: {kind}\n      permissions: '0644'\n"
        ));
        if kind == "pkg_list" {
            doc.push_str("      data:\n        curl: '7.58.0-2ubuntu3.1'\n        jq: null\n");
        } else {
            let data = serde_json::to_string(DATA[a.data]).unwrap();
            doc.push_str(&format!("      data: {data}\n"));
        }
        if !a.steps.is_empty() {
            doc.push_str("      data_pipeline:\n");
            for &s in &a.steps {
                doc.push_str(&format!("        - {}\n", STEPS[s]));
            }
        }
    }
    let mut text = base();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&doc);
    vec![DesignFile {
        path: "site.yaml".into(),
        bytes: text.into_bytes(),
    }]
}

/// Whether every node renders every kind of its boot data.
fn renders(design: &Design) -> Result<(), String> {
    let compiled = CompiledActions::compile(design).map_err(|e| e.to_string())?;
    let builder = ContextBuilder::new(design);
    for (i, node) in design.effective_nodes().iter().enumerate() {
        let actions: Vec<NodeAction> = design.node_boot_actions()[i]
            .iter()
            .map(|&index| NodeAction {
                index,
                values: ActionValues::placeholder(),
            })
            .collect();
        let ctx = builder.node(node);
        for kind in BootDataKind::ALL {
            render_node(&compiled, &ctx, &actions, kind, 0)
                .map_err(|e| format!("{} {}: {e}", node.name, kind.word()))?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn validation_verdict_equals_rendering_outcome(
        assets in proptest::collection::vec(asset(), 1..=3),
        only in proptest::option::of(prop_oneof![Just("n00001"), Just("n00002")]),
    ) {
        let files = design_with(&assets, only);
        let v = slipway::validate(&files);
        let design = v.design.as_ref().expect("the generated design is typed");
        let rendered = renders(design);
        let lines: Vec<String> = v.messages.iter().filter(|m| m.error).map(|m| m.to_text_line()).collect();
        prop_assert_eq!(
            v.is_valid(),
            rendered.is_ok(),
            "validation errors: {:#?}\nrendering: {:?}",
            lines,
            rendered
        );
    }
}

/// The pipeline that validated and failed to render before there was one
/// interpreter: `base64_encode` gives bytes (Python's `b64encode`), which
/// `utf8_decode` takes.
#[test]
fn base64_encode_then_utf8_decode_validates_and_renders() {
    let files = design_with(
        &[GenAsset {
            kind: 1,
            data: 0,
            steps: vec![1, 2],
        }],
        None,
    );
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:#?}", v.messages);
    renders(v.design.as_ref().unwrap()).unwrap();
}

/// A step after the template reads each node's rendered text: validation
/// renders it for every target node, as rendering does.
#[test]
fn steps_after_a_template_are_checked_per_node() {
    // `host=n0000x` is not base64: every node fails at step 2.
    let files = design_with(
        &[GenAsset {
            kind: 0,
            data: 4,
            steps: vec![2, 4, 0],
        }],
        None,
    );
    let v = slipway::validate(&files);
    let sw393: Vec<String> = v
        .messages
        .iter()
        .filter(|m| m.code == "SW393")
        .map(|m| m.message.clone())
        .collect();
    assert_eq!(sw393.len(), 1, "{:#?}", v.messages);
    assert!(
        sw393[0].contains("for node n00001 (and 2 more nodes): step 2 base64_decode"),
        "{}",
        sw393[0]
    );
    assert!(renders(v.design.as_ref().unwrap()).is_err());
}
