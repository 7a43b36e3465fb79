//! A Luna2-speaking server for the boot and control tests: a real server on
//! `127.0.0.1:0` following a real git repository, with a users file holding
//! `alice`/`wonderland` and the session key [`KEY`] (what the real clients'
//! INI carries as `SECRET_KEY`), and the real clients run through
//! `tests/luna2/luna_cli.py`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::common::{client, venv_python, GitRepo, Server};
use serde_json::{json, Value};

/// The session key shared with the clients' luna.ini.
pub const KEY: &str = "luna-b-test-key-5a0c1f3e9d";
/// The user of the users file.
pub const USER: (&str, &str) = ("alice", "wonderland");

/// A server with its first revision applied.
pub struct Luna {
    pub g: GitRepo,
    pub s: Server,
    pub commit: String,
    pub dir: tempfile::TempDir,
}

/// Starts a server on the repository `g` holds (committed here), with the
/// users file and key; `adjust` changes the rest of the configuration.
pub async fn start(g: GitRepo, adjust: impl FnOnce(&mut slipway::server::ServeConfig)) -> Luna {
    let dir = tempfile::tempdir().unwrap();
    slipway::services::users::add_user(&dir.path().join("users"), USER.0, USER.1).unwrap();
    std::fs::write(dir.path().join("key"), format!("{KEY}\n")).unwrap();
    let commit = g.commit("site");
    let db = g.path().join("slipway.db");
    let (users, key) = (dir.path().join("users"), dir.path().join("key"));
    let s = Server::start_with(g.path(), &db, |cfg| {
        cfg.secret = Some(g.path().join("secret"));
        cfg.users.users = Some(users);
        cfg.users.key_file = Some(key);
        adjust(cfg);
    })
    .await
    .unwrap();
    s.wait_status(&commit, "applied").await;
    Luna { g, s, commit, dir }
}

impl Luna {
    /// A session token of [`USER`].
    pub async fn token(&self) -> String {
        let r = client()
            .post(self.s.url("/token"))
            .json(&json!({"username": USER.0, "password": USER.1}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// `GET path` with `token` (if any): code, content type and body text.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String, String) {
        let mut req = client().get(self.s.url(path));
        if let Some(t) = token {
            req = req.header("x-access-tokens", t);
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (code, ct, r.text().await.unwrap())
    }

    /// `POST path` with a raw JSON body and `token` (if any): code and body text.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let mut req = client()
            .post(self.s.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.header("x-access-tokens", t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Runs a real client (`luna` or `lpower`) with `args`; its exit code,
    /// stdout and stderr.
    pub fn client(&self, which: &str, args: &[&str]) -> (i32, String, String) {
        let py = venv_python("the luna2 clients' requirements");
        let home = self.dir.path().join(format!("home-{which}"));
        let endpoint = self.s.base.trim_start_matches("http://").to_string();
        let out = std::process::Command::new(py)
            .arg(wrapper())
            .arg(which)
            .args(["--home", home.to_str().unwrap()])
            .args(["--endpoint", &endpoint])
            .args([
                "--username",
                USER.0,
                "--password",
                USER.1,
                "--secret-key",
                KEY,
            ])
            .arg("--")
            .args(args)
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .output()
            .expect("run the luna2 client wrapper");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// `tests/luna2/luna_cli.py`.
pub fn wrapper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/luna2/luna_cli.py")
}

/// JSON of a body text, failing loudly when it is not JSON.
pub fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
