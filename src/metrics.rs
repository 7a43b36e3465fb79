//! Prometheus metrics, served by `GET /metrics` in the text exposition format.
//! The only user of the `prometheus` crate.
//!
//! One [`Metrics`] per server (not a process-wide registry), so several
//! servers in one test process count apart. Every series is named
//! `slipway_*`; docs/api.md lists them.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets for HTTP requests, in seconds (100 µs to 10 s).
const HTTP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets for reconcile passes and renders, in seconds (1 ms to 60 s).
const PASS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Why the server closes a connection itself (`slipway_http_connections_closed_total`).
pub const CLOSE_REASONS: [&str; 4] = [
    "header_timeout",
    "idle_timeout",
    "write_stalled",
    "reclaimed",
];

/// Outcomes of an inspection callback (`slipway_inspection_callbacks_total`).
pub const INSPECTION_OUTCOMES: [&str; 5] =
    ["matched", "proposed", "several", "malformed", "refused"];

/// The server's metrics. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_rejected: IntCounterVec,
    http_in_flight: IntGauge,
    http_closed: IntCounterVec,
    reconcile_passes: IntCounterVec,
    reconcile_duration: HistogramVec,
    applied_revision: IntGaugeVec,
    applied_at: IntGauge,
    applied_nodes: IntGauge,
    boot_data_renders: IntCounterVec,
    boot_data_cache_hits: IntCounter,
    render_duration: Histogram,
    nodes_rerendered: IntCounter,
    signals: IntCounterVec,
    inspection_callbacks: IntCounterVec,
    inspection_disagreements: IntCounterVec,
    agent_index_builds: IntCounter,
    agent_tokens: IntCounterVec,
    agent_heartbeats: IntCounterVec,
}

/// The outcomes of an Ironic agent heartbeat.
pub const HEARTBEAT_OUTCOMES: [&str; 5] = [
    "accepted",
    "token_required",
    "invalid_token",
    "callback_changed",
    "unknown_node",
];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

impl Metrics {
    /// A fresh registry with every series registered.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let http_requests = counter_vec(
            &r,
            "slipway_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            &["route", "method", "status"],
        );
        let http_duration = histogram_vec(
            &r,
            "slipway_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            &["route", "method"],
            HTTP_BUCKETS,
        );
        let http_rejected = counter_vec(
            &r,
            "slipway_http_rejected_total",
            "Requests refused with 429 by the admission limit, by route template.",
            &["route"],
        );
        let http_in_flight = gauge(
            &r,
            "slipway_http_in_flight_requests",
            "Requests being answered now.",
        );
        let http_closed = counter_vec(
            &r,
            "slipway_http_connections_closed_total",
            "Connections the server closed because their client was slow or idle \
             (header_timeout, idle_timeout, write_stalled) or to make room for another \
             client (reclaimed).",
            &["reason"],
        );
        let reconcile_passes = counter_vec(
            &r,
            "slipway_reconcile_passes_total",
            "Reconcile passes finished, by outcome (unchanged, applied, invalid, error).",
            &["outcome"],
        );
        let reconcile_duration = histogram_vec(
            &r,
            "slipway_reconcile_duration_seconds",
            "Time of a reconcile pass (validate, plan, apply, re-render), by outcome.",
            &["outcome"],
            PASS_BUCKETS,
        );
        let applied_revision = IntGaugeVec::new(
            Opts::new(
                "slipway_applied_revision_info",
                "The applied revision being served (value 1, commit as a label).",
            ),
            &["commit"],
        )
        .expect("valid metric");
        r.register(Box::new(applied_revision.clone()))
            .expect("unique metric");
        let applied_at = gauge(
            &r,
            "slipway_applied_revision_timestamp_seconds",
            "When the applied revision was applied (or found applied at start), Unix time.",
        );
        let applied_nodes = gauge(&r, "slipway_applied_nodes", "Nodes in the applied design.");
        let boot_data_renders = counter_vec(
            &r,
            "slipway_boot_data_renders_total",
            "Boot data rendered (a cache miss: templates run and a tarball packed), by kind.",
            &["kind"],
        );
        let boot_data_cache_hits = counter(
            &r,
            "slipway_boot_data_cache_hits_total",
            "Boot data requests served from the render cache.",
        );
        let render_duration = Histogram::with_opts(
            HistogramOpts::new(
                "slipway_boot_data_render_duration_seconds",
                "Time to render one node's boot data of one kind.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        r.register(Box::new(render_duration.clone()))
            .expect("unique metric");
        let nodes_rerendered = counter(
            &r,
            "slipway_reconcile_nodes_rerendered_total",
            "Nodes whose boot data a reconcile pass rendered again because a commit changed their inputs.",
        );
        let signals = counter_vec(
            &r,
            "slipway_signals_total",
            "Boot-action status reports, by outcome (recorded, already_final, unknown, rejected).",
            &["outcome"],
        );
        let inspection_callbacks = counter_vec(
            &r,
            "slipway_inspection_callbacks_total",
            "Inspection callbacks of ramdisks (/v1/continue, /v1/continue_inspection), by outcome \
             (matched, proposed, several, malformed, refused).",
            &["outcome"],
        );
        let inspection_disagreements = counter_vec(
            &r,
            "slipway_inspection_disagreements_total",
            "Disagreements between what an inspected machine reports and the design, by kind.",
            &["kind"],
        );
        for outcome in INSPECTION_OUTCOMES {
            inspection_callbacks.with_label_values(&[outcome]);
        }
        let agent_index_builds = counter(
            &r,
            "slipway_agent_index_builds_total",
            "Node indexes (by MAC and UUID) built for Ironic agent lookups: one per served revision.",
        );
        let agent_tokens = counter_vec(
            &r,
            "slipway_agent_lookups_total",
            "Ironic agent lookups answered 200, by token (issued: a fresh agent token; masked: \"******\").",
            &["token"],
        );
        let agent_heartbeats = counter_vec(
            &r,
            "slipway_agent_heartbeats_total",
            "Ironic agent heartbeats, by outcome (accepted, token_required, invalid_token, callback_changed, unknown_node).",
            &["outcome"],
        );
        for token in ["issued", "masked"] {
            agent_tokens.with_label_values(&[token]);
        }
        for outcome in HEARTBEAT_OUTCOMES {
            agent_heartbeats.with_label_values(&[outcome]);
        }
        // Known label values start at 0, so a series exists before its first
        // event and `rate()` sees the first one.
        for kind in ["units", "files", "pkg_list", "all"] {
            boot_data_renders.with_label_values(&[kind]);
        }
        for outcome in ["unchanged", "applied", "invalid", "error"] {
            reconcile_passes.with_label_values(&[outcome]);
        }
        for outcome in ["recorded", "already_final", "unknown", "rejected"] {
            signals.with_label_values(&[outcome]);
        }
        for reason in CLOSE_REASONS {
            http_closed.with_label_values(&[reason]);
        }
        Metrics {
            registry: r,
            http_requests,
            http_duration,
            http_rejected,
            http_in_flight,
            http_closed,
            reconcile_passes,
            reconcile_duration,
            applied_revision,
            applied_at,
            applied_nodes,
            boot_data_renders,
            boot_data_cache_hits,
            render_duration,
            nodes_rerendered,
            signals,
            inspection_callbacks,
            inspection_disagreements,
            agent_index_builds,
            agent_tokens,
            agent_heartbeats,
        }
    }

    /// Counts a node index built for agent lookups.
    pub fn agent_index_built(&self) {
        self.agent_index_builds.inc();
    }

    /// Counts a lookup answered 200: `issued` (a fresh token) or `masked`.
    pub fn agent_lookup(&self, token: &str) {
        self.agent_tokens.with_label_values(&[token]).inc();
    }

    /// Counts a heartbeat by outcome (one of [`HEARTBEAT_OUTCOMES`]).
    pub fn agent_heartbeat(&self, outcome: &str) {
        self.agent_heartbeats.with_label_values(&[outcome]).inc();
    }

    /// Records an answered HTTP request. `route` is the route template
    /// (`/api/v1.0/bootactions/nodes/{hostname}/{kind}`), never the raw path,
    /// so the series stay bounded; unmatched paths use `unmatched`.
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        // Three digits on the stack: this runs on every request.
        let status = status.min(999);
        let digits = [
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        let code = std::str::from_utf8(&digits).unwrap_or("999");
        self.http_requests
            .with_label_values(&[route, method, code])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    /// Records a request refused by the admission limit.
    pub fn http_rejected(&self, route: &str) {
        self.http_rejected.with_label_values(&[route]).inc();
    }

    /// Records a connection the server closed itself, by reason (one of
    /// [`CLOSE_REASONS`]).
    pub fn http_connection_closed(&self, reason: &str) {
        self.http_closed.with_label_values(&[reason]).inc();
    }

    /// A request started (+1) or finished (-1).
    pub fn http_in_flight(&self, delta: i64) {
        self.http_in_flight.add(delta);
    }

    /// Records a finished reconcile pass.
    pub fn reconcile(&self, outcome: &str, took: Duration) {
        self.reconcile_passes.with_label_values(&[outcome]).inc();
        self.reconcile_duration
            .with_label_values(&[outcome])
            .observe(took.as_secs_f64());
    }

    /// Records the revision now served.
    pub fn revision_applied(&self, commit: &str, nodes: usize, at_unix: i64) {
        self.applied_revision.reset();
        self.applied_revision.with_label_values(&[commit]).set(1);
        self.applied_at.set(at_unix);
        self.applied_nodes.set(nodes as i64);
    }

    /// Records one node's boot data of `kind` rendered (a cache miss).
    pub fn boot_data_rendered(&self, kind: &str, took: Duration) {
        self.boot_data_renders.with_label_values(&[kind]).inc();
        self.render_duration.observe(took.as_secs_f64());
    }

    /// Records a boot data request answered from the cache.
    pub fn boot_data_cache_hit(&self) {
        self.boot_data_cache_hits.inc();
    }

    /// Records nodes a reconcile pass rendered again.
    pub fn nodes_rerendered(&self, n: usize) {
        self.nodes_rerendered.inc_by(n as u64);
    }

    /// Records a status report: `recorded`, `already_final`, `unknown` or
    /// `rejected` (bad key or body).
    pub fn signal(&self, outcome: &str) {
        self.signals.with_label_values(&[outcome]).inc();
    }

    /// Records an inspection callback's outcome (one of [`INSPECTION_OUTCOMES`]).
    pub fn inspection_callback(&self, outcome: &str) {
        self.inspection_callbacks
            .with_label_values(&[outcome])
            .inc();
    }

    /// Counts one disagreement of an inspected machine with the design.
    pub fn inspection_disagreement(&self, kind: &str) {
        self.inspection_disagreements
            .with_label_values(&[kind])
            .inc();
    }

    /// Boot data rendered so far, all kinds.
    pub fn boot_data_renders(&self) -> u64 {
        ["units", "files", "pkg_list", "all"]
            .iter()
            .map(|k| self.boot_data_renders.with_label_values(&[k]).get())
            .sum()
    }

    /// The whole registry in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        // Encoding into a Vec cannot fail for these collectors.
        let _ = enc.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The `Content-Type` of [`Metrics::encode`].
    pub fn content_type() -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }
}
