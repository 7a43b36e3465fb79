//! Who may call the Commissaire routes (all but the OpenAPI document):
//! Commissaire authenticates every request (its WSGI authentication
//! plugins wrap the whole app) and answers a failure with 403, never 401.
//!
//! Accepted, in order:
//! - HTTP basic (what `commctl` sends, preemptively) of a user of the users
//!   file (`--users`, the Luna2 dialect's, Argon2id hashes; checked off the
//!   runtime), or whose password is an operator token (`--tokens`); the user
//!   name is the author of the commits the request makes;
//! - an operator token in `X-Auth-Token` or `Authorization: Bearer`;
//! - with neither tokens nor users, a loopback peer (as the operator
//!   routes), whatever it presents: there is nothing to check it against.

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

/// The request's peer, when it is a loopback address.
fn loopback_peer(req: &Request) -> bool {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| is_loopback(c.0.ip()))
}

/// A user name as the commit author (`operator` when none is given).
fn author(user: String) -> String {
    if user.is_empty() {
        "operator".into()
    } else {
        user
    }
}

/// Who the request comes from, or `None` (403). A credential presented
/// must be valid, whatever else the request carries: a bad
/// `Authorization` is refused even beside a good `X-Auth-Token`.
async fn caller(state: &AppState, headers: &HeaderMap, loopback: bool) -> Option<String> {
    let users = state.users.clone();
    let no_users = users.users.is_empty();
    // Neither tokens nor users: nothing to check a credential against.
    if state.tokens.is_none() && no_users {
        let who = basic(headers).map(|(u, _)| author(u));
        return loopback.then(|| who.unwrap_or_else(|| "operator".into()));
    }
    let accepts = |t: &str| state.tokens.as_ref().is_some_and(|k| k.accepts(t));
    let operator = if headers.contains_key(header::AUTHORIZATION) {
        if let Some((user, password)) = basic(headers) {
            if !no_users {
                let (u, p) = (user.clone(), password.clone());
                let verified = tokio::task::spawn_blocking(move || users.verify(&u, &p))
                    .await
                    .ok()
                    .flatten();
                if let Some(v) = verified {
                    return Some(v.name);
                }
            }
            return accepts(&password).then(|| author(user));
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        match bearer {
            Some(t) if accepts(&t) => true,
            _ => return None,
        }
    } else {
        false
    };
    match headers.get("x-auth-token") {
        Some(v) => v
            .to_str()
            .ok()
            .filter(|t| accepts(t.trim()))
            .map(|_| "operator".to_string()),
        None => operator.then(|| "operator".to_string()),
    }
}

/// The middleware on every Commissaire route but the OpenAPI document.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == super::OPENAPI_PATH {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let loopback = loopback_peer(&req);
    match caller(&state, &headers, loopback).await {
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
