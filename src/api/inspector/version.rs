//! Inspector's API versions (`ironic_inspector/main.py` L49–50, L119–135,
//! L216–233): every response carries the minimum and maximum version; a
//! requested `X-OpenStack-Ironic-Inspector-API-Version` that is not `X.Y`
//! (or `latest`) is a 400, one outside [1.0, 1.18] a 406; none means 1.18.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::http::HttpError;

/// The oldest version served.
pub const MINIMUM: (u64, u64) = (1, 0);
/// The newest version served (inspector's `CURRENT_API_VERSION`).
pub const MAXIMUM: (u64, u64) = (1, 18);

/// The request header naming the wanted version.
pub const VERSION_HEADER: &str = "x-openstack-ironic-inspector-api-version";
/// The response header of the minimum version.
pub const MINIMUM_HEADER: &str = "x-openstack-ironic-inspector-api-minimum-version";
/// The response header of the maximum version.
pub const MAXIMUM_HEADER: &str = "x-openstack-ironic-inspector-api-maximum-version";

/// The two version headers, for any response that carries them (the
/// Ironic dialect's `GET /` and `GET /v1` too).
pub fn headers() -> [(HeaderName, HeaderValue); 2] {
    let v = |(a, b): (u64, u64)| HeaderValue::from_str(&format!("{a}.{b}")).expect("ASCII");
    [
        (HeaderName::from_static(MINIMUM_HEADER), v(MINIMUM)),
        (HeaderName::from_static(MAXIMUM_HEADER), v(MAXIMUM)),
    ]
}

/// What a requested version header means: `Ok` when served, else the error
/// inspector answers.
pub fn check(requested: Option<&[u8]>) -> Result<(), HttpError> {
    let Some(raw) = requested else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.eq_ignore_ascii_case("latest") {
        return Ok(());
    }
    // Python's `tuple(int(x) for x in requested.split('.'))`, compared as
    // tuples: `1` is below 1.0, `1.2.3` inside the range.
    let parts: Option<Vec<i64>> = text.split('.').map(|p| p.trim().parse().ok()).collect();
    let Some(parts) = parts else {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Malformed API version: expected string in form of X.Y",
        ));
    };
    let (min, max) = (
        [MINIMUM.0 as i64, MINIMUM.1 as i64],
        [MAXIMUM.0 as i64, MAXIMUM.1 as i64],
    );
    if parts.as_slice() < &min[..] || parts.as_slice() > &max[..] {
        return Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            format!(
                "Unsupported API version {text}, supported range is {}.{} to {}.{}",
                MINIMUM.0, MINIMUM.1, MAXIMUM.0, MAXIMUM.1
            ),
        ));
    }
    Ok(())
}

/// Route middleware (on each method a route has, so a wrong method is a
/// 405 first): a requested version that is not served is refused.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let requested = req
        .headers()
        .get(VERSION_HEADER)
        .map(|v| v.as_bytes().to_vec());
    match check(requested.as_deref()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Middleware on every inspector route: the two version headers on every
/// response, errors included (inspector's `after_request`).
pub async fn advertise(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    for (name, value) in headers() {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// The requested version header as the OpenAPI document states it: the
/// values served.
pub fn header_pattern() -> &'static str {
    r"^(latest|1\.([0-9]|1[0-8]))$"
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn versions_are_negotiated_as_inspector_does() {
        for ok in [
            None,
            Some("1.0"),
            Some("1.18"),
            Some("latest"),
            Some("LATEST"),
            Some("1.2.3"),
        ] {
            assert!(check(ok.map(str::as_bytes)).is_ok(), "{ok:?}");
        }
        for (bad, code) in [
            ("1.19", 406),
            ("2.0", 406),
            ("0.9", 406),
            ("1", 406),
            ("one.two", 400),
            ("1.x", 400),
            ("", 400),
            ("-1.0", 406),
        ] {
            let e = check(Some(bad.as_bytes())).unwrap_err();
            assert_eq!(e.code().as_u16(), code, "{bad}");
        }
    }
}
