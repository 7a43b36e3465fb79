//! Operator authentication: a layer on the operator sub-router.
//!
//! With a tokens file (`slipway serve --tokens FILE`: one lowercase sha256 hex
//! of a token per line, `#` comments, blank lines ignored; make a line with
//! `printf %s "$TOKEN" | sha256sum`), a request must carry a listed token in
//! `X-Auth-Token` (Drydock's header) or `Authorization: Bearer`; otherwise 401
//! with `WWW-Authenticate`. The comparison hashes the presented token and
//! compares digests in constant time over every listed digest.
//!
//! Without a tokens file, operator routes are served to loopback peers only
//! (the connection's peer address, `ConnectInfo`); others get 403.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::{AppState, HttpError};

/// The accepted token digests.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl Tokens {
    /// Parses a tokens file's text; errors name the offending line.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // `sha256sum` prints "<hex>  -": keep the first field.
            let field = line.split_whitespace().next().unwrap_or("");
            let bytes = hex::decode(field)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    format!(
                        "line {}: expected the sha256 hex of a token (64 hex digits)",
                        i + 1
                    )
                })?;
            digests.push(bytes);
        }
        if digests.is_empty() {
            return Err("no token digest in the file".into());
        }
        Ok(Tokens { digests })
    }

    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    /// Whether `token` hashes to a listed digest (constant time in the token
    /// and over the whole list).
    pub fn accepts(&self, token: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut ok = 0u8;
        for known in &self.digests {
            let diff = known
                .iter()
                .zip(d.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            ok |= u8::from(diff == 0);
        }
        ok == 1
    }
}

/// Whether `ip` is a loopback address, an IPv4 one seen through an IPv6
/// socket (`::ffff:127.0.0.1`) included.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The token a request presents, if any.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why a request is not an operator's, if it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Tokens are configured and none accepted was presented (401).
    NoToken,
    /// No tokens configured and the peer is not loopback (403).
    NotLoopback,
}

/// Whether a request with these headers and extensions comes from an
/// operator: a listed token with `--tokens`, a loopback peer without.
fn operator(
    state: &AppState,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
) -> Result<(), Refusal> {
    match &state.tokens {
        Some(tokens) => presented(headers)
            .is_some_and(|t| tokens.accepts(t))
            .then_some(())
            .ok_or(Refusal::NoToken),
        None => ext
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| is_loopback(c.0.ip()))
            .then_some(())
            .ok_or(Refusal::NotLoopback),
    }
}

/// Whether the request is an operator's, for a public route that shows
/// operators more (`/health/extended`). Never rejects.
pub struct IsOperator(pub bool);

impl axum::extract::FromRequestParts<AppState> for IsOperator {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<IsOperator, Self::Rejection> {
        Ok(IsOperator(
            operator(state, &parts.headers, &parts.extensions).is_ok(),
        ))
    }
}

/// The middleware guarding operator routes.
pub async fn require_operator(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match operator(&state, req.headers(), req.extensions()) {
        Ok(()) => next.run(req).await,
        Err(Refusal::NoToken) => {
            let mut resp = HttpError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "a valid token is required in X-Auth-Token or Authorization: Bearer",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"slipway\""),
            );
            resp
        }
        Err(Refusal::NotLoopback) => HttpError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "operator routes are served to loopback clients only unless the server runs with --tokens",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    /// The whole app on a fresh database, with `tokens`.
    fn app(dir: &Path, tokens: Option<Tokens>) -> axum::Router {
        let store = crate::state::Store::open(&dir.join("db")).unwrap();
        let boot = std::sync::Arc::new(crate::services::BootService::new(
            crate::services::BootConfig {
                repo: dir.to_path_buf(),
                design_dir: None,
                report_url: "http://127.0.0.1:9000/api/v1.0/bootactions/".into(),
                limits: Default::default(),
            },
            crate::keys::Secret::from_bytes([7; crate::keys::SECRET_LEN]),
            crate::state::Store::open(&dir.join("db")).unwrap(),
            Default::default(),
        ));
        let design = crate::services::designs::DesignSource {
            repo: dir.to_path_buf(),
            design_dir: None,
            limits: Default::default(),
        };
        let inventory = crate::services::inventory::Inventory::new(std::sync::Arc::new(
            std::sync::Mutex::new(store),
        ));
        let tasks = crate::services::tasks::TaskEngine::new(
            inventory.connection(),
            boot.clone(),
            Default::default(),
            design.clone(),
        );
        let inspection = std::sync::Arc::new(crate::services::inspection::InspectionService::new(
            crate::services::inspection::InspectionConfig {
                repo: dir.to_path_buf(),
                branch: None,
                design_dir: None,
                proposal_branch: crate::services::inspection::DEFAULT_PROPOSAL_BRANCH.into(),
            },
            boot.clone(),
            inventory.connection(),
            crate::keys::Secret::from_bytes([7; crate::keys::SECRET_LEN]),
            Default::default(),
        ));
        let agents = std::sync::Arc::new(
            crate::services::agents::AgentService::new(
                boot.clone(),
                crate::keys::Secret::from_bytes([7; 32]),
                inventory.connection(),
                Default::default(),
            )
            .unwrap(),
        );
        let writeback = std::sync::Arc::new(crate::services::writeback::WriteBack::new(
            crate::services::writeback::WriteBackConfig {
                repo: dir.to_path_buf(),
                branch: None,
                design_dir: None,
                write_branch: None,
                limits: Default::default(),
                apply_wait: std::time::Duration::ZERO,
            },
            None,
        ));
        let luna = std::sync::Arc::new(crate::services::luna2_view::Luna2Site::new(boot.clone()));
        let power = crate::services::power::NodePower::new(&Default::default()).unwrap();
        let boot_scripts =
            std::sync::Arc::new(crate::services::boot_scripts::BootScriptService::new(
                boot.clone(),
                agents.clone(),
                "http://127.0.0.1:1",
            ));
        let node_status =
            std::sync::Arc::new(crate::services::node_status::NodeStatusService::new(
                boot.clone(),
                inventory.connection(),
            ));
        let power_requests = crate::services::power_requests::PowerRequests::new(power.clone());
        let clusters = std::sync::Arc::new(crate::services::clusters::ClusterService::new(
            Default::default(),
            boot.clone(),
            agents.clone(),
            inventory.connection(),
            writeback.clone(),
            node_status.clone(),
        ));
        crate::api::app(AppState::new(super::super::AppParts {
            clusters,
            boot_scripts,
            node_status,
            power_requests,
            inspection,
            agents,
            inventory,
            tasks,
            status: Default::default(),
            trigger: Default::default(),
            db_path: "db".into(),
            started: std::time::Instant::now(),
            boot,
            design,
            tokens: tokens.map(std::sync::Arc::new),
            metrics: Default::default(),
            max_in_flight: super::super::DEFAULT_MAX_IN_FLIGHT,
            body_timeout: super::super::DEFAULT_BODY_TIMEOUT,
            writeback,
            power,
            luna,
            users: std::sync::Arc::new(crate::services::users::UserService {
                users: crate::services::users::UsersFile::open(&dir.join("users")).unwrap(),
                tokens: crate::services::users::TokenKeys::new(
                    b"test",
                    crate::services::users::DEFAULT_TOKEN_EXPIRY,
                ),
            }),
        }))
    }

    async fn call(app: &axum::Router, path: &str, peer: [u8; 4], token: Option<&str>) -> u16 {
        let mut req = Request::builder().uri(path);
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn without_tokens_operator_routes_are_loopback_only() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), None);
        assert_eq!(
            call(&app, "/api/v1.0/nodes", [10, 1, 2, 3], None).await,
            403
        );
        assert_eq!(
            call(&app, "/api/v1.0/tasks", [192, 168, 0, 9], None).await,
            403
        );
        assert_eq!(
            call(&app, "/api/v1.0/nodes", [127, 0, 0, 1], None).await,
            200
        );
        // Public routes answer anyone.
        assert_eq!(call(&app, "/versions", [10, 1, 2, 3], None).await, 200);
        assert_eq!(
            call(&app, "/api/v1.0/openapi.json", [10, 1, 2, 3], None).await,
            200
        );
    }

    #[tokio::test]
    async fn with_tokens_any_peer_with_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let d = hex::encode(Sha256::digest(b"tok"));
        let app = app(dir.path(), Some(Tokens::parse(&d).unwrap()));
        assert_eq!(
            call(&app, "/api/v1.0/nodes", [10, 1, 2, 3], Some("tok")).await,
            200
        );
        assert_eq!(
            call(&app, "/api/v1.0/nodes", [127, 0, 0, 1], None).await,
            401
        );
        assert_eq!(
            call(&app, "/api/v1.0/nodes", [10, 1, 2, 3], Some("nope")).await,
            401
        );
    }

    #[test]
    fn ipv4_mapped_loopback_is_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(is_loopback(ip("127.0.0.1")));
        assert!(is_loopback(ip("127.1.2.3")));
        assert!(is_loopback(ip("::1")));
        assert!(is_loopback(ip("::ffff:127.0.0.1")));
        assert!(is_loopback(ip("::ffff:127.9.9.9")));
        assert!(!is_loopback(ip("::ffff:10.1.2.3")));
        assert!(!is_loopback(ip("10.1.2.3")));
        assert!(!is_loopback(ip("::")));
        assert!(!is_loopback(ip("fe80::1")));
    }

    #[tokio::test]
    async fn operator_routes_answer_an_ipv4_mapped_loopback_peer() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), None);
        let call6 = |peer: &str| {
            let mut req = Request::builder()
                .uri("/api/v1.0/nodes")
                .body(Body::empty())
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 40000)));
            let app = app.clone();
            async move { app.oneshot(req).await.unwrap().status().as_u16() }
        };
        assert_eq!(call6("::ffff:127.0.0.1").await, 200);
        assert_eq!(call6("::1").await, 200);
        assert_eq!(call6("::ffff:10.1.2.3").await, 403);
    }

    #[tokio::test]
    async fn extended_health_is_redacted_for_a_peer_that_is_not_an_operator() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), None);
        let view = |peer: [u8; 4]| {
            let mut req = Request::builder()
                .uri("/api/v1.0/health/extended")
                .body(Body::empty())
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
            let app = app.clone();
            async move {
                let r = app.oneshot(req).await.unwrap();
                let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
                serde_json::from_slice::<serde_json::Value>(&b).unwrap()
            }
        };
        let public = view([10, 1, 2, 3]).await;
        assert_eq!(public["redacted"], true, "{public}");
        assert!(public.get("db").is_none(), "{public}");
        let operator = view([127, 0, 0, 1]).await;
        assert_eq!(operator["db"], "db", "{operator}");
        assert!(operator.get("redacted").is_none(), "{operator}");
    }

    #[test]
    fn tokens_file() {
        let d = hex::encode(Sha256::digest(b"s3cret"));
        let t = Tokens::parse(&format!("# ops\n\n{d}  -\n")).unwrap();
        assert!(t.accepts("s3cret"));
        assert!(!t.accepts("s3cre"));
        assert!(!t.accepts(""));
        assert!(Tokens::parse("# nothing\n").is_err());
        assert!(Tokens::parse("abc\n").unwrap_err().contains("line 1"));
    }
}
