//! The reads: clusters, members, hosts, host status, networks, container
//! managers, in commissaire-http's JSON shapes (dialects §4.1), from the
//! clusters service. A name or address that Commissaire's router would not
//! match (`[a-zA-Z0-9_-]+`, addresses also `.`) is a 404, as there.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::api::http::body::blocking;
use crate::api::http::{AppState, HttpError};
use crate::services::clusters::{ClusterInfo, ClusterService, ClusterView, HostInfo};
use crate::services::LOAD_WAIT;

/// A 404.
pub fn not_found(what: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "NotFound", what)
}

/// Whether Commissaire's router matches `s` as a `{name}`.
pub fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether Commissaire's router matches `s` as an `{address}`.
pub fn address_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A `{name}` segment, or 404.
pub fn check_name(name: &str) -> Result<(), HttpError> {
    if name_ok(name) {
        Ok(())
    } else {
        Err(not_found(format!("{name:?} is not a Commissaire name")))
    }
}

/// An `{address}` segment, or 404.
pub fn check_address(a: &str) -> Result<(), HttpError> {
    if address_ok(a) {
        Ok(())
    } else {
        Err(not_found(format!("{a:?} is not a Commissaire address")))
    }
}

/// The service once the served design is loaded (bounded wait).
pub async fn service(state: &AppState) -> Arc<ClusterService> {
    state.boot.wait_ready(LOAD_WAIT).await;
    state.clusters.clone()
}

/// The served revision's view, off the runtime.
pub async fn view(state: &AppState) -> Result<Arc<ClusterView>, HttpError> {
    let svc = service(state).await;
    blocking(move || Ok(svc.view()?)).await
}

/// ISO time as Commissaire writes `last_check` (`isoformat()`), `""` when unknown.
fn iso(t: Option<i64>) -> String {
    t.map(crate::api::inspector::iso).unwrap_or_default()
}

/// A host record.
pub fn host_body(h: &HostInfo) -> Value {
    json!({
        "address": h.entry.address,
        "status": h.status.word(),
        "os": h.entry.os,
        "cpus": h.cpus,
        "memory": h.memory,
        "space": h.space,
        "last_check": iso(h.last_check),
        "source": "",
    })
}

/// A cluster record (`hosts` counts with `with_hosts`, as `GET` shows it).
pub fn cluster_body(c: &ClusterInfo, with_hosts: bool) -> Value {
    let mut v = json!({
        "name": c.entry.name,
        "status": c.status,
        "network": c.entry.network,
        "container_manager": "",
    });
    if with_hosts {
        v["hosts"] = json!({
            "total": c.entry.members.len(),
            "available": c.available,
            "unavailable": c.unavailable,
        });
    }
    v
}

/// `GET /api/v0/clusters`.
pub async fn clusters(State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    let v = view(&state).await?;
    Ok(Json(json!(v.clusters.keys().collect::<Vec<_>>())))
}

/// One cluster's info, or 404.
pub async fn cluster_info(state: &AppState, name: String) -> Result<ClusterInfo, HttpError> {
    check_name(&name)?;
    let svc = service(state).await;
    blocking(move || {
        svc.cluster(&name)?
            .ok_or_else(|| not_found(format!("no cluster {name}")))
    })
    .await
}

/// `GET /api/v0/cluster/{name}`.
pub async fn cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let c = cluster_info(&state, name).await?;
    Ok(Json(cluster_body(&c, true)))
}

/// `GET /api/v0/cluster/{name}/hosts`.
pub async fn members(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    let v = view(&state).await?;
    let c = v
        .clusters
        .get(&name)
        .ok_or_else(|| not_found(format!("no cluster {name}")))?;
    Ok(Json(json!(c.members)))
}

/// `GET /api/v0/cluster/{name}/hosts/{ip}`: 200 `["<ip>"]` for a member, else 404.
pub async fn member(
    State(state): State<AppState>,
    Path((name, ip)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    check_address(&ip)?;
    let v = view(&state).await?;
    let c = v
        .clusters
        .get(&name)
        .ok_or_else(|| not_found(format!("no cluster {name}")))?;
    if c.members.contains(&ip) {
        Ok(Json(json!([ip])))
    } else {
        Err(not_found("The requested host is not part of the cluster."))
    }
}

/// `GET /api/v0/hosts`.
pub async fn hosts(State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    let svc = service(&state).await;
    let all = blocking(move || Ok(svc.hosts()?)).await?;
    Ok(Json(Value::Array(all.iter().map(host_body).collect())))
}

/// One host's info, or 404.
pub async fn host_info(state: &AppState, ip: String) -> Result<HostInfo, HttpError> {
    check_address(&ip)?;
    let svc = service(state).await;
    blocking(move || {
        svc.host(&ip)?
            .ok_or_else(|| not_found(format!("no host has address {ip}")))
    })
    .await
}

/// `GET /api/v0/host/{ip}`.
pub async fn host(
    State(state): State<AppState>,
    Path(ip): Path<String>,
) -> Result<Json<Value>, HttpError> {
    Ok(Json(host_body(&host_info(&state, ip).await?)))
}

/// `GET /api/v0/host/{ip}/status`.
pub async fn host_status(
    State(state): State<AppState>,
    Path(ip): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let h = host_info(&state, ip).await?;
    Ok(Json(json!({
        "type": "host_only",
        "host": {"last_check": iso(h.last_check), "status": h.status.word()},
        "container_manager": {},
    })))
}

/// `GET /api/v0/host/{ip}/creds`: always 404. slipway holds no SSH key for
/// a host, and a private key committed to the design would be readable by
/// everyone who can read the repository: it is never served
/// (docs/compat.md).
pub async fn creds(Path(ip): Path<String>) -> HttpError {
    not_found(format!(
        "no credentials for {ip}: slipway never serves a private key from the design"
    ))
}

/// `GET /api/v0/networks`.
pub async fn networks(State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    let v = view(&state).await?;
    Ok(Json(json!(v.networks.keys().collect::<Vec<_>>())))
}

/// `GET /api/v0/network/{name}`.
pub async fn network(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, HttpError> {
    check_name(&name)?;
    let v = view(&state).await?;
    let n = v
        .networks
        .get(&name)
        .ok_or_else(|| not_found(format!("no network {name}")))?;
    Ok(Json(json!({
        "name": n.name,
        "type": "flannel_etcd",
        "options": n.options,
    })))
}

/// `GET /api/v0/containermanagers`: slipway manages none.
pub async fn container_managers() -> Json<Value> {
    Json(json!([]))
}

/// `GET /api/v0/containermanager/{name}`: there is none.
pub async fn container_manager(Path(name): Path<String>) -> HttpError {
    not_found(format!("no container manager {name}: slipway manages none"))
}

/// Any other `/api/v0/…` path.
pub async fn no_route(uri: axum::http::Uri) -> HttpError {
    not_found(format!("no such resource: {}", uri.path()))
}

/// A known path with a method it does not take (inside the dialect's
/// layers, so it is answered in Commissaire's shape).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("method {method} not allowed on {}", uri.path()),
    )
}
