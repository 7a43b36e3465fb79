//! Validation reuses the parse, schema and typing results of unchanged
//! documents (`design::validate_cached`) and gives the same answer as a
//! validation from scratch.

mod common;

use slipway::design::{self, DesignFile, ValidationCache};

fn example_files(edit: impl Fn(&str, String) -> String) -> Vec<DesignFile> {
    let mut files = slipway::source::read_dir_files(&common::example_site()).unwrap();
    for f in &mut files {
        let text = String::from_utf8(f.bytes.clone()).unwrap();
        f.bytes = edit(&f.path, text).into_bytes();
    }
    files
}

/// Messages as comparable JSON (code, level, text, file, line).
fn messages(v: &design::Validation) -> Vec<serde_json::Value> {
    v.messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect()
}

/// n00008 addresses a network that does not exist: a rule error reported at a
/// line of its (cached) document.
fn broken_n00008(path: &str, text: String) -> String {
    if !path.ends_with("rack-02.yaml") {
        return text;
    }
    let at = text.find("name: n00008").unwrap();
    let (head, tail) = text.split_at(at);
    format!(
        "{head}{}",
        tail.replacen("network: storage", "network: nosuchnet", 1)
    )
}

#[test]
fn cached_validation_reparses_only_changed_documents_and_matches_a_fresh_one() {
    let v1 = example_files(broken_n00008);
    let mut cache = ValidationCache::default();
    let first = slipway::validate_cached(&v1, &mut cache);
    let (hits, parsed) = cache.last_counts();
    assert_eq!(hits, 0);
    assert!(parsed > 10, "{parsed}");
    assert_eq!(messages(&first), messages(&slipway::validate(&v1)));

    let mut again = slipway::validate_cached(&v1, &mut cache);
    assert_eq!(
        cache.last_counts(),
        (parsed, 0),
        "nothing changed: all reused"
    );
    assert_eq!(messages(&again), messages(&first));

    // n00005 gains a line: its document is parsed again, and every document
    // after it in the file is reused one line further down.
    let v2 = example_files(|path, text| {
        let text = broken_n00008(path, text);
        if path.ends_with("rack-02.yaml") {
            text.replacen("      - compute\n", "      - compute\n      - extra\n", 1)
        } else {
            text
        }
    });
    let cached = slipway::validate_cached(&v2, &mut cache);
    assert_eq!(cache.last_counts(), (parsed - 1, 1));
    let fresh = slipway::validate(&v2);
    assert_eq!(messages(&cached), messages(&fresh));

    // The rule error about n00008 (a reused document) moved with it.
    let line_of = |v: &design::Validation| {
        v.messages
            .iter()
            .find(|m| m.error && m.message.contains("nosuchnet"))
            .and_then(|m| m.source.as_ref())
            .map(|s| s.line)
            .expect("an error about the unknown network, with a line")
    };
    assert_eq!(line_of(&cached), line_of(&first) + 1);
    let (a, b) = (cached.design.unwrap(), fresh.design.unwrap());
    // Compiled nodes: equal to a fresh compilation; the unchanged ones are
    // the very ones compiled before (shared), the changed one is new.
    let before = again.design.take().unwrap();
    assert_eq!(a.effective_nodes().len(), b.effective_nodes().len());
    for ((x, y), z) in a
        .effective_nodes()
        .iter()
        .zip(b.effective_nodes())
        .zip(before.effective_nodes())
    {
        assert_eq!(**x, **y, "{}", x.name);
        assert_eq!(
            std::sync::Arc::ptr_eq(x, z),
            x.name != "n00005",
            "{}: only the changed node is compiled again",
            x.name
        );
    }
    let docs = |d: &design::Design| {
        d.documents
            .iter()
            .map(|x| (x.name.clone(), x.file.clone(), x.line, x.hash.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(docs(&a), docs(&b));
    for (x, y) in a.documents.iter().zip(&b.documents) {
        assert_eq!(x.line_of("/metadata"), y.line_of("/metadata"), "{}", x.name);
    }
}
