//! Node deployments (DESIGN §4): the current deployment of each node, the
//! `inputs_hash` it was made from, and its boot actions.
//!
//! A deployment is created when a node first needs one and kept while the
//! node's `inputs_hash` is unchanged, so a commit that does not touch a node
//! leaves its action ids (and so its keys and boot data) as they were.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::boot_actions::{read_action, BootActionRecord, COLUMNS as ACTION_COLUMNS};
use super::{Context, StateError, Store, BOOT_ACTION_INCOMPLETE};

/// Status of a boot action created with `signaling: false` (Drydock's
/// `unreported`): it accepts no report.
pub const BOOT_ACTION_UNREPORTED: &str = "Unreported";

/// The current deployment of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentRecord {
    /// Hostname.
    pub node: String,
    /// The deployment id (a ULID).
    pub deployment: String,
    /// The node's `inputs_hash` the deployment was made from.
    pub inputs_hash: String,
    /// The commit that last changed the node's inputs (`action.design_ref`).
    pub design_ref: String,
    /// That commit's time, seconds since the Unix epoch (tar member mtime).
    pub committed_at: i64,
    /// When the deployment was created, seconds since the Unix epoch.
    pub created: i64,
}

/// What a new deployment is made of.
#[derive(Debug, Clone)]
pub struct DeploymentInputs<'a> {
    /// The node's current `inputs_hash`.
    pub inputs_hash: &'a str,
    /// The commit that last changed the node's inputs.
    pub design_ref: &'a str,
    /// That commit's time.
    pub committed_at: i64,
    /// `(action name, signaling)` of every BootAction targeting the node.
    pub actions: &'a [(String, bool)],
}

const COLUMNS: &str = "node, deployment, inputs_hash, design_ref, committed_at, created";

fn read(r: &Row<'_>) -> rusqlite::Result<DeploymentRecord> {
    Ok(DeploymentRecord {
        node: r.get(0)?,
        deployment: r.get(1)?,
        inputs_hash: r.get(2)?,
        design_ref: r.get(3)?,
        committed_at: r.get(4)?,
        created: r.get(5)?,
    })
}

/// The node's current deployment, read inside a transaction.
fn current_deployment(
    conn: &rusqlite::Connection,
    node: &str,
) -> rusqlite::Result<Option<DeploymentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deployments WHERE node = ?1"
    ))?
    .query_row([node], read)
    .optional()
}

/// Status of a boot action whose deployment an operator revoked
/// (`destroy_nodes`): its keys are refused from then on.
pub const BOOT_ACTION_REVOKED: &str = "Revoked";

impl Store {
    /// Ends a node's current deployment, so its next request makes a new one
    /// (new action ids and keys). With `revoke`, the ended deployment's open
    /// boot actions become `Revoked` and their keys are refused. One IMMEDIATE
    /// transaction. Returns the ended deployment, if there was one.
    pub fn end_deployment(
        &mut self,
        node: &str,
        revoke: bool,
    ) -> Result<Option<DeploymentRecord>, StateError> {
        let what = || format!("ending the deployment of node {node}");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(what)?;
        let current = current_deployment(&tx, node).ctx(what)?;
        if let Some(d) = &current {
            tx.execute("DELETE FROM deployments WHERE node = ?1", [node])
                .ctx(what)?;
            if revoke {
                tx.execute(
                    "UPDATE boot_actions SET status = ?1 WHERE node = ?2 AND deployment = ?3 AND finalized IS NULL",
                    params![BOOT_ACTION_REVOKED, node, d.deployment],
                )
                .ctx(what)?;
            }
        }
        tx.commit().ctx(what)?;
        Ok(current)
    }

    /// The current deployment of a node, if it has one.
    pub fn deployment_of(&self, node: &str) -> Result<Option<DeploymentRecord>, StateError> {
        current_deployment(&self.conn, node)
            .ctx(|| format!("reading the deployment of node {node}"))
    }

    /// The node's deployment for `inputs`: the current one when it was made
    /// from the same `inputs_hash`, else a new one (id from `new_id`, one boot
    /// action per entry of `inputs.actions`, ids from `new_id` too), replacing
    /// it. One IMMEDIATE transaction, so concurrent first requests agree.
    pub fn ensure_deployment(
        &mut self,
        node: &str,
        inputs: &DeploymentInputs<'_>,
        now: i64,
        new_id: &mut dyn FnMut() -> String,
    ) -> Result<(DeploymentRecord, Vec<BootActionRecord>), StateError> {
        let what = || format!("making the deployment of node {node}");
        // The common case, a deployment already made from these inputs, is a
        // read: no write lock is taken on every boot-data request.
        {
            let tx = self.conn.transaction().ctx(what)?;
            let current = current_deployment(&tx, node).ctx(what)?;
            if let Some(d) = current.filter(|d| d.inputs_hash == inputs.inputs_hash) {
                let actions = actions_of(&tx, node, &d.deployment).ctx(what)?;
                tx.commit().ctx(what)?;
                return Ok((d, actions));
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(what)?;
        let current = current_deployment(&tx, node).ctx(what)?;
        let record = match current {
            Some(d) if d.inputs_hash == inputs.inputs_hash => d,
            _ => {
                let d = DeploymentRecord {
                    node: node.to_string(),
                    deployment: new_id(),
                    inputs_hash: inputs.inputs_hash.to_string(),
                    design_ref: inputs.design_ref.to_string(),
                    committed_at: inputs.committed_at,
                    created: now,
                };
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO deployments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    ),
                    params![
                        d.node,
                        d.deployment,
                        d.inputs_hash,
                        d.design_ref,
                        d.committed_at,
                        d.created
                    ],
                )
                .ctx(what)?;
                let mut insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO boot_actions ({ACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)"
                    ))
                    .ctx(what)?;
                for (action, signaling) in inputs.actions {
                    let status = if *signaling {
                        BOOT_ACTION_INCOMPLETE
                    } else {
                        BOOT_ACTION_UNREPORTED
                    };
                    insert
                        .execute(params![new_id(), node, action, d.deployment, now, status])
                        .ctx(|| format!("{}: boot action {action}", what()))?;
                }
                d
            }
        };
        let actions = actions_of(&tx, node, &record.deployment).ctx(what)?;
        tx.commit().ctx(what)?;
        Ok((record, actions))
    }
}

fn actions_of(
    tx: &rusqlite::Transaction<'_>,
    node: &str,
    deployment: &str,
) -> rusqlite::Result<Vec<BootActionRecord>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {ACTION_COLUMNS} FROM boot_actions WHERE node = ?1 AND deployment = ?2
         ORDER BY action, action_id"
    ))?;
    let rows = stmt
        .query_map(params![node, deployment], read_action)?
        .collect::<rusqlite::Result<Vec<_>>>();
    rows
}
