//! Fixture designs: every file or directory under tests/data/designs/{ok,err}.
//!
//! A fixture's name starts with the codes it must produce, joined by `+`
//! (`SW321+SW322-range-outside-cidr.yaml`); a name without codes expects none.
//! - `err/` fixtures must be invalid, and the set of error codes produced must
//!   equal the set named (a fixture proves its rule and nothing else fires).
//! - `ok/` fixtures must be valid, and must produce every code named (warnings).
//!
//! Adding a case is adding a file.

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
        .filter(|c| c.len() == 5 && c.starts_with("SW") && c[2..].chars().all(|d| d.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

fn fixtures(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/designs").join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    v.sort();
    v
}

fn report(path: &Path, v: &design::Validation) -> String {
    let lines: Vec<String> = v.messages.iter().map(|m| m.to_text_line()).collect();
    format!("{}:\n  {}", path.display(), lines.join("\n  "))
}

#[test]
fn every_ok_fixture_is_valid_and_gives_its_named_warnings() {
    let mut failures = Vec::new();
    for path in fixtures("ok") {
        let v = design::validate(&fixture_files(&path));
        let got: BTreeSet<String> = v.messages.iter().map(|m| m.code.clone()).collect();
        let missing: Vec<_> = expected_codes(&path).difference(&got).cloned().collect();
        if !v.is_valid() || !missing.is_empty() {
            failures.push(format!("missing {missing:?}; {}", report(&path, &v)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_err_fixture_fails_with_exactly_its_named_error_codes() {
    let mut failures = Vec::new();
    let all = fixtures("err");
    assert!(!all.is_empty());
    for path in all {
        let expected = expected_codes(&path);
        assert!(!expected.is_empty(), "{}: err fixture names no code", path.display());
        let v = design::validate(&fixture_files(&path));
        let got: BTreeSet<String> = v.messages.iter().filter(|m| m.error).map(|m| m.code.clone()).collect();
        if v.is_valid() || got != expected {
            failures.push(format!("expected {expected:?}, got {got:?}; {}", report(&path, &v)));
        }
        for m in v.messages.iter().filter(|m| m.error) {
            if m.source.is_none() || m.documents.is_empty() && !m.code.starts_with("SW1") {
                failures.push(format!("{}: message without source or document: {m:?}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
