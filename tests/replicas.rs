//! Several `slipway serve` replicas on one PostgreSQL database (issue 16):
//! they serve the same deployments, keys and bytes; a report accepted by one
//! is read through the other; when the leader is killed with SIGKILL the
//! survivor takes over reconciling and applies the next commit, and every
//! report that got a 200 is in the database. Real processes of the built
//! binary, a real repository, a real cluster (`SLIPWAY_TEST_PG`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, wait_for, GitRepo, TIMEOUT};
use serde_json::Value;
use slipway::state::Store;

/// One `slipway serve` process and its stderr lines.
struct Replica {
    child: std::process::Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    fn spawn(name: &str, repo: &Path, db: &str, secret: &Path) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["serve", "--repo"])
            .arg(repo)
            .args(["--db", db, "--secret"])
            .arg(secret)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll", "1"])
            .env("SLIPWAY_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn slipway");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let name = name.to_string();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[{name}] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn health(&self) -> Option<u16> {
        client()
            .get(self.url("/api/v1.0/health"))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = client().get(self.url(path));
        if let Some(k) = key {
            req = req.header("X-Bootaction-Key", k);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    async fn identity(&self, host: &str) -> Value {
        let (code, body) = self
            .get(&format!("/api/v1.0/nodes/{host}/identity"), None)
            .await;
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    async fn status_of(&self, commit: &str) -> Option<String> {
        let (code, body) = self.get("/api/v1.0/revisions", None).await;
        if code != 200 {
            return None;
        }
        let list: Vec<Value> = serde_json::from_slice(&body).ok()?;
        list.into_iter()
            .find(|r| r["commit"] == commit)
            .and_then(|r| r["status"].as_str().map(str::to_string))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shared 32-byte server secret, made once (0600) before any replica starts.
fn shared_secret(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("replicas.secret");
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn post_report(r: &Replica, aid: &str, key: &str, message: &str) -> Option<u16> {
    let body = format!(r#"{{"details":[{{"message":"{message}","error":false}}]}}"#);
    client()
        .post(r.url(&format!("/api/v1.0/bootactions/{aid}")))
        .header("Content-Type", "application/json")
        .header("X-Bootaction-Key", key)
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_agree_and_the_survivor_of_a_sigkilled_leader_takes_over() {
    let repo = GitRepo::new();
    repo.add_example_site();
    let first = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let secret = shared_secret(dir.path());
    let db = common::pg::fresh_database();

    // The first replica migrates the database and leads; the second follows.
    let a = Replica::spawn("a", repo.path(), &db, &secret);
    wait_for("replica a to serve", || async {
        a.health().await == Some(204)
    })
    .await;
    let b = Replica::spawn("b", repo.path(), &db, &secret);
    wait_for("replica b to serve", || async {
        b.health().await == Some(204)
    })
    .await;
    assert!(a.logged("this replica now leads"), "a leads");
    assert!(!b.logged("this replica now leads"), "only one leads");
    assert_eq!(a.status_of(&first).await.as_deref(), Some("applied"));
    // The follower serves the leader's revision and counts its nodes.
    let (_, ext) = b.get("/api/v1.0/health/extended", None).await;
    let ext: Value = serde_json::from_slice(&ext).unwrap();
    assert_eq!(ext["applied_revision"]["commit"], first, "{ext}");

    // The same deployment, keys and bytes through either replica.
    let (ia, ib) = (a.identity("n00001").await, b.identity("n00001").await);
    assert_eq!(ia, ib, "both replicas serve the same deployment and keys");
    let key = ia["identity_key"].as_str().unwrap().to_string();
    let aid = ia["actions"][0]["action_id"].as_str().unwrap().to_string();
    let units = "/api/v1.0/bootactions/nodes/n00001/units";
    let (ca, ba) = a.get(units, Some(&key)).await;
    let (cb, bb) = b.get(units, Some(&key)).await;
    assert_eq!((ca, cb), (200, 200));
    assert_eq!(ba, bb, "the same boot-data bytes from both replicas");
    // A bad key is refused by both.
    assert_eq!(a.get(units, Some(&"0".repeat(64))).await.0, 403);
    assert_eq!(b.get(units, Some(&"0".repeat(64))).await.0, 403);

    // A report accepted by one is read through the other.
    assert_eq!(post_report(&a, &aid, &key, "through a").await, Some(200));
    let (code, body) = b.get("/api/v1.0/nodes/n00001/builddata", None).await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        code == 200 && text.contains("through a"),
        "b reads a's report: {code} {text}"
    );

    // Reports and GETs spread over both; the leader is killed mid-stream.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let a = Arc::new(a);
    let b = Arc::new(b);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = {
        let (a, b, acked, stop) = (a.clone(), b.clone(), acked.clone(), stop.clone());
        let (aid, key) = (aid.clone(), key.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            let mut survivor_health = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = if i.is_multiple_of(2) { &a } else { &b };
                let message = format!("step {i}");
                if post_report(r, &aid, &key, &message).await == Some(200) {
                    acked.lock().unwrap().push(message);
                }
                let _ = client()
                    .get(r.url(units))
                    .header("X-Bootaction-Key", &key)
                    .send()
                    .await;
                survivor_health.push(b.health().await);
                i += 1;
            }
            survivor_health
        })
    };
    wait_for("some reports through both replicas", || async {
        acked.lock().unwrap().len() >= 40
    })
    .await;
    let killed_at = Instant::now();
    let a_pid = a.child.id();
    // SIGKILL: no chance to release anything; PostgreSQL ends its sessions.
    let st = std::process::Command::new("kill")
        .args(["-KILL", &a_pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("replica b to take the lead", || async {
        b.logged("this replica now leads")
    })
    .await;
    let takeover = killed_at.elapsed();
    eprintln!("takeover after SIGKILL: {} ms", takeover.as_millis());
    assert!(
        takeover < Duration::from_secs(10),
        "the survivor took the lead in {takeover:?}"
    );

    // The survivor reconciles: the next commit is applied and served.
    let f = repo.path().join("designs/nodes/rack-01.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text + "\n# touched after the failover\n").unwrap();
    let second = repo.commit("after the failover");
    let applied_wait = Instant::now();
    wait_for("the survivor to apply the next commit", || async {
        b.status_of(&second).await.as_deref() == Some("applied")
    })
    .await;
    eprintln!(
        "next commit applied by the survivor {} ms after the commit",
        applied_wait.elapsed().as_millis()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let health = tokio::time::timeout(TIMEOUT, stream)
        .await
        .unwrap()
        .unwrap();
    assert!(
        health.iter().all(|h| *h == Some(204)),
        "health stayed 204 on the survivor: {health:?}"
    );
    assert_eq!(b.health().await, Some(204));

    // Every acknowledged report is in the database.
    let acked = acked.lock().unwrap().clone();
    let url = db.clone();
    let stored: Vec<String> = tokio::task::spawn_blocking(move || {
        let store = Store::open(Path::new(&url)).unwrap();
        store
            .boot_action_details(&aid)
            .unwrap()
            .into_iter()
            .map(|d| d.message)
            .collect()
    })
    .await
    .unwrap();
    let missing: Vec<&String> = acked.iter().filter(|m| !stored.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged report(s) lost: {missing:?}",
        missing.len()
    );
    eprintln!("{} acknowledged reports, all stored", acked.len());
}

#[test]
fn two_stores_making_a_nodes_first_deployment_at_once_make_one() {
    use slipway::state::DeploymentInputs;
    let db = common::pg::fresh_database();
    drop(Store::open(Path::new(&db)).unwrap());
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let made: Vec<_> = (0..2)
        .map(|t| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut store = Store::open(Path::new(&db)).unwrap();
                let actions = [("base-config".to_string(), true)];
                let hash = "a".repeat(64);
                let inputs = DeploymentInputs {
                    inputs_hash: &hash,
                    design_ref: "c1",
                    committed_at: 0,
                    actions: &actions,
                };
                let mut n = 0;
                let mut ids = move || {
                    n += 1;
                    format!("01HZZZZZZZZZZZZZZZZZZZZ{t}{n:02}")
                };
                barrier.wait();
                store.ensure_deployment("n1", &inputs, 1, &mut ids).unwrap()
            })
        })
        .collect();
    let made: Vec<_> = made.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(made[0], made[1], "both replicas got the same deployment");
    let store = Store::open(Path::new(&db)).unwrap();
    assert_eq!(store.deployment_count().unwrap(), 1);
    assert_eq!(
        store.boot_action_counts().unwrap()["n1"]
            .values()
            .sum::<u64>(),
        1
    );
}
