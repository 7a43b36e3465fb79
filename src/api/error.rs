//! The one error type of the API, rendered as Drydock's Status object.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API failure: the HTTP code, a reason word and a message safe to show.
#[derive(Debug)]
pub struct AppError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl AppError {
    /// A failure with an explicit code and reason.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        AppError {
            code,
            reason,
            message: message.into(),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A server-side failure. The detail is logged, not sent: clients get a
    /// generic message so internals (paths, SQL) do not leak.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error serving a request");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error; see the server log",
        )
    }
}

impl From<crate::state::StateError> for AppError {
    fn from(e: crate::state::StateError) -> Self {
        AppError::internal(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1.0",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        (self.code, Json(body)).into_response()
    }
}

/// Fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no such resource: {}", uri.path()),
    )
}

/// Fallback for a known route with the wrong method (axum adds `Allow`).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("method {method} not allowed on {}", uri.path()),
    )
}
