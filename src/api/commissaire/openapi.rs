//! The OpenAPI document of the Commissaire dialect, generated from its route
//! table ([`super::routes`]) and served at `GET /api/v0/openapi.json`
//! (slipway's own addition: Commissaire serves none) for the schemathesis
//! contract run. Every error is Commissaire's `text/html` reason phrase.

use serde_json::{json, Map, Value};

use super::JSON;

/// The spec.
pub fn spec() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in super::routes() {
        let mut responses = Map::new();
        for code in r.ok {
            responses.insert(
                code.to_string(),
                json!({"description": "success", "content": {JSON: {"schema": {}}}}),
            );
        }
        // Any route: failed authentication, a wrong method, a target over
        // 8 KiB, a server fault, no design served yet.
        let mut errors: Vec<u16> = if r.path == super::OPENAPI_PATH {
            vec![405, 414, 500]
        } else {
            vec![403, 405, 414, 500, 503]
        };
        errors.extend(r.extra);
        if r.body.is_some() {
            errors.extend([400, 408, 413]);
        }
        errors.sort_unstable();
        errors.dedup();
        for code in errors {
            responses.insert(
                code.to_string(),
                json!({"description": "Commissaire's error: the reason phrase",
                       "content": {"text/html": {"schema": {"type": "string"}}}}),
            );
        }
        let mut op = crate::api::http::routes::operation(&r, responses, Vec::new());
        if r.path != super::OPENAPI_PATH {
            op["security"] = json!([{"basic": []}, {"token": []}, {"bearer": []}]);
        }
        crate::api::http::routes::add_operation(&mut paths, &r, op);
    }
    let mut schemes = crate::api::http::routes::security_schemes();
    schemes["basic"] = json!({"type": "http", "scheme": "basic",
        "description": "any user name; the password is an operator token"});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "slipway (Commissaire dialect: what commctl calls)",
                 "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"securitySchemes": schemes},
    })
}

/// `GET /api/v0/openapi.json`.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(spec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_in_the_spec_with_commissaires_error_body() {
        let spec = spec();
        for r in super::super::routes() {
            let op = &spec["paths"][r.path][r.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", r.method, r.path);
            if r.path != super::super::OPENAPI_PATH {
                assert!(op["responses"]["403"]["content"]["text/html"].is_object());
            }
        }
    }
}
