//! The `slipway` binary's one-shot commands: exit codes, output formats, git mode.

mod common;

use std::process::{Command, Output};

use common::GitRepo;

fn slipway(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .current_dir(dir)
        .env("SLIPWAY_LOG", "warn")
        .output()
        .expect("run slipway")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_exits_0_on_the_example_1_on_an_invalid_design_2_on_a_missing_path() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        slipway(&["validate", "designs"], root).status.code(),
        Some(0)
    );
    let bad = slipway(
        &[
            "validate",
            "tests/data/designs/err/SW321-cidr-host-bits-set.yaml",
        ],
        root,
    );
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    let missing = slipway(&["validate", "no/such/dir"], root);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/dir"));
    let usage = slipway(&["validate", "--format", "xml"], root);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn validate_text_lines_name_file_line_level_code_and_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = slipway(
        &[
            "validate",
            "tests/data/designs/err/SW321-cidr-host-bits-set.yaml",
        ],
        root,
    );
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.contains(" SW321 "))
        .expect("an SW321 line");
    // file:line: LEVEL CODE Kind/name: message
    let (loc, rest) = line.split_once(": ").unwrap();
    let (file, lineno) = loc.rsplit_once(':').unwrap();
    assert_eq!(file, "SW321-cidr-host-bits-set.yaml");
    assert!(lineno.parse::<u32>().unwrap() > 1);
    assert!(rest.starts_with("Error SW321 Network/"), "{line}");
}

#[test]
fn validate_json_is_a_drydock_status_with_a_source_in_every_message() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = slipway(
        &[
            "validate",
            "--format",
            "json",
            "tests/data/designs/err/SW321-cidr-host-bits-set.yaml",
        ],
        root,
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["code"], 400);
    let msgs = v["details"]["messageList"].as_array().unwrap();
    assert_eq!(
        v["details"]["errorCount"].as_u64().unwrap() as usize,
        msgs.iter().filter(|m| m["error"] == true).count()
    );
    for m in msgs {
        assert!(
            m["source"]["file"].is_string() && m["source"]["line"].is_u64(),
            "{m}"
        );
        for k in [
            "code",
            "level",
            "message",
            "diagnostic",
            "documents",
            "error",
        ] {
            assert!(m.get(k).is_some(), "{k} missing in {m}");
        }
    }
}

#[test]
fn validate_reads_the_commit_tree_of_a_repository_not_the_work_tree() {
    let g = GitRepo::new();
    g.add_example_site();
    let good = g.commit("valid site");
    // A broken work tree must not matter: HEAD's tree is what is validated.
    g.write("designs/broken.yaml", "schema: [\n");
    assert_eq!(slipway(&["validate"], g.path()).status.code(), Some(0));
    // Commit the breakage: HEAD is invalid, the earlier revision still valid.
    g.commit("broken");
    let head = slipway(&["validate"], g.path());
    assert_eq!(head.status.code(), Some(1));
    assert!(
        stdout(&head)
            .lines()
            .any(|l| l.starts_with("broken.yaml:") && l.contains(": Error SW101 ")),
        "{}",
        stdout(&head)
    );
    assert_eq!(
        slipway(&["validate", "--rev", &good], g.path())
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        slipway(&["validate", "--rev", "no-such-rev"], g.path())
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn diff_shows_document_and_node_changes_between_revisions() {
    let g = GitRepo::new();
    g.add_example_site();
    let from = g.commit("site");
    let path = g.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Change one node's address: one document update, one node's boot data.
    let changed = text.replacen("10.48.1.1\n", "10.48.1.201\n", 1);
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    g.commit("move n00001");
    let o = slipway(&["diff", &from, "HEAD"], g.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(out.contains("~ BaremetalNode/n00001"), "{out}");
    assert!(
        out.contains("n00001") && !out.contains("n00002"),
        "only n00001 changes: {out}"
    );
    let same = slipway(&["diff", "HEAD", "HEAD"], g.path());
    assert!(stdout(&same).contains("no changes"), "{}", stdout(&same));
}
