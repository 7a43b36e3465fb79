//! Fixture designs: every file or directory under tests/data/designs/{ok,err}.
//!
//! A fixture's name starts with the codes it must produce, joined by `+`
//! (`SW321+SW322-range-outside-cidr.yaml`); a name without codes expects none.
//! - `err/` fixtures must be invalid, and the set of error codes produced must
//!   equal the set named (a fixture proves its rule and nothing else fires).
//! - `ok/` fixtures must be valid, and must produce every code named (warnings).
//!
//! Beside each fixture, `<name>.messages` holds every message it produces, one
//! per line as `slipway validate` prints it (file:line, level, code, document,
//! text), so a rule that fires on the wrong line or document fails too. Adding a
//! case is adding its design and its `.messages`; `SLIPWAY_BLESS=1 cargo test
//! --test fixtures` writes the `.messages` of every fixture from what the code
//! produces (review the diff before committing it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use slipway::design::{self, DesignFile};

fn fixture_files(path: &Path) -> Vec<DesignFile> {
    if path.is_dir() {
        let mut out = Vec::new();
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                    out.push(DesignFile {
                        path: p.strip_prefix(path).unwrap().to_string_lossy().into_owned(),
                        bytes: std::fs::read(&p).unwrap(),
                    });
                }
            }
        }
        out
    } else {
        vec![DesignFile {
            path: path.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(path).unwrap(),
        }]
    }
}

fn expected_codes(path: &Path) -> BTreeSet<String> {
    let name = path.file_stem().unwrap().to_string_lossy();
    let head = name.split('-').next().unwrap_or("");
    head.split('+')
        .filter(|c| {
            c.len() == 5 && c.starts_with("SW") && c[2..].chars().all(|d| d.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/designs")
        .join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir() || matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    v.sort();
    v
}

/// Where a fixture's message snapshot lives: `SW301-x.yaml` → `SW301-x.messages`.
fn snapshot_path(path: &Path) -> PathBuf {
    path.with_extension("messages")
}

/// Every message of a validation, one line each, as `slipway validate` prints them.
fn message_lines(v: &design::Validation) -> String {
    v.messages
        .iter()
        .map(|m| format!("{}\n", m.to_text_line()))
        .collect()
}

/// Compares a fixture's messages with its snapshot (or writes the snapshot
/// when `SLIPWAY_BLESS` is set); a difference is a failure line.
fn check_snapshot(path: &Path, v: &design::Validation, failures: &mut Vec<String>) {
    let snap = snapshot_path(path);
    let got = message_lines(v);
    if std::env::var_os("SLIPWAY_BLESS").is_some() {
        std::fs::write(&snap, &got).unwrap();
        return;
    }
    match std::fs::read_to_string(&snap) {
        Ok(want) if want == got => {}
        Ok(want) => failures.push(format!(
            "{}: messages differ from {}\n--- expected\n{want}--- got\n{got}",
            path.display(),
            snap.display()
        )),
        Err(e) => failures.push(format!(
            "{}: no snapshot {} ({e}); it would hold:\n{got}(SLIPWAY_BLESS=1 writes it)",
            path.display(),
            snap.display()
        )),
    }
}

fn report(path: &Path, v: &design::Validation) -> String {
    let lines: Vec<String> = v.messages.iter().map(|m| m.to_text_line()).collect();
    format!("{}:\n  {}", path.display(), lines.join("\n  "))
}

#[test]
fn every_ok_fixture_is_valid_gives_its_named_warnings_and_its_snapshot_messages() {
    let mut failures = Vec::new();
    for path in fixtures("ok") {
        let v = slipway::validate(&fixture_files(&path));
        let got: BTreeSet<String> = v.messages.iter().map(|m| m.code.clone()).collect();
        let missing: Vec<_> = expected_codes(&path).difference(&got).cloned().collect();
        if !v.is_valid() || !missing.is_empty() {
            failures.push(format!("missing {missing:?}; {}", report(&path, &v)));
        }
        check_snapshot(&path, &v, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_err_fixture_fails_with_exactly_its_named_codes_and_its_snapshot_messages() {
    let mut failures = Vec::new();
    let all = fixtures("err");
    assert!(!all.is_empty());
    for path in all {
        let expected = expected_codes(&path);
        assert!(
            !expected.is_empty(),
            "{}: err fixture names no code",
            path.display()
        );
        let v = slipway::validate(&fixture_files(&path));
        let got: BTreeSet<String> = v
            .messages
            .iter()
            .filter(|m| m.error)
            .map(|m| m.code.clone())
            .collect();
        if v.is_valid() || got != expected {
            failures.push(format!(
                "expected {expected:?}, got {got:?}; {}",
                report(&path, &v)
            ));
        }
        check_snapshot(&path, &v, &mut failures);
        for m in v.messages.iter().filter(|m| m.error) {
            if m.source.is_none() || m.documents.is_empty() && !m.code.starts_with("SW1") {
                failures.push(format!(
                    "{}: message without source or document: {m:?}",
                    path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_message_snapshot_belongs_to_a_fixture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/designs");
    let mut orphans = Vec::new();
    for sub in ["ok", "err"] {
        let cases: BTreeSet<PathBuf> = fixtures(sub).iter().map(|p| snapshot_path(p)).collect();
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some("messages") && !cases.contains(&p) {
                orphans.push(p.display().to_string());
            }
        }
    }
    assert!(
        orphans.is_empty(),
        "snapshots without a fixture: {orphans:?}"
    );
}
