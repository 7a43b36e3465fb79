//! Boot data of nodes (DESIGN §4):
//! `GET /api/v1.0/bootactions/nodes/{hostname}/{units|files|pkg_list|all}`,
//! its alias `GET /api/v1.0/bootdata/{hostname}/{units|files}`, and the
//! operator route `GET /api/v1.0/nodes/{hostname}/identity`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::admission::Gate;
use super::{AppState, HttpError};
use crate::keys::KeyCheck;
use crate::render::bootdata::BootDataKind;
use crate::services::{BootActionStatus, BootService, NodeDeployment, LOAD_WAIT};

/// The header carrying a node's (or an action's) key.
pub const KEY_HEADER: &str = "x-bootaction-key";

/// A response for a node, with `Retry-After` on a 503 (the applied revision
/// loading, the database replaced): nodes retry instead of giving up.
pub(super) fn for_node(r: Result<Response, HttpError>) -> Result<Response, HttpError> {
    match r {
        Err(e) if e.code() == StatusCode::SERVICE_UNAVAILABLE => {
            let mut r = e.into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(super::admission::RETRY_AFTER_SECS),
            );
            Ok(r)
        }
        other => other,
    }
}

/// Runs blocking boot-service work off the runtime, on the service's few
/// worker threads (`BootService::run`): a storm of first requests queues
/// there instead of starting a thread each.
pub(super) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&BootService) -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    state
        .boot
        .run(f)
        .await
        .ok_or_else(|| HttpError::internal("boot data task failed"))?
}

/// The key presented in `X-Bootaction-Key` (`None`: missing or empty). A
/// value that is not ASCII is returned as is and fails the key check (403).
pub(super) fn presented_key(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(KEY_HEADER)?;
    let k = String::from_utf8_lossy(v.as_bytes()).trim().to_string();
    (!k.is_empty()).then_some(k)
}

/// The 401 of a missing key, with its challenge.
pub(super) fn unauthorized() -> Response {
    let mut r = HttpError::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "missing X-Bootaction-Key header; expected the node's key as 64 hex characters",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bootaction-Key"),
    );
    r
}

/// The 403 of a wrong or malformed key.
pub(super) fn forbidden(message: &str) -> Response {
    HttpError::new(StatusCode::FORBIDDEN, "Forbidden", message).into_response()
}

/// The 403 for a key check that failed, if it did; `expected` names the
/// key(s) that would have been accepted.
pub(super) fn key_rejected(check: KeyCheck, expected: &str) -> Option<Response> {
    match check {
        KeyCheck::Valid => None,
        KeyCheck::Wrong => Some(forbidden(&format!("X-Bootaction-Key is not {expected}"))),
        KeyCheck::Malformed => Some(forbidden(
            "X-Bootaction-Key is malformed; expected 64 hex characters",
        )),
    }
}

/// `GET /api/v1.0/bootactions/nodes/{hostname}/{kind}`.
pub async fn node_bootdata(
    State(state): State<AppState>,
    gate: Gate,
    Path((host, kind)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Some(kind) = BootDataKind::from_word(&kind) else {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no boot data `{kind}`; expected units, files, pkg_list or all"),
        ));
    };
    for_node(serve_bootdata(state, gate, host, kind, headers).await)
}

/// `GET /api/v1.0/bootdata/{hostname}/{units|files}` (the seed's alias).
pub async fn bootdata_alias(
    State(state): State<AppState>,
    gate: Gate,
    Path((host, kind)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let kind = match kind.as_str() {
        "units" => BootDataKind::Units,
        "files" => BootDataKind::Files,
        other => {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no boot data `{other}`; expected units or files"),
            ))
        }
    };
    for_node(serve_bootdata(state, gate, host, kind, headers).await)
}

async fn serve_bootdata(
    state: AppState,
    gate: Gate,
    host: String,
    kind: BootDataKind,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    // The common case is served from memory without leaving this task: the
    // node's deployment and its rendered data are cached until a revision
    // changes the node's inputs. Otherwise the database (and maybe a render)
    // is needed: off the runtime.
    let deployment = match state.boot.cached_deployment(&host) {
        Some(d) => d,
        None => {
            // After a start the applied revision is read by the reconciler;
            // wait for it here, without holding a worker thread.
            state.boot.wait_ready(LOAD_WAIT).await;
            let h = host.clone();
            blocking(&state, move |b| Ok(b.deployment(&h)?)).await?
        }
    };
    let Some(key) = presented_key(&headers) else {
        return Ok(unauthorized());
    };
    let check = state.boot.check_identity_key(deployment.record(), &key);
    if let Some(r) = key_rejected(
        check,
        &format!("the identity key of node {host}'s current deployment"),
    ) {
        return Ok(r);
    }
    // The machine is booting again: an agent it runs next gets a fresh
    // token (docs/ironic.md, agent tokens).
    if state.agents.booting_needs_reset(&host) {
        let (agents, h) = (state.agents.clone(), host.clone());
        let reset = tokio::task::spawn_blocking(move || {
            agents
                .reset_token(&h, crate::services::agents::RESET_BOOTING)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string());
        if let Err(e) | Ok(Err(e)) = reset {
            tracing::warn!(node = %host, error = %e, "agent token not reset");
        }
    }
    // Only an authenticated node takes an admission permit, for the work.
    let _permit = match gate.enter() {
        Ok(p) => p,
        Err(full) => return Ok(full.into_response()),
    };
    let rendered = match state.boot.rendered(&deployment, kind) {
        Some(r) => r,
        None => blocking(&state, move |b| Ok(b.render(&deployment, kind)?)).await?,
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == rendered.etag
            })
        });
    let etag_value = HeaderValue::from_str(&rendered.etag).map_err(HttpError::internal)?;
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    let disposition = format!("attachment; filename=\"{}\"", kind.file_name(&host));
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(kind.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(HttpError::internal)?,
            ),
            (header::ETAG, etag_value),
        ],
        rendered.bytes.clone(),
    )
        .into_response())
}

/// The identity view of a deployment.
fn identity_view(state: &AppState, d: &NodeDeployment) -> serde_json::Value {
    json!({
        "hostname": d.record().node,
        "deployment": d.record().deployment,
        "design_ref": d.record().design_ref,
        "identity_key": state.boot.identity_key(d.record()),
        "actions": d.actions().iter().map(|a| json!({
            "action_id": a.action_id,
            "action": a.action,
            "signaling": a.status != BootActionStatus::Unreported,
            "status": a.status,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1.0/nodes/{hostname}/identity` (operator route): the node's
/// deployment, identity key and boot actions.
pub async fn identity(
    State(state): State<AppState>,
    Path(host): Path<String>,
) -> Result<Json<serde_json::Value>, HttpError> {
    state.boot.wait_ready(LOAD_WAIT).await;
    let d = blocking(&state, move |b| Ok(b.deployment(&host)?)).await?;
    Ok(Json(identity_view(&state, &d)))
}
