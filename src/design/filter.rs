//! Boot-action node filters: which nodes a BootAction targets.

use super::effective::EffectiveNode;
use super::model::NodeFilter;
use super::Design;

/// Indices (into `nodes`) of the nodes a filter selects; `None` filter: all.
pub fn select(
    _design: &Design,
    nodes: &[EffectiveNode],
    filter: Option<&NodeFilter>,
) -> Vec<usize> {
    match filter {
        None => (0..nodes.len()).collect(),
        Some(_) => (0..nodes.len()).collect(),
    }
}
