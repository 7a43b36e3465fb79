//! The SW396 messages of a revision refused because its boot data does not
//! render for serving (compiled templates, or a new deployment's real ids
//! and keys), placed at the BootAction's line.

use std::collections::BTreeMap;

use crate::design::{Design, Message};
use crate::render::bootdata::RenderError;

/// Message code of a revision whose boot data does not render with the
/// deployments' real action ids and keys (docs/validation.md).
pub const DOES_NOT_RENDER: &str = "SW396";

/// The SW396 message of a design whose templates cannot even be compiled
/// for serving (validation's SW392 normally finds it first).
pub(super) fn compile_failure(design: &Design, e: &RenderError) -> Message {
    let m = Message::error(
        DOES_NOT_RENDER,
        format!("boot data cannot be prepared for serving: {e}"),
        "Fix the BootAction so its templates compile and its permissions parse.",
    );
    match e {
        RenderError::Asset { action, .. } => {
            match design.boot_actions.iter().find(|b| &b.name == action) {
                Some(ba) => design.msg_at(m, ba.doc, "/assets"),
                None => m,
            }
        }
        RenderError::Archive(_) => m,
    }
}

/// One SW396 message per (BootAction, asset, error), naming the first
/// failing node and counting the others, at the asset's line.
pub(super) fn render_failure_messages(
    design: &Design,
    failures: Vec<(String, RenderError)>,
) -> Vec<Message> {
    // (action, asset, error without the node) -> (nodes, sorted)
    let mut grouped: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for (node, e) in failures {
        let key = match e {
            RenderError::Asset {
                action,
                asset,
                message,
            } => {
                let prefix = format!("rendering for node {node}: ");
                let message = message
                    .strip_prefix(&prefix)
                    .unwrap_or(&message)
                    .to_string();
                (action, asset, message)
            }
            RenderError::Archive(m) => (String::new(), String::new(), m),
        };
        grouped.entry(key).or_default().push(node);
    }
    grouped
        .into_iter()
        .map(|((action, asset, error), mut nodes)| {
            nodes.sort();
            let others = match nodes.len() {
                1 => String::new(),
                n => format!(" (and {} more nodes)", n - 1),
            };
            let m = Message::error(
                DOES_NOT_RENDER,
                format!(
                    "BootAction {action}: asset {asset} does not render for node {}{others} with the action ids and keys of its deployment: {error}",
                    nodes[0]
                ),
                "Validation renders templates with placeholder action values (action_id 26 zeros, action_key 64 zeros); this template's output depends on the real ones. Make it render for any id and key: do not branch on action.action_id or action.action_key, or guard what it reads with `is defined`. The previous revision keeps serving.",
            );
            let located = design
                .boot_actions
                .iter()
                .find(|b| b.name == action)
                .map(|ba| {
                    let ai = ba.data.assets.iter().enumerate().position(|(i, a)| {
                        a.path.as_deref() == Some(asset.as_str()) || format!("#{i}") == asset
                    });
                    let pointer = ai.map_or_else(|| "/assets".to_string(), |i| format!("/assets/{i}/data"));
                    (ba.doc, pointer)
                });
            match located {
                Some((doc, pointer)) => design.msg_at(m, doc, &pointer),
                None => m,
            }
        })
        .collect()
}
