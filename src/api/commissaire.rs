//! The Commissaire dialect (`/api/v0/…`, commissaire-http 0.0.7 and its
//! client `commctl`): clusters, hosts and networks as views of the applied
//! design ([`crate::services::clusters`]; the mapping is docs/compat.md's
//! "Commissaire" section). Every route but the OpenAPI document is
//! authenticated ([`auth`]: HTTP basic or the operator token; a failure is
//! 403); errors are Commissaire's `text/html` reason phrases ([`Presenter`],
//! `error.rs` only); every path also answers with a trailing slash, as
//! Commissaire's router (`optional_slash=True`). Handlers parse, call the
//! clusters service, present.

mod auth;
mod error;
pub mod openapi;
mod reads;
mod writes;

use axum::routing::{delete, get, put};
use axum::Router;
use serde_json::json;

use super::http::routes::{Group, Route};
use super::http::AppState;

pub use error::Presenter;

/// The media type of every success.
const JSON: &str = "application/json";

/// Where the dialect's OpenAPI document is served (no authentication).
pub const OPENAPI_PATH: &str = "/api/v0/openapi.json";

/// A path and its trailing-slash twin.
macro_rules! slash {
    ($p:literal) => {
        [$p, concat!($p, "/")]
    };
}

/// Commissaire's routes, as a table: each path without a trailing slash
/// (as commctl sends them) and with one.
pub fn routes() -> Vec<Route> {
    let r = |method,
             paths: [&'static str; 2],
             summary,
             body: Option<serde_json::Value>,
             ok,
             extra,
             handler: axum::routing::MethodRouter<AppState>| {
        paths.map(|path| Route {
            method,
            path,
            group: Group::Public,
            summary,
            body: body.clone(),
            ok,
            extra,
            bootaction_key: false,
            limited: false,
            produces: JSON,
            handler: handler.clone(),
        })
    };
    let any_object = || Some(json!({"type": "object"}));
    let members_body = json!({"type": "object", "required": ["old", "new"], "properties": {
        "old": {"type": "array", "items": {"type": "string"}},
        "new": {"type": "array", "items": {"type": "string"}},
    }});
    let host_body = json!({"type": "object", "properties": {
        "address": {"type": "string"},
        "ssh_priv_key": {"type": "string"},
        "remote_user": {"type": "string"},
        "cluster": {"type": "string"},
    }});
    let cluster_body = json!({"type": "object", "properties": {
        "network": {"type": "string"},
        "container_manager": {"type": "string"},
        "type": {"type": "string"},
    }});
    let table = vec![
        r("GET", slash!("/api/v0/clusters"), "Cluster names", None, &[200][..], &[][..], get(reads::clusters)),
        r("GET", slash!("/api/v0/cluster/{name}"), "One cluster with its hosts' availability", None, &[200], &[404], get(reads::cluster)),
        r("PUT", slash!("/api/v0/cluster/{name}"), "Declares a cluster on a design Network (a commit)", Some(cluster_body), &[201], &[400, 404, 409], put(writes::create_cluster)),
        r("DELETE", slash!("/api/v0/cluster/{name}"), "Removes a cluster's declaration (a commit); refused while it has members", None, &[200], &[404, 409], delete(writes::delete_cluster)),
        r("GET", slash!("/api/v0/cluster/{name}/hosts"), "A cluster's member addresses", None, &[200], &[404], get(reads::members)),
        r("PUT", slash!("/api/v0/cluster/{name}/hosts"), "Replaces a cluster's members (old must be the current set; a commit)", Some(members_body), &[200], &[400, 404, 409], put(writes::set_members)),
        r("GET", slash!("/api/v0/cluster/{name}/hosts/{ip}"), "Membership test", None, &[200], &[404], get(reads::member)),
        r("PUT", slash!("/api/v0/cluster/{name}/hosts/{ip}"), "Adds a host to a cluster (a commit)", any_object(), &[200], &[400, 404, 409], put(writes::add_member)),
        r("DELETE", slash!("/api/v0/cluster/{name}/hosts/{ip}"), "Removes a host from a cluster (a commit)", None, &[200], &[404, 409], delete(writes::remove_member)),
        r("GET", slash!("/api/v0/hosts"), "Every host", None, &[200], &[], get(reads::hosts)),
        r("PUT", slash!("/api/v0/host"), "A host enrols itself (address in the body, else the peer's): known → its record, unknown → a discovery proposal", Some(host_body.clone()), &[201], &[400, 409], put(writes::enrol_self)),
        r("GET", slash!("/api/v0/host/{ip}"), "One host", None, &[200], &[404], get(reads::host)),
        r("PUT", slash!("/api/v0/host/{ip}"), "A host enrols: known → its record, unknown → a discovery proposal", Some(host_body), &[201], &[400, 404, 409], put(writes::enrol)),
        r("GET", slash!("/api/v0/host/{ip}/creds"), "Never answered: no private key is served from git (404)", None, &[], &[404], get(reads::creds)),
        r("GET", slash!("/api/v0/host/{ip}/status"), "One host's status", None, &[200], &[404], get(reads::host_status)),
        r("GET", slash!("/api/v0/networks"), "Network names", None, &[200], &[], get(reads::networks)),
        r("GET", slash!("/api/v0/network/{name}"), "One network", None, &[200], &[404], get(reads::network)),
        r("GET", slash!("/api/v0/containermanagers"), "Container managers (slipway has none)", None, &[200], &[], get(reads::container_managers)),
        r("GET", slash!("/api/v0/containermanager/{name}"), "One container manager (there is none: 404)", None, &[], &[404], get(reads::container_manager)),
    ];
    let mut out: Vec<Route> = table.into_iter().flatten().collect();
    // A wrong method is answered inside the dialect's layers (one fallback per path).
    let mut seen = std::collections::HashSet::new();
    for route in &mut out {
        if seen.insert(route.path) {
            route.handler = std::mem::take(&mut route.handler).fallback(reads::method_not_allowed);
        }
    }
    let [openapi_route, _] = r(
        "GET",
        [OPENAPI_PATH, OPENAPI_PATH],
        "OpenAPI document of these routes (slipway's own; Commissaire serves none)",
        None,
        &[200],
        &[],
        get(openapi::openapi),
    );
    out.push(openapi_route);
    out
}

/// Commissaire's routes as one router: authenticated (but the OpenAPI
/// document), and any other `/api/v0/…` path a 404 in Commissaire's shape.
pub fn router(state: &AppState) -> Router<AppState> {
    super::http::routes::router(routes(), state)
        .route("/api/v0/{*rest}", axum::routing::any(reads::no_route))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
}
