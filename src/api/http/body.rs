//! Request bodies: read whole, bounded in size and time, before a handler
//! runs ([`read_whole`]); JSON read by hand so every rejection is an `HttpError`
//! (400, in the dialect's shape) instead of axum's plain-text errors.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::HttpError;

/// A 400 with reason `BadRequest`.
pub fn bad_request(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// Parses a JSON body into `T`; any failure is a 400 saying why.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, HttpError> {
    if body.is_empty() {
        return Err(bad_request(
            "request body is empty; a JSON object is required",
        ));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid request body: {e}")))
}

/// Runs blocking work (git, validation) off the async runtime.
pub async fn blocking<T, F>(f: F) -> Result<T, HttpError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, HttpError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HttpError::internal(format!("blocking task failed: {e}")))?
}

/// A raw request body whose rejections (too large: 413, unreadable: 400)
/// are `HttpError`s.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = HttpError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, HttpError> {
        match <Bytes as axum::extract::FromRequest<S>>::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(e) => {
                let code = e.status();
                let reason = if code == StatusCode::PAYLOAD_TOO_LARGE {
                    "PayloadTooLarge"
                } else {
                    "BadRequest"
                };
                Err(HttpError::new(code, reason, e.body_text()))
            }
        }
    }
}

/// Middleware on every route that takes a body: reads the whole body before
/// the handler runs, at most [`super::BODY_LIMIT`] bytes (413 beyond it,
/// refused from `Content-Length` without reading) within
/// `state.body_timeout` (408 after it: a client that sends half a body is
/// answered and closed, never waited on). Handlers, and the admission permit
/// of the node routes, so only ever see complete requests.
pub async fn read_whole(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body::Body as _;
    use http_body_util::BodyExt as _;

    let limit = super::BODY_LIMIT;
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return closing(too_large(limit, declared)).into_response();
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limit);
    let bytes = match tokio::time::timeout(state.body_timeout, limited.collect()).await {
        Err(_) => {
            return closing(HttpError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!(
                    "the request body did not arrive within {} s (--body-timeout); \
                     expected {} bytes",
                    state.body_timeout.as_secs_f64(),
                    declared.map_or_else(|| "its chunked".to_string(), |n| n.to_string())
                ),
            ))
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return closing(too_large(limit, None))
        }
        Ok(Err(e)) => {
            return closing(bad_request(format!(
                "the request body could not be read: {e}"
            )))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// The 413 of a body over `limit` bytes.
fn too_large(limit: usize, declared: Option<u64>) -> HttpError {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        match declared {
            Some(n) => format!("the request body is {n} bytes; at most {limit} are accepted"),
            None => format!("the request body is over the {limit} bytes accepted"),
        },
    )
}

/// An error answered on a connection whose request was not read to its
/// end: the client is told the connection closes (hyper closes it).
fn closing(e: HttpError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = e.into_response();
    r.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    r
}
