//! `slipway serve` end to end: real git repositories (git CLI), a real SQLite
//! file, the real server on `127.0.0.1:0`, HTTP through reqwest. Every wait is
//! bounded by `common::TIMEOUT`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::pg::Backend;
use common::{client, wait_for, GitRepo, Server, BAD_YAML};
use slipway::design::Kind;
use slipway::plan::Snapshot;
use slipway::state::Store;

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

async fn health_is_503_until_a_valid_commit_is_applied(backend: Backend) {
    let g = GitRepo::new();
    g.write("designs/broken.yaml", BAD_YAML);
    let bad = g.commit("broken first design");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
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

async fn invalid_commit_never_applies_and_a_fix_supersedes_the_old_one(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
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

async fn a_burst_of_commits_applies_the_newest_head_only(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    let c0 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
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

async fn restart_serves_at_once_and_does_not_reapply(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
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

async fn webhook_triggers_a_pass_without_the_poll_or_the_watcher(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
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

async fn api_errors_are_drydock_status_objects(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let s = Server::start(g.path(), &backend.db(db_dir.path()), NEVER).await;

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

async fn an_unreadable_head_is_reported_and_retried(backend: Backend) {
    // A repository whose branch has no commit yet: the pass fails, the loop
    // survives, and the first commit is applied once a trigger arrives.
    let g = GitRepo::new();
    let db_dir = tempfile::tempdir().unwrap();
    let s = Server::start(g.path(), &backend.db(db_dir.path()), NEVER).await;
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

/// The real `slipway` binary serving `repo` on a fresh local port.
struct Process {
    child: std::process::Child,
    base: String,
    /// stderr lines, as they arrive.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Process {
    fn spawn(repo: &Path, db: &Path) -> Process {
        // The binary needs an explicit port: take a free one from the kernel.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["serve", "--repo"])
            .arg(repo)
            .arg("--db")
            .arg(db)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll", "3600"])
            .env("SLIPWAY_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn slipway");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[slipway] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            lines,
        }
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + common::TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }

    /// Waits (bounded) for the process to exit and returns its code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + common::TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(std::time::Instant::now() < deadline, "slipway did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Never leave a server behind, even when an assertion failed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_apply_leaves_the_database_consistent() {
    let g = GitRepo::new();
    g.add_gen_site(&["--nodes", "10000"]);
    let commit = g.commit("large site");
    // What a complete apply must leave: the design's own counts.
    let repo = slipway::source::Repo::discover(g.path()).unwrap();
    let v = slipway::validate(&repo.design_files(&commit, None).unwrap());
    assert!(v.is_valid());
    let design = v.design.unwrap();
    let (want_docs, want_nodes) = (design.documents.len(), design.nodes.len());
    assert_eq!(want_nodes, 10_000);

    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    let mut p = Process::spawn(g.path(), &db);
    p.wait_log("planned; applying");
    p.child.kill().unwrap(); // SIGKILL on unix: no chance to clean up.
    p.child.wait().unwrap();
    drop(p);

    // All or nothing: either the whole revision is there or none of it.
    let store = Store::open(&db).unwrap();
    let snap = store.snapshot().unwrap();
    match store.applied_revision().unwrap() {
        Some(rec) => {
            assert_eq!(rec.revision.commit, commit);
            assert_eq!(snap.documents.len(), want_docs);
            assert_eq!(snap.nodes.len(), want_nodes);
        }
        None => {
            assert!(snap.documents.is_empty(), "half an apply survived");
            assert!(snap.nodes.is_empty(), "half an apply survived");
            assert!(store.revisions(10).unwrap().is_empty());
        }
    }
    drop(store);

    // A restart finishes the job and serves it.
    let mut p = Process::spawn(g.path(), &db);
    let health = format!("{}/api/v1.0/health", p.base);
    wait_for("the restarted server to serve", || async {
        matches!(client().get(&health).send().await, Ok(r) if r.status().as_u16() == 204)
    })
    .await;
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.applied_revision().unwrap().unwrap().revision.commit,
        commit
    );
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.documents.len(), want_docs);
    assert_eq!(snap.nodes.len(), want_nodes);
    drop(store);

    // SIGTERM stops it cleanly.
    let pid = p.child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(p.wait_exit(), Some(0));
}

#[test]
fn a_database_from_a_newer_slipway_exits_with_code_2() {
    let g = GitRepo::new();
    g.add_example_site();
    g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("slipway.db");
    drop(Store::open(&db).unwrap());
    // Bump `PRAGMA user_version` (big-endian u32 at offset 60 of the header)
    // as a future slipway's migration would.
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[60..64].copy_from_slice(&9_999u32.to_be_bytes());
    std::fs::write(&db, bytes).unwrap();
    assert!(matches!(
        Store::open(&db),
        Err(slipway::state::StateError::NewerSchema { .. })
    ));

    let mut p = Process::spawn(g.path(), &db);
    assert_eq!(p.wait_exit(), Some(2));
    // The reader thread ends when the process's stderr closes.
    let mut log = String::new();
    while let Ok(l) = p.lines.recv_timeout(common::TIMEOUT) {
        log.push_str(&l);
        log.push('\n');
    }
    assert!(log.contains("newer"), "{log}");
}

async fn a_commit_that_deletes_the_design_is_invalid_not_an_empty_apply(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
    let s = Server::start(g.path(), &db, NEVER).await;
    s.wait_status(&c1, "applied").await;
    let before = snapshot(&db);

    g.git(&["rm", "-rq", "designs"]);
    g.write("README.md", "nothing here\n");
    let c2 = g.commit("remove the design");
    s.wait_status(&c2, "invalid").await;
    let revs = s.revisions().await;
    let rec = revs.iter().find(|r| r["commit"] == c2.as_str()).unwrap();
    assert_eq!(rec["messages"][0]["code"], "SW100", "{rec}");
    assert_eq!(s.health().await, 204);
    assert_eq!(snapshot(&db), before);
    s.stop().await;
}

async fn resetting_the_branch_to_an_older_commit_serves_that_commit_again(backend: Backend) {
    let g = GitRepo::new();
    g.add_example_site();
    let c1 = g.commit("site");
    let db_dir = tempfile::tempdir().unwrap();
    let db = backend.db(db_dir.path());
    let s = Server::start(g.path(), &db, NEVER).await;
    s.wait_status(&c1, "applied").await;
    let at_c1 = snapshot(&db);

    set_region_threshold(&g, 42);
    let c2 = g.commit("change");
    s.wait_status(&c2, "applied").await;

    // A rollback: what is served must follow the branch, even to a commit
    // that was applied (and superseded) before.
    g.git(&["reset", "-q", "--hard", &c1]);
    s.wait_status(&c1, "applied").await;
    assert_eq!(s.status_of(&c2).await.as_deref(), Some("superseded"));
    let now = snapshot(&db);
    assert_eq!(now.documents, at_c1.documents);
    assert_eq!(now.nodes, at_c1.nodes);
    s.stop().await;
}

async fn follows_the_configured_branch_and_design_dir_only(backend: Backend) {
    let g = GitRepo::new();
    // The design lives in site/, not designs/; main moves ahead of deploy.
    common::copy_dir(&common::example_site(), &g.path().join("site"));
    let c1 = g.commit("site");
    g.git(&["branch", "deploy"]);
    g.write("site/zz-broken.yaml", BAD_YAML);
    let on_main = g.commit("work in progress on main");

    let db_dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(g.path(), &backend.db(db_dir.path()), |cfg| {
        cfg.branch = Some("deploy".into());
        cfg.design_dir = Some("site".into());
    })
    .await
    .unwrap();
    s.wait_status(&c1, "applied").await;
    assert_eq!(s.status_of(&on_main).await, None, "main is not followed");

    // Promote a fixed main to deploy: the watcher sees the ref move.
    g.remove("site/zz-broken.yaml");
    let fixed = g.commit("fixed on main");
    g.git(&["branch", "-f", "deploy", &fixed]);
    s.wait_status(&fixed, "applied").await;
    assert_eq!(
        s.status_of(&on_main).await,
        None,
        "never the head of deploy"
    );
    s.stop().await;
}

crate::per_backend_async!(
    health_is_503_until_a_valid_commit_is_applied,
    invalid_commit_never_applies_and_a_fix_supersedes_the_old_one,
    a_burst_of_commits_applies_the_newest_head_only,
    restart_serves_at_once_and_does_not_reapply,
    webhook_triggers_a_pass_without_the_poll_or_the_watcher,
    api_errors_are_drydock_status_objects,
    an_unreadable_head_is_reported_and_retried,
    a_commit_that_deletes_the_design_is_invalid_not_an_empty_apply,
    resetting_the_branch_to_an_older_commit_serves_that_commit_again,
    follows_the_configured_branch_and_design_dir_only,
);
