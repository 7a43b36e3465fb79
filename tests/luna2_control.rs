//! Luna2's control routes against real emulated BMCs (sushy-emulator for
//! Redfish, pyghmi fake BMCs through the real ipmitool, a BMC that never
//! answers, a node without a power driver): one node synchronously, within
//! the 5 s the clients wait; a hostlist answered at once and polled to
//! Luna2's JSON 404; every refusal; and Luna2's own `lpower` and `luna` CLI
//! driving power of one node and of a hostlist.

mod common;
#[path = "bmc/emulators.rs"]
mod emulators;
#[path = "luna2/server.rs"]
mod luna;

use std::collections::BTreeMap;
use std::time::Duration;

use common::GitRepo;
use emulators::{FakeBmcs, SilentTcp, Sushy, TestBmcs};
use luna::{json_of, Luna};
use serde_json::{json, Value};

/// A password no output would hold by chance.
const PW: &str = "pw-LUNA-c0ntr01";

/// n00001 Redfish (sushy, Off), n00002 and n00005 IPMI (fake BMCs, off),
/// n00003 a Redfish BMC that never answers, n00004 `oob.type: manual`.
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
        } = TestBmcs::start(PW, 2);
        Bmcs {
            sushy,
            ipmi,
            silent_port: silent.port,
            _silent: silent,
        }
    }

    /// The 3-node port-forward fixture, its BMCs pointed at the emulators,
    /// with n00004 (manual) and n00005 (IPMI) added.
    fn site(&self) -> String {
        let base = String::from_utf8(common::fixture("ok/bmc-behind-a-port-forward.yaml")).unwrap();
        let mut text = base.replace(
            "    credential: gs-c8f40864275a58e87c\n    host: bmc-gw.example.com\n    port: 8443\n    scheme: https\n    system: System.Embedded.1\n",
            &format!("    credential: {PW}\n    host: 127.0.0.1\n"),
        );
        assert!(text.contains(PW), "the fixture's oob block changed");
        let node_oob = |n: usize, oob: &str| {
            (
                format!("  host_profile: control-node\n  addressing:\n    - network: oob\n      address: 10.16.1.{n}\n"),
                format!("  host_profile: control-node\n  oob:\n{oob}  addressing:\n    - network: oob\n      address: 10.16.1.{n}\n"),
            )
        };
        let ipmi = |port: u16| format!("    type: ipmi\n    port: {port}\n");
        let silent = format!(
            "    port: {}\n    scheme: http\n    system: '1'\n",
            self.silent_port
        );
        for (n, oob) in [
            (
                1,
                format!(
                    "    port: {}\n    scheme: http\n    system: {}\n",
                    self.sushy.port, self.sushy.systems[0]
                ),
            ),
            (2, ipmi(self.ipmi.ports[0])),
            (3, silent.clone()),
        ] {
            let (from, to) = node_oob(n, &oob);
            assert!(text.contains(&from), "n0000{n}");
            text = text.replacen(&from, &to, 1);
        }
        // n00004 (manual) and n00005 (IPMI): copies of n00003.
        let start = text.find("  name: n00003").unwrap();
        let doc_start = text[..start].rfind("---\n").unwrap();
        let doc = text[doc_start..].to_string();
        let copy = |n: usize, oob: &str| {
            doc.replace("n00003", &format!("n0000{n}"))
                .replace("10.16.1.3", &format!("10.16.1.{n}"))
                .replace("10.32.1.3", &format!("10.32.1.{n}"))
                .replace("10.48.1.3", &format!("10.48.1.{n}"))
                .replace("10.64.1.3", &format!("10.64.1.{n}"))
                .replace("02:bd:50:00:00:03", &format!("02:bd:50:00:00:0{n}"))
                .replace(&silent, oob)
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&copy(4, "    type: manual\n"));
        text.push_str(&copy(5, &ipmi(self.ipmi.ports[1])));
        text
    }

    /// The power state fake BMC `i` last reported (`on`/`off`).
    fn ipmi_power(&self, i: usize) -> Option<String> {
        self.ipmi
            .events_of(self.ipmi.ports[i])
            .last()
            .map(|e| e.power.clone())
    }
}

async fn serve(b: &Bmcs, timeout: Duration) -> Luna {
    let g = GitRepo::new();
    g.write("designs/site.yaml", b.site());
    luna::start(g, |cfg| {
        cfg.power.config.timeout = timeout;
        cfg.power.config.backoff = Duration::from_millis(50);
        cfg.power.config.ipmitool = emulators::ipmitool();
    })
    .await
}

/// `GET` with a client that gives up after 5 s, as `lpower` does.
async fn get5(l: &Luna, path: &str, token: &str) -> (u16, String) {
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = c
        .get(l.s.url(path))
        .header("x-access-tokens", token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: no answer within the clients' 5 s: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_power_and_identify_answer_luna2_codes_and_reach_the_bmcs() {
    let b = Bmcs::start();
    let l = serve(&b, Duration::from_secs(2)).await;
    let t = l.token().await;

    let status = |node: &'static str| {
        let (l, t) = (&l, &t);
        async move { get5(l, &format!("/control/action/power/{node}/_status"), t).await }
    };
    assert_eq!(
        status("n00002").await,
        (200, json!({"control": {"power": "off"}}).to_string())
    );
    assert_eq!(
        status("n00001").await,
        (200, json!({"control": {"power": "off"}}).to_string())
    );
    // On, off, reset, cycle: 204 with no body; the BMC saw each.
    for (action, power) in [
        ("_on", "on"),
        ("_off", "off"),
        ("_cycle", "on"),
        ("_reset", "on"),
    ] {
        let (code, body) = get5(&l, &format!("/control/action/power/n00002/{action}"), &t).await;
        assert_eq!((code, body.as_str()), (204, ""), "{action}");
        assert_eq!(b.ipmi_power(0).as_deref(), Some(power), "{action}");
    }
    assert_eq!(
        status("n00002").await.1,
        json!({"control": {"power": "on"}}).to_string()
    );
    // Chassis identify through the same service.
    let (code, _) = get5(&l, "/control/action/chassis/n00002/_identify", &t).await;
    assert_eq!(code, 204);
    assert_eq!(
        b.ipmi.events_of(b.ipmi.ports[0]).last().unwrap().identify,
        "on"
    );
    let (code, _) = get5(&l, "/control/action/chassis/n00002/_noidentify", &t).await;
    assert_eq!(code, 204);
    assert_eq!(
        b.ipmi.events_of(b.ipmi.ports[0]).last().unwrap().identify,
        "off"
    );

    // A BMC that never answers: 501 in Luna2's control shape, no password.
    let (code, body) = status("n00003").await;
    assert_eq!(code, 501, "{body}");
    let v = json_of(&body);
    assert!(v["control"]["power"].is_string(), "{v}");
    assert!(!body.contains(PW));
    // No driver, unknown node: 404 {"message"}.
    for node in ["n00004", "nosuch"] {
        let (code, body) = status(node).await;
        assert_eq!(code, 404, "{node}: {body}");
        assert!(json_of(&body)["message"].is_string());
    }
    // Refusals.
    let cases = [
        ("/control/action/power/n00002/_status", None, 401),
        ("/control/action/power/n00002/_status", Some("x.y.z"), 401),
        ("/control/action/power/n00002/_fly", Some(t.as_str()), 404),
        ("/control/action/power/n00002/on", Some(t.as_str()), 404),
        ("/control/action/sel/n00002/_list", Some(t.as_str()), 404),
        (
            "/control/action/power/n00002'%20OR%20'1'%3D'1/_status",
            Some(t.as_str()),
            400,
        ),
        (
            "/control/action/power/..%2Fn00002/_status",
            Some(t.as_str()),
            400,
        ),
    ];
    for (path, tok, want) in cases {
        let (code, _, body) = l.get(path, tok).await;
        assert_eq!(code, want, "{path}: {body}");
        assert!(json_of(&body)["message"].is_string(), "{path}: {body}");
    }
    l.s.stop().await;
}

#[tokio::test]
async fn a_silent_bmc_is_answered_501_before_the_clients_give_up_at_5_seconds() {
    let b = Bmcs::start();
    // The power call itself would wait 20 s; the route answers first.
    let l = serve(&b, Duration::from_secs(20)).await;
    let t = l.token().await;
    let (code, body) = get5(&l, "/control/action/power/n00003/_status", &t).await;
    assert_eq!(code, 501, "{body}");
    let msg = json_of(&body)["control"]["power"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("within 4.5 s"), "{msg}");
    l.s.stop().await;
}

/// Polls a bulk request to its end: every result by node, and the
/// terminal answer (code, body).
async fn drain(l: &Luna, t: &str, id: &str, sub: &str) -> (BTreeMap<String, String>, (u16, Value)) {
    let mut results = BTreeMap::new();
    for _ in 0..400 {
        let (code, _, body) = l.get(&format!("/control/status/{id}"), Some(t)).await;
        let v = json_of(&body);
        if code != 200 {
            return (results, (code, v));
        }
        assert_eq!(v["request_id"], id);
        for cat in ["ok", "on", "off"] {
            for (node, _) in v["control"][sub][cat].as_object().unwrap() {
                assert!(
                    results.insert(node.clone(), cat.to_string()).is_none(),
                    "{node} twice"
                );
            }
        }
        for (node, msg) in v["control"]["failed"].as_object().unwrap() {
            assert!(!msg.as_str().unwrap().contains(PW));
            assert!(
                results.insert(node.clone(), "failed".into()).is_none(),
                "{node} twice"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {id} never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_power_over_a_hostlist_is_answered_at_once_and_polled_to_a_json_404() {
    let b = Bmcs::start();
    let l = serve(&b, Duration::from_secs(2)).await;
    let t = l.token().await;
    let body = |sub: &str, action: &str, hl: &str| {
        json!({"control": {sub: {action: {"hostlist": hl}}}}).to_string()
    };
    let (code, text) = l
        .post(
            "/control/action/power/_status",
            Some(&t),
            &body("power", "status", "n0000[1-5],nosuch"),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    let v = json_of(&text);
    let id = v["request_id"].as_str().unwrap().to_string();
    assert!(
        v["control"]["power"].is_object() && v["control"]["failed"].is_object(),
        "{v}"
    );
    let (results, end) = drain(&l, &t, &id, "power").await;
    let want: BTreeMap<String, String> = [
        ("n00001", "off"),
        ("n00002", "off"),
        ("n00003", "failed"),
        ("n00004", "failed"),
        ("n00005", "off"),
        ("nosuch", "failed"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(results, want);
    assert_eq!(end, (404, json!({"message": "No data for this request"})));
    // Once drained it stays gone.
    let (code, _, _) = l.get(&format!("/control/status/{id}"), Some(&t)).await;
    assert_eq!(code, 404);

    // On over the IPMI pair: both BMCs see it.
    let (code, text) = l
        .post(
            "/control/action/power/_on",
            Some(&t),
            &body("power", "on", "n0000[2,5]"),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    let id = json_of(&text)["request_id"].as_str().unwrap().to_string();
    let (results, _) = drain(&l, &t, &id, "power").await;
    assert_eq!(results.values().collect::<Vec<_>>(), ["ok", "ok"]);
    assert_eq!(b.ipmi_power(0).as_deref(), Some("on"));
    assert_eq!(b.ipmi_power(1).as_deref(), Some("on"));

    // Refusals, each JSON {"message"}.
    let cases: Vec<(&str, Option<&str>, String, u16)> = vec![
        (
            "/control/action/power/_on",
            None,
            body("power", "on", "n00002"),
            401,
        ),
        ("/control/action/power/_on", Some(&t), "{oops".into(), 400),
        (
            "/control/action/power/_on",
            Some(&t),
            json!({"control": {}}).to_string(),
            400,
        ),
        (
            "/control/action/power/_on",
            Some(&t),
            body("power", "off", "n00002"),
            400,
        ),
        (
            "/control/action/power/_on",
            Some(&t),
            body("chassis", "on", "n00002"),
            400,
        ),
        (
            "/control/action/power/_on",
            Some(&t),
            body("power", "on", "n[1-"),
            400,
        ),
        (
            "/control/action/power/_on",
            Some(&t),
            body("power", "on", "n[5-1]"),
            400,
        ),
        (
            "/control/action/power/_on",
            Some(&t),
            body("power", "on", "x' OR '1'='1"),
            400,
        ),
        (
            "/control/action/power/_fly",
            Some(&t),
            body("power", "fly", "n00002"),
            404,
        ),
    ];
    for (path, tok, b, want) in cases {
        let (code, text) = l.post(path, tok, &b).await;
        assert_eq!(code, want, "{path} {b}: {text}");
        assert!(json_of(&text)["message"].is_string(), "{text}");
    }
    for (path, tok, want) in [
        ("/control/status/01never", Some(t.as_str()), 404),
        ("/control/status/x'%3B--", Some(t.as_str()), 400),
        ("/control/status/01never", None, 401),
    ] {
        let (code, _, text) = l.get(path, tok).await;
        assert_eq!(code, want, "{path}: {text}");
        assert!(json_of(&text)["message"].is_string());
    }
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_lpower_drives_power_of_one_node_and_of_a_hostlist() {
    let b = Bmcs::start();
    let l = serve(&b, Duration::from_secs(2)).await;
    let run = |which: &'static str, args: &'static [&'static str]| {
        let l = &l;
        async move { tokio::task::block_in_place(|| l.client(which, args)) }
    };
    // lpower, one node: status, on, status.
    let (code, out, err) = run("lpower", &["n00002", "status"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("n00002: off"), "{out}{err}");
    let (code, out, err) = run("lpower", &["n00002", "on"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("n00002: on"), "{out}{err}");
    assert_eq!(b.ipmi_power(0).as_deref(), Some("on"));
    let (_, out, err) = run("lpower", &["n00002", "status"]).await;
    assert!(out.contains("n00002: on"), "{out}{err}");
    // lpower, a hostlist: the bulk path, polled to its end.
    let (code, out, err) = run("lpower", &["n0000[2,5]", "off"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("n00002: power off") && out.contains("n00005: power off"),
        "{out}{err}"
    );
    assert_eq!(b.ipmi_power(0).as_deref(), Some("off"));
    assert_eq!(b.ipmi_power(1).as_deref(), Some("off"));
    let (_, out, err) = run("lpower", &["n0000[1-2],n00005", "status"]).await;
    for n in ["n00001: off", "n00002: off", "n00005: off"] {
        assert!(out.contains(n), "{n} in {out}{err}");
    }
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_luna_cli_drives_power_of_one_node_and_of_a_hostlist() {
    let b = Bmcs::start();
    let l = serve(&b, Duration::from_secs(2)).await;
    let run = |which: &'static str, args: &'static [&'static str]| {
        let l = &l;
        async move { tokio::task::block_in_place(|| l.client(which, args)) }
    };
    // The luna CLI: one node, then a hostlist.
    let (code, out, err) = run("luna", &["control", "power", "on", "n00005"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(b.ipmi_power(1).as_deref(), Some("on"));
    let (code, out, err) = run("luna", &["control", "power", "status", "n00005"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("on"), "{out}{err}");
    let (code, out, err) = run("luna", &["control", "power", "status", "n0000[2,5]"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("n00002") && out.contains("OFF"), "{out}{err}");
    assert!(out.contains("n00005") && out.contains("ON"), "{out}{err}");
    l.s.stop().await;
}
