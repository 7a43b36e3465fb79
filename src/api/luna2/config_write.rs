//! Luna2's config writes (`daemon/routes/config_node.py`, `config_group.py`,
//! `config_network.py`): each becomes design edits committed to git through
//! [`crate::services::writeback`] — validated whole, committed only when
//! valid, the token's user as the author, the request in the message.
//!
//! Bodies are Luna2's (`{"config":{"node":{"<name>":{…fields…}}}}`,
//! `newnodename` / `newgroupname` / `newnetname` to rename or name a clone);
//! each field maps to the design field Luna2's read of it comes from
//! (docs/compat.md, "Luna2 config writes"); a field with no counterpart is a
//! 400 naming it. Codes are Luna2's: 201 created, 204 updated or deleted,
//! 400 invalid (the validation messages in `message`), 404 unknown, 409 when
//! the branch kept moving or its head is invalid.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Map, Value};

use super::auth::{require_token, require_token_for_node};
use super::route;
use crate::api::http::body::{bad_request, blocking, RawBody};
use crate::api::http::routes::Route;
use crate::api::http::{AppState, HttpError};
use crate::design::Kind;
use crate::services::writeback::{
    Applied, Change, Committed, Edit, EditError, Fields, Outcome, WriteError,
};

/// The config write routes.
pub fn routes() -> Vec<Route> {
    // `{"config":{"<table>":{"<name>":{…fields…}}}}`, as Luna2's input_filter wants.
    let body = |table: &str| {
        Some(
            json!({"type": "object", "required": ["config"], "properties": {"config": {
                "type": "object", "required": [table], "properties": {table: {
                    "type": "object", "minProperties": 1,
                    "additionalProperties": {"type": "object"},
                }},
            }}}),
        )
    };
    vec![
        route(
            "POST",
            "/config/node/{node}",
            "Create or change a node (a commit)",
            body("node"),
            &[201, 204],
            &[400, 401, 403, 404, 409],
            post(node_post),
        ),
        route(
            "POST",
            "/config/node/{node}/_clone",
            "Clone a node under `newnodename` (a commit)",
            body("node"),
            &[201],
            &[400, 401, 403, 404, 409],
            post(node_clone),
        ),
        route(
            "GET",
            "/config/node/{node}/_delete",
            "Delete a node (a commit)",
            None,
            &[204],
            &[400, 401, 403, 404, 409],
            get(node_delete),
        ),
        route(
            "POST",
            "/config/node/{node}/interfaces",
            "Change a node's interfaces (a commit)",
            body("node"),
            &[204],
            &[400, 401, 403, 404, 409],
            post(node_interfaces),
        ),
        route(
            "GET",
            "/config/node/{node}/interfaces/{interface}/_delete",
            "Remove a node's interface address (a commit)",
            None,
            &[204],
            &[400, 401, 403, 404, 409],
            get(node_interface_delete),
        ),
        route(
            "POST",
            "/config/group/{group}",
            "Create or change a group (a host profile; a commit)",
            body("group"),
            &[201, 204],
            &[400, 401, 403, 404, 409],
            post(group_post),
        ),
        route(
            "POST",
            "/config/group/{group}/_clone",
            "Clone a group under `newgroupname` (a commit)",
            body("group"),
            &[201],
            &[400, 401, 403, 404, 409],
            post(group_clone),
        ),
        route(
            "GET",
            "/config/group/{group}/_delete",
            "Delete a group (a commit)",
            None,
            &[204],
            &[400, 401, 403, 404, 409],
            get(group_delete),
        ),
        route(
            "POST",
            "/config/network/{network}",
            "Create or change a network (a commit)",
            body("network"),
            &[201, 204],
            &[400, 401, 403, 404, 409],
            post(network_post),
        ),
        route(
            "POST",
            "/config/network/{network}/_clone",
            "Clone a network under `newnetname` (a commit)",
            body("network"),
            &[201],
            &[400, 401, 403, 404, 409],
            post(network_clone),
        ),
        route(
            "GET",
            "/config/network/{network}/_delete",
            "Delete a network (a commit)",
            None,
            &[204],
            &[400, 401, 403, 404, 409],
            get(network_delete),
        ),
    ]
}

/// The node fields a write maps (anything else is a 400 naming it).
pub const NODE_FIELDS: &[&str] = &[
    "name",
    "newnodename",
    "group",
    "osimage",
    "interfaces",
    "comment",
    "vendor",
    "assettag",
    "rack",
];
/// The interface fields a node write maps.
pub const INTERFACE_FIELDS: &[&str] = &["interface", "network", "ipaddress", "macaddress"];
/// The group fields a write maps.
pub const GROUP_FIELDS: &[&str] = &["name", "newgroupname", "osimage", "comment"];
/// The network fields a write maps.
pub const NETWORK_FIELDS: &[&str] = &[
    "name",
    "newnetname",
    "network",
    "subnet",
    "gateway",
    "dhcp_range_begin",
    "dhcp_range_end",
    "ns_ip",
    "nameserver_ip",
];

/// Luna2's `validate_name`: a name in a path.
fn check_name(what: &str, name: &str) -> Result<(), HttpError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '-')
                || (c == ':' && what == "interface")
        });
    if ok {
        Ok(())
    } else {
        Err(bad_request(format!(
            "Invalid request: {what} name `{}` has characters that are not allowed",
            name.escape_debug()
        )))
    }
}

/// The object at `config.<table>.<name>` of a Luna2 body.
fn object_of(body: &[u8], table: &str, name: &str) -> Result<Map<String, Value>, HttpError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad_request("data is not valid json"))?;
    let incomplete = || {
        bad_request(format!(
            "data structure incomplete or incorrect: expected {{\"config\":{{\"{table}\":{{\"{name}\":{{…}}}}}}}}"
        ))
    };
    let entries = v
        .get("config")
        .and_then(|c| c.get(table))
        .and_then(Value::as_object)
        .ok_or_else(incomplete)?;
    match entries.get(name) {
        Some(Value::Object(o)) => Ok(o.clone()),
        _ => Err(incomplete()),
    }
}

/// Refuses fields with no design counterpart, naming the first.
fn only(fields: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), HttpError> {
    match fields.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad_request(format!(
            "Invalid request: {what} field `{k}` has no counterpart in the design; \
             slipway writes {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A string field (`None` when absent; a non-string is a 400).
fn text(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, HttpError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(bad_request(format!(
            "Invalid request: field `{key}` must be a string"
        ))),
    }
}

/// A text field the luna CLI sends base64-encoded (`comment`): its text,
/// or the value as sent when it is not base64 of UTF-8 text.
fn luna_text(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, HttpError> {
    Ok(text(fields, key)?.map(|s| crate::services::luna2_view::unb64_text(&s).unwrap_or(s)))
}

/// The author of a write: the token's user (a node's token: the node).
fn author(claims: &crate::services::users::Claims) -> String {
    if claims.username.is_empty() {
        claims.sub.clone()
    } else {
        claims.username.clone()
    }
}

/// Presents a write's outcome as Luna2 does.
fn answer(what: &str, name: &str, done: Committed, created_msg: bool) -> Response {
    let created = done.outcomes.contains(&Outcome::Created) && created_msg;
    let mut message = if created {
        format!("{what} {name} created successfully")
    } else if done.outcomes.iter().all(|o| *o == Outcome::Deleted) {
        format!("{what} {name} removed")
    } else {
        format!("{what} {name} updated successfully")
    };
    match (&done.commit, &done.applied) {
        (Some(c), Applied::ReviewBranch) => {
            message.push_str(&format!(" (commit {c} on review branch {})", done.branch))
        }
        (Some(c), Applied::Pending) => message.push_str(&format!(" (commit {c}; not applied yet)")),
        (Some(c), Applied::Refused(d)) => {
            message.push_str(&format!(" (commit {c}; the reconciler refused it: {d})"))
        }
        _ => {}
    }
    if created {
        (StatusCode::CREATED, Json(json!({ "message": message }))).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// A write-back error as Luna2's codes.
fn write_error(e: WriteError) -> HttpError {
    match &e {
        WriteError::Invalid { .. } => bad_request(format!(
            "Invalid request: the design would be invalid; nothing was committed:\n{}",
            e.message_lines().join("\n")
        )),
        WriteError::HeadInvalid { .. } | WriteError::Conflict(_) => {
            HttpError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
        }
        WriteError::Edit(EditError::NotFound { kind, name }) => HttpError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name} is not available", luna_table(*kind)),
        ),
        WriteError::Edit(EditError::Exists { name, .. }) => bad_request(format!(
            "Invalid request: {name} already present in database"
        )),
        WriteError::Edit(EditError::Ambiguous { .. }) => {
            HttpError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
        }
        WriteError::Edit(_) | WriteError::Refused(_) => {
            bad_request(format!("Invalid request: {e}"))
        }
        WriteError::Internal(_) => HttpError::internal(&e),
    }
}

fn luna_table(kind: Kind) -> &'static str {
    match kind {
        Kind::BaremetalNode => "Node",
        Kind::HostProfile => "Group",
        Kind::Network => "Network",
        k => k.name(),
    }
}

/// Commits `edits` for `user`, off the runtime.
async fn commit(
    state: &AppState,
    user: String,
    request: String,
    edits: Vec<Edit>,
) -> Result<Committed, HttpError> {
    let wb = state.writeback.clone();
    blocking(move || wb.edit(&user, &request, edits).map_err(write_error)).await
}

// ---- nodes ---------------------------------------------------------------

/// Where each interface of node `name` is, in the applied design: interface
/// → its first network (the node's host-profile chain applied).
fn node_interfaces_of(state: &AppState, name: &str) -> BTreeMap<String, String> {
    state
        .writeback
        .with_applied(|d| {
            d.effective_nodes()
                .iter()
                .find(|n| n.name == name)
                .map(|n| {
                    // As the read view labels them: the first network under
                    // the interface's name, others as `<if>:<net>`, the BMC.
                    let mut out = BTreeMap::new();
                    for (i, f) in n.interfaces.iter() {
                        for (k, net) in f.networks.iter().flatten().enumerate() {
                            let label = if k == 0 {
                                i.clone()
                            } else {
                                format!("{i}:{net}")
                            };
                            out.insert(label, net.clone());
                        }
                    }
                    if let Some(net) = n.oob.as_ref().and_then(|o| o.network.clone()) {
                        out.insert("BMC".to_string(), net);
                    }
                    out
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// One interface change: the network it is on and what changes.
#[derive(Clone)]
struct IfaceChange {
    network: String,
    /// `Some("")`: remove the address.
    ipaddress: Option<String>,
    macaddress: Option<String>,
}

fn interface_changes(
    list: &Value,
    known: &BTreeMap<String, String>,
) -> Result<Vec<IfaceChange>, HttpError> {
    let items = list.as_array().ok_or_else(|| {
        bad_request("Invalid request: `interfaces` must be a list of interface objects")
    })?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let o = item.as_object().ok_or_else(|| {
            bad_request(format!(
                "Invalid request: interfaces[{i}] must be an object"
            ))
        })?;
        only(o, INTERFACE_FIELDS, &format!("interfaces[{i}]"))?;
        let iface = text(o, "interface")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                bad_request(format!(
                    "Invalid request: interfaces[{i}] needs `interface`"
                ))
            })?;
        let network = match text(o, "network")?.filter(|s| !s.is_empty()) {
            Some(n) => n,
            None => known.get(&iface).cloned().ok_or_else(|| {
                bad_request(format!(
                    "Invalid request: interface {iface} is on no network of the node; give its network"
                ))
            })?,
        };
        out.push(IfaceChange {
            network,
            ipaddress: text(o, "ipaddress")?,
            macaddress: text(o, "macaddress")?,
        });
    }
    Ok(out)
}

/// Applies interface changes to a node's `data`.
fn apply_interfaces(data: &mut Value, changes: &[IfaceChange]) -> Result<(), String> {
    if !data.is_object() {
        *data = json!({});
    }
    for c in changes {
        if let Some(ip) = &c.ipaddress {
            let list = data
                .as_object_mut()
                .expect("an object")
                .entry("addressing")
                .or_insert_with(|| json!([]));
            let list = list
                .as_array_mut()
                .ok_or("the node's addressing is not a list")?;
            let at = list.iter().position(|a| a["network"] == c.network.as_str());
            match (at, ip.is_empty()) {
                (Some(i), true) => {
                    list.remove(i);
                }
                (Some(i), false) => list[i]["address"] = json!(ip),
                (None, false) => list.push(json!({"network": c.network, "address": ip})),
                (None, true) => {}
            }
        }
        if let Some(mac) = &c.macaddress {
            let meta = data
                .as_object_mut()
                .expect("an object")
                .entry("metadata")
                .or_insert_with(|| json!({}));
            let meta = meta
                .as_object_mut()
                .ok_or("the node's metadata is not a mapping")?;
            if mac.is_empty() {
                meta.remove("boot_mac");
            } else {
                meta.insert("boot_mac".into(), json!(mac.to_ascii_lowercase()));
            }
        }
    }
    Ok(())
}

/// Sets or clears (`""`) a string at `data.<path…>`.
fn set_path(data: &mut Value, path: &[&str], value: &str) {
    if !data.is_object() {
        *data = json!({});
    }
    let mut at = data;
    for p in &path[..path.len() - 1] {
        let m = at.as_object_mut().expect("an object");
        let next = m.entry(p.to_string()).or_insert_with(|| json!({}));
        if !next.is_object() {
            *next = json!({});
        }
        at = next;
    }
    let m = at.as_object_mut().expect("an object");
    let last = path[path.len() - 1];
    if value.is_empty() {
        m.remove(last);
    } else {
        m.insert(last.to_string(), json!(value));
    }
}

/// A node's changes, as one closure re-run on every attempt.
fn node_change(fields: &Map<String, Value>, ifaces: Vec<IfaceChange>) -> Result<Change, HttpError> {
    let group = text(fields, "group")?;
    let osimage = text(fields, "osimage")?;
    let mut owner: Vec<(String, String)> = Vec::new();
    if let Some(c) = luna_text(fields, "comment")? {
        owner.push(("comment".into(), c));
    }
    for k in ["vendor", "assettag"] {
        if let Some(v) = text(fields, k)? {
            owner.push((k.into(), v));
        }
    }
    let rack = text(fields, "rack")?;
    if group.as_deref() == Some("") {
        return Err(bad_request("Invalid request: group cannot be empty"));
    }
    Ok(Arc::new(move |f: &mut Fields| {
        if let Some(g) = &group {
            set_path(&mut f.data, &["host_profile"], g);
        }
        if let Some(o) = &osimage {
            set_path(&mut f.data, &["platform", "image"], o);
        }
        for (k, v) in &owner {
            set_path(&mut f.data, &["metadata", "owner_data", k], v);
        }
        if let Some(r) = &rack {
            set_path(&mut f.data, &["metadata", "rack"], r);
        }
        apply_interfaces(&mut f.data, &ifaces)
    }))
}

fn node_exists(state: &AppState, name: &str) -> bool {
    state
        .writeback
        .with_applied(|d| d.node(name).is_some())
        .unwrap_or(false)
}

/// `POST /config/node/{node}`: change (204) or create (201) a node.
async fn node_post(
    State(state): State<AppState>,
    Path(node): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let claims = require_token_for_node(&state, &headers, &node)?;
    check_name("node", &node)?;
    let fields = object_of(&body, "node", &node)?;
    only(&fields, NODE_FIELDS, "node")?;
    if let Some(n) = text(&fields, "name")? {
        if n != node {
            return Err(bad_request(format!(
                "Invalid request: name {n} is not the node of the path ({node})"
            )));
        }
    }
    let known = node_interfaces_of(&state, &node);
    let ifaces = match fields.get("interfaces") {
        Some(list) => interface_changes(list, &known)?,
        None => Vec::new(),
    };
    let rename = text(&fields, "newnodename")?;
    if let Some(n) = &rename {
        check_name("node", n)?;
    }
    let exists = node_exists(&state, &node);
    let mut edits = Vec::new();
    if exists {
        edits.push(Edit::Update {
            kind: Kind::BaremetalNode,
            name: node.clone(),
            change: node_change(&fields, ifaces)?,
        });
        if let Some(to) = &rename {
            edits.push(Edit::Rename {
                kind: Kind::BaremetalNode,
                from: node.clone(),
                to: to.clone(),
            });
        }
    } else {
        if rename.is_some() {
            return Err(bad_request(
                "Invalid request: newnodename is only allowed while update, rename or clone a node",
            ));
        }
        if text(&fields, "group")?.is_none() {
            return Err(bad_request(
                "Invalid request: group name is required for new nodes",
            ));
        }
        let mut f = Fields::default();
        node_change(&fields, ifaces)?(&mut f)
            .map_err(|m| bad_request(format!("Invalid request: {m}")))?;
        edits.push(Edit::Create {
            kind: Kind::BaremetalNode,
            name: node.clone(),
            fields: f,
        });
    }
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: POST /config/node/{node}"),
        edits,
    )
    .await?;
    Ok(answer(
        "Node",
        rename.as_deref().unwrap_or(&node),
        done,
        true,
    ))
}

/// `POST /config/node/{node}/_clone` with `newnodename`: 201. The clone's
/// boot MAC is cleared (as Luna2 does) unless the body gives one, and it
/// gets the next free address of each network the body gives none on.
async fn node_clone(
    State(state): State<AppState>,
    Path(node): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let claims = require_token(&state, &headers)?;
    check_name("node", &node)?;
    let fields = object_of(&body, "node", &node)?;
    only(&fields, NODE_FIELDS, "node")?;
    let to = text(&fields, "newnodename")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_request("Invalid request: newnodename is required to clone a node"))?;
    check_name("node", &to)?;
    let known = node_interfaces_of(&state, &node);
    let mut ifaces = match fields.get("interfaces") {
        Some(list) => interface_changes(list, &known)?,
        None => Vec::new(),
    };
    ifaces.extend(free_addresses(&state, &node, &ifaces).await?);
    let keeps_mac = ifaces.iter().any(|i| i.macaddress.is_some());
    let change = node_change(&fields, ifaces)?;
    let change: Change = Arc::new(move |f: &mut Fields| {
        if !keeps_mac {
            if let Some(m) = f.data.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("boot_mac");
            }
        }
        change(f)
    });
    let edits = vec![Edit::Clone {
        kind: Kind::BaremetalNode,
        from: node.clone(),
        to: to.clone(),
        change: Some(change),
    }];
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: POST /config/node/{node}/_clone"),
        edits,
    )
    .await?;
    Ok(answer("Node", &to, done, true))
}

/// Addresses for a clone of `node`, as Luna2 gives them: on each network the
/// source has a static address on and the body gives none, the network's
/// next free address in the served design (`_nextfreeip`'s answer; nothing
/// is reserved, so two clones at once may pick the same address and the
/// second is refused by validation).
async fn free_addresses(
    state: &AppState,
    node: &str,
    given: &[IfaceChange],
) -> Result<Vec<IfaceChange>, HttpError> {
    let given: Vec<String> = given
        .iter()
        .filter(|c| c.ipaddress.is_some())
        .map(|c| c.network.clone())
        .collect();
    let nets: Vec<String> = state
        .writeback
        .with_applied(|d| {
            d.node(node)
                .map(|n| {
                    n.data
                        .addressing
                        .iter()
                        .flatten()
                        .flatten()
                        .filter(|a| a.address.as_deref().is_some_and(|a| a != "dhcp"))
                        .filter_map(|a| a.network.clone())
                        .filter(|net| !given.contains(net))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if nets.is_empty() {
        return Ok(Vec::new());
    }
    let luna = state.luna.clone();
    blocking(move || {
        let view = luna.view().map_err(HttpError::from)?;
        Ok(nets
            .into_iter()
            .filter_map(|net| {
                let v = view.next_free(&net)??;
                let ip = v["config"]["network"][net.as_str()]["nextip"]
                    .as_str()?
                    .to_string();
                Some(IfaceChange {
                    network: net,
                    ipaddress: Some(ip),
                    macaddress: None,
                })
            })
            .collect())
    })
    .await
}

/// `GET /config/node/{node}/_delete`: 204.
async fn node_delete(
    State(state): State<AppState>,
    Path(node): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let claims = require_token(&state, &headers)?;
    check_name("node", &node)?;
    let edits = vec![Edit::Delete {
        kind: Kind::BaremetalNode,
        name: node.clone(),
    }];
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: GET /config/node/{node}/_delete"),
        edits,
    )
    .await?;
    Ok(answer("Node", &node, done, false))
}

/// `POST /config/node/{node}/interfaces`: 204.
async fn node_interfaces(
    State(state): State<AppState>,
    Path(node): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let claims = require_token(&state, &headers)?;
    check_name("node", &node)?;
    let fields = object_of(&body, "node", &node)?;
    only(&fields, &["name", "interfaces"], "node")?;
    let list = fields
        .get("interfaces")
        .ok_or_else(|| bad_request("Invalid request: interface not provided"))?;
    let ifaces = interface_changes(list, &node_interfaces_of(&state, &node))?;
    let change: Change = Arc::new(move |f: &mut Fields| apply_interfaces(&mut f.data, &ifaces));
    let edits = vec![Edit::Update {
        kind: Kind::BaremetalNode,
        name: node.clone(),
        change,
    }];
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: POST /config/node/{node}/interfaces"),
        edits,
    )
    .await?;
    Ok(answer("Node", &node, done, false))
}

/// `GET /config/node/{node}/interfaces/{interface}/_delete`: the address on
/// the interface's network removed (and the interface, when the node itself
/// defines it); 204.
async fn node_interface_delete(
    State(state): State<AppState>,
    Path((node, iface)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let claims = require_token(&state, &headers)?;
    check_name("node", &node)?;
    check_name("interface", &iface)?;
    let network = node_interfaces_of(&state, &node)
        .get(&iface)
        .cloned()
        .ok_or_else(|| {
            HttpError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("Interface {iface} not present for node {node}"),
            )
        })?;
    let change: Change = Arc::new(move |f: &mut Fields| {
        if let Some(list) = f.data.get_mut("addressing").and_then(Value::as_array_mut) {
            list.retain(|a| a["network"] != network.as_str());
        }
        if let Some(m) = f.data.get_mut("interfaces").and_then(Value::as_object_mut) {
            m.remove(&iface);
        }
        Ok(())
    });
    let edits = vec![Edit::Update {
        kind: Kind::BaremetalNode,
        name: node.clone(),
        change,
    }];
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: GET /config/node/{node}/interfaces/_delete"),
        edits,
    )
    .await?;
    Ok(answer("Node", &node, done, false))
}

// ---- groups (host profiles) ------------------------------------------------

fn group_change(fields: &Map<String, Value>) -> Result<Change, HttpError> {
    let osimage = text(fields, "osimage")?;
    let comment = luna_text(fields, "comment")?;
    Ok(Arc::new(move |f: &mut Fields| {
        if let Some(o) = &osimage {
            set_path(&mut f.data, &["platform", "image"], o);
        }
        if let Some(c) = &comment {
            set_path(&mut f.data, &["metadata", "owner_data", "comment"], c);
        }
        Ok(())
    }))
}

/// Every document whose `host_profile` names `from`, renamed to `to` with it.
fn follow_profile_rename(state: &AppState, from: &str, to: &str) -> Vec<Edit> {
    let names = state
        .writeback
        .with_applied(|d| {
            let mut out = Vec::new();
            for (kind, list) in [
                (Kind::BaremetalNode, &d.nodes),
                (Kind::HostProfile, &d.host_profiles),
            ] {
                for e in list.iter() {
                    if e.data.host_profile.as_deref() == Some(from) {
                        out.push((kind, e.name.clone()));
                    }
                }
            }
            out
        })
        .unwrap_or_default();
    names
        .into_iter()
        .map(|(kind, name)| {
            let (from, to) = (from.to_string(), to.to_string());
            Edit::Update {
                kind,
                name,
                change: Arc::new(move |f: &mut Fields| {
                    if f.data["host_profile"] == from.as_str() {
                        f.data["host_profile"] = json!(to);
                    }
                    Ok(())
                }),
            }
        })
        .collect()
}

/// `POST /config/group/{group}`: change (204) or create (201) a group; a
/// rename (`newgroupname`) moves the nodes and profiles that name it too.
async fn group_post(
    State(state): State<AppState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let claims = require_token(&state, &headers)?;
    check_name("group", &group)?;
    let fields = object_of(&body, "group", &group)?;
    only(&fields, GROUP_FIELDS, "group")?;
    let rename = text(&fields, "newgroupname")?.filter(|s| !s.is_empty());
    if let Some(n) = &rename {
        check_name("group", n)?;
    }
    let exists = state
        .writeback
        .with_applied(|d| d.host_profile(&group).is_some())
        .unwrap_or(false);
    let mut edits = Vec::new();
    if exists {
        edits.push(Edit::Update {
            kind: Kind::HostProfile,
            name: group.clone(),
            change: group_change(&fields)?,
        });
        if let Some(to) = &rename {
            edits.push(Edit::Rename {
                kind: Kind::HostProfile,
                from: group.clone(),
                to: to.clone(),
            });
            edits.extend(follow_profile_rename(&state, &group, to));
        }
    } else {
        if rename.is_some() {
            return Err(bad_request(
                "Invalid request: newgroupname is only allowed while update, rename or clone a group",
            ));
        }
        let mut f = Fields {
            data: json!({}),
            ..Default::default()
        };
        group_change(&fields)?(&mut f).map_err(|m| bad_request(format!("Invalid request: {m}")))?;
        edits.push(Edit::Create {
            kind: Kind::HostProfile,
            name: group.clone(),
            fields: f,
        });
    }
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: POST /config/group/{group}"),
        edits,
    )
    .await?;
    Ok(answer(
        "Group",
        rename.as_deref().unwrap_or(&group),
        done,
        true,
    ))
}

/// `POST /config/group/{group}/_clone` with `newgroupname`: 201.
async fn group_clone(
    State(state): State<AppState>,
    Path(group): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let table = Table {
        kind: Kind::HostProfile,
        word: "group",
        label: "Group",
        fields: GROUP_FIELDS,
        new_name: "newgroupname",
    };
    clone_document(&state, &headers, &body, table, group, group_change).await
}

/// `GET /config/group/{group}/_delete`: 204 (400 while nodes use it:
/// validation names them).
async fn group_delete(
    State(state): State<AppState>,
    Path(group): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    delete_document(&state, &headers, Kind::HostProfile, "group", "Group", group).await
}

// ---- networks ----------------------------------------------------------------

/// A dotted netmask or a prefix length as a prefix length.
fn prefix_of(subnet: &str) -> Option<u8> {
    if let Ok(p) = subnet.parse::<u8>() {
        return (p <= 128).then_some(p);
    }
    let mask: std::net::Ipv4Addr = subnet.parse().ok()?;
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

fn network_change(fields: &Map<String, Value>) -> Result<Change, HttpError> {
    let network = text(fields, "network")?;
    let subnet = text(fields, "subnet")?;
    let gateway = text(fields, "gateway")?;
    let begin = text(fields, "dhcp_range_begin")?;
    let end = text(fields, "dhcp_range_end")?;
    let dns = match text(fields, "ns_ip")? {
        Some(d) => Some(d),
        None => text(fields, "nameserver_ip")?,
    };
    // The read view shows `network` as the CIDR; Luna2's own daemon splits it
    // into `network` and `subnet`. Both are taken.
    let (network, subnet) = match network {
        Some(n) if n.contains('/') => {
            let (a, p) = n.split_once('/').unwrap_or_default();
            (Some(a.to_string()), subnet.or(Some(p.to_string())))
        }
        n => (n, subnet),
    };
    let prefix = match &subnet {
        Some(s) => Some(prefix_of(s).ok_or_else(|| {
            bad_request(format!(
                "Invalid request: subnet `{s}` is neither a prefix length nor a netmask"
            ))
        })?),
        None => None,
    };
    if begin.is_some() != end.is_some() {
        return Err(bad_request(
            "Invalid request: dhcp_range_begin and dhcp_range_end go together",
        ));
    }
    Ok(Arc::new(move |f: &mut Fields| {
        if !f.data.is_object() {
            f.data = json!({});
        }
        if network.is_some() || prefix.is_some() {
            let old = f.data["cidr"].as_str().unwrap_or_default().to_string();
            let (old_net, old_prefix) = old.split_once('/').unwrap_or(("", ""));
            let net = network.clone().unwrap_or_else(|| old_net.to_string());
            let p = prefix
                .map(|p| p.to_string())
                .unwrap_or_else(|| old_prefix.to_string());
            if net.is_empty() || p.is_empty() {
                return Err("a network needs both `network` and `subnet`".into());
            }
            f.data["cidr"] = json!(format!("{net}/{p}"));
        }
        if let Some(g) = &gateway {
            let routes = f
                .data
                .as_object_mut()
                .expect("an object")
                .entry("routes")
                .or_insert_with(|| json!([]));
            let routes = routes
                .as_array_mut()
                .ok_or("the network's routes are not a list")?;
            routes.retain(|r| r["subnet"] != "0.0.0.0/0");
            if !g.is_empty() {
                routes.push(json!({"subnet": "0.0.0.0/0", "gateway": g, "metric": 100}));
            }
        }
        if let (Some(b), Some(e)) = (&begin, &end) {
            let ranges = f
                .data
                .as_object_mut()
                .expect("an object")
                .entry("ranges")
                .or_insert_with(|| json!([]));
            let ranges = ranges
                .as_array_mut()
                .ok_or("the network's ranges are not a list")?;
            ranges.retain(|r| r["type"] != "dhcp");
            if !b.is_empty() {
                ranges.push(json!({"type": "dhcp", "start": b, "end": e}));
            }
        }
        if let Some(d) = &dns {
            set_path(&mut f.data, &["dns", "servers"], d);
        }
        Ok(())
    }))
}

/// `POST /config/network/{network}`: change (204) or create (201) a network.
async fn network_post(
    State(state): State<AppState>,
    Path(net): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let claims = require_token(&state, &headers)?;
    check_name("network", &net)?;
    let fields = object_of(&body, "network", &net)?;
    only(&fields, NETWORK_FIELDS, "network")?;
    let rename = text(&fields, "newnetname")?.filter(|s| !s.is_empty());
    if let Some(n) = &rename {
        check_name("network", n)?;
    }
    let exists = state
        .writeback
        .with_applied(|d| d.network(&net).is_some())
        .unwrap_or(false);
    let mut edits = Vec::new();
    if exists {
        edits.push(Edit::Update {
            kind: Kind::Network,
            name: net.clone(),
            change: network_change(&fields)?,
        });
        if let Some(to) = &rename {
            edits.push(Edit::Rename {
                kind: Kind::Network,
                from: net.clone(),
                to: to.clone(),
            });
        }
    } else {
        if rename.is_some() {
            return Err(bad_request(
                "Invalid request: newnetname is only allowed while update, rename or clone a network",
            ));
        }
        let cidr = text(&fields, "network")?.is_some_and(|n| n.contains('/'));
        if text(&fields, "network")?.is_none() || (!cidr && text(&fields, "subnet")?.is_none()) {
            return Err(bad_request(
                "Invalid request: network and subnet are required for a new network",
            ));
        }
        let mut f = Fields {
            data: json!({}),
            ..Default::default()
        };
        network_change(&fields)?(&mut f)
            .map_err(|m| bad_request(format!("Invalid request: {m}")))?;
        edits.push(Edit::Create {
            kind: Kind::Network,
            name: net.clone(),
            fields: f,
        });
    }
    let done = commit(
        &state,
        author(&claims),
        format!("luna2: POST /config/network/{net}"),
        edits,
    )
    .await?;
    Ok(answer(
        "Network",
        rename.as_deref().unwrap_or(&net),
        done,
        true,
    ))
}

/// `POST /config/network/{network}/_clone` with `newnetname`: 201 (not a route
/// of the real daemon; served for symmetry with nodes and groups).
async fn network_clone(
    State(state): State<AppState>,
    Path(net): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, HttpError> {
    let table = Table {
        kind: Kind::Network,
        word: "network",
        label: "Network",
        fields: NETWORK_FIELDS,
        new_name: "newnetname",
    };
    clone_document(&state, &headers, &body, table, net, network_change).await
}

/// `GET /config/network/{network}/_delete`: 204 (400 while used: validation
/// names the users).
async fn network_delete(
    State(state): State<AppState>,
    Path(net): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    delete_document(&state, &headers, Kind::Network, "network", "Network", net).await
}

/// A Luna2 table written as one kind of design document (groups, networks).
struct Table {
    kind: Kind,
    /// The table's word in paths and bodies (`group`).
    word: &'static str,
    /// Its word in messages (`Group`).
    label: &'static str,
    /// The body fields it takes.
    fields: &'static [&'static str],
    /// The body field naming a clone (`newgroupname`).
    new_name: &'static str,
}

/// `POST /config/{word}/{from}/_clone`: the document copied under the
/// body's new name with the body's other changes, 201.
async fn clone_document(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    t: Table,
    from: String,
    change: fn(&Map<String, Value>) -> Result<Change, HttpError>,
) -> Result<Response, HttpError> {
    let claims = require_token(state, headers)?;
    check_name(t.word, &from)?;
    let fields = object_of(body, t.word, &from)?;
    only(&fields, t.fields, t.word)?;
    let to = text(&fields, t.new_name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad_request(format!(
                "Invalid request: {} is required to clone a {}",
                t.new_name, t.word
            ))
        })?;
    check_name(t.word, &to)?;
    let edits = vec![Edit::Clone {
        kind: t.kind,
        from: from.clone(),
        to: to.clone(),
        change: Some(change(&fields)?),
    }];
    let request = format!("luna2: POST /config/{}/{from}/_clone", t.word);
    let done = commit(state, author(&claims), request, edits).await?;
    Ok(answer(t.label, &to, done, true))
}

/// `GET /config/{word}/{name}/_delete`: the document removed, 204.
async fn delete_document(
    state: &AppState,
    headers: &HeaderMap,
    kind: Kind,
    word: &str,
    label: &str,
    name: String,
) -> Result<Response, HttpError> {
    let claims = require_token(state, headers)?;
    check_name(word, &name)?;
    let edits = vec![Edit::Delete {
        kind,
        name: name.clone(),
    }];
    let request = format!("luna2: GET /config/{word}/{name}/_delete");
    let done = commit(state, author(&claims), request, edits).await?;
    Ok(answer(label, &name, done, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_and_prefixes() {
        assert_eq!(prefix_of("16"), Some(16));
        assert_eq!(prefix_of("255.255.0.0"), Some(16));
        assert_eq!(prefix_of("255.255.255.255"), Some(32));
        assert_eq!(prefix_of("255.0.255.0"), None);
        assert_eq!(prefix_of("x"), None);
    }
}
