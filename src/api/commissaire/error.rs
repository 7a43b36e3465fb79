//! Commissaire's error body, the one place it is built: `text/html` whose
//! body is the HTTP reason phrase (`Not Found`, `Conflict`, `Forbidden`),
//! as commissaire-http's `JSONRPC_Handler` answers (dialects §4.1). The
//! message of the error goes to the log only: Commissaire's clients read
//! the status code.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::http::HttpError;

/// Presents an [`HttpError`] as Commissaire does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presenter;

impl crate::api::http::Presenter for Presenter {
    fn present(&self, e: &HttpError) -> Response {
        if e.code().is_client_error() {
            tracing::debug!(
                code = e.code().as_u16(),
                message = e.message(),
                "commissaire: refused"
            );
        }
        let reason = e.code().canonical_reason().unwrap_or("Error");
        (
            e.code(),
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            reason.to_string(),
        )
            .into_response()
    }
}
