//! Drydock's Status object: the body of every error this dialect answers
//! ([`Status`], its [`Presenter`]) and of its few plain successes
//! ([`success`]). The one place the shape is built.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::HttpError;
use crate::api::http::Presenter;

/// Presents an [`HttpError`] as a Drydock Status with `status: Failure`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status;

impl Presenter for Status {
    fn present(&self, e: &HttpError) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1.0",
            "metadata": {},
            "status": "Failure",
            "message": e.message(),
            "reason": e.reason(),
            "code": e.code().as_u16(),
        });
        (e.code(), Json(body)).into_response()
    }
}

/// A Status with `status: Success`.
pub fn success(code: StatusCode, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1.0",
        "metadata": {},
        "status": "Success",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    })
}
