//! Boot data and boot-action signals through the real server on 127.0.0.1:0.

mod common;

use std::io::Read;
use std::time::Duration;

use common::pg::Backend;
use common::{client, GitRepo, Server};
use serde_json::{json, Value};
use slipway::render::bootdata::BootDataKind;

/// A server on the example site, its applied commit, and the temp dir of its db.
async fn start() -> (GitRepo, tempfile::TempDir, Server, String) {
    start_on(Backend::Sqlite).await
}

/// [`start`] on `backend`; the database is `db_of(&dir, backend)`.
async fn start_on(backend: Backend) -> (GitRepo, tempfile::TempDir, Server, String) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let db = backend.db_named(dir.path(), "s.db");
    std::fs::write(dir.path().join("db-url"), db.display().to_string()).unwrap();
    let s = Server::start(repo.path(), &db, Duration::from_secs(3600)).await;
    s.wait_status(&commit, "applied").await;
    (repo, dir, s, commit)
}

/// The database [`start_on`] gave the server in `dir`.
fn db_of(dir: &tempfile::TempDir) -> std::path::PathBuf {
    std::fs::read_to_string(dir.path().join("db-url"))
        .unwrap()
        .into()
}

async fn identity(s: &Server, host: &str) -> Value {
    let (code, body) = s.get(&format!("/api/v1.0/nodes/{host}/identity")).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// GETs boot data with an optional key and If-None-Match; (status, headers, bytes).
async fn get_data(
    s: &Server,
    path: &str,
    key: Option<&str>,
    etag: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = client().get(s.url(path));
    if let Some(k) = key {
        req = req.header("X-Bootaction-Key", k);
    }
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let headers = r.headers().clone();
    (code, headers, r.bytes().await.unwrap().to_vec())
}

/// (path, mode, uid, gid, content) of each member.
fn members(tgz: &[u8]) -> Vec<(String, u32, u64, u64, String)> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let (mode, uid, gid) = {
                let h = e.header();
                (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap())
            };
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            (path, mode, uid, gid, body)
        })
        .collect()
}

async fn post(s: &Server, action_id: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = client()
        .post(s.url(&format!("/api/v1.0/bootactions/{action_id}")))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("X-Bootaction-Key", k);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn bootdata_auth_etag_and_tarball_listing(backend: Backend) {
    let (_repo, _dir, s, _) = start_on(backend).await;
    let id = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    let units = "/api/v1.0/bootactions/nodes/n00001/units";

    assert_eq!(
        get_data(
            &s,
            "/api/v1.0/bootactions/nodes/nope/units",
            Some(&key),
            None
        )
        .await
        .0,
        404
    );
    let (code, h, _) = get_data(&s, units, None, None).await;
    assert_eq!(code, 401);
    assert_eq!(h["www-authenticate"], "Bootaction-Key");
    assert_eq!(
        get_data(&s, units, Some(&"0".repeat(64)), None).await.0,
        403
    );
    assert_eq!(get_data(&s, units, Some("not-hex"), None).await.0, 403);
    let other = identity(&s, "n00002").await;
    assert_eq!(
        get_data(&s, units, other["identity_key"].as_str(), None)
            .await
            .0,
        403,
        "another node's key"
    );

    let (code, h, bytes) = get_data(&s, units, Some(&key), None).await;
    assert_eq!(code, 200);
    assert_eq!(h["content-type"], "application/gzip");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"n00001-units.tar.gz\""
    );
    let etag = h["etag"].to_str().unwrap().to_string();
    assert_eq!(etag.len(), 66);
    let (code, _, again) = get_data(&s, units, Some(&key), None).await;
    assert_eq!(code, 200);
    assert_eq!(again, bytes, "repeated GETs give the same bytes");
    assert_eq!(get_data(&s, units, Some(&key), Some(&etag)).await.0, 304);
    // The alias serves the same bytes.
    let alias = get_data(&s, "/api/v1.0/bootdata/n00001/units", Some(&key), None).await;
    assert_eq!((alias.0, alias.2), (200, bytes.clone()));

    let m = members(&bytes);
    let paths: Vec<&str> = m.iter().map(|x| x.0.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "members sorted by path");
    assert!(paths.contains(&"/etc/systemd/system/gensite-firstboot.service"));
    for (path, mode, uid, gid, body) in &m {
        assert!(path.starts_with('/'), "{path}");
        assert_eq!((*uid, *gid), (0, 0));
        assert_eq!(*mode, 0o644, "{path}");
        assert!(!body.contains("{{"), "{path} is rendered");
    }
    let firstboot = &m
        .iter()
        .find(|x| x.0.ends_with("firstboot.service"))
        .unwrap()
        .4;
    let base = id["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "base-config")
        .unwrap();
    assert!(firstboot.contains(&format!(
        "ACTION_ID={}",
        base["action_id"].as_str().unwrap()
    )));
    assert!(firstboot.contains("NODE_NAME=n00001"));

    // files, pkg_list, all
    let files = get_data(
        &s,
        "/api/v1.0/bootactions/nodes/n00001/files",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(files.0, 200);
    let all = get_data(
        &s,
        "/api/v1.0/bootactions/nodes/n00001/all",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(members(&all.2).len(), m.len() + members(&files.2).len());
    let pkgs = get_data(
        &s,
        "/api/v1.0/bootactions/nodes/n00001/pkg_list",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(pkgs.0, 200);
    assert_eq!(pkgs.1["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(&pkgs.2)
        .unwrap()
        .is_object());
    assert_eq!(
        get_data(&s, "/api/v1.0/bootdata/n00001/all", Some(&key), None)
            .await
            .0,
        404
    );
    s.stop().await;
}

async fn deployment_kept_across_unrelated_commits_renewed_by_own_change(backend: Backend) {
    let (repo, _dir, s, _) = start_on(backend).await;
    let id1 = identity(&s, "n00001").await;
    let key = id1["identity_key"].as_str().unwrap().to_string();
    let units = "/api/v1.0/bootactions/nodes/n00001/units";
    let before = get_data(&s, units, Some(&key), None).await.2;

    // Change another node only.
    let f = repo.path().join("designs/nodes/rack-02.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("02:bd:50:00:00:05", "02:bd:50:00:00:55")).unwrap();
    let c2 = repo.commit("change n00005");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&c2, "applied").await;
    let id2 = identity(&s, "n00001").await;
    assert_eq!(
        id2, id1,
        "unaffected node keeps its deployment, ids and key"
    );
    let (code, _, after) = get_data(&s, units, Some(&key), None).await;
    assert_eq!(code, 200);
    assert_eq!(after, before, "unaffected node keeps its bytes");

    // Change this node.
    let f = repo.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("02:bd:50:00:00:01"));
    std::fs::write(&f, text.replace("02:bd:50:00:00:01", "02:bd:50:00:00:11")).unwrap();
    let c3 = repo.commit("change n00001");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&c3, "applied").await;
    let id3 = identity(&s, "n00001").await;
    assert_ne!(id3["deployment"], id1["deployment"]);
    assert_ne!(id3["identity_key"], id1["identity_key"]);
    assert_eq!(
        get_data(&s, units, Some(&key), None).await.0,
        403,
        "old key"
    );
    let new_key = id3["identity_key"].as_str().unwrap();
    let (code, _, renewed) = get_data(&s, units, Some(new_key), None).await;
    assert_eq!(code, 200);
    assert_ne!(renewed, before);
    s.stop().await;
}

/// The sum of every sample of the metric `name` in a Prometheus text page
/// (all label sets); panics when the page has no such series.
fn metric_sum(page: &str, name: &str) -> f64 {
    let mut found = false;
    let mut sum = 0.0;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let metric = series.split('{').next().unwrap();
        if metric == name {
            found = true;
            sum += value.parse::<f64>().expect("a number");
        }
    }
    assert!(found, "no series {name} in:\n{page}");
    sum
}

async fn metrics(s: &Server) -> String {
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.unwrap()
}

const RENDERS: &str = "slipway_boot_data_renders_total";
const RERENDERED: &str = "slipway_reconcile_nodes_rerendered_total";

async fn one_node_commit_rerenders_only_that_node_and_serves_the_rest_from_cache(backend: Backend) {
    let (repo, _dir, s, _) = start_on(backend).await;
    let (code, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!(code, 200);
    let hosts: Vec<String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["hostname"].as_str().unwrap().to_string())
        .collect();
    assert!(hosts.len() >= 10, "{nodes}");
    let kinds = ["units", "files"];
    let fetch_all = |keys: Vec<(String, String)>| {
        let s = &s;
        async move {
            let mut etags = std::collections::BTreeMap::new();
            for (host, key) in &keys {
                for kind in kinds {
                    let path = format!("/api/v1.0/bootactions/nodes/{host}/{kind}");
                    let (code, headers, _) = get_data(s, &path, Some(key), None).await;
                    assert_eq!(code, 200, "{path}");
                    etags.insert(path, headers["etag"].to_str().unwrap().to_string());
                }
            }
            etags
        }
    };
    let mut keys = Vec::new();
    for h in &hosts {
        let id = identity(&s, h).await;
        keys.push((h.clone(), id["identity_key"].as_str().unwrap().to_string()));
    }
    let before = metric_sum(&metrics(&s).await, RENDERS);
    let etags1 = fetch_all(keys.clone()).await;
    let after_first = metric_sum(&metrics(&s).await, RENDERS);
    assert_eq!(
        after_first - before,
        (hosts.len() * kinds.len()) as f64,
        "first requests render each node's data once"
    );
    let etags2 = fetch_all(keys.clone()).await;
    assert_eq!(etags2, etags1);
    assert_eq!(
        metric_sum(&metrics(&s).await, RENDERS),
        after_first,
        "repeated requests are served from the cache"
    );

    // A commit that changes one node (n00005's MAC address).
    let rerendered_before = metric_sum(&metrics(&s).await, RERENDERED);
    let f = repo.path().join("designs/nodes/rack-02.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("02:bd:50:00:00:05"));
    std::fs::write(&f, text.replace("02:bd:50:00:00:05", "02:bd:50:00:00:55")).unwrap();
    let c2 = repo.commit("change n00005");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&c2, "applied").await;
    let page = metrics(&s).await;
    assert_eq!(
        metric_sum(&page, RERENDERED) - rerendered_before,
        1.0,
        "the reconcile pass rendered exactly one node again"
    );
    assert_eq!(
        metric_sum(&page, RENDERS) - after_first,
        kinds.len() as f64,
        "only the changed node's data (the kinds it had asked for) was rendered"
    );

    // Every other node is served from the cache, unchanged; the changed node
    // has a new deployment (new key) whose data was rendered by the pass.
    let mut keys2 = Vec::new();
    for h in &hosts {
        let id = identity(&s, h).await;
        keys2.push((h.clone(), id["identity_key"].as_str().unwrap().to_string()));
    }
    for ((h, k1), (_, k2)) in keys.iter().zip(&keys2) {
        assert_eq!(
            k1 != k2,
            h == "n00005",
            "{h}: only the changed node gets a new key"
        );
    }
    let etags3 = fetch_all(keys2).await;
    for (path, etag) in &etags3 {
        assert_eq!(
            etag != &etags1[path],
            path.contains("/n00005/"),
            "{path}: only the changed node's data changes"
        );
    }
    assert_eq!(
        metric_sum(&metrics(&s).await, RENDERS) - after_first,
        kinds.len() as f64,
        "after the commit, no request rendered anything"
    );
    s.stop().await;
}

async fn signals_codes_and_builddata(backend: Backend) {
    let (_repo, _dir, s, _) = start_on(backend).await;
    let id = identity(&s, "n00001").await;
    let node_key = id["identity_key"].as_str().unwrap().to_string();
    let action = id["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "base-config")
        .unwrap()
        .clone();
    let aid = action["action_id"].as_str().unwrap().to_string();
    assert_eq!(action["status"], "Incomplete");
    let ok = r#"{"details":[{"message":"started","error":false}]}"#;

    assert_eq!(
        post(&s, "01ARZ3NDEKTSV4RRFFQ69G5FAV", Some(&node_key), ok)
            .await
            .0,
        404
    );
    assert_eq!(post(&s, &aid, None, ok).await.0, 401);
    assert_eq!(post(&s, &aid, Some(&"a".repeat(64)), ok).await.0, 403);
    let other = identity(&s, "n00002").await;
    assert_eq!(
        post(&s, &aid, other["identity_key"].as_str(), ok).await.0,
        403,
        "another node's identity key"
    );
    for (body, want) in [
        ("not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        (r#"{"status":"Done"}"#, "`status` must be one of"),
        (r#"{"details":{}}"#, "`details` must be a list"),
        (
            r#"{"details":[{"error":false}]}"#,
            "details[0] has no `message`",
        ),
        (
            r#"{"details":[{"message":"x","error":"no"}]}"#,
            "details[0].error must be a boolean",
        ),
        (
            r#"{"details":[{"message":1,"error":false}]}"#,
            "details[0].message must be a string",
        ),
        (r#"{"bogus":1}"#, "unexpected key `bogus`"),
    ] {
        let (code, b) = post(&s, &aid, Some(&node_key), body).await;
        assert_eq!(code, 400, "{body}: {b}");
        assert!(b["message"].as_str().unwrap().contains(want), "{body}: {b}");
    }

    // Progress with the node key, extra keys kept.
    let (code, b) = post(
        &s,
        &aid,
        Some(&node_key),
        r#"{"details":[{"message":"started","error":false,"step":1}]}"#,
    )
    .await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["status"], "Incomplete");
    assert_eq!(b["details"][0]["extra"], json!({"step": 1}));
    // The singular alias takes reports too.
    let r = client()
        .post(s.url(&format!("/api/v1.0/bootaction/{aid}")))
        .header("X-Bootaction-Key", &node_key)
        .body(r#"{"details":[{"message":"via alias","error":false}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Final with the action's own key (read from the rendered unit's key? use the route's key).
    let (code, b) = post(
        &s,
        &aid,
        Some(&node_key),
        r#"{"status":"success","details":[{"message":"done","error":false}]}"#,
    )
    .await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["status"], "Success");
    assert!(b["finalized"].is_string());
    assert_eq!(b["details"].as_array().unwrap().len(), 3);
    assert_eq!(post(&s, &aid, Some(&node_key), ok).await.0, 409);

    // signaling: false actions are Unreported and never accept reports.
    let comp = identity(&s, "n00005").await;
    let tuning = comp["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "compute-tuning")
        .unwrap()
        .clone();
    assert_eq!(tuning["status"], "Unreported");
    assert_eq!(tuning["signaling"], false);
    assert_eq!(
        post(
            &s,
            tuning["action_id"].as_str().unwrap(),
            comp["identity_key"].as_str(),
            ok
        )
        .await
        .0,
        409
    );

    let (code, bd) = s.get("/api/v1.0/nodes/n00001/builddata?latest=true").await;
    assert_eq!(code, 200);
    let rec = bd
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["generator"] == "bootaction:base-config")
        .unwrap()
        .clone();
    assert_eq!(rec["node_name"], "n00001");
    assert_eq!(rec["data_format"], "application/json");
    let el: Value = serde_json::from_str(rec["data_element"].as_str().unwrap()).unwrap();
    assert_eq!(el["status"], "Success");
    assert_eq!(el["details"][0]["message"], "done");
    let (_, all) = s.get("/api/v1.0/nodes/n00001/builddata").await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    s.stop().await;
}

async fn two_hundred_concurrent_reports_are_all_recorded(backend: Backend) {
    let (_repo, dir, s, _) = start_on(backend).await;
    let id = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    let aid = id["actions"][0]["action_id"].as_str().unwrap().to_string();
    let url = s.url(&format!("/api/v1.0/bootactions/{aid}"));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (url, key) = (url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            c.post(url)
                .header("X-Bootaction-Key", key)
                .body(format!(
                    r#"{{"details":[{{"message":"step {i}","error":false}}]}}"#
                ))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    s.stop().await;
    let store = slipway::state::Store::open(&db_of(&dir)).unwrap();
    assert_eq!(store.boot_action_details(&aid).unwrap().len(), 200);
}

fn slipway(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .env("SLIPWAY_LOG", "warn")
        .output()
        .expect("run slipway")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_node_key_and_render_match_the_server() {
    let (repo, dir, s, _) = start().await;
    let db = dir.path().join("s.db");
    let (repo_s, db_s) = (repo.path().to_str().unwrap(), db.to_str().unwrap());
    let out = slipway(&["node-key", "n00001", "--repo", repo_s, "--db", db_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let id = identity(&s, "n00001").await;
    assert_eq!(key, id["identity_key"].as_str().unwrap());

    let (code, _, served) = get_data(
        &s,
        "/api/v1.0/bootactions/nodes/n00001/units",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let file = dir.path().join("units.tar.gz");
    let report_url = s.url("/api/v1.0/bootactions/");
    let out = slipway(&[
        "render",
        "n00001",
        "--repo",
        repo_s,
        "--units",
        "--db",
        db_s,
        "--report-url",
        &report_url,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        served,
        "offline render = served bytes"
    );

    // Without a database: placeholder action ids.
    let out = slipway(&["render", "n00001", "--repo", repo_s, "--files"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = members(&out.stdout);
    assert!(m.iter().any(|x| x.4.contains("00000000000000000000000000")));
    let out = slipway(&["render", "nope", "--repo", repo_s, "--units"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("node nope is not in the applied design"));
    s.stop().await;
}

fn example() -> slipway::design::Design {
    let files = slipway::source::read_dir_files(&common::example_site()).unwrap();
    let v = slipway::validate(&files);
    assert!(v.is_valid());
    v.design.unwrap()
}

fn render(d: &slipway::design::Design, node: &str, kind: BootDataKind) -> Vec<u8> {
    slipway::services::render_offline(d, node, kind, 1_700_000_000, "abc", "http://x/", &|_| None)
        .unwrap()
}

#[test]
fn pipelines_run_and_repeated_renders_give_same_bytes() {
    let d = example();
    for kind in [
        BootDataKind::Units,
        BootDataKind::Files,
        BootDataKind::All,
        BootDataKind::PkgList,
    ] {
        assert_eq!(render(&d, "n00005", kind), render(&d, "n00005", kind));
    }
    let files = render(&d, "n00005", BootDataKind::Files);
    let m = members(&files);
    let get = |p: &str| m.iter().find(|x| x.0 == p).unwrap_or_else(|| panic!("{p}"));
    // base64_decode, no template.
    let sysctl = get("/etc/sysctl.d/60-gensite-compute.conf");
    assert_eq!(sysctl.1, 0o644);
    assert!(sysctl.4.contains("vm.swappiness = 10"), "{}", sysctl.4);
    // utf8_decode without template: braces stay.
    assert!(get("/etc/default/gensite-compute")
        .4
        .contains("'{{ not a template }}'"));
    // A node the compute action does not target has none of its files.
    let other = members(&render(&d, "n00001", BootDataKind::Files));
    assert!(other.iter().all(|x| !x.0.contains("gensite-compute")));
    assert!(matches!(
        slipway::services::render_offline(&d, "nope", BootDataKind::Units, 0, "", "", &|_| None),
        Err(slipway::services::BootError::UnknownNode(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_secret_readable_by_others_and_creates_one_0600() {
    use std::os::unix::fs::PermissionsExt;
    let repo = GitRepo::new();
    repo.add_example_site();
    repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("wide.secret");
    std::fs::write(&secret, [0u8; 32]).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = dir.path().join("s.db");
    let err = Server::start_with(repo.path(), &db, |cfg| cfg.secret = Some(secret.clone()))
        .await
        .err()
        .expect("a 0644 secret is refused");
    let text = err.to_string();
    assert!(
        text.contains("expected permissions 0600") && text.contains("0644"),
        "{text}"
    );

    // The default: `<db>.secret`, created 0600.
    let s = Server::start(repo.path(), &db, Duration::from_secs(3600)).await;
    let created = dir.path().join("s.db.secret");
    let meta = std::fs::metadata(&created).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    s.stop().await;
}

#[test]
fn location_assets_are_skipped_and_permissions_default_to_0600() {
    let mut files = slipway::source::read_dir_files(&common::example_site()).unwrap();
    files.push(slipway::design::DesignFile {
        path: "zz-extra.yaml".into(),
        bytes: br#"---
schema: 'drydock/BootAction/v1'
metadata:
  schema: 'metadata/Document/v1'
  name: fetched
  layeringDefinition:
    abstract: false
    layer: site
data:
  signaling: false
  node_filter:
    filter_set_type: union
    filter_set:
      - filter_type: union
        node_names:
          - n00001
  assets:
    - path: /opt/fetched/remote.bin
      type: file
      location: http://127.0.0.1:9/remote.bin
    - path: /opt/fetched/local.txt
      type: file
      data: local
      data_pipeline:
        - utf8_decode
...
"#
        .to_vec(),
    });
    let v = slipway::validate(&files);
    assert!(v.is_valid(), "{:?}", v.messages);
    let d = v.design.unwrap();
    let m = members(&render(&d, "n00001", BootDataKind::Files));
    assert!(m.iter().all(|x| x.0 != "/opt/fetched/remote.bin"));
    let local = m.iter().find(|x| x.0 == "/opt/fetched/local.txt").unwrap();
    assert_eq!((local.1, local.4.as_str()), (0o600, "local"));
}

crate::per_backend_async!(
    bootdata_auth_etag_and_tarball_listing,
    deployment_kept_across_unrelated_commits_renewed_by_own_change,
    one_node_commit_rerenders_only_that_node_and_serves_the_rest_from_cache,
    signals_codes_and_builddata,
    two_hundred_concurrent_reports_are_all_recorded,
);
