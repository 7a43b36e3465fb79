//! Luna2's error body, the one place it is built: `{"message": "…"}` with
//! the error's code (`daemon/luna.py`'s error handlers and every route's
//! `{'message': …}`; 401 "A valid token is missing" / "Token is invalid").

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::http::HttpError;

/// Presents an [`HttpError`] as Luna2 does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presenter;

impl crate::api::http::Presenter for Presenter {
    fn present(&self, e: &HttpError) -> Response {
        (e.code(), Json(json!({"message": e.message()}))).into_response()
    }
}
