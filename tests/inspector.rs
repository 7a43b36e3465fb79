//! The ironic-inspector dialect and the inspection data path, driven by the
//! real clients against the real server: python-ironic-inspector-client 5's
//! own `ClientV1` (`tests/ironic/drive_inspector_client.py`) and IPA 13's own
//! `inspector.inspect()` / `call_inspector` (`tests/ironic/drive_ipa.py`), to
//! `/v1/continue` and to Ironic's `/v1/continue_inspection`. The Python comes
//! from the test virtualenv (`$SLIPWAY_TEST_VENV`, default `target/venv`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{wait_for, GitRepo, Server};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// n00001's machine as the design states it: boot MAC, the bond's two MACs,
/// BMC address.
const N1_MACS: &str = "02:bd:50:00:00:01,3c:fd:fe:00:01:02,3c:fd:fe:00:01:03";
const N1_BMC: &str = "10.16.1.1";

fn driver(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ironic")
        .join(name)
        .display()
        .to_string()
}

/// Runs a driver with the venv's Python off the runtime; its JSON line and rc.
async fn drive(script: &str, args: Vec<String>) -> (bool, Value) {
    let py = common::venv_python("ironic-python-agent 13 and python-ironic-inspector-client 5");
    let script = driver(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .args(args)
            .env("NO_PROXY", "*")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .output()
            .expect("spawn the driver")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "the driver printed no JSON line: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// The example site with n00001's interfaces labelled with their MACs.
fn site() -> (GitRepo, String) {
    let g = GitRepo::new();
    g.add_example_site();
    let path = g.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let anchor = "data:\n  host_profile: control-node\n";
    let at = text.find(anchor).unwrap() + anchor.len();
    let labels = "  interfaces:\n    pxe:\n      labels:\n        mac_address: '02:bd:50:00:00:01'\n    bond0:\n      labels:\n        mac_address: '3c:fd:fe:00:01:02, 3c:fd:fe:00:01:03'\n";
    std::fs::write(&path, format!("{}{labels}{}", &text[..at], &text[at..])).unwrap();
    let head = g.commit("site with n00001's MACs");
    (g, head)
}

struct Site {
    g: GitRepo,
    head: String,
    s: Server,
    _dir: tempfile::TempDir,
    db: PathBuf,
}

impl Site {
    fn uuid(&self, node: &str) -> String {
        slipway::keys::Secret::load_or_create(&slipway::keys::default_secret_path(&self.db))
            .unwrap()
            .node_uuid(node)
    }
}

async fn start(adjust: impl FnOnce(&mut slipway::server::ServeConfig)) -> Site {
    let (g, head) = site();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let s = Server::start_with(g.path(), &db, adjust).await.unwrap();
    // Health is public (the revisions list needs a token when tokens are set).
    wait_for("the site applied", || async { s.health().await < 300 }).await;
    Site {
        g,
        head,
        s,
        _dir: dir,
        db,
    }
}

async fn post(
    s: &Server,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = common::client()
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (code, h, v)
}

async fn get(
    s: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = common::client().get(s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (code, h, v)
}

/// Inspector's error shape with its version headers.
fn assert_inspector_error(code: u16, h: &reqwest::header::HeaderMap, v: &Value, want: u16) {
    assert_eq!(code, want, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "not inspector's error shape: {v}"
    );
    assert_eq!(
        h["x-openstack-ironic-inspector-api-minimum-version"], "1.0",
        "{h:?}"
    );
    assert_eq!(
        h["x-openstack-ironic-inspector-api-maximum-version"],
        "1.18"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inspector_client_introspects_a_node_while_ipa_posts_its_inventory_to_continue() {
    let site = start(|_| {}).await;
    let url = site.s.base.clone();
    let uuid = site.uuid("n00001");
    let py = common::venv_python("ironic-python-agent 13 and python-ironic-inspector-client 5")
        .display()
        .to_string();
    let ramdisk = format!(
        "{py} {} {url} --macs {N1_MACS} --bmc {N1_BMC} --uuid {uuid} --steps continue",
        driver("drive_ipa.py")
    );
    let (ok, out) = drive(
        "drive_inspector_client.py",
        vec![
            url.clone(),
            uuid.clone(),
            "--macs".into(),
            N1_MACS.into(),
            "--uuid".into(),
            uuid.clone(),
            "--while-waiting".into(),
            ramdisk,
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out["state_started"], "waiting", "{out}");
    assert_eq!(out["state_finished"], "finished", "{out}");
    assert_eq!(out["uuid"], uuid.as_str());

    // The posted inventory is the node's build data, generator `inspector`.
    let (code, data) = site.s.get("/api/v1.0/nodes/n00001/builddata").await;
    assert_eq!(code, 200);
    let rec = data
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["generator"] == "inspector")
        .unwrap_or_else(|| panic!("no inspector build data: {data}"));
    assert_eq!(rec["data_format"], "application/json");
    let posted: Value = serde_json::from_str(rec["data_element"].as_str().unwrap()).unwrap();
    assert_eq!(posted["boot_interface"], "02:bd:50:00:00:01", "{posted}");
    // The same machine matched by name and by UUID; no MAC disagreement.
    let (code, _, st) = get(&site.s, "/v1/introspection/n00001", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(st["uuid"], uuid.as_str());
    let kinds: Vec<&str> = st["disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.contains(&"interface_mac")
            && !kinds.contains(&"boot_mac")
            && !kinds.contains(&"bmc_address"),
        "{st}"
    );
    // The followed branch is untouched.
    assert_eq!(site.g.git(&["rev-parse", "HEAD"]), site.head);
}

#[tokio::test(flavor = "multi_thread")]
async fn ipa_without_an_inspector_url_posts_to_continue_inspection_and_gets_the_uuid() {
    let site = start(|_| {}).await;
    let uuid = site.uuid("n00002");
    let (ok, out) = drive(
        "drive_ipa.py",
        vec![
            site.s.base.clone(),
            "--macs".into(),
            "02:bd:50:00:00:02".into(),
            "--bmc".into(),
            "10.16.1.2".into(),
            "--uuid".into(),
            uuid.clone(),
            "--steps".into(),
            "continue_inspection".into(),
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out["continue_inspection_uuid"], uuid.as_str());
    // The same data path: an introspection row finished, nobody started it.
    let (code, _, st) = get(&site.s, &format!("/v1/introspection/{uuid}"), &[]).await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["state"], "finished");
    assert_eq!(st["finished"], true);
    let (code, _, data) = get(&site.s, "/v1/introspection/n00002/data", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(data["inventory"]["bmc_address"], "10.16.1.2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_whose_nic_mac_differs_from_the_design_gets_that_message_and_a_metric() {
    let site = start(|_| {}).await;
    let uuid = site.uuid("n00001");
    // The bond's second NIC was swapped: 3c:fd:fe:00:01:03 became :99.
    let (ok, out) = drive(
        "drive_ipa.py",
        vec![
            site.s.base.clone(),
            "--macs".into(),
            "02:bd:50:00:00:01,3c:fd:fe:00:01:02,3c:fd:fe:00:00:99".into(),
            "--bmc".into(),
            N1_BMC.into(),
            "--uuid".into(),
            uuid.clone(),
            "--steps".into(),
            "continue".into(),
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (code, _, st) = get(&site.s, "/v1/introspection/n00001", &[]).await;
    assert_eq!(code, 200);
    let msgs: Vec<&str> = st["disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "interface_mac")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(msgs.len(), 1, "{st}");
    assert!(
        msgs[0].contains("3c:fd:fe:00:01:03") && msgs[0].contains("3c:fd:fe:00:00:99"),
        "{}",
        msgs[0]
    );
    // Shown on the node too.
    let (code, node) = site.s.get("/api/v1.0/nodes/n00001").await;
    assert_eq!(code, 200);
    assert!(
        node["inspection"]["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["kind"] == "interface_mac")),
        "{node}"
    );
    // Counted.
    let metrics = common::client()
        .get(site.s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("slipway_inspection_disagreements_total{kind=\"interface_mac\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("inspection"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metrics.contains("slipway_inspection_callbacks_total{outcome=\"matched\"} 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_machine_becomes_one_commit_on_the_proposal_branch_updated_not_duplicated() {
    let site = start(|_| {}).await;
    let macs = "52:54:00:aa:00:01,52:54:00:aa:00:02";
    let ipa = |serial: &str| {
        vec![
            site.s.base.clone(),
            "--macs".into(),
            macs.into(),
            "--serial".into(),
            serial.into(),
            "--steps".into(),
            "continue".into(),
        ]
    };
    let (ok, out) = drive("drive_ipa.py", ipa("CZJ1234567")).await;
    assert!(ok, "IPA handles the reply to an unknown machine: {out}");
    let uuid = out["continue_uuid"].as_str().unwrap().to_string();
    assert_eq!(uuid, site.uuid("czj1234567"), "named by its serial");

    let branch = "slipway/discovered";
    let count = |rev: &str| -> usize { site.g.git(&["rev-list", "--count", rev]).parse().unwrap() };
    assert_eq!(count(&format!("{}..{branch}", site.head)), 1);
    assert_eq!(
        site.g.git(&["rev-parse", "HEAD"]),
        site.head,
        "followed branch untouched"
    );
    let files = site.g.git(&["diff", "--name-only", &site.head, branch]);
    assert_eq!(files, "designs/discovered/mac-525400aa0001.yaml");

    // The same machine again (its serial read differently this time): the
    // same file is updated, no second document.
    let (ok, out) = drive("drive_ipa.py", ipa("CZJ7654321")).await;
    assert!(ok, "{out}");
    assert_eq!(count(&format!("{}..{branch}", site.head)), 2);
    assert_eq!(
        site.g.git(&["diff", "--name-only", &site.head, branch]),
        "designs/discovered/mac-525400aa0001.yaml"
    );
    // Identical again: no commit.
    let (ok, out) = drive("drive_ipa.py", ipa("CZJ7654321")).await;
    assert!(ok, "{out}");
    assert_eq!(count(&format!("{}..{branch}", site.head)), 2);
    assert_eq!(site.g.git(&["rev-parse", "HEAD"]), site.head);

    // The proposal validates with the current design.
    let repo = slipway::source::Repo::discover(site.g.path()).unwrap();
    let tip = site.g.git(&["rev-parse", branch]);
    let files = repo.design_files(&tip, None).unwrap();
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:?}", v.messages);
    assert!(v.design.unwrap().node("czj7654321").is_some());

    // `slipway discovered` lists it.
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["discovered", "--repo"])
        .arg(site.g.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("new") && text.contains("czj7654321"),
        "{text}"
    );
    assert!(
        text.contains("1 proposal(s) on slipway/discovered"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_callbacks_and_versions_are_refused_in_inspectors_shape() {
    let site = start(|_| {}).await;
    let s = &site.s;
    // Malformed JSON, a non-object, a wrong type where slipway reads.
    for body in [
        "{not json",
        "[1, 2]",
        "null",
        r#"{"inventory": {"interfaces": [{"mac_address": 7}]}}"#,
    ] {
        let (code, h, v) = post(s, "/v1/continue", body, &[]).await;
        assert_inspector_error(code, &h, &v, 400);
    }
    // Two nodes match equally (each by its boot MAC): 404.
    let several = r#"{"inventory": {"interfaces": [{"name": "a", "mac_address": "02:bd:50:00:00:01"}, {"name": "b", "mac_address": "02:bd:50:00:00:02"}]}}"#;
    let (code, h, v) = post(s, "/v1/continue", several, &[]).await;
    assert_inspector_error(code, &h, &v, 404);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("n00001"),
        "{v}"
    );
    // An unknown machine without any MAC cannot be proposed: 400.
    let (code, h, v) = post(s, "/v1/continue", r#"{"error": "collector failed"}"#, &[]).await;
    assert_inspector_error(code, &h, &v, 400);
    // Versions: unsupported 406, malformed 400, on every route.
    for (version, want) in [("1.19", 406), ("2.0", 406), ("x.y", 400), ("1.", 400)] {
        let hv = [("X-OpenStack-Ironic-Inspector-API-Version", version)];
        let (code, h, v) = get(s, "/v1/introspection", &hv).await;
        assert_inspector_error(code, &h, &v, want);
        let (code, h, v) = post(s, "/v1/continue", several, &hv).await;
        assert_inspector_error(code, &h, &v, want);
    }
    let (code, h, _) = get(
        s,
        "/v1/introspection",
        &[("X-OpenStack-Ironic-Inspector-API-Version", "latest")],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        h["x-openstack-ironic-inspector-api-maximum-version"],
        "1.18"
    );
    // Introspection of an unknown node, a bad manage_boot.
    let (code, h, v) = post(s, "/v1/introspection/no-such-node", "", &[]).await;
    assert_inspector_error(code, &h, &v, 404);
    let (code, h, v) = post(s, "/v1/introspection/n00001?manage_boot=maybe", "", &[]).await;
    assert_inspector_error(code, &h, &v, 400);
    let (code, h, v) = get(s, "/v1/introspection/n00003", &[]).await;
    assert_inspector_error(code, &h, &v, 404);
    let (code, h, v) = get(s, "/v1/introspection/n00003/data", &[]).await;
    assert_inspector_error(code, &h, &v, 404);
    let (code, h, v) = get(s, "/v1/introspection?limit=5000", &[]).await;
    assert_inspector_error(code, &h, &v, 400);
    // The HTTP layer's own refusals are in inspector's shape too: a wrong
    // method (405), a body over 1 MiB (413).
    let r = common::client()
        .put(s.url("/v1/continue"))
        .send()
        .await
        .unwrap();
    let (code, h) = (r.status().as_u16(), r.headers().clone());
    let v: Value = r.json().await.unwrap();
    assert_inspector_error(code, &h, &v, 405);
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1 << 20));
    let (code, h, v) = post(s, "/v1/continue", &big, &[]).await;
    assert_inspector_error(code, &h, &v, 413);
    // The dialect's OpenAPI document (the contract run's) lists every route.
    let (code, _, doc) = get(s, "/v1/openapi/inspector.json", &[]).await;
    assert_eq!(code, 200);
    for path in [
        "/v1/introspection/{node}",
        "/v1/introspection",
        "/v1/introspection/{node}/data",
        "/v1/continue",
        "/v1/continue_inspection",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing: {doc}");
    }
    // A wrong method is a 405 before the requested version is looked at.
    let r = common::client()
        .delete(s.url("/v1/continue"))
        .header("X-OpenStack-Ironic-Inspector-API-Version", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // Ironic's /v1/continue_inspection answers in Ironic's shape.
    let (code, h, v) = post(s, "/v1/continue_inspection", "[1]", &[]).await;
    assert_eq!(code, 400, "{v}");
    let fault: Value =
        serde_json::from_str(v["error_message"].as_str().expect("Ironic's shape")).unwrap();
    assert!(
        fault["faultstring"].as_str().unwrap().contains("object"),
        "{fault}"
    );
    assert!(h
        .get("x-openstack-ironic-inspector-api-maximum-version")
        .is_none());
    let (code, _, v) = post(s, "/v1/continue_inspection", several, &[]).await;
    assert_eq!(code, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_an_introspection_needs_an_operator_token_and_the_ramdisk_does_not() {
    let token = "operator-token-for-the-inspector-test";
    let tokens = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tokens.path(), hex::encode(Sha256::digest(token.as_bytes()))).unwrap();
    let path = tokens.path().to_path_buf();
    let site = start(|cfg| cfg.tokens = Some(path)).await;
    let s = &site.s;
    let (code, h, v) = post(s, "/v1/introspection/n00001", "", &[]).await;
    assert_inspector_error(code, &h, &v, 401);
    let (code, h, v) = post(
        s,
        "/v1/introspection/n00001",
        "",
        &[("X-Auth-Token", "wrong")],
    )
    .await;
    assert_inspector_error(code, &h, &v, 401);
    for path in [
        "/v1/introspection/n00001",
        "/v1/introspection",
        "/v1/introspection/n00001/data",
    ] {
        let (code, h, v) = get(s, path, &[]).await;
        assert_inspector_error(code, &h, &v, 401);
        let (code, h, v) = get(s, path, &[("Authorization", "Bearer wrong")]).await;
        assert_inspector_error(code, &h, &v, 401);
    }
    let (code, _, v) = post(
        s,
        "/v1/introspection/n00001?manage_boot=false",
        "",
        &[("X-Auth-Token", token)],
    )
    .await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v, serde_json::json!({}));
    // The ramdisk posts without credentials.
    let body = r#"{"inventory": {"interfaces": [{"name": "eth0", "mac_address": "02:bd:50:00:00:01"}], "bmc_address": "10.16.1.1"}, "boot_interface": "02:bd:50:00:00:01"}"#;
    let (code, h, v) = post(s, "/v1/continue", body, &[]).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["uuid"], site.uuid("n00001").as_str());
    assert_eq!(h["x-openstack-ironic-inspector-api-minimum-version"], "1.0");
    wait_for("the introspection finished", || async {
        let (_, _, st) = get(s, "/v1/introspection/n00001", &[("X-Auth-Token", token)]).await;
        st["finished"] == true
    })
    .await;
    let (code, _, list) = get(s, "/v1/introspection", &[("X-Auth-Token", token)]).await;
    assert_eq!(code, 200);
    assert_eq!(list["introspection"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proposal_branch_that_is_the_followed_branch_is_refused_at_start() {
    let (g, _) = site();
    let dir = tempfile::tempdir().unwrap();
    let err = Server::start_with(g.path(), &dir.path().join("s.db"), |cfg| {
        cfg.proposal_branch = Some("main".into())
    })
    .await
    .err()
    .expect("the server refuses to start");
    assert!(err.to_string().contains("is the followed branch"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_is_matched_by_the_macs_of_the_revision_being_served() {
    let site = start(|_| {}).await;
    let s = &site.s;
    let body = r#"{"inventory": {"interfaces": [{"name": "eth0", "mac_address": "3c:fd:fe:00:02:02"}], "bmc_address": "0.0.0.0"}}"#;
    // No node states that MAC yet: the machine is proposed.
    let (code, _, v) = post(s, "/v1/continue", body, &[]).await;
    assert_eq!(code, 200, "{v}");
    assert!(v["proposed"]["path"].is_string(), "{v}");
    // A commit labels n00002's bond with it; once that revision is served,
    // the index is the new revision's and the machine is n00002.
    let path = site.g.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let from = text.find("name: n00002").unwrap();
    let anchor = "data:\n  host_profile: control-node\n";
    let at = from + text[from..].find(anchor).unwrap() + anchor.len();
    let labels =
        "  interfaces:\n    bond0:\n      labels:\n        mac_address: '3c:fd:fe:00:02:02'\n";
    std::fs::write(&path, format!("{}{labels}{}", &text[..at], &text[at..])).unwrap();
    let commit = site.g.commit("n00002's bond MAC");
    s.hook().await;
    s.wait_status(&commit, "applied").await;
    let (code, _, v) = post(s, "/v1/continue", body, &[]).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["uuid"], site.uuid("n00002").as_str(), "{v}");
    assert!(v.get("proposed").is_none(), "{v}");
}
