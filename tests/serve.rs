//! `slipway serve` end to end: real git repositories (git CLI), a real SQLite
//! file, the real server on `127.0.0.1:0`, HTTP through reqwest. Every wait is
//! bounded by `common::TIMEOUT`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{client, wait_for, GitRepo, Server, BAD_YAML};
use slipway::design::Kind;
use slipway::state::{Snapshot, Store};

/// Long enough that a test passing proves something other than the poll acted.
const NEVER: Duration = Duration::from_secs(3600);

/// The applied state, read through a separate connection to the same file.
fn snapshot(db: &Path) -> Snapshot {
    Store::open(db).unwrap().snapshot().unwrap()
}

/// The Region's stored body (the burst test edits the Region).
fn region_body(db: &Path) -> String {
    Store::open(db)
        .unwrap()
        .document(Kind::Region, "gensite")
        .unwrap()
        .expect("region stored")
        .body
}

/// Rewrites the Region's memory threshold, a change the planner must write.
fn set_region_threshold(g: &GitRepo, n: u64) {
    let path = g.path().join("designs/region.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("/size > ").expect("threshold in region.yaml") + "/size > ".len();
    let end = start + text[start..].find('\'').unwrap();
    let new = format!("{}{n}{}", &text[..start], &text[end..]);
    std::fs::write(path, new).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_503_until_a_valid_commit_is_applied() {
    let g = GitRepo::new();
    g.write("designs/broken.yaml", BAD_YAML);
    let bad = g.commit("broken first design");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    let s = Server::start(g.path(), &db, NEVER).await;

    s.wait_status(&bad, "invalid").await;
    assert_eq!(s.health().await, 503, "no good revision yet");
    let (code, body) = s.get("/api/v1.0/health/extended").await;
    assert_eq!(code, 503);
    assert_eq!(body["applied_revision"], serde_json::Value::Null);
    assert_eq!(body["last_pass"]["result"], "invalid");

    g.remove("designs/broken.yaml");
    g.add_example_site();
    let good = g.commit("example site");
    s.wait_status(&good, "applied").await;
    assert_eq!(s.health().await, 204);

    let revs = s.revisions().await;
    assert_eq!(revs[0]["commit"], good.as_str(), "newest first");
    assert_eq!(revs[0]["author"], "Test Operator <ops@example.com>");
    assert_eq!(revs[0]["summary"], "example site");
    assert!(revs[0]["seen_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(revs[1]["status"], "invalid");

    let (code, ext) = s.get("/api/v1.0/health/extended").await;
    assert_eq!(code, 200);
    assert_eq!(ext["applied_revision"]["commit"], good.as_str());
    assert_eq!(ext["nodes"], 12);
    assert_eq!(ext["documents"], snapshot(&db).documents.len());
    assert_eq!(ext["db"], db.display().to_string());
    assert!(ext["uptime_secs"].is_u64());

    // An idle server stays idle: its own reads of the repository must not
    // wake the watcher (that would be a busy loop).
    let passes = ext["passes"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, ext) = s.get("/api/v1.0/health/extended").await;
    assert_eq!(
        ext["passes"].as_u64().unwrap(),
        passes,
        "no passes while idle"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_commit_never_applies_and_a_fix_supersedes_the_old_one() {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    let s = Server::start(g.path(), &db, NEVER).await;
    s.wait_status(&c1, "applied").await;
    let before = snapshot(&db);
    assert_eq!(before.nodes.len(), 12);

    // Invalid: a YAML syntax error, plus a change that would otherwise be written.
    set_region_threshold(&g, 1);
    g.write("designs/zz-broken.yaml", BAD_YAML);
    let c2 = g.commit("broken");
    s.wait_status(&c2, "invalid").await;
    let revs = s.revisions().await;
    let rec = revs.iter().find(|r| r["commit"] == c2.as_str()).unwrap();
    let messages = rec["messages"].as_array().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m["error"] == true && m["source"]["file"] == "zz-broken.yaml"),
        "{rec}"
    );
    assert_eq!(
        s.health().await,
        204,
        "the last good revision keeps serving"
    );
    assert_eq!(s.status_of(&c1).await.as_deref(), Some("applied"));
    assert_eq!(snapshot(&db), before, "documents and nodes untouched");

    // Fix it: applied, and the first one superseded.
    g.remove("designs/zz-broken.yaml");
    let c3 = g.commit("fixed");
    s.wait_status(&c3, "applied").await;
    assert_eq!(s.status_of(&c1).await.as_deref(), Some("superseded"));
    assert_eq!(s.status_of(&c2).await.as_deref(), Some("invalid"));
    let after = snapshot(&db);
    assert_eq!(after.revision.as_deref(), Some(c3.as_str()));
    assert_ne!(
        after.documents, before.documents,
        "the region change landed"
    );
    assert!(region_body(&db).contains("/size > 1"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_commits_applies_the_newest_head_only() {
    let g = GitRepo::new();
    g.add_example_site();
    let c0 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    // The watcher is the trigger here; the poll is only a slow fallback.
    let s = Server::start(g.path(), &db, Duration::from_secs(2)).await;
    s.wait_status(&c0, "applied").await;

    let mut commits = Vec::new();
    for i in 1..=20u64 {
        set_region_threshold(&g, 1000 + i);
        commits.push(g.commit(&format!("burst {i}")));
    }
    let newest = commits.last().unwrap().clone();
    s.wait_status(&newest, "applied").await;

    let revs = s.revisions().await;
    let applied: Vec<_> = revs.iter().filter(|r| r["status"] == "applied").collect();
    assert_eq!(applied.len(), 1, "exactly one applied revision: {revs:#?}");
    for c in &commits[..19] {
        // Unrecorded (coalesced away) or fully applied then superseded; never
        // applied alongside the head, never invalid.
        let st = s.status_of(c).await;
        assert!(
            st.is_none() || st.as_deref() == Some("superseded"),
            "{c}: {st:?}"
        );
    }
    assert!(region_body(&db).contains("/size > 1020"));
    let region = Store::open(&db)
        .unwrap()
        .document(Kind::Region, "gensite")
        .unwrap()
        .unwrap();
    assert_eq!(
        region.revision, newest,
        "the last change came from the head"
    );
    assert_eq!(snapshot(&db).revision.as_deref(), Some(newest.as_str()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_serves_at_once_and_does_not_reapply() {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    let s = Server::start(g.path(), &db, NEVER).await;
    s.wait_status(&c1, "applied").await;
    let revs_before = s.revisions().await;
    let docs_before = Store::open(&db)
        .unwrap()
        .document(Kind::Region, "gensite")
        .unwrap();
    s.stop().await;

    let s = Server::start(g.path(), &db, NEVER).await;
    // Health is answered from the database before any pass has finished.
    assert_eq!(s.health().await, 204);
    // Let passes run (start-up pass plus one from the webhook), then compare.
    assert_eq!(s.hook().await, 202);
    wait_for("two passes after restart", || async {
        let (_, ext) = s.get("/api/v1.0/health/extended").await;
        ext["passes"].as_u64().unwrap_or(0) >= 2 && ext["last_pass"]["result"] == "unchanged"
    })
    .await;
    let revs_after = s.revisions().await;
    assert_eq!(revs_after, revs_before, "seen_at and statuses unchanged");
    let docs_after = Store::open(&db)
        .unwrap()
        .document(Kind::Region, "gensite")
        .unwrap();
    assert_eq!(docs_after, docs_before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_triggers_a_pass_without_the_poll_or_the_watcher() {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    // No watcher and a one-hour poll: only the webhook can make the next pass.
    let s = Server::try_start(g.path(), &db, NEVER, false)
        .await
        .unwrap();
    s.wait_status(&c1, "applied").await;
    wait_for("the start-up pass to finish", || async {
        s.get("/api/v1.0/health/extended").await.1["passes"] == 1
    })
    .await;

    set_region_threshold(&g, 7);
    let c2 = g.commit("change");
    // Nothing notices the commit on its own.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.status_of(&c2).await, None);

    let r = client()
        .post(s.url("/api/v1.0/hooks/git"))
        .header("content-type", "application/json")
        .body(r#"{"ref":"refs/heads/main"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    s.wait_status(&c2, "applied").await;
    assert_eq!(s.status_of(&c1).await.as_deref(), Some("superseded"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_errors_are_drydock_status_objects() {
    let g = GitRepo::new();
    g.add_example_site();
    g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let s = Server::start(g.path(), &db_dir.path().join("slipway.db"), NEVER).await;

    let (code, v) = s.get("/versions").await;
    assert_eq!(code, 200);
    assert_eq!(
        v,
        serde_json::json!({"v1.0": {"path": "/api/v1.0", "status": "stable"}})
    );

    let (code, body) = s.get("/api/v1.0/no-such-thing").await;
    assert_eq!(code, 404);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["apiVersion"], "v1.0");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["code"], 404);
    assert!(body["message"].as_str().unwrap().contains("no-such-thing"));

    let r = client()
        .delete(s.url("/api/v1.0/revisions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET"), "{allow}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 405);
    assert_eq!(body["reason"], "MethodNotAllowed");

    let r = client()
        .get(s.url("/api/v1.0/hooks/git"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));

    let (code, body) = s.get("/api/v1.0/revisions?limit=0").await;
    assert_eq!(code, 400);
    assert_eq!(body["kind"], "Status");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_head_is_reported_and_retried() {
    // A repository whose branch has no commit yet: the pass fails, the loop
    // survives, and the first commit is applied once a trigger arrives.
    let g = GitRepo::new();
    let db_dir = tempfile::tempdir().unwrap();
    let s = Server::start(g.path(), &db_dir.path().join("slipway.db"), NEVER).await;
    wait_for("a failed pass", || async {
        s.get("/api/v1.0/health/extended").await.1["last_pass"]["result"] == "error"
    })
    .await;
    assert_eq!(s.health().await, 503);
    g.add_example_site();
    let c1 = g.commit("site");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&c1, "applied").await;
    s.stop().await;
}
