//! The operator API (validatedesign, nodefilter, nodes, tasks) against the real
//! server on `127.0.0.1:0` with real git repositories. Every wait is bounded.

mod common;

use std::path::Path;

use common::{client, GitRepo, Server, BAD_YAML};
use serde_json::{json, Value};

/// A repository whose `designs/` is a gen-site site (40 nodes, 4 racks).
fn gen_site_repo() -> GitRepo {
    let repo = GitRepo::new();
    repo.add_gen_site(&["--nodes", "40", "--racks", "4"]);
    repo
}

/// A started server on a committed gen-site repo, with the revision applied.
async fn started(repo: &GitRepo, db: &Path) -> (Server, String) {
    let commit = repo.commit("site");
    let s = Server::start(repo.path(), db, std::time::Duration::from_secs(3600)).await;
    s.wait_status(&commit, "applied").await;
    (s, commit)
}

async fn post(s: &Server, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = client()
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn post_json(s: &Server, path: &str, body: Value) -> (u16, Value) {
    post(s, path, body.to_string()).await
}

fn assert_status_json(v: &Value, code: u16) {
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["apiVersion"], "v1.0", "{v}");
    assert_eq!(v["code"], code, "{v}");
}

#[tokio::test]
async fn validatedesign_revisions_files_and_bad_refs() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let (s, commit) = started(&repo, &db).await;

    // A revision of the watched repository: full, short, branch.
    for href in [commit.clone(), commit[..8].to_string(), "main".to_string()] {
        let (code, v) = post_json(
            &s,
            "/api/v1.0/validatedesign",
            json!({"rel": "design", "href": href, "type": "application/x-yaml"}),
        )
        .await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["status"], "Success");
        assert_eq!(v["details"]["errorCount"], 0);
    }
    // Only href is required.
    let (code, _) = post_json(&s, "/api/v1.0/validatedesign", json!({"href": "main"})).await;
    assert_eq!(code, 200);

    // A directory with an invalid file: 400 with messages carrying `source`.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("bad.yaml"), BAD_YAML).unwrap();
    let href = format!("file://{}", bad.path().display());
    let (code, v) = post_json(&s, "/api/v1.0/validatedesign", json!({"href": href})).await;
    assert_eq!(code, 400, "{v}");
    assert_status_json(&v, 400);
    assert_eq!(v["status"], "Failure");
    let msgs = v["details"]["messageList"].as_array().unwrap();
    assert!(
        msgs.iter()
            .any(|m| m["error"] == true && m["source"]["file"] == "bad.yaml"),
        "{v}"
    );
    // A single file.
    let href = format!("file://{}", bad.path().join("bad.yaml").display());
    let (code, _) = post_json(&s, "/api/v1.0/validatedesign", json!({"href": href})).await;
    assert_eq!(code, 400);

    // References that cannot be read: 400 Status with a reason, never 500.
    for (href, needle) in [
        (
            "deckhand+http://deckhand/api/v1.0/revisions/1/rendered-documents",
            "not supported",
        ),
        ("nosuchbranch", "no such revision"),
        ("file:///nonexistent/slipway/dir", "cannot read"),
        ("file://relative/dir", "absolute"),
        ("", "empty"),
    ] {
        let (code, v) = post_json(&s, "/api/v1.0/validatedesign", json!({"href": href})).await;
        assert_eq!(code, 400, "{href}: {v}");
        assert_status_json(&v, 400);
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{href}: {v}"
        );
    }
    // Malformed bodies.
    for body in ["", "{", "[]", "{\"href\": 5}", "{\"rel\": \"design\"}"] {
        let (code, v) = post(&s, "/api/v1.0/validatedesign", body).await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_status_json(&v, 400);
    }
    // Wrong method.
    let r = client()
        .get(s.url("/api/v1.0/validatedesign"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    s.stop().await;
}

async fn filter(s: &Server, f: Value) -> Vec<String> {
    let (code, v) = post_json(
        s,
        "/api/v1.0/nodefilter",
        json!({"design_ref": "main", "node_filter": f}),
    )
    .await;
    assert_eq!(code, 200, "{f}: {v}");
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn nodefilter_every_kind() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let (s, _) = started(&repo, &db).await;

    // No filter: every node.
    let (code, v) = post_json(&s, "/api/v1.0/nodefilter", json!({"design_ref": "main"})).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 40);
    assert_eq!(v[0], "n00001");

    let one = |entry: Value| json!({"filter_set_type": "union", "filter_set": [entry]});
    assert_eq!(
        filter(
            &s,
            one(json!({"filter_type": "union", "node_names": ["n00002", "n00007"]}))
        )
        .await,
        ["n00002", "n00007"]
    );
    assert_eq!(
        filter(
            &s,
            one(json!({"filter_type": "union", "node_tags": ["control"]}))
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        filter(
            &s,
            one(json!({"filter_type": "union", "node_tags": ["storage"]}))
        )
        .await
        .len(),
        10
    );
    assert_eq!(
        filter(
            &s,
            one(json!({"filter_type": "union", "node_labels": {"role": "control"}}))
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        filter(
            &s,
            one(json!({"filter_type": "union", "rack_names": ["rack01"]}))
        )
        .await
        .len(),
        10
    );
    // rack01 and rack04 carry zone z1.
    let z1 = filter(
        &s,
        one(json!({"filter_type": "union", "rack_labels": {"zone": "z1"}})),
    )
    .await;
    let r14 = filter(
        &s,
        one(json!({"filter_type": "union", "rack_names": ["rack01", "rack04"]})),
    )
    .await;
    assert_eq!(z1.len(), 20);
    assert_eq!(z1, r14);
    // Intersection inside an entry, and of entries.
    let storage_rack01 = filter(
        &s,
        one(json!({"filter_type": "intersection", "rack_names": ["rack01"], "node_tags": ["storage"]})),
    )
    .await;
    assert_eq!(storage_rack01.len(), 2);
    let both = filter(
        &s,
        json!({"filter_set_type": "intersection", "filter_set": [
            {"filter_type": "union", "rack_names": ["rack01"]},
            {"filter_type": "union", "node_tags": ["storage"]}
        ]}),
    )
    .await;
    assert_eq!(both, storage_rack01);
    let either = filter(
        &s,
        json!({"filter_set_type": "union", "filter_set": [
            {"filter_type": "union", "rack_names": ["rack02"]},
            {"filter_type": "union", "node_labels": {"zone": "z3"}}
        ]}),
    )
    .await;
    assert_eq!(either.len(), 20);

    // Malformed filters and references: 400 saying why.
    for (body, needle) in [
        (json!({"node_filter": null}), "design_ref"),
        (json!({"design_ref": ""}), "design_ref"),
        (json!({"design_ref": 7}), "design_ref"),
        (json!({"design_ref": "nosuch"}), "no such revision"),
        (json!({"design_ref": "main", "node_filter": []}), "object"),
        (
            json!({"design_ref": "main", "node_filter": {"filter_set_type": "union", "bogus": 1}}),
            "bogus",
        ),
        (
            json!({"design_ref": "main", "node_filter": {"filter_set_type": "some"}}),
            "filter_set_type",
        ),
        (
            json!({"design_ref": "main", "node_filter": one(json!({"filter_type": "xor"}))}),
            "filter_type",
        ),
        (
            json!({"design_ref": "main", "node_filter": one(json!({"filter_type": "union", "node_names": "n1"}))}),
            "node_names",
        ),
        (
            json!({"design_ref": "main", "node_filter": one(json!({"filter_type": "union", "rack_labels": ["z1"]}))}),
            "rack_labels",
        ),
        (
            json!({"design_ref": "main", "node_filter": one(json!({"filter_type": "union", "extra": []}))}),
            "extra",
        ),
    ] {
        let (code, v) = post_json(&s, "/api/v1.0/nodefilter", body.clone()).await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_status_json(&v, 400);
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let (code, v) = post(&s, "/api/v1.0/nodefilter", "{not json").await;
    assert_eq!(code, 400);
    assert_status_json(&v, 400);
    s.stop().await;
}

#[tokio::test]
async fn nodes_of_the_applied_revision() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let (s, commit) = started(&repo, &db).await;
    let (code, v) = s.get("/api/v1.0/nodes").await;
    assert_eq!(code, 200, "{v}");
    let nodes = v.as_array().unwrap();
    assert_eq!(nodes.len(), 40);
    let n = &nodes[0];
    assert_eq!(n["hostname"], "n00001");
    assert_eq!(n["status"], "deployed-design");
    assert_eq!(n["revision"], commit);
    assert!(!n["addresses"].as_object().unwrap().is_empty(), "{n}");
    // The apply made the node's deployment: its boot actions are counted.
    let (code, id) = s.get("/api/v1.0/nodes/n00001/identity").await;
    assert_eq!(code, 200, "{id}");
    let actions = id["actions"].as_array().unwrap().len();
    assert!(actions > 0, "{id}");
    assert_eq!(n["boot_actions"]["total"], actions as u64, "{n}");

    let (code, mut one) = s.get("/api/v1.0/nodes/n00001").await;
    assert_eq!(code, 200);
    // The one node's view adds its Ironic agent (none has looked it up).
    assert_eq!(one["agent"], Value::Null, "{one}");
    one.as_object_mut().unwrap().remove("agent");
    assert_eq!(&one, n);
    assert_eq!(n["uuid"].as_str().map(str::len), Some(36), "{n}");
    let (code, v) = s.get("/api/v1.0/nodes/nosuch").await;
    assert_eq!(code, 404);
    assert_status_json(&v, 404);
    let r = client()
        .post(s.url("/api/v1.0/nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "GET,HEAD");
    s.stop().await;
}

/// Polls a task until it is complete (bounded); returns every status seen.
/// A node task on one node whose BMC does not exist: its first step (`step`)
/// succeeded, its power step failed, so the task failed for that node.
fn assert_node_steps(done: &Value, node: &str, step: &str) {
    let list = done["result"]["details"]["messageList"].as_array().unwrap();
    let mine: Vec<&Value> = list
        .iter()
        .filter(|m| m["context_type"] == "node" && m["context"] == node)
        .collect();
    assert_eq!(mine.len(), 2, "{done}");
    assert_eq!(mine[0]["error"], false, "{done}");
    assert!(
        mine[0]["message"].as_str().unwrap().contains(step),
        "{done}"
    );
    assert_eq!(mine[1]["error"], true, "{done}");
    assert!(
        mine[1]["message"].as_str().unwrap().contains(": power "),
        "{done}"
    );
    assert_eq!(done["result"]["status"], "failure", "{done}");
    assert_eq!(done["result"]["failures"], json!([node]), "{done}");
}

async fn wait_task(s: &Server, id: &str) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        let (code, v) = s.get(&format!("/api/v1.0/tasks/{id}")).await;
        assert_eq!(code, 200, "{v}");
        let st = v["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "complete" {
            return (seen, v);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task {id} did not complete: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn tasks_run_and_report() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let commit = repo.commit("site");
    // The gen-site BMCs do not exist: node power fails after this timeout.
    let s = Server::start_with(repo.path(), &db, |cfg| {
        cfg.power.config.timeout = std::time::Duration::from_millis(300);
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;

    // validate_design on the applied revision (no design_ref).
    let (code, t) = post_json(&s, "/api/v1.0/tasks", json!({"action": "validate_design"})).await;
    assert_eq!(code, 201, "{t}");
    assert_eq!(t["kind"], "Task");
    assert_eq!(t["status"], "queued");
    let id = t["task_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let (seen, done) = wait_task(&s, &id).await;
    for st in &seen {
        assert!(
            ["queued", "running", "complete"].contains(&st.as_str()),
            "{seen:?}"
        );
    }
    assert_eq!(done["result"]["status"], "success", "{done}");
    assert!(!done["updated"].is_null());

    // verify_site with a design_ref that is invalid: failure with messages.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("bad.yaml"), BAD_YAML).unwrap();
    let href = format!("file://{}", bad.path().display());
    let (code, t) = post_json(
        &s,
        "/api/v1.0/tasks",
        json!({"action": "verify_site", "design_ref": href}),
    )
    .await;
    assert_eq!(code, 201);
    let (_, done) = wait_task(&s, t["task_id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "failure", "{done}");
    assert!(done["result"]["details"]["errorCount"].as_u64().unwrap() >= 1);

    // prepare_site: valid, plan reported, nothing applied.
    let (code, t) = post_json(
        &s,
        "/api/v1.0/tasks",
        json!({"action": "prepare_site", "design_ref": commit}),
    )
    .await;
    assert_eq!(code, 201);
    let (_, done) = wait_task(&s, t["task_id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "success", "{done}");
    let list = done["result"]["details"]["messageList"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|m| m["message"].as_str().unwrap().starts_with("plan:")),
        "{done}"
    );

    // Deployment actions act on the selected nodes' deployments.
    let one = json!({"filter_set_type": "union", "filter_set": [{"filter_type": "union", "node_names": ["n00001"]}]});
    let (code, before) = s.get("/api/v1.0/nodes/n00001/identity").await;
    assert_eq!(code, 200, "{before}");
    for action in ["deploy_nodes", "redeploy_server"] {
        let (code, t) = post_json(
            &s,
            "/api/v1.0/tasks",
            json!({"action": action, "node_filter": one}),
        )
        .await;
        assert_eq!(code, 201, "{action}: {t}");
        let (_, done) = wait_task(&s, t["task_id"].as_str().unwrap()).await;
        // The new deployment is made; PXE once fails (no such BMC), so the
        // node, and with it the task, failed.
        assert_node_steps(&done, "n00001", "new deployment");
    }
    let (_, after) = s.get("/api/v1.0/nodes/n00001/identity").await;
    assert_ne!(
        before["deployment"], after["deployment"],
        "deploy_nodes starts a new deployment"
    );
    assert_ne!(before["identity_key"], after["identity_key"]);
    let (_, other) = s.get("/api/v1.0/nodes/n00002/identity").await;
    let (code, t) = post_json(
        &s,
        "/api/v1.0/tasks",
        json!({"action": "destroy_nodes", "node_filter": one}),
    )
    .await;
    assert_eq!(code, 201, "{t}");
    let (_, done) = wait_task(&s, t["task_id"].as_str().unwrap()).await;
    assert_node_steps(&done, "n00001", "deployment revoked");
    // The revoked deployment's keys are refused: identity key for boot data,
    // and for its action's status reports.
    let key = after["identity_key"].as_str().unwrap();
    let r = reqwest::Client::new()
        .get(s.url("/api/v1.0/bootactions/nodes/n00001/units"))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let revoked_action = after["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["signaling"] == true)
        .unwrap();
    let r = reqwest::Client::new()
        .post(s.url(&format!(
            "/api/v1.0/bootactions/{}",
            revoked_action["action_id"].as_str().unwrap()
        )))
        .header("X-Bootaction-Key", key)
        .json(&json!({"details": [{"message": "late", "error": false}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A node outside the filter keeps its deployment.
    let (_, still) = s.get("/api/v1.0/nodes/n00002/identity").await;
    assert_eq!(other["deployment"], still["deployment"]);

    // Node actions through the BMC: one failed node (its BMC does not exist).
    for action in ["prepare_nodes", "verify_nodes"] {
        let (code, t) = post_json(
            &s,
            "/api/v1.0/tasks",
            json!({"action": action, "design_ref": "main", "node_filter": one}),
        )
        .await;
        assert_eq!(code, 201, "{action}: {t}");
        let (_, done) = wait_task(&s, t["task_id"].as_str().unwrap()).await;
        assert_eq!(done["result"]["status"], "failure", "{action}: {done}");
        assert_eq!(done["result"]["failures"], json!(["n00001"]), "{done}");
        let list = done["result"]["details"]["messageList"].as_array().unwrap();
        assert!(
            list.iter().any(|m| m["context_type"] == "node"
                && m["context"] == "n00001"
                && m["error"] == true
                && m["message"].as_str().unwrap().contains(": power ")),
            "{done}"
        );
    }
    // Node actions slipway cannot carry out: complete with failure naming what is missing.
    for action in ["relabel_nodes", "configure_hardware"] {
        let (code, t) = post_json(
            &s,
            "/api/v1.0/tasks",
            json!({"action": action, "design_ref": "main", "node_filter": one}),
        )
        .await;
        assert_eq!(code, 201, "{action}: {t}");
        let (_, done) = wait_task(&s, t["task_id"].as_str().unwrap()).await;
        assert_eq!(done["result"]["status"], "failure", "{action}: {done}");
        assert!(
            done["result"]["message"]
                .as_str()
                .unwrap()
                .contains("not supported"),
            "{done}"
        );
    }

    let (code, all) = s.get("/api/v1.0/tasks").await;
    assert_eq!(code, 200);
    assert_eq!(all.as_array().unwrap().len(), 10);

    // Bad input.
    for body in [
        json!({}),
        json!({"action": "fly"}),
        json!({"action": 3}),
        json!({"action": "verify_site", "design_ref": 1}),
        json!({"action": "verify_site", "node_filter": {"filter_set_type": "nope"}}),
    ] {
        let (code, v) = post_json(&s, "/api/v1.0/tasks", body.clone()).await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_status_json(&v, 400);
    }
    let (code, v) = post(&s, "/api/v1.0/tasks", "[1,").await;
    assert_eq!(code, 400);
    assert_status_json(&v, 400);
    let (code, v) = s
        .get("/api/v1.0/tasks/00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(code, 404);
    assert_status_json(&v, 404);
    let r = client()
        .delete(s.url("/api/v1.0/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "GET,HEAD,POST");
    s.stop().await;
}

#[tokio::test]
async fn oversize_body_is_413_status() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let (s, _) = started(&repo, &db).await;
    let big = format!("{{\"href\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    for path in [
        "/api/v1.0/validatedesign",
        "/api/v1.0/nodefilter",
        "/api/v1.0/tasks",
    ] {
        let (code, v) = post(&s, path, big.clone()).await;
        assert_eq!(code, 413, "{path}");
        assert_status_json(&v, 413);
    }
    s.stop().await;
}

const TOKEN: &str = "op-token-1";

#[tokio::test]
async fn tokens_guard_operator_routes() {
    use sha2::Digest;
    let repo = gen_site_repo();
    let commit = repo.commit("site");
    let tokens = repo.path().join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "# operators\n{}  -\n",
            hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
        ),
    )
    .unwrap();
    let db = repo.path().join("state.db");
    let s = Server::start_with(repo.path(), &db, |cfg| cfg.tokens = Some(tokens.clone()))
        .await
        .unwrap();
    // Public routes need no token.
    assert_eq!(s.get("/versions").await.0, 200);
    // Operator routes: 401 without or with a wrong token, with WWW-Authenticate.
    for (name, value) in [
        ("x-other", "x"),
        ("x-auth-token", "wrong"),
        ("authorization", "Bearer wrong"),
    ] {
        let r = client()
            .get(s.url("/api/v1.0/nodes"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{name}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let v: Value = r.json().await.unwrap();
        assert_status_json(&v, 401);
    }
    let r = client()
        .post(s.url("/api/v1.0/validatedesign"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The right token in either header.
    for (name, value) in [
        ("x-auth-token", TOKEN.to_string()),
        ("authorization", format!("Bearer {TOKEN}")),
    ] {
        let r = client()
            .post(s.url("/api/v1.0/validatedesign"))
            .header(name, value)
            .body(json!({"href": commit}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{name}");
    }
    s.stop().await;
}

#[tokio::test]
async fn loopback_only_without_tokens() {
    // Without --tokens, operator routes answer loopback peers (the test client).
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let (s, _) = started(&repo, &db).await;
    assert_eq!(s.get("/api/v1.0/nodes").await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn openapi_spec_and_router_agree() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    let (s, _) = started(&repo, &db).await;
    let (code, spec) = s.get("/api/v1.0/openapi.json").await;
    assert_eq!(code, 200);
    assert_eq!(spec["openapi"], "3.0.3");
    let paths = spec["paths"].as_object().unwrap();
    for expected in [
        "/versions",
        "/api/v1.0/validatedesign",
        "/api/v1.0/nodefilter",
        "/api/v1.0/nodes",
        "/api/v1.0/nodes/{hostname}",
        "/api/v1.0/tasks",
        "/api/v1.0/tasks/{task_id}",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the spec"
        );
    }
    // Every method of every path in the spec reaches a handler (not the 404
    // fallback), and every other method is a 405 with the spec's methods in Allow.
    for (path, ops) in paths {
        let url = path
            .replace("{hostname}", "n00001")
            .replace("{task_id}", "nosuch");
        let methods: Vec<String> = ops
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        for m in &methods {
            let r = client()
                .request(m.parse().unwrap(), s.url(&url))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(
                code != 404
                    || !body["message"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("no such resource"),
                "{m} {path}: fell through to the 404 fallback"
            );
            assert!(code != 405, "{m} {path}: 405");
        }
        let r = client().patch(s.url(&url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405, "PATCH {path}");
        let allow = r.headers()["allow"].to_str().unwrap().to_string();
        for m in &methods {
            assert!(
                allow.split(',').any(|a| a == m),
                "{path}: Allow {allow} lacks {m}"
            );
        }
    }
    // A path not in the spec is the 404 fallback.
    let (code, v) = s.get("/api/v1.0/nosuch").await;
    assert_eq!(code, 404);
    assert_status_json(&v, 404);
    // The router is built from the same table as the spec.
    let table: std::collections::BTreeSet<String> = slipway::api::drydock::openapi::routes()
        .iter()
        .map(|r| r.path.to_string())
        .collect();
    let spec_paths: std::collections::BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(table, spec_paths);
    s.stop().await;
}

#[tokio::test]
async fn tasks_interrupted_by_a_stop_end_as_failures() {
    let repo = gen_site_repo();
    let db = repo.path().join("state.db");
    {
        let mut store = slipway::state::Store::open(&db).unwrap();
        store
            .put_task(&slipway::state::TaskRecord {
                task_id: "11111111-1111-4111-8111-111111111111".into(),
                parent_task_id: None,
                action: "verify_site".into(),
                status: "running".into(),
                result: Some("incomplete".into()),
                design_ref: None,
                node_filter: None,
                created: 1,
                created_by: None,
                updated: Some(1),
                terminated: None,
                body: json!({}),
            })
            .unwrap();
    }
    let (s, _) = started(&repo, &db).await;
    let (code, t) = s
        .get("/api/v1.0/tasks/11111111-1111-4111-8111-111111111111")
        .await;
    assert_eq!(code, 200);
    assert_eq!(t["status"], "complete", "{t}");
    assert_eq!(t["result"]["status"], "failure");
    assert!(t["result"]["message"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    s.stop().await;
}
