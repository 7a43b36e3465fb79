//! `POST /v1/continue_inspection`: Ironic's built-in inspection callback,
//! where IPA 13 posts when it has an `api_url` but no
//! `inspection_callback_url` (`inspector.py _get_urls` L133–139). It is an
//! Ironic path, but it is the inspection data path, so it lives with the
//! inspector dialect and shares its handler ([`super::callback::process`]);
//! its answers are Ironic's: **202** `{"uuid": …}` (Ironic at API 1.1, which
//! is what IPA's callback, sending no version header, gets; `ramdisk.py`
//! L399–470) and errors as `{"error_message": …}` ([`ErrorMessage`], a small
//! presenter of its own here, so this folder does not depend on the Ironic
//! dialect's; the two can become one when they meet). It carries none of
//! the inspector's version headers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde_json::json;

use super::callback::{process, reply};
use crate::api::http::body::RawBody;
use crate::api::http::routes::{Group, Route};
use crate::api::http::{AppState, HttpError, Presenter};

/// Presents an [`HttpError`] as Ironic does: `{"error_message": "<JSON text>"}`,
/// the text holding `faultstring`, `faultcode` and `debuginfo`
/// (`ironic/api/hooks.py`, wsme's fault format), which IPA decodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorMessage;

impl Presenter for ErrorMessage {
    fn present(&self, e: &HttpError) -> Response {
        let fault = json!({
            "faultstring": e.message(),
            "faultcode": if e.code().is_server_error() { "Server" } else { "Client" },
            "debuginfo": null,
        });
        (e.code(), Json(json!({"error_message": fault.to_string()}))).into_response()
    }
}

/// Its one route.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "POST",
        path: "/v1/continue_inspection",
        group: Group::Public,
        summary: "Ironic's built-in inspection callback (202 {\"uuid\"})",
        body: Some(json!({"type": "object"})),
        ok: &[202],
        extra: &[],
        bootaction_key: false,
        limited: false,
        produces: "application/json",
        handler: post(continue_inspection),
    }]
}

/// `POST /v1/continue_inspection`: the same data path as `/v1/continue`,
/// answered 202 `{"uuid": …}`.
pub async fn continue_inspection(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let outcome = process(&state, body).await?;
    Ok((StatusCode::ACCEPTED, Json(reply(&outcome))).into_response())
}
