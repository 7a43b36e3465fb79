//! The writes: cluster membership and cluster declarations become design
//! edits committed through the write-back service (validated whole,
//! committed only when valid, re-applied on a moved head); a host enrolling
//! from an unknown address becomes a discovery proposal on the proposal
//! branch. Codes as commissaire-http's: `PUT` 201 but the `action=add`
//! routes (200), `DELETE` 200 `[]`, 400 bad body, 404 unknown, 409 conflict.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::reads::{check_address, check_name, cluster_body, cluster_info, host_body, service};
use crate::api::http::body::{bad_request, blocking, RawBody};
use crate::api::http::{AppState, HttpError};
use crate::services::clusters::{ClusterWriteError, DocChange, Enrolled, Written};

/// Commissaire's codes for a write's failures.
fn write_error(e: ClusterWriteError) -> HttpError {
    match e {
        ClusterWriteError::NotFound(m) => HttpError::new(StatusCode::NOT_FOUND, "NotFound", m),
        ClusterWriteError::Conflict(m) => HttpError::new(StatusCode::CONFLICT, "Conflict", m),
        e @ ClusterWriteError::Invalid(_) => bad_request(e.to_string()),
        ClusterWriteError::Refused(m) => bad_request(m),
        ClusterWriteError::Service(e) => HttpError::from(e),
    }
}

/// A JSON object body (an empty body is `{}`), or 400.
fn object(body: &[u8]) -> Result<Map<String, Value>, HttpError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("a JSON object is required")),
        Err(e) => Err(bad_request(format!("invalid JSON: {e}"))),
    }
}

/// An optional string field, or 400.
fn string_field(m: &Map<String, Value>, key: &str) -> Result<Option<String>, HttpError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request(format!("`{key}` must be a string"))),
    }
}

/// A list of addresses, or 400.
fn address_list(m: &Map<String, Value>, key: &str) -> Result<BTreeSet<String>, HttpError> {
    let Some(Value::Array(a)) = m.get(key) else {
        return Err(bad_request(format!("`{key}` must be a list of addresses")));
    };
    a.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad_request(format!("`{key}` must be a list of addresses")))
        })
        .collect()
}

/// Plans with the served view and commits, off the runtime.
async fn write<P>(
    state: &AppState,
    user: String,
    what: String,
    plan: P,
) -> Result<Written, HttpError>
where
    P: FnOnce(
            &crate::services::clusters::ClusterService,
            &crate::services::clusters::ClusterView,
        ) -> Result<Vec<DocChange>, ClusterWriteError>
        + Send
        + 'static,
{
    let svc = service(state).await;
    blocking(move || {
        let view = svc
            .view()
            .map_err(|e| write_error(ClusterWriteError::from(e)))?;
        let changes = plan(&svc, &view).map_err(write_error)?;
        svc.commit(&user, &what, changes).map_err(write_error)
    })
    .await
}

/// `PUT /api/v0/cluster/{name}` `{network?, container_manager?}`: 201 with
/// the cluster (without `hosts`, as Commissaire's `to_dict_safe`).
pub async fn create_cluster(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), HttpError> {
    check_name(&name)?;
    let m = object(&body)?;
    let network = string_field(&m, "network")?;
    let cm = string_field(&m, "container_manager")?;
    string_field(&m, "type")?;
    if cm.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "slipway manages no container manager",
        ));
    }
    let what = format!("commissaire: PUT /api/v0/cluster/{name}");
    let n = name.clone();
    write(&state, user, what, move |svc, view| {
        Ok(svc.plan_declare(view, &n, network.as_deref())?.0)
    })
    .await?;
    let c = cluster_info(&state, name).await?;
    Ok((StatusCode::CREATED, Json(cluster_body(&c, false))))
}

/// `DELETE /api/v0/cluster/{name}`: 200 `[]`; a cluster with members is a 409.
pub async fn delete_cluster(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    let what = format!("commissaire: DELETE /api/v0/cluster/{name}");
    write(&state, user, what, move |svc, view| {
        svc.plan_undeclare(view, &name)
    })
    .await?;
    Ok(Json(json!([])))
}

/// `PUT /api/v0/cluster/{name}/hosts` `{"old": […], "new": […]}`: 200 with
/// the cluster and its `hostset`; 409 when `old` is not the current set.
pub async fn set_members(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path(name): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    let m = object(&body)?;
    let old = address_list(&m, "old")?;
    let new = address_list(&m, "new")?;
    let what = format!("commissaire: PUT /api/v0/cluster/{name}/hosts");
    let n = name.clone();
    write(&state, user, what, move |svc, view| {
        svc.plan_members(view, &n, &old, &new)
    })
    .await?;
    let c = cluster_info(&state, name).await?;
    let mut v = cluster_body(&c, false);
    v["hostset"] = json!(c.entry.members);
    Ok(Json(v))
}

/// `PUT /api/v0/cluster/{name}/hosts/{ip}`: 200 `["<ip>"]`.
pub async fn add_member(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((name, ip)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    check_address(&ip)?;
    object(&body)?;
    let what = format!("commissaire: PUT /api/v0/cluster/{name}/hosts/{ip}");
    let (n, a) = (name, ip.clone());
    write(&state, user, what, move |svc, view| {
        svc.plan_join(view, &n, &a)
    })
    .await?;
    Ok(Json(json!([ip])))
}

/// `DELETE /api/v0/cluster/{name}/hosts/{ip}`: 200 `[]` (also for a host
/// that is not a member, as Commissaire).
pub async fn remove_member(
    State(state): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    Path((name, ip)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    check_address(&ip)?;
    let what = format!("commissaire: DELETE /api/v0/cluster/{name}/hosts/{ip}");
    write(&state, user, what, move |svc, view| {
        svc.plan_leave(view, &name, &ip)
    })
    .await?;
    Ok(Json(json!([])))
}

/// Enrols `address`: 201 with the host record (an unknown address: the
/// proposed host, `investigating`, with the proposal in `X-Slipway-Proposal`).
async fn enrol_at(
    state: &AppState,
    address: IpAddr,
    cluster: Option<String>,
) -> Result<(StatusCode, axum::http::HeaderMap, Json<Value>), HttpError> {
    let svc = service(state).await;
    let inspection = state.inspection.clone();
    let done = blocking(move || {
        svc.enrol(&inspection, address, cluster.as_deref())
            .map_err(write_error)
    })
    .await?;
    let mut headers = axum::http::HeaderMap::new();
    let body = match done {
        Enrolled::Known(h) => host_body(&h),
        Enrolled::Proposed {
            address,
            node,
            path,
            commit,
        } => {
            tracing::info!(%address, %node, %path, commit = commit.as_deref().unwrap_or("unchanged"), "commissaire: unknown host proposed");
            if let Ok(v) = path.parse() {
                headers.insert("x-slipway-proposal", v);
            }
            json!({"address": address, "status": "investigating", "os": "", "cpus": 0,
                   "memory": 0, "space": 0, "last_check": "", "source": ""})
        }
    };
    Ok((StatusCode::CREATED, headers, Json(body)))
}

/// The enrolment body's cluster, after checking its fields' types.
fn enrol_body(m: &Map<String, Value>) -> Result<Option<String>, HttpError> {
    string_field(m, "ssh_priv_key")?;
    string_field(m, "remote_user")?;
    let cluster = string_field(m, "cluster")?;
    if let Some(c) = &cluster {
        if !super::reads::name_ok(c) {
            return Err(bad_request(format!("{c:?} is not a cluster name")));
        }
    }
    Ok(cluster)
}

/// `PUT /api/v0/host`: the address from the body's `address` (as
/// commissaire-http), else the peer's (as commissaire-mvp).
pub async fn enrol_self(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, axum::http::HeaderMap, Json<Value>), HttpError> {
    let m = object(&body)?;
    let cluster = enrol_body(&m)?;
    let address = match string_field(&m, "address")? {
        Some(a) => a
            .parse::<IpAddr>()
            .map_err(|_| bad_request(format!("{a:?} is not an IP address")))?,
        None => peer
            .map(|p| p.0 .0.ip().to_canonical())
            .ok_or_else(|| bad_request("no `address` in the body and no peer address"))?,
    };
    enrol_at(&state, address, cluster).await
}

/// `PUT /api/v0/host/{ip}`.
pub async fn enrol(
    State(state): State<AppState>,
    Path(ip): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, axum::http::HeaderMap, Json<Value>), HttpError> {
    check_address(&ip)?;
    let address = ip
        .parse::<IpAddr>()
        .map_err(|_| bad_request(format!("{ip:?} is not an IP address")))?;
    let m = object(&body)?;
    let cluster = enrol_body(&m)?;
    enrol_at(&state, address, cluster).await
}
