//! ironic-inspector's wire dialect (API 1.0–1.18), what
//! python-ironic-inspector-client 5 and the ramdisk (IPA 13) call:
//! introspection started and read (`/v1/introspection…`), the ramdisk's
//! callback (`/v1/continue`), and Ironic's built-in inspection callback
//! (`/v1/continue_inspection`, the same data path; see
//! [`continue_inspection`] for why it is here). Every response of the
//! inspector's routes carries its two version headers, and a requested
//! version is negotiated as inspector does ([`version`]); errors are
//! `{"error": {"message": …}}` ([`Presenter`]). Handlers parse, call
//! [`crate::services::inspection`], present. `GET /` and `GET /v1` are the
//! Ironic dialect's (served once for both, with these headers too).

mod callback;
pub mod continue_inspection;
mod introspection;
pub mod openapi;
pub mod version;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::http::routes::{Group, Route};
use super::http::{AppState, HttpError};

/// The media type of every answer.
const JSON: &str = "application/json";

/// Presents an [`HttpError`] as inspector does (`main.py` `error_response`):
/// `{"error": {"message": …}}` with the error's code.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presenter;

impl super::http::Presenter for Presenter {
    fn present(&self, e: &HttpError) -> Response {
        (e.code(), Json(json!({"error": {"message": e.message()}}))).into_response()
    }
}

/// A callback body: any JSON object (read by `inspection::parse`).
fn callback_body() -> serde_json::Value {
    json!({"type": "object"})
}

/// The inspector's routes.
pub fn routes() -> Vec<Route> {
    let r = |method, path, group, summary, body, ok: &'static [u16], handler| Route {
        method,
        path,
        group,
        summary,
        body,
        ok,
        handler,
        extra: &[],
        bootaction_key: false,
        // A ramdisk answered 429 fails its inspection (IPA retries only 5xx
        // and 409), so callbacks are not behind the admission limit.
        limited: false,
        produces: JSON,
    };
    use Group::{Operator, Public};
    vec![
        r(
            "POST",
            "/v1/introspection/{node}",
            Operator,
            "Start a node's introspection (202 {}; ?manage_boot=)",
            None,
            &[202],
            post(introspection::start),
        ),
        r(
            "GET",
            "/v1/introspection/{node}",
            Operator,
            "A node's introspection status",
            None,
            &[200],
            get(introspection::status),
        ),
        r(
            "GET",
            "/v1/introspection",
            Operator,
            "Introspection statuses, newest first (?limit=&marker=&state=)",
            None,
            &[200],
            get(introspection::list),
        ),
        r(
            "GET",
            "/v1/introspection/{node}/data",
            Operator,
            "A node's stored inspection data, as the ramdisk posted it",
            None,
            &[200],
            get(introspection::data),
        ),
        r(
            "POST",
            "/v1/continue",
            Public,
            "The ramdisk's inspection callback (200 {\"uuid\"})",
            Some(callback_body()),
            &[200],
            post(callback::continue_),
        ),
        r(
            "GET",
            "/v1/openapi/inspector.json",
            Public,
            "This dialect's OpenAPI document (a slipway addition)",
            None,
            &[200],
            get(openapi::openapi),
        ),
    ]
}

/// The inspector's routes in its error shape with its version headers,
/// and Ironic's `/v1/continue_inspection` in Ironic's.
pub fn router(state: &AppState) -> Router<AppState> {
    // The 405 of a known path is set here, under the dialect's layers, so it
    // is answered in the dialect's shape (`app()`'s own only fills in the
    // method routers that have none).
    let not_allowed = super::http::error::method_not_allowed;
    let inspector = super::http::routes::router(routes(), state)
        .route_layer(axum::middleware::from_fn(version::negotiate))
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::from_fn(version::advertise));
    let builtin = super::http::routes::router(continue_inspection::routes(), state)
        .method_not_allowed_fallback(not_allowed);
    super::http::error::answers(inspector, Presenter).merge(super::http::error::answers(
        builtin,
        continue_inspection::ErrorMessage,
    ))
}

/// Seconds since the epoch as inspector writes times (`isoformat()` of a
/// UTC time: `2026-12-03T07:20:59`, no zone).
pub fn iso(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_written_as_inspector_writes_them() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00");
        assert_eq!(super::iso(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(super::iso(1_795_462_506), "2026-11-23T19:35:06");
    }
}
