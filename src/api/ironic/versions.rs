//! Ironic's API versions: the headers on every answer, the 406 rules
//! (`ironic/api/controllers/v1/__init__.py`, `base.py`; dialects §1.2) and
//! the version documents, `GET /` (shared with ironic-inspector: its two
//! version headers too) and `GET /v1`.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::api::http::versions::{
    text, INSPECTOR_MAX, INSPECTOR_MAX_HEADER, INSPECTOR_MIN, INSPECTOR_MIN_HEADER, IRONIC_MAX,
    IRONIC_MAX_HEADER, IRONIC_MIN, IRONIC_MIN_HEADER, IRONIC_VERSION_HEADER,
};
use crate::api::http::HttpError;

/// The version a request asks for, by Ironic's rules: no header → the
/// minimum; `latest` → the maximum; anything but `1.N` with N in range →
/// `Err` (406 with Ironic's message).
pub fn requested(headers: &HeaderMap) -> Result<(u32, u32), String> {
    let Some(v) = headers.get(IRONIC_VERSION_HEADER) else {
        return Ok(IRONIC_MIN);
    };
    let raw = v.to_str().unwrap_or("").trim();
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(IRONIC_MAX);
    }
    let parts: Vec<Option<u32>> = raw.split('.').map(|p| p.parse().ok()).collect();
    let (major, minor) = match parts.as_slice() {
        [Some(a), Some(b)] => (*a, *b),
        _ => {
            return Err(format!(
                "Invalid value for {} header",
                "X-OpenStack-Ironic-API-Version"
            ))
        }
    };
    let range = format!("[{}, {}]", text(IRONIC_MIN), text(IRONIC_MAX));
    if major != IRONIC_MAX.0 {
        return Err(format!(
            "Mutually exclusive versions requested. Version {major}.{minor} requested but not \
             supported by this service. The supported version range is: {range}."
        ));
    }
    if (major, minor) < IRONIC_MIN || (major, minor) > IRONIC_MAX {
        return Err(format!(
            "Version {major}.{minor} was requested but the minor version is not supported by \
             this service. The supported version range is: {range}."
        ));
    }
    Ok((major, minor))
}

fn put(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(name, v);
    }
}

/// Middleware on every Ironic route: Ironic's three version headers on the
/// answer; under `/v1` a requested version outside the range is a 406
/// (Ironic's root document checks none). `GET /` and `GET /v1` also carry
/// the inspector's headers: the inspector client reads them there (from
/// `/v1` when its URL ends in `/v1`), and both paths are served once for
/// both dialects.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let root = path == "/";
    let shared = root || path == "/v1" || path == "/v1/";
    let asked = requested(req.headers());
    let (mut resp, version) = match asked {
        Ok(v) => (next.run(req).await, v),
        Err(_) if root => (next.run(req).await, IRONIC_MIN),
        Err(message) => (
            HttpError::new(StatusCode::NOT_ACCEPTABLE, "NotAcceptable", message).into_response(),
            IRONIC_MIN,
        ),
    };
    let h = resp.headers_mut();
    put(h, IRONIC_MIN_HEADER, text(IRONIC_MIN));
    put(h, IRONIC_MAX_HEADER, text(IRONIC_MAX));
    put(h, IRONIC_VERSION_HEADER, text(version));
    if shared {
        put(h, INSPECTOR_MIN_HEADER, text(INSPECTOR_MIN));
        put(h, INSPECTOR_MAX_HEADER, text(INSPECTOR_MAX));
    }
    resp
}

/// The base URL of links: the request's `Host` (the address the client used).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn link(href: String, rel: &str) -> Value {
    json!({"href": href, "rel": rel})
}

fn v1_version(base: &str) -> Value {
    json!({
        "id": "v1",
        "links": [link(format!("{base}/v1/"), "self")],
        "status": "CURRENT",
        "min_version": text(IRONIC_MIN),
        "version": text(IRONIC_MAX),
    })
}

/// `GET /`: Ironic's root document (`ironic/api/controllers/root.py`), with
/// `default_version.version` = the maximum, which IPA reads to choose the
/// version it speaks.
pub async fn root(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    let v1 = v1_version(&base);
    Json(json!({
        "name": "OpenStack Ironic API",
        "description": "Ironic is an OpenStack project which enables the provision and \
                        management of baremetal machines. (Served by slipway from the applied \
                        design: the agent's lookup and heartbeat, and ironic-inspector.)",
        "default_version": v1,
        "versions": [v1],
    }))
}

/// `GET /v1`: Ironic's v1 document, listing only the resources served.
pub async fn v1(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    let resource = |name: &str| {
        json!([
            link(format!("{base}/v1/{name}/"), "self"),
            link(format!("{base}/{name}/"), "bookmark")
        ])
    };
    Json(json!({
        "id": "v1",
        "links": [link(format!("{base}/v1/"), "self")],
        "media_types": [{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}],
        "lookup": resource("lookup"),
        "heartbeat": resource("heartbeat"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(v: Option<&str>) -> Result<(u32, u32), String> {
        let mut h = HeaderMap::new();
        if let Some(v) = v {
            h.insert(IRONIC_VERSION_HEADER, HeaderValue::from_str(v).unwrap());
        }
        requested(&h)
    }

    #[test]
    fn versions_follow_ironics_rules() {
        assert_eq!(asked(None), Ok((1, 1)));
        assert_eq!(asked(Some("latest")), Ok(IRONIC_MAX));
        assert_eq!(asked(Some("1.62")), Ok((1, 62)));
        assert_eq!(asked(Some("1.68")), Ok((1, 68)));
        assert!(asked(Some("1.69"))
            .unwrap_err()
            .contains("minor version is not supported"));
        assert!(asked(Some("1.0")).is_err());
        assert!(asked(Some("2.1"))
            .unwrap_err()
            .contains("Mutually exclusive"));
        assert!(asked(Some("1")).unwrap_err().contains("Invalid value"));
        assert!(asked(Some("one.two")).is_err());
        assert!(asked(Some("1.2.3")).is_err());
    }
}
