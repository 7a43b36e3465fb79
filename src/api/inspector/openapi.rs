//! The inspector dialect's OpenAPI 3.0 document, generated from its route
//! table ([`super::routes`] and Ironic's `/v1/continue_inspection`), served at
//! `GET /v1/openapi/inspector.json` (a slipway addition: inspector publishes none) so
//! the contract run (`scripts/schemathesis.sh`) covers these routes too.

use serde_json::{json, Map, Value};

use crate::api::http::routes::{Group, Route};

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
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if shape == "InspectorError" {
            params.push(json!({"name": "X-OpenStack-Ironic-Inspector-API-Version", "in": "header",
                "required": false, "schema": {"type": "string", "pattern": super::version::header_pattern()}}));
        }
        let mut op = json!({"summary": r.summary, "responses": responses});
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(schema) = &r.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if r.group == Group::Operator {
            op["security"] = json!([{"token": []}, {"bearer": []}]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "slipway (ironic-inspector API 1.18 dialect)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"}
            },
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
