//! What the server lets in during a boot storm: a bound on the node requests
//! answered at once ([`Gate::enter`], 429 beyond it). Open connections are
//! bounded in `conn.rs`.
//!
//! A permit is taken only for a complete request whose key checked out: the
//! body has been read (`body.rs`, bounded in size and time) before the
//! handler runs, and the handler enters the gate after the key check. So a
//! client that sends half a request, or no key, holds no permit and cannot
//! turn real nodes' requests into 429s.
//!
//! The permits are a `tokio::sync::Semaphore`: no lock of ours, nothing that
//! grows with the number of waiting nodes.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HttpError;
use crate::metrics::Metrics;

/// Seconds a refused node is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// The admission limit shared by every node route of one server.
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// `max_in_flight` requests answered at once (at least one).
    pub fn new(max_in_flight: usize, metrics: Arc<Metrics>) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            metrics,
        }
    }
}

/// Middleware of the node routes (boot data, status reports): hands the
/// handler its [`Gate`]. It takes no permit: the handler enters the gate once
/// the request is known to be a node's.
pub async fn admit(State(adm): State<Admission>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    req.extensions_mut().insert(Gate {
        admission: adm,
        route,
    });
    next.run(req).await
}

/// The admission limit as a node route's handler sees it.
#[derive(Clone)]
pub struct Gate {
    admission: Admission,
    route: Option<MatchedPath>,
}

impl Gate {
    /// A permit for the work of an authenticated request, held until it is
    /// dropped; with none free, [`Full`] (counted by route).
    pub fn enter(&self) -> Result<OwnedSemaphorePermit, Full> {
        self.admission
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                self.admission
                    .metrics
                    .http_rejected(self.route.as_ref().map_or("unmatched", MatchedPath::as_str));
                Full
            })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Gate {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Gate, HttpError> {
        parts
            .extensions
            .get::<Gate>()
            .cloned()
            .ok_or_else(|| HttpError::internal("a node route is not behind the admission gate"))
    }
}

/// Every permit is taken: answered as a 429 with `Retry-After`.
#[derive(Debug)]
pub struct Full;

impl IntoResponse for Full {
    fn into_response(self) -> Response {
        too_many_requests()
    }
}

/// The 429 of a full server: an `HttpError` (the dialect's body) and `Retry-After`.
fn too_many_requests() -> Response {
    let mut r = HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        format!(
            "the server is answering as many node requests as it allows \
             (--max-in-flight); retry after {RETRY_AFTER_SECS} s"
        ),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}
