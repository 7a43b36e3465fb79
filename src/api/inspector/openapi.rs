//! The inspector dialect's OpenAPI 3.0 document, generated from its route
//! table ([`super::routes`] and Ironic's `/v1/continue_inspection`), served at
//! `GET /v1/openapi/inspector.json` (a slipway addition: inspector publishes none) so
//! the contract run (`scripts/schemathesis.sh`) covers these routes too.

use serde_json::{json, Map, Value};

use crate::api::http::routes::{self, Group, Route};

fn document(routes: Vec<(Route, &'static str)>) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (r, shape) in routes {
        let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{shape}")}}}});
        let mut responses = Map::new();
        for code in r.ok {
            responses.insert(
                code.to_string(),
                json!({"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}}),
            );
        }
        // Any route: a wrong method, a target over 8 KiB, a server fault; the
        // inspector's routes also 400/406 on a requested version.
        let mut errors: Vec<u16> = vec![405, 414, 500, 503];
        if shape == "InspectorError" {
            errors.extend([400, 406]);
        }
        if r.group == Group::Operator {
            errors.extend([401, 403]);
        }
        if r.body.is_some() || r.path.contains('{') {
            errors.extend([400, 404]);
        }
        if r.body.is_some() {
            errors.extend([404, 408, 413]);
        }
        if r.method == "POST" && r.path.starts_with("/v1/introspection") {
            errors.push(400);
        }
        for code in errors {
            responses.insert(code.to_string(), error.clone());
        }
        let mut more = Vec::new();
        if shape == "InspectorError" {
            more.push(json!({"name": "X-OpenStack-Ironic-Inspector-API-Version", "in": "header",
                "required": false, "schema": {"type": "string", "pattern": super::version::header_pattern()}}));
        }
        let op = routes::operation(&r, responses, more);
        routes::add_operation(&mut paths, &r, op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "slipway (ironic-inspector API 1.18 dialect)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": routes::security_schemes(),
            "schemas": {
                "InspectorError": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["message"],
                        "properties": {"message": {"type": "string"}}}}
                },
                "IronicError": {
                    "type": "object", "required": ["error_message"],
                    "properties": {"error_message": {"type": "string"}}
                }
            }
        }
    })
}

/// The document.
pub fn spec() -> Value {
    let mut routes: Vec<(Route, &'static str)> = super::routes()
        .into_iter()
        .filter(|r| r.path != "/v1/openapi/inspector.json")
        .map(|r| (r, "InspectorError"))
        .collect();
    routes.extend(
        super::continue_inspection::routes()
            .into_iter()
            .map(|r| (r, "IronicError")),
    );
    document(routes)
}

/// `GET /v1/openapi/inspector.json`.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(spec())
}
