//! The OpenAPI document of the Luna2 dialect, generated from its route table
//! ([`super::routes`]) and served at `GET /openapi/luna2.json` (slipway's own
//! addition: Luna2 serves none) for the schemathesis contract run. Every
//! error is Luna2's `{"message"}` body; the routes that need a token name the
//! `x-access-tokens` scheme.

use axum::routing::get;
use serde_json::{json, Map, Value};

use super::{route, JSON};
use crate::api::http::routes::Route;

/// The path of the document.
pub const PATH: &str = "/openapi/luna2.json";

/// The document's route.
pub fn routes() -> Vec<Route> {
    vec![route(
        "GET",
        PATH,
        "OpenAPI document of the Luna2 routes (slipway's own; Luna2 serves none)",
        None,
        &[200],
        &[],
        get(openapi),
    )]
}

/// Whether a route needs no token: sessions, the version, this document,
/// the boot scripts a booting machine asks for (not its installer) and the
/// monitor reads.
fn public(method: &str, path: &str) -> bool {
    matches!(path, "/token" | "/version")
        || path == PATH
        || (path.starts_with("/boot") && !path.starts_with("/boot/install/"))
        || (method == "GET" && path.starts_with("/monitor/"))
}

/// The spec.
pub fn spec() -> Value {
    let error = json!({"$ref": "#/components/schemas/LunaError"});
    let mut paths: Map<String, Value> = Map::new();
    // A catch-all (`{*rest}`) has no OpenAPI form.
    for r in super::routes()
        .into_iter()
        .filter(|r| !r.path.contains('*'))
    {
        let mut responses = Map::new();
        for code in r.ok {
            let schema = if r.produces == JSON {
                json!({"type": "object"})
            } else {
                json!({"type": "string"})
            };
            let answer = if *code == 204 {
                json!({"description": "success, no body"})
            } else {
                json!({"description": "success", "content": {r.produces: {"schema": schema}}})
            };
            responses.insert(code.to_string(), answer);
        }
        // Any route: a wrong method, a bad path segment, a target over
        // 8 KiB, a server fault, no design served yet.
        let mut errors: Vec<u16> = vec![400, 405, 414, 500, 503];
        errors.extend(r.extra);
        if !public(r.method, r.path) {
            errors.extend([401, 403]);
        }
        if r.body.is_some() {
            errors.extend([408, 413]);
        }
        for code in errors {
            if code == 501 {
                // A BMC call that failed: Luna2's `{"control": {…}}` (control.rs).
                responses.insert(
                    code.to_string(),
                    json!({"description": "the BMC call failed", "content": {JSON: {"schema":
                        {"type": "object", "required": ["control"]}}}}),
                );
                continue;
            }
            responses.insert(
                code.to_string(),
                json!({"description": "Luna2's error body", "content": {JSON: {"schema": error}}}),
            );
        }
        let mut op = crate::api::http::routes::operation(&r, responses, Vec::new());
        if !public(r.method, r.path) {
            op["security"] = json!([{"luna": []}]);
        }
        // Names as Luna2's validate_name accepts them (a node may also be a
        // hostlist; an address is an address).
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for p in params {
                let pattern = match p["name"].as_str() {
                    Some("node") if r.path.starts_with("/config/") => {
                        r"^[A-Za-z0-9._\[\],-]{1,255}$"
                    }
                    Some("mac") => r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$",
                    Some("action") if r.path.starts_with("/control/") => r"^_[a-z]{1,32}$",
                    Some("ip") => continue,
                    Some("interface") => r"^[A-Za-z0-9._:-]{1,255}$",
                    _ => r"^[A-Za-z0-9._-]{1,255}$",
                };
                p["schema"]["pattern"] = json!(pattern);
            }
        }
        crate::api::http::routes::add_operation(&mut paths, &r, op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "slipway (Luna2 dialect: what Luna2's CLI, lpower and scripts call)",
                 "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": {"LunaError": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}}
            }},
            "securitySchemes": {"luna": {"type": "apiKey", "in": "header", "name": "x-access-tokens"}}
        }
    })
}

/// `GET /openapi/luna2.json`.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(spec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_but_the_catch_all_is_in_the_spec_with_luna_errors_and_its_token() {
        let spec = spec();
        for r in super::super::routes() {
            let op = &spec["paths"][r.path][r.method.to_ascii_lowercase()];
            if r.path.contains('*') {
                assert!(op.is_null());
                continue;
            }
            assert!(op.is_object(), "{} {}", r.method, r.path);
            assert_eq!(
                op["responses"]["400"]["content"][JSON]["schema"]["$ref"],
                "#/components/schemas/LunaError"
            );
            assert_eq!(
                op["security"].is_array(),
                !public(r.method, r.path),
                "{}",
                r.path
            );
        }
    }
}
