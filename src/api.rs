//! The HTTP API (Drydock v1.0 dialect). The only user of `axum`.
//!
//! [`app`] builds the whole router; [`serve`] runs it on a bound listener
//! until a shutdown future completes. Handlers live one file per API family.

mod admission;
mod auth;
mod body;
mod bootactions;
mod bootdata;
mod builddata;
mod conn;
mod error;
mod health;
mod hooks;
mod metrics;
mod nodes;
pub mod openapi;
mod revisions;
pub mod tasks;
mod validation;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use tokio::sync::Notify;

pub use auth::{is_loopback, Tokens};
pub use body::DesignSource;
pub use conn::ConnLimits;
pub use error::AppError;

use crate::boot::BootService;
use crate::reconcile::SharedStatus;
use crate::state::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// A read connection to the database (the reconciler has its own writer).
    pub store: Arc<Mutex<Store>>,
    /// What is being served, as the reconciler last left it.
    pub status: SharedStatus,
    /// Wakes the reconciler (the git webhook).
    pub trigger: Arc<Notify>,
    /// The database file, shown by the extended health check.
    pub db_path: String,
    /// When the server started, for uptime.
    pub started: Instant,
    /// Deployments, keys, boot data and status reports (its own connection).
    pub boot: Arc<BootService>,
    /// Where design references are read from.
    pub design: DesignSource,
    /// Accepted operator tokens; `None`: operator routes are loopback-only.
    pub tokens: Option<Arc<Tokens>>,
    /// The server's metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Requests of nodes (boot data, signals) answered at once; more get 429.
    pub max_in_flight: usize,
    /// Longest wait for a request's body (`--body-timeout`); 408 after it.
    pub body_timeout: std::time::Duration,
}

impl AppState {
    /// Runs `f` with the read connection on a blocking thread: SQLite calls
    /// must not stall the async runtime.
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, crate::state::StateError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let guard = store
                .lock()
                .map_err(|_| AppError::internal("database lock poisoned"))?;
            f(&guard).map_err(AppError::from)
        })
        .await
        .map_err(|e| AppError::internal(format!("database task failed: {e}")))?
    }
}

impl AppState {
    /// Like [`AppState::with_store`], for the few writes the API makes itself
    /// (tasks). SQLite serialises them with the reconciler's writes (WAL,
    /// busy timeout). Refused with 503 when the database file was removed or
    /// replaced, before the write and again before it is acknowledged.
    pub async fn with_store_mut<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, crate::state::StateError> + Send + 'static,
    {
        let store = self.store.clone();
        let boot = self.boot.clone();
        tokio::task::spawn_blocking(move || {
            boot.check_database()?;
            let mut guard = store
                .lock()
                .map_err(|_| AppError::internal("database lock poisoned"))?;
            let out = f(&mut guard).map_err(AppError::from)?;
            boot.check_database()?;
            Ok(out)
        })
        .await
        .map_err(|e| AppError::internal(format!("database task failed: {e}")))?
    }
}

/// The whole API, built from the route table [`openapi::routes`] (which also
/// generates `/api/v1.0/openapi.json`), in two groups:
/// - `Group::Public`: health, `/versions`, the spec and (slotted in by the
///   boot-data work) the routes nodes call themselves —
///   `/api/v1.0/bootactions/nodes/...`, `/api/v1.0/bootdata/...` and the
///   boot-action signal POSTs `/api/v1.0/bootactions/{id}`,
///   `/api/v1.0/bootaction/{id}`: add those to the table as `Group::Public`;
/// - `Group::Operator`: everything else, behind [`auth::require_operator`];
///   new operator routes go in the table as `Group::Operator`.
///
/// Routes marked `limited` (those nodes call) share one admission limit of
/// `state.max_in_flight` ([`admission::Gate`], entered by the handler once
/// the request is authenticated). Every route that takes a body reads it
/// whole first ([`body::read_whole`]), inside the operator check, so an
/// unauthenticated operator request is refused before its body is read.
/// Every error answer is a Drydock Status ([`error::status_bodies`], a
/// panic included); every request is counted by [`metrics::track`].
pub fn app(state: AppState) -> Router {
    let admission = admission::Admission::new(state.max_in_flight, state.metrics.clone());
    let mut public = Router::new();
    let mut operator = Router::new();
    for r in openapi::routes() {
        let mut handler = r.handler;
        if r.body.is_some() {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                body::read_whole,
            ));
        }
        if r.limited {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                admission.clone(),
                admission::admit,
            ));
        }
        match r.group {
            openapi::Group::Public => public = public.route(r.path, handler),
            openapi::Group::Operator => operator = operator.route(r.path, handler),
        }
    }
    let operator = operator.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_operator,
    ));
    let routes = public
        .merge(operator)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    error::answers(routes)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The largest request body accepted (413 above).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Serves [`app`] on `listener` until `shutdown` completes, then drains the
/// requests being answered (bounded by `limits.drain_timeout`). Connections
/// are bounded and timed as `conn.rs` says.
pub async fn serve(
    listener: tokio::net::TcpListener,
    limits: ConnLimits,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    conn::serve(listener, limits, app(state), metrics, shutdown).await
}
