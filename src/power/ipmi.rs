//! The IPMI driver: runs the real `ipmitool` over LAN+ (RMCP+) for each call.
//!
//! The password goes to ipmitool through its environment (`-E`, `IPMITOOL_PASSWORD`):
//! a process's argv is readable by every user (`ps`, `/proc/<pid>/cmdline`), its
//! environment only by its owner. The child gets no other environment (a stray
//! `IPMITOOL_PASSWORD` of ours cannot leak in, `LC_ALL=C` keeps its output stable),
//! no stdin (so it never prompts), and is killed when the call is abandoned
//! (`kill_on_drop`: the service's timeout drops the call).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

use super::{BootDevice, Done, FailureKind, PowerError, PowerOp, PowerState};
use crate::power::BmcTarget;

/// Runs `ipmitool` (the program configured) against a target.
pub(crate) struct Ipmitool {
    program: PathBuf,
}

impl Ipmitool {
    pub(crate) fn new(program: PathBuf) -> Ipmitool {
        Ipmitool { program }
    }

    /// One operation: one or two ipmitool runs (cycle and soft-off read the state first).
    pub(crate) async fn call(&self, t: &BmcTarget, op: PowerOp) -> Result<Done, PowerError> {
        let done = |power, message: &str| Done {
            power,
            message: message.to_string(),
        };
        match op {
            PowerOp::Status => {
                let s = self.status(t, op).await?;
                Ok(done(Some(s), &format!("power is {s}")))
            }
            PowerOp::On => {
                self.run(
                    t,
                    op,
                    &["chassis", "power", "on"],
                    "Chassis Power Control: Up/On",
                )
                .await?;
                Ok(done(None, "power on accepted"))
            }
            PowerOp::Off => {
                self.run(
                    t,
                    op,
                    &["chassis", "power", "off"],
                    "Chassis Power Control: Down/Off",
                )
                .await?;
                Ok(done(None, "power off accepted"))
            }
            PowerOp::SoftOff => match self.status(t, op).await? {
                PowerState::Off => Ok(done(Some(PowerState::Off), "already off")),
                s => {
                    self.run(
                        t,
                        op,
                        &["chassis", "power", "soft"],
                        "Chassis Power Control: Soft",
                    )
                    .await?;
                    Ok(done(Some(s), &format!("soft-off accepted (was {s})")))
                }
            },
            // IPMI's reset does nothing to a machine that is off: power it on instead.
            PowerOp::Cycle => match self.status(t, op).await? {
                PowerState::Off => {
                    self.run(
                        t,
                        op,
                        &["chassis", "power", "on"],
                        "Chassis Power Control: Up/On",
                    )
                    .await?;
                    Ok(done(Some(PowerState::Off), "was off: power on accepted"))
                }
                s => {
                    self.run(
                        t,
                        op,
                        &["chassis", "power", "reset"],
                        "Chassis Power Control: Reset",
                    )
                    .await?;
                    Ok(done(Some(s), &format!("hard reset accepted (was {s})")))
                }
            },
            // Without `options=persistent` the boot flags hold for the next boot only.
            PowerOp::BootOnce(dev) => {
                let name = match dev {
                    BootDevice::Pxe => "pxe",
                    BootDevice::Disk => "disk",
                };
                let expected = format!("Set Boot Device to {name}");
                self.run(t, op, &["chassis", "bootdev", name], &expected)
                    .await?;
                Ok(done(None, &format!("next boot from {name}")))
            }
            PowerOp::Identify(on) => {
                let (arg, expected) = if on {
                    ("force", "Chassis identify interval: indefinite")
                } else {
                    ("0", "Chassis identify interval: off")
                };
                self.run(t, op, &["chassis", "identify", arg], expected)
                    .await?;
                Ok(done(None, if on { "identify on" } else { "identify off" }))
            }
        }
    }

    async fn status(&self, t: &BmcTarget, op: PowerOp) -> Result<PowerState, PowerError> {
        let out = self.output(t, op, &["chassis", "power", "status"]).await?;
        match single_line(&out).as_deref() {
            Some("Chassis Power is on") => Ok(PowerState::On),
            Some("Chassis Power is off") => Ok(PowerState::Off),
            _ => Err(unexpected(t, op, "`Chassis Power is on|off`", &out)),
        }
    }

    /// Runs a command whose whole output must be `expected`.
    async fn run(
        &self,
        t: &BmcTarget,
        op: PowerOp,
        command: &[&str],
        expected: &str,
    ) -> Result<(), PowerError> {
        let out = self.output(t, op, command).await?;
        if single_line(&out).as_deref() == Some(expected) {
            Ok(())
        } else {
            Err(unexpected(t, op, &format!("`{expected}`"), &out))
        }
    }

    /// Runs ipmitool and returns its stdout, or the failure its stderr shows.
    async fn output(
        &self,
        t: &BmcTarget,
        op: PowerOp,
        command: &[&str],
    ) -> Result<String, PowerError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(argv(t, command))
            .env_clear()
            .env("LC_ALL", "C")
            .env("IPMITOOL_PASSWORD", t.password.expose())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let out = cmd.output().await.map_err(|e| {
            PowerError::new(
                FailureKind::Config,
                t,
                op,
                format!(
                    "cannot run `{}`: {e}; expected the ipmitool program (Debian: apt-get install ipmitool)",
                    self.program.display()
                ),
            )
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (kind, detail) = classify(&stderr);
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        Err(PowerError::new(
            kind,
            t,
            op,
            format!("ipmitool {}: {detail} ({status})", command.join(" ")),
        ))
    }
}

/// ipmitool's arguments for `command` against `t`: never the password (`-E`).
/// `-v` makes ipmitool say why a session failed (e.g. `RAKP 2 HMAC is invalid`).
pub(crate) fn argv(t: &BmcTarget, command: &[&str]) -> Vec<OsString> {
    let mut a: Vec<OsString> = ["-I", "lanplus", "-H"].map(OsString::from).to_vec();
    a.push(t.host.clone().into());
    a.push("-p".into());
    a.push(t.port.to_string().into());
    a.push("-U".into());
    a.push(t.username.clone().into());
    a.push("-E".into());
    if let Some(cs) = t.cipher_suite {
        a.push("-C".into());
        a.push(cs.to_string().into());
    }
    a.push("-v".into());
    a.extend(command.iter().map(OsString::from));
    a
}

/// The one non-empty line of an output, or `None` when there are none or several.
fn single_line(out: &str) -> Option<String> {
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    lines.next().is_none().then(|| first.to_string())
}

fn unexpected(t: &BmcTarget, op: PowerOp, expected: &str, out: &str) -> PowerError {
    let found = out.trim();
    let found = if found.is_empty() {
        "no output".to_string()
    } else {
        format!("`{}`", clip(found))
    };
    PowerError::new(
        FailureKind::Protocol,
        t,
        op,
        format!("expected {expected} from ipmitool, found {found}"),
    )
}

/// The kind of an ipmitool failure and its most telling line, from its stderr
/// (`-v`). Credentials first: a refused password also ends with "Unable to
/// establish IPMI v2 / RMCP+ session".
pub(crate) fn classify(stderr: &str) -> (FailureKind, String) {
    let lines = meaningful_lines(stderr);
    let find = |pats: &[&str]| {
        lines
            .iter()
            .find(|l| {
                let l = l.to_ascii_lowercase();
                pats.iter().any(|p| l.contains(p))
            })
            .cloned()
    };
    const CREDENTIALS: &[&str] = &[
        "hmac is invalid",
        "unauthorized name",
        "invalid integrity check",
        "invalid role",
        "unauthorized role",
        "unable to read password",
        "password verification",
        "invalid user name",
        "invalid session id in request",
    ];
    const BUSY: &[&str] = &["insufficient resources", "node busy", "out of space"];
    const CONFIG: &[&str] = &["address lookup for", "invalid hostname", "invalid port"];
    const UNSUPPORTED: &[&str] = &[
        "invalid command",
        "not supported",
        "unsupported",
        "invalid data field",
    ];
    const NO_RESPONSE: &[&str] = &[
        "no response",
        "unable to establish",
        "get auth capabilities error",
        "get channel authentication capabilities",
        "timeout",
    ];
    let checks: [(&[&str], FailureKind); 5] = [
        (CREDENTIALS, FailureKind::Credentials),
        (BUSY, FailureKind::Busy),
        (CONFIG, FailureKind::Config),
        (UNSUPPORTED, FailureKind::Unsupported),
        (NO_RESPONSE, FailureKind::NoResponse),
    ];
    for (pats, kind) in checks {
        if let Some(line) = find(pats) {
            return (kind, clip(&line));
        }
    }
    let last = lines
        .iter()
        .rev()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or(lines.last())
        .cloned()
        .unwrap_or_else(|| "failed without a message".to_string());
    (FailureKind::Rejected, clip(&last))
}

/// stderr lines without `-v`'s chatter about a session that worked.
fn meaningful_lines(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_vso = false;
    for line in stderr.lines() {
        let l = line.trim().trim_start_matches('>').trim();
        let was_after_vso = std::mem::replace(&mut after_vso, false);
        if l.is_empty()
            || l.starts_with("Loading IANA PEN Registry")
            || l.starts_with("Using best available cipher suite")
            || l.starts_with("Discovered IPMB address")
        {
            continue;
        }
        if l.starts_with("Running Get VSO Capabilities") {
            after_vso = true;
            continue;
        }
        // the VSO probe's refusal is expected on non-VITA BMCs
        if was_after_vso && l.starts_with("Invalid completion code received") {
            continue;
        }
        out.push(l.to_string());
    }
    out
}

fn clip(s: &str) -> String {
    const MAX: usize = 240;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::Secret;

    fn target() -> BmcTarget {
        BmcTarget::ipmi("n1", "10.0.0.5", 6230, "admin", Secret::new("pa55-w0rd"))
    }

    #[test]
    fn argv_passes_the_password_by_environment_never_as_an_argument() {
        let mut t = target();
        t.cipher_suite = Some(3);
        let a: Vec<String> = argv(&t, &["chassis", "power", "status"])
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            a,
            [
                "-I", "lanplus", "-H", "10.0.0.5", "-p", "6230", "-U", "admin", "-E", "-C", "3",
                "-v", "chassis", "power", "status"
            ]
        );
        assert!(!a
            .iter()
            .any(|x| x.contains("pa55-w0rd") || x == "-P" || x == "-f"));
    }

    #[test]
    fn output_must_be_exactly_the_expected_line() {
        assert_eq!(
            single_line("Chassis Power is on\n").as_deref(),
            Some("Chassis Power is on")
        );
        assert_eq!(
            single_line("\n  Chassis Power is off  \n\n").as_deref(),
            Some("Chassis Power is off")
        );
        assert_eq!(single_line(""), None);
        assert_eq!(single_line("Chassis Power is on\nsomething else\n"), None);
    }

    #[test]
    fn a_refused_password_is_a_credentials_failure() {
        let stderr = "Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n";
        assert_eq!(
            classify(stderr),
            (
                FailureKind::Credentials,
                "RAKP 2 HMAC is invalid".to_string()
            )
        );
        let real = "> RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session\n";
        assert_eq!(classify(real).0, FailureKind::Credentials);
    }

    #[test]
    fn a_silent_bmc_is_no_response_and_a_full_session_table_is_busy() {
        let silent =
            "Loading IANA PEN Registry...\nError: Unable to establish IPMI v2 / RMCP+ session\n";
        assert_eq!(
            classify(silent),
            (
                FailureKind::NoResponse,
                "Error: Unable to establish IPMI v2 / RMCP+ session".to_string()
            )
        );
        let busy = "> Error in open session response message : insufficient resources for session\nError: Unable to establish IPMI v2 / RMCP+ session\n";
        assert_eq!(classify(busy).0, FailureKind::Busy);
    }

    #[test]
    fn vso_chatter_is_not_taken_for_an_unsupported_command() {
        let stderr = "Running Get VSO Capabilities my_addr 0x20, transit 0, target 0x20\nInvalid completion code received: Invalid command\nDiscovered IPMB address 0x0\nSet Chassis Power Control to Cycle failed: Command not supported in present state\n";
        assert_eq!(
            classify(stderr),
            (
                FailureKind::Unsupported,
                "Set Chassis Power Control to Cycle failed: Command not supported in present state"
                    .to_string()
            )
        );
        let other = "Running Get VSO Capabilities my_addr 0x20, transit 0, target 0x20\nInvalid completion code received: Invalid command\nChassis Power Control: failed: Node busy\n";
        assert_eq!(classify(other).0, FailureKind::Busy);
        assert_eq!(classify("").0, FailureKind::Rejected);
    }
}
