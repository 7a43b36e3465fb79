//! Drydock's route table (its routes are built from it by
//! [`crate::api::http::routes::router`]), and the OpenAPI 3 document
//! generated from it (`GET /api/v1.0/openapi.json`): the spec cannot list a
//! route the router lacks, nor miss one it has.

use axum::routing::{get, post};
use serde_json::{json, Map, Value};

use super::{
    bootactions, bootdata, builddata, health, hooks, metrics, nodes, power, revisions, tasks,
    validation,
};
use crate::api::http::routes::{Group, Route};

fn filter_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["filter_set_type"],
        "properties": {
            "filter_set_type": {"type": "string", "enum": ["union", "intersection"]},
            "filter_set": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["filter_type"],
                "properties": {
                    "filter_type": {"type": "string", "enum": ["union", "intersection"]},
                    "node_names": {"type": "array", "items": {"type": "string"}},
                    "node_tags": {"type": "array", "items": {"type": "string"}},
                    "node_labels": {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}},
                    "rack_names": {"type": "array", "items": {"type": "string"}},
                    "rack_labels": {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}}
                }
            }}
        }
    })
}

/// A schema that also admits `null` (OpenAPI 3.0 `nullable`).
fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = Value::Bool(true);
    schema
}

/// The media type of most responses.
const JSON: &str = "application/json";

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    use Group::*;
    let r = |method, path, group, summary, body, ok, handler| Route {
        method,
        path,
        group,
        summary,
        body,
        ok,
        handler,
        extra: &[],
        bootaction_key: false,
        limited: false,
        produces: JSON,
    };
    // Routes nodes call themselves: no operator token, the node's key instead.
    let node = |method, path, summary, body, ok, extra, handler| Route {
        method,
        path,
        group: Public,
        summary,
        body,
        ok,
        handler,
        extra,
        bootaction_key: true,
        limited: true,
        produces: JSON,
    };
    let report_body = || {
        json!({"type": "object", "properties": {
            "status": {"type": "string", "enum": ["Success", "Failure", "success", "failure"]},
            "details": {"type": "array", "items": {"type": "object", "required": ["message", "error"],
                "properties": {"message": {"type": "string"}, "error": {"type": "boolean"}}}}}})
    };
    vec![
        node(
            "GET",
            "/api/v1.0/bootactions/nodes/{hostname}/{kind}",
            "a node's boot data: units, files, all (gzipped tar) or pkg_list (JSON)",
            None,
            &[200, 304],
            &[401, 403, 429],
            get(bootdata::node_bootdata),
        ),
        node(
            "GET",
            "/api/v1.0/bootdata/{hostname}/{kind}",
            "alias of the boot-data route (units or files)",
            None,
            &[200, 304],
            &[401, 403, 429],
            get(bootdata::bootdata_alias),
        ),
        node(
            "POST",
            "/api/v1.0/bootactions/{action_id}",
            "a boot action's status report",
            Some(report_body()),
            &[200],
            &[401, 403, 409, 429],
            post(bootactions::report),
        ),
        node(
            "POST",
            "/api/v1.0/bootaction/{action_id}",
            "alias of the status report route",
            Some(report_body()),
            &[200],
            &[401, 403, 409, 429],
            post(bootactions::report),
        ),
        r(
            "GET",
            "/api/v1.0/nodes/{hostname}/identity",
            Operator,
            "a node's identity key and actions for its current deployment",
            None,
            &[200],
            get(bootdata::identity),
        ),
        r(
            "GET",
            "/api/v1.0/nodes/{hostname}/builddata",
            Operator,
            "a node's build data (boot-action reports), ?latest=true for the newest per generator",
            None,
            &[200],
            get(builddata::builddata),
        ),
        r(
            "GET",
            "/versions",
            Public,
            "API versions",
            None,
            &[200],
            get(health::versions),
        ),
        r(
            "GET",
            "/api/v1.0/health",
            Public,
            "204 when serving an applied revision",
            None,
            &[204, 503],
            get(health::health),
        ),
        r(
            "GET",
            "/api/v1.0/health/extended",
            Public,
            "server and reconciler status",
            None,
            &[200],
            get(health::extended),
        ),
        Route {
            produces: "text/plain",
            ..r(
                "GET",
                "/metrics",
                Public,
                "Prometheus metrics (text exposition format 0.0.4)",
                None,
                &[200],
                get(metrics::metrics),
            )
        },
        r(
            "GET",
            "/api/v1.0/openapi.json",
            Public,
            "this document",
            None,
            &[200],
            get(openapi),
        ),
        r(
            "GET",
            "/api/v1.0/revisions",
            Operator,
            "revisions seen, newest first",
            None,
            &[200],
            get(revisions::list),
        ),
        r(
            "POST",
            "/api/v1.0/hooks/git",
            Operator,
            "reconcile now",
            None,
            &[202],
            post(hooks::git),
        ),
        r(
            "POST",
            "/api/v1.0/validatedesign",
            Operator,
            "validate a design",
            Some(
                json!({"type": "object", "required": ["href"], "properties": {
                "rel": {"type": "string"}, "href": {"type": "string", "minLength": 1}, "type": {"type": "string"}}}),
            ),
            &[200],
            post(validation::validate),
        ),
        r(
            "POST",
            "/api/v1.0/nodefilter",
            Operator,
            "nodes a filter selects",
            Some(
                json!({"type": "object", "required": ["design_ref"], "properties": {
                "design_ref": {"type": "string", "minLength": 1}, "node_filter": nullable(filter_schema())}}),
            ),
            &[200],
            post(nodes::nodefilter),
        ),
        r(
            "GET",
            "/api/v1.0/nodes",
            Operator,
            "nodes of the applied revision",
            None,
            &[200],
            get(nodes::list),
        ),
        r(
            "GET",
            "/api/v1.0/nodes/{hostname}",
            Operator,
            "one node of the applied revision",
            None,
            &[200],
            get(nodes::get),
        ),
        Route {
            extra: &[404, 409, 502, 503],
            ..r(
                "GET",
                "/api/v1.0/nodes/{hostname}/power",
                Operator,
                "a node's power state, read from its BMC now, and its recent power operations",
                None,
                &[200],
                get(power::get),
            )
        },
        Route {
            extra: &[400, 404, 409, 502, 503],
            ..r(
                "POST",
                "/api/v1.0/nodes/{hostname}/power",
                Operator,
                "runs a power action on a node through its BMC; answers when it is done",
                Some(power::body_schema()),
                &[200],
                post(power::post),
            )
        },
        r(
            "POST",
            "/api/v1.0/nodes/{hostname}/agent-token/reset",
            Operator,
            "the node's next Ironic agent lookup gets a fresh agent token",
            None,
            &[202],
            post(nodes::reset_agent_token),
        ),
        r(
            "GET",
            "/api/v1.0/tasks",
            Operator,
            "every task",
            None,
            &[200],
            get(tasks::list),
        ),
        r(
            "POST",
            "/api/v1.0/tasks",
            Operator,
            "create a task",
            Some(
                json!({"type": "object", "required": ["action"], "properties": {
                "action": {"type": "string", "enum": crate::services::tasks::ACTIONS},
                "design_ref": {"type": "string", "nullable": true}, "node_filter": nullable(filter_schema())}}),
            ),
            &[201],
            post(tasks::create),
        ),
        r(
            "GET",
            "/api/v1.0/tasks/{task_id}",
            Operator,
            "one task",
            None,
            &[200],
            get(tasks::get),
        ),
    ]
}

/// The OpenAPI 3.0 document of [`routes`].
pub fn spec() -> Value {
    let status = json!({"$ref": "#/components/schemas/Status"});
    let mut paths: Map<String, Value> = Map::new();
    for r in routes() {
        let mut responses = Map::new();
        for code in r.ok {
            let body = if *code == 204 {
                json!({"description": "no content"})
            } else if r.produces == JSON {
                json!({"description": "success", "content": {"application/json": {"schema": {}}}})
            } else {
                json!({"description": "success", "content": {r.produces: {"schema": {"type": "string"}}}})
            };
            responses.insert(code.to_string(), body);
        }
        // Any route: a wrong method, a target over 8 KiB, a server fault
        // (a panic included) — each a Status.
        let mut errors: Vec<u16> = vec![405, 414, 500];
        errors.extend(r.extra);
        if r.group == Group::Operator {
            errors.extend([401, 403]);
        }
        if r.body.is_some() || r.path.contains('{') {
            errors.extend([400, 404]);
        }
        if r.body.is_some() {
            // Too large, or not all sent within --body-timeout.
            errors.extend([408, 413]);
        }
        if r.path.contains('{') {
            errors.push(404);
        }
        for code in errors {
            let mut error = json!({"description": "Drydock Status", "content": {"application/json": {"schema": status}}});
            if code == 429 {
                error["headers"] = json!({"Retry-After": {"description": "seconds to wait before retrying",
                    "schema": {"type": "integer"}}});
            }
            responses.insert(code.to_string(), error);
        }
        let mut more = Vec::new();
        if r.bootaction_key {
            more.push(json!({"name": "X-Bootaction-Key", "in": "header", "required": false,
                "schema": {"type": "string"}, "description": "the node's identity key (or the action's key), 64 hex"}));
        }
        let op = crate::api::http::routes::operation(&r, responses, more);
        crate::api::http::routes::add_operation(&mut paths, &r, op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "slipway (Drydock API v1.0 dialect)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": crate::api::http::routes::security_schemes(),
            "schemas": {"Status": {
                "type": "object",
                "required": ["kind", "apiVersion", "status", "message", "reason", "code"],
                "properties": {
                    "kind": {"type": "string"}, "apiVersion": {"type": "string"},
                    "metadata": {"type": "object"}, "status": {"type": "string"},
                    "message": {"type": "string"}, "reason": {"type": "string"},
                    "code": {"type": "integer"}
                }
            }}
        }
    })
}

/// `GET /api/v1.0/openapi.json`.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(spec())
}
