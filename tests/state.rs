//! The store on real files and a real PostgreSQL: migrations, apply,
//! snapshots, history. Every test but the SQLite-file ones runs once per
//! backend (`name::sqlite`, `name::postgres`; see tests/common/pg.rs).

mod common;
use common::pg::Backend;

use std::path::{Path, PathBuf};

use slipway::design::{Design, DesignFile, Kind, Message};
use slipway::plan::{plan, NodeWrite, Plan};
use slipway::revision::Revision;
use slipway::state::{RevisionStatus, StateError, Store, SCHEMA_VERSION};

/// The example site's files (`designs/`, 12 nodes), with `edit` applied to each
/// file's text (path relative to `designs/`).
fn site_files(edit: impl Fn(&str, String) -> String) -> Vec<DesignFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("designs");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let text = std::fs::read_to_string(&p).unwrap();
                out.push(DesignFile {
                    bytes: edit(&rel, text).into_bytes(),
                    path: rel,
                });
            }
        }
    }
    out
}

/// A design from files; it must be valid.
fn design_of(files: &[DesignFile]) -> Design {
    let v = slipway::validate(files);
    let errors: Vec<String> = v
        .messages
        .iter()
        .filter(|m| m.error)
        .map(|m| m.to_text_line())
        .collect();
    assert!(errors.is_empty(), "design must be valid: {errors:#?}");
    v.design.unwrap()
}

fn site() -> Design {
    design_of(&site_files(|_, t| t))
}

/// A revision with a commit id made from `n`.
fn rev(n: u32) -> Revision {
    Revision {
        commit: format!("{n:040x}"),
        tree: format!("{:040x}", n + 1000),
        author: "Ada <ada@example.com>".into(),
        committer: "Ada <ada@example.com>".into(),
        signed_by: None,
        summary: format!("change {n}"),
        committed_at: 1_700_000_000 + i64::from(n),
    }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("slipway.db")
}

fn open_creates_migrates_and_reopens(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    {
        let store = Store::open(&path).unwrap();
        assert!(backend == Backend::Postgres || path.exists());
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(store.revisions(10).unwrap().is_empty());
        assert!(store.applied_revision().unwrap().is_none());
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Data survives a reopen.
    store.record_invalid(&rev(1), &[]).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.revisions(10).unwrap().len(), 1);
}

#[test]
fn wal_mode_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.journal_mode().unwrap(), "wal");
    store.record_invalid(&rev(1), &[]).unwrap();
    // A WAL database keeps its write-ahead log next to it while open.
    assert!(dir.path().join("slipway.db-wal").exists());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    // The last connection closed, so the file is checkpointed; `user_version` is
    // the big-endian 32-bit integer at offset 60 of the SQLite header.
    let mut bytes = std::fs::read(&path).unwrap();
    let newer = (SCHEMA_VERSION + 1) as u32;
    bytes[60..64].copy_from_slice(&newer.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    match Store::open(&path) {
        Err(
            e @ StateError::NewerSchema {
                found, supported, ..
            },
        ) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
            let text = e.to_string();
            assert!(text.contains("newer than this slipway"), "{text}");
            assert!(text.contains("slipway.db"), "{text}");
        }
        Err(e) => panic!("expected NewerSchema, got {e}"),
        Ok(_) => panic!("expected NewerSchema, the database opened"),
    }
    // Refusing leaves the newer slipway's file exactly as it was.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

fn stores_opened_at_once_on_a_fresh_file_migrate_it_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Store::open(&path).map(|s| s.schema_version().unwrap()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), SCHEMA_VERSION);
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::write(&path, b"this is a text file, not a database\n".repeat(200)).unwrap();
    match Store::open(&path) {
        Err(e @ StateError::Open { .. }) => {
            let text = e.to_string();
            assert!(text.contains("slipway.db"), "{text}");
            assert!(text.contains("expected a SQLite database"), "{text}");
        }
        Err(e) => panic!("expected Open, got {e}"),
        Ok(_) => panic!("a text file opened as a database"),
    }
}

fn apply_then_snapshot_then_replan_is_empty(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let design = site();
    let p = plan(&design, &store.snapshot().unwrap());
    assert_eq!(p.creates.len(), design.documents.len());
    assert_eq!(p.node_writes.len(), 12);
    let stats = store.apply(&p, &rev(1)).unwrap();
    assert_eq!(stats.documents_written, design.documents.len());
    assert_eq!(stats.nodes_written, 12);
    assert_eq!((stats.documents_deleted, stats.nodes_deleted), (0, 0));

    let snap = store.snapshot().unwrap();
    assert_eq!(snap.revision.as_deref(), Some(rev(1).commit.as_str()));
    assert_eq!(snap.documents.len(), design.documents.len());
    assert_eq!(snap.nodes.len(), 12);
    assert_eq!(
        snap,
        slipway::plan::snapshot_of(&design).with_revision(&rev(1))
    );

    let again = plan(&design, &snap);
    assert!(again.is_empty(), "replan: {:#?}", again.summary_lines());
    assert!(again.affected_nodes.is_empty());

    // Rows hold what the plan said.
    let doc = store.document(Kind::Network, "mgmt").unwrap().unwrap();
    let w = p
        .creates
        .iter()
        .find(|d| d.kind == Kind::Network && d.name == "mgmt")
        .unwrap();
    assert_eq!(
        (&doc.hash, doc.body.as_str(), &doc.file, doc.line),
        (&w.hash, &*w.body, &w.file, w.line)
    );
    assert_eq!(doc.revision, rev(1).commit);
    let node = store.node("n00001").unwrap().unwrap();
    assert_eq!(
        node.addresses,
        vec![
            ("mgmt".to_string(), "10.48.1.1".to_string()),
            ("oob".to_string(), "10.16.1.1".to_string()),
            ("pxe".to_string(), "10.32.1.1".to_string()),
            ("storage".to_string(), "10.64.1.1".to_string()),
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&node.body).unwrap();
    assert_eq!(body["name"], "n00001");
    assert_eq!(store.node_names().unwrap().len(), 12);
    assert_eq!(
        store.document_names(Kind::Rack).unwrap(),
        ["rack01", "rack02", "rack03"]
    );

    // Applying the empty plan of a new commit writes nothing but moves history.
    let stats = store.apply(&again, &rev(2)).unwrap();
    assert_eq!(stats, Default::default());
    assert_eq!(store.applied_revision().unwrap().unwrap().revision, rev(2));
}

/// `snapshot_of` has no revision; the store's has the applied one.
trait WithRevision {
    fn with_revision(self, rev: &Revision) -> Self;
}

impl WithRevision for slipway::plan::Snapshot {
    fn with_revision(mut self, rev: &Revision) -> Self {
        self.revision = Some(rev.commit.clone());
        self
    }
}

fn one_changed_rack_updates_one_document_and_only_its_nodes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    store
        .apply(&plan(&site(), &store.snapshot().unwrap()), &rev(1))
        .unwrap();
    let changed = design_of(&site_files(|path, text| {
        if path == "racks.yaml" {
            text.replace("grid: R02", "grid: R02-moved")
        } else {
            text
        }
    }));
    let p = plan(&changed, &store.snapshot().unwrap());
    assert!(p.creates.is_empty() && p.deletes.is_empty());
    assert_eq!(p.updates.len(), 1);
    assert_eq!(
        (p.updates[0].kind, p.updates[0].name.as_str()),
        (Kind::Rack, "rack02")
    );
    let affected: Vec<&str> = p.affected_nodes.iter().map(String::as_str).collect();
    assert_eq!(affected, ["n00005", "n00006", "n00007", "n00008"]);
    assert_eq!(
        p.summary_lines(),
        [
            "~ Rack/rack02",
            "node n00005: boot data changes",
            "node n00006: boot data changes",
            "node n00007: boot data changes",
            "node n00008: boot data changes",
        ]
    );

    let before = store.node("n00001").unwrap().unwrap();
    let stats = store.apply(&p, &rev(2)).unwrap();
    assert_eq!(stats.documents_written, 1);
    assert_eq!(stats.nodes_written, 4);
    // Untouched rows keep the revision that wrote them.
    assert_eq!(store.node("n00001").unwrap().unwrap(), before);
    assert_eq!(
        store.node("n00005").unwrap().unwrap().revision,
        rev(2).commit
    );
    assert_eq!(
        store
            .document(Kind::Rack, "rack01")
            .unwrap()
            .unwrap()
            .revision,
        rev(1).commit
    );
    assert!(plan(&changed, &store.snapshot().unwrap()).is_empty());
}

fn one_changed_node_writes_one_node(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    store
        .apply(&plan(&site(), &store.snapshot().unwrap()), &rev(1))
        .unwrap();
    let changed = design_of(&site_files(|path, text| {
        if path.ends_with("rack-03.yaml") {
            text.replace("'02:bd:50:00:00:0a'", "'02:bd:50:00:01:0a'")
        } else {
            text
        }
    }));
    let p = plan(&changed, &store.snapshot().unwrap());
    assert_eq!(
        p.summary_lines(),
        ["~ BaremetalNode/n00010", "node n00010: boot data changes"]
    );
    let stats = store.apply(&p, &rev(2)).unwrap();
    assert_eq!(
        (
            stats.documents_written,
            stats.nodes_written,
            stats.documents_deleted,
            stats.nodes_deleted
        ),
        (1, 1, 0, 0)
    );
}

fn deleted_documents_and_nodes_are_removed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let full = site();
    store
        .apply(&plan(&full, &store.snapshot().unwrap()), &rev(1))
        .unwrap();
    // Without rack 3's node file: four nodes gone.
    let files: Vec<DesignFile> = site_files(|_, t| t)
        .into_iter()
        .filter(|f| !f.path.ends_with("rack-03.yaml"))
        .collect();
    let smaller = design_of(&files);
    let p = plan(&smaller, &store.snapshot().unwrap());
    assert_eq!(p.deletes.len(), 4);
    assert!(p.deletes.iter().all(|(k, _)| *k == Kind::BaremetalNode));
    assert_eq!(p.node_deletes, ["n00009", "n00010", "n00011", "n00012"]);
    assert!(p
        .summary_lines()
        .contains(&"- BaremetalNode/n00009".to_string()));
    let stats = store.apply(&p, &rev(2)).unwrap();
    assert_eq!((stats.documents_deleted, stats.nodes_deleted), (4, 4));
    assert!(store.node("n00009").unwrap().is_none());
    assert!(store
        .document(Kind::BaremetalNode, "n00009")
        .unwrap()
        .is_none());
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.nodes.len(), 8);
    assert!(plan(&smaller, &snap).is_empty());
    // And back again: they are created anew.
    let p = plan(&full, &snap);
    assert_eq!(p.creates.len(), 4);
    assert!(p
        .summary_lines()
        .contains(&"node n00009: new boot data".to_string()));
}

fn snapshot_after_a_plan_equals_the_one_read_back_from_the_database(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let empty = store.snapshot().unwrap();
    let p1 = plan(&site(), &empty);
    store.apply(&p1, &rev(1)).unwrap();
    let s1 = empty.after(&p1, &rev(1).commit);
    assert_eq!(s1, store.snapshot().unwrap(), "creates");
    // Updates, deletes and node changes at once: rack 2 moved, rack 3's
    // nodes removed.
    let files: Vec<DesignFile> = site_files(|path, text| {
        if path == "racks.yaml" {
            text.replace("grid: R02", "grid: R02-moved")
        } else {
            text
        }
    })
    .into_iter()
    .filter(|f| !f.path.ends_with("rack-03.yaml"))
    .collect();
    let p2 = plan(&design_of(&files), &s1);
    assert!(!p2.updates.is_empty() && !p2.deletes.is_empty() && !p2.node_deletes.is_empty());
    store.apply(&p2, &rev(2)).unwrap();
    let s2 = s1.after(&p2, &rev(2).commit);
    assert_eq!(s2, store.snapshot().unwrap(), "updates and deletes");
    // And back: created anew.
    let p3 = plan(&site(), &s2);
    store.apply(&p3, &rev(3)).unwrap();
    assert_eq!(s2.after(&p3, &rev(3).commit), store.snapshot().unwrap());
}

fn node_bodies_given_during_the_apply_store_what_the_plan_would_have_held(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let design = site();
    let mut whole = Store::open(&backend.db_named(dir.path(), "whole.db")).unwrap();
    whole
        .apply(&plan(&design, &whole.snapshot().unwrap()), &rev(1))
        .unwrap();
    let mut streamed = Store::open(&backend.db_named(dir.path(), "streamed.db")).unwrap();
    let lean = slipway::plan::plan_without_bodies(&design, &streamed.snapshot().unwrap());
    assert!(lean.node_writes.iter().all(|n| n.body.is_empty()));
    let bodies = slipway::plan::NodeBodies::new(&design);
    streamed
        .apply_with_bodies(&lean, &rev(1), &[], &|n| bodies.body(n))
        .unwrap();
    let names = whole.node_names().unwrap();
    assert_eq!(names, streamed.node_names().unwrap());
    for n in &names {
        let (a, b) = (
            whole.node(n).unwrap().unwrap(),
            streamed.node(n).unwrap().unwrap(),
        );
        assert!(!a.body.is_empty());
        assert_eq!(a, b, "{n}");
    }
}

fn invalid_revision_is_recorded_with_messages_and_documents_untouched(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    store
        .apply(&plan(&site(), &store.snapshot().unwrap()), &rev(1))
        .unwrap();
    let before = store.snapshot().unwrap();
    let messages = vec![
        Message::error(
            "SW321",
            "range 10.0.0.1-10.0.0.9 is outside 10.48.0.0/16",
            "Fix it.",
        )
        .about("drydock/Network/v1", "mgmt")
        .at("networks.yaml", 12),
        Message::warning("SW999", "a warning", "Consider it."),
    ];
    store.record_invalid(&rev(2), &messages).unwrap();

    assert_eq!(store.snapshot().unwrap(), before);
    let rec = store.revision(&rev(2).commit).unwrap().unwrap();
    assert_eq!(rec.status, RevisionStatus::Invalid);
    assert_eq!(rec.messages, messages);
    assert_eq!(rec.revision, rev(2));
    assert_eq!(store.applied_revision().unwrap().unwrap().revision, rev(1));
    let history: Vec<(String, RevisionStatus)> = store
        .revisions(10)
        .unwrap()
        .into_iter()
        .map(|r| (r.revision.commit, r.status))
        .collect();
    assert_eq!(
        history,
        [
            (rev(2).commit, RevisionStatus::Invalid),
            (rev(1).commit, RevisionStatus::Applied)
        ]
    );
    // The record serialises with the revision's fields flattened in.
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["status"], "invalid");
    assert_eq!(json["commit"], rev(2).commit);
    assert_eq!(json["messages"][0]["code"], "SW321");
}

fn applying_supersedes_the_previous_revision(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let design = site();
    store
        .apply(&plan(&design, &store.snapshot().unwrap()), &rev(1))
        .unwrap();
    store.record_invalid(&rev(2), &[]).unwrap();
    store.apply(&Plan::default(), &rev(3)).unwrap();
    // Re-applying the applied revision keeps it applied.
    store.apply(&Plan::default(), &rev(3)).unwrap();
    let status = |store: &Store, n| store.revision(&rev(n).commit).unwrap().unwrap().status;
    assert_eq!(status(&store, 1), RevisionStatus::Superseded);
    assert_eq!(status(&store, 2), RevisionStatus::Invalid);
    assert_eq!(status(&store, 3), RevisionStatus::Applied);
    // An invalid revision fixed by a newer slipway can be applied later.
    store.apply(&Plan::default(), &rev(2)).unwrap();
    assert_eq!(status(&store, 2), RevisionStatus::Applied);
    assert_eq!(status(&store, 3), RevisionStatus::Superseded);
    let applied: Vec<_> = store
        .revisions(100)
        .unwrap()
        .into_iter()
        .filter(|r| r.status == RevisionStatus::Applied)
        .collect();
    assert_eq!(applied.len(), 1);
    // History is by first sight: rev 2 keeps its place although applied last.
    let order: Vec<String> = store
        .revisions(100)
        .unwrap()
        .into_iter()
        .map(|r| r.revision.commit)
        .collect();
    assert_eq!(order, [rev(3).commit, rev(2).commit, rev(1).commit]);
    assert_eq!(store.revisions(2).unwrap().len(), 2);
    assert!(store.revision(&rev(9).commit).unwrap().is_none());
}

fn the_applied_revision_stays_served_when_recorded_invalid(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    store.apply(&Plan::default(), &rev(1)).unwrap();
    let m = vec![Message::error("SW300", "now rejected", "Fix it.")];
    store.record_invalid(&rev(1), &m).unwrap();
    let rec = store.applied_revision().unwrap().unwrap();
    assert_eq!(rec.revision, rev(1));
    assert_eq!(rec.messages, m);
}

fn a_failing_apply_writes_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    let mut store = Store::open(&path).unwrap();
    let design = site();
    store
        .apply(&plan(&design, &store.snapshot().unwrap()), &rev(1))
        .unwrap();
    let before = store.snapshot().unwrap();

    // A plan that deletes documents, rewrites nodes, and then hits a row the
    // schema rejects (a node body that is not JSON) after many good writes.
    let smaller = design_of(
        &site_files(|_, t| t.replace("grid: R01", "grid: R01-moved"))
            .into_iter()
            .filter(|f| !f.path.ends_with("rack-03.yaml"))
            .collect::<Vec<_>>(),
    );
    let mut bad = plan(&smaller, &before);
    assert!(!bad.deletes.is_empty() && !bad.updates.is_empty() && !bad.node_writes.is_empty());
    bad.node_writes.push(NodeWrite {
        name: "zz-broken".into(),
        inputs_hash: "0".repeat(64),
        source_hash: "0".repeat(64),
        body: "this is not JSON".into(),
        addresses: vec![],
    });
    let err = store.apply(&bad, &rev(2)).unwrap_err();
    assert!(err.to_string().contains("zz-broken"), "{err}");

    // Exactly the previous state, on this connection and on a fresh one.
    for s in [&store, &Store::open(&path).unwrap()] {
        assert_eq!(s.snapshot().unwrap(), before);
        assert!(s.revision(&rev(2).commit).unwrap().is_none());
        assert_eq!(s.applied_revision().unwrap().unwrap().revision, rev(1));
        assert!(s.node("n00009").unwrap().is_some());
    }
    // The store is still usable.
    let good = plan(&smaller, &store.snapshot().unwrap());
    store.apply(&good, &rev(2)).unwrap();
    assert!(plan(&smaller, &store.snapshot().unwrap()).is_empty());
}

fn a_second_store_on_the_same_file_reads_while_one_writes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    let mut writer = Store::open(&path).unwrap();
    let reader = Store::open(&path).unwrap();
    writer
        .apply(&plan(&site(), &writer.snapshot().unwrap()), &rev(1))
        .unwrap();
    assert_eq!(reader.snapshot().unwrap(), writer.snapshot().unwrap());
}

fn boot_action_reports_append_then_finalise_once(backend: Backend) {
    use slipway::state::{BootActionDetail, ReportOutcome, BOOT_ACTION_INCOMPLETE};
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    let mut store = Store::open(&path).unwrap();
    let a = "01HZZZZZZZZZZZZZZZZZZZZZ0A".to_string();
    let b = "01HZZZZZZZZZZZZZZZZZZZZZ0B".to_string();
    store
        .create_boot_actions(
            "n00001",
            "dep-1",
            1_700_000_000,
            &[
                (a.clone(), "base-config".into()),
                (b.clone(), "rack-agent".into()),
            ],
        )
        .unwrap();
    let actions = store.boot_actions_of("n00001", "dep-1").unwrap();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].action, "base-config");
    assert_eq!(actions[0].status, BOOT_ACTION_INCOMPLETE);
    assert!(store.boot_actions_of("n00001", "dep-2").unwrap().is_empty());

    let detail = |m: &str, error| BootActionDetail {
        ts: 1_700_000_100,
        message: m.into(),
        error,
        extra: serde_json::json!({"context": "firstboot"}),
    };
    // Details without a status are appended; the action stays open.
    match store
        .report_boot_action(&a, None, &[detail("started", false)], 1_700_000_100)
        .unwrap()
    {
        ReportOutcome::Recorded(r) => assert_eq!(
            (r.status.as_str(), r.finalized),
            (BOOT_ACTION_INCOMPLETE, None)
        ),
        other => panic!("expected Recorded, got {other:?}"),
    }
    // A status finalises it, with the details of the same report.
    match store
        .report_boot_action(&a, Some("Success"), &[detail("done", false)], 1_700_000_200)
        .unwrap()
    {
        ReportOutcome::Recorded(r) => {
            assert_eq!(
                (r.status.as_str(), r.finalized),
                ("Success", Some(1_700_000_200))
            )
        }
        other => panic!("expected Recorded, got {other:?}"),
    }
    // After that nothing more is accepted.
    assert!(matches!(
        store
            .report_boot_action(&a, Some("Failure"), &[detail("late", true)], 1_700_000_300)
            .unwrap(),
        ReportOutcome::AlreadyFinalized(r) if r.status == "Success"
    ));
    assert_eq!(
        store
            .report_boot_action("01HZZZZZZZZZZZZZZZZZZZZZ0C", None, &[], 0)
            .unwrap(),
        ReportOutcome::Unknown
    );
    // Everything survives a reopen.
    drop(store);
    let store = Store::open(&path).unwrap();
    let details = store.boot_action_details(&a).unwrap();
    assert_eq!(details, [detail("started", false), detail("done", false)]);
    assert_eq!(store.boot_action(&a).unwrap().unwrap().status, "Success");
    assert_eq!(store.boot_action(&b).unwrap().unwrap().finalized, None);
    assert!(store.boot_action("nope").unwrap().is_none());
}

fn reports_committed_together_keep_their_order_and_each_its_outcome(backend: Backend) {
    use slipway::state::{BootActionDetail, Report, ReportOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    let mut store = Store::open(&path).unwrap();
    let a = "01HZZZZZZZZZZZZZZZZZZZZZ1A";
    let b = "01HZZZZZZZZZZZZZZZZZZZZZ1B";
    store
        .create_boot_actions(
            "n00001",
            "dep-1",
            1,
            &[
                (a.into(), "base-config".into()),
                (b.into(), "rack-agent".into()),
            ],
        )
        .unwrap();
    let detail = |m: &str| BootActionDetail {
        ts: 5,
        message: m.into(),
        error: false,
        extra: serde_json::json!({}),
    };
    let (d1, d2, d3) = ([detail("one")], [detail("two")], [detail("three")]);
    let batch = [
        Report {
            action_id: a,
            status: None,
            details: &d1,
        },
        Report {
            action_id: a,
            status: Some("Success"),
            details: &d2,
        },
        // Finalised by the report before it, in the same transaction.
        Report {
            action_id: a,
            status: None,
            details: &d3,
        },
        Report {
            action_id: "01HZZZZZZZZZZZZZZZZZZZZZ1C",
            status: None,
            details: &d3,
        },
        Report {
            action_id: b,
            status: None,
            details: &d3,
        },
    ];
    let outcomes: Vec<ReportOutcome> = store
        .report_boot_actions(&batch, 10)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(matches!(&outcomes[0], ReportOutcome::Recorded(r) if r.finalized.is_none()));
    assert!(
        matches!(&outcomes[1], ReportOutcome::Recorded(r) if r.status == "Success" && r.finalized == Some(10))
    );
    assert!(matches!(&outcomes[2], ReportOutcome::AlreadyFinalized(r) if r.status == "Success"));
    assert_eq!(outcomes[3], ReportOutcome::Unknown);
    assert!(matches!(&outcomes[4], ReportOutcome::Recorded(_)));
    // All of it is committed: another connection sees every recorded report
    // and nothing of the refused one.
    let other = Store::open(&path).unwrap();
    assert_eq!(
        other.boot_action_details(a).unwrap(),
        [detail("one"), detail("two")]
    );
    assert_eq!(other.boot_action_details(b).unwrap(), [detail("three")]);
    assert_eq!(other.boot_action(a).unwrap().unwrap().status, "Success");
}

fn a_boot_action_id_must_be_a_ulid_and_a_bad_one_writes_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let err = store
        .create_boot_actions(
            "n00001",
            "dep-1",
            0,
            &[
                ("01HZZZZZZZZZZZZZZZZZZZZZ0A".into(), "a".into()),
                ("short".into(), "b".into()),
            ],
        )
        .unwrap_err();
    assert!(err.to_string().contains("short"), "{err}");
    assert!(store.boot_actions_of("n00001", "dep-1").unwrap().is_empty());
}

fn build_data_keeps_history_and_latest_gives_one_per_generator(backend: Backend) {
    use slipway::state::BuildDataRecord;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let rec = |generator: &str, data: &str, at| BuildDataRecord {
        node: "n00001".into(),
        task_id: None,
        generator: generator.into(),
        data_format: "text/plain".into(),
        data_element: data.into(),
        collected_at: at,
    };
    for r in [
        rec("lshw", "old", 10),
        rec("lshw", "new", 20),
        rec("dmesg", "boot", 15),
    ] {
        store.add_build_data(&r).unwrap();
    }
    let all = store.build_data("n00001", false).unwrap();
    let texts: Vec<&str> = all.iter().map(|r| r.data_element.as_str()).collect();
    assert_eq!(texts, ["old", "boot", "new"]);
    assert_eq!(
        store.build_data("n00001", true).unwrap(),
        [rec("dmesg", "boot", 15), rec("lshw", "new", 20)]
    );
    assert!(store.build_data("n00002", true).unwrap().is_empty());
}

fn tasks_and_their_messages_round_trip(backend: Backend) {
    use slipway::state::{TaskMessage, TaskRecord};
    let dir = tempfile::tempdir().unwrap();
    let path = backend.db(dir.path());
    let mut store = Store::open(&path).unwrap();
    let mut task = TaskRecord {
        task_id: "t1".into(),
        parent_task_id: None,
        action: "verify_site".into(),
        status: "requested".into(),
        result: None,
        design_ref: Some("deckhand+https://x/y".into()),
        node_filter: Some(serde_json::json!({"filter_set_type": "union", "filter_set": []})),
        created: 100,
        created_by: Some("ada".into()),
        updated: None,
        terminated: None,
        body: serde_json::json!({"retry": {}}),
    };
    store.put_task(&task).unwrap();
    let child = TaskRecord {
        task_id: "t2".into(),
        parent_task_id: Some("t1".into()),
        created: 101,
        node_filter: None,
        ..task.clone()
    };
    store.put_task(&child).unwrap();
    task.status = "complete".into();
    task.result = Some("Success".into());
    task.updated = Some(200);
    store.put_task(&task).unwrap();
    let m = TaskMessage {
        ts: 150,
        message: "node n00001 verified".into(),
        error: false,
        context_type: Some("node".into()),
        context: Some("n00001".into()),
        extra: serde_json::json!({}),
    };
    store.add_task_message("t1", &m).unwrap();
    // A message for an unknown task is refused (foreign key).
    assert!(store.add_task_message("nope", &m).is_err());
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.task("t1").unwrap().unwrap(), task);
    assert_eq!(store.tasks().unwrap(), [task, child]);
    assert_eq!(store.task_messages("t1").unwrap(), [m]);
    assert!(store.task("t3").unwrap().is_none());
}

fn deployments_are_kept_while_inputs_hash_holds_and_unreported_actions_take_no_report(
    backend: Backend,
) {
    use slipway::state::{
        DeploymentInputs, ReportOutcome, BOOT_ACTION_INCOMPLETE, BOOT_ACTION_UNREPORTED,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&backend.db(dir.path())).unwrap();
    let mut n = 0;
    let mut ids = move || {
        n += 1;
        format!("01HZZZZZZZZZZZZZZZZZZZZ{n:03}")
    };
    let actions = [
        ("base-config".to_string(), true),
        ("tuning".to_string(), false),
    ];
    let h1 = "a".repeat(64);
    let inputs = DeploymentInputs {
        inputs_hash: &h1,
        design_ref: "c1",
        committed_at: 1_700_000_000,
        actions: &actions,
    };
    let (d1, a1) = store
        .ensure_deployment("n1", &inputs, 10, &mut ids)
        .unwrap();
    assert_eq!(a1.len(), 2);
    assert_eq!(a1[0].status, BOOT_ACTION_INCOMPLETE);
    assert_eq!(a1[1].status, BOOT_ACTION_UNREPORTED);
    // Same hash: same deployment and actions, nothing new.
    let (again, a_again) = store
        .ensure_deployment("n1", &inputs, 20, &mut ids)
        .unwrap();
    assert_eq!((again, a_again), (d1.clone(), a1.clone()));
    assert_eq!(store.deployment_of("n1").unwrap(), Some(d1.clone()));
    // An unreported action accepts nothing.
    assert!(matches!(
        store
            .report_boot_action(&a1[1].action_id, Some("Success"), &[], 30)
            .unwrap(),
        ReportOutcome::AlreadyFinalized(_)
    ));
    // A new hash: a new deployment with new action ids; the old rows stay.
    let h2 = "b".repeat(64);
    let inputs2 = DeploymentInputs {
        inputs_hash: &h2,
        design_ref: "c2",
        ..inputs
    };
    let (d2, a2) = store
        .ensure_deployment("n1", &inputs2, 40, &mut ids)
        .unwrap();
    assert_ne!(d2.deployment, d1.deployment);
    assert_eq!(d2.design_ref, "c2");
    assert!(a2
        .iter()
        .all(|a| a1.iter().all(|b| b.action_id != a.action_id)));
    assert_eq!(
        store.boot_actions_of("n1", &d1.deployment).unwrap().len(),
        2
    );
    assert!(store.deployment_of("n2").unwrap().is_none());
}

crate::per_backend!(
    open_creates_migrates_and_reopens,
    stores_opened_at_once_on_a_fresh_file_migrate_it_once,
    apply_then_snapshot_then_replan_is_empty,
    one_changed_rack_updates_one_document_and_only_its_nodes,
    one_changed_node_writes_one_node,
    deleted_documents_and_nodes_are_removed,
    snapshot_after_a_plan_equals_the_one_read_back_from_the_database,
    node_bodies_given_during_the_apply_store_what_the_plan_would_have_held,
    invalid_revision_is_recorded_with_messages_and_documents_untouched,
    applying_supersedes_the_previous_revision,
    the_applied_revision_stays_served_when_recorded_invalid,
    a_failing_apply_writes_nothing,
    a_second_store_on_the_same_file_reads_while_one_writes,
    boot_action_reports_append_then_finalise_once,
    reports_committed_together_keep_their_order_and_each_its_outcome,
    a_boot_action_id_must_be_a_ulid_and_a_bad_one_writes_nothing,
    build_data_keeps_history_and_latest_gives_one_per_generator,
    tasks_and_their_messages_round_trip,
    deployments_are_kept_while_inputs_hash_holds_and_unreported_actions_take_no_report,
);

#[test]
fn a_newer_postgres_schema_is_refused_and_left_as_it_was() {
    let url = common::pg::fresh_database();
    drop(Store::open(Path::new(&url)).unwrap());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let newer = SCHEMA_VERSION + 1;
    admin
        .execute("UPDATE slipway_schema SET version = $1", &[&newer])
        .unwrap();
    match Store::open(Path::new(&url)) {
        Err(
            e @ StateError::NewerSchema {
                found, supported, ..
            },
        ) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
            assert!(e.to_string().contains("newer than this slipway"), "{e}");
        }
        Err(e) => panic!("expected NewerSchema, got {e}"),
        Ok(_) => panic!("expected NewerSchema, the database opened"),
    }
    let row = admin
        .query_one("SELECT version FROM slipway_schema", &[])
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), newer, "refusing writes nothing");
}

#[test]
fn a_postgres_url_nobody_answers_is_refused_naming_it_without_its_password() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://slipway:hunter2@127.0.0.1:{port}/slipway");
    match Store::open(Path::new(&url)) {
        Err(e @ StateError::Open { .. }) => {
            let text = e.to_string();
            assert!(text.contains("cannot connect to PostgreSQL"), "{text}");
            assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
            assert!(!text.contains("hunter2"), "the password is shown: {text}");
        }
        Err(e) => panic!("expected Open, got {e}"),
        Ok(_) => panic!("a URL nobody answers opened"),
    }
}
