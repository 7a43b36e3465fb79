//! The Commissaire dialect (`/api/v0/…`) through the real server on a real
//! git repository: every route, bad input getting Commissaire's `text/html`
//! 4xx, authentication (403), writes that become commits, and the real
//! `commctl` 0.0.7 from the test virtualenv (`$SLIPWAY_TEST_VENV`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{wait_for, GitRepo, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The operator token of the servers started with tokens.
const TOKEN: &str = "commissaire-test-token";

/// The example site with n00001 and n00002 in cluster `prod` (their own
/// `owner_data`) and an empty cluster `staging` declared on Network `mgmt`.
fn site() -> GitRepo {
    let g = GitRepo::new();
    g.add_example_site();
    let path = g.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    for _ in 0..2 {
        let at = rest.find("    owner_data:\n").unwrap() + "    owner_data:\n".len();
        out.push_str(&rest[..at]);
        out.push_str("      commissaire-cluster: prod\n");
        rest = &rest[at..];
    }
    out.push_str(rest);
    std::fs::write(&path, out).unwrap();
    let path = g.path().join("designs/networks.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let anchor = "  cidr: 10.48.0.0/16\n";
    let text = text.replacen(
        anchor,
        &format!("{anchor}  labels:\n    commissaire-cluster: staging\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    g.commit("site with Commissaire clusters");
    g
}

struct Site {
    g: GitRepo,
    s: Server,
    _dir: tempfile::TempDir,
    tokens: bool,
}

/// The site served; with `tokens`, the server runs with `--tokens` holding [`TOKEN`].
async fn start(tokens: bool) -> Site {
    let g = site();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let file = dir.path().join("tokens");
    std::fs::write(&file, hex::encode(Sha256::digest(TOKEN.as_bytes()))).unwrap();
    let users = dir.path().join("users");
    slipway::services::users::add_user(&users, "carol", "wonderland").unwrap();
    let s = Server::start_with(g.path(), &db, |cfg| {
        if tokens {
            cfg.tokens = Some(file.clone());
            cfg.users.users = Some(users.clone());
        }
    })
    .await
    .unwrap();
    wait_for("the site applied", || async { s.health().await < 300 }).await;
    Site {
        g,
        s,
        _dir: dir,
        tokens,
    }
}

/// One answer: code, content type, body text.
struct Answer {
    code: u16,
    ctype: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(
            self.ctype.starts_with("application/json"),
            "{} {}: {}",
            self.code,
            self.ctype,
            self.text
        );
        serde_json::from_str(&self.text).unwrap()
    }

    /// Commissaire's error: `text/html`, the reason phrase.
    fn assert_error(&self, code: u16, reason: &str) {
        assert_eq!(self.code, code, "{}", self.text);
        assert!(
            self.ctype.starts_with("text/html"),
            "{} {}",
            self.ctype,
            self.text
        );
        assert_eq!(self.text, reason);
    }
}

impl Site {
    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        let mut req = common::client().request(method.parse().unwrap(), self.s.url(path));
        if self.tokens {
            req = req.basic_auth("alice", Some(TOKEN));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        Answer {
            code,
            ctype,
            text: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    /// The head of the followed branch.
    fn head(&self) -> String {
        self.g.git(&["rev-parse", "main"])
    }

    /// A commit's status in Drydock's revision list (with the operator token).
    async fn revision_status(&self, commit: &str) -> String {
        let list: Value = common::client()
            .get(self.s.url("/api/v1.0/revisions"))
            .header("x-auth-token", TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["commit"] == commit)
            .map(|r| r["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| format!("{commit} not listed"))
    }

    /// A file of the followed branch's head.
    fn file(&self, path: &str) -> String {
        self.g.git(&["show", &format!("main:{path}")])
    }
}

/// The example site's nodes with their `mgmt` (primary network) addresses.
fn design_hosts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in ["rack-01.yaml", "rack-02.yaml", "rack-03.yaml"] {
        let text = std::fs::read_to_string(common::example_site().join("nodes").join(f)).unwrap();
        for doc in text.split("\n---\n").skip(1) {
            let name = doc
                .lines()
                .find_map(|l| l.strip_prefix("  name: "))
                .unwrap()
                .to_string();
            let mut lines = doc.lines();
            while let Some(l) = lines.next() {
                if l.trim() == "- network: mgmt" {
                    let a = lines.next().unwrap().trim();
                    out.push((
                        name.clone(),
                        a.strip_prefix("address: ").unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn reads_show_the_designs_clusters_hosts_and_networks_in_commissaires_shapes() {
    let site = start(false).await;
    let hosts = design_hosts();
    assert_eq!(hosts.len(), 12);
    let (n1, n2, n3) = (&hosts[0].1, &hosts[1].1, &hosts[2].1);

    for p in ["/api/v0/clusters", "/api/v0/clusters/"] {
        let a = site.get(p).await;
        assert_eq!(a.code, 200);
        assert_eq!(a.json(), json!(["prod", "staging"]));
    }
    let a = site.get("/api/v0/cluster/prod").await;
    assert_eq!(a.code, 200);
    // Nothing is known of the machines yet: none is active.
    assert_eq!(
        a.json(),
        json!({"name": "prod", "status": "failed", "network": "mgmt", "container_manager": "",
               "hosts": {"total": 2, "available": 0, "unavailable": 2}})
    );
    let a = site.get("/api/v0/cluster/staging/").await;
    assert_eq!(
        a.json(),
        json!({"name": "staging", "status": "ok", "network": "mgmt", "container_manager": "",
               "hosts": {"total": 0, "available": 0, "unavailable": 0}})
    );
    let a = site.get("/api/v0/cluster/prod/hosts").await;
    assert_eq!(a.json(), json!([n1, n2]));
    assert_eq!(
        site.get("/api/v0/cluster/staging/hosts").await.json(),
        json!([])
    );
    let a = site.get(&format!("/api/v0/cluster/prod/hosts/{n1}")).await;
    assert_eq!(a.code, 200);
    assert_eq!(a.json(), json!([n1]));
    site.get(&format!("/api/v0/cluster/prod/hosts/{n3}/"))
        .await
        .assert_error(404, "Not Found");

    let a = site.get("/api/v0/hosts").await;
    assert_eq!(a.code, 200);
    let listed: Vec<String> = a
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = hosts.iter().map(|(_, a)| a.clone()).collect();
    want.sort();
    let mut got = listed.clone();
    got.sort();
    assert_eq!(got, want);
    let a = site.get(&format!("/api/v0/host/{n1}")).await;
    assert_eq!(a.code, 200);
    assert_eq!(
        a.json(),
        json!({"address": n1, "status": "investigating", "os": "jammy", "cpus": 0,
               "memory": 0, "space": 0, "last_check": "", "source": ""})
    );
    let a = site.get(&format!("/api/v0/host/{n1}/status/")).await;
    assert_eq!(
        a.json(),
        json!({"type": "host_only", "host": {"last_check": "", "status": "investigating"},
               "container_manager": {}})
    );
    // No private key is served, for a known host or any other.
    site.get(&format!("/api/v0/host/{n1}/creds"))
        .await
        .assert_error(404, "Not Found");

    let a = site.get("/api/v0/networks").await;
    assert_eq!(a.json(), json!(["mgmt", "oob", "pxe", "storage"]));
    let a = site.get("/api/v0/network/mgmt").await;
    assert_eq!(
        a.json(),
        json!({"name": "mgmt", "type": "flannel_etcd",
               "options": {"cidr": "10.48.0.0/16", "mtu": 1500.0}})
    );
    assert_eq!(
        site.get("/api/v0/containermanagers").await.json(),
        json!([])
    );
    site.get("/api/v0/containermanager/prod_openshift")
        .await
        .assert_error(404, "Not Found");
    site.s.stop().await;
}

#[tokio::test]
async fn a_hosts_facts_and_status_come_from_its_inspection() {
    let site = start(false).await;
    let n1 = design_hosts()[0].1.clone();
    let body = json!({"inventory": {
        "interfaces": [{"name": "eth0", "mac_address": "02:bd:50:00:00:01"}],
        "cpu": {"count": 16},
        "memory": {"physical_mb": 4096},
        "disks": [{"name": "/dev/sda", "size": 1_073_741_824u64},
                  {"name": "/dev/sdb", "size": 2_147_483_648u64}],
        "boot": {"pxe_interface": "02:bd:50:00:00:01"}
    }});
    let r = common::client()
        .post(site.s.url("/v1/continue"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let h = site.get(&format!("/api/v0/host/{n1}")).await.json();
    assert_eq!(h["cpus"], 16);
    assert_eq!(h["memory"], 4096 * 1024);
    assert_eq!(h["space"], 3 * 1024 * 1024);
    // Inspected, not deployed: bootstrapping, with the inspection's time.
    assert_eq!(h["status"], "bootstrapping");
    let t = h["last_check"].as_str().unwrap();
    assert_eq!(t.len(), "2026-12-03T07:20:59".len(), "{t}");
    site.s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_commissaires_text_html_4xx() {
    let site = start(false).await;
    let n1 = design_hosts()[0].1.clone();
    site.get("/api/v0/cluster/nope")
        .await
        .assert_error(404, "Not Found");
    site.get("/api/v0/cluster/nope/hosts")
        .await
        .assert_error(404, "Not Found");
    site.get(&format!("/api/v0/cluster/nope/hosts/{n1}"))
        .await
        .assert_error(404, "Not Found");
    for bad in [
        "/api/v0/host/999.1.1.1",
        "/api/v0/host/10.0.0.1;rm",
        "/api/v0/host/%27%20OR%201=1",
        "/api/v0/host/..%2F..%2Fetc",
        "/api/v0/host/10.48.1.1%00/status",
        "/api/v0/cluster/bad%20name",
        "/api/v0/cluster/prod/hosts/not..an..ip",
        "/api/v0/network/nope",
        "/api/v0/nosuchthing",
        "/api/v0/cluster/prod/hosts/10.48.1.1/extra",
    ] {
        site.get(bad).await.assert_error(404, "Not Found");
    }
    site.call("POST", "/api/v0/clusters", Some("{}"))
        .await
        .assert_error(405, "Method Not Allowed");
    // Not served: machines and Networks are edited in git; no cluster operations.
    site.call("DELETE", &format!("/api/v0/host/{n1}"), None)
        .await
        .assert_error(405, "Method Not Allowed");
    site.call("PUT", "/api/v0/network/mgmt", Some("{}"))
        .await
        .assert_error(405, "Method Not Allowed");
    site.get("/api/v0/cluster/prod/deploy")
        .await
        .assert_error(404, "Not Found");
    // Malformed bodies.
    for body in [
        "{",
        "[]",
        "not json",
        r#"{"old": "x", "new": []}"#,
        r#"{"new": []}"#,
    ] {
        site.call("PUT", "/api/v0/cluster/prod/hosts", Some(body))
            .await
            .assert_error(400, "Bad Request");
    }
    for body in ["{", r#"{"network": 5}"#, "[1]"] {
        site.call("PUT", "/api/v0/cluster/prod", Some(body))
            .await
            .assert_error(400, "Bad Request");
    }
    for body in ["{", r#"{"cluster": ["x"]}"#, r#"{"address": "no;such"}"#] {
        site.call("PUT", "/api/v0/host", Some(body))
            .await
            .assert_error(400, "Bad Request");
    }
    site.s.stop().await;
}

#[tokio::test]
async fn every_route_needs_credentials_and_a_failure_is_403() {
    let site = start(true).await;
    let n1 = design_hosts()[0].1.clone();
    let paths = [
        "/api/v0/clusters".to_string(),
        "/api/v0/cluster/prod".into(),
        "/api/v0/cluster/prod/hosts".into(),
        format!("/api/v0/cluster/prod/hosts/{n1}"),
        "/api/v0/hosts".into(),
        format!("/api/v0/host/{n1}"),
        format!("/api/v0/host/{n1}/status"),
        format!("/api/v0/host/{n1}/creds"),
        "/api/v0/networks".into(),
        "/api/v0/network/mgmt".into(),
        "/api/v0/containermanagers".into(),
    ];
    let c = common::client();
    for p in &paths {
        for req in [
            c.get(site.s.url(p)),
            c.get(site.s.url(p)).basic_auth("alice", Some("wrong")),
            c.get(site.s.url(p)).header("x-auth-token", "wrong"),
        ] {
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 403, "{p}");
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
            assert_eq!(r.text().await.unwrap(), "Forbidden");
        }
    }
    for (p, put) in [
        ("/api/v0/cluster/prod", "{}"),
        ("/api/v0/host", r#"{"address": "10.48.9.9"}"#),
    ] {
        let r = c.put(site.s.url(p)).body(put).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{p}");
    }
    // A user of the users file; a wrong password or an unknown user is refused.
    let basic = |u: &str, p: &str| {
        c.get(site.s.url("/api/v0/clusters"))
            .basic_auth(u, Some(p))
            .send()
    };
    assert_eq!(
        basic("carol", "wonderland")
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        basic("carol", "alice").await.unwrap().status().as_u16(),
        403
    );
    assert_eq!(
        basic("mallory", "wonderland")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    // Every credential presented must hold: a bad Authorization beside a good token is refused.
    for bad in ["Bearer junk", "Basic junk!!", "Digest x"] {
        let r = c
            .get(site.s.url("/api/v0/clusters"))
            .header("x-auth-token", TOKEN)
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{bad}");
    }
    // Basic with the token as the password, and the token itself.
    let r = c
        .get(site.s.url("/api/v0/clusters"))
        .basic_auth("alice", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c
        .get(site.s.url("/api/v0/clusters"))
        .header("x-auth-token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The OpenAPI document is public and lists every route.
    let r = c
        .get(site.s.url("/api/v0/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let spec: Value = r.json().await.unwrap();
    for p in &[
        "/api/v0/clusters",
        "/api/v0/cluster/{name}/hosts/{ip}",
        "/api/v0/host",
    ] {
        assert!(spec["paths"][p].is_object(), "{p}");
    }
    site.s.stop().await;
}

/// Runs the real `commctl` with a config naming the server and the operator
/// token as the password; its stdout and success.
async fn commctl(
    s: &Server,
    dir: &std::path::Path,
    password: &str,
    args: &[&str],
) -> (bool, String) {
    let py = common::venv_python("commctl 0.0.7 (pip install --no-deps ../shared/reference/clients/commctl requests six PyYAML)");
    let bin: PathBuf = py.parent().unwrap().join("commctl");
    assert!(
        bin.exists(),
        "{} missing: install commctl into the venv (scripts/test.sh)",
        bin.display()
    );
    let conf = dir.join("commctl.json");
    std::fs::write(
        &conf,
        json!({"endpoint": s.base, "username": "alice", "password": password}).to_string(),
    )
    .unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(&args)
            .env("COMMCTL_CONFIG", &conf)
            .env("NO_PROXY", "*")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .output()
            .expect("run commctl")
    })
    .await
    .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn the_real_commctl_lists_and_gets_clusters_hosts_and_networks() {
    let site = start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = design_hosts();
    let n1 = hosts[0].1.clone();
    let run = |args: &'static [&'static str]| commctl(&site.s, dir.path(), TOKEN, args);

    let (ok, out) = run(&["cluster", "list"]).await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "- prod\n- staging");
    let (ok, out) = run(&["cluster", "get", "prod"]).await;
    assert!(ok, "{out}");
    let v: Value = serde_yaml_lite(&out);
    assert_eq!(v["name"], "prod");
    assert_eq!(v["network"], "mgmt");
    assert_eq!(v["hosts.total"], "2");
    let (ok, out) = run(&["host", "list", "prod"]).await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), format!("- {}\n- {}", hosts[0].1, hosts[1].1));
    let (ok, out) = run(&["network", "list"]).await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "- mgmt\n- oob\n- pxe\n- storage");
    let (ok, out) = run(&["network", "get", "mgmt"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("name: mgmt") && out.contains("cidr: 10.48.0.0/16"),
        "{out}"
    );
    let (ok, out) = commctl(&site.s, dir.path(), TOKEN, &["host", "get", &n1]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("address: {n1}")) && out.contains("os: jammy"),
        "{out}"
    );
    let (ok, out) = commctl(&site.s, dir.path(), TOKEN, &["host", "status", &n1]).await;
    assert!(ok, "{out}");
    assert!(out.contains("type: host_only"), "{out}");
    let (ok, out) = run(&["cluster", "get", "nope"]).await;
    assert!(ok, "{out}");
    assert!(out.trim().starts_with("No object found."), "{out}");
    // A wrong password: commctl's own words for a 403.
    let (ok, out) = commctl(&site.s, dir.path(), "wrong", &["cluster", "list"]).await;
    assert!(!ok);
    assert!(
        out.contains("The provided credentials were incorrect."),
        "{out}"
    );
    site.s.stop().await;
}

/// commctl prints a dict as block YAML; its scalar lines as `key: value`,
/// nested keys joined with `.` (enough for the cluster record).
fn serde_yaml_lite(text: &str) -> Value {
    let mut out = serde_json::Map::new();
    let mut parent = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        let v = v.trim().trim_matches('\'');
        if indent == 0 {
            parent = k.to_string();
            if !v.is_empty() {
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
        } else {
            out.insert(format!("{parent}.{k}"), Value::String(v.to_string()));
        }
    }
    Value::Object(out)
}

#[tokio::test]
async fn a_host_enrolling_from_an_unknown_address_is_proposed_never_committed_on_the_followed_branch(
) {
    let site = start(true).await;
    let n1 = design_hosts()[0].1.clone();
    let before = site.head();

    let a = site
        .call(
            "PUT",
            "/api/v0/host",
            Some(r#"{"address": "10.48.9.9", "cluster": "prod", "ssh_priv_key": "dGVzdAo=", "remote_user": "root"}"#),
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.text);
    assert_eq!(
        a.json(),
        json!({"address": "10.48.9.9", "status": "investigating", "os": "", "cpus": 0,
               "memory": 0, "space": 0, "last_check": "", "source": ""})
    );
    assert_eq!(site.head(), before, "the followed branch never changes");
    let proposed = site.g.git(&[
        "show",
        "slipway/discovered:designs/discovered/commissaire-10-48-9-9.yaml",
    ]);
    assert!(
        proposed.contains("name: 'commissaire-10-48-9-9'"),
        "{proposed}"
    );
    assert!(
        proposed.contains("network: 'mgmt'") && proposed.contains("address: '10.48.9.9'"),
        "{proposed}"
    );
    assert!(
        proposed.contains("'commissaire-cluster': 'prod'"),
        "{proposed}"
    );
    assert!(
        !proposed.contains("dGVzdAo"),
        "the key is never written: {proposed}"
    );
    // The same host again: the same proposal, no new commit.
    let tip = site.g.git(&["rev-parse", "slipway/discovered"]);
    let a = site
        .call(
            "PUT",
            "/api/v0/host/10.48.9.9",
            Some(r#"{"cluster": "prod"}"#),
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.text);
    assert_eq!(site.g.git(&["rev-parse", "slipway/discovered"]), tip);
    // It is no host until the proposal is merged.
    site.get("/api/v0/host/10.48.9.9")
        .await
        .assert_error(404, "Not Found");

    // A known host gets its record; a cluster it is not in, or none, is a conflict.
    let a = site
        .call("PUT", &format!("/api/v0/host/{n1}"), Some("{}"))
        .await;
    assert_eq!(a.code, 201);
    assert_eq!(a.json()["address"], n1.as_str());
    let a = site
        .call(
            "PUT",
            &format!("/api/v0/host/{n1}"),
            Some(r#"{"cluster": "prod"}"#),
        )
        .await;
    assert_eq!(a.code, 201);
    for c in ["staging", "nope"] {
        site.call(
            "PUT",
            &format!("/api/v0/host/{n1}"),
            Some(&format!(r#"{{"cluster": "{c}"}}"#)),
        )
        .await
        .assert_error(409, "Conflict");
    }
    site.call("PUT", "/api/v0/host/not-an-ip", Some("{}"))
        .await
        .assert_error(400, "Bad Request");
    assert_eq!(site.head(), before);
    site.s.stop().await;
}

/// The subject line and author of a commit.
fn subject_and_author(g: &GitRepo, commit: &str) -> (String, String) {
    (
        g.git(&["log", "-1", "--format=%s", commit]),
        g.git(&["log", "-1", "--format=%an", commit]),
    )
}

#[tokio::test]
async fn membership_writes_become_validated_commits_served_at_once() {
    let site = start(true).await;
    let hosts = design_hosts();
    let (n1, n2, n3) = (&hosts[0].1, &hosts[1].1, &hosts[2].1);
    let before = site.head();

    // Join: a commit by the caller, read back at once.
    let a = site
        .call("PUT", &format!("/api/v0/cluster/staging/hosts/{n3}"), None)
        .await;
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.json(), json!([n3]));
    let joined = site.head();
    assert_ne!(joined, before);
    assert_eq!(
        subject_and_author(&site.g, &joined),
        (
            format!("commissaire: PUT /api/v0/cluster/staging/hosts/{n3} by alice"),
            "alice".into()
        )
    );
    assert!(
        site.file("designs/nodes/rack-01.yaml")
            .matches("commissaire-cluster: staging")
            .count()
            == 1
    );
    assert_eq!(
        site.get("/api/v0/cluster/staging/hosts").await.json(),
        json!([n3])
    );
    assert_eq!(site.revision_status(&joined).await, "applied");
    // Again: nothing to commit.
    let a = site
        .call("PUT", &format!("/api/v0/cluster/staging/hosts/{n3}/"), None)
        .await;
    assert_eq!(a.code, 200);
    assert_eq!(site.head(), joined);
    // A host is in one cluster; unknown hosts and clusters are 404.
    site.call("PUT", &format!("/api/v0/cluster/prod/hosts/{n3}"), None)
        .await
        .assert_error(409, "Conflict");
    site.call("PUT", "/api/v0/cluster/prod/hosts/10.99.0.1", None)
        .await
        .assert_error(404, "Not Found");
    site.call("PUT", &format!("/api/v0/cluster/nope/hosts/{n3}"), None)
        .await
        .assert_error(404, "Not Found");
    site.call(
        "PUT",
        &format!("/api/v0/cluster/staging/hosts/{n3}"),
        Some("{"),
    )
    .await
    .assert_error(400, "Bad Request");
    assert_eq!(site.head(), joined);

    // Leave: staging stays (declared on mgmt); a non-member leaving is a no-op.
    let a = site
        .call(
            "DELETE",
            &format!("/api/v0/cluster/staging/hosts/{n3}"),
            None,
        )
        .await;
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.json(), json!([]));
    let left = site.head();
    assert_ne!(left, joined);
    assert_eq!(
        site.get("/api/v0/cluster/staging/hosts").await.json(),
        json!([])
    );
    let a = site
        .call(
            "DELETE",
            &format!("/api/v0/cluster/staging/hosts/{n3}"),
            None,
        )
        .await;
    assert_eq!(a.code, 200);
    assert_eq!(site.head(), left);

    // The list form: old must be the current set.
    let body = json!({"old": [n1, n2], "new": [n2, n3]}).to_string();
    let a = site
        .call("PUT", "/api/v0/cluster/prod/hosts", Some(&body))
        .await;
    assert_eq!(a.code, 200, "{}", a.text);
    let v = a.json();
    assert_eq!(v["name"], "prod");
    assert_eq!(v["hostset"], json!([n2, n3]));
    let listed = site.head();
    let a = site
        .call("PUT", "/api/v0/cluster/prod/hosts", Some(&body))
        .await;
    a.assert_error(409, "Conflict");
    assert_eq!(site.head(), listed, "a stale `old` commits nothing");
    let body = json!({"old": [n2, n3], "new": [n2, "10.99.0.1"]}).to_string();
    site.call("PUT", "/api/v0/cluster/prod/hosts", Some(&body))
        .await
        .assert_error(404, "Not Found");
    assert_eq!(
        site.get("/api/v0/cluster/prod/hosts").await.json(),
        json!([n2, n3])
    );

    // Clusters: declared on a Network (unknown networks fall back to the default).
    let a = site
        .call(
            "PUT",
            "/api/v0/cluster/qa",
            Some(r#"{"network": "storage", "type": "kubernetes"}"#),
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.text);
    assert_eq!(
        a.json(),
        json!({"name": "qa", "status": "ok", "network": "storage", "container_manager": ""})
    );
    let a = site
        .call(
            "PUT",
            "/api/v0/cluster/qa2",
            Some(r#"{"network": "default"}"#),
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.text);
    assert_eq!(a.json()["network"], "mgmt");
    assert_eq!(
        site.get("/api/v0/clusters").await.json(),
        json!(["prod", "qa", "qa2", "staging"])
    );
    site.call(
        "PUT",
        "/api/v0/cluster/qa3",
        Some(r#"{"container_manager": "prod_openshift"}"#),
    )
    .await
    .assert_error(409, "Conflict");
    site.call("DELETE", "/api/v0/cluster/prod", None)
        .await
        .assert_error(409, "Conflict");
    let a = site.call("DELETE", "/api/v0/cluster/qa", None).await;
    assert_eq!(a.code, 200, "{}", a.text);
    assert_eq!(a.json(), json!([]));
    site.get("/api/v0/cluster/qa")
        .await
        .assert_error(404, "Not Found");
    site.call("DELETE", "/api/v0/cluster/qa", None)
        .await
        .assert_error(404, "Not Found");
    // Every commit validated and applied.
    let head = site.head();
    assert_eq!(site.revision_status(&head).await, "applied");
    site.s.stop().await;
}

#[tokio::test]
async fn concurrent_joins_of_different_hosts_lose_no_update() {
    let site = start(true).await;
    let hosts = design_hosts();
    let joining: Vec<String> = hosts[2..8].iter().map(|(_, a)| a.clone()).collect();
    let calls = joining.iter().map(|a| {
        let url = site.s.url(&format!("/api/v0/cluster/staging/hosts/{a}"));
        async move {
            common::client()
                .put(url)
                .basic_auth("alice", Some(TOKEN))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let codes = futures_join(calls).await;
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    let mut want = joining.clone();
    want.sort_by_key(|a| a.parse::<std::net::IpAddr>().unwrap());
    assert_eq!(
        site.get("/api/v0/cluster/staging/hosts").await.json(),
        json!(want)
    );
    site.s.stop().await;
}

/// Runs the futures at once.
async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_real_commctl_joins_and_unjoins_a_host_and_creates_clusters_and_hosts() {
    let site = start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let n3 = design_hosts()[2].1.clone();
    let ctl = |args: Vec<String>| {
        let s = &site.s;
        let d = dir.path().to_path_buf();
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            commctl(s, &d, TOKEN, &a).await
        }
    };
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (ok, out) = ctl(v(&["host", "join", &n3, "staging"])).await;
    assert!(ok, "{out}");
    assert_eq!(out.trim(), format!("- {n3}"));
    assert_eq!(
        site.get("/api/v0/cluster/staging/hosts").await.json(),
        json!([n3])
    );
    let (_, author) = subject_and_author(&site.g, &site.head());
    assert_eq!(author, "alice");
    let (ok, out) = ctl(v(&["host", "unjoin", &n3, "staging"])).await;
    assert!(ok, "{out}");
    assert_eq!(
        site.get("/api/v0/cluster/staging/hosts").await.json(),
        json!([])
    );

    let (ok, out) = ctl(v(&["cluster", "create", "-n", "storage", "qa"])).await;
    assert!(ok, "{out}");
    let a = site.get("/api/v0/cluster/qa").await.json();
    assert_eq!(a["network"], "storage");
    let (ok, out) = ctl(v(&["cluster", "delete", "qa"])).await;
    assert!(ok, "{out}");
    site.get("/api/v0/cluster/qa")
        .await
        .assert_error(404, "Not Found");

    // An unknown host created with a key: a proposal, the key never written.
    let key = dir.path().join("id_rsa");
    std::fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n",
    )
    .unwrap();
    let before = site.head();
    let (ok, out) = ctl(v(&[
        "host",
        "create",
        "-c",
        "prod",
        "10.48.9.10",
        key.to_str().unwrap(),
    ]))
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("address: 10.48.9.10") && out.contains("status: investigating"),
        "{out}"
    );
    assert_eq!(site.head(), before);
    let proposed = site.g.git(&[
        "show",
        "slipway/discovered:designs/discovered/commissaire-10-48-9-10.yaml",
    ]);
    assert!(
        !proposed.contains("PRIVATE KEY") && !proposed.contains("LS0t"),
        "{proposed}"
    );
    // `host ssh` reads the creds: never served.
    let (ok, out) = ctl(v(&["host", "ssh", &n3])).await;
    assert!(!out.contains("PRIVATE"), "{ok} {out}");
    site.s.stop().await;
}

#[tokio::test]
async fn a_hosts_luna2_monitor_status_makes_it_active_and_its_cluster_ok() {
    let site = start(true).await;
    let hosts = design_hosts();
    let c = common::client();
    let r = c
        .post(site.s.url("/token"))
        .json(&json!({"username": "carol", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let token: Value = r.json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let post = |node: String, state: &'static str| {
        let url = site.s.url(&format!("/monitor/status/{node}"));
        let token = token.clone();
        let c = c.clone();
        async move {
            c.post(url)
                .header("x-access-tokens", token)
                .json(&json!({"monitor": {"status": {node: {"state": state}}}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let code = post(hosts[0].0.clone(), "installer.completed").await;
    assert!((200..300).contains(&code), "{code}");
    let h = site
        .get(&format!("/api/v0/host/{}", hosts[0].1))
        .await
        .json();
    assert_eq!(h["status"], "active");
    let v = site.get("/api/v0/cluster/prod").await.json();
    assert_eq!(v["status"], "degraded");
    assert_eq!(
        v["hosts"],
        json!({"total": 2, "available": 1, "unavailable": 1})
    );
    let code = post(hosts[1].0.clone(), "installer.completed").await;
    assert!((200..300).contains(&code), "{code}");
    assert_eq!(
        site.get("/api/v0/cluster/prod").await.json()["status"],
        "ok"
    );
    let code = post(hosts[1].0.clone(), "installer.error").await;
    assert!((200..300).contains(&code), "{code}");
    let h = site
        .get(&format!("/api/v0/host/{}/status", hosts[1].1))
        .await
        .json();
    assert_eq!(h["host"]["status"], "failed");
    site.s.stop().await;
}
