//! Fuzzing that runs on stable Rust in `cargo test`: bounded proptest
//! harnesses over the same targets as the `fuzz/` cargo-fuzz crate (the YAML
//! parser on both paths, the design pipeline, the node-filter readers,
//! template rendering) and the JSON body readers of the real server. Each
//! property is "no panic, no 5xx, every error located"; a crash found by
//! either becomes a regression case here or in the unit tests.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};
use slipway::design::{self, yaml, DesignFile};
use slipway::render::context::{node_context, ActionValues, TemplateContext};
use slipway::render::template::{RenderContext, Templates};

fn file(text: &str) -> DesignFile {
    DesignFile {
        path: "fuzz.yaml".into(),
        bytes: text.as_bytes().to_vec(),
    }
}

/// Lines of YAML mixing what designs use with what hostile input uses
/// (anchors, aliases, merge keys, flow collections, deep indentation).
fn yaml_text() -> impl Strategy<Value = String> {
    let line = prop::sample::select(vec![
        "a:",
        "a: 1",
        "b: &x {k: v}",
        "c: *x",
        "<<: *x",
        "<<: [*x, {m: 1}]",
        "<<: 1",
        "- <<: *x",
        "- x",
        "- - y",
        "-",
        "d: [1, [2, [3]]]",
        "e: |",
        "  text",
        "f: 'q''s'",
        "g: \"\\u00e9\"",
        "h: 0755",
        "i: yes",
        "---",
        "...",
        "# c",
        "",
        "j: !!str 1",
        "k: !!merge x",
        "? complex",
        ": v",
        "l: {a: *x, b: *x}",
        "&y m: 1",
        "*y : 2",
        "\t",
        "n: - x",
    ]);
    prop::collection::vec((0usize..12, line), 0..40).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(i, l)| format!("{}{l}\n", " ".repeat(i)))
            .collect()
    })
}

/// Nesting `depth` levels of block collections and optional flow levels, so
/// that both parser paths run into (or stay under) the depth limit.
fn nesting() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!["m", "s", "c"]), 190..215),
        0usize..4,
        prop::sample::select(vec!["x", "a: 1", "a: {}", "[]", "*missing"]),
    )
        .prop_map(|(kinds, flow, leaf)| {
            let mut out = String::new();
            let mut indent = 0;
            let mut prefix = String::new();
            for (i, k) in kinds.iter().enumerate() {
                match *k {
                    "m" => {
                        out.push_str(&format!("{}{prefix}k{i}:\n", " ".repeat(indent)));
                        indent += prefix.len() + 1;
                        prefix.clear();
                    }
                    "s" => {
                        out.push_str(&format!("{}{prefix}-\n", " ".repeat(indent)));
                        indent += prefix.len() + 2;
                        prefix.clear();
                    }
                    _ => prefix.push_str("- "),
                }
            }
            let leaf = format!("{}{leaf}{}", "[".repeat(flow), "]".repeat(flow));
            out.push_str(&format!("{}{prefix}{leaf}\n", " ".repeat(indent)));
            out
        })
}

/// The example site's text, split into lines, for mutation.
fn site_lines() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/designs/ok/gen-site-3-nodes.yaml"
        );
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// A mutation of one line of a valid site.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    /// Replace the value after `: ` with a token.
    Value(usize, &'static str),
    Indent(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let n = site_lines().len();
    let token = prop::sample::select(vec![
        "~",
        "''",
        "[]",
        "{}",
        "-1",
        "0x10",
        "1e400",
        "yes",
        "*a",
        "&a x",
        "<<",
        "\"\\n\"",
        "/",
        "../x",
        "4755",
        "8.8.8.8 8.8.4.4",
        "{{ node.x }}",
        "union",
        "UNION",
        "!!binary x",
        "99999999999999999999",
    ]);
    let edit = prop_oneof![
        (0..n).prop_map(Edit::Delete),
        (0..n).prop_map(Edit::Duplicate),
        ((0..n), token).prop_map(|(i, t)| Edit::Value(i, t)),
        ((0..n), 0usize..4).prop_map(|(i, k)| Edit::Indent(i, k)),
    ];
    prop::collection::vec(edit, 1..6)
}

fn apply(edits: &[Edit]) -> String {
    let mut lines = site_lines().to_vec();
    for e in edits {
        match *e {
            Edit::Delete(i) if i < lines.len() => {
                lines.remove(i);
            }
            Edit::Duplicate(i) if i < lines.len() => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            Edit::Value(i, t) if i < lines.len() => {
                if let Some(at) = lines[i].find(": ") {
                    lines[i] = format!("{}: {t}", &lines[i][..at]);
                }
            }
            Edit::Indent(i, k) if i < lines.len() => {
                lines[i] = format!("{}{}", " ".repeat(k), lines[i]);
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// Every error carries a file and a line.
fn located(v: &design::Validation) -> Result<(), TestCaseError> {
    for m in v.messages.iter().filter(|m| m.error) {
        let s = m.source.as_ref();
        prop_assert!(s.is_some(), "{m:?}");
    }
    Ok(())
}

/// Templates: Jinja-ish fragments over the names a boot-action template sees.
fn template() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "{{ ",
        " }}",
        "{% ",
        " %}",
        "{# ",
        " #}",
        "node",
        ".",
        "hostname",
        "labels",
        "tags",
        "network",
        "interfaces",
        "action",
        "action_key",
        "[0]",
        "['x']",
        " | ",
        "join(',')",
        "upper",
        "default('d')",
        "tojson",
        "urlencode",
        "if ",
        "for x in ",
        " in ",
        "endif",
        "endfor",
        "else",
        "x",
        " ~ ",
        "'s'",
        "1",
        "(",
        ")",
        "range(100000)",
        "loop.index",
        "set y = ",
        "macro m()",
        "endmacro",
        "-",
        "\n",
        "text ",
        "}}",
        "{{",
    ]);
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

/// The compiled example site, for template contexts.
fn example() -> &'static design::Design {
    static DESIGN: OnceLock<design::Design> = OnceLock::new();
    DESIGN.get_or_init(|| {
        let files = slipway::source::read_dir_files(&common::example_site()).unwrap();
        let v = slipway::validate(&files);
        assert!(v.is_valid(), "{:?}", v.messages);
        v.design.unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Both parser paths: no panic, and when the fast path reads a text (or
    /// refuses it for depth) the general parser agrees.
    #[test]
    fn yaml_parsers_never_panic_and_agree(text in yaml_text()) {
        let general = yaml::parse_general(&text, 0);
        let either = yaml::parse_stream(&text);
        if let (Ok(a), Ok(b)) = (&either, &general) {
            prop_assert_eq!(a.len(), b.len());
        }
        if let Err(e) = &either {
            if e.kind == yaml::ErrorKind::TooDeep {
                prop_assert_eq!(Some(e), general.as_ref().err());
            }
        }
    }

    #[test]
    fn both_parsers_give_the_same_verdict_at_the_depth_limit(text in nesting()) {
        let general = yaml::parse_general(&text, 0);
        let either = yaml::parse_stream(&text);
        match (&either, &general) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.len(), b.len()),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "paths disagree: {:?} vs {:?}", either.err(), general.err()),
        }
    }

    #[test]
    fn the_design_pipeline_never_panics_on_mutated_sites(e in edits()) {
        let text = apply(&e);
        let v = slipway::validate(&[file(&text)]);
        located(&v)?;
    }

    #[test]
    fn the_design_pipeline_never_panics_on_yaml_text(text in yaml_text()) {
        let v = slipway::validate(&[file(&format!("schema: drydock/Rack/v1\nmetadata: {{name: r}}\ndata:\n  labels:\n{text}"))]);
        located(&v)?;
    }

    /// BootAction node filters of any JSON shape: typed, checked, selected.
    #[test]
    fn node_filters_of_any_shape_are_read_or_refused_with_a_location(f in filter_json()) {
        let doc = json!({
            "schema": "drydock/BootAction/v1",
            "metadata": {"name": "ba"},
            "data": {"assets": [{"type": "file", "path": "/etc/x", "data": "x", "data_pipeline": ["utf8_decode"]}], "node_filter": f},
        });
        let mut text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/designs/ok/gen-site-3-nodes.yaml")).unwrap();
        text.push_str(&format!("\n---\n{doc}\n"));
        let v = slipway::validate(&[file(&text)]);
        located(&v)?;
    }

    /// Any template compiles or is refused, and renders or fails, for a real
    /// node's context: no panic, no runaway (fuel-limited).
    #[test]
    fn templates_compile_and_render_or_fail_cleanly(src in template()) {
        let d = example();
        let node = &d.effective_nodes()[0];
        let ctx = RenderContext::new(&TemplateContext {
            node: node_context(d, node),
            action: ActionValues::placeholder(),
        });
        let mut t = Templates::new();
        if t.add("t", &src).is_ok() {
            let _ = t.render("t", &ctx);
        }
    }
}

/// Node-filter-like JSON: the right keys with values of any type.
fn filter_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        prop::sample::select(vec![
            "union",
            "intersection",
            "Union",
            "",
            "n00001",
            "rack01",
            "control"
        ])
        .prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "filter_set_type",
                    "filter_set",
                    "filter_type",
                    "node_names",
                    "node_tags",
                    "node_labels",
                    "rack_names",
                    "rack_labels",
                    "role",
                    "x",
                ])
                .prop_map(str::to_string),
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        value.clone(),
        (
            prop::sample::select(vec!["union", "intersection", "x"]),
            prop::collection::vec(value, 0..3)
        )
            .prop_map(|(t, set)| json!({"filter_set_type": t, "filter_set": set})),
    ]
}

/// JSON bodies for the server's readers: the keys they read, any values,
/// and text that is not JSON at all.
fn body() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "status",
        "details",
        "message",
        "error",
        "href",
        "design_ref",
        "node_filter",
        "action",
        "node_names",
        "filter_set_type",
        "filter_set",
        "filter_type",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "Success",
            "Failure",
            "union",
            "main",
            "HEAD",
            "",
            "n00001",
            "deploy_nodes",
            "\u{0}"
        ])
        .prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 20, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(keys.clone().prop_map(str::to_string), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["", "{", "[]", "null", "{\"details\": [", "\u{feff}{}", "{}{}", "{\"a\":1e999999}"]).prop_map(str::to_string),
        1 => "\\PC{0,40}",
    ]
}

/// The JSON body readers through the real server: signal reports, node
/// filters, design validation and tasks answer every body with 2xx or 4xx, and
/// every 4xx is a Drydock Status.
#[test]
fn json_bodies_of_any_shape_get_a_status_never_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let g = common::GitRepo::new();
    g.add_example_site();
    let commit = g.commit("site");
    let dir = tempfile::tempdir().unwrap();
    let s = rt.block_on(async {
        let s = common::Server::start(
            g.path(),
            &dir.path().join("s.db"),
            std::time::Duration::from_secs(3600),
        )
        .await;
        s.wait_status(&commit, "applied").await;
        s
    });
    let node = example().nodes[0].name.clone();
    let (code, id) = rt.block_on(s.get(&format!("/api/v1.0/nodes/{node}/identity")));
    assert_eq!(code, 200, "{id}");
    let key = id["identity_key"].as_str().unwrap().to_string();
    let action = id["actions"][0]["action_id"].as_str().unwrap().to_string();
    let routes = [
        format!("/api/v1.0/bootactions/{action}"),
        "/api/v1.0/nodefilter".to_string(),
        "/api/v1.0/validatedesign".to_string(),
        "/api/v1.0/tasks".to_string(),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let client = common::client();
    let result = runner.run(&body(), |b| {
        for route in &routes {
            let (code, v) = rt.block_on(async {
                let r = client
                    .post(s.url(route))
                    .header("content-type", "application/json")
                    .header("X-Bootaction-Key", &key)
                    .body(b.clone())
                    .send()
                    .await
                    .unwrap();
                let code = r.status().as_u16();
                (code, r.json::<Value>().await.unwrap_or(Value::Null))
            });
            prop_assert!(code < 500, "{route} {b:?}: {code} {v}");
            if code >= 400 {
                prop_assert_eq!(&v["kind"], "Status", "{} {:?}: {} {}", route, b, code, v);
                prop_assert_eq!(&v["code"], code, "{} {:?}", route, b);
            }
        }
        Ok(())
    });
    rt.block_on(s.stop());
    result.unwrap();
}
