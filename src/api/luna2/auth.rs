//! Luna2's sessions and version (`daemon/routes/auth.py`,
//! `common/validate_auth.py`, `luna.py`): `POST /token` logs a user of the
//! users file in and answers a signed JWT; every other route that needs one
//! takes the [`Token`] extractor (an operator's token) or [`NodeToken`] (an
//! operator's, or a node's install-time token for that node), reading the
//! `x-access-tokens` header. `GET /version` needs none.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::route;
use crate::api::http::body::{bad_request, RawBody};
use crate::api::http::routes::Route;
use crate::api::http::{AppState, HttpError};
use crate::services::users::{Claims, TokenError};

/// The header Luna2's clients send their token in.
pub const TOKEN_HEADER: &str = "x-access-tokens";

/// What `GET /version` says Luna2 is (the API level served).
pub const LUNA_VERSION: &str = "2.1";

/// Logins checked at once: each Argon2 check takes ~19 MiB and tens of
/// milliseconds of a core, so a flood of logins waits here instead.
static LOGINS: Semaphore = Semaphore::const_new(4);

/// The auth and version routes.
pub fn routes() -> Vec<Route> {
    let token_body = json!({"type": "object", "required": ["username", "password"], "properties": {
        "username": {"type": "string"},
        "password": {"type": "string"},
    }});
    vec![
        route(
            "POST",
            "/token",
            "Log in: a session token (HS256 JWT) for a user of the users file",
            Some(token_body),
            &[201],
            &[400, 401],
            post(token),
        ),
        route(
            "GET",
            "/version",
            "Luna2's version document, with the applied commit",
            None,
            &[200],
            &[],
            get(version),
        ),
    ]
}

fn unauthorized(message: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
}

/// The claims of the request's `x-access-tokens` token, any scope:
/// missing → 401 "A valid token is missing"; not ours, malformed or expired
/// → 401 "Token is invalid" (Luna2's words).
pub fn token_claims(state: &AppState, headers: &HeaderMap) -> Result<Claims, HttpError> {
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("A valid token is missing"))?;
    state.users.check_token(token).map_err(|e: TokenError| {
        tracing::debug!(error = %e, "a Luna2 token was refused");
        unauthorized("Token is invalid")
    })
}

/// An operator's token (401 as [`token_claims`]; a node's install-time
/// token → 403, as Luna2's `token_required`).
pub fn require_token(state: &AppState, headers: &HeaderMap) -> Result<Claims, HttpError> {
    let claims = token_claims(state, headers)?;
    if claims.is_provision() {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Token is not permitted for this endpoint",
        ));
    }
    Ok(claims)
}

/// An operator's token, or node `node`'s install-time token (another
/// node's → 403, as Luna2's `provision_token_required`).
pub fn require_token_for_node(
    state: &AppState,
    headers: &HeaderMap,
    node: &str,
) -> Result<Claims, HttpError> {
    let claims = token_claims(state, headers)?;
    if claims.is_provision() && claims.node.as_deref() != Some(node) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Token is not valid for this node",
        ));
    }
    Ok(claims)
}

/// Extractor: the request carries an operator's valid token
/// ([`require_token`]). Put it first among a handler's arguments, so a
/// request without a token is a 401 whatever else is wrong with it.
pub struct Token(pub Claims);

impl FromRequestParts<AppState> for Token {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        require_token(state, &parts.headers).map(Token)
    }
}

/// Extractor: any valid token, operator's or node's; the handler checks a
/// node's token is for the node it names with [`NodeToken::for_node`].
pub struct NodeToken(pub Claims);

impl NodeToken {
    /// The claims if the token is an operator's or `node`'s (else 403).
    pub fn for_node(self, node: &str) -> Result<Claims, HttpError> {
        if self.0.is_provision() && self.0.node.as_deref() != Some(node) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Token is not valid for this node",
            ));
        }
        Ok(self.0)
    }
}

impl FromRequestParts<AppState> for NodeToken {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, HttpError> {
        token_claims(state, &parts.headers).map(NodeToken)
    }
}

/// `POST /token` `{"username","password"}`: 201 `{"token"}`; 401 for
/// credentials that are not a user's; 400 for a body that is not that object.
async fn token(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("data is not valid json"))?;
    let field = |name: &str| -> Result<String, HttpError> {
        match value.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad_request(format!("{name} must be a string"))),
            None => Err(bad_request(format!(
                "data structure incomplete or incorrect: {name} is required"
            ))),
        }
    };
    if !value.is_object() {
        return Err(bad_request(
            "data structure incomplete or incorrect: a JSON object is required",
        ));
    }
    let (username, password) = (field("username")?, field("password")?);
    if username.is_empty() || password.is_empty() {
        return Err(unauthorized("Please provide the username and password"));
    }
    let _permit = LOGINS
        .acquire()
        .await
        .map_err(|e| HttpError::internal(format!("login gate closed: {e}")))?;
    let users = state.users.clone();
    let token = tokio::task::spawn_blocking(move || users.login(&username, &password))
        .await
        .map_err(|e| HttpError::internal(format!("login task failed: {e}")))?
        .ok_or_else(|| unauthorized("Invalid username or password"))?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))))
}

/// `GET /version`: `{"version":{"luna","api","commit"}}` with the applied
/// commit (`null` before one is applied) and slipway's own version.
async fn version(State(state): State<AppState>) -> Json<Value> {
    let commit = state
        .status
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .applied
        .clone();
    Json(json!({"version": {
        "luna": LUNA_VERSION,
        "api": 1,
        "commit": commit,
        "slipway": env!("CARGO_PKG_VERSION"),
    }}))
}
