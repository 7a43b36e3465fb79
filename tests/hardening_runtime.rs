//! The serving runtime under restart, load and signals (issue 10, points 2, 3,
//! 4 and 5b): concurrent first requests after a restart are all answered, a
//! second server on the same database is refused, SIGTERM ends the process in
//! bounded time, a revision whose boot data does not render with its real ids
//! and keys is never applied, and a revision deleting too many nodes is
//! refused unless allowed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{client, wait_for, GitRepo, Server, TIMEOUT};
use serde_json::Value;

const NEVER: Duration = Duration::from_secs(3600);

/// The identity key of every node of the applied design, by hostname.
async fn node_keys(s: &Server) -> Vec<(String, String)> {
    let (code, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!(code, 200, "{nodes}");
    let mut out = Vec::new();
    for n in nodes.as_array().unwrap() {
        let host = n["hostname"].as_str().unwrap().to_string();
        let (code, id) = s.get(&format!("/api/v1.0/nodes/{host}/identity")).await;
        assert_eq!(code, 200, "{id}");
        out.push((host, id["identity_key"].as_str().unwrap().to_string()));
    }
    out
}

/// Fires `n` boot-data GETs at once, spread over `keys` and the four kinds;
/// returns each one's status code.
async fn concurrent_gets(base: &str, keys: &[(String, String)], n: usize) -> Vec<u16> {
    let kinds = ["units", "files", "all", "pkg_list"];
    let mut tasks = Vec::new();
    for i in 0..n {
        let (host, key) = keys[i % keys.len()].clone();
        let url = format!(
            "{base}/api/v1.0/bootactions/nodes/{host}/{}",
            kinds[i % kinds.len()]
        );
        tasks.push(tokio::spawn(async move {
            // Each request is bounded: a hang fails the test instead of
            // stalling it.
            match client()
                .get(&url)
                .header("X-Bootaction-Key", key)
                .send()
                .await
            {
                Ok(r) => r.status().as_u16(),
                Err(e) => panic!("GET {url} was not answered: {e}"),
            }
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_fifty_concurrent_boot_data_gets_are_all_answered_every_time() {
    let repo = GitRepo::new();
    repo.add_gen_site(&["--nodes", "40", "--racks", "4"]);
    let commit = repo.commit("site");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let s = Server::start(repo.path(), &db, NEVER).await;
    s.wait_status(&commit, "applied").await;
    let keys = node_keys(&s).await;
    s.stop().await;

    for round in 0..4 {
        let s = Server::start(repo.path(), &db, NEVER).await;
        // Fired at once, before the restarted server has necessarily read the
        // applied revision again.
        let codes = concurrent_gets(&s.base, &keys, 50).await;
        assert!(
            codes.iter().all(|&c| c == 200),
            "round {round}: every GET answered 200, got {codes:?}"
        );
        // And the server still answers node requests afterwards.
        let again = concurrent_gets(&s.base, &keys, 8).await;
        assert!(again.iter().all(|&c| c == 200), "round {round}: {again:?}");
        s.stop().await;
    }
}

/// The real `slipway serve` binary on a free local port.
struct Process {
    child: std::process::Child,
    base: String,
    /// stderr, as it arrives.
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The thread copying stderr into `log`; it ends at the pipe's end, which
    /// can come after the process has been seen to exit.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    fn spawn(repo: &Path, db: &Path, extra: &[&str]) -> Process {
        // The binary needs an explicit port: take a free one from the kernel.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["serve", "--repo"])
            .arg(repo)
            .arg("--db")
            .arg(db)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll", "3600"])
            .args(extra)
            .env("SLIPWAY_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn slipway");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[slipway] {line}");
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            reader: Some(reader),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) for health to answer `code`.
    async fn wait_health(&self, code: u16) {
        let url = format!("{}/api/v1.0/health", self.base);
        wait_for(&format!("health {code} at {url}"), || async {
            matches!(client().get(&url).send().await, Ok(r) if r.status().as_u16() == code)
        })
        .await;
    }

    /// Waits (bounded by `within`) for the process to exit; its code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // The whole of stderr, not what the reader had copied so far.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "slipway did not exit within {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Never leave a server behind, even when an assertion failed.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A committed example-site repository and a scratch directory for the db.
fn example_repo() -> (GitRepo, tempfile::TempDir, String) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    (repo, tempfile::tempdir().unwrap(), commit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_database_is_refused_and_kill_9_leaves_no_stale_lock() {
    let (repo, dir, _) = example_repo();
    let db = dir.path().join("s.db");
    let mut first = Process::spawn(repo.path(), &db, &[]);
    first.wait_health(204).await;

    let mut second = Process::spawn(repo.path(), &db, &[]);
    assert_eq!(second.wait_exit(TIMEOUT), Some(2), "{}", second.log());
    let log = second.log();
    assert!(
        log.contains(&db.display().to_string())
            && log.contains(&format!("pid {}", first.child.id()))
            && log.contains("in use by another `slipway serve`"),
        "the refusal names the database and the holder: {log}"
    );
    // The first one serves on, alone.
    first.wait_health(204).await;

    // SIGKILL: the kernel releases the lock with the process.
    first.signal("-KILL");
    first.wait_exit(TIMEOUT);
    let third = Process::spawn(repo.path(), &db, &[]);
    third.wait_health(204).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_in_bounded_time_with_a_request_stuck_in_flight() {
    use tokio::io::AsyncWriteExt;
    let (repo, dir, _) = example_repo();
    let mut p = Process::spawn(repo.path(), &dir.path().join("s.db"), &[]);
    p.wait_health(204).await;
    // A status report whose body never finishes arriving: the handler waits
    // for it forever, so a drain without a deadline never ends.
    let addr = p.base.trim_start_matches("http://").to_string();
    let mut stuck = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stuck
        .write_all(
            b"POST /api/v1.0/bootactions/01ARZ3NDEKTSV4RRFFQ69G5FAV HTTP/1.1\r\n\
              Host: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"det",
        )
        .await
        .unwrap();
    stuck.flush().await.unwrap();
    // The request is in flight once the server counts it (besides the
    // metrics request itself).
    let metrics = format!("{}/metrics", p.base);
    wait_for("the stuck request to be in flight", || async {
        let page = client()
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.lines()
            .filter_map(|l| l.strip_prefix("slipway_http_in_flight_requests "))
            .any(|v| v.trim().parse::<f64>().unwrap() >= 2.0)
    })
    .await;
    p.signal("-TERM");
    assert_eq!(
        p.wait_exit(slipway::server::SHUTDOWN_GRACE + TIMEOUT),
        Some(0),
        "{}",
        p.log()
    );
    // Either the drain closed the connection that waits on its client, or
    // the shutdown deadline ended the wait: both are bounded.
    let log = p.log();
    assert!(
        log.contains("shutdown deadline") || log.contains("reconciler stopped"),
        "{log}"
    );
    drop(stuck);
}

/// A BootAction that validates (placeholder action values) but fails for
/// every real deployment: its template branches on the action's id.
const BRANCHES_ON_ID: &str = r#"---
schema: 'drydock/BootAction/v1'
metadata:
  schema: 'metadata/Document/v1'
  name: id-dependent
  layeringDefinition:
    abstract: false
    layer: site
data:
  signaling: false
  assets:
    - path: /etc/id-dependent.conf
      type: file
      permissions: '0644'
      data: "{% if action.action_id != '00000000000000000000000000' %}{{ node.nosuch.x }}{% endif %}ok"
      data_pipeline:
        - utf8_decode
        - template
...
"#;

/// The issue's example: fails for any node whose action key does not start
/// with `0` (all but one in 16).
const BRANCHES_ON_KEY: &str = r#"---
schema: 'drydock/BootAction/v1'
metadata:
  schema: 'metadata/Document/v1'
  name: key-dependent
  layeringDefinition:
    abstract: false
    layer: site
data:
  signaling: false
  assets:
    - path: /etc/key-dependent.conf
      type: unit
      permissions: '0644'
      data: "{% if action.action_key[0] != '0' %}{{ undefined.x }}{% endif %}[Unit]"
      data_pipeline:
        - utf8_decode
        - template
...
"#;

async fn identity(s: &Server, host: &str) -> Value {
    let (code, id) = s.get(&format!("/api/v1.0/nodes/{host}/identity")).await;
    assert_eq!(code, 200, "{id}");
    id
}

async fn get_units(s: &Server, host: &str, key: &str) -> (u16, Vec<u8>) {
    let r = client()
        .get(s.url(&format!("/api/v1.0/bootactions/nodes/{host}/units")))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The messages of one revision in `/revisions`.
async fn messages_of(s: &Server, commit: &str) -> Vec<Value> {
    let rev = s
        .revisions()
        .await
        .into_iter()
        .find(|r| r["commit"] == commit)
        .unwrap_or_else(|| panic!("{commit} not listed"));
    rev["messages"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_whose_boot_data_fails_with_real_ids_and_keys_is_invalid_and_nothing_of_it_applies(
) {
    let (repo, dir, c1) = example_repo();
    let db = dir.path().join("s.db");
    let s = Server::start(repo.path(), &db, NEVER).await;
    s.wait_status(&c1, "applied").await;
    let before = identity(&s, "n00001").await;
    let key = before["identity_key"].as_str().unwrap().to_string();
    let (code, units) = get_units(&s, "n00001", &key).await;
    assert_eq!(code, 200);
    let deployments_before: Vec<_> = {
        let store = slipway::state::Store::open(&db).unwrap();
        (1..=12)
            .map(|i| store.deployment_of(&format!("n{i:05}")).unwrap())
            .collect()
    };
    assert!(
        deployments_before.iter().all(Option::is_some),
        "made at apply"
    );

    for (file, doc, name, asset) in [
        (
            "designs/id.yaml",
            BRANCHES_ON_ID,
            "id-dependent",
            "/etc/id-dependent.conf",
        ),
        (
            "designs/key.yaml",
            BRANCHES_ON_KEY,
            "key-dependent",
            "/etc/key-dependent.conf",
        ),
    ] {
        repo.write(file, doc);
        let bad = repo.commit(&format!("add {name}"));
        // Offline validation renders with placeholder values: it passes.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["validate", "--rev", &bad])
            .arg(repo.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        assert_eq!(s.hook().await, 202);
        s.wait_status(&bad, "invalid").await;
        let errors: Vec<Value> = messages_of(&s, &bad)
            .await
            .into_iter()
            .filter(|m| m["error"] == true)
            .collect();
        assert!(!errors.is_empty());
        for m in &errors {
            assert_eq!(m["code"], "SW396", "{m}");
            let text = m["message"].as_str().unwrap();
            assert!(
                text.contains(&format!("BootAction {name}"))
                    && text.contains(asset)
                    && text.contains("for node n000")
                    && text.contains("undefined"),
                "names the BootAction, asset, node and template error: {text}"
            );
            assert_eq!(
                m["source"]["file"],
                file.trim_start_matches("designs/"),
                "{m}"
            );
            assert!(m["source"]["line"].as_u64().unwrap() > 0, "{m}");
        }
        // The last good revision keeps serving, untouched.
        assert_eq!(s.status_of(&c1).await.as_deref(), Some("applied"));
        assert_eq!(s.health().await, 204);
        assert_eq!(
            identity(&s, "n00001").await,
            before,
            "same deployment and ids"
        );
        assert_eq!(get_units(&s, "n00001", &key).await, (200, units.clone()));
        let store = slipway::state::Store::open(&db).unwrap();
        let now: Vec<_> = (1..=12)
            .map(|i| store.deployment_of(&format!("n{i:05}")).unwrap())
            .collect();
        assert_eq!(
            now, deployments_before,
            "no deployment of the refused revision remains"
        );
        assert_eq!(
            store.applied_revision().unwrap().unwrap().revision.commit,
            c1
        );
        repo.remove(file);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_revision_whose_boot_data_fails_with_real_ids_is_never_applied() {
    let repo = GitRepo::new();
    repo.add_example_site();
    repo.write("designs/id.yaml", BRANCHES_ON_ID);
    let bad = repo.commit("site with an id-dependent template");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(repo.path(), &dir.path().join("s.db"), NEVER).await;
    s.wait_status(&bad, "invalid").await;
    assert_eq!(s.health().await, 503);
    let (code, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!((code, nodes), (200, serde_json::json!([])));
    s.stop().await;
}

/// Removes the node files `racks` (1 to 3, four nodes each) and commits
/// with `message`.
fn drop_racks(repo: &GitRepo, racks: &[u32], message: &str) -> String {
    for r in racks {
        repo.remove(&format!("designs/nodes/rack-0{r}.yaml"));
    }
    repo.commit(message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_deleting_every_node_is_refused_unless_its_trailer_allows_it() {
    let (repo, dir, c1) = example_repo();
    let s = Server::start(repo.path(), &dir.path().join("s.db"), NEVER).await;
    s.wait_status(&c1, "applied").await;
    let key = identity(&s, "n00001").await["identity_key"]
        .as_str()
        .unwrap()
        .to_string();

    let wipe = drop_racks(&repo, &[1, 2, 3], "drop every node");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&wipe, "invalid").await;
    let m = messages_of(&s, &wipe)
        .await
        .into_iter()
        .find(|m| m["error"] == true)
        .unwrap();
    assert_eq!(m["code"], "SW401", "{m}");
    let text = m["message"].as_str().unwrap();
    assert!(
        text.contains("would delete 12 of the 12 applied nodes")
            && text.contains("every applied node"),
        "{text}"
    );
    assert!(
        m["diagnostic"]
            .as_str()
            .unwrap()
            .contains("Slipway-Allow-Delete: true"),
        "{m}"
    );
    // The last good revision keeps serving.
    assert_eq!(s.status_of(&c1).await.as_deref(), Some("applied"));
    assert_eq!(get_units(&s, "n00001", &key).await.0, 200);
    let (_, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 12);

    // The same tree, now saying so in a trailer.
    repo.git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "drop every node, on purpose",
        "-m",
        "Slipway-Allow-Delete: true",
    ]);
    let allowed = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(s.hook().await, 202);
    s.wait_status(&allowed, "applied").await;
    let (_, nodes) = s.get("/api/v1.0/nodes").await;
    assert_eq!(nodes, serde_json::json!([]));
    assert_eq!(get_units(&s, "n00001", &key).await.0, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_delete_share_caps_deletes_and_allow_mass_delete_lifts_the_cap_after_a_restart() {
    let (repo, dir, c1) = example_repo();
    let db = dir.path().join("s.db");
    let half = |cfg: &mut slipway::server::ServeConfig| cfg.max_delete_share = 0.5;
    let s = Server::start_with(repo.path(), &db, half).await.unwrap();
    s.wait_status(&c1, "applied").await;

    // 8 of 12 (67 %) is more than half.
    let two = drop_racks(&repo, &[1, 2], "drop racks 1 and 2");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&two, "invalid").await;
    let text = messages_of(&s, &two).await[0]["message"].to_string();
    assert!(
        text.contains("would delete 8 of the 12") && text.contains("50%"),
        "{text}"
    );
    // 4 of 12 (33 %) is within it.
    repo.git(&["checkout", "-q", &c1, "--", "designs/nodes/rack-01.yaml"]);
    let one = repo.commit("drop rack 2 only");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&one, "applied").await;
    // Every remaining node: refused whatever the share.
    let rest = drop_racks(&repo, &[1, 3], "drop the rest");
    assert_eq!(s.hook().await, 202);
    s.wait_status(&rest, "invalid").await;
    s.stop().await;

    // The server allows it now: the refused head is looked at again.
    let s = Server::start_with(repo.path(), &db, |cfg| {
        half(cfg);
        cfg.allow_mass_delete = true;
    })
    .await
    .unwrap();
    s.wait_status(&rest, "applied").await;
    s.stop().await;
}

#[test]
fn max_delete_share_outside_0_to_100_percent_is_a_usage_error() {
    for bad in ["150%", "-0.1", "1.5", "half"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["serve", &format!("--max-delete-share={bad}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("expected a fraction from 0 to 1"),
            "{bad}: {err}"
        );
    }
}
