//! slipway against Drydock itself on single-change variants of valid sites.
//!
//! `tests/data/drydock-corpus/` holds 138 designs, each a valid site (gen-site
//! `--nodes 3`, `g_*`, or Drydock's `deckhand_fullsite.yaml`, `f_*`) with one
//! change, and `verdicts.tsv`: what Drydock's full validatedesign pipeline said
//! (run at commit 61bcf4f, no node driver). Where slipway deliberately differs
//! (a defect Drydock lets through, an input it crashes on but slipway accepts),
//! `deviations.tsv` names the variant, slipway's verdict, the codes that must
//! appear and the reason; docs/compat.md repeats it. Every other variant must get
//! Drydock's verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use slipway::design::DesignFile;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/drydock-corpus")
}

fn tsv(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir().join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn judge(name: &str) -> (bool, BTreeSet<String>) {
    let file = format!("{name}.yaml");
    let v = slipway::validate(&[DesignFile {
        path: file.clone(),
        bytes: std::fs::read(dir().join(&file)).unwrap(),
    }]);
    let codes = v
        .messages
        .iter()
        .filter(|m| m.error)
        .map(|m| m.code.clone())
        .collect();
    (v.is_valid(), codes)
}

#[test]
fn slipway_gives_drydocks_verdict_on_every_variant_except_documented_deviations() {
    let verdicts = tsv("verdicts.tsv");
    assert!(verdicts.len() >= 130);
    let deviations: BTreeMap<String, Vec<String>> = tsv("deviations.tsv")
        .into_iter()
        .map(|r| (r[0].clone(), r))
        .collect();
    let mut failures = Vec::new();
    for row in &verdicts {
        let (name, drydock_valid) = (&row[0], row[1] == "valid");
        let (valid, codes) = judge(name);
        match deviations.get(name) {
            Some(dev) => {
                let want_valid = dev[1] == "valid";
                let want: BTreeSet<String> =
                    dev[2].split_whitespace().map(str::to_string).collect();
                if valid != want_valid || !want.is_subset(&codes) {
                    failures.push(format!(
                        "{name}: deviation expects {} {want:?}, got {} {codes:?}",
                        dev[1],
                        if valid { "valid" } else { "invalid" }
                    ));
                }
            }
            None if valid != drydock_valid => failures.push(format!(
                "{name}: Drydock {} ({}), slipway {} {codes:?} — {}",
                row[1],
                row[2],
                if valid { "valid" } else { "invalid" },
                row[4]
            )),
            None => {}
        }
    }
    for name in deviations.keys() {
        if !verdicts.iter().any(|r| &r[0] == name) {
            failures.push(format!("{name}: in deviations.tsv but not a variant"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
