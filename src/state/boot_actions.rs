//! Boot actions of node deployments and their status reports (DESIGN §4–5).
//!
//! One row per (node, boot action) of a deployment, keyed by its ULID
//! `action_id`; reports are appended, never rewritten, and a report carrying a
//! final status closes the action in the same transaction.

use super::db::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{Context, StateError, Store};

/// The status of a boot action no node has finalised yet (Drydock's word).
pub const BOOT_ACTION_INCOMPLETE: &str = BootActionStatus::Incomplete.as_str();

/// A boot action's status, stored and served as Drydock's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BootActionStatus {
    /// Not finalised yet; takes reports.
    Incomplete,
    /// Created with `signaling: false`: takes no report.
    Unreported,
    /// Its deployment was revoked (`destroy_nodes`) before it was finalised.
    Revoked,
    /// The node reported success.
    Success,
    /// The node reported failure.
    Failure,
}

impl BootActionStatus {
    /// The word stored in SQLite and served.
    pub const fn as_str(self) -> &'static str {
        match self {
            BootActionStatus::Incomplete => "Incomplete",
            BootActionStatus::Unreported => "Unreported",
            BootActionStatus::Revoked => "Revoked",
            BootActionStatus::Success => "Success",
            BootActionStatus::Failure => "Failure",
        }
    }
}

impl std::str::FromStr for BootActionStatus {
    type Err = StateError;

    fn from_str(word: &str) -> Result<Self, StateError> {
        [
            BootActionStatus::Incomplete,
            BootActionStatus::Unreported,
            BootActionStatus::Revoked,
            BootActionStatus::Success,
            BootActionStatus::Failure,
        ]
        .into_iter()
        .find(|s| s.as_str() == word)
        .ok_or_else(|| StateError::Invalid(format!("unknown boot action status `{word}`")))
    }
}

impl std::fmt::Display for BootActionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for BootActionStatus {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

impl super::db::ToValue for BootActionStatus {
    fn to_value(&self) -> super::db::Value {
        super::db::Value::Text(self.as_str().to_string())
    }
}

impl super::db::FromValue for BootActionStatus {
    fn from_value(v: super::db::ValueRef<'_>) -> Result<Self, String> {
        match v {
            super::db::ValueRef::Text(word) => word.parse().map_err(|e: StateError| e.to_string()),
            other => Err(format!("expected a boot action status, found {other:?}")),
        }
    }
}

/// One boot action of a node's deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootActionRecord {
    /// 26-character ULID.
    pub action_id: String,
    /// Hostname of the node.
    pub node: String,
    /// Name of the BootAction document.
    pub action: String,
    /// The deployment the action belongs to.
    pub deployment: String,
    /// When it was created, seconds since the Unix epoch.
    pub created: i64,
    /// `Incomplete` until finalised, then the status reported (`Success`, `Failure`).
    pub status: BootActionStatus,
    /// When a report finalised it, seconds since the Unix epoch.
    pub finalized: Option<i64>,
    /// When its deployment ended (redeploy, revoke, removal, or a commit
    /// changing the node), seconds since the Unix epoch; `None` while the
    /// deployment is the node's current one. An ended action takes no report.
    pub ended: Option<i64>,
}

/// One detail of a status report, as the node sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootActionDetail {
    /// Seconds since the Unix epoch when it was recorded.
    pub ts: i64,
    /// The node's message.
    pub message: String,
    /// Whether the node reported it as an error.
    pub error: bool,
    /// Any other fields of the detail, as a JSON object.
    pub extra: serde_json::Value,
}

/// What recording a status report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// No boot action has that id (HTTP 404).
    Unknown,
    /// The action was already finalised; nothing was written (HTTP 409).
    AlreadyFinalized(BootActionRecord),
    /// The report is committed; the action as it now stands (HTTP 200).
    Recorded(BootActionRecord),
    /// The action's deployment has ended; nothing was written (HTTP 403).
    Ended(BootActionRecord),
}

pub(super) const COLUMNS: &str =
    "action_id, node, action, deployment, created, status, finalized, ended";

pub(super) fn read_action(r: &Row<'_>) -> super::db::Result<BootActionRecord> {
    Ok(BootActionRecord {
        action_id: r.get(0)?,
        node: r.get(1)?,
        action: r.get(2)?,
        deployment: r.get(3)?,
        created: r.get(4)?,
        status: r.get(5)?,
        finalized: r.get(6)?,
        ended: r.get(7)?,
    })
}

impl Store {
    /// Records the boot actions of a node's new deployment, `(action_id, action
    /// name)` each, in one transaction, all `Incomplete`.
    pub fn create_boot_actions(
        &mut self,
        node: &str,
        deployment: &str,
        created: i64,
        actions: &[(String, String)],
    ) -> Result<(), StateError> {
        let what = || format!("creating boot actions of node {node}, deployment {deployment}");
        let tx = self.conn.transaction().ctx(what)?;
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO boot_actions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)"
                ))
                .ctx(what)?;
            for (id, action) in actions {
                insert
                    .execute(params![
                        id,
                        node,
                        action,
                        deployment,
                        created,
                        BootActionStatus::Incomplete
                    ])
                    .ctx(|| format!("{}: boot action {action} ({id})", what()))?;
            }
        }
        tx.commit().ctx(what)
    }

    /// The boot actions of one deployment of a node, by action name.
    pub fn boot_actions_of(
        &self,
        node: &str,
        deployment: &str,
    ) -> Result<Vec<BootActionRecord>, StateError> {
        let what = || format!("reading boot actions of node {node}, deployment {deployment}");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM boot_actions WHERE node = ?1 AND deployment = ?2
                 ORDER BY action, action_id"
            ))
            .ctx(what)?;
        stmt.query_map(params![node, deployment], read_action)
            .ctx(what)?
            .collect::<super::db::Result<Vec<_>>>()
            .ctx(what)
    }

    /// One boot action by id.
    pub fn boot_action(&self, action_id: &str) -> Result<Option<BootActionRecord>, StateError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM boot_actions WHERE action_id = ?1"
            ))
            .and_then(|mut s| s.query_row([action_id], read_action).optional())
            .ctx(|| format!("reading boot action {action_id}"))
    }

    /// The details reported for a boot action, oldest first.
    pub fn boot_action_details(
        &self,
        action_id: &str,
    ) -> Result<Vec<BootActionDetail>, StateError> {
        let what = || format!("reading the reports of boot action {action_id}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, message, error, extra FROM boot_action_status
                 WHERE action_id = ?1 ORDER BY id",
            )
            .ctx(what)?;
        let rows = stmt
            .query_map([action_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .ctx(what)?;
        let mut out = Vec::new();
        for row in rows {
            let (ts, message, error, extra) = row.ctx(what)?;
            let extra = serde_json::from_str(&extra).map_err(|e| {
                StateError::Invalid(format!(
                    "boot action {action_id}: expected a JSON object in `extra`, found an unreadable value: {e}"
                ))
            })?;
            out.push(BootActionDetail {
                ts,
                message,
                error,
                extra,
            });
        }
        Ok(out)
    }

    /// Appends a node's status report and, when it carries a `status`,
    /// finalises the action, all in one transaction that is committed before
    /// this returns (so nothing acknowledged is lost). A finalised action
    /// accepts nothing more. Each recorded report is also stored as build data
    /// of the node: generator `bootaction:<action name>`, task id the
    /// deployment, `application/json` holding the action's status and the
    /// report's details.
    pub fn report_boot_action(
        &mut self,
        action_id: &str,
        status: Option<&str>,
        details: &[BootActionDetail],
        now: i64,
    ) -> Result<ReportOutcome, StateError> {
        let report = Report {
            action_id,
            status,
            details,
        };
        self.report_boot_actions(std::slice::from_ref(&report), now)?
            .pop()
            .expect("one outcome per report")
    }

    /// Records several status reports in ONE transaction (group commit: one
    /// sync for all), in order, with [`Store::report_boot_action`]'s rules:
    /// a report that finalises an action is seen by the reports after it.
    /// Each report runs in its own savepoint, so one that fails leaves the
    /// others. Nothing is durable, and no outcome should be acknowledged,
    /// until this returns `Ok`.
    pub fn report_boot_actions(
        &mut self,
        reports: &[Report<'_>],
        now: i64,
    ) -> Result<Vec<Result<ReportOutcome, StateError>>, StateError> {
        let what = || format!("recording {} boot-action report(s)", reports.len());
        // IMMEDIATE: the finalised check and the write happen under one lock,
        // so two reports racing cannot both finalise.
        let mut tx = self.conn.transaction_immediate().ctx(what)?;
        let mut outcomes = Vec::with_capacity(reports.len());
        for r in reports {
            let mut sp = tx.savepoint().ctx(what)?;
            let outcome = record_report(&sp, r, now);
            if outcome.is_ok() {
                sp.commit().ctx(what)?;
            } else {
                sp.rollback().ctx(what)?;
            }
            outcomes.push(outcome);
        }
        tx.commit().ctx(what)?;
        Ok(outcomes)
    }
}

/// One status report of a node (see [`Store::report_boot_actions`]).
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The boot action reported on.
    pub action_id: &'a str,
    /// `Success`/`Failure` finalises the action; `None` only appends details.
    pub status: Option<&'a str>,
    /// The report's details, appended.
    pub details: &'a [BootActionDetail],
}

/// One report inside the caller's transaction.
fn record_report(
    tx: &super::db::Db,
    r: &Report<'_>,
    now: i64,
) -> Result<ReportOutcome, StateError> {
    let action_id = r.action_id;
    let what = || format!("recording a report for boot action {action_id}");
    let mut select = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM boot_actions WHERE action_id = ?1"
        ))
        .ctx(what)?;
    let Some(record) = select
        .query_row([action_id], read_action)
        .optional()
        .ctx(what)?
    else {
        return Ok(ReportOutcome::Unknown);
    };
    // Checked here too, inside the report's transaction: the deployment may
    // have ended since the handler looked.
    if record.ended.is_some() {
        return Ok(ReportOutcome::Ended(record));
    }
    // Only an `Incomplete` action takes reports (Drydock): a finalised
    // one, or one created `Unreported` (`signaling: false`), is 409.
    if record.finalized.is_some() || record.status != BootActionStatus::Incomplete {
        return Ok(ReportOutcome::AlreadyFinalized(record));
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO boot_action_status (action_id, ts, message, error, extra)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .ctx(what)?;
    for d in r.details {
        insert
            .execute(params![
                action_id,
                d.ts,
                d.message,
                d.error,
                d.extra.to_string()
            ])
            .ctx(what)?;
    }
    let status = r.status.map(str::parse::<BootActionStatus>).transpose()?;
    let record = match status {
        Some(status) => {
            tx.prepare_cached(
                "UPDATE boot_actions SET status = ?2, finalized = ?3 WHERE action_id = ?1",
            )
            .and_then(|mut u| u.execute(params![action_id, status, now]))
            .ctx(what)?;
            BootActionRecord {
                status,
                finalized: Some(now),
                ..record
            }
        }
        None => record,
    };
    // The report is also build data of the node (generator
    // `bootaction:<name>`), so `GET .../builddata` shows it.
    let element = serde_json::json!({
        "action_id": record.action_id,
        "action": record.action,
        "deployment": record.deployment,
        "status": record.status,
        "finalized": record.finalized,
        "details": r.details,
    });
    tx.prepare_cached(
        "INSERT INTO build_data (node, task_id, generator, data_format, data_element, collected_at)
         VALUES (?1, ?2, ?3, 'application/json', ?4, ?5)",
    )
    .and_then(|mut i| {
        i.execute(params![
            record.node,
            record.deployment,
            format!("bootaction:{}", record.action),
            element.to_string(),
            now
        ])
    })
    .ctx(what)?;
    Ok(ReportOutcome::Recorded(record))
}
