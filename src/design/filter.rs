//! Boot-action node filters: which nodes a BootAction targets.
//!
//! Semantics are Drydock's (`process_node_filter` in its orchestrator), so a
//! design targets the same nodes under slipway as under Drydock:
//! - no filter selects every node;
//! - each `filter_set` entry combines its non-empty criteria by `filter_type`;
//!   a `union` entry with no criteria selects nothing, an `intersection` entry
//!   with none puts no constraint (an entry with no `filter_type`, or a filter
//!   with no `filter_set_type`, never gets here: the schema refuses it, SW201,
//!   as Drydock's objects do, and so does the nodefilter API's parser);
//! - the entries are combined by `filter_set_type`; a filter whose result is
//!   empty or unconstrained targets **no** node.
//!
//! Criteria:
//! - `node_names`: the node's name is listed;
//! - `node_tags`: the node has **any** listed tag (OR, even in an
//!   `intersection` entry, as in Drydock);
//! - `node_labels`: **any** listed `key: value` pair is in the node's
//!   `metadata.owner_data` (OR, as in Drydock);
//! - `rack_names`: the node's `metadata.rack` is listed;
//! - `rack_labels`: **any** listed `key: value` pair is in the `labels` of the
//!   node's Rack document. Deviation: Drydock does not implement this criterion
//!   (a filter using only it targets no node there); slipway matches it for real,
//!   with the same OR semantics as `node_labels`.
//!
//! Shapes on which Drydock crashes are evaluated leniently here (an
//! unconstrained entry counts as "all nodes") and reported by [`problems`].

use std::collections::HashSet;

use super::effective::EffectiveNode;
use super::model::{scalar_text, NodeFilter, NodeFilterEntry};
use super::Design;

/// Indices (into `nodes`) of the nodes a filter selects; `None` filter: all.
pub fn select(
    design: &Design,
    nodes: &[std::sync::Arc<EffectiveNode>],
    filter: Option<&NodeFilter>,
) -> Vec<usize> {
    let Some(filter) = filter else {
        return (0..nodes.len()).collect();
    };
    let intersection = filter.filter_set_type.as_deref() == Some("intersection");
    let mut acc: Option<Vec<bool>> = None;
    for entry in &filter.filter_set {
        let Some(sel) = entry_selection(design, nodes, entry) else {
            // No constraint: neutral in an intersection; in a union Drydock
            // crashes (reported by `problems`), read here as "every node".
            if !intersection {
                acc = Some(vec![true; nodes.len()]);
            }
            continue;
        };
        acc = Some(match acc {
            None => sel,
            Some(mut a) => {
                for (x, s) in a.iter_mut().zip(sel) {
                    *x = if intersection { *x && s } else { *x || s };
                }
                a
            }
        });
    }
    match acc {
        None => Vec::new(),
        Some(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, &x)| x.then_some(i))
            .collect(),
    }
}

/// One criterion of a filter entry, as a test of a node.
type Criterion<'a> = Box<dyn Fn(&EffectiveNode) -> bool + 'a>;

/// The nodes one entry selects, or `None` when it puts no constraint.
fn entry_selection(
    design: &Design,
    nodes: &[std::sync::Arc<EffectiveNode>],
    entry: &NodeFilterEntry,
) -> Option<Vec<bool>> {
    let intersection = match entry.filter_type.as_deref() {
        Some("union") => false,
        Some("intersection") => true,
        _ => return None,
    };
    let mut criteria: Vec<Criterion> = Vec::new();
    if !entry.node_names.is_empty() {
        let names: HashSet<&str> = entry.node_names.iter().map(String::as_str).collect();
        criteria.push(Box::new(move |n| names.contains(n.name.as_str())));
    }
    if !entry.node_tags.is_empty() {
        criteria.push(Box::new(|n| {
            n.tags.iter().any(|t| entry.node_tags.contains(t))
        }));
    }
    if !entry.node_labels.is_empty() {
        let wanted: Vec<(&String, String)> = entry
            .node_labels
            .iter()
            .map(|(k, v)| (k, scalar_text(v)))
            .collect();
        criteria.push(Box::new(move |n| {
            wanted.iter().any(|(k, v)| n.owner_data.get(*k) == Some(v))
        }));
    }
    if !entry.rack_names.is_empty() {
        criteria.push(Box::new(|n| {
            n.rack
                .as_ref()
                .is_some_and(|r| entry.rack_names.contains(r))
        }));
    }
    if !entry.rack_labels.is_empty() {
        let wanted: Vec<(&String, String)> = entry
            .rack_labels
            .iter()
            .map(|(k, v)| (k, scalar_text(v)))
            .collect();
        criteria.push(Box::new(move |n| {
            let Some(rack) = n.rack.as_deref().and_then(|r| design.rack(r)) else {
                return false;
            };
            wanted
                .iter()
                .any(|(k, v)| rack.data.labels.get(*k).map(scalar_text).as_ref() == Some(v))
        }));
    }
    if criteria.is_empty() {
        return if intersection {
            None
        } else {
            Some(vec![false; nodes.len()])
        };
    }
    Some(
        nodes
            .iter()
            .map(|n| {
                if intersection {
                    criteria.iter().all(|c| c(n))
                } else {
                    criteria.iter().any(|c| c(n))
                }
            })
            .collect(),
    )
}

/// Something wrong with a node filter, with a JSON pointer into the
/// BootAction's `data` at the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterProblem {
    /// `node_names` lists a node that is not in the design (Drydock accepts).
    UnknownNode { pointer: String, name: String },
    /// `rack_names` lists a rack that is not in the design (Drydock accepts).
    UnknownRack { pointer: String, name: String },
    /// A shape on which Drydock's filter evaluation raises an exception.
    Crash { pointer: String, why: String },
}

/// The problems of a filter: unknown names, and shapes Drydock crashes on.
pub fn problems(design: &Design, filter: &NodeFilter) -> Vec<FilterProblem> {
    let mut out = Vec::new();
    let base = "/node_filter";
    let set_type = filter.filter_set_type.as_deref();
    match set_type {
        Some("union") | Some("intersection") => {}
        other => out.push(FilterProblem::Crash {
            pointer: base.to_string(),
            why: format!(
                "filter_set_type is {}; Drydock needs `union` or `intersection`",
                other.map_or("missing".to_string(), |s| format!("`{s}`"))
            ),
        }),
    }
    if filter.filter_set.is_empty() && set_type == Some("intersection") {
        out.push(FilterProblem::Crash {
            pointer: base.to_string(),
            why: "an `intersection` filter with an empty filter_set".to_string(),
        });
    }
    for (i, entry) in filter.filter_set.iter().enumerate() {
        let at = format!("{base}/filter_set/{i}");
        let has_criteria = !(entry.node_names.is_empty()
            && entry.node_tags.is_empty()
            && entry.node_labels.is_empty()
            && entry.rack_names.is_empty()
            && entry.rack_labels.is_empty());
        let unconstrained = match entry.filter_type.as_deref() {
            Some("union") => false,
            Some("intersection") => !has_criteria,
            _ => true,
        };
        if unconstrained && set_type != Some("intersection") {
            let why = match entry.filter_type.as_deref() {
                Some("intersection") => {
                    "an `intersection` entry with no criteria inside a `union` filter set"
                        .to_string()
                }
                Some(t) => format!("filter_type `{t}` is unknown, inside a `union` filter set"),
                None => "an entry with no filter_type, inside a `union` filter set".to_string(),
            };
            out.push(FilterProblem::Crash {
                pointer: at.clone(),
                why,
            });
        }
        for (j, name) in entry.node_names.iter().enumerate() {
            if design.node(name).is_none() {
                out.push(FilterProblem::UnknownNode {
                    pointer: format!("{at}/node_names/{j}"),
                    name: name.clone(),
                });
            }
        }
        for (j, name) in entry.rack_names.iter().enumerate() {
            if design.rack(name).is_none() {
                out.push(FilterProblem::UnknownRack {
                    pointer: format!("{at}/rack_names/{j}"),
                    name: name.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignFile;
    use crate::validate;

    const SITE: &str = "
schema: drydock/Rack/v1
metadata: {name: r1}
data: {labels: {zone: a}}
---
schema: drydock/Rack/v1
metadata: {name: r2}
data: {labels: {zone: b}}
---
schema: drydock/BaremetalNode/v1
metadata: {name: n1}
data: {addressing: [{network: x, address: dhcp}], metadata: {rack: r1, tags: [control], owner_data: {role: control}}}
---
schema: drydock/BaremetalNode/v1
metadata: {name: n2}
data: {addressing: [{network: x, address: dhcp}], metadata: {rack: r1, tags: [compute], owner_data: {role: compute}}}
---
schema: drydock/BaremetalNode/v1
metadata: {name: n3}
data: {addressing: [{network: x, address: dhcp}], metadata: {rack: r2, tags: [compute, gpu], owner_data: {role: compute}}}
";

    fn names(filter_yaml: &str) -> Vec<String> {
        let v = validate(&[DesignFile {
            path: "site.yaml".into(),
            bytes: SITE.as_bytes().to_vec(),
        }]);
        let design = v.design.unwrap();
        let nodes = design.effective_nodes();
        let filter: Option<NodeFilter> = serde_json::from_str(filter_yaml).unwrap();
        select(&design, nodes, filter.as_ref())
            .into_iter()
            .map(|i| nodes[i].name.clone())
            .collect()
    }

    #[test]
    fn no_filter_selects_all() {
        assert_eq!(names("null"), ["n1", "n2", "n3"]);
    }

    #[test]
    fn union_of_names_and_racks() {
        let f = r#"{"filter_set_type":"union","filter_set":[
            {"filter_type":"union","node_names":["n1"]},
            {"filter_type":"union","rack_names":["r2"]}]}"#;
        assert_eq!(names(f), ["n1", "n3"]);
    }

    #[test]
    fn tags_and_labels_match_any_even_in_intersection() {
        let f = r#"{"filter_set_type":"union","filter_set":[
            {"filter_type":"intersection","node_tags":["gpu","control"]}]}"#;
        assert_eq!(names(f), ["n1", "n3"]);
        let f = r#"{"filter_set_type":"union","filter_set":[
            {"filter_type":"intersection","node_labels":{"role":"control"},"rack_names":["r1"]}]}"#;
        assert_eq!(names(f), ["n1"]);
    }

    #[test]
    fn rack_labels_match_the_rack_document() {
        let f = r#"{"filter_set_type":"union","filter_set":[
            {"filter_type":"union","rack_labels":{"zone":"a"}}]}"#;
        assert_eq!(names(f), ["n1", "n2"]);
    }

    #[test]
    fn intersection_of_entries_and_unconstrained_entries() {
        let f = r#"{"filter_set_type":"intersection","filter_set":[
            {"filter_type":"union","node_tags":["compute"]},
            {"filter_type":"intersection"},
            {"filter_type":"union","rack_names":["r1"]}]}"#;
        assert_eq!(names(f), ["n2"]);
        // Only unconstrained entries: Drydock's None, which targets no node.
        let f =
            r#"{"filter_set_type":"intersection","filter_set":[{"filter_type":"intersection"}]}"#;
        assert!(names(f).is_empty());
        let f = r#"{"filter_set_type":"union","filter_set":[]}"#;
        assert!(names(f).is_empty());
    }

    #[test]
    fn problems_name_unknown_documents_and_crash_shapes() {
        let v = validate(&[DesignFile {
            path: "site.yaml".into(),
            bytes: SITE.as_bytes().to_vec(),
        }]);
        let design = v.design.unwrap();
        let f: NodeFilter = serde_json::from_str(
            r#"{"filter_set_type":"union","filter_set":[
            {"node_names":["n1","n9"]},
            {"filter_type":"union","rack_names":["r7"]}]}"#,
        )
        .unwrap();
        let p = problems(&design, &f);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            matches!(&p[0], FilterProblem::Crash { pointer, .. } if pointer == "/node_filter/filter_set/0")
        );
        assert!(matches!(&p[1], FilterProblem::UnknownNode { name, .. } if name == "n9"));
        assert!(
            matches!(&p[2], FilterProblem::UnknownRack { pointer, .. } if pointer == "/node_filter/filter_set/1/rack_names/0")
        );
    }
}
