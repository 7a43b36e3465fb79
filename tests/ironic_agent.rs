//! The Ironic agent dialect against the real server: ironic-python-agent
//! 13's own client code (`tests/ironic/drive_ipa.py`: `APIClient.lookup_node`,
//! `heartbeat` expecting 202, `process_lookup_data` judging the token) and
//! raw HTTP for every refusal, each in Ironic's error shape with Ironic's
//! version headers.
//!
//! The Python comes from `$SLIPWAY_TEST_VENV` (default `target/venv`, where
//! `scripts/test.sh` installs IPA 13); a missing venv fails the test with
//! the install hint. Most tests run a subset of `drive_ipa.py`'s steps
//! (`--steps`); the rebooted agent is shown recovering through each reset
//! event: an inspection callback (every step, the two callbacks included), a
//! boot-data fetch, a new deployment and an operator's reset.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{client, GitRepo, Server};
use serde_json::{json, Value};

/// n00001's boot MAC in the example site, and a NIC the design does not know.
const MACS: &str = "02:bd:50:00:00:01,52:54:00:aa:bb:cc";
const NODE: &str = "n00001";

/// Runs `drive_ipa.py` against the server; its JSON line and exit status.
async fn drive_ipa(s: &Server, steps: &str, extra: &[&str]) -> (bool, Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ironic/drive_ipa.py");
    let out = tokio::process::Command::new(common::venv_python(
        "ironic-python-agent 13 ('ironic-python-agent>=13,<14')",
    ))
    .arg(script)
    .arg(s.url(""))
    .args(["--macs", MACS, "--steps", steps, "--timeout", "5"])
    .args(extra)
    .kill_on_drop(true)
    .output()
    .await
    .expect("run drive_ipa.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "drive_ipa.py printed no JSON line ({e}); stdout: {stdout}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// A server on the example site, its revision applied.
async fn site(adjust: impl FnOnce(&mut slipway::server::ServeConfig)) -> (GitRepo, Server) {
    let g = GitRepo::new();
    g.add_example_site();
    let commit = g.commit("site");
    let db = g.path().join("slipway.db");
    let s = Server::start_with(g.path(), &db, |cfg| {
        cfg.secret = Some(g.path().join("secret"));
        adjust(cfg);
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;
    (g, s)
}

async fn uuid_of(s: &Server, node: &str) -> String {
    let (code, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!(code, 200, "{nodes}");
    let n = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["hostname"] == node)
        .unwrap_or_else(|| panic!("{node} in {nodes}"));
    n["uuid"].as_str().unwrap().to_string()
}

/// An Ironic answer: its code, its headers, its body.
struct Answer {
    code: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(req: reqwest::RequestBuilder) -> Answer {
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer {
        code,
        headers,
        body,
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", a.headers))
        .to_str()
        .unwrap()
}

/// Asserts an error in Ironic's shape (`error_message` holding the JSON
/// text of a wsme fault) with Ironic's version headers; its faultstring.
fn ironic_error(a: &Answer, code: u16) -> String {
    assert_eq!(a.code, code, "{}", a.body);
    assert_eq!(header(a, "x-openstack-ironic-api-minimum-version"), "1.1");
    assert_eq!(header(a, "x-openstack-ironic-api-maximum-version"), "1.68");
    assert!(a.headers.contains_key("x-openstack-ironic-api-version"));
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = a.body["error_message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_message string in {}", a.body));
    let fault: Value = serde_json::from_str(text).expect("error_message is JSON text");
    assert_eq!(fault["faultcode"], "Client", "{fault}");
    assert_eq!(fault["debuginfo"], Value::Null);
    fault["faultstring"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipa_looks_up_by_mac_keeps_its_token_heartbeats_202_and_wrong_tokens_are_refused() {
    let (_g, s) = site(|_| {}).await;
    let uuid = uuid_of(&s, NODE).await;
    let (ok, out) = drive_ipa(&s, "lookup,heartbeat,relookup,badtoken", &["--uuid", &uuid]).await;
    assert!(ok, "{out}");
    assert_eq!(out["uuid"], uuid.as_str());
    assert!(out["token_length"].as_u64().unwrap() >= 32, "{out}");
    assert_eq!(out["heartbeat_timeout"], 300);
    assert_eq!(
        out["node_keys"],
        json!([
            "driver_internal_info",
            "instance_info",
            "links",
            "properties",
            "uuid"
        ])
    );
    assert_eq!(out["heartbeat"], 202);
    assert_eq!(out["relookup_token"], "******", "the token is shown once");
    assert!(
        out["badtoken_refused"]
            .as_str()
            .unwrap()
            .contains("Invalid or missing agent token received."),
        "{out}"
    );
    assert!(
        out["notoken_refused"]
            .as_str()
            .unwrap()
            .contains("Agent token is required for heartbeat processing."),
        "{out}"
    );

    // The heartbeat is on the node, with its UUID.
    let (code, node) = s.get(&format!("/api/v1.0/nodes/{NODE}")).await;
    assert_eq!(code, 200, "{node}");
    assert_eq!(node["uuid"], uuid.as_str());
    assert_eq!(node["agent"]["callback_url"], "http://192.0.2.10:9999");
    assert_eq!(node["agent"]["version"], "13.0.0");
    let beat = node["agent"]["last_heartbeat"].as_i64().unwrap();
    assert!((slipway::clock::now() - beat).abs() < 120, "{node}");
    // A node no agent looked up has none.
    let (_, other) = s.get("/api/v1.0/nodes/n00002").await;
    assert_eq!(other["agent"], Value::Null, "{other}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_agent_gets_a_fresh_token_after_a_boot_data_fetch_or_an_operator_reset() {
    let (_g, s) = site(|_| {}).await;
    let uuid = uuid_of(&s, NODE).await;
    let c = client();
    // The first agent (raw HTTP, to keep its token): looks up, heartbeats.
    let first = call(c.get(s.url("/v1/lookup?addresses=02:bd:50:00:00:01"))).await;
    assert_eq!(first.code, 200, "{}", first.body);
    let old = first.body["config"]["agent_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(old.len() >= 32);
    let beat = |token: &str| {
        c.post(s.url(&format!("/v1/heartbeat/{uuid}")))
            .json(&json!({"callback_url": "http://192.0.2.10:9999", "agent_token": token, "agent_version": "13.0.0"}))
    };
    assert_eq!(call(beat(&old)).await.code, 202);

    // The machine reboots into the ramdisk unannounced: the new IPA gets
    // "******", which it cannot work with (Ironic's behaviour).
    let (ok, out) = drive_ipa(&s, "lookup", &["--uuid", &uuid]).await;
    assert!(!ok, "{out}");
    assert!(
        out["error"].as_str().unwrap().contains("6 characters"),
        "{out}"
    );

    // The machine boots again and fetches its boot data: the next agent
    // gets a fresh token, keeps it and heartbeats.
    let (code, id) = s.get(&format!("/api/v1.0/nodes/{NODE}/identity")).await;
    assert_eq!(code, 200, "{id}");
    let key = id["identity_key"].as_str().unwrap();
    let units = c
        .get(s.url(&format!("/api/v1.0/bootactions/nodes/{NODE}/units")))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(units.status().as_u16(), 200);
    let (_, node) = s.get(&format!("/api/v1.0/nodes/{NODE}")).await;
    assert_eq!(node["agent"]["token_reset"], "boot data fetched", "{node}");
    let (ok, out) = drive_ipa(&s, "lookup,heartbeat,relookup", &["--uuid", &uuid]).await;
    assert!(ok, "the rebooted agent: {out}");
    assert_eq!(out["heartbeat"], 202);
    // The previous agent's token no longer heartbeats.
    let refused = call(beat(&old)).await;
    assert_eq!(
        ironic_error(&refused, 400),
        "Invalid or missing agent token received."
    );

    // An operator's reset does the same.
    let reset = c
        .post(s.url(&format!("/api/v1.0/nodes/{NODE}/agent-token/reset")))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status().as_u16(), 202);
    let (ok, out) = drive_ipa(&s, "lookup,heartbeat", &["--uuid", &uuid]).await;
    assert!(ok, "after the operator's reset: {out}");
    let unknown = c
        .post(s.url("/api/v1.0/nodes/nope/agent-token/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_documents_and_headers_are_ironics_and_unsupported_versions_are_406() {
    let (_g, s) = site(|_| {}).await;
    let c = client();
    let root = call(c.get(s.url("/"))).await;
    assert_eq!(root.code, 200);
    assert_eq!(root.body["default_version"]["version"], "1.68");
    assert_eq!(root.body["default_version"]["min_version"], "1.1");
    assert_eq!(root.body["default_version"]["id"], "v1");
    assert_eq!(root.body["versions"][0]["id"], "v1");
    assert!(root.body["name"].is_string() && root.body["description"].is_string());
    assert_eq!(
        header(&root, "x-openstack-ironic-api-minimum-version"),
        "1.1"
    );
    assert_eq!(
        header(&root, "x-openstack-ironic-api-maximum-version"),
        "1.68"
    );
    assert_eq!(
        header(&root, "x-openstack-ironic-inspector-api-minimum-version"),
        "1.0"
    );
    assert_eq!(
        header(&root, "x-openstack-ironic-inspector-api-maximum-version"),
        "1.18"
    );

    let v1 = call(c.get(s.url("/v1"))).await;
    assert_eq!(v1.code, 200);
    assert_eq!(v1.body["id"], "v1");
    assert_eq!(header(&v1, "x-openstack-ironic-api-version"), "1.1");
    assert_eq!(
        header(&v1, "x-openstack-ironic-inspector-api-maximum-version"),
        "1.18"
    );
    let latest = call(
        c.get(s.url("/v1"))
            .header("X-OpenStack-Ironic-API-Version", "latest"),
    )
    .await;
    assert_eq!(header(&latest, "x-openstack-ironic-api-version"), "1.68");
    let asked = call(
        c.get(s.url("/v1"))
            .header("X-OpenStack-Ironic-API-Version", "1.62"),
    )
    .await;
    assert_eq!(asked.code, 200);
    assert_eq!(header(&asked, "x-openstack-ironic-api-version"), "1.62");

    for (v, says) in [
        ("1.69", "minor version is not supported"),
        ("1.0", "minor version is not supported"),
        ("2.1", "Mutually exclusive versions"),
        (
            "1",
            "Invalid value for X-OpenStack-Ironic-API-Version header",
        ),
        ("one.two", "Invalid value"),
    ] {
        for path in ["/v1", "/v1/lookup?addresses=02:bd:50:00:00:01"] {
            let a = call(
                c.get(s.url(path))
                    .header("X-OpenStack-Ironic-API-Version", v),
            )
            .await;
            let fault = ironic_error(&a, 406);
            assert!(fault.contains(says), "{v} on {path}: {fault}");
        }
    }
    // A 406 issued no token: the lookup still gets the first one.
    let a = call(c.get(s.url("/v1/lookup?addresses=02:bd:50:00:00:01"))).await;
    assert_eq!(a.code, 200);
    assert!(a.body["config"]["agent_token"].as_str().unwrap().len() >= 32);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_without_an_address_are_400_and_without_a_match_404() {
    let (_g, s) = site(|_| {}).await;
    let c = client();
    let get = |q: &str| c.get(s.url(&format!("/v1/lookup{q}")));
    for q in ["", "?addresses=", "?addresses=not-a-mac,zz", "?node_uuid="] {
        let fault = ironic_error(&call(get(q)).await, 400);
        assert_eq!(
            fault, "At least one of 'addresses' and 'node_uuid' parameters is required",
            "{q}"
        );
    }
    for q in [
        "?addresses=52:54:00:ff:ff:ff",
        "?node_uuid=6d85a3c6-0000-4000-8000-00000000079d",
        "?addresses=02:bd:50:00:00:01&node_uuid=6d85a3c6-0000-4000-8000-00000000079d",
    ] {
        let fault = ironic_error(&call(get(q)).await, 404);
        assert_eq!(fault, "Resource could not be found.", "{q}");
    }
    // Two nodes' MACs: no single node, as in Ironic.
    let fault = ironic_error(
        &call(get("?addresses=02:bd:50:00:00:01,02:bd:50:00:00:02")).await,
        404,
    );
    assert_eq!(fault, "Resource could not be found.");
    // IPA's form (upper case, URL-encoded) and a name or UUID work.
    let uuid = uuid_of(&s, "n00003").await;
    let a = call(get(
        "?addresses=02%3ABD%3A50%3A00%3A00%3A03%2C52%3A54%3A00%3A12%3A34%3A56",
    ))
    .await;
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(a.body["node"]["uuid"], uuid.as_str());
    for key in ["properties", "instance_info", "driver_internal_info"] {
        assert_eq!(a.body["node"][key], json!({}), "{key}");
    }
    assert_eq!(a.body["config"]["agent_token_required"], true);
    let again = call(get(&format!("?node_uuid={}", uuid.to_uppercase()))).await;
    assert_eq!(again.code, 200, "{}", again.body);
    assert_eq!(again.body["config"]["agent_token"], "******");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_without_the_nodes_token_or_with_a_bad_body_are_refused_as_ironic_does() {
    let (_g, s) = site(|_| {}).await;
    let c = client();
    let uuid = uuid_of(&s, NODE).await;
    let first = call(c.get(s.url("/v1/lookup?addresses=02:bd:50:00:00:01"))).await;
    let token = first.body["config"]["agent_token"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |node: &str, body: String| {
        c.post(s.url(&format!("/v1/heartbeat/{node}")))
            .header("Content-Type", "application/json")
            .body(body)
    };
    let url = "http://192.0.2.10:9999";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            &uuid,
            json!({"callback_url": url}).to_string(),
            400,
            "Agent token is required for heartbeat processing.",
        ),
        (
            &uuid,
            json!({"callback_url": url, "agent_token": null}).to_string(),
            400,
            "Agent token is required for heartbeat processing.",
        ),
        (
            &uuid,
            json!({"callback_url": url, "agent_token": ""}).to_string(),
            400,
            "Invalid or missing agent token received.",
        ),
        (
            &uuid,
            json!({"callback_url": url, "agent_token": "x".repeat(43)}).to_string(),
            400,
            "Invalid or missing agent token received.",
        ),
        // Another node's UUID with this node's token.
        (
            NODE,
            json!({"callback_url": url, "agent_token": token}).to_string(),
            202,
            "",
        ),
        (
            "n00002",
            json!({"callback_url": url, "agent_token": token}).to_string(),
            400,
            "Invalid or missing agent token received.",
        ),
        (
            "no-such-node",
            json!({"callback_url": url, "agent_token": token}).to_string(),
            404,
            "Node no-such-node could not be found.",
        ),
        (&uuid, "{not json".into(), 400, "Invalid heartbeat body"),
        (&uuid, "[]".into(), 400, "Invalid heartbeat body"),
        (
            &uuid,
            json!({"agent_token": token}).to_string(),
            400,
            "Invalid heartbeat body",
        ),
        (
            &uuid,
            json!({"callback_url": 5, "agent_token": token}).to_string(),
            400,
            "Invalid heartbeat body",
        ),
        (
            &uuid,
            json!({"callback_url": url, "agent_token": 7}).to_string(),
            400,
            "Invalid heartbeat body",
        ),
        (
            &uuid,
            json!({"callback_url": "http://198.51.100.1:9999", "agent_token": token}).to_string(),
            400,
            "Detected change in ramdisk provided \"callback_url\"",
        ),
    ];
    for (node, body, code, says) in cases {
        let a = call(post(node, body.clone())).await;
        if code == 202 {
            assert_eq!(a.code, 202, "{node} {body}: {}", a.body);
            assert_eq!(a.body, Value::Null, "a 202 has no body");
            assert_eq!(header(&a, "x-openstack-ironic-api-version"), "1.1");
            continue;
        }
        let fault = ironic_error(&a, code);
        assert!(fault.starts_with(says), "{node} {body}: {fault}");
    }
    // Exactly 202 for the right token (IPA treats 200 as an error).
    let ok = call(post(
        &uuid,
        json!({"callback_url": url, "agent_token": token, "agent_version": "13.0.0"}).to_string(),
    ))
    .await;
    assert_eq!(ok.code, 202);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_restricted_by_agent_lookup() {
    // `none`: no node is found, even by its MAC.
    let (_g, s) = site(|cfg| cfg.agents.lookup = slipway::services::agents::LookupMode::None).await;
    let a = call(client().get(s.url("/v1/lookup?addresses=02:bd:50:00:00:01"))).await;
    assert_eq!(ironic_error(&a, 404), "Resource could not be found.");
    s.stop().await;

    // `expected`: a node with an unfinished boot action may be looked up;
    // once its boot actions are all finished it is not expected to run the
    // agent, until an operator resets its token (or a token was issued or
    // reset within the window).
    let (_g, s) = site(|cfg| cfg.agents.window = Duration::from_secs(3600)).await;
    let c = client();
    let lookup = |mac: &'static str| c.get(s.url(&format!("/v1/lookup?addresses={mac}")));
    let a = call(lookup("02:bd:50:00:00:02")).await;
    assert_eq!(
        a.code, 200,
        "n00002 has an unfinished boot action: {}",
        a.body
    );
    let (code, id) = s.get(&format!("/api/v1.0/nodes/{NODE}/identity")).await;
    assert_eq!(code, 200, "{id}");
    let key = id["identity_key"].as_str().unwrap().to_string();
    let mut finished = 0;
    for action in id["actions"].as_array().unwrap() {
        if action["status"] != "Incomplete" {
            continue;
        }
        let r = c
            .post(s.url(&format!(
                "/api/v1.0/bootactions/{}",
                action["action_id"].as_str().unwrap()
            )))
            .header("X-Bootaction-Key", &key)
            .body(r#"{"status":"success","details":[{"message":"done","error":false}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        finished += 1;
    }
    assert!(finished > 0, "n00001 had unfinished boot actions: {id}");
    let a = call(lookup("02:bd:50:00:00:01")).await;
    assert_eq!(ironic_error(&a, 404), "Resource could not be found.");
    let r = c
        .post(s.url(&format!("/api/v1.0/nodes/{NODE}/agent-token/reset")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let a = call(lookup("02:bd:50:00:00:01")).await;
    assert_eq!(a.code, 200, "after the operator's reset: {}", a.body);
    assert!(a.body["config"]["agent_token"].as_str().unwrap().len() >= 32);
    // Within the window after its token was issued, the agent may look up again.
    let a = call(lookup("02:bd:50:00:00:01")).await;
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(a.body["config"]["agent_token"], "******");
    s.stop().await;
}

/// A series of `GET /metrics` (labels as written, `{}` for none).
async fn metric(s: &Server, series: &str) -> f64 {
    let text = client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_deployment_of_the_node_gives_its_next_agent_a_fresh_token() {
    let (g, s) = site(|_| {}).await;
    let uuid = uuid_of(&s, NODE).await;
    let (ok, out) = drive_ipa(&s, "lookup,heartbeat,relookup", &["--uuid", &uuid]).await;
    assert!(ok, "{out}");
    // Lookups are answered from one index per served revision, not a scan.
    for _ in 0..20 {
        let a = call(client().get(s.url("/v1/lookup?addresses=02:bd:50:00:00:01"))).await;
        assert_eq!(a.code, 200);
    }
    assert_eq!(metric(&s, "slipway_agent_index_builds_total").await, 1.0);
    assert_eq!(
        metric(&s, "slipway_agent_lookups_total{token=\"issued\"}").await,
        1.0
    );
    assert_eq!(
        metric(&s, "slipway_agent_lookups_total{token=\"masked\"}").await,
        21.0
    );
    assert_eq!(
        metric(&s, "slipway_agent_heartbeats_total{outcome=\"accepted\"}").await,
        1.0
    );
    let (ok, out) = drive_ipa(&s, "lookup", &["--uuid", &uuid]).await;
    assert!(!ok, "before the commit a new agent gets the mask: {out}");
    // A commit that changes the node: a new deployment.
    let path = g.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen(
        "      zone: z1\n    boot_mac: '02:bd:50:00:00:01'",
        "      zone: z9\n    boot_mac: '02:bd:50:00:00:01'",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&path, changed).unwrap();
    let commit = g.commit("n00001 moves zone");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&commit, "applied").await;
    let (ok, out) = drive_ipa(&s, "lookup,heartbeat", &["--uuid", &uuid]).await;
    assert!(ok, "the new deployment's agent gets a fresh token: {out}");
    assert_eq!(
        metric(&s, "slipway_agent_index_builds_total").await,
        2.0,
        "one more index, for the new revision"
    );
    // Its UUID is the same: it is named by its name and the secret.
    assert_eq!(uuid_of(&s, NODE).await, uuid);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_ipa_that_inspects_first_gets_a_fresh_token_through_either_callback() {
    // Every step of IPA's life the script knows, the inspection callbacks
    // included: an agent that restarts into the ramdisk posts its inventory
    // (to inspector's /v1/continue, or Ironic's /v1/continue_inspection), then
    // looks up holding no token; the callback makes the next lookup issue a
    // fresh one, so the agent does not lock itself down.
    let (_g, s) = site(|_| {}).await;
    let uuid = uuid_of(&s, NODE).await;
    let (ok, out) = drive_ipa(
        &s,
        "lookup,heartbeat,relookup,badtoken,continue,continue_inspection,rebooted",
        &["--uuid", &uuid],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        out["steps"],
        json!([
            "lookup",
            "heartbeat",
            "relookup",
            "badtoken",
            "continue",
            "continue_inspection",
            "rebooted"
        ]),
        "{out}"
    );
    assert_eq!(out["uuid"], uuid.as_str(), "{out}");
}
