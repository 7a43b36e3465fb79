//! Every code the source can emit has a section in docs/validation.md and a fixture.

use std::collections::BTreeSet;
use std::path::Path;

fn codes_in(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    for i in 0..b.len().saturating_sub(6) {
        if b[i] == b'"'
            && &b[i + 1..i + 3] == b"SW"
            && b[i + 3..i + 6].iter().all(u8::is_ascii_digit)
            && b[i + 6] == b'"'
        {
            out.insert(String::from_utf8_lossy(&b[i + 1..i + 6]).into_owned());
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// Codes that no input can be built for, with the reason.
const NO_FIXTURE: &[(&str, &str)] = &[
    (
        "SW100",
        "about a revision with no files, which a fixture file cannot be; tests/serve.rs covers it",
    ),
    (
        "SW113",
        "needs a file over the 64 MiB default cap; tests/hostile_design.rs covers it with a small cap",
    ),
    (
        "SW114",
        "needs 256 MiB of files at the default cap; tests/hostile_design.rs covers it with a small cap",
    ),
    (
        "SW202",
        "defensive: the schemas admit only values the model can hold",
    ),
    (
        "SW300",
        "info accompanying any parse/schema error; seen in every such err fixture's output",
    ),
    (
        "SW396",
        "needs a deployment's real ids and keys, which only serve's reconcile pass has; tests/hardening_runtime.rs covers it",
    ),
    (
        "SW401",
        "about a revision against the applied state, which a fixture file has none of; tests/hardening_runtime.rs covers it",
    ),
];

#[test]
fn every_emitted_code_has_a_doc_section_and_a_fixture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    rust_files(&root.join("src"), &mut sources);
    let emitted: BTreeSet<String> = sources.iter().flat_map(|s| codes_in(s)).collect();
    assert!(emitted.len() > 80, "found {} codes", emitted.len());

    let doc = std::fs::read_to_string(root.join("docs/validation.md")).unwrap();
    let mut fixture_names = String::new();
    for sub in ["ok", "err"] {
        for e in std::fs::read_dir(root.join("tests/data/designs").join(sub)).unwrap() {
            fixture_names.push_str(&e.unwrap().file_name().to_string_lossy());
            fixture_names.push('\n');
        }
    }
    let mut missing = Vec::new();
    for code in &emitted {
        if !doc.contains(&format!("## {code} ")) {
            missing.push(format!(
                "{code}: no `## {code} —` section in docs/validation.md"
            ));
        }
        let exempt = NO_FIXTURE.iter().any(|(c, _)| c == code);
        if !exempt && !fixture_names.contains(code.as_str()) {
            missing.push(format!(
                "{code}: no fixture named after it in tests/data/designs/{{ok,err}}/"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
