//! The OpenAPI document of the Ironic agent dialect, generated from its
//! route table ([`super::routes`]) and served at `GET /v1/openapi/ironic.json`
//! (slipway's own addition: Ironic serves none) for the schemathesis
//! contract run. Every error is Ironic's `error_message` body.

use serde_json::{json, Map, Value};

use super::JSON;

/// The query parameters of a route, as the spec states them.
fn query(path: &str) -> Vec<Value> {
    match path {
        "/v1/lookup" => vec![
            json!({"name": "addresses", "in": "query", "required": false,
                   "schema": {"type": "string"}, "description": "the agent's MACs, comma-separated"}),
            json!({"name": "node_uuid", "in": "query", "required": false,
                   "schema": {"type": "string"}, "description": "the node's UUID (or name)"}),
        ],
        _ => Vec::new(),
    }
}

/// The spec.
pub fn spec() -> Value {
    let error = json!({"$ref": "#/components/schemas/IronicError"});
    let mut paths: Map<String, Value> = Map::new();
    for r in super::routes() {
        let mut responses = Map::new();
        for code in r.ok {
            let body = if *code == 202 {
                json!({"description": "accepted, no body"})
            } else {
                json!({"description": "success", "content": {JSON: {"schema": {"type": "object"}}}})
            };
            responses.insert(code.to_string(), body);
        }
        // Any route: a wrong method, a target over 8 KiB, a server fault,
        // no design served yet (503).
        let mut errors: Vec<u16> = vec![405, 414, 500, 503];
        errors.extend(r.extra);
        if r.body.is_some() {
            errors.extend([400, 404, 408, 413]);
        }
        for code in errors {
            responses.insert(
                code.to_string(),
                json!({"description": "Ironic's error body", "content": {JSON: {"schema": error}}}),
            );
        }
        let op = crate::api::http::routes::operation(&r, responses, query(r.path));
        crate::api::http::routes::add_operation(&mut paths, &r, op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "slipway (Ironic agent dialect: what ironic-python-agent calls)",
                 "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": {"IronicError": {
            "type": "object",
            "required": ["error_message"],
            "properties": {"error_message": {"type": "string",
                "description": "the JSON text of {faultstring, faultcode, debuginfo}"}}
        }}}
    })
}

/// `GET /v1/openapi/ironic.json`.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(spec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_in_the_spec_with_ironics_error_body() {
        let spec = spec();
        for r in super::super::routes() {
            let op = &spec["paths"][r.path][r.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {}", r.method, r.path);
            for code in r.ok {
                assert!(op["responses"][code.to_string()].is_object());
            }
        }
        let heartbeat = &spec["paths"]["/v1/heartbeat/{node_ident}"]["post"];
        assert_eq!(
            heartbeat["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/IronicError"
        );
        assert!(heartbeat["requestBody"].is_object());
    }
}
