//! slipway against every Drydock sample (`../shared/reference/drydock/yaml_samples`).
//!
//! `tests/data/drydock-samples.tsv` holds, per sample, the mode Drydock judged it
//! in (`full` pipeline, or `schema` for the legacy samples its schema test reads),
//! Drydock's verdict, and the slipway codes that must appear. Each sample Drydock
//! accepts must be accepted; each one it rejects must be rejected, by the named
//! rules. docs/compat.md has the same table with slipway's codes.
//!
//! `cargo test --test compat -- --ignored --nocapture print_compat_table` prints the
//! table for docs/compat.md.

use std::collections::BTreeSet;
use std::path::PathBuf;

use slipway::design::{self, parse, DesignFile};

struct Row {
    sample: String,
    mode: String,
    drydock_valid: bool,
    codes: Vec<String>,
    note: String,
}

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/drydock/yaml_samples")
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/drydock-samples.tsv"
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                sample: f[0].to_string(),
                mode: f[1].to_string(),
                drydock_valid: f[2] == "valid",
                codes: f
                    .get(3)
                    .unwrap_or(&"")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                note: f.get(4).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

/// slipway's verdict (valid?) and the set of error codes, in the row's mode.
fn judge(row: &Row) -> (bool, BTreeSet<String>, usize) {
    let path = samples_dir().join(&row.sample);
    let files = vec![DesignFile {
        path: row.sample.clone(),
        bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    }];
    let messages = if row.mode == "schema" {
        let parsed = parse::parse_files(&files);
        let (_, mut typed) = design::build(parsed.documents);
        typed.extend(parsed.messages);
        typed
    } else {
        slipway::validate(&files).messages
    };
    let errors: BTreeSet<String> = messages
        .iter()
        .filter(|m| m.error)
        .map(|m| m.code.clone())
        .collect();
    let count = messages.iter().filter(|m| m.error).count();
    (errors.is_empty(), errors, count)
}

#[test]
fn every_drydock_sample_gets_drydocks_verdict_by_the_corresponding_rule() {
    let rows = rows();
    assert!(rows.len() >= 60, "the table covers every sample");
    let mut listed: Vec<String> = rows.iter().map(|r| r.sample.clone()).collect();
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(
        listed, present,
        "tests/data/drydock-samples.tsv lists every sample exactly once"
    );

    let mut failures = Vec::new();
    for row in &rows {
        let (valid, codes, _) = judge(row);
        if valid != row.drydock_valid {
            failures.push(format!(
                "{}: Drydock says {}, slipway says {} {:?}",
                row.sample,
                if row.drydock_valid {
                    "valid"
                } else {
                    "invalid"
                },
                if valid { "valid" } else { "invalid" },
                codes
            ));
        }
        for c in &row.codes {
            if !codes.contains(c) {
                failures.push(format!("{}: expected {c} among {:?}", row.sample, codes));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The sample table of docs/compat.md, as the code judges the samples today.
fn compat_table() -> String {
    let mut out = String::from(
        "| sample | mode | Drydock | slipway | slipway error codes | Drydock reports |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    let (mut agree, mut total) = (0, 0);
    for row in rows() {
        let (valid, codes, count) = judge(&row);
        total += 1;
        if valid == row.drydock_valid {
            agree += 1;
        }
        let codes: Vec<String> = codes.into_iter().collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            row.sample,
            row.mode,
            if row.drydock_valid {
                "valid"
            } else {
                "invalid"
            },
            if valid {
                "valid".to_string()
            } else {
                format!("invalid ({count})")
            },
            codes.join(" "),
            row.note
        ));
    }
    out.push_str(&format!(
        "\n{agree} of {total} samples get Drydock's verdict.\n"
    ));
    out
}

#[test]
fn the_compat_docs_table_is_what_the_samples_give_today() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/compat.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let table = compat_table();
    assert!(
        doc.contains(&table),
        "docs/compat.md's sample table is stale; replace it with:\n{table}"
    );
}

#[test]
fn treasuremap_documents_are_processed_without_a_crash() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/treasuremap");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                files.push(DesignFile {
                    path: p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    bytes: std::fs::read(&p).unwrap(),
                });
            }
        }
    }
    assert!(files.len() > 10);
    // Each site (global + site layer) as one design, and every file alone.
    for site in ["site/airsloop", "site/seaworthy"] {
        let design: Vec<DesignFile> = files
            .iter()
            .filter(|f| f.path.starts_with("global/") || f.path.starts_with(site))
            .cloned()
            .collect();
        let v = slipway::validate(&design);
        assert!(v.design.is_some());
        for m in &v.messages {
            assert!(m.source.is_some(), "{m:?}");
        }
        // The only errors are in documents whose values Deckhand would substitute
        // (slipway does not resolve substitutions; docs/compat.md).
        let substituted: Vec<_> = v
            .messages
            .iter()
            .filter(|m| m.code == "SW111")
            .flat_map(|m| m.documents.clone())
            .collect();
        for m in v.messages.iter().filter(|m| m.error) {
            assert!(
                m.documents.iter().any(|d| substituted.contains(d)),
                "{site}: error outside a substituted document: {}",
                m.to_text_line()
            );
        }
    }
    for f in &files {
        let _ = slipway::validate(std::slice::from_ref(f));
    }
}
