//! Every error answer of the real server is Drydock's Status: each malformed
//! request of a table, sent as raw bytes, gets the code it should and a
//! Status body saying so; a design reference to a repository that is gone
//! is a 400, not a 500; `/health/extended` shows no paths, e-mail addresses
//! or raw errors to a client without an operator token; and an IPv4 client
//! on an IPv6 socket (`::ffff:127.0.0.1`) is loopback for the operator routes.

mod common;

use std::path::Path;

use common::{client, wait_for, GitRepo, Server, TIMEOUT};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server on the example site; what must outlive it comes along.
async fn site(
    adjust: impl FnOnce(&mut slipway::server::ServeConfig),
) -> (GitRepo, tempfile::TempDir, Server) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(repo.path(), &dir.path().join("s.db"), adjust)
        .await
        .expect("server starts");
    s.wait_status(&commit, "applied").await;
    (repo, dir, s)
}

/// An answer read off the wire.
struct Answer {
    code: u16,
    head: String,
    body: Vec<u8>,
}

/// Sends `request` as is on a new connection and reads the answer until
/// the server closes it (every request here says `Connection: close` or is
/// refused with it).
async fn raw(s: &Server, request: &[u8]) -> Answer {
    let addr = s.url("").trim_start_matches("http://").to_string();
    let mut sock = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .expect("connect in time")
        .unwrap();
    // The server may answer (and close) before all of a large request is
    // written; what it answered is still readable.
    let _ = sock.write_all(request).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(TIMEOUT, sock.read(&mut buf))
            .await
            .expect("answered in time")
        {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with our bytes unread).
            Err(_) if !got.is_empty() => break,
            Err(e) => panic!("no answer: {e}"),
        }
    }
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&got)));
    let head = String::from_utf8_lossy(&got[..split]).into_owned();
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head}"));
    let mut body = got[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    Answer { code, head, body }
}

/// The payload of a chunked body.
fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + size]);
        b = &b[line_end + 2 + size + 2..];
    }
}

/// Asserts `a` is a Status of `code` with `reason`; returns its message.
fn status(what: &str, a: &Answer, code: u16, reason: &str) -> String {
    assert_eq!(a.code, code, "{what}: {}", a.head);
    assert!(
        a.head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{what}: not JSON: {}",
        a.head
    );
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_else(|e| {
        panic!(
            "{what}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&a.body)
        )
    });
    assert_eq!(v["kind"], "Status", "{what}: {v}");
    assert_eq!(v["apiVersion"], "v1.0", "{what}: {v}");
    assert_eq!(v["status"], "Failure", "{what}: {v}");
    assert_eq!(v["code"], code, "{what}: {v}");
    assert_eq!(v["reason"], reason, "{what}: {v}");
    assert!(v["metadata"].is_object(), "{what}: {v}");
    let message = v["message"].as_str().unwrap_or_default().to_string();
    assert!(!message.is_empty(), "{what}: no message: {v}");
    message
}

/// A request of `method` on `target` with `headers` (each ending in CRLF)
/// and `body`, closing the connection.
fn request(method: &str, target: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {target} HTTP/1.1\r\nHost: slipway\r\nConnection: close\r\n{headers}\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rejection_of_a_malformed_request_is_a_status() {
    let (_repo, _dir, s) = site(|_| {}).await;
    let (_, id) = s.get("/api/v1.0/nodes/n00001/identity").await;
    let action = id["actions"][0]["action_id"].as_str().unwrap().to_string();
    let key = id["identity_key"].as_str().unwrap().to_string();
    let big = vec![b'x'; slipway::api::BODY_LIMIT + 1];
    let big_chunked = {
        let mut b = format!("{:x}\r\n", big.len()).into_bytes();
        b.extend_from_slice(&big);
        b.extend_from_slice(b"\r\n0\r\n\r\n");
        b
    };
    let report = format!("/api/v1.0/bootactions/{action}");
    let keyed = format!("X-Bootaction-Key: {key}\r\n");
    let long = format!("/api/v1.0/nodes?q={}", "a".repeat(9000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "an unknown route",
            request("GET", "/api/v1.0/nope", "", b""),
            404,
            "NotFound",
        ),
        (
            "a method a route does not have",
            request("DELETE", "/api/v1.0/health", "", b""),
            405,
            "MethodNotAllowed",
        ),
        (
            "a declared body over the limit (operator route)",
            request(
                "POST",
                "/api/v1.0/validatedesign",
                &format!("Content-Length: {}\r\n", big.len()),
                &big,
            ),
            413,
            "PayloadTooLarge",
        ),
        (
            "a declared body over the limit (node route)",
            request(
                "POST",
                &report,
                &format!("{keyed}Content-Length: {}\r\n", big.len()),
                &big,
            ),
            413,
            "PayloadTooLarge",
        ),
        (
            "a chunked body over the limit (node route)",
            request(
                "POST",
                &report,
                &format!("{keyed}Transfer-Encoding: chunked\r\n"),
                &big_chunked,
            ),
            413,
            "PayloadTooLarge",
        ),
        (
            "a chunked body that is not chunked",
            request(
                "POST",
                &report,
                &format!("{keyed}Transfer-Encoding: chunked\r\n"),
                b"zz\r\nnot a chunk\r\n0\r\n\r\n",
            ),
            400,
            "BadRequest",
        ),
        (
            "a query string that does not parse",
            request(
                "GET",
                "/api/v1.0/nodes/n00001/builddata?latest=maybe",
                "",
                b"",
            ),
            400,
            "BadRequest",
        ),
        (
            "a revisions limit out of range",
            request("GET", "/api/v1.0/revisions?limit=0", "", b""),
            400,
            "InvalidLimit",
        ),
        (
            "a path segment that is not UTF-8",
            request("GET", "/api/v1.0/nodes/%FF/builddata", "", b""),
            400,
            "BadRequest",
        ),
        (
            "a path segment whose UTF-8 is cut short",
            request("GET", "/api/v1.0/tasks/%E0%A4", "", b""),
            400,
            "BadRequest",
        ),
        (
            "a node route's path segment that is not UTF-8",
            request(
                "GET",
                "/api/v1.0/bootactions/nodes/%C3%28/units",
                &keyed,
                b"",
            ),
            400,
            "BadRequest",
        ),
        (
            "a request target over 8 KiB",
            request("GET", &long, "", b""),
            414,
            "UriTooLong",
        ),
        (
            "a JSON body that is not JSON",
            request(
                "POST",
                "/api/v1.0/validatedesign",
                "Content-Type: application/json\r\nContent-Length: 5\r\n",
                b"{nope",
            ),
            400,
            "BadRequest",
        ),
        (
            "a report without a key",
            request("POST", &report, "Content-Length: 2\r\n", b"{}"),
            401,
            "Unauthorized",
        ),
    ];
    for (what, bytes, code, reason) in &cases {
        let a = raw(&s, bytes).await;
        status(what, &a, *code, reason);
        if *code == 405 {
            assert!(
                a.head.to_ascii_lowercase().contains("\r\nallow: "),
                "{what}: no Allow: {}",
                a.head
            );
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_design_reference_to_a_repository_that_is_gone_is_a_400_status() {
    let (repo, _dir, s) = site(|_| {}).await;
    std::fs::remove_dir_all(repo.path().join(".git")).unwrap();
    let body = br#"{"rel":"design","href":"main","type":"application/x-yaml"}"#;
    let a = raw(
        &s,
        &request(
            "POST",
            "/api/v1.0/validatedesign",
            &format!("Content-Length: {}\r\n", body.len()),
            body,
        ),
    )
    .await;
    let message = status("validatedesign", &a, 400, "BadRequest");
    assert!(
        message.contains("`main`") && message.contains("not available"),
        "{message}"
    );
    // The same for the other routes that take a design reference.
    let body = br#"{"design_ref":"main","node_filter":null}"#;
    let a = raw(
        &s,
        &request(
            "POST",
            "/api/v1.0/nodefilter",
            &format!("Content-Length: {}\r\n", body.len()),
            body,
        ),
    )
    .await;
    status("nodefilter", &a, 400, "BadRequest");
    s.stop().await;
}

/// Asserts the text of a public extended-health view shows no secret.
fn assert_redacted(view: &serde_json::Value, db: &Path) {
    let text = view.to_string();
    assert_eq!(view["redacted"], true, "{text}");
    assert!(!text.contains('@'), "an e-mail address: {text}");
    assert!(
        !text.contains(&db.display().to_string()),
        "the db path: {text}"
    );
    assert!(!text.contains("/tmp"), "a file path: {text}");
    assert!(view.get("db").is_none(), "db: {text}");
    for pass in ["last_pass", "last_applied"] {
        assert!(view[pass].get("detail").is_none(), "{pass}.detail: {text}");
    }
    assert!(view["applied_revision"].get("author").is_none(), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn extended_health_without_an_operator_token_shows_no_paths_addresses_or_errors() {
    let token = "operator-token-for-the-test";
    let tokens = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tokens.path(), hex::encode(Sha256::digest(token.as_bytes()))).unwrap();
    let tokens_path = tokens.path().to_path_buf();

    // A failed pass first (a branch without a commit): its detail is a raw
    // error, for operators only.
    let repo = GitRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let s = Server::start_with(repo.path(), &db, |cfg| cfg.tokens = Some(tokens_path))
        .await
        .expect("server starts");
    wait_for("a failed pass", || async {
        s.get("/api/v1.0/health/extended").await.1["last_pass"]["result"] == "error"
    })
    .await;
    let (code, view) = s.get("/api/v1.0/health/extended").await;
    assert_eq!(code, 503);
    assert_redacted(&view, &db);

    repo.add_example_site();
    let commit = repo.commit("example site");
    let hook = client()
        .post(s.url("/api/v1.0/hooks/git"))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 202);
    wait_for("the site applied", || async {
        s.get("/api/v1.0/health/extended").await.1["applied_revision"]["commit"] == commit.as_str()
    })
    .await;
    let (code, view) = s.get("/api/v1.0/health/extended").await;
    assert_eq!(code, 200);
    assert_redacted(&view, &db);
    assert_eq!(view["status"], "ok");
    assert_eq!(view["nodes"], 12);

    // An operator (a listed token) sees everything.
    let full: serde_json::Value = client()
        .get(s.url("/api/v1.0/health/extended"))
        .header("X-Auth-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["db"], db.display().to_string(), "{full}");
    assert_eq!(
        full["applied_revision"]["author"], "Test Operator <ops@example.com>",
        "{full}"
    );
    assert!(full["last_pass"]["detail"].is_string(), "{full}");
    assert!(full.get("redacted").is_none(), "{full}");
    s.stop().await;
}

/// A server on `listener`, following the example site.
async fn site_on(listener: tokio::net::TcpListener) -> (GitRepo, tempfile::TempDir, Server) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(listener, repo.path(), &dir.path().join("s.db"), |_| {})
        .await
        .expect("server starts");
    s.wait_status(&commit, "applied").await;
    (repo, dir, s)
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_routes_answer_ipv4_clients_of_an_ipv6_socket_and_ipv6_loopback() {
    // An IPv6 socket bound to the IPv4-mapped loopback address: IPv4
    // clients of 127.0.0.1 reach it and are seen as ::ffff:127.0.0.1.
    let mapped = tokio::net::TcpListener::bind("[::ffff:127.0.0.1]:0")
        .await
        .expect("this test needs IPv6 sockets with IPv4-mapped addresses (net.ipv6.bindv6only=0)");
    let port = mapped.local_addr().unwrap().port();
    let (_repo, _dir, s) = site_on(mapped).await;
    let r = client()
        .get(format!("http://127.0.0.1:{port}/api/v1.0/nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    s.stop().await;

    let v6 = tokio::net::TcpListener::bind("[::1]:0")
        .await
        .expect("this test needs IPv6 on the loopback interface (::1)");
    let (_repo, _dir, s) = site_on(v6).await;
    let (code, body) = s.get("/api/v1.0/nodes").await;
    assert_eq!(code, 200, "{body}");
    s.stop().await;
}
