//! slipway's YAML reading against PyYAML itself (what Drydock reads designs
//! with): generated documents full of anchors, aliases and merge keys (`<<`,
//! single and list forms, overridden, nested, repeated, of a scalar) must give
//! the same JSON as `yaml.safe_load`, or an error in both. Needs python3 with
//! PyYAML (`scripts/test.sh` installs it); fails loudly without.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use slipway::design::yaml;

/// One generated entry of a mapping.
#[derive(Debug, Clone)]
enum Entry {
    /// `key: scalar`
    Scalar(usize, &'static str),
    /// `<<: *aN`
    Merge(usize),
    /// `<<: [*aN, *aM, ...]`
    MergeList(Vec<usize>),
    /// `<<: {key: scalar}`
    MergeInline(usize, &'static str),
    /// `<<: *sN`, an alias of a scalar: an error in PyYAML and here.
    MergeScalar,
    /// `key: *aN`
    Alias(usize, usize),
}

const KEYS: [&str; 5] = ["k1", "k2", "k3", "name", "zone"];
const SCALARS: [&str; 10] = [
    "v", "1", "0755", "yes", "off", "~", "'quoted'", "\"d q\"", "-7", "a b",
];

fn entry(anchors: usize) -> impl Strategy<Value = Entry> {
    let key = 0..KEYS.len();
    let scalar = prop::sample::select(SCALARS.to_vec());
    let anchor = 0..anchors.max(1);
    prop_oneof![
        3 => (key.clone(), scalar.clone()).prop_map(|(k, s)| Entry::Scalar(k, s)),
        2 => anchor.clone().prop_map(Entry::Merge),
        2 => prop::collection::vec(anchor.clone(), 1..4).prop_map(Entry::MergeList),
        1 => (key.clone(), scalar).prop_map(|(k, s)| Entry::MergeInline(k, s)),
        1 => (key, anchor).prop_map(|(k, a)| Entry::Alias(k, a)),
        1 => Just(Entry::MergeScalar),
    ]
}

fn render(entries: &[Entry], indent: usize, anchors: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for e in entries {
        match e {
            Entry::Scalar(k, s) => out.push_str(&format!("{pad}{}: {s}\n", KEYS[*k])),
            Entry::Merge(a) if *a < anchors => out.push_str(&format!("{pad}<<: *a{a}\n")),
            Entry::MergeList(list) => {
                let refs: Vec<String> = list
                    .iter()
                    .filter(|a| **a < anchors)
                    .map(|a| format!("*a{a}"))
                    .collect();
                if !refs.is_empty() {
                    out.push_str(&format!("{pad}<<: [{}]\n", refs.join(", ")));
                }
            }
            Entry::MergeInline(k, s) => out.push_str(&format!("{pad}<<: {{{}: {s}}}\n", KEYS[*k])),
            Entry::MergeScalar => out.push_str(&format!("{pad}<<: *s\n")),
            Entry::Alias(k, a) if *a < anchors => {
                out.push_str(&format!("{pad}{}: *a{a}\n", KEYS[*k]))
            }
            _ => {}
        }
    }
}

/// A document: a scalar anchor `s`, then anchored mappings `a0..` (each may
/// merge the ones before it), then mappings that merge and override them.
fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::collection::vec(entry(4), 1..5), 1..5),
        prop::collection::vec(prop::collection::vec(entry(4), 1..6), 1..4),
        any::<bool>(),
    )
        .prop_map(|(anchored, targets, nest)| {
            let mut out = String::from("s: &s text\n");
            for (i, entries) in anchored.iter().enumerate() {
                out.push_str(&format!("a{i}: &a{i}\n"));
                // An anchored mapping may only merge the anchors before it.
                let mut body = String::new();
                render(entries, 2, i, &mut body);
                if body.is_empty() {
                    body.push_str("  k1: v\n");
                }
                out.push_str(&body);
            }
            for (i, entries) in targets.iter().enumerate() {
                let indent = if nest {
                    out.push_str(&format!("t{i}:\n  inner:\n"));
                    4
                } else {
                    out.push_str(&format!("t{i}:\n"));
                    2
                };
                let mut body = String::new();
                render(entries, indent, anchored.len(), &mut body);
                if body.is_empty() {
                    body.push_str(&format!("{}k1: v\n", " ".repeat(indent)));
                }
                out.push_str(&body);
            }
            out
        })
}

/// What PyYAML makes of each text: `Ok(json)`, `Err(message)`, or `None`
/// when PyYAML itself crashed (not a verdict).
fn pyyaml(texts: &[String]) -> Vec<Option<Result<Value, String>>> {
    const SCRIPT: &str = r#"
import json, sys, yaml
out = []
for t in json.load(sys.stdin):
    try:
        out.append({"ok": yaml.safe_load(t)})
    except yaml.YAMLError as e:
        out.append({"err": str(e)})
    except Exception as e:
        # PyYAML itself failing (e.g. float('.') for `._`) is no verdict to compare.
        out.append({"crash": repr(e)})
json.dump(out, sys.stdout)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(texts).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 with PyYAML must be installed (scripts/test.sh installs python3-yaml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    results
        .into_iter()
        .map(|r| match (r.get("ok"), r.get("err")) {
            (Some(v), _) => Some(Ok(v.clone())),
            (None, Some(e)) => Some(Err(e.as_str().unwrap_or_default().to_string())),
            _ => None,
        })
        .collect()
}

fn slipway_json(text: &str) -> Result<Value, String> {
    let docs = yaml::parse_stream(text).map_err(|e| format!("{e:?}"))?;
    let mut problems = Vec::new();
    Ok(docs
        .into_iter()
        .next()
        .map(|d| d.root.into_json(&mut problems))
        .unwrap_or(Value::Null))
}

#[test]
fn anchors_aliases_and_merge_keys_read_as_pyyaml_reads_them() {
    let mut runner = TestRunner::deterministic();
    let strategy = document();
    let texts: Vec<String> = (0..400)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let theirs = pyyaml(&texts);
    let (mut same, mut errors) = (0, 0);
    let mut failures = Vec::new();
    for (text, py) in texts.iter().zip(theirs) {
        let ours = slipway_json(text);
        let py = py.expect("PyYAML reads every generated document");
        match (&ours, &py) {
            (Ok(a), Ok(b)) if a == b => same += 1,
            (Err(_), Err(_)) => errors += 1,
            _ => failures.push(format!("{text}\n  slipway: {ours:?}\n  PyYAML:  {py:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        texts.len(),
        failures[..failures.len().min(3)].join("\n\n")
    );
    // Both outcomes are exercised, not only one.
    assert!(
        same > 100 && errors > 20,
        "{same} equal, {errors} errors in both"
    );
}

/// Plain scalars that look like numbers, booleans or null: YAML 1.1's
/// implicit resolution (ints in bases 2, 8, 10, 16 and 60, underscores,
/// floats) must match PyYAML's. Timestamps and the special floats are left
/// out (JSON has no date, and no NaN to compare).
#[test]
fn plain_scalars_resolve_as_pyyaml_resolves_them() {
    let atom = prop::sample::select(vec![
        "0", "1", "7", "9", "_", ":", ".", "e", "E", "+", "-", "x", "b", "o", "a", "f", "5", "59",
        "60", "0x", "0b", "0o", "1_0", "y", "n", "Y", "true", "on", "~", "null",
    ]);
    let scalar = prop::collection::vec(atom, 1..6).prop_map(|v| v.concat());
    let mut runner = TestRunner::deterministic();
    let mut texts = Vec::new();
    while texts.len() < 1500 {
        let s = scalar.new_tree(&mut runner).unwrap().current();
        let special =
            s.contains("inf") || s.contains("nan") || s.contains("Inf") || s.contains("NaN");
        // Not plain scalars (an indicator first, or `: `), or a timestamp: left out.
        let indicator = s.starts_with(['-', ':', '?', '_']) && s.len() == 1
            || s.starts_with("- ")
            || s.ends_with(':')
            || s.starts_with(": ");
        if !special && !indicator {
            texts.push(format!("v: {s}\n"));
        }
    }
    let theirs = pyyaml(&texts);
    let mut failures = Vec::new();
    for (text, py) in texts.iter().zip(theirs) {
        let Some(py) = py else { continue };
        let ours = slipway_json(text);
        let agree = match (&ours, &py) {
            (Ok(a), Ok(b)) => match (&a["v"], &b["v"]) {
                (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                (x, y) => x == y,
            },
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            failures.push(format!("{text:?}: slipway {ours:?}, PyYAML {py:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        texts.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}
