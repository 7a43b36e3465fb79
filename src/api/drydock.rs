//! Drydock's v1.0 wire dialect (`/api/v1.0/...`): health, revisions,
//! hooks, boot data and boot actions, build data, nodes, tasks, design
//! validation; its route table and OpenAPI document ([`openapi`]) and its
//! error body, the Status object ([`Status`], built in `status.rs` only).
//! Handlers parse, call a service, present; they reach the database and the
//! design only through [`crate::services`].

mod bootactions;
mod bootdata;
mod builddata;
mod health;
mod hooks;
mod nodes;
pub mod openapi;
mod power;
mod revisions;
mod status;
mod tasks;
mod validation;

use axum::Router;

use super::http::{admission, auth, body, metrics, AppState, HttpError};

pub use status::Status;

/// The design files a reference names (blocking: git, filesystem); a
/// reference that cannot be read is a 400.
fn read_design(
    src: &crate::services::designs::DesignSource,
    href: &str,
) -> Result<Vec<crate::design::DesignFile>, HttpError> {
    crate::services::designs::read_design(src, href).map_err(|e| body::bad_request(e.0))
}

/// Drydock's routes, built from its table ([`openapi::routes`], which also
/// generates `/api/v1.0/openapi.json`).
pub fn router(state: &AppState) -> Router<AppState> {
    super::http::routes::router(openapi::routes(), state)
}
