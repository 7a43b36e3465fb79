//! Who may call the Commissaire routes (all but the OpenAPI document):
//! Commissaire authenticates every request (its WSGI authentication
//! plugins wrap the whole app) and answers a failure with 403, never 401.
//!
//! Accepted, in order:
//! - HTTP basic (what `commctl` sends, preemptively) whose password is an
//!   operator token (`--tokens`); the user name is recorded as the author of
//!   the commits the request makes;
//! - an operator token in `X-Auth-Token` or `Authorization: Bearer`;
//! - without `--tokens`, a loopback peer (as the operator routes), whatever
//!   it presents: there is nothing to check a password against.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::api::http::{is_loopback, AppState, HttpError};

/// The authenticated caller, for the handlers (the commit author).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// The user and password of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// An operator token in `X-Auth-Token` or `Authorization: Bearer`.
fn token(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, t) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| t.trim())
}

/// Who the request comes from, or `None` (403).
fn caller(state: &AppState, req: &Request) -> Option<String> {
    let headers = req.headers();
    match &state.tokens {
        Some(tokens) => {
            if let Some((user, password)) = basic(headers) {
                if tokens.accepts(&password) {
                    return Some(if user.is_empty() {
                        "operator".into()
                    } else {
                        user
                    });
                }
                return None;
            }
            token(headers)
                .filter(|t| tokens.accepts(t))
                .map(|_| "operator".to_string())
        }
        None => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip())?;
            is_loopback(peer).then(|| {
                basic(headers)
                    .map(|(u, _)| u)
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "operator".into())
            })
        }
    }
}

/// The middleware on every Commissaire route but the OpenAPI document.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == super::OPENAPI_PATH {
        return next.run(req).await;
    }
    match caller(&state, &req) {
        Some(who) => {
            req.extensions_mut().insert(Caller(who));
            next.run(req).await
        }
        None => HttpError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Commissaire routes need HTTP basic with an operator token as the password, or the token itself",
        )
        .into_response(),
    }
}
