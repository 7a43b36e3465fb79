//! `slipway::hostlist::expand` against python-hostlist itself (the library
//! Luna2's daemon and CLI expand hostlists with), on thousands of generated
//! expressions over the hostlist alphabet: the same names in the same order,
//! or an error from both. The Python comes from `$SLIPWAY_TEST_VENV` (where
//! `scripts/test.sh` installs python-hostlist with the luna2-cli requirements).

mod common;

use std::io::Write as _;

/// A small deterministic generator (no wall clock, no OS randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Expressions mostly well formed (so both sides expand), some broken.
fn expressions() -> Vec<String> {
    let mut g = Lcg(20261203);
    let mut out: Vec<String> = [
        "node[001-004]",
        "n[8-11]",
        "n[1-3,7],gpu[01-02]",
        "rack[1-2]-n[1-2]",
        "n[09-10]",
        "n[1-001]",
        "a,b,,a",
        "n[1-2],n[2-3]",
        "[1-2]",
        "n[3-1]",
        "n[1-2",
        "n]1[",
        "n[[1]]",
        "n[]",
        "n[1,]",
        "n[a-b]",
        "n[1-2-3]",
        "x[0-9]y[0-9]z",
        "n[0099-0101]",
        "n,",
        ",n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let atoms = ["n", "node", "gpu", "x", "-", "_", ".", "0", "1", "07", "12"];
    for _ in 0..3000 {
        let mut s = String::new();
        for _ in 0..(1 + g.next(3)) {
            if !s.is_empty() {
                s.push(',');
            }
            for _ in 0..(1 + g.next(3)) {
                s.push_str(atoms[g.next(atoms.len() as u64) as usize]);
                if g.next(3) > 0 {
                    s.push('[');
                    for k in 0..(1 + g.next(3)) {
                        if k > 0 {
                            s.push(',');
                        }
                        let width = g.next(3) as usize + 1;
                        let lo = g.next(15);
                        match g.next(5) {
                            0 => s.push_str(&format!("{lo:0width$}")),
                            1 => s.push_str(&format!(
                                "{lo:0width$}-{}",
                                lo.saturating_sub(g.next(3))
                            )),
                            2 => s.push_str(
                                ["", "-", "a", "1-", "-1", "[", "1--2"][g.next(7) as usize],
                            ),
                            _ => s.push_str(&format!("{lo:0width$}-{}", lo + g.next(12))),
                        }
                    }
                    if g.next(20) > 0 {
                        s.push(']');
                    }
                }
            }
        }
        out.push(s);
    }
    out
}

const PYTHON: &str = r#"
import json, sys, hostlist
out = []
for expr in json.load(sys.stdin):
    try:
        out.append({"ok": hostlist.expand_hostlist(expr)})
    except hostlist.BadHostlist as e:
        out.append({"err": str(e)})
json.dump(out, sys.stdout)
"#;

#[test]
fn expansion_agrees_with_python_hostlist_name_for_name() {
    let exprs = expressions();
    let mut child = std::process::Command::new(common::venv_python(
        "python-hostlist (scripts/test.sh installs it with the luna2-cli requirements)",
    ))
    .args(["-c", PYTHON])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&exprs).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python-hostlist run failed");
    let theirs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), exprs.len());
    let (mut agreed_ok, mut agreed_err) = (0, 0);
    for (expr, t) in exprs.iter().zip(&theirs) {
        let ours = slipway::hostlist::expand(expr);
        match (&ours, t.get("ok")) {
            (Ok(names), Some(want)) => {
                assert_eq!(&serde_json::json!(names), want, "{expr}");
                agreed_ok += 1;
            }
            // python-hostlist expands an expression of empty parts to no
            // names; slipway calls that an error (a node argument names something).
            (Err(slipway::hostlist::HostlistError::Empty), Some(want)) => {
                assert_eq!(want, &serde_json::json!([]), "{expr}");
            }
            (Err(_), None) => agreed_err += 1,
            (ours, _) => panic!("{expr}: slipway {ours:?}, python-hostlist {t}"),
        }
    }
    // The generator must exercise both sides.
    assert!(
        agreed_ok > 500 && agreed_err > 200,
        "{agreed_ok} expanded, {agreed_err} refused"
    );
}
