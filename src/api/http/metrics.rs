//! `GET /metrics` (Prometheus text format) and the middleware that counts
//! every request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
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
struct InFlight(Arc<Metrics>);

impl InFlight {
    fn start(m: Arc<Metrics>) -> InFlight {
        m.http_in_flight(1);
        InFlight(m)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.http_in_flight(-1);
    }
}

/// The layer on every route that counts it ([`Tracking`]).
#[derive(Clone)]
pub struct Track(pub Arc<Metrics>);

impl<I> tower::Layer<I> for Track {
    type Service = Tracking<I>;

    fn layer(&self, inner: I) -> Tracking<I> {
        Tracking {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// A route counted: the in-flight gauge, then the request counted by route
/// template (never the raw path: the series stay bounded), method and
/// status, with its latency. Runs on every boot-data GET, so it only clones
/// the matched path's `Arc` and the method, and calls the route without
/// cloning it.
#[derive(Clone)]
pub struct Tracking<I> {
    inner: I,
    metrics: Arc<Metrics>,
}

impl<I> tower::Service<Request> for Tracking<I>
where
    I: tower::Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    I::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let metrics = self.metrics.clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        let in_flight = InFlight::start(metrics);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            in_flight.0.http_request(
                route.as_ref().map_or("unmatched", MatchedPath::as_str),
                method.as_str(),
                response.status().as_u16(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}
