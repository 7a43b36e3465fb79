//! What the power service needs to reach one node's BMC, and how a node's OOB
//! settings become it (`target_from_oob`, pure).

use std::fmt;

/// The protocol a BMC is driven with, chosen by the node's `oob.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// IPMI 2.0 over LAN+ (RMCP+), through `ipmitool`.
    Ipmi,
    /// Redfish over HTTPS (or HTTP when the node says so).
    Redfish,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Ipmi => "ipmi",
            Driver::Redfish => "redfish",
        })
    }
}

/// How a Redfish service is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS, certificate verified unless the site switches verification off.
    Https,
    /// Plain HTTP (emulators, BMCs behind a TLS-terminating forward).
    Http,
}

impl Scheme {
    /// `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    /// The port a Redfish service listens on when the node names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }
}

/// The port an IPMI BMC listens on when the node names none (RMCP, UDP).
pub const IPMI_PORT: u16 = 623;

/// A BMC password: it never shows in `Debug`, `Display`, logs or messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The password itself, for the drivers (environment of ipmitool, HTTP auth).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One node's BMC: where it is, which driver speaks to it, with what credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcTarget {
    /// The node's name (BaremetalNode `metadata.name`): the journal's key.
    pub node: String,
    /// IPMI or Redfish.
    pub driver: Driver,
    /// IP address or host name of the BMC (or of a port forward to it).
    pub host: String,
    /// UDP port (IPMI) or TCP port (Redfish).
    pub port: u16,
    /// Redfish only: https or http.
    pub scheme: Scheme,
    /// Redfish only: the ComputerSystem, as an id under `/redfish/v1/Systems/` or
    /// an absolute path; `None` = the one member of `/redfish/v1/Systems`.
    pub system: Option<String>,
    /// IPMI only: the RMCP+ cipher suite (`ipmitool -C`); `None` = ipmitool's choice.
    pub cipher_suite: Option<u8>,
    /// BMC account (`oob.account`).
    pub username: String,
    /// BMC password (`oob.credential`).
    pub password: Secret,
    /// Redfish only: verify the BMC's certificate (the site's switch).
    pub verify_tls: bool,
}

impl BmcTarget {
    /// An IPMI BMC at `host:port`.
    pub fn ipmi(node: &str, host: &str, port: u16, username: &str, password: Secret) -> BmcTarget {
        BmcTarget {
            node: node.to_string(),
            driver: Driver::Ipmi,
            host: host.to_string(),
            port,
            scheme: Scheme::Https,
            system: None,
            cipher_suite: None,
            username: username.to_string(),
            password,
            verify_tls: true,
        }
    }

    /// A Redfish service at `scheme://host:port`, certificate verified.
    pub fn redfish(
        node: &str,
        scheme: Scheme,
        host: &str,
        port: u16,
        username: &str,
        password: Secret,
    ) -> BmcTarget {
        BmcTarget {
            node: node.to_string(),
            driver: Driver::Redfish,
            host: host.to_string(),
            port,
            scheme,
            system: None,
            cipher_suite: None,
            username: username.to_string(),
            password,
            verify_tls: true,
        }
    }

    /// Names the Redfish ComputerSystem (id or absolute path).
    pub fn with_system(mut self, system: &str) -> BmcTarget {
        self.system = Some(system.to_string());
        self
    }

    /// Where the BMC is, for messages: `ipmi 127.0.0.1:623`, `https://bmc:443`.
    pub fn endpoint(&self) -> String {
        let host = host_for_url(&self.host);
        match self.driver {
            Driver::Ipmi => format!("ipmi {host}:{}", self.port),
            Driver::Redfish => format!("{}://{host}:{}", self.scheme.as_str(), self.port),
        }
    }
}

/// `::1` → `[::1]`, for URLs and `host:port` text.
pub(crate) fn host_for_url(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// A node's OOB settings as plain text values, as the design holds them (see
/// docs/power.md for the fields and how Drydock's `oob` maps to them).
#[derive(Debug, Clone, Default)]
pub struct OobSettings<'a> {
    /// `oob.type`: `ipmi` or `redfish`.
    pub oob_type: Option<&'a str>,
    /// The node's address on `oob.network` (its `addressing` entry).
    pub address: Option<&'a str>,
    /// `oob.account`.
    pub account: Option<&'a str>,
    /// `oob.credential`.
    pub credential: Option<&'a str>,
    /// `oob.host`: reach the BMC here instead of `address` (a port forward).
    pub host: Option<&'a str>,
    /// `oob.port`.
    pub port: Option<&'a str>,
    /// `oob.scheme` (redfish): `https` (default) or `http`.
    pub scheme: Option<&'a str>,
    /// `oob.system` (redfish): ComputerSystem id or absolute path.
    pub system: Option<&'a str>,
    /// `oob.cipher_suite` (ipmi): 0–17.
    pub cipher_suite: Option<&'a str>,
}

/// Why a node's OOB settings do not name a BMC the power service can drive.
/// Messages name the field and what was expected; a credential is never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OobError {
    /// `oob.type` is absent or not a type the power service drives.
    #[error("oob.type: expected `ipmi` or `redfish`, found {found}")]
    Type {
        /// What the node has (quoted), or `nothing`.
        found: String,
    },
    /// A field the driver needs is absent or empty.
    #[error("oob.{field}: expected {expected}, found nothing")]
    Missing {
        /// The field's name under `oob`.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// A field holds a value the driver cannot use.
    #[error("oob.{field}: expected {expected}, found `{found}`")]
    Invalid {
        /// The field's name under `oob`.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
        /// What it holds.
        found: String,
    },
}

/// The BMC target of node `node` from its OOB settings; `verify_tls` is the site's
/// switch. Pure: the caller looks up the address on `oob.network`.
pub fn target_from_oob(
    node: &str,
    oob: &OobSettings<'_>,
    verify_tls: bool,
) -> Result<BmcTarget, OobError> {
    let driver = match oob.oob_type {
        Some("ipmi") => Driver::Ipmi,
        Some("redfish") => Driver::Redfish,
        Some(other) => {
            return Err(OobError::Type {
                found: format!("`{other}`"),
            })
        }
        None => {
            return Err(OobError::Type {
                found: "nothing".to_string(),
            })
        }
    };
    let host = match present(oob.host) {
        Some(h) => check_host("host", h)?,
        None => {
            let a = present(oob.address).ok_or(OobError::Missing {
                field: "network",
                expected: "a network on which the node has the BMC's address",
            })?;
            check_host("network", a)?
        }
    };
    let username = present(oob.account)
        .ok_or(OobError::Missing {
            field: "account",
            expected: "the BMC account name",
        })?
        .to_string();
    let password = present(oob.credential).ok_or(OobError::Missing {
        field: "credential",
        expected: "the BMC account's password",
    })?;
    let scheme = match (driver, present(oob.scheme)) {
        (Driver::Redfish, None) => Scheme::Https,
        (Driver::Redfish, Some(s)) => {
            if field(crate::design::oob::https(s))? {
                Scheme::Https
            } else {
                Scheme::Http
            }
        }
        (Driver::Ipmi, Some(other)) => {
            return Err(oob_err(crate::design::oob::not_for(
                "scheme", "ipmi", other,
            )))
        }
        (Driver::Ipmi, None) => Scheme::Https,
    };
    let port = match present(oob.port) {
        Some(p) => field(crate::design::oob::port(p))?,
        None => match driver {
            Driver::Ipmi => IPMI_PORT,
            Driver::Redfish => scheme.default_port(),
        },
    };
    let system = match (driver, present(oob.system)) {
        (Driver::Redfish, Some(s)) => Some(field(crate::design::oob::system(s))?),
        (Driver::Ipmi, Some(s)) => {
            return Err(oob_err(crate::design::oob::not_for("system", "ipmi", s)))
        }
        (_, None) => None,
    };
    let cipher_suite = match (driver, present(oob.cipher_suite)) {
        (Driver::Ipmi, Some(c)) => Some(field(crate::design::oob::cipher_suite(c))?),
        (Driver::Redfish, Some(c)) => {
            return Err(oob_err(crate::design::oob::not_for(
                "cipher_suite",
                "redfish",
                c,
            )))
        }
        (_, None) => None,
    };
    Ok(BmcTarget {
        node: node.to_string(),
        driver,
        host,
        port,
        scheme,
        system,
        cipher_suite,
        username,
        password: Secret::new(password),
        verify_tls,
    })
}

fn present(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// The design's grammar of a connection field (`design::oob`), as an `OobError`.
fn field<T>(r: Result<T, crate::design::oob::FieldProblem>) -> Result<T, OobError> {
    r.map_err(oob_err)
}

fn oob_err(p: crate::design::oob::FieldProblem) -> OobError {
    OobError::Invalid {
        field: p.field,
        expected: p.expected,
        found: p.found,
    }
}

fn check_host(name: &'static str, h: &str) -> Result<String, OobError> {
    field(crate::design::oob::host(name, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipmi<'a>() -> OobSettings<'a> {
        OobSettings {
            oob_type: Some("ipmi"),
            address: Some("172.16.0.10"),
            account: Some("admin"),
            credential: Some("pw"),
            ..OobSettings::default()
        }
    }

    #[test]
    fn ipmi_defaults_to_port_623_and_ipmitools_cipher_choice() {
        let t = target_from_oob("n1", &ipmi(), true).unwrap();
        assert_eq!(t.driver, Driver::Ipmi);
        assert_eq!(
            (t.host.as_str(), t.port, t.cipher_suite),
            ("172.16.0.10", 623, None)
        );
        assert_eq!(t.username, "admin");
        assert_eq!(t.password.expose(), "pw");
    }

    #[test]
    fn redfish_defaults_to_https_443_and_discovered_system() {
        let oob = OobSettings {
            oob_type: Some("redfish"),
            ..ipmi()
        };
        let t = target_from_oob("n1", &oob, false).unwrap();
        assert_eq!(
            (t.scheme, t.port, t.system.clone()),
            (Scheme::Https, 443, None)
        );
        assert!(!t.verify_tls);
        assert_eq!(t.endpoint(), "https://172.16.0.10:443");
    }

    #[test]
    fn host_port_scheme_and_system_name_a_forwarded_redfish_bmc() {
        let oob = OobSettings {
            oob_type: Some("redfish"),
            host: Some("::1"),
            port: Some("8000"),
            scheme: Some("http"),
            system: Some("/redfish/v1/Systems/System.Embedded.1"),
            ..ipmi()
        };
        let t = target_from_oob("n1", &oob, true).unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.endpoint(), "http://[::1]:8000");
        assert_eq!(
            t.system.as_deref(),
            Some("/redfish/v1/Systems/System.Embedded.1")
        );
    }

    #[test]
    fn every_bad_field_is_named_with_what_was_expected() {
        let cases: Vec<(OobSettings, &str)> = vec![
            (OobSettings { oob_type: Some("libvirt"), ..ipmi() }, "oob.type: expected `ipmi` or `redfish`, found `libvirt`"),
            (OobSettings { oob_type: None, ..ipmi() }, "oob.type: expected `ipmi` or `redfish`, found nothing"),
            (OobSettings { address: None, ..ipmi() }, "oob.network: expected a network on which the node has the BMC's address, found nothing"),
            (OobSettings { address: Some("dhcp"), ..ipmi() }, "oob.network: expected an IP address or host name of the BMC, found `dhcp`"),
            (OobSettings { host: Some("bad host"), ..ipmi() }, "oob.host: expected an IP address or host name of the BMC, found `bad host`"),
            (OobSettings { account: Some(" "), ..ipmi() }, "oob.account: expected the BMC account name, found nothing"),
            (OobSettings { credential: None, ..ipmi() }, "oob.credential: expected the BMC account's password, found nothing"),
            (OobSettings { port: Some("0"), ..ipmi() }, "oob.port: expected a port number from 1 to 65535, found `0`"),
            (OobSettings { port: Some("70000"), ..ipmi() }, "oob.port: expected a port number from 1 to 65535, found `70000`"),
            (OobSettings { cipher_suite: Some("18"), ..ipmi() }, "oob.cipher_suite: expected an IPMI cipher suite from 0 to 17, found `18`"),
            (OobSettings { scheme: Some("https"), ..ipmi() }, "oob.scheme: expected no scheme for an ipmi node (redfish only), found `https`"),
            (OobSettings { system: Some("1"), ..ipmi() }, "oob.system: expected no system for an ipmi node (redfish only), found `1`"),
            (OobSettings { oob_type: Some("redfish"), scheme: Some("ftp"), ..ipmi() }, "oob.scheme: expected `https` or `http`, found `ftp`"),
            (OobSettings { oob_type: Some("redfish"), system: Some("../x"), ..ipmi() }, "oob.system: expected a ComputerSystem id or a path under /redfish/v1/Systems/, found `../x`"),
            (OobSettings { oob_type: Some("redfish"), cipher_suite: Some("3"), ..ipmi() }, "oob.cipher_suite: expected no cipher suite for a redfish node (ipmi only), found `3`"),
        ];
        for (oob, want) in cases {
            let err = target_from_oob("n1", &oob, true).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn a_target_never_shows_its_password_in_debug_or_display() {
        let oob = OobSettings {
            credential: Some("hunter2-secret"),
            ..ipmi()
        };
        let t = target_from_oob("n1", &oob, true).unwrap();
        assert!(!format!("{t:?}").contains("hunter2-secret"));
        assert!(format!("{t:?}").contains("Secret(***)"));
        assert_eq!(t.password.to_string(), "***");
    }
}
