//! The grammar of a node's BMC connection fields under `oob` (docs/power.md):
//! `host`, `port`, `scheme`, `system` and `cipher_suite`, slipway's additions to
//! Drydock's `oob` for BMCs on a non-default port, behind a port forward or with
//! several Redfish systems. Pure and shared: the OOB rule (SW379) checks a design
//! with these functions and the power service builds its targets with them, so a
//! node that validates is one the power service can reach.

use std::net::IpAddr;

/// Why one connection field cannot be used: the field under `oob`, what it
/// should hold and what it holds (never a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field's name under `oob`.
    pub field: &'static str,
    /// What the field should hold.
    pub expected: &'static str,
    /// What it holds.
    pub found: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "oob.{}: expected {}, found `{}`",
            self.field, self.expected, self.found
        )
    }
}

fn problem(field: &'static str, expected: &'static str, found: &str) -> FieldProblem {
    FieldProblem {
        field,
        expected,
        found: found.to_string(),
    }
}

/// The connection fields slipway reads under `oob`, with the driver each
/// belongs to (`None`: both).
pub const CONNECTION_FIELDS: &[(&str, Option<&str>)] = &[
    ("host", None),
    ("port", None),
    ("scheme", Some("redfish")),
    ("system", Some("redfish")),
    ("cipher_suite", Some("ipmi")),
];

/// An IP address (v4, v6, bracketed v6) or an RFC 1123 host name, as the BMC's
/// address (`field` names where it came from: `host`, or `network` for the
/// node's address on its OOB network). `dhcp` names nothing to connect to.
pub fn host(field: &'static str, h: &str) -> Result<String, FieldProblem> {
    let bare = h
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(h);
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(bare.to_string());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.len() <= 253 && h != "dhcp" && h.split('.').all(label_ok) {
        return Ok(h.to_string());
    }
    Err(problem(field, "an IP address or host name of the BMC", h))
}

/// A TCP/UDP port, 1–65535.
pub fn port(p: &str) -> Result<u16, FieldProblem> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(problem("port", "a port number from 1 to 65535", p)),
    }
}

/// The Redfish scheme: `true` for `https`, `false` for `http`.
pub fn https(s: &str) -> Result<bool, FieldProblem> {
    match s {
        "https" => Ok(true),
        "http" => Ok(false),
        other => Err(problem("scheme", "`https` or `http`", other)),
    }
}

/// A ComputerSystem id (URL-safe characters) or an absolute
/// `/redfish/v1/Systems/…` path.
pub fn system(s: &str) -> Result<String, FieldProblem> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._~:@".contains(c);
    let ok = if let Some(rest) = s.strip_prefix("/redfish/v1/Systems/") {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|seg| !seg.is_empty() && seg.chars().all(safe))
    } else {
        !s.is_empty() && s.chars().all(safe)
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(problem(
            "system",
            "a ComputerSystem id or a path under /redfish/v1/Systems/",
            s,
        ))
    }
}

/// An IPMI RMCP+ cipher suite, 0–17 (`ipmitool -C`).
pub fn cipher_suite(c: &str) -> Result<u8, FieldProblem> {
    match c.parse::<u8>() {
        Ok(n) if n <= 17 => Ok(n),
        _ => Err(problem(
            "cipher_suite",
            "an IPMI cipher suite from 0 to 17",
            c,
        )),
    }
}

/// A field set on a node of the other driver: what to say instead.
pub fn not_for(field: &'static str, driver: &str, found: &str) -> FieldProblem {
    let expected = match (field, driver) {
        ("scheme", _) => "no scheme for an ipmi node (redfish only)",
        ("system", _) => "no system for an ipmi node (redfish only)",
        ("cipher_suite", _) => "no cipher suite for a redfish node (ipmi only)",
        _ => "nothing for this driver",
    };
    problem(field, expected, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_or_rfc1123_names_never_dhcp() {
        assert_eq!(host("host", "10.0.0.1").unwrap(), "10.0.0.1");
        assert_eq!(host("host", "[fd00::1]").unwrap(), "fd00::1");
        assert_eq!(
            host("host", "bmc-1.example.com").unwrap(),
            "bmc-1.example.com"
        );
        for bad in ["dhcp", "bad host", "-x.example", "a..b", ""] {
            assert!(host("host", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_schemes_systems_and_cipher_suites_have_their_ranges() {
        assert_eq!(port("8443"), Ok(8443));
        assert!(port("0").is_err() && port("70000").is_err() && port("x").is_err());
        assert_eq!(https("http"), Ok(false));
        assert!(https("ftp").is_err());
        assert!(system("System.Embedded.1").is_ok() && system("/redfish/v1/Systems/1").is_ok());
        assert!(system("../x").is_err() && system("/redfish/v1/Systems/").is_err());
        assert_eq!(cipher_suite("17"), Ok(17));
        assert!(cipher_suite("18").is_err());
    }
}
