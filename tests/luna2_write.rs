//! Luna2's config writes through the real server: each becomes a commit on
//! the followed branch (or the review branch of `--write-branch`), authored
//! by the token's user, validated whole, applied before the answer; invalid
//! writes are 400 with the validation messages and commit nothing.

mod common;
#[path = "luna2/site.rs"]
mod site;

use std::time::Duration;

use common::{client, GitRepo, Server};
use serde_json::{json, Value};

const KEY: &str = "luna2-write-test-key";

struct Luna {
    g: GitRepo,
    s: Server,
    token: String,
    _dir: tempfile::TempDir,
}

async fn luna(write_branch: Option<&str>) -> Luna {
    let dir = tempfile::tempdir().unwrap();
    slipway::services::users::add_user(&dir.path().join("users"), "alice", "wonderland").unwrap();
    std::fs::write(dir.path().join("key"), format!("{KEY}\n")).unwrap();
    let g = GitRepo::new();
    g.add_example_site();
    let commit = g.commit("site");
    let db = g.path().join("slipway.db");
    let (users, key) = (dir.path().join("users"), dir.path().join("key"));
    let wb = write_branch.map(str::to_string);
    let s = Server::start_with(g.path(), &db, |cfg| {
        cfg.secret = Some(g.path().join("secret"));
        cfg.users.users = Some(users);
        cfg.users.key_file = Some(key);
        cfg.write_branch = wb;
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;
    let r = client()
        .post(s.url("/token"))
        .json(&json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    Luna {
        g,
        s,
        token,
        _dir: dir,
    }
}

impl Luna {
    /// A request with the token; (code, JSON body or Null).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.raw(method, path, body.map(|b| b.to_string()), Some(&self.token))
            .await
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut r = client().request(method.parse().unwrap(), self.s.url(path));
        if let Some(t) = token {
            r = r.header("x-access-tokens", t);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let r = r.send().await.unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (code, v)
    }

    fn head(&self, branch: &str) -> String {
        self.g.git(&["rev-parse", branch])
    }

    /// The design at `rev`, validated.
    fn design(&self, rev: &str) -> slipway::design::Design {
        let files = slipway::source::Repo::discover(self.g.path())
            .unwrap()
            .design_files(rev, None)
            .unwrap();
        let v = slipway::validate(&files);
        assert!(v.is_valid(), "{:?}", v.messages);
        v.design.unwrap()
    }

    /// The commit the server serves now (no waiting).
    async fn served(&self) -> String {
        let (_, ext) = self.s.get("/api/v1.0/health/extended").await;
        ext["applied_revision"]["commit"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn node_body(name: &str, fields: Value) -> Value {
    json!({"config": {"node": {name: fields}}})
}

fn address_of(d: &slipway::design::Design, node: &str, net: &str) -> Option<String> {
    d.node(node)?
        .data
        .addressing
        .as_ref()?
        .iter()
        .flatten()
        .find(|a| a.network.as_deref() == Some(net))
        .and_then(|a| a.address.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_change_is_a_commit_by_the_token_user_served_before_the_answer() {
    let l = luna(None).await;
    let before = l.head("main");
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00002",
            Some(node_body(
                "n00002",
                json!({"name": "n00002", "comment": "moved", "interfaces": [{"interface": "pxe", "ipaddress": "10.32.1.102"}]}),
            )),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    let head = l.head("main");
    assert_ne!(head, before);
    assert_eq!(
        l.g.git(&["log", "-1", "--format=%an|%cn|%s", "main"]),
        "alice|slipway|luna2: POST /config/node/n00002 by alice"
    );
    assert_eq!(l.g.git(&["rev-parse", "main^"]), before);
    // Read-your-writes: the answer came after the commit was applied.
    assert_eq!(l.served().await, head);
    let d = l.design("main");
    assert_eq!(
        address_of(&d, "n00002", "pxe").as_deref(),
        Some("10.32.1.102")
    );
    let n = d.node("n00002").unwrap();
    let meta = n.data.metadata.as_ref().unwrap();
    assert_eq!(meta.owner_data.as_ref().unwrap()["comment"], "moved");
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_changes_are_400_with_the_validation_messages_and_commit_nothing() {
    let l = luna(None).await;
    let head = l.head("main");
    // An address outside its network.
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00002",
            Some(node_body(
                "n00002",
                json!({"interfaces": [{"interface": "pxe", "ipaddress": "192.168.9.9"}]}),
            )),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("nodes/rack-01.yaml:"), "{msg}");
    assert!(msg.contains("192.168.9.9"), "{msg}");
    // A duplicate name.
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001/_clone",
            Some(node_body("n00001", json!({"newnodename": "n00002"}))),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already present"),
        "{body}"
    );
    // A renamed node onto a taken name.
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001",
            Some(node_body("n00001", json!({"newnodename": "n00003"}))),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    // A field with no design counterpart is named.
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001",
            Some(node_body("n00001", json!({"setupbmc": true}))),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`setupbmc`"),
        "{body}"
    );
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001/interfaces",
            Some(node_body(
                "n00001",
                json!({"interfaces": [{"interface": "pxe", "mtu": 9000}]}),
            )),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`mtu`"),
        "{body}"
    );
    // A group that does not exist: validation says so.
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001",
            Some(node_body("n00001", json!({"group": "no-such-profile"}))),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no-such-profile"),
        "{body}"
    );
    // Malformed bodies, hostile names, missing and bad tokens.
    let (code, body) = l
        .raw(
            "POST",
            "/config/node/n00001",
            Some("{not json".into()),
            Some(&l.token),
        )
        .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (400, Some("data is not valid json"))
    );
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001",
            Some(json!({"config": {"group": {}}})),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = l
        .call(
            "POST",
            "/config/node/n00001",
            Some(node_body("n00002", json!({}))),
        )
        .await;
    assert_eq!(code, 400);
    for bad in ["n0'1", "a;b", "..", "x%20y"] {
        let (code, body) = l
            .call(
                "POST",
                &format!("/config/node/{bad}"),
                Some(node_body(bad, json!({"group": "compute-node"}))),
            )
            .await;
        assert!((400..500).contains(&code), "{bad}: {code} {body}");
    }
    let (code, body) = l
        .raw("GET", "/config/node/n00001/_delete", None, None)
        .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (401, Some("A valid token is missing"))
    );
    let (code, _) = l
        .raw("GET", "/config/node/n00001/_delete", None, Some("garbage"))
        .await;
    assert_eq!(code, 401);
    // Unknown documents.
    let (code, body) = l.call("GET", "/config/node/n09999/_delete", None).await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = l
        .call("GET", "/config/node/n00001/interfaces/eth99/_delete", None)
        .await;
    assert_eq!(code, 404, "{body}");
    // A new node needs a group, as Luna2 says.
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00100",
            Some(node_body("n00100", json!({"comment": "x"}))),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("group name is required"));
    assert_eq!(l.head("main"), head, "nothing was committed");
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_rename_and_delete_of_nodes_groups_and_networks_keep_the_design_valid() {
    let l = luna(None).await;
    let interfaces = json!([
        {"interface": "pxe", "ipaddress": "10.32.3.99", "macaddress": "02:BD:50:00:00:99"},
        {"interface": "oob", "network": "oob", "ipaddress": "10.16.3.99"},
        {"interface": "mgmt", "network": "mgmt", "ipaddress": "10.48.3.99"},
        {"interface": "storage", "network": "storage", "ipaddress": "10.64.3.99"},
    ]);
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00012/_clone",
            Some(node_body(
                "n00012",
                json!({"newnodename": "n00099", "interfaces": interfaces}),
            )),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["message"], "Node n00099 created successfully");
    let d = l.design("main");
    let clone = d.node("n00099").unwrap();
    assert_eq!(
        clone.data.metadata.as_ref().unwrap().boot_mac.as_deref(),
        Some("02:bd:50:00:00:99")
    );
    assert_eq!(
        address_of(&d, "n00099", "oob").as_deref(),
        Some("10.16.3.99")
    );
    // The clone sits beside its source, after it.
    let file = std::fs::read_to_string(l.g.path().join("designs/nodes/rack-03.yaml")).unwrap();
    let shown = l.g.git(&["show", "main:designs/nodes/rack-03.yaml"]);
    assert!(
        shown.starts_with(&file),
        "the rest of the file keeps its bytes"
    );
    assert!(shown.contains("name: n00099"));

    let (code, body) = l.call("GET", "/config/node/n00011/_delete", None).await;
    assert_eq!(code, 204, "{body}");
    assert!(l.design("main").node("n00011").is_none());

    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00099",
            Some(node_body("n00099", json!({"newnodename": "n00098"}))),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    assert!(l.design("main").node("n00098").is_some());

    // Groups: a clone, then a rename the nodes follow.
    let group = |g: &str, fields: Value| json!({"config": {"group": {g: fields}}});
    let (code, body) = l
        .call(
            "POST",
            "/config/group/compute-node/_clone",
            Some(group(
                "compute-node",
                json!({"newgroupname": "compute-b", "comment": "b"}),
            )),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert!(l.design("main").host_profile("compute-b").is_some());
    let (code, body) = l
        .call(
            "POST",
            "/config/group/compute-node",
            Some(group("compute-node", json!({"newgroupname": "compute-a"}))),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    let d = l.design("main");
    assert!(d.host_profile("compute-node").is_none());
    assert!(d
        .nodes
        .iter()
        .any(|n| n.data.host_profile.as_deref() == Some("compute-a")));
    // A group still used cannot go: validation names its users.
    let (code, body) = l.call("GET", "/config/group/compute-a/_delete", None).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = l.call("GET", "/config/group/compute-b/_delete", None).await;
    assert_eq!(code, 204, "{body}");

    // Networks: a gateway, a DHCP range; a new network; a used one stays.
    let net = |n: &str, fields: Value| json!({"config": {"network": {n: fields}}});
    let (code, body) = l
        .call(
            "POST",
            "/config/network/mgmt",
            Some(net(
                "mgmt",
                json!({"gateway": "10.48.0.1", "nameserver_ip": "10.48.0.53"}),
            )),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    let d = l.design("main");
    let mgmt = d.network("mgmt").unwrap();
    assert!(mgmt
        .data
        .routes
        .iter()
        .any(|r| r.gateway.as_deref() == Some("10.48.0.1")));
    let (code, body) = l
        .call(
            "POST",
            "/config/network/lab",
            Some(net(
                "lab",
                json!({"network": "10.99.0.0", "subnet": "255.255.255.0"}),
            )),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        l.design("main")
            .network("lab")
            .unwrap()
            .data
            .cidr
            .as_deref(),
        Some("10.99.0.0/24")
    );
    let (code, body) = l.call("GET", "/config/network/pxe/_delete", None).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = l
        .call(
            "POST",
            "/config/network/lab",
            Some(net("lab", json!({"subnet": "255.0.255.0"}))),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = l.call("GET", "/config/network/lab/_delete", None).await;
    assert_eq!(code, 204, "{body}");
    // Every change above is one commit by alice.
    let authors = l.g.git(&["log", "--format=%an", "main"]);
    assert_eq!(
        authors.lines().filter(|a| *a == "alice").count(),
        9,
        "{authors}"
    );
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_node_changes_through_http_lose_no_update() {
    let l = std::sync::Arc::new(luna(None).await);
    let base = l.head("main");
    let mut tasks = Vec::new();
    for i in 1..=8 {
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            let n = format!("n{i:05}");
            l.call(
                "POST",
                &format!("/config/node/{n}"),
                Some(node_body(&n, json!({"comment": format!("writer {i}")}))),
            )
            .await
        }));
    }
    for t in tasks {
        let (code, body) = t.await.unwrap();
        assert_eq!(code, 204, "{body}");
    }
    assert_eq!(
        l.g.git(&["rev-list", "--count", &format!("{base}..main")]),
        "8"
    );
    let d = l.design("main");
    for i in 1..=8 {
        let n = d.node(&format!("n{i:05}")).unwrap();
        let owner = n
            .data
            .metadata
            .as_ref()
            .unwrap()
            .owner_data
            .as_ref()
            .unwrap();
        assert_eq!(owner["comment"], format!("writer {i}"));
    }
    assert_eq!(l.served().await, l.head("main"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_write_branch_the_followed_branch_never_moves() {
    let l = luna(Some("luna/review")).await;
    let head = l.head("main");
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00004",
            Some(node_body("n00004", json!({"comment": "review me"}))),
        )
        .await;
    assert_eq!(code, 204, "{body}");
    assert_eq!(l.head("main"), head);
    assert_eq!(l.g.git(&["rev-list", "--count", "main..luna/review"]), "1");
    assert_eq!(
        l.g.git(&["log", "-1", "--format=%an|%s", "luna/review"]),
        "alice|luna2: POST /config/node/n00004 by alice"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(l.served().await, head);
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_luna_cli_changes_a_node_and_the_commit_appears_in_git() {
    let l = site::luna(|_| {}).await;
    let home = tempfile::tempdir().unwrap();
    let base = l.g.git(&["rev-parse", "main"]);
    let design = |rev: &str| {
        let files = slipway::source::Repo::discover(l.g.path())
            .unwrap()
            .design_files(rev, None)
            .unwrap();
        let v = slipway::validate(&files);
        assert!(v.is_valid(), "{:?}", v.messages);
        v.design.unwrap()
    };
    // A comment (the CLI sends it base64-encoded) and an address.
    let (ok, out, err) = l
        .client(
            "luna",
            home.path(),
            &["node", "change", "n00003", "-qc", "changed by the cli"],
        )
        .await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        l.g.git(&["log", "-1", "--format=%an|%cn|%s", "main"]),
        "alice|slipway|luna2: POST /config/node/n00003 by alice"
    );
    assert_eq!(l.g.git(&["rev-parse", "main^"]), base);
    let d = design("main");
    let meta = d.node("n00003").unwrap().data.metadata.clone().unwrap();
    assert_eq!(meta.owner_data.unwrap()["comment"], "changed by the cli");
    let (ok, out, err) = l
        .client(
            "luna",
            home.path(),
            &[
                "node",
                "change",
                "n00003",
                "-if",
                "pxe",
                "-I",
                "10.32.1.103",
            ],
        )
        .await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        address_of(&design("main"), "n00003", "pxe").as_deref(),
        Some("10.32.1.103")
    );
    // The CLI shows its own write at once (read-your-writes).
    let (ok, out, err) = l
        .client("luna", home.path(), &["node", "show", "n00003", "-R"])
        .await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("10.32.1.103"), "{out}");
    // A clone gets the next free addresses (and no MAC), as Luna2's does.
    let (ok, out, err) = l
        .client("luna", home.path(), &["node", "clone", "n00012", "n00097"])
        .await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    let d = design("main");
    assert!(d.node("n00097").is_some());
    for net in ["oob", "pxe", "mgmt", "storage"] {
        let (a, b) = (address_of(&d, "n00012", net), address_of(&d, "n00097", net));
        assert!(b.is_some(), "{net}");
        assert_ne!(a, b, "{net}");
    }
    assert_eq!(
        l.g.git(&["log", "-1", "--format=%an|%s", "main"]),
        "alice|luna2: POST /config/node/n00012/_clone by alice"
    );
    // An address outside its network: refused with the messages, no commit.
    let head = l.g.git(&["rev-parse", "main"]);
    let (ok, out, err) = l
        .client(
            "luna",
            home.path(),
            &["node", "change", "n00003", "-if", "pxe", "-I", "172.31.0.9"],
        )
        .await;
    assert!(!ok, "stdout: {out}\nstderr: {err}");
    assert!(format!("{out}{err}").contains("172.31.0.9"), "{out} {err}");
    assert_eq!(l.g.git(&["rev-parse", "main"]), head);
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_posts_its_own_inventory_with_its_install_token_and_nothing_else() {
    let l = luna(None).await;
    let keys = slipway::services::users::TokenKeys::new(
        KEY.as_bytes(),
        slipway::services::users::DEFAULT_TOKEN_EXPIRY,
    );
    let node_token = keys.issue_provision("n00005", Duration::from_secs(600));
    let body = node_body("n00005", json!({"vendor": "HPE", "assettag": "AT-0005"}));
    let (code, v) = l
        .raw(
            "POST",
            "/config/node/n00005",
            Some(body.to_string()),
            Some(&node_token),
        )
        .await;
    assert_eq!(code, 204, "{v}");
    assert_eq!(
        l.g.git(&["log", "-1", "--format=%an|%s", "main"]),
        "n00005|luna2: POST /config/node/n00005 by n00005"
    );
    let d = l.design("main");
    let owner = d
        .node("n00005")
        .unwrap()
        .data
        .metadata
        .clone()
        .unwrap()
        .owner_data
        .unwrap();
    assert_eq!(
        (owner["vendor"].as_str(), owner["assettag"].as_str()),
        ("HPE", "AT-0005")
    );
    let head = l.head("main");
    let other = node_body("n00006", json!({"vendor": "x"}));
    let (code, _) = l
        .raw(
            "POST",
            "/config/node/n00006",
            Some(other.to_string()),
            Some(&node_token),
        )
        .await;
    assert_eq!(code, 403);
    let (code, _) = l
        .raw(
            "GET",
            "/config/node/n00005/_delete",
            None,
            Some(&node_token),
        )
        .await;
    assert_eq!(code, 403);
    assert_eq!(l.head("main"), head);
    l.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_an_invalid_head_is_409_naming_it_and_commits_nothing() {
    let l = luna(None).await;
    l.g.write("designs/broken.yaml", common::BAD_YAML);
    let broken = l.g.commit("broken by hand");
    l.s.wait_status(&broken, "invalid").await;
    let (code, body) = l
        .call(
            "POST",
            "/config/node/n00001",
            Some(node_body("n00001", json!({"comment": "x"}))),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&broken),
        "{body}"
    );
    assert_eq!(l.head("main"), broken);
    l.s.stop().await;
}
