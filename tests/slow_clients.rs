//! Slow and idle clients against the real server: hundreds of raw sockets
//! holding half-sent headers, half-sent bodies or idle keep-alive
//! connections, with `--max-connections 64` and `--max-in-flight 32`, while
//! real nodes fetch boot data and report, and health and operator routes are
//! asked. The server must serve them, close the slow sockets after their
//! timeouts, and never answer a real node 429 because of them.

mod common;

use std::time::{Duration, Instant};

use common::{client, GitRepo, Server, TIMEOUT};
use slipway::server::ServeConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sockets an attacker holds open at once.
const SOCKETS: usize = 300;
const MAX_CONNECTIONS: usize = 64;
const MAX_IN_FLIGHT: usize = 32;
/// A timeout far longer than any request here takes: a request answered
/// within it was not waiting for the slow sockets' timeouts.
const LONG: Duration = Duration::from_secs(20);
/// The time a real node's request may take while the attack goes on; half
/// of [`LONG`], so an answer shows the server did not wait for it.
const NODE_BOUND: Duration = Duration::from_secs(10);

/// Lets this test process open the sockets it needs (both ends of each
/// connection live here), failing loudly when the hard limit is too low.
fn raise_open_files(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur >= need {
            return;
        }
        assert!(
            lim.rlim_max >= need,
            "this test needs {need} open files; the hard limit is {}",
            lim.rlim_max
        );
        lim.rlim_cur = need;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// What a test needs of a running server.
struct Site {
    _repo: GitRepo,
    _dir: tempfile::TempDir,
    s: Server,
    addr: String,
    key: String,
    action: String,
}

/// A server on the example site with the small limits above and `adjust`.
async fn start(adjust: impl FnOnce(&mut ServeConfig)) -> Site {
    raise_open_files(4 * SOCKETS as u64 + 256);
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(repo.path(), &dir.path().join("s.db"), |cfg| {
        cfg.max_connections = MAX_CONNECTIONS;
        cfg.max_in_flight = MAX_IN_FLIGHT;
        cfg.header_timeout = LONG;
        cfg.body_timeout = LONG;
        cfg.idle_timeout = LONG;
        adjust(cfg);
    })
    .await
    .expect("server starts");
    s.wait_status(&commit, "applied").await;
    let (code, id) = s.get("/api/v1.0/nodes/n00001/identity").await;
    assert_eq!(code, 200, "{id}");
    let addr = s.url("").trim_start_matches("http://").to_string();
    Site {
        key: id["identity_key"].as_str().unwrap().to_string(),
        action: id["actions"][0]["action_id"].as_str().unwrap().to_string(),
        _repo: repo,
        _dir: dir,
        s,
        addr,
    }
}

/// A raw connection to the server (bounded).
async fn connect(addr: &str) -> TcpStream {
    tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Opens `n` sockets that each send `bytes` and nothing more.
async fn hold(addr: &str, n: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = connect(addr).await;
        s.write_all(bytes).await.unwrap();
        out.push(s);
    }
    out
}

/// Opens `n` keep-alive connections that each get one answer, then idle.
async fn idle(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = connect(addr).await;
        s.write_all(format!("GET /versions HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let answer = read_answer(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        out.push(s);
    }
    out
}

/// Reads one small answer (head and a body that fits in one read).
async fn read_answer(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// How a held socket ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The server answered (the status line) and closed.
    Answered(String),
    /// The server closed without answering.
    Closed,
}

/// Reads until the server closes `s` (bounded by [`TIMEOUT`]).
async fn until_closed(s: &mut TcpStream) -> End {
    let mut got = Vec::new();
    let r = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut got))
        .await
        .expect("the server closes the socket in time");
    // A reset (the server closed with our bytes unread) is a close too.
    if r.is_err() && got.is_empty() {
        return End::Closed;
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    match text.lines().next() {
        Some(line) if !line.is_empty() => End::Answered(text),
        _ => End::Closed,
    }
}

/// A real node's boot-data GET, on a fresh connection, within [`NODE_BOUND`].
async fn node_get(site: &Site) -> u16 {
    let r = tokio::time::timeout(
        NODE_BOUND,
        client()
            .get(site.s.url("/api/v1.0/bootactions/nodes/n00001/units"))
            .header("X-Bootaction-Key", &site.key)
            .send(),
    )
    .await
    .expect("a real node's GET is answered without waiting for the slow sockets")
    .unwrap();
    r.status().as_u16()
}

/// A real node's progress report, on a fresh connection, within [`NODE_BOUND`].
async fn node_report(site: &Site) -> u16 {
    let r = tokio::time::timeout(
        NODE_BOUND,
        client()
            .post(
                site.s
                    .url(&format!("/api/v1.0/bootactions/{}", site.action)),
            )
            .header("X-Bootaction-Key", &site.key)
            .body(r#"{"details":[{"message":"progress","error":false}]}"#)
            .send(),
    )
    .await
    .expect("a real node's report is answered without waiting for the slow sockets")
    .unwrap();
    r.status().as_u16()
}

/// A GET of `path` on a fresh connection, within [`NODE_BOUND`].
async fn get_code(site: &Site, path: &str) -> u16 {
    tokio::time::timeout(NODE_BOUND, client().get(site.s.url(path)).send())
        .await
        .unwrap_or_else(|_| panic!("GET {path} answered without waiting for the slow sockets"))
        .unwrap()
        .status()
        .as_u16()
}

/// `slipway_http_connections_closed_total{reason}` as `/metrics` shows it.
async fn closed(site: &Site, reason: &str) -> u64 {
    let text = client()
        .get(site.s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("slipway_http_connections_closed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series}in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// Real nodes, health and an operator, several times over, each on a new
/// connection that must find a slot.
async fn real_clients_are_served(site: &Site) {
    for _ in 0..5 {
        assert_eq!(node_get(site).await, 200, "a real node's boot data");
        assert_eq!(node_report(site).await, 200, "a real node's report");
        assert_eq!(get_code(site, "/api/v1.0/health").await, 204, "health");
        assert_eq!(
            get_code(site, "/api/v1.0/nodes/n00001/identity").await,
            200,
            "an operator route (loopback)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_and_idle_connections_on_every_slot_do_not_starve_real_nodes() {
    let site = start(|_| {}).await;
    // Idle keep-alive connections first (each needs its answer), then half
    // headers: every slot is taken, the rest wait in the backlog.
    let mut held = idle(&site.addr, MAX_CONNECTIONS / 2).await;
    let partial = format!(
        "GET /api/v1.0/health HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
        site.addr
    );
    held.extend(hold(&site.addr, SOCKETS - held.len(), partial.as_bytes()).await);
    assert_eq!(held.len(), SOCKETS);

    real_clients_are_served(&site).await;
    assert!(
        closed(&site, "reclaimed").await > 0,
        "real nodes got slots by reclaiming slow ones"
    );
    assert_eq!(
        closed(&site, "header_timeout").await,
        0,
        "no timeout ran out"
    );

    // Stopping is bounded too, with every slow socket still open.
    site.s.stop().await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_report_bodies_hold_no_admission_permit_and_get_408() {
    let body_timeout = Duration::from_secs(1);
    let site = start(|cfg| cfg.body_timeout = body_timeout).await;
    // Complete headers with a valid key, a tenth of the body: before the
    // fix each took an admission permit before its body was read.
    let body = br#"{"details":[{"message":"half of a report","error":false}]}"#;
    let head = format!(
        "POST /api/v1.0/bootactions/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-Bootaction-Key: {}\r\nContent-Length: {}\r\n\r\n",
        site.action,
        site.addr,
        site.key,
        body.len()
    );
    let mut partial = head.into_bytes();
    partial.extend_from_slice(&body[..body.len() / 10]);
    let started = Instant::now();
    let mut held = hold(&site.addr, SOCKETS, &partial).await;

    real_clients_are_served(&site).await;

    // Every half-sent report ends: a 408 Status once its body timeout ran
    // out, or closed without an answer when its slot was reclaimed for a
    // real node. None was admitted.
    let mut timed_out = 0;
    for s in &mut held {
        match until_closed(s).await {
            End::Answered(text) => {
                assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                let status: serde_json::Value =
                    serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
                assert_eq!(status["kind"], "Status", "{status}");
                assert_eq!(status["code"], 408, "{status}");
                assert_eq!(status["reason"], "RequestTimeout", "{status}");
                timed_out += 1;
            }
            End::Closed => {}
        }
    }
    assert!(
        timed_out > 0,
        "expected the half-sent reports still open at their body timeout answered 408"
    );
    assert!(
        started.elapsed() >= body_timeout,
        "a 408 before the body timeout"
    );
    // Not one of them was recorded.
    let (code, data) = site.s.get("/api/v1.0/nodes/n00001/builddata").await;
    assert_eq!(code, 200, "{data}");
    let text = data.to_string();
    assert!(!text.contains("half of a report"), "{text}");
    site.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_after_their_timeouts() {
    let header_timeout = Duration::from_secs(1);
    let idle_timeout = Duration::from_secs(2);
    let site = start(|cfg| {
        cfg.header_timeout = header_timeout;
        cfg.idle_timeout = idle_timeout;
    })
    .await;
    // Fewer than the slots: these are closed by their timeouts, not
    // reclaimed for other clients.
    let started = Instant::now();
    let mut idle_socks = idle(&site.addr, 16).await;
    let partial = format!("GET /versions HTTP/1.1\r\nHost: {}\r\n", site.addr);
    let mut slow = hold(&site.addr, 16, partial.as_bytes()).await;
    // A trickle: a byte now and then does not extend the header's time.
    let mut trickle = connect(&site.addr).await;
    trickle
        .write_all(b"GET /versions HTTP/1.1\r\n")
        .await
        .unwrap();

    assert_eq!(node_get(&site).await, 200);

    let trickled = async {
        for _ in 0..(4 * TIMEOUT.as_secs()) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if trickle.write_all(b"X: y\r\n").await.is_err() {
                return;
            }
        }
        panic!("a header trickled a byte at a time was never closed");
    };
    tokio::time::timeout(TIMEOUT, trickled)
        .await
        .expect("the trickled header is closed in time");

    for s in &mut slow {
        assert_eq!(until_closed(s).await, End::Closed, "a half-sent header");
    }
    assert!(started.elapsed() >= header_timeout, "closed too early");
    for s in &mut idle_socks {
        assert_eq!(until_closed(s).await, End::Closed, "an idle keep-alive");
    }
    assert!(started.elapsed() >= idle_timeout, "closed too early");
    // Generous (5x the longest timeout here), but a deadline that each
    // poll of the connection pushed back would miss it.
    assert!(
        started.elapsed() < NODE_BOUND,
        "the slow and idle sockets were closed {:?} after they opened",
        started.elapsed()
    );
    assert!(closed(&site, "header_timeout").await >= 17);
    assert!(closed(&site, "idle_timeout").await >= 16);
    assert_eq!(
        closed(&site, "reclaimed").await,
        0,
        "slots were never short"
    );

    // A keep-alive connection that asks again in time is served again.
    let mut alive = connect(&site.addr).await;
    for _ in 0..3 {
        alive
            .write_all(format!("GET /versions HTTP/1.1\r\nHost: {}\r\n\r\n", site.addr).as_bytes())
            .await
            .unwrap();
        let answer = read_answer(&mut alive).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    site.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_responses_is_closed_after_the_idle_timeout() {
    let site = start(|cfg| cfg.idle_timeout = Duration::from_secs(1)).await;
    // A small receive window and many pipelined requests for the spec
    // (tens of KB each): far more than the socket buffers hold, so the
    // server's writes stall while this client reads nothing.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut reader = tokio::time::timeout(TIMEOUT, sock.connect(site.addr.parse().unwrap()))
        .await
        .expect("connect in time")
        .unwrap();
    let one = format!(
        "GET /api/v1.0/openapi.json HTTP/1.1\r\nHost: {}\r\n\r\n",
        site.addr
    );
    let requests = 1000;
    reader
        .write_all(one.repeat(requests).as_bytes())
        .await
        .unwrap();

    wait_for_closed(&site, "write_stalled").await;
    // The server is still answering others.
    assert_eq!(node_get(&site).await, 200);

    // What had reached this socket is still readable; then the end, well
    // short of every answer.
    let spec_len = client()
        .get(site.s.url("/api/v1.0/openapi.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, reader.read_to_end(&mut got))
        .await
        .expect("the stalled connection ends in time");
    assert!(
        got.len() < requests * spec_len,
        "all {requests} answers arrived ({} bytes)",
        got.len()
    );
    site.s.stop().await;
}

/// Polls `/metrics` (bounded) until a connection was closed for `reason`.
async fn wait_for_closed(site: &Site, reason: &str) {
    common::wait_for(&format!("a connection closed for {reason}"), || async {
        closed(site, reason).await > 0
    })
    .await;
}
