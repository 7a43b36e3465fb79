//! Luna2's control routes (`daemon/routes/control.py`, `base/control.py`):
//! power and chassis identify of one node, synchronous
//! (`GET /control/action/{subsystem}/{node}/_{action}`, answered within
//! [`SYNC_DEADLINE`], below the 5 s `lpower` waits), and of a hostlist,
//! answered at once with a request id (`POST /control/action/{subsystem}/_{action}`)
//! and polled (`GET /control/status/{id}`, ending in a JSON 404). Every
//! call goes through the power service ([`crate::services::power`]), bounded
//! as it is; bulk requests through [`crate::services::power_requests`].

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Map, Value};

use super::auth::Token;
use super::boot::strict_name;
use crate::api::http::body::{bad_request, RawBody};
use crate::api::http::routes::Route;
use crate::api::http::{AppState, HttpError};
use crate::services::power::{NodeFailure, PowerOp};
use crate::services::power_requests::{NodeResult, Progress, RequestError};

/// The longest a one-node request waits for the BMC: `lpower` and the
/// `luna` CLI give up after 5 s; the operation goes on after the answer
/// (its result lands in the node's power journal).
pub const SYNC_DEADLINE: Duration = Duration::from_millis(4500);

/// The control routes.
pub fn routes() -> Vec<Route> {
    let body = json!({"type": "object", "required": ["control"], "properties": {
        "control": {"type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": {"type": "object", "minProperties": 1, "maxProperties": 1,
                "additionalProperties": {"type": "object", "required": ["hostlist"],
                    "properties": {"hostlist": {"type": "string"}}}}}}});
    vec![
        super::route(
            "GET",
            "/control/action/{subsystem}/{node}/{action}",
            "Power (_on, _off, _status, _reset, _cycle) or chassis (_identify, _noidentify) of one node, synchronous",
            None,
            &[200, 204],
            &[400, 401, 403, 404, 501],
            get(one_node),
        ),
        super::route(
            "POST",
            "/control/action/{subsystem}/{action}",
            "The same over a hostlist: answered at once with a request id",
            Some(body),
            &[200],
            &[400, 401, 403, 404, 503],
            post(bulk),
        ),
        super::route(
            "GET",
            "/control/status/{request_id}",
            "New results of a bulk request; 404 once it is done and read",
            None,
            &[200],
            &[400, 401, 403, 404],
            get(status),
        ),
    ]
}

/// What a (subsystem, `_action`) pair does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// The operation run.
    pub op: PowerOp,
    /// It reads the power state (`_status`).
    pub status: bool,
}

/// The action of a path's `{subsystem}` and `{action}` (`_on`…), or a 404
/// for a subsystem or action slipway does not serve (Luna2's `sel` and
/// `redfish` among them).
pub fn action_of(subsystem: &str, action: &str) -> Result<(&'static str, Action), HttpError> {
    let word = action.strip_prefix('_').unwrap_or("");
    let (sub, op, status) = match (subsystem, word) {
        ("power", "status") => ("power", PowerOp::Status, true),
        ("power", "on") => ("power", PowerOp::On, false),
        ("power", "off") => ("power", PowerOp::Off, false),
        ("power", "reset") | ("power", "cycle") => ("power", PowerOp::Cycle, false),
        ("chassis", "identify") => ("chassis", PowerOp::Identify(true), false),
        ("chassis", "noidentify") => ("chassis", PowerOp::Identify(false), false),
        _ => {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!(
                    "{} {} is not served (power: _on _off _status _reset _cycle; chassis: _identify _noidentify)",
                    crate::render::ipxe::printable(subsystem),
                    crate::render::ipxe::printable(action)
                ),
            ))
        }
    };
    Ok((sub, Action { op, status }))
}

fn failed_501(subsystem: &str, message: &str) -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        Json(json!({"control": {subsystem: message}})),
    )
        .into_response()
}

/// `GET /control/action/{subsystem}/{node}/_{action}`: 200
/// `{"control":{"power":"on"|"off"}}` for `_status`, 204 for the others;
/// 501 `{"control":{subsystem: message}}` when the BMC call failed or did not
/// finish within [`SYNC_DEADLINE`]; 404 `{"message"}` for an unknown node or
/// one without a BMC the power service can drive.
async fn one_node(
    _token: Token,
    State(state): State<AppState>,
    Path((subsystem, node, action)): Path<(String, String, String)>,
) -> Result<Response, HttpError> {
    let (sub, act) = action_of(&subsystem, &action)?;
    strict_name("node", &node)?;
    let mut planned = state
        .power
        .served_targets(&state.boot, std::slice::from_ref(&node))?;
    let (_, target) = planned
        .pop()
        .ok_or_else(|| HttpError::internal("no target"))?;
    let target = match target {
        Ok(t) => t,
        Err(NodeFailure::UnknownNode) => {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("host {node} does not exist or has no BMC interface configured"),
            ))
        }
        Err(f) => {
            let why = match &f {
                NodeFailure::NoDriver(why) => why.clone(),
                other => other.kind(),
            };
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{node} does not have a suitable bmcsetup: {why}"),
            ));
        }
    };
    let power = state.power.clone();
    let name = node.clone();
    let task = tokio::spawn(async move { power.run_node(&name, Ok(target), &[act.op]).await });
    let outcome = match tokio::time::timeout(SYNC_DEADLINE, task).await {
        Err(_) => {
            return Ok(failed_501(
                sub,
                &format!(
                    "no answer from the BMC within {:.1} s; the operation goes on",
                    SYNC_DEADLINE.as_secs_f64()
                ),
            ))
        }
        Ok(Err(e)) => return Err(HttpError::internal(format!("power task failed: {e}"))),
        Ok(Ok(o)) => o,
    };
    if outcome.failure.is_some() {
        return Ok(failed_501(sub, &outcome.message));
    }
    if act.status {
        return Ok(match outcome.power {
            Some(crate::services::power::PowerState::On) => {
                Json(json!({"control": {sub: "on"}})).into_response()
            }
            Some(crate::services::power::PowerState::Off) => {
                Json(json!({"control": {sub: "off"}})).into_response()
            }
            other => failed_501(
                sub,
                &format!(
                    "success with unparsable output: {}",
                    other.map_or("nothing".to_string(), |p| p.to_string())
                ),
            ),
        });
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A bulk answer: `{"request_id", "control": {subsystem: {"ok","on","off"}, "failed"}}`.
fn progress_body(p: &Progress) -> Value {
    let (mut ok, mut on, mut off, mut failed) = (Map::new(), Map::new(), Map::new(), Map::new());
    for (node, r) in &p.results {
        match r {
            NodeResult::Ok(what) => {
                ok.insert(node.clone(), Value::String(what.clone()));
            }
            NodeResult::On => {
                on.insert(node.clone(), Value::String("None".into()));
            }
            NodeResult::Off => {
                off.insert(node.clone(), Value::String("None".into()));
            }
            NodeResult::Failed(m) => {
                failed.insert(node.clone(), Value::String(m.clone()));
            }
        }
    }
    json!({
        "request_id": p.id,
        "control": {
            p.subsystem.clone(): {"ok": ok, "on": on, "off": off},
            "failed": failed,
        }
    })
}

/// `POST /control/action/{subsystem}/_{action}` with
/// `{"control":{subsystem:{action:{"hostlist":"node[001-004]"}}}}`: 200 at
/// once with the request id; 400 for another shape or a bad hostlist; 503
/// when too many requests run.
async fn bulk(
    _token: Token,
    State(state): State<AppState>,
    Path((subsystem, action)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, HttpError> {
    let (sub, act) = action_of(&subsystem, &action)?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("data is not valid json"))?;
    let word = &action[1..];
    let hostlist = v
        .get("control")
        .and_then(|c| c.as_object())
        .filter(|c| c.len() == 1)
        .and_then(|c| c.get(sub))
        .and_then(|s| s.as_object())
        .filter(|s| s.len() == 1)
        .and_then(|s| s.get(word))
        .and_then(|a| a.get("hostlist"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("data structure incomplete or incorrect"))?;
    let names = crate::hostlist::expand(hostlist)
        .map_err(|e| bad_request(format!("Invalid request: invalid hostlist: {e}")))?;
    let planned = state.power.served_targets(&state.boot, &names)?;
    let ops = vec![act.op];
    let id = state
        .power_requests
        .start(sub, word, act.status, ops, planned)
        .map_err(|e: RequestError| {
            HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                e.to_string(),
            )
        })?;
    Ok(Json(progress_body(&Progress {
        id,
        subsystem: sub.to_string(),
        results: Default::default(),
        done: false,
    })))
}

/// `GET /control/status/{request_id}`: 200 with the results not read yet
/// (possibly none); 404 `{"message":"No data for this request"}` once the
/// request is done and read, or for an id never issued (or expired).
async fn status(
    _token: Token,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    strict_name("request", &id)?;
    match state.power_requests.poll(&id) {
        Some(p) => Ok(Json(progress_body(&p))),
        None => Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No data for this request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_power_operations() {
        assert_eq!(action_of("power", "_status").unwrap().1.op, PowerOp::Status);
        assert!(action_of("power", "_status").unwrap().1.status);
        assert_eq!(action_of("power", "_reset").unwrap().1.op, PowerOp::Cycle);
        assert_eq!(
            action_of("chassis", "_identify").unwrap().1.op,
            PowerOp::Identify(true)
        );
        for (s, a) in [
            ("power", "on"),
            ("sel", "_list"),
            ("power", "_fly"),
            ("x'--", "_on"),
        ] {
            assert!(action_of(s, a).is_err(), "{s} {a}");
        }
    }
}
