//! `GET /metrics` scraped from the real server and parsed, and the admission
//! limit of the node routes (429 + `Retry-After`) shown without timing.

mod common;

use std::time::Duration;

use common::{client, wait_for, GitRepo, Server, TIMEOUT};
use prometheus_parse::{Sample, Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOOTDATA: &str = "/api/v1.0/bootactions/nodes/{hostname}/{kind}";

/// A server on the example site (`max_in_flight` as given), its applied
/// commit, and what must outlive it.
async fn start(max_in_flight: usize) -> (GitRepo, tempfile::TempDir, Server, String) {
    let repo = GitRepo::new();
    repo.add_example_site();
    let commit = repo.commit("example site");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(repo.path(), &dir.path().join("s.db"), |cfg| {
        cfg.max_in_flight = max_in_flight;
    })
    .await
    .expect("server starts");
    s.wait_status(&commit, "applied").await;
    (repo, dir, s, commit)
}

/// Scrapes `/metrics`: the content type and the parsed samples. Fails when
/// any sample line was not understood (the parser skips such lines).
async fn scrape(s: &Server) -> (String, Vec<Sample>) {
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let sample_lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let understood: usize = parsed
        .samples
        .iter()
        .map(|s| match &s.value {
            Value::Histogram(b) => b.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(sample_lines, understood, "unparsed lines in:\n{text}");
    (ctype, parsed.samples)
}

/// The value of the counter, gauge or untyped sample `metric` whose labels
/// are exactly `labels`.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    find(samples, metric, labels).map(|s| match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric} is not a single value: {other:?}"),
    })
}

fn find<'a>(samples: &'a [Sample], metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.metric == metric
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

async fn identity(s: &Server, host: &str) -> serde_json::Value {
    let (code, body) = s.get(&format!("/api/v1.0/nodes/{host}/identity")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn bootdata(s: &Server, host: &str, key: &str) -> reqwest::Response {
    client()
        .get(s.url(&format!("/api/v1.0/bootactions/nodes/{host}/units")))
        .header("X-Bootaction-Key", key)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_show_the_applied_revision() {
    let (_repo, _dir, s, commit) = start(slipway::reconcile::DEFAULT_MAX_IN_FLIGHT).await;
    assert_eq!(s.health().await, 204);
    let key = identity(&s, "n00001").await["identity_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(bootdata(&s, "n00001", &key).await.status().as_u16(), 200);
    let wrong = "0".repeat(64);
    assert_eq!(bootdata(&s, "n00002", &wrong).await.status().as_u16(), 403);
    assert_eq!(s.get("/no/such/path/n00003").await.0, 404);

    let (ctype, samples) = scrape(&s).await;
    assert_eq!(ctype, slipway::metrics::Metrics::content_type());

    let requests = "slipway_http_requests_total";
    let count = |route, method, status| {
        value(
            &samples,
            requests,
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(count("/api/v1.0/health", "GET", "204"), Some(1.0));
    assert_eq!(count(BOOTDATA, "GET", "200"), Some(1.0));
    assert_eq!(count(BOOTDATA, "GET", "403"), Some(1.0));
    assert_eq!(count("unmatched", "GET", "404"), Some(1.0));
    // Route templates only: no raw path (host names) becomes a label.
    for s in samples.iter().filter(|s| s.metric == requests) {
        let route = s.labels.get("route").unwrap();
        assert!(!route.contains("n0000"), "raw path as a label: {route}");
    }

    let latency = find(
        &samples,
        "slipway_http_request_duration_seconds",
        &[("route", BOOTDATA), ("method", "GET")],
    )
    .expect("a latency histogram for the boot-data route");
    let Value::Histogram(buckets) = &latency.value else {
        panic!("not a histogram: {latency:?}");
    };
    let all = buckets
        .iter()
        .find(|b| b.less_than == f64::INFINITY)
        .expect("+Inf bucket");
    assert_eq!(all.count, 2.0);
    assert_eq!(
        value(
            &samples,
            "slipway_http_request_duration_seconds_count",
            &[("route", BOOTDATA), ("method", "GET")]
        ),
        Some(2.0)
    );

    let applied = value(
        &samples,
        "slipway_reconcile_passes_total",
        &[("outcome", "applied")],
    );
    assert!(applied >= Some(1.0), "applied passes: {applied:?}");
    assert_eq!(
        value(
            &samples,
            "slipway_applied_revision_info",
            &[("commit", commit.as_str())]
        ),
        Some(1.0)
    );
    s.stop().await;
}

#[tokio::test]
async fn node_requests_beyond_max_in_flight_get_429_until_the_permit_is_released() {
    let (_repo, _dir, s, _) = start(1).await;
    let id = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    let aid = id["actions"][0]["action_id"].as_str().unwrap().to_string();

    // A status report whose body is only half sent: its handler waits for
    // the rest while holding the one permit, which it took before reading.
    let body = br#"{"details":[{"message":"started","error":false}]}"#;
    let addr = s.url("").trim_start_matches("http://").to_string();
    let mut slow = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .expect("connect in time")
        .unwrap();
    let head = format!(
        "POST /api/v1.0/bootactions/{aid} HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nX-Bootaction-Key: {key}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..10]).await.unwrap();
    slow.flush().await.unwrap();

    // Bounded wait until the report holds the permit; before that a GET may
    // still be answered, never with anything but 200.
    let mut refused = None;
    wait_for("a boot-data GET refused with 429", || {
        let s = &s;
        let key = &key;
        let refused = &mut refused;
        async move {
            let r = bootdata(s, "n00001", key).await;
            match r.status().as_u16() {
                429 => {
                    *refused = Some(r);
                    true
                }
                200 => false,
                other => panic!("boot-data GET answered {other}"),
            }
        }
    })
    .await;
    let refused = refused.unwrap();
    assert_eq!(
        refused.headers()["retry-after"].to_str().unwrap(),
        slipway_retry_after()
    );
    let status: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 429);
    assert_eq!(status["reason"], "TooManyRequests");

    // Not limited: health and the operator routes.
    assert_eq!(s.health().await, 204);
    assert_eq!(s.get("/api/v1.0/nodes/n00001/identity").await.0, 200);

    let (_, samples) = scrape(&s).await;
    let rejected = value(
        &samples,
        "slipway_http_rejected_total",
        &[("route", BOOTDATA)],
    );
    assert!(rejected >= Some(1.0), "rejected: {rejected:?}");
    assert!(
        value(
            &samples,
            "slipway_http_requests_total",
            &[("route", BOOTDATA), ("method", "GET"), ("status", "429")]
        ) >= Some(1.0)
    );

    // The rest of the body: the report is recorded and the permit released
    // before its answer is written.
    slow.write_all(&body[10..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, slow.read_to_end(&mut answer))
        .await
        .expect("the slow report is answered in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(bootdata(&s, "n00001", &key).await.status().as_u16(), 200);

    let (_, samples) = scrape(&s).await;
    assert_eq!(
        value(
            &samples,
            "slipway_signals_total",
            &[("outcome", "recorded")]
        ),
        Some(1.0)
    );
    s.stop().await;
}

/// `Retry-After` as the server sends it.
fn slipway_retry_after() -> &'static str {
    "1"
}

#[tokio::test]
async fn signal_outcomes_are_counted() {
    let (_repo, _dir, s, _) = start(slipway::reconcile::DEFAULT_MAX_IN_FLIGHT).await;
    let id = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    let aid = id["actions"][0]["action_id"].as_str().unwrap().to_string();
    let post = |action: String, key: Option<String>, body: &'static str| {
        let url = s.url(&format!("/api/v1.0/bootactions/{action}"));
        async move {
            let mut req = client().post(url).body(body);
            if let Some(k) = key {
                req = req.header("X-Bootaction-Key", k);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    let done = r#"{"status":"Success","details":[]}"#;
    assert_eq!(
        post("01ARZ3NDEKTSV4RRFFQ69G5FAV".into(), Some(key.clone()), done).await,
        404
    );
    assert_eq!(post(aid.clone(), None, done).await, 401);
    assert_eq!(post(aid.clone(), Some(key.clone()), "[]").await, 400);
    assert_eq!(post(aid.clone(), Some(key.clone()), done).await, 200);
    assert_eq!(post(aid.clone(), Some(key.clone()), done).await, 409);

    let (_, samples) = scrape(&s).await;
    let outcome = |o| value(&samples, "slipway_signals_total", &[("outcome", o)]);
    assert_eq!(outcome("unknown"), Some(1.0));
    assert_eq!(outcome("rejected"), Some(2.0));
    assert_eq!(outcome("recorded"), Some(1.0));
    assert_eq!(outcome("already_final"), Some(1.0));
    s.stop().await;
}

#[allow(dead_code)]
const _UNUSED: Duration = Duration::ZERO;
