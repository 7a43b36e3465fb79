//! The Luna2 (TrinityX) dialect: what Luna2's `luna` CLI, `lpower`, its
//! installer scripts and its operators' scripts call on the Luna2 daemon,
//! served from the applied design. Sessions (`POST /token`, the
//! `x-access-tokens` header: [`auth`]), `GET /version`, the site as Luna2
//! config (`GET /config/…`: [`config`]). Luna2's `{"message"}` error body
//! ([`Presenter`], `error.rs` only). Handlers parse, call a service
//! ([`crate::services::users`], ...), present.

pub mod auth;
mod boot;
mod config;
mod config_write;
mod control;
mod error;
mod monitor;
pub mod openapi;

use axum::Router;

use super::http::routes::{Group, Route};
use super::http::AppState;

pub use error::Presenter;

/// The media type of every JSON answer.
const JSON: &str = "application/json";

/// Luna2's routes, as one table: one line per submodule.
pub fn routes() -> Vec<Route> {
    let mut all = Vec::new();
    all.extend(auth::routes());
    all.extend(config::routes());
    all.extend(config_write::routes());
    all.extend(boot::routes());
    all.extend(monitor::routes());
    all.extend(control::routes());
    all.extend(openapi::routes());
    all
}

/// Luna2's routes as one router.
pub fn router(state: &AppState) -> Router<AppState> {
    super::http::routes::router(routes(), state)
}

/// A route of this dialect: public at the HTTP layer (Luna2's token is
/// checked by the handler's [`auth::Token`] extractor), answering JSON.
#[allow(clippy::too_many_arguments)]
fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<serde_json::Value>,
    ok: &'static [u16],
    extra: &'static [u16],
    handler: axum::routing::MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        group: Group::Public,
        summary,
        body,
        ok,
        extra,
        bootaction_key: false,
        limited: false,
        produces: JSON,
        handler,
    }
}
