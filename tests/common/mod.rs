//! Test helpers: git repositories made with the `git` CLI, a real server on
//! `127.0.0.1:0`, and bounded waits.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use slipway::server::{run, ServeConfig, ServeError};

/// The longest any test waits for something to happen.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A scratch git repository on branch `main`.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
}

impl GitRepo {
    /// `git init` with a local identity and signing off.
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = GitRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test Operator"]);
        repo.git(&["config", "user.email", "ops@example.com"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    /// The work-tree root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository and returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-c")
            .arg("commit.gpgsign=false")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes a file (creating directories).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Removes a file from the work tree.
    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).unwrap();
    }

    /// Writes a gen-site site (`../shared/tools/gen-site` with `args`) into `designs/`.
    pub fn add_gen_site(&self, args: &[&str]) {
        let out = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/gen-site"))
            .args(args)
            .arg("--out")
            .arg(self.path().join("designs"))
            .output()
            .expect("run gen-site");
        assert!(
            out.status.success(),
            "gen-site: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Copies the project's example site into `designs/`.
    pub fn add_example_site(&self) {
        copy_dir(&example_site(), &self.path().join("designs"));
    }

    /// `git add -A && git commit`; returns the new commit id.
    pub fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// The project's example site (valid, 12 nodes).
pub fn example_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("designs")
}

/// A fixture file's bytes under `tests/data/designs/`.
pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/designs")
            .join(rel),
    )
    .unwrap()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A design file with a YAML syntax error: invalid at the parse stage.
pub const BAD_YAML: &str = "---
schema: drydock/Network/v1
metadata:
  name: broken-net
data:
  cidr: 10.0.0.0/24
: oops
";

/// A running server started through `server::run`.
pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// Starts a server on `127.0.0.1:0` following `repo`'s checked-out branch.
    pub async fn start(repo: &Path, db: &Path, poll: Duration) -> Server {
        Self::try_start(repo, db, poll, true)
            .await
            .expect("server start")
    }

    /// Like [`Server::start`], surfacing a startup error. Startup errors
    /// (database, repository) are reported before the server listens, so a
    /// short wait on the task tells them apart from a running server.
    pub async fn try_start(
        repo: &Path,
        db: &Path,
        poll: Duration,
        watch: bool,
    ) -> Result<Server, ServeError> {
        Self::start_with(repo, db, |cfg| {
            cfg.poll = poll;
            cfg.watch = watch;
        })
        .await
    }

    /// Starts a server with a configuration adjusted by `adjust` (defaults:
    /// checked-out branch, default design dir, one-hour poll, watcher on).
    pub async fn start_with(
        repo: &Path,
        db: &Path,
        adjust: impl FnOnce(&mut ServeConfig),
    ) -> Result<Server, ServeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, repo, db, adjust).await
    }

    /// Like [`Server::start_with`], on a listener the test bound itself
    /// (an IPv6 loopback address, say).
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        repo: &Path,
        db: &Path,
        adjust: impl FnOnce(&mut ServeConfig),
    ) -> Result<Server, ServeError> {
        let addr = listener.local_addr().unwrap();
        let mut cfg = ServeConfig {
            repo: repo.to_path_buf(),
            branch: None,
            design_dir: None,
            db: db.to_path_buf(),
            listen: addr,
            poll: Duration::from_secs(3600),
            watch: true,
            secret: None,
            report_url: None,
            tokens: None,
            max_in_flight: slipway::server::DEFAULT_MAX_IN_FLIGHT,
            max_connections: slipway::server::DEFAULT_MAX_CONNECTIONS,
            header_timeout: slipway::server::DEFAULT_HEADER_TIMEOUT,
            body_timeout: slipway::server::DEFAULT_BODY_TIMEOUT,
            idle_timeout: slipway::server::DEFAULT_IDLE_TIMEOUT,
            max_delete_share: slipway::server::DEFAULT_MAX_DELETE_SHARE,
            allow_mass_delete: false,
            limits: Default::default(),
            power: Default::default(),
            proposal_branch: None,
            agents: Default::default(),
            commissaire: Default::default(),
            write_branch: None,
            users: Default::default(),
        };
        adjust(&mut cfg);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut handle = tokio::spawn(run(cfg, listener, async move {
            let _ = rx.await;
        }));
        // Wait until the server answers or the task ends with an error.
        let base = format!("http://{addr}");
        let client = client();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if handle.is_finished() {
                return match (&mut handle).await.unwrap() {
                    Ok(()) => panic!("server stopped before answering"),
                    Err(e) => Err(e),
                };
            }
            if client.get(format!("{base}/versions")).send().await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "server did not answer in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Server {
            base,
            stop: Some(tx),
            handle: Some(handle),
        })
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs a path and returns (status, JSON body or Null).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = client().get(self.url(path)).send().await.unwrap();
        let code = r.status().as_u16();
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        (code, body)
    }

    /// The health check's status code.
    pub async fn health(&self) -> u16 {
        client()
            .get(self.url("/api/v1.0/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `GET /api/v1.0/revisions`.
    pub async fn revisions(&self) -> Vec<serde_json::Value> {
        let (code, body) = self.get("/api/v1.0/revisions").await;
        assert_eq!(code, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// The status of one commit in `/revisions`, if listed.
    pub async fn status_of(&self, commit: &str) -> Option<String> {
        self.revisions()
            .await
            .into_iter()
            .find(|r| r["commit"] == commit)
            .map(|r| r["status"].as_str().unwrap().to_string())
    }

    /// Waits (bounded) until `commit` is listed with `status`.
    /// For `applied`, also until the server serves it: the revision list reads
    /// the database, which the apply commits before the server switches to the
    /// new revision, so health and boot data may still show the previous one.
    pub async fn wait_status(&self, commit: &str, status: &str) {
        let what = format!("{commit} to be {status}");
        wait_for(&what, || async {
            self.status_of(commit).await.as_deref() == Some(status)
        })
        .await;
        if status == "applied" {
            let what = format!("{commit} to be the served revision");
            wait_for(&what, || async {
                let (_, ext) = self.get("/api/v1.0/health/extended").await;
                ext["applied_revision"]["commit"] == commit
            })
            .await;
        }
    }

    /// `POST /api/v1.0/hooks/git`; returns the status code.
    pub async fn hook(&self) -> u16 {
        client()
            .post(self.url("/api/v1.0/hooks/git"))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Stops the server and waits for it (bounded).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(TIMEOUT, h)
                .await
                .expect("server stops in time")
                .unwrap()
                .expect("server ran without error");
        }
    }
}

/// An HTTP client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// Polls `check` every 25 ms until it holds; panics after [`TIMEOUT`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The Python of the test virtualenv (`$SLIPWAY_TEST_VENV`, default
/// `target/venv`, where `scripts/test.sh` installs the peers' clients);
/// panics with the install hint when it is missing (`needs`: what for).
#[allow(dead_code)]
pub fn venv_python(needs: &str) -> PathBuf {
    let venv = match std::env::var_os("SLIPWAY_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv"),
    };
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} not found: these tests need {needs} in the virtualenv {} (set SLIPWAY_TEST_VENV, \
         or run scripts/test.sh)",
        py.display(),
        venv.display()
    );
    py
}
