//! The one error type of every dialect, [`HttpError`] (a code, a reason word
//! and a message safe to show), and how a dialect shows it: each dialect
//! implements [`Presenter`] (dropshot style), and [`answers`] turns every
//! error answer of the dialect's routes — a handler's `HttpError`, a
//! plain-text rejection, a panic, an over-long target — into the dialect's
//! own body, built in that one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API failure: the HTTP code, a reason word and a message safe to show.
#[derive(Debug, Clone)]
pub struct HttpError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl HttpError {
    /// A failure with an explicit code and reason.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            code,
            reason,
            message: message.into(),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The reason word (`NotFound`, `Unauthorized`, ...).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A server-side failure. The detail is logged, not sent: clients get a
    /// generic message so internals (paths, SQL) do not leak.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error serving a request");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error; see the server log",
        )
    }
}

impl From<crate::services::ServiceError> for HttpError {
    fn from(e: crate::services::ServiceError) -> Self {
        use crate::services::ServiceError;
        match e {
            ServiceError::Boot(e) => HttpError::from(e),
            ServiceError::State(e) => HttpError::internal(e),
            ServiceError::Internal(m) => HttpError::internal(m),
        }
    }
}

/// The codes and reasons of a service's failures, shared by every dialect.
impl From<crate::services::BootError> for HttpError {
    fn from(e: crate::services::BootError) -> Self {
        let unavailable = |reason, message: String| {
            HttpError::new(StatusCode::SERVICE_UNAVAILABLE, reason, message)
        };
        match e {
            crate::services::BootError::UnknownNode(n) => HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("node {n} is not in the applied design"),
            ),
            crate::services::BootError::NotServing => HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "NotServing",
                "no applied revision is being served yet",
            ),
            e @ crate::services::BootError::Loading { .. } => unavailable("Loading", e.to_string()),
            crate::services::BootError::Unavailable { commit, reason } => {
                tracing::warn!(%commit, %reason, "boot data asked for while the applied revision cannot be served");
                unavailable(
                    "RevisionUnavailable",
                    format!(
                        "the applied revision {commit} cannot be read from the repository, so its \
                         boot data cannot be rendered; GET /api/v1.0/health/extended says why"
                    ),
                )
            }
            crate::services::BootError::State(e @ crate::state::StateError::Replaced { .. }) => {
                unavailable("DatabaseReplaced", e.to_string())
            }
            e @ crate::services::BootError::DoesNotRender { .. } => {
                tracing::error!(error = %e, "a new deployment was not made");
                unavailable(
                    "DeploymentNotMade",
                    "the node's boot data does not render with a new deployment's ids and keys, \
                     so none was made; see the server log"
                        .to_string(),
                )
            }
            other => HttpError::internal(other),
        }
    }
}

/// How a dialect shows an error: its body for an [`HttpError`] (with the
/// error's code). The one place a dialect's error shape is built.
pub trait Presenter: Clone + Send + Sync + 'static {
    /// The whole response for `e` (code, content type, body).
    fn present(&self, e: &HttpError) -> Response;
}

/// An [`HttpError`] on its way to the dialect's [`Presenter`]: a handler's
/// error becomes a bodiless response carrying it, which [`answers`] (on
/// every dialect's routes) replaces with the dialect's body. Headers a
/// handler adds (`Retry-After`, `WWW-Authenticate`) stay.
#[derive(Clone)]
struct Unpresented(HttpError);

/// Marks a response a dialect's [`Presenter`] built, so an outer
/// [`answers`] (the app's, in Drydock's shape) leaves it as it is even when
/// its body is not JSON (Commissaire's `text/html` errors).
#[derive(Clone, Copy)]
struct Presented;

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut r = self.code.into_response();
        r.extensions_mut().insert(Unpresented(self));
        r
    }
}

/// Fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no such resource: {}", uri.path()),
    )
}

/// Fallback for a known route with the wrong method (axum adds `Allow`).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("method {method} not allowed on {}", uri.path()),
    )
}

/// Wraps every route of `routes` so that whatever goes wrong is answered
/// in the dialect's shape (`presenter`): an over-long request target
/// ([`URI_LIMIT`]), a panic ([`panicked`]), a handler's [`HttpError`] or a
/// plain-text rejection (`present`). One layer ([`Answering`]), so a
/// request pays for one boxed future here, not one per concern.
pub fn answers<S, P>(routes: axum::Router<S>, presenter: P) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    P: Presenter,
{
    routes.layer(AnswersLayer(presenter))
}

/// The layer of [`answers`].
#[derive(Clone)]
struct AnswersLayer<P>(P);

impl<I, P: Presenter> tower::Layer<I> for AnswersLayer<P> {
    type Service = Answering<I, P>;

    fn layer(&self, inner: I) -> Self::Service {
        Answering {
            inner,
            presenter: self.0.clone(),
        }
    }
}

/// A route under [`answers`]: the target's length checked, the route
/// called, its panic caught, its error presented.
#[derive(Clone)]
pub struct Answering<I, P> {
    inner: I,
    presenter: P,
}

impl<I, P> tower::Service<axum::extract::Request> for Answering<I, P>
where
    I: tower::Service<
            axum::extract::Request,
            Response = Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    I::Future: Send + 'static,
    P: Presenter,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        use futures_util::FutureExt as _;
        use std::panic::AssertUnwindSafe;
        let presenter = self.presenter.clone();
        let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if len > URI_LIMIT {
            let too_long = HttpError::new(
                StatusCode::URI_TOO_LONG,
                "UriTooLong",
                format!("the request target is {len} bytes; at most {URI_LIMIT} are accepted"),
            )
            .into_response();
            return Box::pin(async move { Ok(present(&presenter, too_long).await) });
        }
        // A panic while the route makes its future, or while it runs.
        let called = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)));
        Box::pin(async move {
            let resp = match called {
                Ok(fut) => match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(never)) => match never {},
                    Err(panic) => panicked(panic),
                },
                Err(panic) => panicked(panic),
            };
            Ok(present(&presenter, resp).await)
        })
    }
}

/// The reason word of an error answer for an HTTP code (Drydock's words, the first dialect's).
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

/// Whether a response already carries JSON (a presented error, or a handler's
/// own JSON error shape).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The longest plain-text error body kept as a Status message.
const MESSAGE_LIMIT: usize = 4096;

/// Every error answer in the dialect's shape: a handler's [`HttpError`] as
/// it is; an error answer that is not JSON — an extractor's plain-text
/// rejection (path segments that are not UTF-8 or do not percent-decode, a
/// query string that does not parse), or anything a later layer adds — as
/// an `HttpError` with the same code. Headers stay (`Allow`, `Retry-After`,
/// `WWW-Authenticate`). The message is the original text for a 4xx; a 5xx
/// says only that it happened.
async fn present<P: Presenter>(presenter: &P, resp: Response) -> Response {
    let code = resp.status();
    let (mut parts, body) = resp.into_parts();
    let error = match parts.extensions.remove::<Unpresented>() {
        Some(Unpresented(e)) => e,
        None if code.as_u16() < 400
            || is_json(&parts.headers)
            || parts.extensions.get::<Presented>().is_some() =>
        {
            return Response::from_parts(parts, body)
        }
        None => {
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
            HttpError::new(code, reason_for(code), message)
        }
    };
    let mut out = presenter.present(&error);
    out.extensions_mut().insert(Presented);
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

/// The answer to a handler that panicked: a 500 Status; the panic's message
/// goes to the log only.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    HttpError::internal(format!("a handler panicked: {detail}")).into_response()
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
            crate::api::drydock::Status,
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
