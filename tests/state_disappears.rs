//! State that disappears is noticed (issue 10, point 8): a database file
//! removed or replaced under a running server, a missing secret beside a
//! database that holds deployments, a corrupt object of the applied commit
//! and a repository missing at start-up. Each condition is made for real.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{client, wait_for, GitRepo, Server};
use serde_json::{json, Value};

const NEVER: Duration = Duration::from_secs(3600);

async fn start_site() -> (GitRepo, tempfile::TempDir, Server, String) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(repo.path(), &dir.path().join("s.db"), NEVER).await;
    s.wait_status(&commit, "applied").await;
    (repo, dir, s, commit)
}

async fn identity(s: &Server, host: &str) -> (u16, Value) {
    s.get(&format!("/api/v1.0/nodes/{host}/identity")).await
}

/// The first signalling action of an identity view, with its key.
fn first_action(id: &Value, db: &Path) -> (String, String) {
    let a = id["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["signaling"] == true)
        .unwrap()["action_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = slipway::keys::Secret::load(&slipway::keys::default_secret_path(db)).unwrap();
    let key = secret.action_key(&a);
    (a, key)
}

async fn report(s: &Server, action_id: &str, key: &str) -> reqwest::Response {
    client()
        .post(s.url(&format!("/api/v1.0/bootactions/{action_id}")))
        .header("X-Bootaction-Key", key)
        .body(r#"{"details":[{"message":"step","error":false}]}"#)
        .send()
        .await
        .unwrap()
}

async fn get_units(s: &Server, host: &str, key: &str) -> reqwest::Response {
    client()
        .get(s.url(&format!("/api/v1.0/bootactions/nodes/{host}/units")))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap()
}

/// A 503 Drydock Status with `reason` and a message containing `says`.
async fn assert_503(r: reqwest::Response, reason: &str, says: &str) {
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(says),
        "{says}: {body}"
    );
}

async fn health(s: &Server) -> (u16, Value) {
    let r = client()
        .get(s.url("/api/v1.0/health"))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Removes the database file (`replace`: puts another file in its place).
fn lose_database(db: &Path, replace: bool) {
    if replace {
        let other = db.with_extension("other");
        std::fs::copy(db, &other).unwrap();
        std::fs::rename(&other, db).unwrap();
    } else {
        std::fs::remove_file(db).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_removed_or_replaced_under_the_server_refuses_writes_with_503() {
    for (replace, says) in [(false, "was removed"), (true, "was replaced")] {
        let (repo, dir, s, _) = start_site().await;
        let db = dir.path().join("s.db");
        let (_, id) = identity(&s, "n00001").await;
        let key = id["identity_key"].as_str().unwrap().to_string();
        let (aid, akey) = first_action(&id, &db);
        assert_eq!(report(&s, &aid, &akey).await.status().as_u16(), 200);

        lose_database(&db, replace);
        // A status report is not acknowledged into a file nobody reads.
        let r = report(&s, &aid, &akey).await;
        assert!(r.headers().contains_key("retry-after"));
        assert_503(r, "DatabaseReplaced", says).await;
        // Health says so, plain and extended.
        let (code, body) = health(&s).await;
        assert_eq!(code, 503);
        assert_eq!(body["reason"], "DatabaseReplaced", "{body}");
        let (code, ext) = s.get("/api/v1.0/health/extended").await;
        assert_eq!(code, 503);
        assert_eq!(ext["status"], "degraded", "{ext}");
        assert!(
            ext["problem"]["message"].as_str().unwrap().contains(says),
            "{ext}"
        );
        // Tasks (an API write) are refused too.
        let r = client()
            .post(s.url("/api/v1.0/tasks"))
            .json(&json!({"action": "validate_design"}))
            .send()
            .await
            .unwrap();
        assert_503(r, "DatabaseReplaced", says).await;
        // A new head is not applied into it.
        change_n00001(&repo);
        let c2 = repo.commit("a change after the loss");
        assert_eq!(s.hook().await, 202);
        wait_for("the pass to refuse the apply", || async {
            let (_, ext) = s.get("/api/v1.0/health/extended").await;
            ext["last_pass"]["result"] == "error"
                && ext["last_pass"]["detail"].as_str().unwrap().contains(says)
        })
        .await;
        let (_, ext) = s.get("/api/v1.0/health/extended").await;
        assert_ne!(ext["applied_revision"]["commit"], c2.as_str());
        // What is in memory is still served to nodes.
        assert_eq!(get_units(&s, "n00001", &key).await.status().as_u16(), 200);
        s.stop().await;
    }
}

/// Changes n00001's boot MAC (a change to that node only).
fn change_n00001(repo: &GitRepo) {
    let f = repo.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("02:bd:50:00:00:01"));
    std::fs::write(&f, text.replace("02:bd:50:00:00:01", "02:bd:50:00:00:21")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_beside_a_database_with_deployments_is_refused_at_start() {
    let (repo, dir, s, _) = start_site().await;
    let db = dir.path().join("s.db");
    let (_, before) = identity(&s, "n00001").await;
    s.stop().await;

    let secret = slipway::keys::default_secret_path(&db);
    let bytes = std::fs::read(&secret).unwrap();
    std::fs::remove_file(&secret).unwrap();
    let e = Server::start_with(repo.path(), &db, |_| {})
        .await
        .err()
        .expect("refused without its secret")
        .to_string();
    assert!(
        e.contains(&secret.display().to_string())
            && e.contains("is missing")
            && e.contains("deployment")
            && e.contains("restore it"),
        "{e}"
    );
    assert!(!secret.exists(), "no new secret was made");
    // Another --secret that does not exist either: the same.
    let elsewhere = dir.path().join("new.secret");
    let e = Server::start_with(repo.path(), &db, |cfg| cfg.secret = Some(elsewhere.clone()))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("is missing"), "{e}");
    assert!(!elsewhere.exists());

    // Restored: every key is what it was.
    std::fs::write(&secret, bytes).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let s = Server::start(repo.path(), &db, NEVER).await;
    assert_eq!(identity(&s, "n00001").await.1, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_object_of_the_applied_commit_at_start_is_reported_and_the_database_served() {
    let (repo, dir, s, commit) = start_site().await;
    let db = dir.path().join("s.db");
    let (_, id) = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    let (aid, akey) = first_action(&id, &db);
    s.stop().await;

    // Corrupt the loose object of one design file of the applied commit.
    let oid = repo.git(&["rev-parse", &format!("{commit}:designs/region.yaml")]);
    let object = repo
        .path()
        .join(".git/objects")
        .join(&oid[..2])
        .join(&oid[2..]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&object, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::write(&object, b"not a zlib stream").unwrap();

    let s = Server::start(repo.path(), &db, NEVER).await;
    wait_for("health to report the unreadable revision", || async {
        health(&s).await.0 == 503
    })
    .await;
    let (_, body) = health(&s).await;
    assert_eq!(body["reason"], "RevisionUnavailable", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&commit),
        "{body}"
    );
    let (_, ext) = s.get("/api/v1.0/health/extended").await;
    assert_eq!(ext["serving"]["state"], "unavailable", "{ext}");
    assert_eq!(ext["serving"]["commit"], commit.as_str(), "{ext}");
    // Boot data needs the design: a clear 503, not a 500.
    let r = get_units(&s, "n00001", &key).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_503(r, "RevisionUnavailable", "cannot be read").await;
    // What the database holds is served: the deployment and its reports.
    assert_eq!(identity(&s, "n00001").await, (200, id));
    assert_eq!(report(&s, &aid, &akey).await.status().as_u16(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_missing_at_start_serves_the_database_until_it_is_back() {
    let (repo, dir, s, _) = start_site().await;
    let db = dir.path().join("s.db");
    let (_, id) = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    let (aid, akey) = first_action(&id, &db);
    s.stop().await;

    let away = dir.path().join("moved-repo");
    std::fs::rename(repo.path(), &away).unwrap();
    let s = Server::start(repo.path(), &db, NEVER).await;
    wait_for("health to report the missing repository", || async {
        health(&s).await.0 == 503
    })
    .await;
    assert_eq!(health(&s).await.1["reason"], "RevisionUnavailable");
    assert_eq!(identity(&s, "n00001").await, (200, id));
    assert_eq!(report(&s, &aid, &akey).await.status().as_u16(), 200);
    assert_eq!(get_units(&s, "n00001", &key).await.status().as_u16(), 503);

    // Back in place: the next pass reads it and boot data is served again.
    std::fs::rename(&away, repo.path()).unwrap();
    assert_eq!(s.hook().await, 202);
    wait_for("health 204 once the repository is back", || async {
        health(&s).await.0 == 204
    })
    .await;
    assert_eq!(get_units(&s, "n00001", &key).await.status().as_u16(), 200);
    s.stop().await;
}
