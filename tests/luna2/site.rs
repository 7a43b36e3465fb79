//! What the Luna2 tests share: a server on the example site with a users
//! file and a token key, logging in, requests with a token, and running
//! Luna2's real clients through `tests/luna2/luna_cli.py`.
#![allow(dead_code)]

use std::path::PathBuf;

use super::common::{client, GitRepo, Server};
use serde_json::Value;

/// The key shared with the CLI's luna.ini (`SECRET_KEY`).
pub const KEY: &str = "004f2af45d3a4e161a7dd2d17fdae47f-test";
/// The user every server has, and its password.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

/// A server on the example site, its revision applied, with a users file
/// holding [`USER`] and the key file holding [`KEY`].
pub struct Luna {
    pub g: GitRepo,
    pub s: Server,
    pub commit: String,
    pub dir: tempfile::TempDir,
}

impl Luna {
    pub fn users(&self) -> PathBuf {
        self.dir.path().join("users")
    }

    /// A fresh token of [`USER`] from `POST /token`.
    pub async fn token(&self) -> String {
        let (code, v) = post_token(
            &self.s,
            &serde_json::json!({"username": USER, "password": PASSWORD}).to_string(),
        )
        .await;
        assert_eq!(code, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// `GET path` with `token` in `x-access-tokens` (none: no header): the
    /// code and the JSON body (every answer must be JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = client().get(self.s.url(path));
        if let Some(t) = token {
            req = req.header("x-access-tokens", t);
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path}: {code}, not JSON ({e}): {text}"));
        (code, v)
    }

    /// Runs Luna2's own client (`luna` or `lpower`) with `args` against the
    /// server: its exit status, stdout and stderr.
    pub async fn client(
        &self,
        tool: &str,
        home: &std::path::Path,
        args: &[&str],
    ) -> (bool, String, String) {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/luna2/luna_cli.py");
        let endpoint = self.s.base.trim_start_matches("http://").to_string();
        let out = tokio::process::Command::new(super::common::venv_python(
            "the luna2-cli requirements (scripts/test.sh installs them: PyJWT==2.8.0 python-hostlist prettytable ...)",
        ))
        .arg(script)
        .arg(tool)
        .arg("--home")
        .arg(home)
        .args(["--endpoint", &endpoint, "--username", USER, "--password", PASSWORD, "--secret-key", KEY, "--"])
        .args(args)
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .kill_on_drop(true)
        .output()
        .await
        .expect("run tests/luna2/luna_cli.py");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

pub async fn luna(adjust: impl FnOnce(&mut slipway::server::ServeConfig)) -> Luna {
    let dir = tempfile::tempdir().unwrap();
    slipway::services::users::add_user(&dir.path().join("users"), USER, PASSWORD).unwrap();
    std::fs::write(dir.path().join("key"), format!("{KEY}\n")).unwrap();
    let g = GitRepo::new();
    g.add_example_site();
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

/// `POST /token` with a raw body: the code and the JSON body.
pub async fn post_token(s: &Server, body: &str) -> (u16, Value) {
    let r = client()
        .post(s.url("/token"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (code, v)
}

/// A token signed with `key` carrying `claims`.
pub fn sign(key: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

pub fn decode(token: &str, key: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.leeway = 0;
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(key.as_bytes()),
        &v,
    )
    .map(|d| d.claims)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
