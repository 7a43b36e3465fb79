//! The Ironic agent dialect: what ironic-python-agent (IPA 13) calls on
//! Ironic's API, served from the applied design — the version documents
//! (`GET /`, shared with ironic-inspector, and `GET /v1`), the node lookup
//! (`GET /v1/lookup`) and the heartbeat (`POST /v1/heartbeat/{node_ident}`).
//! Ironic's version headers and 406 rules on every response
//! ([`versions`]); Ironic's error body ([`Presenter`], `error.rs` only).
//! Handlers parse, call [`crate::services::agents`], present.

mod error;
pub mod openapi;
mod ramdisk;
mod versions;

use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::http::routes::{Group, Route};
use super::http::{AppState, HttpError};
use crate::services::agents::AgentError;

pub use error::Presenter;

/// The media type of every answer.
const JSON: &str = "application/json";

/// Ironic's routes, as a table.
pub fn routes() -> Vec<Route> {
    let r = |method, path, summary, body, ok, extra, handler| Route {
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
    };
    let heartbeat_body = json!({"type": "object", "required": ["callback_url"], "properties": {
        "callback_url": {"type": "string"},
        "agent_version": {"type": ["string", "null"]},
        "agent_token": {"type": ["string", "null"]},
        "agent_verify_ca": {"type": ["string", "null"]},
        "agent_status": {"type": ["string", "null"]},
        "agent_status_message": {"type": ["string", "null"]},
    }});
    vec![
        r(
            "GET",
            "/",
            "Version document (Ironic's body; Ironic's and ironic-inspector's version headers)",
            None,
            &[200],
            &[],
            get(versions::root),
        ),
        r(
            "GET",
            "/v1",
            "Ironic's v1 document",
            None,
            &[200],
            &[406],
            get(versions::v1),
        ),
        r(
            "GET",
            "/v1/",
            "Ironic's v1 document",
            None,
            &[200],
            &[406],
            get(versions::v1),
        ),
        r(
            "GET",
            "/v1/lookup",
            "The node an agent runs on, by its MACs or UUID, with its agent token once",
            None,
            &[200],
            &[400, 404, 406],
            get(ramdisk::lookup),
        ),
        r(
            "POST",
            "/v1/heartbeat/{node_ident}",
            "An agent's heartbeat (202), with its token",
            Some(heartbeat_body),
            &[202],
            &[400, 404, 406],
            post(ramdisk::heartbeat),
        ),
        r(
            "GET",
            "/v1/openapi/ironic.json",
            "OpenAPI document of these routes (slipway's own; Ironic serves none)",
            None,
            &[200],
            &[406],
            get(openapi::openapi),
        ),
    ]
}

/// Ironic's routes as one router, with its version headers and 406 rules
/// on every answer.
pub fn router(state: &AppState) -> Router<AppState> {
    super::http::routes::router(routes(), state)
        .layer(axum::middleware::from_fn(versions::negotiate))
}

/// Ironic's codes for the agent service's failures.
fn agent_error(e: AgentError) -> HttpError {
    use axum::http::StatusCode;
    let msg = e.to_string();
    match e {
        AgentError::IncompleteLookup
        | AgentError::TokenRequired
        | AgentError::InvalidToken
        | AgentError::CallbackChanged => HttpError::new(StatusCode::BAD_REQUEST, "BadRequest", msg),
        AgentError::LookupNotFound | AgentError::UnknownNode(_) => {
            HttpError::new(StatusCode::NOT_FOUND, "NotFound", msg)
        }
        AgentError::Service(e) => HttpError::from(e),
    }
}
