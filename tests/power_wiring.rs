//! The power service where it is used, against real emulators on 127.0.0.1:
//! the operator route `GET|POST /api/v1.0/nodes/{hostname}/power`, the node
//! tasks (`prepare_nodes` …) with per-node results, and `slipway power`.
//! The design's nodes reach sushy-emulator, a pyghmi fake BMC (through the real
//! ipmitool) and a silent BMC through `oob.host`/`oob.port` (docs/power.md).

mod common;
#[path = "bmc/emulators.rs"]
mod emulators;

use std::time::{Duration, Instant};

use common::{client, GitRepo, Server};
use emulators::{FakeBmcs, SilentTcp, Sushy, TestBmcs, USER};
use serde_json::{json, Value};

/// A password no emulator output or message would hold by chance.
const PW: &str = "pw-WIRE-5d02b1";
/// The per-call timeout of these tests (a silent BMC fails after it).
const TIMEOUT: Duration = Duration::from_secs(2);

/// The emulated BMCs of one test: n00001 Redfish (sushy system 0), n00002
/// IPMI (fake BMC 0), n00003 Redfish that never answers, n00004 `manual`
/// (no power driver).
struct Bmcs {
    sushy: Sushy,
    ipmi: FakeBmcs,
    _silent: SilentTcp,
    silent_port: u16,
}

impl Bmcs {
    fn start() -> Bmcs {
        let TestBmcs {
            sushy,
            ipmi,
            silent,
        } = TestBmcs::start(PW, 1);
        Bmcs {
            sushy,
            ipmi,
            silent_port: silent.port,
            _silent: silent,
        }
    }

    /// The 3-node port-forward site with its BMCs pointed at the emulators
    /// and a fourth node with `oob.type: manual`.
    fn site(&self) -> String {
        let base = String::from_utf8(common::fixture("ok/bmc-behind-a-port-forward.yaml")).unwrap();
        let base = base.replace(
            "    credential: gs-c8f40864275a58e87c\n    host: bmc-gw.example.com\n    port: 8443\n    scheme: https\n    system: System.Embedded.1\n",
            &format!("    credential: {PW}\n    host: 127.0.0.1\n"),
        );
        assert!(base.contains(PW), "the fixture's oob block changed");
        let node_oob = |name: &str, oob: String| {
            (
                format!("  host_profile: control-node\n  addressing:\n    - network: oob\n      address: 10.16.1.{}\n", &name[5..]),
                format!("  host_profile: control-node\n  oob:\n{oob}  addressing:\n    - network: oob\n      address: 10.16.1.{}\n", &name[5..]),
            )
        };
        let mut text = base;
        for (name, oob) in [
            (
                "n00001",
                format!(
                    "    port: {}\n    scheme: http\n    system: {}\n",
                    self.sushy.port, self.sushy.systems[0]
                ),
            ),
            (
                "n00002",
                format!("    type: ipmi\n    port: {}\n", self.ipmi.ports[0]),
            ),
            (
                "n00003",
                format!(
                    "    port: {}\n    scheme: http\n    system: '1'\n",
                    self.silent_port
                ),
            ),
        ] {
            let (from, to) = node_oob(name, oob);
            assert!(text.contains(&from), "{name}");
            text = text.replacen(&from, &to, 1);
        }
        // n00004: a copy of n00003 without a power driver.
        let start = text.find("  name: n00003").unwrap();
        let doc_start = text[..start].rfind("---\n").unwrap();
        let doc = text[doc_start..].to_string();
        let manual = doc
            .replace("n00003", "n00004")
            .replace("10.16.1.3", "10.16.1.4")
            .replace("10.32.1.3", "10.32.1.4")
            .replace("10.48.1.3", "10.48.1.4")
            .replace("10.64.1.3", "10.64.1.4")
            .replace("02:bd:50:00:00:03", "02:bd:50:00:00:04")
            .replace(
                &format!(
                    "    port: {}\n    scheme: http\n    system: '1'\n",
                    self.silent_port
                ),
                "    type: manual\n",
            );
        text.push_str(if text.ends_with('\n') { "" } else { "\n" });
        text.push_str(&manual);
        text
    }
}

/// A server on a committed repository of the site, the revision applied.
async fn serve(b: &Bmcs) -> (GitRepo, Server) {
    let repo = GitRepo::new();
    repo.write("designs/site.yaml", b.site());
    let commit = repo.commit("emulated site");
    let db = repo.path().join("state.db");
    let s = Server::start_with(repo.path(), &db, |cfg| {
        cfg.power.config.timeout = TIMEOUT;
        cfg.power.config.backoff = Duration::from_millis(50);
        cfg.power.config.ipmitool = emulators::ipmitool();
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;
    (repo, s)
}

async fn power_post(s: &Server, node: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(s.url(&format!("/api/v1.0/nodes/{node}/power")))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn action(s: &Server, node: &str, action: &str) -> Value {
    let (code, v) = power_post(s, node, json!({ "action": action })).await;
    assert_eq!(code, 200, "{node} {action}: {v}");
    assert_eq!(v["outcome"], "succeeded", "{v}");
    v
}

async fn emulator_view(b: &Bmcs) -> Value {
    client()
        .get(b.sushy.system_url(0))
        .basic_auth(USER, Some(PW))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_redfish_power(b: &Bmcs, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = emulator_view(b).await;
        if v["PowerState"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "PowerState {want}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn last_ipmi_event(b: &Bmcs) -> emulators::BmcEvent {
    b.ipmi
        .events()
        .pop()
        .unwrap_or_else(|| panic!("the fake BMC observed nothing: {}", b.ipmi.stderr()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_route_changes_the_emulated_bmcs() {
    let b = Bmcs::start();
    let (_repo, s) = serve(&b).await;

    // Redfish: status, on, pxe-once, cycle, off on sushy's system.
    let (code, v) = s.get("/api/v1.0/nodes/n00001/power").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["power"], "off", "{v}");
    assert_eq!(v["journal"][0]["operation"], "status", "{v}");
    assert_eq!(v["journal"][0]["outcome"], "succeeded", "{v}");
    for k in ["requested", "started", "finished", "message"] {
        assert!(v["journal"][0][k].is_string(), "{k}: {v}");
    }
    action(&s, "n00001", "on").await;
    wait_redfish_power(&b, "On").await;
    action(&s, "n00001", "pxe-once").await;
    assert_eq!(
        emulator_view(&b).await["Boot"]["BootSourceOverrideTarget"],
        "Pxe"
    );
    let v = action(&s, "n00001", "cycle").await;
    assert!(
        v["message"].as_str().unwrap().contains("ForceRestart"),
        "{v}"
    );
    action(&s, "n00001", "off").await;
    wait_redfish_power(&b, "Off").await;

    // IPMI through ipmitool: the fake BMC sees each change.
    let v = action(&s, "n00002", "status").await;
    assert_eq!(v["power"], "off", "{v}");
    action(&s, "n00002", "on").await;
    assert_eq!(last_ipmi_event(&b).power, "on");
    action(&s, "n00002", "pxe-once").await;
    assert_eq!(last_ipmi_event(&b).boot, "network");
    action(&s, "n00002", "cycle").await;
    assert_eq!(last_ipmi_event(&b).event, "reset");
    action(&s, "n00002", "soft_off").await;
    assert_eq!(last_ipmi_event(&b).event, "soft");
    let (_, v) = s.get("/api/v1.0/nodes/n00002/power").await;
    assert_eq!(v["journal"].as_array().unwrap().len(), 6, "{v}");

    // Negative cases: bad action 400, unknown node 404, no driver 409, a
    // silent BMC 502 `timeout` after the per-call timeout.
    for body in [json!({"action": "fly"}), json!({}), json!({"action": 1})] {
        let (code, v) = power_post(&s, "n00001", body.clone()).await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(v["kind"], "Status", "{v}");
    }
    let (code, v) = power_post(&s, "nosuch", json!({"action": "on"})).await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = s.get("/api/v1.0/nodes/n00004/power").await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("oob.type: expected `ipmi` or `redfish`, found `manual`"),
        "{v}"
    );
    let t0 = Instant::now();
    let (code, v) = power_post(&s, "n00003", json!({"action": "on"})).await;
    assert_eq!(code, 502, "{v}");
    assert!(v["message"].as_str().unwrap().contains("(timeout)"), "{v}");
    assert!(t0.elapsed() < TIMEOUT * 3, "{:?}", t0.elapsed());
    assert!(!v.to_string().contains(PW));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_502_naming_the_kind_never_the_password() {
    let b = Bmcs::start();
    let repo = GitRepo::new();
    let wrong = "pw-WRONG-77e1";
    repo.write("designs/site.yaml", b.site().replace(PW, wrong));
    let commit = repo.commit("wrong credentials");
    let db = repo.path().join("state.db");
    let s = Server::start_with(repo.path(), &db, |cfg| {
        cfg.power.config.timeout = TIMEOUT;
        cfg.power.config.ipmitool = emulators::ipmitool();
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;
    for node in ["n00001", "n00002"] {
        let (code, v) = power_post(&s, node, json!({"action": "status"})).await;
        assert_eq!(code, 502, "{node}: {v}");
        assert_eq!(v["reason"], "BmcFailure", "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("(credentials)"),
            "{v}"
        );
        assert!(!v.to_string().contains(wrong), "{v}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_route_needs_an_operator_token() {
    use sha2::Digest;
    let b = Bmcs::start();
    let repo = GitRepo::new();
    repo.write("designs/site.yaml", b.site());
    let commit = repo.commit("site");
    let tokens = repo.path().join("tokens");
    let token = "power-operator-token";
    std::fs::write(
        &tokens,
        format!("{}\n", hex::encode(sha2::Sha256::digest(token.as_bytes()))),
    )
    .unwrap();
    let db = repo.path().join("state.db");
    let s = Server::start_with(repo.path(), &db, |cfg| {
        cfg.tokens = Some(tokens.clone());
        cfg.power.config.timeout = TIMEOUT;
    })
    .await
    .unwrap();
    let url = s.url("/api/v1.0/nodes/n00001/power");
    // With the token: 200 once the revision is applied (503 before).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client()
            .get(&url)
            .header("x-auth-token", token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{commit}: {}", r.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"action": "on"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(emulator_view(&b).await["PowerState"], "Off");
    s.stop().await;
}

async fn task(s: &Server, action: &str, nodes: &[&str]) -> Value {
    let filter = json!({"filter_set_type": "union", "filter_set": [{"filter_type": "union", "node_names": nodes}]});
    let r = client()
        .post(s.url("/api/v1.0/tasks"))
        .header("content-type", "application/json")
        .body(json!({"action": action, "node_filter": filter}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, t) = s.get(&format!("/api/v1.0/tasks/{id}")).await;
        if t["status"] == "complete" {
            return t;
        }
        assert!(Instant::now() < deadline, "task {id}: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn node_messages<'a>(t: &'a Value, node: &str) -> Vec<&'a Value> {
    t["result"]["details"]["messageList"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["context_type"] == "node" && m["context"] == node)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_nodes_reports_per_node_and_a_silent_bmc_fails_alone() {
    let b = Bmcs::start();
    let (_repo, s) = serve(&b).await;

    // Both reachable nodes: PXE once, then cycled (off: powered on).
    let t = task(&s, "prepare_nodes", &["n00001", "n00002"]).await;
    assert_eq!(t["result"]["status"], "success", "{t}");
    assert_eq!(t["result"]["successes"], json!(["n00001", "n00002"]), "{t}");
    assert_eq!(
        emulator_view(&b).await["Boot"]["BootSourceOverrideTarget"],
        "Pxe"
    );
    wait_redfish_power(&b, "On").await;
    let events = b.ipmi.events();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["bootdev", "on"], "{events:?}");
    assert_eq!(events[0].boot, "network");
    for n in ["n00001", "n00002"] {
        let m = node_messages(&t, n);
        assert_eq!(m.len(), 1, "{t}");
        assert_eq!(m[0]["error"], false, "{t}");
    }

    // With the silent BMC and the node without a driver: they fail, the
    // others succeed, the task is partial_success after about one timeout.
    let t0 = Instant::now();
    let t = task(
        &s,
        "prepare_nodes",
        &["n00001", "n00002", "n00003", "n00004"],
    )
    .await;
    let took = t0.elapsed();
    assert_eq!(t["status"], "complete");
    assert_eq!(t["result"]["status"], "partial_success", "{t}");
    assert_eq!(t["result"]["successes"], json!(["n00001", "n00002"]), "{t}");
    assert_eq!(t["result"]["failures"], json!(["n00003", "n00004"]), "{t}");
    let silent = node_messages(&t, "n00003");
    assert!(
        silent[0]["message"]
            .as_str()
            .unwrap()
            .contains("power timeout"),
        "{t}"
    );
    let manual = node_messages(&t, "n00004");
    assert!(
        manual[0]["message"]
            .as_str()
            .unwrap()
            .contains("no power driver"),
        "{t}"
    );
    assert!(took < TIMEOUT * 4, "{took:?}");
    assert!(!t.to_string().contains(PW));

    // verify_nodes reads the state; every node failing is `failure`.
    let t = task(&s, "verify_nodes", &["n00001", "n00002"]).await;
    assert_eq!(t["result"]["status"], "success", "{t}");
    let t = task(&s, "verify_nodes", &["n00003", "n00004"]).await;
    assert_eq!(t["result"]["status"], "failure", "{t}");

    // destroy_nodes: revoked, then powered off.
    let t = task(&s, "destroy_nodes", &["n00002"]).await;
    assert_eq!(t["result"]["status"], "success", "{t}");
    assert_eq!(last_ipmi_event(&b).event, "off");
    assert_eq!(node_messages(&t, "n00002").len(), 2, "{t}");
    s.stop().await;
}

#[test]
fn slipway_power_runs_on_the_design_without_a_server() {
    let b = Bmcs::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yaml"), b.site()).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("power")
            .arg("--repo")
            .arg(dir.path())
            .args(["--power-timeout", "2"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["n00001", "n00002", "on"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("n00001\tok\t"), "{out}");
    assert!(lines[1].starts_with("n00002\tok\t"), "{out}");
    assert_eq!(last_ipmi_event(&b).power, "on");

    let (code, out, err) = run(&["n00002", "n00003", "n00004", "nosuch", "status"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("n00002\tok\tstatus: "), "{out}");
    assert!(lines[1].starts_with("n00003\tfailed (timeout)\t"), "{out}");
    assert!(
        lines[2].starts_with("n00004\tfailed (no power driver)\t"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("nosuch\tfailed (unknown node)\t"),
        "{out}"
    );
    assert!(!out.contains(PW) && !err.contains(PW));

    let filter = dir.path().join("filter.json");
    std::fs::write(
        &filter,
        json!({"filter_set_type": "union", "filter_set": [{"filter_type": "union", "node_names": ["n00002"]}]}).to_string(),
    )
    .unwrap();
    let (code, out, err) = run(&["--filter", filter.to_str().unwrap(), "off"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("n00002\tok\t"), "{out}");
    assert_eq!(last_ipmi_event(&b).power, "off");

    let (code, _, err) = run(&["n00001", "fly"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown power action `fly`"), "{err}");
}

/// `GET /v1/introspection/{node}` (the inspector dialect's status).
async fn introspection_status(s: &Server, node: &str) -> Value {
    let r = client()
        .get(s.url(&format!("/v1/introspection/{node}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_with_manage_boot_pxe_boots_and_powers_the_node_and_a_silent_bmc_ends_it_in_error(
) {
    let b = Bmcs::start();
    let (_repo, s) = serve(&b).await;
    let start = |node: &'static str, query: &'static str| {
        let url = s.url(&format!("/v1/introspection/{node}{query}"));
        async move { client().post(url).send().await.unwrap().status().as_u16() }
    };
    // manage_boot defaults to true, as in inspector: PXE once, then on.
    assert_eq!(start("n00001", "").await, 202);
    wait_redfish_power(&b, "On").await;
    assert_eq!(
        emulator_view(&b).await["Boot"]["BootSourceOverrideTarget"],
        "Pxe"
    );
    assert_eq!(introspection_status(&s, "n00001").await["state"], "waiting");
    // IPMI too.
    assert_eq!(start("n00002", "?manage_boot=true").await, 202);
    common::wait_for("the fake BMC's boot device and power on", || async {
        let kinds: Vec<String> = b.ipmi.events().iter().map(|e| e.event.clone()).collect();
        kinds == ["bootdev", "on"]
    })
    .await;
    assert_eq!(b.ipmi.events()[0].boot, "network");
    // A BMC that never answers: the introspection ends as an error naming why.
    assert_eq!(start("n00003", "").await, 202);
    common::wait_for("the silent node's introspection to end", || async {
        introspection_status(&s, "n00003").await["finished"] == true
    })
    .await;
    let st = introspection_status(&s, "n00003").await;
    assert_eq!(st["state"], "error", "{st}");
    assert!(
        st["error"]
            .as_str()
            .unwrap()
            .contains("cannot boot the node into the ramdisk"),
        "{st}"
    );
    assert!(!st.to_string().contains(PW), "no credential in {st}");
}
