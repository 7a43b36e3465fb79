//! The Redfish driver: the ComputerSystem's `PowerState`, its
//! `#ComputerSystem.Reset` action with the `ResetType`s it advertises, the `Boot`
//! override and the identify LED, over HTTPS (or HTTP) with Basic auth. The only
//! user of `reqwest` (rustls: no OpenSSL development package needed to build).

use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, ETAG, IF_MATCH};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{json, Value};

use super::target::host_for_url;
use super::{
    BootDevice, Done, FailureKind, PowerConfig, PowerError, PowerOp, PowerSetupError, PowerState,
};
use crate::power::{BmcTarget, Scheme};

const SYSTEMS: &str = "/redfish/v1/Systems";

/// Two HTTP clients (connection pools): verifying certificates, and not, for sites
/// that switch verification off.
pub(crate) struct Redfish {
    verifying: Client,
    trusting: Client,
}

impl Redfish {
    pub(crate) fn new(cfg: &PowerConfig) -> Result<Redfish, PowerSetupError> {
        let extra = match &cfg.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| PowerSetupError::CaFile {
                    path: path.clone(),
                    detail: format!("cannot read it: {e}"),
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    PowerSetupError::CaFile {
                        path: path.clone(),
                        detail: format!("expected PEM certificates, found an error: {e}"),
                    }
                })?;
                if certs.is_empty() {
                    return Err(PowerSetupError::CaFile {
                        path: path.clone(),
                        detail: "expected PEM certificates, found none".to_string(),
                    });
                }
                certs
            }
            None => Vec::new(),
        };
        let build = |verify: bool| {
            let mut b = Client::builder()
                .use_rustls_tls()
                .connect_timeout(cfg.timeout)
                .pool_idle_timeout(Duration::from_secs(30))
                .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(!verify);
            for c in &extra {
                b = b.add_root_certificate(c.clone());
            }
            b.build().map_err(|e| PowerSetupError::CaFile {
                path: cfg.ca_file.clone().unwrap_or_default(),
                detail: format!("cannot build the HTTPS client: {e}"),
            })
        };
        Ok(Redfish {
            verifying: build(true)?,
            trusting: build(false)?,
        })
    }

    /// One operation: find the system, read it, act on it.
    pub(crate) async fn call(&self, t: &BmcTarget, op: PowerOp) -> Result<Done, PowerError> {
        let s = Session {
            client: if t.verify_tls || t.scheme == Scheme::Http {
                &self.verifying
            } else {
                &self.trusting
            },
            t,
            op,
        };
        let base = Url::parse(&format!(
            "{}://{}:{}/",
            t.scheme.as_str(),
            host_for_url(&t.host),
            t.port
        ))
        .map_err(|e| {
            s.fail(
                FailureKind::Config,
                format!("expected a BMC address usable in a URL: {e}"),
            )
        })?;
        let system = match t.system.as_deref() {
            Some(path) if path.starts_with('/') => s.join(&base, path)?,
            Some(id) => s.join(&base, &format!("{SYSTEMS}/{id}"))?,
            None => s.discover(&base).await?,
        };
        let (sys, etag) = s.get(&system).await?;
        let state = power_state(&sys).map_err(|found| {
            s.fail(
                FailureKind::Protocol,
                format!(
                    "expected PowerState On, Off, PoweringOn, PoweringOff or Paused in {}, found {found}",
                    system.path()
                ),
            )
        })?;
        let done = |message: String| {
            Ok(Done {
                power: Some(state),
                message,
            })
        };
        let already = |what: &str| done(format!("already {what}"));
        match op {
            PowerOp::Status => done(format!("power is {state}")),
            PowerOp::On if state == PowerState::On => already("on"),
            PowerOp::Off | PowerOp::SoftOff if state == PowerState::Off => already("off"),
            PowerOp::On => s.reset(&sys, &system, &["On", "ForceOn"], state).await,
            PowerOp::Off => s.reset(&sys, &system, &["ForceOff"], state).await,
            PowerOp::SoftOff => s.reset(&sys, &system, &["GracefulShutdown"], state).await,
            PowerOp::Cycle if state == PowerState::Off => {
                s.reset(&sys, &system, &["On", "ForceOn"], state).await
            }
            PowerOp::Cycle => {
                s.reset(&sys, &system, &["ForceRestart", "PowerCycle"], state)
                    .await
            }
            PowerOp::BootOnce(dev) => {
                let name = match dev {
                    BootDevice::Pxe => "Pxe",
                    BootDevice::Disk => "Hdd",
                };
                let allowed =
                    strings(sys.pointer("/Boot/BootSourceOverrideTarget@Redfish.AllowableValues"));
                if let Some(allowed) = &allowed {
                    if !allowed.iter().any(|a| a == name) {
                        return Err(s.fail(
                            FailureKind::Unsupported,
                            format!(
                                "expected {name} among the system's BootSourceOverrideTarget@Redfish.AllowableValues, found [{}]",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
                let body = json!({"Boot": {"BootSourceOverrideTarget": name, "BootSourceOverrideEnabled": "Once"}});
                s.patch(&system, &body, etag.as_deref()).await?;
                done(format!(
                    "next boot from {name} (BootSourceOverrideEnabled Once)"
                ))
            }
            PowerOp::Identify(on) => {
                // Newer services (Redfish 2020.3+) have LocationIndicatorActive;
                // IndicatorLED is the older, deprecated property (sushy-emulator's).
                let (body, what) = if sys.get("LocationIndicatorActive").is_some() {
                    (
                        json!({"LocationIndicatorActive": on}),
                        format!("LocationIndicatorActive {on}"),
                    )
                } else if sys.get("IndicatorLED").is_some() {
                    let led = if on { "Blinking" } else { "Off" };
                    (json!({"IndicatorLED": led}), format!("IndicatorLED {led}"))
                } else {
                    return Err(s.fail(
                        FailureKind::Unsupported,
                        format!(
                            "expected LocationIndicatorActive or IndicatorLED in {}, found neither",
                            system.path()
                        ),
                    ));
                };
                s.patch(&system, &body, etag.as_deref()).await?;
                done(format!("{what} set"))
            }
        }
    }
}

impl Redfish {
    /// The credentials' Basic-auth token (what follows `Basic ` in `Authorization`),
    /// to scrub it from any text a BMC sends back. Builds a request, sends nothing.
    pub(crate) fn basic_auth_token(&self, user: &str, password: &str) -> String {
        let Ok(req) = self
            .verifying
            .get("http://127.0.0.1/")
            .basic_auth(user, Some(password))
            .build()
        else {
            return String::new();
        };
        let v = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        v.strip_prefix("Basic ").unwrap_or(v).to_string()
    }
}

/// One call's context: which client, which target, which operation.
struct Session<'a> {
    client: &'a Client,
    t: &'a BmcTarget,
    op: PowerOp,
}

impl Session<'_> {
    fn fail(&self, kind: FailureKind, detail: impl Into<String>) -> PowerError {
        PowerError::new(kind, self.t, self.op, detail)
    }

    fn join(&self, base: &Url, path: &str) -> Result<Url, PowerError> {
        base.join(path).map_err(|e| {
            self.fail(
                FailureKind::Config,
                format!("expected a path usable in a URL, found `{path}`: {e}"),
            )
        })
    }

    /// The one member of `/redfish/v1/Systems`.
    async fn discover(&self, base: &Url) -> Result<Url, PowerError> {
        let url = self.join(base, SYSTEMS)?;
        let (coll, _) = self.get(&url).await?;
        let members: Vec<&str> = coll
            .get("Members")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(|x| x.get("@odata.id").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        match members.as_slice() {
            [one] => self.join(base, one),
            [] => Err(self.fail(
                FailureKind::Config,
                format!("expected one ComputerSystem in {SYSTEMS}, found none"),
            )),
            many => {
                let shown: Vec<&str> = many.iter().take(5).copied().collect();
                let more = if many.len() > 5 { ", …" } else { "" };
                Err(self.fail(
                    FailureKind::Config,
                    format!(
                        "expected one ComputerSystem in {SYSTEMS}, found {} ({}{more}); name one with oob.system",
                        many.len(),
                        shown.join(", ")
                    ),
                ))
            }
        }
    }

    /// GET a resource: its JSON and its ETag.
    async fn get(&self, url: &Url) -> Result<(Value, Option<String>), PowerError> {
        let (headers, body) = self.send(Method::GET, url, None, None).await?;
        let etag = headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            self.fail(
                FailureKind::Protocol,
                format!("expected JSON from GET {}, found an error: {e}", url.path()),
            )
        })?;
        if !value.is_object() {
            return Err(self.fail(
                FailureKind::Protocol,
                format!(
                    "expected a JSON object from GET {}, found {}",
                    url.path(),
                    kind_of(&value)
                ),
            ));
        }
        Ok((value, etag))
    }

    async fn patch(&self, url: &Url, body: &Value, etag: Option<&str>) -> Result<(), PowerError> {
        self.send(Method::PATCH, url, Some(body), etag)
            .await
            .map(|_| ())
    }

    /// POSTs the first advertised of `prefs` to the system's Reset action.
    async fn reset(
        &self,
        sys: &Value,
        system: &Url,
        prefs: &[&str],
        was: PowerState,
    ) -> Result<Done, PowerError> {
        let action = sys
            .pointer("/Actions/#ComputerSystem.Reset")
            .ok_or_else(|| {
                self.fail(
                    FailureKind::Unsupported,
                    format!(
                        "expected Actions.#ComputerSystem.Reset in {}, found none",
                        system.path()
                    ),
                )
            })?;
        let target = action
            .get("target")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.fail(
                    FailureKind::Protocol,
                    format!(
                        "expected a target of #ComputerSystem.Reset in {}, found none",
                        system.path()
                    ),
                )
            })?;
        let target = self.join(system, target)?;
        let allowed = match strings(action.get("ResetType@Redfish.AllowableValues")) {
            Some(a) => Some(a),
            None => self.action_info(action, system).await?,
        };
        let reset_type = choose(prefs, allowed.as_deref()).ok_or_else(|| {
            self.fail(
                FailureKind::Unsupported,
                format!(
                    "expected one of [{}] among the system's ResetType@Redfish.AllowableValues, found [{}]",
                    prefs.join(", "),
                    allowed.as_deref().unwrap_or_default().join(", ")
                ),
            )
        })?;
        self.send(
            Method::POST,
            &target,
            Some(&json!({ "ResetType": reset_type })),
            None,
        )
        .await?;
        Ok(Done {
            power: Some(was),
            message: format!("ResetType {reset_type} accepted (was {was})"),
        })
    }

    /// The ResetTypes of an action's `@Redfish.ActionInfo` resource, when it has one.
    async fn action_info(
        &self,
        action: &Value,
        system: &Url,
    ) -> Result<Option<Vec<String>>, PowerError> {
        let Some(info) = action.get("@Redfish.ActionInfo").and_then(Value::as_str) else {
            return Ok(None);
        };
        let url = self.join(system, info)?;
        let (info, _) = self.get(&url).await?;
        let params = info.get("Parameters").and_then(Value::as_array);
        Ok(params.and_then(|ps| {
            ps.iter()
                .find(|p| p.get("Name").and_then(Value::as_str) == Some("ResetType"))
                .and_then(|p| strings(p.get("AllowableValues")))
        }))
    }

    /// One HTTP request with the target's credentials; a non-2xx answer is an error.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(HeaderMap, bytes::Bytes), PowerError> {
        let what = format!("{method} {}", url.path());
        let mut req = self
            .client
            .request(method, url.clone())
            .basic_auth(&self.t.username, Some(self.t.password.expose()))
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(tag) = if_match {
            req = req.header(IF_MATCH, tag);
        }
        let resp = req.send().await.map_err(|e| self.transport(&what, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| self.transport(&what, &e))?;
        if status.is_success() {
            return Ok((headers, bytes));
        }
        let kind = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => FailureKind::Credentials,
            StatusCode::NOT_FOUND if what.starts_with("GET") => FailureKind::Config,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                FailureKind::Unsupported
            }
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => FailureKind::Busy,
            _ => FailureKind::Rejected,
        };
        let hint = match kind {
            FailureKind::Credentials => "; expected oob.account and oob.credential to be accepted",
            FailureKind::Config => "; check oob.system",
            _ => "",
        };
        Err(self.fail(
            kind,
            format!(
                "{what}: expected a 2xx answer, found HTTP {}{} {hint}",
                status.as_u16(),
                error_message(&bytes)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
            .trim_end()
            .to_string(),
        ))
    }

    /// A failure below HTTP: refused, reset, TLS, timeout.
    fn transport(&self, what: &str, e: &reqwest::Error) -> PowerError {
        let mut chain = Vec::new();
        let mut refused = false;
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                refused |= matches!(
                    io.kind(),
                    ConnectionRefused | ConnectionReset | ConnectionAborted
                );
            }
            let text = s.to_string();
            if !chain.iter().any(|c: &String| c.contains(&text)) {
                chain.push(text);
            }
            src = s.source();
        }
        let detail = if chain.is_empty() {
            e.to_string()
        } else {
            chain.join(": ")
        };
        let lower = detail.to_ascii_lowercase();
        let kind = if e.is_timeout() {
            FailureKind::Timeout
        } else if refused {
            FailureKind::Refused
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            FailureKind::Tls
        } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
            FailureKind::Config
        } else if e.is_connect() {
            FailureKind::NoResponse
        } else {
            FailureKind::Protocol
        };
        let hint = if kind == FailureKind::Tls {
            "; expected a certificate the system or the power CA file trusts (or the site's TLS verification off)"
        } else {
            ""
        };
        self.fail(kind, format!("{what}: {detail}{hint}"))
    }
}

/// The system's PowerState, or what was found instead.
fn power_state(sys: &Value) -> Result<PowerState, String> {
    match sys.get("PowerState") {
        Some(Value::String(s)) => match s.as_str() {
            "On" => Ok(PowerState::On),
            "Off" => Ok(PowerState::Off),
            "PoweringOn" => Ok(PowerState::PoweringOn),
            "PoweringOff" => Ok(PowerState::PoweringOff),
            "Paused" => Ok(PowerState::Paused),
            other => Err(format!("`{other}`")),
        },
        Some(v) => Err(kind_of(v).to_string()),
        None => Err("none".to_string()),
    }
}

/// The first of `prefs` that `allowed` has; without `allowed` (nothing advertised)
/// the first of `prefs`.
fn choose<'p>(prefs: &[&'p str], allowed: Option<&[String]>) -> Option<&'p str> {
    match allowed {
        None => prefs.first().copied(),
        Some(a) => prefs.iter().copied().find(|p| a.iter().any(|x| x == p)),
    }
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

/// A Redfish error body's message (`error.message`, else its first extended info).
fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let err = v.get("error")?;
    let ext = err
        .pointer("/@Message.ExtendedInfo/0/Message")
        .and_then(Value::as_str);
    let msg = err.get("message").and_then(Value::as_str).or(ext)?;
    let msg: String = msg.chars().take(240).collect();
    Some(msg)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_operation_takes_the_first_reset_type_the_system_advertises() {
        let sushy = owned(&[
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "Nmi",
            "ForceOn",
        ]);
        assert_eq!(choose(&["On", "ForceOn"], Some(&sushy)), Some("On"));
        assert_eq!(
            choose(&["ForceRestart", "PowerCycle"], Some(&sushy)),
            Some("ForceRestart")
        );
        let only_cycle = owned(&["ForceOn", "ForceOff", "PowerCycle"]);
        assert_eq!(
            choose(&["On", "ForceOn"], Some(&only_cycle)),
            Some("ForceOn")
        );
        assert_eq!(
            choose(&["ForceRestart", "PowerCycle"], Some(&only_cycle)),
            Some("PowerCycle")
        );
        assert_eq!(choose(&["GracefulShutdown"], Some(&only_cycle)), None);
        assert_eq!(
            choose(&["GracefulShutdown"], None),
            Some("GracefulShutdown")
        );
    }

    #[test]
    fn power_state_is_read_strictly() {
        assert_eq!(
            power_state(&json!({"PowerState": "On"})),
            Ok(PowerState::On)
        );
        assert_eq!(
            power_state(&json!({"PowerState": "PoweringOff"})),
            Ok(PowerState::PoweringOff)
        );
        assert_eq!(
            power_state(&json!({"PowerState": "on"})),
            Err("`on`".to_string())
        );
        assert_eq!(
            power_state(&json!({"PowerState": null})),
            Err("null".to_string())
        );
        assert_eq!(power_state(&json!({})), Err("none".to_string()));
    }

    #[test]
    fn a_redfish_error_body_gives_its_message() {
        let body = br#"{"error":{"code":"Base.1.0.GeneralError","message":"Power state PowerCycle is not supported"}}"#;
        assert_eq!(
            error_message(body).as_deref(),
            Some("Power state PowerCycle is not supported")
        );
        let ext = br#"{"error":{"@Message.ExtendedInfo":[{"Message":"busy"}]}}"#;
        assert_eq!(error_message(ext).as_deref(), Some("busy"));
        assert_eq!(error_message(b"<html>"), None);
    }

    #[test]
    fn basic_auth_token_is_the_base64_of_user_and_password() {
        let r = Redfish::new(&PowerConfig::default()).unwrap();
        // RFC 7617's example
        assert_eq!(
            r.basic_auth_token("Aladdin", "open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
