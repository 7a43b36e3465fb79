//! Old keys stop working (issue 10, point 7): after a redeploy or a commit
//! that changes a node, the previous deployment's identity key and action
//! keys are refused (403) on every route that takes a key, reports to the
//! previous deployment's action ids included, and a node's latest status
//! comes from its current deployment only.

mod common;

use std::path::Path;
use std::time::Duration;

use common::pg::Backend;
use common::{client, GitRepo, Server, TIMEOUT};
use serde_json::{json, Value};
use slipway::keys::Secret;

const NEVER: Duration = Duration::from_secs(3600);

async fn start(backend: Backend) -> (GitRepo, tempfile::TempDir, Server, Secret) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let db = backend.db_named(dir.path(), "s.db");
    // The example site's BMCs do not exist: the power step of the deployment
    // tasks fails after this per-call timeout.
    let s = Server::start_with(repo.path(), &db, |cfg| {
        cfg.poll = NEVER;
        cfg.power.config.timeout = Duration::from_millis(300);
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;
    let secret = Secret::load(&common::pg::secret_for(&db)).unwrap();
    (repo, dir, s, secret)
}

async fn identity(s: &Server, host: &str) -> Value {
    let (code, id) = s.get(&format!("/api/v1.0/nodes/{host}/identity")).await;
    assert_eq!(code, 200, "{id}");
    id
}

fn key_of(id: &Value) -> String {
    id["identity_key"].as_str().unwrap().to_string()
}

/// The node's signalling actions: (action id, name).
fn signalling(id: &Value) -> Vec<(String, String)> {
    id["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["signaling"] == true)
        .map(|a| {
            (
                a["action_id"].as_str().unwrap().to_string(),
                a["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn get_code(s: &Server, path: &str, key: &str) -> u16 {
    client()
        .get(s.url(path))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn report(s: &Server, route: &str, action_id: &str, key: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(s.url(&format!("/api/v1.0/{route}/{action_id}")))
        .header("X-Bootaction-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

const PROGRESS: &str = r#"{"details":[{"message":"step","error":false}]}"#;
const SUCCESS: &str = r#"{"status":"Success","details":[{"message":"done","error":false}]}"#;

/// Every key of deployment `old` is refused on every route that takes one;
/// `new`'s are accepted.
async fn old_keys_refused_new_accepted(s: &Server, secret: &Secret, old: &Value, new: &Value) {
    let host = old["hostname"].as_str().unwrap();
    assert_ne!(old["deployment"], new["deployment"], "a new deployment");
    let (old_key, new_key) = (key_of(old), key_of(new));
    for path in [
        format!("/api/v1.0/bootactions/nodes/{host}/units"),
        format!("/api/v1.0/bootactions/nodes/{host}/files"),
        format!("/api/v1.0/bootactions/nodes/{host}/pkg_list"),
        format!("/api/v1.0/bootactions/nodes/{host}/all"),
        format!("/api/v1.0/bootdata/{host}/units"),
        format!("/api/v1.0/bootdata/{host}/files"),
    ] {
        assert_eq!(get_code(s, &path, &old_key).await, 403, "old key on {path}");
        assert_eq!(get_code(s, &path, &new_key).await, 200, "new key on {path}");
    }
    let old_actions = signalling(old);
    assert!(!old_actions.is_empty());
    for (aid, name) in &old_actions {
        for route in ["bootactions", "bootaction"] {
            for (what, key) in [
                ("its own action key", secret.action_key(aid)),
                ("the old identity key", old_key.clone()),
                ("the new identity key", new_key.clone()),
            ] {
                let (code, body) = report(s, route, aid, &key, PROGRESS).await;
                assert_eq!(
                    code, 403,
                    "{name} ({aid}) of the old deployment with {what}: {body}"
                );
                assert_eq!(body["kind"], "Status", "{body}");
            }
        }
        // The key a node of the old deployment holds gets told why.
        let (_, body) = report(s, "bootactions", aid, &secret.action_key(aid), PROGRESS).await;
        assert!(
            body["message"].as_str().unwrap().contains("which ended"),
            "{body}"
        );
    }
    for (aid, name) in signalling(new) {
        let (code, body) = report(s, "bootactions", &aid, &secret.action_key(&aid), PROGRESS).await;
        assert_eq!(code, 200, "{name} of the new deployment: {body}");
    }
}

/// The node's boot-action counts in `/nodes/{host}`.
async fn counts(s: &Server, host: &str) -> Value {
    let (code, n) = s.get(&format!("/api/v1.0/nodes/{host}")).await;
    assert_eq!(code, 200, "{n}");
    n["boot_actions"].clone()
}

/// Runs a deployment task on one node and waits for its success.
async fn task(s: &Server, action: &str, host: &str) {
    let r = client()
        .post(s.url("/api/v1.0/tasks"))
        .json(&json!({
            "action": action,
            "node_filter": {"filter_set_type": "union", "filter_set": [
                {"filter_type": "union", "node_names": [host]}]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (_, t) = s.get(&format!("/api/v1.0/tasks/{id}")).await;
        if t["status"] == "complete" {
            // The deployment step succeeds; the power step fails honestly (the
            // example site's BMCs do not exist), so the node, and the task, fail.
            let m: Vec<&Value> = t["result"]["details"]["messageList"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["context_type"] == "node" && m["context"] == host)
                .collect();
            assert_eq!(m.len(), 2, "{t}");
            assert_eq!(m[0]["error"], false, "{t}");
            assert_eq!(m[1]["error"], true, "{t}");
            assert!(
                m[1]["message"].as_str().unwrap().contains(": power "),
                "{t}"
            );
            assert_eq!(t["result"]["status"], "failure", "{t}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "task {id}: {t}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn after_a_redeploy_the_previous_deployments_keys_are_refused_on_every_route(
    backend: Backend,
) {
    let (_repo, _dir, s, secret) = start(backend).await;
    let first = identity(&s, "n00001").await;
    // The first deployment finishes one action and reports on the others.
    let actions = signalling(&first);
    let (done, _) = &actions[0];
    let (code, b) = report(&s, "bootactions", done, &secret.action_key(done), SUCCESS).await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(counts(&s, "n00001").await["by_status"]["Success"], 1);

    let mut old = first;
    for action in ["deploy_nodes", "redeploy_server"] {
        task(&s, action, "n00001").await;
        let new = identity(&s, "n00001").await;
        old_keys_refused_new_accepted(&s, &secret, &old, &new).await;
        // Its status is the current deployment's only: nothing finished.
        let c = counts(&s, "n00001").await;
        assert_eq!(c["total"], new["actions"].as_array().unwrap().len(), "{c}");
        assert!(c["by_status"].get("Success").is_none(), "{c}");
        // The latest build data holds the current deployment's reports only.
        let (_, latest) = s.get("/api/v1.0/nodes/n00001/builddata?latest=true").await;
        for r in latest.as_array().unwrap() {
            assert_eq!(r["task_id"], new["deployment"], "{r}");
        }
        // History keeps the earlier reports.
        let (_, all) = s.get("/api/v1.0/nodes/n00001/builddata").await;
        assert!(all
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["task_id"] == old["deployment"]));
        old = new;
    }

    // destroy_nodes: the current keys go too.
    task(&s, "destroy_nodes", "n00001").await;
    let after = identity(&s, "n00001").await;
    old_keys_refused_new_accepted(&s, &secret, &old, &after).await;
    s.stop().await;
}

async fn after_a_commit_changing_a_node_its_previous_keys_are_refused_on_every_route(
    backend: Backend,
) {
    let (repo, _dir, s, secret) = start(backend).await;
    let before = identity(&s, "n00001").await;
    let other = identity(&s, "n00002").await;
    let f = repo.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("02:bd:50:00:00:01"));
    std::fs::write(&f, text.replace("02:bd:50:00:00:01", "02:bd:50:00:00:11")).unwrap();
    let c2 = repo.commit("change n00001");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&c2, "applied").await;
    let after = identity(&s, "n00001").await;
    old_keys_refused_new_accepted(&s, &secret, &before, &after).await;
    // A node the commit did not change keeps its deployment and keys.
    assert_eq!(identity(&s, "n00002").await, other);
    s.stop().await;
}

#[test]
fn an_ended_deployments_actions_take_no_report_in_the_store() {
    use slipway::state::{DeploymentInputs, ReportOutcome, Store};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&Path::new(dir.path()).join("s.db")).unwrap();
    let actions = [("base-config".to_string(), true)];
    let h1 = "a".repeat(64);
    let inputs = DeploymentInputs {
        inputs_hash: &h1,
        design_ref: "c1",
        committed_at: 0,
        actions: &actions,
    };
    let (_, a1) = store
        .ensure_deployment("n1", &inputs, 10, &mut slipway::keys::new_ulid)
        .unwrap();
    assert!(a1[0].ended.is_none());
    // Inputs change: a new deployment; the old one's action is ended.
    let h2 = "b".repeat(64);
    let inputs2 = DeploymentInputs {
        inputs_hash: &h2,
        ..inputs
    };
    let (_, a2) = store
        .ensure_deployment("n1", &inputs2, 20, &mut slipway::keys::new_ulid)
        .unwrap();
    let old = store.boot_action(&a1[0].action_id).unwrap().unwrap();
    assert_eq!(old.ended, Some(20));
    assert!(matches!(
        store
            .report_boot_action(&old.action_id, None, &[], 30)
            .unwrap(),
        ReportOutcome::Ended(_)
    ));
    assert!(store
        .boot_action_details(&old.action_id)
        .unwrap()
        .is_empty());
    assert!(matches!(
        store
            .report_boot_action(&a2[0].action_id, None, &[], 30)
            .unwrap(),
        ReportOutcome::Recorded(_)
    ));
    // Only the current deployment counts.
    let counts = store.boot_action_counts().unwrap();
    assert_eq!(counts["n1"].values().sum::<u64>(), 1);
}

crate::per_backend_async!(
    after_a_redeploy_the_previous_deployments_keys_are_refused_on_every_route,
    after_a_commit_changing_a_node_its_previous_keys_are_refused_on_every_route,
);
