//! Luna2's config reads (`daemon/routes/config_*.py`): the site as Luna2
//! config, computed from the applied design by
//! [`crate::services::luna2_view`] (built once per served revision). Every
//! route needs an operator's token ([`Token`], first among the arguments:
//! no token is a 401 whatever else is wrong). Names in the path are checked
//! as Luna2's `validate_name` does (400 for anything but `A-Z a-z 0-9 . _ -`);
//! a node argument may be a hostlist (`node[001-004]`), as the daemon's
//! node routes accept it through the CLI.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::Value;

use super::auth::Token;
use super::route;
use crate::api::http::body::{bad_request, blocking};
use crate::api::http::routes::Route;
use crate::api::http::{AppState, HttpError};
use crate::services::luna2_view::{AddressStatus, SiteView};
use crate::services::LOAD_WAIT;

/// The config read routes.
pub fn routes() -> Vec<Route> {
    let r = |path, summary, handler| {
        route(
            "GET",
            path,
            summary,
            None,
            &[200],
            &[400, 401, 403, 404, 503],
            handler,
        )
    };
    vec![
        r(
            "/config/node",
            "Every node of the applied design",
            get(node_list),
        ),
        r(
            "/config/node/{node}",
            "One node, or the nodes of a hostlist",
            get(node),
        ),
        r(
            "/config/node/{node}/interfaces",
            "A node's interfaces",
            get(node_interfaces),
        ),
        r(
            "/config/node/{node}/interfaces/{interface}",
            "One interface of a node",
            get(node_interface),
        ),
        r(
            "/config/group",
            "Every group (host profile)",
            get(group_list),
        ),
        r(
            "/config/group/{group}",
            "One group (host profile, its chain applied)",
            get(group),
        ),
        r(
            "/config/group/{group}/_member",
            "The nodes of a group",
            get(group_members),
        ),
        r(
            "/config/group/{group}/_list",
            "The nodes of a group (the seed's path)",
            get(group_members),
        ),
        r("/config/network", "Every network", get(network_list)),
        r("/config/network/{network}", "One network", get(network)),
        r(
            "/config/network/{network}/_nextfreeip",
            "The first address no node holds (nothing reserved)",
            get(next_free_ip),
        ),
        r(
            "/config/network/{network}/_list",
            "The addresses nodes hold on a network",
            get(network_taken),
        ),
        r(
            "/config/network/{network}/{ip}",
            "Whether an address of a network is taken",
            get(network_address),
        ),
        r(
            "/config/cluster",
            "The cluster (the design's region)",
            get(cluster),
        ),
        r(
            "/config/osimage",
            "Every OS image (host profiles' platform images)",
            get(osimage_list),
        ),
        r("/config/osimage/{osimage}", "One OS image", get(osimage)),
        r(
            "/config/bmcsetup",
            "Every BMC setup (`oob` of profiles and nodes)",
            get(bmcsetup_list),
        ),
        r(
            "/config/bmcsetup/{bmcsetup}",
            "One BMC setup",
            get(bmcsetup),
        ),
        r("/config/rack", "Every rack", get(rack_list)),
        r("/config/rack/{rack}", "One rack", get(rack)),
        route(
            "GET",
            "/config/{*rest}",
            "Any other config resource: Luna2's 404 (no counterpart in the design; docs/compat.md)",
            None,
            &[],
            &[401, 404],
            get(no_counterpart),
        ),
    ]
}

/// A Luna2 config resource slipway does not serve (secrets, switches,
/// clouds, …): Luna2's 404 body, after the token check as every config route.
async fn no_counterpart(_: Token) -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "NotFound", "Route Not Found")
}

/// The view of the served revision: from memory when built, else built
/// (once per revision) on a blocking thread after the design is loaded.
async fn view(state: &AppState) -> Result<Arc<SiteView>, HttpError> {
    if let Some(v) = state.luna.current() {
        return Ok(v);
    }
    state.boot.wait_ready(LOAD_WAIT).await;
    let luna = state.luna.clone();
    blocking(move || luna.view().map_err(HttpError::from)).await
}

/// The longest name accepted in a path.
const MAX_NAME: usize = 255;

/// A name as Luna2's `validate_name` accepts it: 400 otherwise.
fn name(s: &str) -> Result<&str, HttpError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(bad_request(format!(
            "invalid name {s:?}: only A-Z a-z 0-9 . _ - are allowed"
        )))
    }
}

/// One item of the view by its name in the path: 400 for a bad name,
/// 404 naming `what` when the view has none.
async fn by_name(
    state: &AppState,
    raw: &str,
    what: &str,
    get: fn(&SiteView, &str) -> Option<Value>,
) -> Result<Json<Value>, HttpError> {
    let n = name(raw)?;
    get(&*view(state).await?, n)
        .map(Json)
        .ok_or_else(|| not_found(what, n))
}

fn not_found(what: &str, name: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{what} {name} is not available"),
    )
}

async fn node_list(_: Token, State(state): State<AppState>) -> Result<Response, HttpError> {
    let v = view(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], v.node_list()).into_response())
}

async fn node(
    _: Token,
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Json<Value>, HttpError> {
    if crate::hostlist::is_hostlist(&node) {
        let names = crate::hostlist::expand(&node).map_err(|e| bad_request(e.to_string()))?;
        let v = view(&state).await?;
        return v.nodes(&names).map(Json).map_err(|n| not_found("Node", &n));
    }
    let n = name(&node)?;
    let mut answer = view(&state)
        .await?
        .node(n)
        .ok_or_else(|| not_found("Node", n))?;
    // The status the node last posted (`/monitor/node/{node}`), shown on
    // the node as Luna2 does; the view itself is per revision.
    let svc = state.node_status.clone();
    let who = n.to_string();
    let posted = tokio::task::spawn_blocking(move || svc.get(&who))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    if let (Some(st), Some(slot)) = (
        posted,
        answer.pointer_mut(&format!("/config/node/{n}/status")),
    ) {
        *slot = Value::String(st.status);
    }
    Ok(Json(answer))
}

async fn node_interfaces(
    _: Token,
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &node, "Node", SiteView::node_interfaces).await
}

async fn node_interface(
    _: Token,
    State(state): State<AppState>,
    Path((node, interface)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    let (n, i) = (name(&node)?, interface_name(&interface)?);
    match view(&state).await?.node_interface(n, i) {
        None => Err(not_found("Node", n)),
        Some(None) => Err(not_found("Interface", i)),
        Some(Some(v)) => Ok(Json(v)),
    }
}

/// An interface name: a name, or `<interface>:<network>` (a second network on one interface).
fn interface_name(s: &str) -> Result<&str, HttpError> {
    match s.split_once(':') {
        Some((a, b)) => name(a).and(name(b)).map(|_| s),
        None => name(s),
    }
}

async fn group_list(_: Token, State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    Ok(Json(view(&state).await?.group_list()))
}

async fn group(
    _: Token,
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &group, "Group", SiteView::group).await
}

async fn group_members(
    _: Token,
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &group, "Group", SiteView::group_members).await
}

async fn network_list(_: Token, State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    Ok(Json(view(&state).await?.network_list()))
}

async fn network(
    _: Token,
    State(state): State<AppState>,
    Path(net): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &net, "Network", SiteView::network).await
}

async fn next_free_ip(
    _: Token,
    State(state): State<AppState>,
    Path(net): Path<String>,
) -> Result<Json<Value>, HttpError> {
    let n = name(&net)?;
    match view(&state).await?.next_free(n) {
        None => Err(not_found("Network", n)),
        Some(None) => Err(not_found("No free address in network", n)),
        Some(Some(v)) => Ok(Json(v)),
    }
}

async fn network_taken(
    _: Token,
    State(state): State<AppState>,
    Path(net): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &net, "Network", SiteView::network_taken).await
}

async fn network_address(
    _: Token,
    State(state): State<AppState>,
    Path((net, ip)): Path<(String, String)>,
) -> Result<Json<Value>, HttpError> {
    let n = name(&net)?;
    let addr: std::net::IpAddr = ip
        .parse()
        .map_err(|_| bad_request(format!("invalid IP address {ip:?}")))?;
    let status = view(&state)
        .await?
        .network_address(n, addr)
        .ok_or_else(|| not_found("Network", n))?;
    let body = match status {
        AddressStatus::OutOfScope => {
            return Err(not_found(
                &format!("IP address {addr} is not in network"),
                n,
            ))
        }
        AddressStatus::Taken(device) => serde_json::json!({"status": "taken", "device": device}),
        AddressStatus::Free => serde_json::json!({"status": "free"}),
    };
    Ok(Json(
        serde_json::json!({"config": {"network": {addr.to_string(): body}}}),
    ))
}

async fn cluster(_: Token, State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    Ok(Json(view(&state).await?.cluster()))
}

async fn osimage_list(_: Token, State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    Ok(Json(view(&state).await?.osimage_list()))
}

async fn osimage(
    _: Token,
    State(state): State<AppState>,
    Path(image): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &image, "OS image", SiteView::osimage).await
}

async fn bmcsetup_list(_: Token, State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    Ok(Json(view(&state).await?.bmcsetup_list()))
}

async fn bmcsetup(
    _: Token,
    State(state): State<AppState>,
    Path(b): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &b, "BMC setup", SiteView::bmcsetup).await
}

async fn rack_list(_: Token, State(state): State<AppState>) -> Result<Json<Value>, HttpError> {
    Ok(Json(view(&state).await?.rack_list()))
}

async fn rack(
    _: Token,
    State(state): State<AppState>,
    Path(r): Path<String>,
) -> Result<Json<Value>, HttpError> {
    by_name(&state, &r, "Rack", SiteView::rack).await
}
