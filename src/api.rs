//! The HTTP API: every dialect's routes merged into one router. The only
//! user of `axum` and its stack (hyper, tower, tower-http).
//!
//! [`app`] builds the whole router; [`serve`] runs it on a bound listener
//! until a shutdown future completes. [`http`] is the machinery every
//! dialect shares; each dialect is a folder beside it ([`drydock`]: Drydock
//! v1.0; [`ironic`]: the Ironic agent, with `GET /` for both OpenStack
//! dialects). Adding a dialect is adding its folder and one line in [`app`].

pub mod commissaire;
pub mod drydock;
pub mod http;
pub mod inspector;
pub mod ironic;
pub mod luna2;

use std::future::Future;

use axum::Router;

pub use http::{is_loopback, AppParts, AppState, ConnLimits, HttpError, Tokens, BODY_LIMIT};

/// The whole API: the routers of every dialect, merged. A route no dialect
/// has is a 404 (405 with `Allow` for a known path), answered like every
/// error in Drydock's shape ([`drydock::Status`]), the first dialect; a
/// dialect with another shape wraps its own router in
/// [`http::error::answers`] with its presenter. Every request is counted by
/// [`http::metrics::Track`].
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .merge(drydock::router(&state))
        .merge(inspector::router(&state))
        .merge(http::error::answers(
            ironic::router(&state),
            ironic::Presenter,
        ))
        .merge(http::error::answers(
            commissaire::router(&state),
            commissaire::Presenter,
        ))
        .merge(http::error::answers(
            luna2::router(&state),
            luna2::Presenter,
        ))
        .fallback(http::error::not_found)
        .method_not_allowed_fallback(http::error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT));
    http::error::answers(routes, drydock::Status)
        .layer(http::metrics::Track(state.metrics.clone()))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then drains the
/// requests being answered (bounded by `limits.drain_timeout`). Connections
/// are bounded and timed as `http/conn.rs` says.
pub async fn serve(
    listener: tokio::net::TcpListener,
    limits: ConnLimits,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    http::conn::serve(listener, limits, app(state), metrics, shutdown).await
}
