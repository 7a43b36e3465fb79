//! The operator API (validatedesign, nodefilter, nodes, tasks) against the real
//! server on `127.0.0.1:0` with real git repositories. Every wait is bounded.

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, GitRepo, Server, BAD_YAML};
use serde_json::{json, Value};

/// A repository whose `designs/` is a gen-site site (40 nodes, 4 racks).
fn gen_site_repo() -> GitRepo {
    let repo = GitRepo::new();
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/gen-site");
    let out = Command::new("python3")
        .arg(tool)
        .args(["--nodes", "40", "--racks", "4", "--out"])
        .arg(repo.path().join("designs"))
        .output()
        .expect("run gen-site");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert_eq!(n["boot_actions"]["total"], 0);

    let (code, one) = s.get("/api/v1.0/nodes/n00001").await;
    assert_eq!(code, 200);
    assert_eq!(&one, n);
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
