//! `GET /metrics` scraped from the real server and parsed, and the admission
//! limit of the node routes (429 + `Retry-After`) shown without timing.

mod common;

use std::time::Duration;

use common::{client, GitRepo, Server, TIMEOUT};
use std::collections::BTreeMap;

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

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    metric: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text exposition format (version 0.0.4) strictly:
/// comments must be `# HELP`/`# TYPE` lines, every other non-empty line a
/// sample `name{label="value",...} value`, label values with `\\`, `\"`
/// and `\n` escapes. Panics on anything else.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(c) = line.strip_prefix("# ") {
            assert!(
                c.starts_with("HELP ") || c.starts_with("TYPE "),
                "comment line: {line}"
            );
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let metric = &line[..name_end];
        assert!(
            !metric.is_empty()
                && !metric.starts_with(|c: char| c.is_ascii_digit())
                && metric
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = rest.find('=').unwrap_or_else(|| panic!("label: {line}"));
                let key = rest[..eq].to_string();
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "label name: {line}"
                );
                let mut chars = rest[eq + 1..].char_indices();
                assert_eq!(
                    chars.next().map(|(_, c)| c),
                    Some('"'),
                    "label value: {line}"
                );
                let mut value = String::new();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            other => panic!("escape {other:?}: {line}"),
                        },
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label value: {line}"),
                    }
                };
                labels.insert(key, value);
                rest = &rest[eq + 1 + end + 1..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                }
            }
        }
        let v = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value: {line}"));
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("value: {line}")),
        };
        out.push(Sample {
            metric: metric.to_string(),
            labels,
            value,
        });
    }
    out
}

/// Scrapes `/metrics`: the content type and the parsed samples.
async fn scrape(s: &Server) -> (String, Vec<Sample>) {
    let r = client().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    (ctype, parse_exposition(&text))
}

/// The value of the sample `metric` whose labels are exactly `labels`.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.metric == metric
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
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
    let (_repo, _dir, s, commit) = start(slipway::server::DEFAULT_MAX_IN_FLIGHT).await;
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

    assert_eq!(
        value(
            &samples,
            "slipway_http_request_duration_seconds_bucket",
            &[("route", BOOTDATA), ("method", "GET"), ("le", "+Inf")]
        ),
        Some(2.0),
        "a latency histogram for the boot-data route"
    );
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
    let (_repo, dir, s, _) = start(1).await;
    let id = identity(&s, "n00001").await;
    let key = id["identity_key"].as_str().unwrap().to_string();
    let aid = id["actions"][0]["action_id"].as_str().unwrap().to_string();
    // Served once, so later GETs are answered from memory (no database).
    assert_eq!(bootdata(&s, "n00001", &key).await.status().as_u16(), 200);

    // A complete, authenticated status report holds the one permit while its
    // write waits for the database, which this test keeps locked (WAL:
    // readers go on). A half-sent report holds none (tests/slow_clients.rs).
    let lock = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let report = tokio::spawn({
        let url = s.url(&format!("/api/v1.0/bootactions/{aid}"));
        let key = key.clone();
        async move {
            client()
                .post(url)
                .header("X-Bootaction-Key", key)
                .body(r#"{"details":[{"message":"started","error":false}]}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });

    // Bounded wait until the report holds the permit; before that a GET may
    // still be answered, never with anything but 200.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let refused = loop {
        let r = bootdata(&s, "n00001", &key).await;
        match r.status().as_u16() {
            429 => break r,
            200 => {}
            other => panic!("boot-data GET answered {other}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for a boot-data GET refused with 429"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
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

    // The database again: the report is recorded and the permit released.
    lock.execute_batch("ROLLBACK").unwrap();
    let code = tokio::time::timeout(TIMEOUT, report)
        .await
        .expect("the report is answered in time")
        .unwrap();
    assert_eq!(code, 200);
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
    let (_repo, _dir, s, _) = start(slipway::server::DEFAULT_MAX_IN_FLIGHT).await;
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
