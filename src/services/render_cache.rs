//! The render cache: what rendering needs of the applied design (its
//! templates compiled once per revision, `Index`) and the boot data
//! rendered per (node, deployment, kind), kept in memory until a revision
//! changes the node. Also the offline renderers (`slipway render`, the site
//! benchmark), which render the same way without a cache.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::deployments::BootError;
use crate::design::Design;
use crate::keys::Secret;
use crate::render::bootdata::{self, BootDataKind, CompiledActions, NodeAction, RenderError};
use crate::render::context::{ActionValues, ContextBuilder};
use crate::state::{BootActionRecord, DeploymentRecord};

/// A deployment as served from memory, with its rendered boot data (one
/// slot per kind, filled on first request or by the pass that made it).
pub(super) struct Entry {
    pub(super) record: DeploymentRecord,
    pub(super) actions: Vec<BootActionRecord>,
    pub(super) rendered: [OnceLock<Arc<Rendered>>; 4],
}

/// Rendered boot data and its ETag.
#[derive(Debug)]
pub struct Rendered {
    /// The bytes served (shared, not copied, per response).
    pub bytes: Bytes,
    /// sha256 of the bytes as hex (quote it for the `ETag` header).
    pub sha256: String,
    /// The `ETag` header value: the quoted sha256.
    pub etag: String,
}

impl Rendered {
    pub(super) fn of(bytes: Vec<u8>) -> Arc<Rendered> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Arc::new(Rendered {
            bytes: Bytes::from(bytes),
            etag: format!("\"{sha256}\""),
            sha256,
        })
    }
}

/// What rendering needs of a design: nodes by name, targets, templates.
pub(super) struct Index {
    pub(super) by_name: HashMap<String, usize>,
    /// Node index to the indices of the BootActions that target it.
    pub(super) targets: Vec<Vec<usize>>,
    pub(super) compiled: CompiledActions,
}

/// The design of one applied commit, compiled for rendering.
pub(super) struct Loaded {
    pub(super) commit: String,
    pub(super) design: Design,
    pub(super) index: Index,
}

/// Which design is being served.
#[derive(Clone)]
pub(super) enum Serving {
    /// No applied revision (yet).
    Nothing,
    /// The applied revision `commit` is being read after a start.
    Loading(String),
    /// The applied revision, ready.
    Ready(Arc<Loaded>),
    /// The applied revision cannot be read or validated again.
    Unavailable { commit: String, reason: String },
}

/// What the service serves, for health checks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServingState {
    /// No applied revision.
    Nothing,
    /// The applied revision is being read after a start.
    Loading {
        /// Its commit.
        commit: String,
    },
    /// The applied revision's design is loaded.
    Ready {
        /// Its commit.
        commit: String,
    },
    /// The applied revision cannot be served (boot data answers 503).
    Unavailable {
        /// Its commit.
        commit: String,
        /// Why.
        reason: String,
    },
}

/// The design being served and the deployments served from memory, by
/// node; they change together, under one write lock. An entry is valid as
/// long as its node's inputs are unchanged: an applied revision drops the
/// entries of the nodes it affects (and only those), a redeploy or revoke
/// drops the node's. `generation` counts those drops, so a database read that
/// raced one is not cached.
pub(super) struct Served {
    pub(super) generation: u64,
    pub(super) design: Serving,
    pub(super) nodes: HashMap<String, Arc<Entry>>,
}

/// Boot data rendered for a new deployment (the kinds its node had asked
/// for), by kind.
pub(super) type RenderedKinds = [Option<Arc<Rendered>>; 4];

/// The design of `serving`, or the error a request gets without one.
pub(super) fn serving_error(serving: &Serving) -> Result<Arc<Loaded>, BootError> {
    match serving {
        Serving::Ready(l) => Ok(l.clone()),
        Serving::Nothing => Err(BootError::NotServing),
        Serving::Loading(c) => Err(BootError::Loading { commit: c.clone() }),
        Serving::Unavailable { commit, reason } => Err(BootError::Unavailable {
            commit: commit.clone(),
            reason: reason.clone(),
        }),
    }
}

impl Index {
    /// Compiles a valid design for rendering: nodes, targets, templates.
    pub(super) fn build(design: &Design) -> Result<Index, RenderError> {
        let nodes = design.effective_nodes();
        // Targeting is computed once, by the design.
        let targets = design.node_boot_actions().to_vec();
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let compiled = CompiledActions::compile(design)?;
        Ok(Index {
            by_name,
            targets,
            compiled,
        })
    }

    /// `(action name, signaling)` of every BootAction targeting node `idx`.
    pub(super) fn actions_of(&self, idx: usize) -> Vec<(String, bool)> {
        self.targets[idx]
            .iter()
            .map(|&b| {
                (
                    self.compiled.name(b).to_string(),
                    self.compiled.signaling(b),
                )
            })
            .collect()
    }

    /// Node `idx`'s BootActions with the values of `actions` (its deployment's).
    pub(super) fn node_actions(
        &self,
        idx: usize,
        record: &DeploymentRecord,
        actions: &[BootActionRecord],
        secret: &Secret,
        report_url: &str,
    ) -> Vec<NodeAction> {
        self.targets[idx]
            .iter()
            .filter_map(|&b| {
                let name = self.compiled.name(b);
                let rec = actions.iter().find(|a| a.action == name)?;
                Some(NodeAction {
                    index: b,
                    values: ActionValues {
                        action_id: rec.action_id.clone(),
                        action_key: secret.action_key(&rec.action_id),
                        report_url: report_url.to_string(),
                        design_ref: record.design_ref.clone(),
                    },
                })
            })
            .collect()
    }

    pub(super) fn node_index(&self, node: &str) -> Result<usize, BootError> {
        self.by_name
            .get(node)
            .copied()
            .ok_or_else(|| BootError::UnknownNode(node.to_string()))
    }
}

/// Renders one node's boot data with its deployment's action values.
pub(super) fn render_with(
    design: &Design,
    index: &Index,
    record: &DeploymentRecord,
    actions: &[BootActionRecord],
    secret: &Secret,
    report_url: &str,
    kind: BootDataKind,
) -> Result<Vec<u8>, BootError> {
    let idx = index.node_index(&record.node)?;
    let node = &design.effective_nodes()[idx];
    let ctx = ContextBuilder::new(design).node(node);
    let actions = index.node_actions(idx, record, actions, secret, report_url);
    let mtime = record.committed_at.max(0) as u64;
    Ok(bootdata::render_node(
        &index.compiled,
        &ctx,
        &actions,
        kind,
        mtime,
    )?)
}

/// Renders every unit and file asset of a deployment once, keeping nothing:
/// whether its boot data of any kind renders (packing a tarball or the
/// package list cannot fail on the values).
pub(super) fn check_assets(
    design: &Design,
    index: &Index,
    record: &DeploymentRecord,
    actions: &[BootActionRecord],
    secret: &Secret,
    report_url: &str,
) -> Result<(), RenderError> {
    let Some(&idx) = index.by_name.get(&record.node) else {
        return Ok(());
    };
    let node = &design.effective_nodes()[idx];
    let ctx = ContextBuilder::new(design).node(node);
    let actions = index.node_actions(idx, record, actions, secret, report_url);
    index
        .compiled
        .render_files(&ctx, &actions, BootDataKind::All)
        .map(|_| ())
}

/// Renders a node's boot data offline (`slipway render`): `actions` gives
/// the action values per BootAction name; a name missing gets placeholder
/// values (`ActionValues::placeholder`) with `design_ref` and `report_url` set.
pub fn render_offline(
    design: &Design,
    node: &str,
    kind: BootDataKind,
    mtime: u64,
    design_ref: &str,
    report_url: &str,
    action_values: &dyn Fn(&str) -> Option<ActionValues>,
) -> Result<Vec<u8>, BootError> {
    let nodes = design.effective_nodes();
    let idx = nodes
        .iter()
        .position(|n| n.name == node)
        .ok_or_else(|| BootError::UnknownNode(node.into()))?;
    let compiled = CompiledActions::compile(design)?;
    let actions: Vec<NodeAction> = design
        .boot_actions
        .iter()
        .enumerate()
        .filter(|(b, _)| design.node_boot_actions()[idx].contains(b))
        .map(|(b, ba)| NodeAction {
            index: b,
            values: action_values(&ba.name).unwrap_or_else(|| ActionValues {
                design_ref: design_ref.to_string(),
                report_url: report_url.to_string(),
                ..ActionValues::placeholder()
            }),
        })
        .collect();
    let ctx = ContextBuilder::new(design).node(&nodes[idx]);
    Ok(bootdata::render_node(
        &compiled, &ctx, &actions, kind, mtime,
    )?)
}

/// What [`render_site`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteRender {
    /// Nodes rendered.
    pub nodes: usize,
    /// Bytes of boot data produced, all nodes.
    pub bytes: u64,
}

/// Renders every node's boot data of `kind` from a valid design, the work a
/// server does when every node of a site asks once: compile the templates,
/// then per node derive its action keys (HMAC with `secret`) and render and
/// pack its data, nodes in parallel. Action ids are placeholders numbered per
/// node. Used by the site benchmark; the server renders the same way per node.
pub fn render_site(
    design: &Design,
    secret: &Secret,
    report_url: &str,
    kind: BootDataKind,
    mtime: u64,
) -> Result<SiteRender, BootError> {
    use rayon::prelude::*;
    let nodes = design.effective_nodes();
    let targets = design.node_boot_actions();
    let compiled = CompiledActions::compile(design)?;
    let bytes = nodes
        .par_iter()
        .enumerate()
        .map(|(i, node)| {
            let ctx = ContextBuilder::new(design).node(node);
            let actions: Vec<NodeAction> = targets[i]
                .iter()
                .map(|&b| {
                    let action_id = format!("{:026}", i * 64 + b);
                    NodeAction {
                        index: b,
                        values: ActionValues {
                            action_key: secret.action_key(&action_id),
                            action_id,
                            report_url: report_url.to_string(),
                            design_ref: "bench".to_string(),
                        },
                    }
                })
                .collect();
            bootdata::render_node(&compiled, &ctx, &actions, kind, mtime).map(|b| b.len() as u64)
        })
        .collect::<Result<Vec<u64>, _>>()?;
    Ok(SiteRender {
        nodes: nodes.len(),
        bytes: bytes.iter().sum(),
    })
}
