//! The route description shared by every dialect ([`Route`], [`Group`]) and
//! the router built from a dialect's table ([`router`]): each route with its
//! body reading, admission limit and operator check.

use axum::routing::MethodRouter;
use axum::Router;
use serde_json::Value;

use super::{admission, auth, body, AppState};

/// Which group a route belongs to (see `app()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// No authentication.
    Public,
    /// Behind the operator token layer.
    Operator,
}

/// One method on one path.
pub struct Route {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The axum path (`{param}` segments, as OpenAPI writes them).
    pub path: &'static str,
    /// Public or operator.
    pub group: Group,
    /// One line for the spec.
    pub summary: &'static str,
    /// The JSON body schema, for routes that take one.
    pub body: Option<Value>,
    /// Success codes (errors are added from the group).
    pub ok: &'static [u16],
    /// Error codes beyond the group's (e.g. 401/403/409 of the node routes).
    pub extra: &'static [u16],
    /// The route is authenticated by the node's `X-Bootaction-Key` header.
    pub bootaction_key: bool,
    /// Behind the admission limit (`--max-in-flight`, 429 beyond it): the
    /// routes nodes call during a boot storm.
    pub limited: bool,
    /// The media type of the success responses.
    pub produces: &'static str,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

/// A dialect's routes as one router, in two groups:
/// - `Group::Public`: no operator token (health, versions, the spec, and
///   the routes nodes call themselves, authenticated by their keys);
/// - `Group::Operator`: everything else, behind [`auth::require_operator`].
///
/// Routes marked `limited` (those nodes call) share one admission limit of
/// `state.max_in_flight` ([`admission::Gate`], entered by the handler once
/// the request is authenticated). Every route that takes a body reads it
/// whole first ([`body::read_whole`]), inside the operator check, so an
/// unauthenticated operator request is refused before its body is read.
pub fn router(routes: Vec<Route>, state: &AppState) -> Router<AppState> {
    let admission = admission::Admission::new(state.max_in_flight, state.metrics.clone());
    let mut public = Router::new();
    let mut operator = Router::new();
    let mut has_operator = false;
    for r in routes {
        let mut handler = r.handler;
        if r.body.is_some() {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                body::read_whole,
            ));
        }
        if r.limited {
            handler = handler.route_layer(axum::middleware::from_fn_with_state(
                admission.clone(),
                admission::admit,
            ));
        }
        match r.group {
            Group::Public => public = public.route(r.path, handler),
            Group::Operator => {
                has_operator = true;
                operator = operator.route(r.path, handler)
            }
        }
    }
    // A table without operator routes (axum refuses a layer on no routes).
    if !has_operator {
        return public;
    }
    let operator = operator.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_operator,
    ));
    public.merge(operator)
}

/// The OpenAPI operation of route `r` with its `responses`: the route's
/// summary, its `{param}` path parameters followed by `more` parameters (a
/// dialect's headers or query), its JSON request body, and the operator
/// security schemes ([`security_schemes`]) when it is an operator route.
/// Every dialect's spec is built from these, so one route table describes the
/// routes and their contract alike.
pub fn operation(r: &Route, responses: serde_json::Map<String, Value>, more: Vec<Value>) -> Value {
    let mut op = serde_json::json!({"summary": r.summary, "responses": responses});
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(more);
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(schema) = &r.body {
        op["requestBody"] = serde_json::json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    if r.group == Group::Operator {
        op["security"] = serde_json::json!([{"token": []}, {"bearer": []}]);
    }
    op
}

/// Adds `op` to an OpenAPI `paths` object under its route's path and method.
pub fn add_operation(paths: &mut serde_json::Map<String, Value>, r: &Route, op: Value) {
    let entry = paths
        .entry(r.path.to_string())
        .or_insert_with(|| serde_json::json!({}));
    entry[r.method.to_ascii_lowercase()] = op;
}

/// The security schemes [`operation`] names for operator routes: a token in
/// `X-Auth-Token` or as a bearer token (`auth.rs`).
pub fn security_schemes() -> Value {
    serde_json::json!({
        "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
        "bearer": {"type": "http", "scheme": "bearer"}
    })
}
