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

/// Wraps every route of `routes` so that whatever goes wrong is answered
/// as a Status: an over-long request target ([`uri_limit`]), a panic
/// ([`panicked`]), a plain-text rejection ([`status_bodies`]).
pub fn answers<S: Clone + Send + Sync + 'static>(routes: axum::Router<S>) -> axum::Router<S> {
    routes
        .layer(axum::middleware::from_fn(uri_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(status_bodies))
}

/// The reason word of a Status for an HTTP code.
fn reason_for(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        408 => "RequestTimeout",
        409 => "Conflict",
        411 => "LengthRequired",
        413 => "PayloadTooLarge",
        414 => "UriTooLong",
        415 => "UnsupportedMediaType",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        431 => "RequestHeaderFieldsTooLarge",
        503 => "ServiceUnavailable",
        c if c >= 500 => "InternalError",
        _ => "Failure",
    }
}

/// Whether a response already carries JSON (our Status, or a handler's
/// own JSON error shape).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The longest plain-text error body kept as a Status message.
const MESSAGE_LIMIT: usize = 4096;

/// Middleware on every route: an error answer that is not JSON — an
/// extractor's plain-text rejection (path segments that are not UTF-8 or do
/// not percent-decode, a query string that does not parse), or anything a
/// later layer adds — becomes a Status with the same code and headers (so
/// `Allow`, `Retry-After`, `WWW-Authenticate` stay). The message is the
/// original text for a 4xx; a 5xx says only that it happened.
pub async fn status_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let code = resp.status();
    if code.as_u16() < 400 || is_json(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let message = if code.is_server_error() {
        tracing::error!(
            code = code.as_u16(),
            "a non-Status server error was answered"
        );
        "internal error; see the server log".to_string()
    } else {
        let text = axum::body::to_bytes(body, MESSAGE_LIMIT)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            code.canonical_reason()
                .unwrap_or("request failed")
                .to_string()
        } else {
            text
        }
    };
    let mut out = AppError::new(code, reason_for(code), message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// The longest request target (path and query) accepted; nginx's default
/// request line buffer is 8 KiB too. Longer ones get a 414 Status (hyper
/// itself answers beyond 64 KiB, where `http` cannot hold a URI).
pub const URI_LIMIT: usize = 8 * 1024;

/// Middleware on every route: a request target over [`URI_LIMIT`] is a 414.
pub async fn uri_limit(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > URI_LIMIT {
        return AppError::new(
            StatusCode::URI_TOO_LONG,
            "UriTooLong",
            format!("the request target is {len} bytes; at most {URI_LIMIT} are accepted"),
        )
        .into_response();
    }
    next.run(req).await
}

/// The answer to a handler that panicked: a 500 Status; the panic's message
/// goes to the log only.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    AppError::internal(format!("a handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn call(app: &axum::Router, path: &str) -> (u16, serde_json::Value) {
        let req = axum::http::Request::builder()
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        let code = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (code, serde_json::from_slice(&bytes).expect("a JSON body"))
    }

    fn app() -> axum::Router {
        answers(
            axum::Router::new()
                .route(
                    "/panic",
                    get(|| async {
                        if std::hint::black_box(true) {
                            panic!("the secret at /etc/slipway/secret is {}", 42);
                        }
                        "unreachable"
                    }),
                )
                .route(
                    "/text",
                    get(|| async { (StatusCode::UNPROCESSABLE_ENTITY, "the form is wrong") }),
                )
                .route(
                    "/text500",
                    get(|| async { (StatusCode::BAD_GATEWAY, "upstream at 10.0.0.1 said no") }),
                ),
        )
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_status_without_its_message() {
        let (code, body) = call(&app(), "/panic").await;
        assert_eq!(code, 500);
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["code"], 500);
        assert_eq!(body["reason"], "InternalError");
        assert!(!body.to_string().contains("secret"), "{body}");
    }

    #[tokio::test]
    async fn plain_text_errors_become_status_and_5xx_text_is_not_shown() {
        let (code, body) = call(&app(), "/text").await;
        assert_eq!(code, 422);
        assert_eq!(body["reason"], "UnprocessableEntity");
        assert_eq!(body["message"], "the form is wrong");
        let (code, body) = call(&app(), "/text500").await;
        assert_eq!(code, 502);
        assert_eq!(body["kind"], "Status");
        assert!(!body.to_string().contains("10.0.0.1"), "{body}");
    }

    #[tokio::test]
    async fn an_over_long_request_target_is_a_414_status() {
        let path = format!("/text?q={}", "a".repeat(URI_LIMIT));
        let (code, body) = call(&app(), &path).await;
        assert_eq!(code, 414);
        assert_eq!(body["reason"], "UriTooLong");
    }
}
