//! Introspection as the inspector client starts and reads it:
//! `POST /v1/introspection/{node}` (202 `{}`), `GET /v1/introspection/{node}`
//! (the status), `GET /v1/introspection` (the list) and
//! `GET /v1/introspection/{node}/data` (the data as the ramdisk posted it).
//! `{node}` is the node's UUID or its name.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::iso;
use crate::api::http::body::{bad_request, blocking};
use crate::api::http::{AppState, HttpError};
use crate::services::inspection::IntrospectionView;
use crate::services::LOAD_WAIT;

/// The most statuses one list answers (inspector's `api_max_limit`).
pub const MAX_LIMIT: usize = 1000;

fn unknown(node: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Node {node} was not found in the applied design"),
    )
}

/// `oslo_utils.strutils.bool_from_string(strict=True)`, as inspector reads
/// `manage_boot`.
fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// The root URL links are made from: the request's `Host`.
fn root(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default()
}

/// One status as inspector shows it (`main.py` L258–276), with slipway's
/// additions: the node's `name` and its latest `disagreements` with the design.
fn status_body(v: &IntrospectionView, root: &str) -> Value {
    let r = &v.record;
    json!({
        "uuid": v.node.uuid,
        "name": v.node.name,
        "finished": r.finished_at.is_some(),
        "state": r.state,
        "error": r.error,
        "started_at": iso(r.started_at),
        "finished_at": r.finished_at.map(iso),
        "links": [{"rel": "self", "href": format!("{root}/v1/introspection/{}", v.node.uuid)}],
        "disagreements": v.messages.iter().map(|m| json!({"kind": m.kind, "message": m.message})).collect::<Vec<_>>(),
    })
}

/// `POST /v1/introspection/{node}[?manage_boot=]`: 202 `{}`; the node's
/// introspection is `waiting` for the ramdisk's callback.
pub async fn start(
    State(state): State<AppState>,
    Path(node): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HttpError> {
    let manage_boot = match q.get("manage_boot") {
        None => true,
        Some(v) => boolean(v)
            .ok_or_else(|| bad_request(format!("Invalid boolean value for manage_boot: {v}")))?,
    };
    state.boot.wait_ready(LOAD_WAIT).await;
    let svc = state.inspection.clone();
    let ident = node.clone();
    let started = blocking(move || Ok(svc.start(&ident, manage_boot)?)).await?;
    let Some(started) = started else {
        return Err(unknown(&node));
    };
    if manage_boot {
        // As inspector: boot the node into the ramdisk (PXE once, then a power
        // cycle), after answering; a failure ends the introspection as `error`.
        let (power, boot, svc) = (
            state.power.clone(),
            state.boot.clone(),
            state.inspection.clone(),
        );
        let name = started.node.name.clone();
        tokio::spawn(async move {
            let outcome = power.pxe_boot_and_cycle(&boot, &name).await;
            if outcome.failure.is_some() {
                let message = format!("cannot boot the node into the ramdisk: {}", outcome.message);
                tracing::warn!(node = %name, %message, "introspection");
                let _ = tokio::task::spawn_blocking(move || svc.fail(&name, &message)).await;
            }
        });
    }
    Ok((StatusCode::ACCEPTED, Json(json!({}))).into_response())
}

/// `GET /v1/introspection/{node}`.
pub async fn status(
    State(state): State<AppState>,
    Path(node): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    state.boot.wait_ready(LOAD_WAIT).await;
    let svc = state.inspection.clone();
    let ident = node.clone();
    let found = blocking(move || {
        let known = svc.resolve(&ident)?.is_some();
        Ok((known, svc.status(&ident)?))
    })
    .await?;
    match found {
        (_, Some(v)) => Ok(Json(status_body(&v, &root(&headers)))),
        (true, None) => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Introspection for node {node} was never started"),
        )),
        (false, None) => Err(unknown(&node)),
    }
}

/// `GET /v1/introspection[?limit=&marker=&state=]`: newest first; `marker`
/// is the UUID of the last status of the previous page.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, HttpError> {
    let limit = match q.get("limit") {
        None => MAX_LIMIT,
        Some(l) => match l.trim().parse::<usize>() {
            Ok(n) if n <= MAX_LIMIT => n.max(1),
            Ok(_) => {
                return Err(bad_request(format!(
                    "Limit is over the maximal allowed value of {MAX_LIMIT}"
                )))
            }
            Err(_) => {
                return Err(bad_request(format!(
                    "Invalid limit {l}: expected a non-negative integer"
                )))
            }
        },
    };
    let wanted_state = q.get("state").cloned();
    let marker = q.get("marker").map(|m| m.to_ascii_lowercase());
    let svc = state.inspection.clone();
    let all = blocking(move || Ok(svc.list(usize::MAX >> 2)?)).await?;
    let mut rows: &[IntrospectionView] = &all;
    if let Some(m) = &marker {
        match rows
            .iter()
            .position(|v| &v.node.uuid == m || &v.node.name == m)
        {
            Some(i) => rows = &rows[i + 1..],
            None => return Err(bad_request(format!("Marker {m} not found"))),
        }
    }
    let root = root(&headers);
    let out: Vec<Value> = rows
        .iter()
        .filter(|v| wanted_state.as_deref().is_none_or(|s| v.record.state == s))
        .take(limit)
        .map(|v| status_body(v, &root))
        .collect();
    Ok(Json(json!({"introspection": out})))
}

/// `GET /v1/introspection/{node}/data`: the newest data the ramdisk posted,
/// byte for byte.
pub async fn data(
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Response, HttpError> {
    state.boot.wait_ready(LOAD_WAIT).await;
    let svc = state.inspection.clone();
    let ident = node.clone();
    let found = blocking(move || Ok((svc.resolve(&ident)?.is_some(), svc.data(&ident)?))).await?;
    match found {
        (_, Some(text)) => Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response()),
        (true, None) => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Introspection data not found for node {node}"),
        )),
        (false, None) => Err(unknown(&node)),
    }
}
