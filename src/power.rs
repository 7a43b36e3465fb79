//! Power and BMC control: one service, two drivers (IPMI through `ipmitool`,
//! Redfish over HTTP(S)), bounded concurrency, per-call timeouts, bounded retries
//! and a per-node journal of every operation (docs/power.md).
//!
//! - [`target`]: `BmcTarget` (where a BMC is, with what credentials) and
//!   `target_from_oob` (a node's OOB settings → target, pure).
//! - [`journal`]: `OperationRecord`s per node, bounded, with a sink for persistence.
//! - [`fleet`]: `FleetHandle` of an operation over many nodes; the in-flight gauge.
//! - `ipmi`, `redfish`: the drivers (the only user of `reqwest` is `redfish`).

pub mod fleet;
mod ipmi;
pub mod journal;
mod redfish;
pub mod target;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

pub use fleet::{FleetHandle, FleetProgress};
pub use journal::{JournalSink, OperationId, OperationRecord, Outcome};
pub use target::{target_from_oob, BmcTarget, Driver, OobError, OobSettings, Scheme, Secret};

use fleet::InFlight;
use journal::Journal;

/// A device to boot from once, at the next boot only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootDevice {
    /// The network (PXE).
    Pxe,
    /// The local disk.
    Disk,
}

/// What to do to a node's power or BMC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerOp {
    /// Read the power state.
    Status,
    /// Power on (nothing to do when on).
    On,
    /// Power off at once, not gracefully (nothing to do when off).
    Off,
    /// Ask the operating system to shut down (ACPI soft-off; nothing to do when off).
    SoftOff,
    /// Hard reset: a running machine restarts, a machine that is off is powered on.
    Cycle,
    /// Boot from this device at the next boot only.
    BootOnce(BootDevice),
    /// Chassis identify light on (true) or off (false).
    Identify(bool),
}

impl fmt::Display for PowerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerOp::Status => f.write_str("status"),
            PowerOp::On => f.write_str("on"),
            PowerOp::Off => f.write_str("off"),
            PowerOp::SoftOff => f.write_str("soft-off"),
            PowerOp::Cycle => f.write_str("cycle"),
            PowerOp::BootOnce(BootDevice::Pxe) => f.write_str("boot-once pxe"),
            PowerOp::BootOnce(BootDevice::Disk) => f.write_str("boot-once disk"),
            PowerOp::Identify(true) => f.write_str("identify on"),
            PowerOp::Identify(false) => f.write_str("identify off"),
        }
    }
}

/// A power state as a BMC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    /// Running.
    On,
    /// Off.
    Off,
    /// Redfish: being powered on.
    PoweringOn,
    /// Redfish: being powered off.
    PoweringOff,
    /// Redfish: paused (held in a low-power state by the BMC).
    Paused,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::PoweringOn => "powering on",
            PowerState::PoweringOff => "powering off",
            PowerState::Paused => "paused",
        })
    }
}

/// Why an operation failed, in one word; `is_transient` says which are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No complete answer within the per-call timeout (the call was abandoned).
    Timeout,
    /// The BMC never answered (ipmitool gave up after its own retransmissions).
    NoResponse,
    /// The connection was refused or reset (a BMC service restarting): retried.
    Refused,
    /// The BMC is busy (no free session, HTTP 429/5xx): retried.
    Busy,
    /// The BMC refused the account or password: never retried.
    Credentials,
    /// The BMC does not offer what the operation needs.
    Unsupported,
    /// The BMC answered with an error.
    Rejected,
    /// The answer was not what the protocol says it should be.
    Protocol,
    /// TLS failed (e.g. the certificate is not trusted).
    Tls,
    /// slipway's or the node's configuration is wrong (ipmitool missing, no unique system).
    Config,
}

impl FailureKind {
    /// A failure worth another call after a backoff.
    pub fn is_transient(self) -> bool {
        matches!(self, FailureKind::Refused | FailureKind::Busy)
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Timeout => "timeout",
            FailureKind::NoResponse => "no response",
            FailureKind::Refused => "refused",
            FailureKind::Busy => "busy",
            FailureKind::Credentials => "credentials",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Rejected => "rejected",
            FailureKind::Protocol => "protocol",
            FailureKind::Tls => "tls",
            FailureKind::Config => "config",
        })
    }
}

/// A failed call to a BMC: the kind, and what was expected and found, where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint}: {op}: {detail}")]
pub struct PowerError {
    /// Why, in one word.
    pub kind: FailureKind,
    /// The BMC (`ipmi host:port` or the Redfish base URL).
    pub endpoint: String,
    /// The operation.
    pub op: PowerOp,
    /// What happened (never a credential).
    pub detail: String,
}

impl PowerError {
    pub(crate) fn new(
        kind: FailureKind,
        target: &BmcTarget,
        op: PowerOp,
        detail: impl Into<String>,
    ) -> PowerError {
        PowerError {
            kind,
            endpoint: target.endpoint(),
            op,
            detail: detail.into(),
        }
    }
}

/// What a successful call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Done {
    /// The power state read, when the operation read one.
    pub power: Option<PowerState>,
    /// What happened, e.g. `ResetType ForceOff accepted (was on)`.
    pub message: String,
}

/// The service's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerConfig {
    /// Calls to BMCs at once, over every operation of the service.
    pub concurrency: usize,
    /// Bound of one call (one attempt of an operation); the call is abandoned after it
    /// (an ipmitool process is killed).
    pub timeout: Duration,
    /// Further attempts after a transient failure (`FailureKind::is_transient`).
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one, at most `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// The `ipmitool` program (a name looked up on `PATH`, or a path).
    pub ipmitool: PathBuf,
    /// Operations kept per node in the journal.
    pub history: usize,
    /// Extra CA certificates (PEM) trusted for Redfish, beside the system's store.
    pub ca_file: Option<PathBuf>,
}

impl Default for PowerConfig {
    fn default() -> PowerConfig {
        PowerConfig {
            concurrency: 64,
            timeout: Duration::from_secs(20),
            retries: 2,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            ipmitool: PathBuf::from("ipmitool"),
            history: 32,
            ca_file: None,
        }
    }
}

/// The service could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PowerSetupError {
    /// The CA file cannot be read or holds no certificate.
    #[error("power: CA file {path}: {detail}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A limit is zero.
    #[error("power: {what}: expected at least 1, found 0")]
    Zero {
        /// Which limit.
        what: &'static str,
    },
}

/// The power service: runs operations on BMCs within its limits and journals them.
/// Cheap to clone (shared state).
#[derive(Clone)]
pub struct PowerService {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: PowerConfig,
    calls: Semaphore,
    gauge: InFlight,
    journal: Journal,
    /// One operation at a time per node (its BMC), whatever asked for it.
    node_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    ipmi: ipmi::Ipmitool,
    redfish: redfish::Redfish,
}

impl PowerService {
    /// A service with these limits and no journal sink.
    pub fn new(cfg: PowerConfig) -> Result<PowerService, PowerSetupError> {
        PowerService::with_sink(cfg, None)
    }

    /// A service whose journal tells `sink` of every change.
    pub fn with_sink(
        cfg: PowerConfig,
        sink: Option<Arc<dyn JournalSink>>,
    ) -> Result<PowerService, PowerSetupError> {
        if cfg.concurrency == 0 {
            return Err(PowerSetupError::Zero {
                what: "concurrency",
            });
        }
        if cfg.timeout.is_zero() {
            return Err(PowerSetupError::Zero { what: "timeout" });
        }
        let redfish = redfish::Redfish::new(&cfg)?;
        Ok(PowerService {
            inner: Arc::new(Inner {
                calls: Semaphore::new(cfg.concurrency),
                gauge: InFlight::default(),
                journal: Journal::new(cfg.history, sink),
                node_locks: Mutex::new(HashMap::new()),
                ipmi: ipmi::Ipmitool::new(cfg.ipmitool.clone()),
                redfish,
                cfg,
            }),
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &PowerConfig {
        &self.inner.cfg
    }

    /// Runs `op` on one node and returns its final record.
    pub async fn run(&self, target: &BmcTarget, op: PowerOp) -> OperationRecord {
        let id = self.inner.journal.request(&target.node, target.driver, op);
        self.inner.execute(id, target, op).await
    }

    /// Starts `op` on every target at once (within the concurrency limit) and returns
    /// at once; the handle follows and awaits them. Needs a tokio runtime.
    pub fn fleet(&self, targets: Vec<BmcTarget>, op: PowerOp) -> FleetHandle {
        let mut ids = Vec::with_capacity(targets.len());
        let mut tasks = Vec::with_capacity(targets.len());
        for target in targets {
            let id = self.inner.journal.request(&target.node, target.driver, op);
            ids.push(id);
            let inner = self.inner.clone();
            tasks.push(tokio::spawn(
                async move { inner.execute(id, &target, op).await },
            ));
        }
        FleetHandle::new(self.clone(), ids, tasks)
    }

    /// A snapshot of one operation (while it runs, too).
    pub fn operation(&self, id: OperationId) -> Option<OperationRecord> {
        self.inner.journal.get(id)
    }

    /// Snapshots of a node's recent operations, oldest first.
    pub fn journal(&self, node: &str) -> Vec<OperationRecord> {
        self.inner.journal.node(node)
    }

    /// Calls to BMCs running now.
    pub fn in_flight(&self) -> usize {
        self.inner.gauge.now()
    }

    /// The most calls to BMCs that ran at once since the service started (or the last
    /// `reset_peak`).
    pub fn peak_in_flight(&self) -> usize {
        self.inner.gauge.peak()
    }

    /// Starts measuring the peak again.
    pub fn reset_peak(&self) {
        self.inner.gauge.reset_peak()
    }
}

impl Inner {
    async fn execute(&self, id: OperationId, target: &BmcTarget, op: PowerOp) -> OperationRecord {
        let basic = self
            .redfish
            .basic_auth_token(&target.username, target.password.expose());
        let node_lock = self.node_lock(&target.node);
        let _node = node_lock.lock().await;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let result = {
                let _permit = self
                    .calls
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.journal.update(id, |r| {
                    r.started.get_or_insert_with(crate::clock::system_now);
                    r.attempts = attempt;
                    r.outcome = Outcome::Running;
                    r.message = format!("attempt {attempt}");
                });
                let _call = self.gauge.enter();
                match tokio::time::timeout(self.cfg.timeout, self.call(target, op)).await {
                    Ok(r) => r,
                    Err(_) => Err(PowerError::new(
                        FailureKind::Timeout,
                        target,
                        op,
                        format!(
                            "expected an answer within {:?}, found none (call abandoned)",
                            self.cfg.timeout
                        ),
                    )),
                }
            };
            match result {
                Err(e) if e.kind.is_transient() && attempt <= self.cfg.retries => {
                    let wait = self.backoff(attempt);
                    let msg = scrub(&e.to_string(), target, &basic);
                    tracing::debug!(node = %target.node, %op, attempt, error = %msg, "power call failed; retrying");
                    self.journal.update(id, |r| {
                        r.message =
                            format!("attempt {attempt} failed: {msg}; retrying in {wait:?}");
                    });
                    tokio::time::sleep(wait).await;
                }
                other => break other,
            }
        };
        let (outcome, power, message) = match result {
            Ok(done) => (
                Outcome::Succeeded,
                done.power,
                scrub(&done.message, target, &basic),
            ),
            Err(e) => (
                Outcome::Failed(e.kind),
                None,
                scrub(&e.to_string(), target, &basic),
            ),
        };
        tracing::info!(node = %target.node, driver = %target.driver, %op, attempts = attempt, outcome = ?outcome, %message, "power operation finished");
        self.journal.update(id, |r| {
            r.finished = Some(crate::clock::system_now());
            r.outcome = outcome;
            r.power = power;
            r.message = message;
        });
        self.journal
            .get(id)
            .expect("an unfinished record is never dropped")
    }

    async fn call(&self, target: &BmcTarget, op: PowerOp) -> Result<Done, PowerError> {
        match target.driver {
            Driver::Ipmi => self.ipmi.call(target, op).await,
            Driver::Redfish => self.redfish.call(target, op).await,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.cfg
            .backoff
            .saturating_mul(factor)
            .min(self.cfg.max_backoff)
    }

    fn node_lock(&self, node: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.node_locks
            .lock()
            .unwrap()
            .entry(node.to_string())
            .or_default()
            .clone()
    }
}

/// Removes the password (and its Basic-auth form) from text a BMC or a library
/// produced: a BMC that echoes a request must not leak it into a record.
fn scrub(text: &str, target: &BmcTarget, basic: &str) -> String {
    let pw = target.password.expose();
    let mut out = if pw.is_empty() {
        text.to_string()
    } else {
        text.replace(pw, "***")
    };
    if !basic.is_empty() {
        out = out.replace(basic, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_password_and_its_basic_auth_form() {
        let t = BmcTarget::ipmi("n1", "127.0.0.1", 623, "admin", Secret::new("s3cr3t"));
        let r = redfish::Redfish::new(&PowerConfig::default()).unwrap();
        let basic = r.basic_auth_token("admin", "s3cr3t");
        let text = format!("bad password s3cr3t in Authorization: Basic {basic}");
        assert_eq!(
            scrub(&text, &t, &basic),
            "bad password *** in Authorization: Basic ***"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let svc = PowerService::new(PowerConfig {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..PowerConfig::default()
        })
        .unwrap();
        let waits: Vec<Duration> = (1..=4).map(|a| svc.inner.backoff(a)).collect();
        assert_eq!(
            waits,
            [100, 200, 350, 350].map(Duration::from_millis).to_vec()
        );
    }

    #[test]
    fn only_refused_and_busy_are_retried() {
        use FailureKind::*;
        let all = [
            Timeout,
            NoResponse,
            Refused,
            Busy,
            Credentials,
            Unsupported,
            Rejected,
            Protocol,
            Tls,
            Config,
        ];
        let retried: Vec<FailureKind> = all.into_iter().filter(|k| k.is_transient()).collect();
        assert_eq!(retried, vec![Refused, Busy]);
    }

    #[test]
    fn zero_limits_are_refused() {
        let err = PowerService::new(PowerConfig {
            concurrency: 0,
            ..PowerConfig::default()
        })
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "power: concurrency: expected at least 1, found 0"
        );
    }
}
