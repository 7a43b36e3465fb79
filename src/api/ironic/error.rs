//! Ironic's error body, the one place it is built: `{"error_message": "<the
//! JSON text of {faultstring, faultcode, debuginfo}>"}`, as Ironic's
//! `ParsableErrorMiddleware` wraps wsme's fault (the text is itself JSON,
//! which IPA parses again for `faultstring`, dialects §1.5).

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::http::HttpError;

/// Presents an [`HttpError`] as Ironic does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presenter;

impl crate::api::http::Presenter for Presenter {
    fn present(&self, e: &HttpError) -> Response {
        let fault = json!({
            "faultstring": e.message(),
            "faultcode": if e.code().is_server_error() { "Server" } else { "Client" },
            "debuginfo": null,
        });
        (e.code(), Json(json!({"error_message": fault.to_string()}))).into_response()
    }
}
