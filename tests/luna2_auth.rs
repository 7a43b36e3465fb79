//! Luna2's sessions against the real server: `POST /token` for users of a
//! users file written by `slipway user add` (the real binary) and by the
//! library, the JWT it answers (HS256 with the configured key, `exp` one
//! lifetime ahead, nothing in the client's future), every refusal in Luna2's
//! `{"message"}` shape, `GET /version` with the applied commit, and the real
//! `luna` CLI logging in (tests/luna2/luna_cli.py).

mod common;
#[path = "luna2/site.rs"]
mod site;

use std::path::Path;

use common::{client, GitRepo, Server};
use serde_json::{json, Value};
use site::{decode, luna, now, post_token, KEY};

#[tokio::test]
async fn a_user_logs_in_with_a_201_hs256_token_under_the_configured_key_and_lifetime() {
    let l = luna(|cfg| cfg.users.expiry = std::time::Duration::from_secs(600)).await;
    let before = now();
    let (code, body) = post_token(&l.s, r#"{"username":"alice","password":"wonderland"}"#).await;
    assert_eq!(code, 201, "{body}");
    let token = body["token"].as_str().expect("a token");
    let claims = decode(token, KEY).expect("signed with the configured key");
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["id"], 1);
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp >= before + 600 && exp <= now() + 600, "{claims}");
    // Nothing in the client's future: no iat, no nbf.
    assert!(
        claims.get("iat").is_none() && claims.get("nbf").is_none(),
        "{claims}"
    );
    assert!(decode(token, "another key").is_err());
    l.s.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_401_and_malformed_bodies_400_in_luna_shape() {
    let l = luna(|_| {}).await;
    for body in [
        r#"{"username":"alice","password":"wrong"}"#,
        r#"{"username":"bob","password":"wonderland"}"#,
        r#"{"username":"alice' OR '1'='1","password":"x' OR '1'='1"}"#,
        r#"{"username":"","password":""}"#,
    ] {
        let (code, v) = post_token(&l.s, body).await;
        assert_eq!(code, 401, "{body}: {v}");
        assert!(v["message"].is_string() && v.get("token").is_none(), "{v}");
    }
    for body in [
        "",
        "not json",
        "[1,2]",
        "\"alice\"",
        r#"{"username":"alice"}"#,
        r#"{"password":"wonderland"}"#,
        r#"{"username":1,"password":"wonderland"}"#,
        r#"{"username":"alice","password":null}"#,
        r#"{"username":"alice","password":"wonderland""#,
    ] {
        let (code, v) = post_token(&l.s, body).await;
        assert_eq!(code, 400, "{body:?}: {v}");
        assert!(v["message"].is_string(), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "only a message: {v}");
    }
    // A GET of the token route is Luna-shaped too.
    let r = client().get(l.s.url("/token")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].is_string(), "{v}");
    l.s.stop().await;
}

#[tokio::test]
async fn version_needs_no_token_and_names_the_applied_commit() {
    let l = luna(|_| {}).await;
    let (code, v) = l.s.get("/version").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["version"]["commit"], json!(l.commit));
    assert_eq!(v["version"]["api"], 1);
    assert!(v["version"]["luna"].is_string(), "{v}");
    l.s.stop().await;
}

fn slipway_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_slipway"))
}

fn user_add(users: &Path, name: &str, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(slipway_bin())
        .args(["user", "add", name, "--password-stdin", "--users"])
        .arg(users)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn slipway_user_add_writes_a_private_hash_file_the_running_server_reads_again() {
    use std::os::unix::fs::PermissionsExt as _;
    let l = luna(|_| {}).await;
    let out = user_add(&l.users(), "carol", "first pass\n");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(l.users()).unwrap();
    assert!(
        !text.contains("first pass"),
        "clear text in the users file: {text}"
    );
    assert!(text.contains("carol:$argon2id$"), "{text}");
    assert!(text.contains("alice:$argon2id$"), "alice kept: {text}");
    let mode = std::fs::metadata(l.users()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The server, started before carol existed, lets her in.
    let (code, v) = post_token(&l.s, r#"{"username":"carol","password":"first pass"}"#).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(decode(v["token"].as_str().unwrap(), KEY).unwrap()["id"], 2);
    // A changed password: the old one stops working at once.
    let out = user_add(&l.users(), "carol", "second pass\n");
    assert!(out.status.success(), "{out:?}");
    let (code, _) = post_token(&l.s, r#"{"username":"carol","password":"first pass"}"#).await;
    assert_eq!(code, 401);
    let (code, _) = post_token(&l.s, r#"{"username":"carol","password":"second pass"}"#).await;
    assert_eq!(code, 201);
    // Refusals: a bad name, an empty password (exit 2, file unchanged).
    let before = std::fs::read_to_string(l.users()).unwrap();
    for (name, pw) in [
        ("bad name", "x\n"),
        ("x';--", "x\n"),
        ("dave", "\n"),
        ("dave", ""),
    ] {
        let out = user_add(&l.users(), name, pw);
        assert_eq!(out.status.code(), Some(2), "{name:?} {pw:?}: {out:?}");
    }
    assert_eq!(std::fs::read_to_string(l.users()).unwrap(), before);
    l.s.stop().await;
}

#[tokio::test]
async fn the_default_key_file_is_created_private_beside_the_database() {
    use std::os::unix::fs::PermissionsExt as _;
    let g = GitRepo::new();
    g.add_example_site();
    let commit = g.commit("site");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    slipway::services::users::add_user(&dir.path().join("s.db.users"), "alice", "pw").unwrap();
    let s = Server::start(g.path(), &db, std::time::Duration::from_secs(3600)).await;
    s.wait_status(&commit, "applied").await;
    let key_path = dir.path().join("s.db.luna-key");
    let key = std::fs::read_to_string(&key_path).expect("<db>.luna-key created");
    let key = key.trim();
    assert!(key.len() >= 32, "{key}");
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (code, v) = post_token(&s, r#"{"username":"alice","password":"pw"}"#).await;
    assert_eq!(code, 201, "{v}");
    decode(v["token"].as_str().unwrap(), key).expect("signed with the created key");
    s.stop().await;
}
