//! `GET /metrics` (Prometheus text format) and the middleware that counts
//! every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics::Metrics;

/// `GET /metrics`: every series of the server, unauthenticated like health
/// (Prometheus scrapes without a token).
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, Metrics::content_type())],
        state.metrics.encode(),
    )
        .into_response()
}

/// Counts a request in flight until it is answered or dropped.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn start(m: &'a Metrics) -> InFlight<'a> {
        m.http_in_flight(1);
        InFlight(m)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.http_in_flight(-1);
    }
}

/// Middleware on every route: the in-flight gauge, then the request counted
/// by route template (never the raw path: the series stay bounded), method
/// and status, with its latency. Runs on every boot-data GET, so it only
/// clones the matched path's `Arc` and the method.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::start(&state.metrics);
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let response = next.run(req).await;
    state.metrics.http_request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
