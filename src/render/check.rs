//! The template checks of validation (SW392, SW393): every template of every
//! BootAction is compiled once and rendered, with strict undefined and
//! placeholder action values, for each node its boot action targets, and
//! the pipeline steps after it run through the same interpreter rendering
//! uses ([`crate::design::pipeline`]). Renders run in parallel, one node
//! context per node shared by all its templates.
//!
//! This stage is `render`'s because the template engine is; `design` runs
//! every other rule and knows nothing of templates. [`crate::validate`]
//! runs both.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::bootdata::{describe, NodeTemplater};
use super::context::{ActionValues, ContextBuilder, ValueKind};
use super::template::{simple_paths, Compiled, PreparedAction, RenderContext, Templates, VarPath};
use crate::design::message::Message;
use crate::design::model::{Asset, BootActionData};
use crate::design::pipeline::{self, AssetType, Data, PipelineStep, Shape};
use crate::design::rules::bootaction::{asset_label, run_prefix, PipelineInput};
use crate::design::{Design, Entity};

/// Compiles and renders every template of `design` for its target nodes;
/// messages in the order validation has always given them.
pub fn check(design: &Design) -> Vec<Message> {
    let mut out = Vec::new();
    let mut templates = Templates::new();
    let mut jobs: Vec<RenderJob> = Vec::new();
    for (bi, ba) in design.boot_actions.iter().enumerate() {
        for (ai, asset) in ba.data.assets.iter().enumerate() {
            for t in asset_templates(ai, asset) {
                let job = Job {
                    ba: bi,
                    entity: ba,
                    name: format!("{bi}/{ai}/{}", t.kind),
                    pointer: format!("/assets/{ai}{}", t.field),
                    what: t.what,
                    rest: t.rest,
                };
                add_template(design, job, &t.source, &mut templates, &mut jobs, &mut out);
            }
        }
    }
    render_all(design, &templates, &jobs, &mut out);
    out
}

/// The pipeline steps after a template, numbered from the first of them.
type Rest = (usize, Vec<PipelineStep>);

/// A template of an asset.
struct AssetTemplate {
    /// `location` or `data`.
    kind: &'static str,
    source: String,
    /// The asset's field it comes from (`/location`, `/data`).
    field: &'static str,
    what: String,
    rest: Option<Rest>,
}

/// The templates of one asset, in the order they are checked: its location
/// template, then the first template of its data pipeline (with the steps
/// after it, when they type-check: otherwise `design` reports SW385).
fn asset_templates(ai: usize, asset: &Asset) -> Vec<AssetTemplate> {
    let mut out = Vec::new();
    if asset.asset_type == Some(AssetType::PkgList) {
        return out;
    }
    let what = asset_label(ai, asset);
    if asset.location.is_some() && asset.location_pipeline.contains(&PipelineStep::Template) {
        out.push(AssetTemplate {
            kind: "location",
            source: asset.location.clone().unwrap_or_default(),
            field: "/location",
            what: format!("{what} location"),
            rest: None,
        });
    }
    let PipelineInput::Data(data) = PipelineInput::of(asset) else {
        return out;
    };
    let steps = &asset.data_pipeline;
    if let (Some(k), Ok(Data::Text(source))) = run_prefix(steps, data) {
        let rest = &steps[k + 1..];
        let rest = pipeline::check_shapes(rest, k + 1, Shape::Text)
            .ok()
            .map(|_| (k + 1, rest.to_vec()));
        out.push(AssetTemplate {
            kind: "data",
            source,
            field: "/data",
            what,
            rest,
        });
    }
    out
}

/// A template to render for each target node of boot action `ba`.
struct RenderJob {
    ba: usize,
    name: String,
    /// The variables it reads, when it is simple (see `simple_paths`) and
    /// nothing runs after it.
    paths: Option<Vec<VarPath>>,
    doc: usize,
    pointer: String,
    what: String,
    /// The pipeline steps after the template, run on each node's rendered text.
    rest: Option<Rest>,
}

/// What [`add_template`] needs to know of a template.
struct Job<'a> {
    ba: usize,
    entity: &'a Entity<BootActionData>,
    name: String,
    pointer: String,
    what: String,
    rest: Option<Rest>,
}

/// SW392: compiles a template; a compiled one is rendered later.
fn add_template(
    design: &Design,
    job: Job,
    src: &str,
    templates: &mut Templates,
    jobs: &mut Vec<RenderJob>,
    out: &mut Vec<Message>,
) {
    match templates.add(&job.name, src) {
        Ok(()) => {
            // Steps after the template read its output, which differs per
            // node even between nodes whose values have the same kinds.
            let runs_more = job.rest.as_ref().is_some_and(|(_, r)| !r.is_empty());
            jobs.push(RenderJob {
                ba: job.ba,
                name: job.name,
                paths: if runs_more { None } else { simple_paths(src) },
                doc: job.entity.doc,
                pointer: job.pointer,
                what: job.what,
                rest: job.rest,
            })
        }
        Err(e) => out.push(design.msg_at(
            Message::error(
                "SW392",
                format!("BootAction {}: {} is not a valid template: {e}", job.entity.name, job.what),
                "Fix the Jinja syntax, or drop `template` from the pipeline if the braces are literal text.",
            ),
            job.entity.doc,
            &job.pointer,
        )),
    }
}

/// Renders each template for each of its target nodes; one message per
/// (template, error), naming the first failing node and counting the rest.
///
/// A simple template (no statements, only paths and total filters) fails or
/// not by the kinds of the values it reads alone, so its targets are grouped
/// by those kinds and one node per group is rendered: the verdict is the same
/// as rendering every node, for a few renders instead of thousands. Other
/// templates are rendered for every target, in parallel, one context per node.
fn render_all(design: &Design, templates: &Templates, jobs: &[RenderJob], out: &mut Vec<Message>) {
    if jobs.is_empty() {
        return;
    }
    let nodes = design.effective_nodes();
    let targets = design.boot_action_targets();
    let builder = ContextBuilder::new(design);
    let action = PreparedAction::new(&ActionValues::placeholder());
    let compiled: Vec<Option<Compiled>> =
        jobs.iter().map(|j| templates.get(&j.name).ok()).collect();
    // Renders job `j` for a node, then the pipeline steps after it.
    let run = |j: usize, rc: &RenderContext| -> Option<String> {
        let text = match compiled[j].as_ref()?.render(rc) {
            Ok(text) => text,
            Err(e) => return Some(e.to_string()),
        };
        let (first, rest) = jobs[j].rest.as_ref()?;
        pipeline::run(rest, *first, Data::Text(text), &mut NodeTemplater(rc))
            .err()
            .map(|e| describe(&e))
    };
    let render = |j: usize, n: usize| -> Option<String> {
        let rc = RenderContext::for_node(builder.node(&nodes[n]), &action);
        run(j, &rc)
    };

    // (job, first failing node, number of failing nodes, error)
    let mut failures: Vec<(u32, usize, usize, String)> = Vec::new();
    let mut per_node: Vec<Vec<u32>> = Vec::new();
    for (ji, job) in jobs.iter().enumerate() {
        let Some(paths) = &job.paths else {
            if per_node.is_empty() {
                per_node = vec![Vec::new(); nodes.len()];
            }
            for &n in &targets[job.ba] {
                per_node[n].push(ji as u32);
            }
            continue;
        };
        let signatures: Vec<Vec<ValueKind>> = targets[job.ba]
            .par_iter()
            .map(|&n| {
                paths
                    .iter()
                    .map(|p| builder.kind_of(&nodes[n], p))
                    .collect()
            })
            .collect();
        // Signature -> (representative node, count), in target order.
        let mut groups: HashMap<&[ValueKind], (usize, usize)> = HashMap::new();
        for (sig, &n) in signatures.iter().zip(&targets[job.ba]) {
            groups.entry(sig.as_slice()).or_insert((n, 0)).1 += 1;
        }
        for (n, count) in groups.into_values() {
            if let Some(e) = render(ji, n) {
                failures.push((ji as u32, n, count, e));
            }
        }
    }
    if !per_node.is_empty() {
        let each: Vec<(u32, usize, String)> = per_node
            .par_iter()
            .enumerate()
            .filter(|(_, js)| !js.is_empty())
            .flat_map_iter(|(n, js)| {
                let rc = RenderContext::for_node(builder.node(&nodes[n]), &action);
                js.iter()
                    .filter_map(|&j| run(j as usize, &rc).map(|e| (j, n, e)))
                    .collect::<Vec<_>>()
            })
            .collect();
        failures.extend(each.into_iter().map(|(j, n, e)| (j, n, 1, e)));
    }

    // (job, error text) -> (first node, count), in job then node order.
    let mut grouped: BTreeMap<(u32, String), (usize, usize)> = BTreeMap::new();
    for (j, n, count, e) in failures {
        let entry = grouped.entry((j, e)).or_insert((n, 0));
        entry.0 = entry.0.min(n);
        entry.1 += count;
    }
    for ((j, text), (n, count)) in grouped {
        let job = &jobs[j as usize];
        let ba = &design.boot_actions[job.ba];
        let others = if count > 1 {
            format!(" (and {} more nodes)", count - 1)
        } else {
            String::new()
        };
        let m = Message::error(
            "SW393",
            format!(
                "BootAction {}: {} fails to render for node {}{others}: {text}",
                ba.name, job.what, nodes[n].name
            ),
            "Use only variables every target node has (node.hostname, node.domain, node.tags, node.labels.<owner_data key>, node.network.<net with a static address>.{ip,cidr,dns_suffix}, node.interfaces.<dev>, action.*), or guard with `is defined`.",
        );
        out.push(design.msg_at(m, job.doc, &job.pointer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::template::RenderContext;

    /// The 3-node gen-site with n00002's `zone` owner_data removed.
    fn site_without_zone_on_n00002() -> Vec<crate::design::DesignFile> {
        let base = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/designs/ok/gen-site-3-nodes.yaml"
        ))
        .unwrap();
        let marker = "name: n00002";
        let at = base.find(marker).unwrap();
        let (head, tail) = base.split_at(at);
        let tail = tail.replacen(
            "      role: control\n      zone: z1\n",
            "      role: control\n",
            1,
        );
        vec![crate::design::DesignFile {
            path: "site.yaml".into(),
            bytes: format!("{head}{tail}").into_bytes(),
        }]
    }

    #[test]
    fn grouped_rendering_names_exactly_the_failing_nodes() {
        let v = crate::validate(&site_without_zone_on_n00002());
        let sw393: Vec<&Message> = v.messages.iter().filter(|m| m.code == "SW393").collect();
        // Two templates read node.labels.zone; each fails for n00002 alone.
        assert_eq!(sw393.len(), 2, "{sw393:#?}");
        for m in sw393 {
            assert!(m.message.contains("for node n00002:"), "{}", m.message);
        }
    }

    #[test]
    fn grouped_and_full_rendering_agree() {
        let v = crate::validate(&site_without_zone_on_n00002());
        let design = v.design.unwrap();
        let nodes = design.effective_nodes();
        let builder = ContextBuilder::new(&design);
        let action = PreparedAction::new(&ActionValues::placeholder());
        let mut templates = Templates::new();
        let sources = [
            "{{ node.labels.zone }}",
            "{{ node.network.default.cidr | upper }} {{ node.interfaces.bond0.sriov }}",
            "{{ node.interfaces.bond0.vf_count }}",
            "{{ node.network.pxe.dns_suffix }} {{ node.tags | join(',') }} {{ action.report_url }}",
            "{{ node.network.nosuch.ip }}",
            "{{ node.hostname.first }}",
        ];
        for (i, src) in sources.iter().enumerate() {
            templates.add(&i.to_string(), src).unwrap();
            let paths = simple_paths(src).unwrap();
            for node in nodes {
                let full = templates
                    .render(
                        &i.to_string(),
                        &RenderContext::for_node(builder.node(node), &action),
                    )
                    .is_ok();
                let by_kind = paths
                    .iter()
                    .all(|p| builder.kind_of(node, p) != ValueKind::Undefined);
                assert_eq!(full, by_kind, "{src} on {}", node.name);
            }
        }
    }
}
