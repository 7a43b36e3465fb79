//! Node deployments (DESIGN §4): the current deployment of each node, the
//! `inputs_hash` it was made from, and its boot actions.
//!
//! A deployment is created when a node first needs one and kept while the
//! node's `inputs_hash` is unchanged, so a commit that does not touch a node
//! leaves its action ids (and so its keys and boot data) as they were.

use super::db::{params, OptionalExtension, Row};
use serde::Serialize;

use super::boot_actions::{read_action, BootActionRecord, COLUMNS as ACTION_COLUMNS};
use super::{BootActionStatus, Context, StateError, Store};

/// Status of a boot action created with `signaling: false` (Drydock's
/// `unreported`): it accepts no report.
pub const BOOT_ACTION_UNREPORTED: &str = BootActionStatus::Unreported.as_str();

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

fn read(r: &Row<'_>) -> super::db::Result<DeploymentRecord> {
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
    conn: &super::db::Db,
    node: &str,
) -> super::db::Result<Option<DeploymentRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deployments WHERE node = ?1"
    ))?
    .query_row([node], read)
    .optional()
}

/// Status of a boot action whose deployment an operator revoked
/// (`destroy_nodes`): its keys are refused from then on.
pub const BOOT_ACTION_REVOKED: &str = BootActionStatus::Revoked.as_str();

/// A deployment made (ids chosen, boot data checked) before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    /// The deployment row.
    pub record: DeploymentRecord,
    /// Its boot actions, one per BootAction targeting the node.
    pub actions: Vec<BootActionRecord>,
}

/// Ends the node's current deployment, if any: its row goes, its boot actions
/// are marked `ended` (and with `revoke`, the open ones `Revoked`).
fn end_current(
    tx: &super::db::Db,
    node: &str,
    now: i64,
    revoke: bool,
) -> super::db::Result<Option<DeploymentRecord>> {
    let current = current_deployment(tx, node)?;
    if let Some(d) = &current {
        tx.prepare_cached("DELETE FROM deployments WHERE node = ?1")?
            .execute([node])?;
        if revoke {
            tx.prepare_cached(
                "UPDATE boot_actions SET status = ?1
                 WHERE node = ?2 AND deployment = ?3 AND finalized IS NULL",
            )?
            .execute(params![BootActionStatus::Revoked, node, d.deployment])?;
        }
        tx.prepare_cached(
            "UPDATE boot_actions SET ended = ?1
             WHERE node = ?2 AND deployment = ?3 AND ended IS NULL",
        )?
        .execute(params![now, node, d.deployment])?;
    }
    Ok(current)
}

/// Writes a new deployment and its boot actions (the node has none now).
fn insert_new(tx: &super::db::Db, new: &NewDeployment) -> super::db::Result<()> {
    let d = &new.record;
    tx.prepare_cached(&format!(
        "INSERT INTO deployments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?
    .execute(params![
        d.node,
        d.deployment,
        d.inputs_hash,
        d.design_ref,
        d.committed_at,
        d.created
    ])?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO boot_actions ({ACTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL)"
    ))?;
    for a in &new.actions {
        insert.execute(params![
            a.action_id,
            a.node,
            a.action,
            a.deployment,
            a.created,
            a.status
        ])?;
    }
    Ok(())
}

/// Inside an apply's transaction: the deployments of the nodes a revision
/// changed replace their current ones, and the nodes it removed lose theirs
/// (their keys are refused from then on).
pub(super) fn write_deployments(
    tx: &super::db::Db,
    made: &[NewDeployment],
    removed: &[String],
    now: i64,
) -> Result<usize, StateError> {
    for node in removed {
        end_current(tx, node, now, false)
            .ctx(|| format!("ending the deployment of removed node {node}"))?;
    }
    for new in made {
        let node = &new.record.node;
        let what = || format!("making the deployment of node {node}");
        end_current(tx, node, now, false).ctx(what)?;
        insert_new(tx, new).ctx(what)?;
    }
    Ok(made.len())
}

impl Store {
    /// Ends a node's current deployment, so its next request makes a new one
    /// (new action ids and keys). Its boot actions are marked ended (their
    /// keys refused); with `revoke` the open ones also become `Revoked`. One
    /// IMMEDIATE transaction. Returns the ended deployment, if there was one.
    pub fn end_deployment(
        &mut self,
        node: &str,
        revoke: bool,
    ) -> Result<Option<DeploymentRecord>, StateError> {
        let what = || format!("ending the deployment of node {node}");
        let tx = self.conn.transaction_immediate().ctx(what)?;
        let current = end_current(&tx, node, super::now(), revoke).ctx(what)?;
        tx.commit().ctx(what)?;
        Ok(current)
    }

    /// The current deployment of a node, if it has one.
    pub fn deployment_of(&self, node: &str) -> Result<Option<DeploymentRecord>, StateError> {
        current_deployment(&self.conn, node)
            .ctx(|| format!("reading the deployment of node {node}"))
    }

    /// The current deployment of a node and its boot actions, if it has one.
    pub fn deployment_with_actions(
        &mut self,
        node: &str,
    ) -> Result<Option<(DeploymentRecord, Vec<BootActionRecord>)>, StateError> {
        let what = || format!("reading the deployment of node {node}");
        // One read transaction: the row and its actions agree.
        let tx = self.conn.read_transaction().ctx(what)?;
        let Some(d) = current_deployment(&tx, node).ctx(what)? else {
            return Ok(None);
        };
        let actions = actions_of(&tx, node, &d.deployment).ctx(what)?;
        tx.commit().ctx(what)?;
        Ok(Some((d, actions)))
    }

    /// How many nodes have a deployment (whose keys come from the secret).
    pub fn deployment_count(&self) -> Result<u64, StateError> {
        self.conn
            .query_row("SELECT count(*) FROM deployments", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .ctx(|| "counting deployments".into())
    }

    /// Writes `new` as the node's deployment unless, by now, the node has a
    /// current deployment made from the same `inputs_hash` (another request
    /// made it first): then that one is kept. A stale current deployment is
    /// ended. One IMMEDIATE transaction; returns the deployment in force.
    pub fn adopt_deployment(
        &mut self,
        new: &NewDeployment,
    ) -> Result<(DeploymentRecord, Vec<BootActionRecord>), StateError> {
        let node = &new.record.node;
        let what = || format!("making the deployment of node {node}");
        let tx = self.conn.transaction_immediate().ctx(what)?;
        let current = current_deployment(&tx, node).ctx(what)?;
        let record = match current {
            Some(d) if d.inputs_hash == new.record.inputs_hash => d,
            _ => {
                end_current(&tx, node, new.record.created, false).ctx(what)?;
                insert_new(&tx, new).ctx(what)?;
                new.record.clone()
            }
        };
        let actions = actions_of(&tx, node, &record.deployment).ctx(what)?;
        tx.commit().ctx(what)?;
        Ok((record, actions))
    }

    /// Replaces the node's deployment by `new` whatever its inputs (a
    /// redeploy), ending the current one. One IMMEDIATE transaction; returns
    /// the ended deployment, if there was one.
    pub fn replace_deployment(
        &mut self,
        new: &NewDeployment,
    ) -> Result<Option<DeploymentRecord>, StateError> {
        let node = &new.record.node;
        let what = || format!("redeploying node {node}");
        let tx = self.conn.transaction_immediate().ctx(what)?;
        let ended = end_current(&tx, node, new.record.created, false).ctx(what)?;
        insert_new(&tx, new).ctx(what)?;
        tx.commit().ctx(what)?;
        Ok(ended)
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
        // The common case, a deployment already made from these inputs, is a
        // read: no write lock is taken on every boot-data request.
        if let Some((d, actions)) = self.deployment_with_actions(node)? {
            if d.inputs_hash == inputs.inputs_hash {
                return Ok((d, actions));
            }
        }
        let new = new_deployment(node, inputs, now, new_id);
        self.adopt_deployment(&new)
    }
}

/// A deployment of `node` from `inputs` with ids from `new_id`, not written.
pub fn new_deployment(
    node: &str,
    inputs: &DeploymentInputs<'_>,
    now: i64,
    new_id: &mut dyn FnMut() -> String,
) -> NewDeployment {
    let record = DeploymentRecord {
        node: node.to_string(),
        deployment: new_id(),
        inputs_hash: inputs.inputs_hash.to_string(),
        design_ref: inputs.design_ref.to_string(),
        committed_at: inputs.committed_at,
        created: now,
    };
    let mut actions: Vec<BootActionRecord> = inputs
        .actions
        .iter()
        .map(|(action, signaling)| BootActionRecord {
            action_id: new_id(),
            node: node.to_string(),
            action: action.clone(),
            deployment: record.deployment.clone(),
            created: now,
            status: if *signaling {
                BootActionStatus::Incomplete
            } else {
                BootActionStatus::Unreported
            },
            finalized: None,
            ended: None,
        })
        .collect();
    // The order `actions_of` reads them back in.
    actions.sort_by(|a, b| (&a.action, &a.action_id).cmp(&(&b.action, &b.action_id)));
    NewDeployment { record, actions }
}

fn actions_of(
    tx: &super::db::Db,
    node: &str,
    deployment: &str,
) -> super::db::Result<Vec<BootActionRecord>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {ACTION_COLUMNS} FROM boot_actions WHERE node = ?1 AND deployment = ?2
         ORDER BY action, action_id"
    ))?;
    stmt.query_map(params![node, deployment], read_action)?
        .collect::<super::db::Result<Vec<_>>>()
}
