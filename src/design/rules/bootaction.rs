//! Boot-action rules (SW380–SW395): Drydock's BootactionDefined (DD4001) and
//! BootactionPackageListValid (DD4002), plus what Drydock only finds when it
//! renders assets at deploy time (pipelines, templates) or never finds (two
//! assets writing one path, filters naming unknown nodes or racks).
//!
//! Every template is compiled once and rendered, with strict undefined and
//! placeholder action values, for each node its boot action targets. Renders
//! run in parallel, one node context per node shared by all its templates.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::Ctx;
use crate::design::filter::{self, FilterProblem};
use crate::design::message::Message;
use crate::design::model::{Asset, BootActionData};
use crate::design::{Design, Entity};
use crate::render::context::{ActionValues, ContextBuilder, ValueKind};
use crate::render::template::{
    simple_paths, Compiled, PreparedAction, RenderContext, TemplateError, Templates, VarPath,
};

/// Runs every boot-action rule.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let design = ctx.design;
    let targets: Vec<Vec<usize>> = design
        .boot_actions
        .iter()
        .map(|ba| filter::select(design, ctx.nodes, ba.data.node_filter.as_ref()))
        .collect();

    // --- BootactionDefined (DD4001): every node should get something.
    let mut targeted = vec![false; ctx.nodes.len()];
    for t in &targets {
        for &i in t {
            targeted[i] = true;
        }
    }
    for (node, _) in ctx.nodes.iter().zip(&targeted).filter(|(_, t)| !**t) {
        out.push(design.msg_at(
            Message::warning(
                "SW380",
                format!("BaremetalNode {} is targeted by no BootAction", node.name),
                "Drydock expects every node to have at least one post-deploy boot action; add one whose node_filter selects this node.",
            ),
            node.doc,
            "",
        ));
    }

    let mut templates = Templates::new();
    let mut jobs: Vec<RenderJob> = Vec::new();
    for (bi, ba) in design.boot_actions.iter().enumerate() {
        if !ctx.nodes.is_empty() && targets[bi].is_empty() {
            out.push(design.msg_at(
                Message::warning(
                    "SW394",
                    format!("BootAction {} targets no node", ba.name),
                    "Check its node_filter: nothing in the design matches it (Drydock also targets no node for a filter using only rack_labels).",
                ),
                ba.doc,
                if ba.data.node_filter.is_some() { "/node_filter" } else { "" },
            ));
        }
        if let Some(f) = &ba.data.node_filter {
            check_filter(design, ba, f, out);
        }
        for (ai, asset) in ba.data.assets.iter().enumerate() {
            check_asset(design, bi, ba, ai, asset, &mut templates, &mut jobs, out);
        }
    }
    check_paths(design, &targets, ctx.nodes, out);
    render_all(ctx, &targets, &templates, &jobs, out);
}

fn check_filter(
    design: &Design,
    ba: &Entity<BootActionData>,
    f: &crate::design::model::NodeFilter,
    out: &mut Vec<Message>,
) {
    for p in filter::problems(design, f) {
        let (m, ptr) = match p {
            FilterProblem::UnknownNode { pointer, name } => (
                Message::error(
                    "SW390",
                    format!("BootAction {}: node_filter names node `{name}`, which is not a BaremetalNode of the design", ba.name),
                    "Correct the name or remove it; Drydock silently matches nothing for it.",
                ),
                pointer,
            ),
            FilterProblem::UnknownRack { pointer, name } => (
                Message::error(
                    "SW390",
                    format!("BootAction {}: node_filter names rack `{name}`, which is not a Rack of the design", ba.name),
                    "Correct the name or remove it; Drydock silently matches nothing for it.",
                ),
                pointer,
            ),
            FilterProblem::Crash { pointer, why } => (
                Message::error(
                    "SW391",
                    format!("BootAction {}: node_filter has {why}", ba.name),
                    "Give every filter_set entry `filter_type: union` or `intersection` with at least one criterion, and the filter a `filter_set_type` (Drydock raises an exception on this shape).",
                ),
                pointer,
            ),
        };
        out.push(design.msg_at(m, ba.doc, &ptr));
    }
}

/// A template to render for each target node of boot action `ba`.
struct RenderJob {
    ba: usize,
    name: String,
    /// The variables it reads, when it is simple (see `simple_paths`).
    paths: Option<Vec<VarPath>>,
    doc: usize,
    pointer: String,
    what: String,
}

/// An asset's value as it goes through the pipeline; `None`: known only at
/// deploy time (fetched from `location` or produced by a template).
enum Stage {
    Bytes(Option<Vec<u8>>),
    Text(Option<String>),
}

#[allow(clippy::too_many_arguments)]
fn check_asset(
    design: &Design,
    bi: usize,
    ba: &Entity<BootActionData>,
    ai: usize,
    asset: &Asset,
    templates: &mut Templates,
    jobs: &mut Vec<RenderJob>,
    out: &mut Vec<Message>,
) {
    let at = |field: &str| format!("/assets/{ai}{field}");
    let what = match &asset.path {
        Some(p) => format!("asset {ai} (`{}`)", p.escape_debug()),
        None => format!("asset {ai}"),
    };
    let err = |code: &str, field: &str, text: String, diag: &str| {
        design.msg_at(
            Message::error(code, format!("BootAction {}: {what} {text}", ba.name), diag),
            ba.doc,
            &at(field),
        )
    };

    if let Some(mode) = &asset.permissions {
        let ok = (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !ok {
            out.push(err(
                "SW387",
                "/permissions",
                format!("has permissions `{mode}`; expected an octal mode of 3 or 4 digits 0-7, such as `0644`"),
                "Quote the mode as a string of octal digits, e.g. '0755' or '644'.",
            ));
        } else if let Some(bits) = unsafe_mode_bits(mode) {
            if asset.allow_unsafe_permissions != Some(true) {
                out.push(err(
                    "SW398",
                    "/permissions",
                    format!("has permissions `{mode}`, which {bits}; expected a mode without setuid (4000), setgid (2000) or world-write (0002) bits"),
                    "Drop those bits (e.g. '0755', '0644'), or, if the node really needs them, set `allow_unsafe_permissions: true` on this asset.",
                ));
            }
        }
    }

    if asset.asset_type.as_deref() == Some("pkg_list") {
        check_pkg_list(asset, &err, out);
        return;
    }

    match asset.path.as_deref() {
        None => out.push(err(
            "SW388",
            "",
            "has no path; expected the absolute path the asset is written to".to_string(),
            "Give every file and unit asset an absolute `path`.",
        )),
        Some(p) => {
            if let Some(why) = path_problem(p) {
                out.push(err(
                    "SW388",
                    "/path",
                    format!(
                        "has path `{}`, which {why}; expected a normalised absolute file path",
                        p.escape_debug()
                    ),
                    "Write the path as /dir/file, without `.`, `..`, `//` or a trailing `/`.",
                ));
            }
        }
    }

    // Location templates are rendered per node, like data templates.
    if asset.location.is_some() && asset.location_pipeline.iter().any(|s| s == "template") {
        let src = asset.location.clone().unwrap_or_default();
        add_template(
            design,
            bi,
            ba,
            &format!("{bi}/{ai}/location"),
            &src,
            at("/location"),
            format!("{what} location"),
            templates,
            jobs,
            out,
        );
    }

    let mut stage = if asset.location.is_some() {
        Stage::Bytes(None)
    } else {
        match &asset.data {
            Some(serde_json::Value::String(s)) => Stage::Bytes(Some(s.clone().into_bytes())),
            Some(_) => {
                out.push(err(
                    "SW386",
                    "/data",
                    "has `data` that is not a string; expected text for a file or unit asset"
                        .to_string(),
                    "Give file and unit assets their content as a string, or use `location`.",
                ));
                return;
            }
            None => {
                out.push(err(
                    "SW386",
                    "",
                    "has neither `data` nor `location`; expected one".to_string(),
                    "Give the asset its content in `data`, or a `location` to fetch it from.",
                ));
                return;
            }
        }
    };

    let mut templated = false;
    for (si, step) in asset.data_pipeline.iter().enumerate() {
        let step_ptr = format!("/data_pipeline/{si}");
        let wrong = |found: &str, expected: &str| {
            err(
                "SW385",
                &step_ptr,
                format!("pipeline step {si} `{step}` gets {found}; expected {expected}"),
                "Order the pipeline as the data needs: base64_decode (bytes), then utf8_decode (bytes to text), then template (text).",
            )
        };
        stage = match (step.as_str(), stage) {
            ("base64_encode", Stage::Bytes(b)) => {
                use base64::Engine;
                Stage::Bytes(b.map(|b| {
                    base64::engine::general_purpose::STANDARD
                        .encode(b)
                        .into_bytes()
                }))
            }
            ("base64_encode", Stage::Text(_)) => {
                out.push(wrong("text", "bytes (add utf8_encode first)"));
                return;
            }
            ("base64_decode", Stage::Bytes(Some(b))) => match b64decode(&b) {
                Ok(v) => Stage::Bytes(Some(v)),
                Err(e) => {
                    out.push(err(
                        "SW383",
                        "/data",
                        format!("cannot be base64-decoded at pipeline step {si}: {e}"),
                        "Encode the content with `base64` (standard alphabet, with `=` padding) or remove base64_decode from the pipeline.",
                    ));
                    return;
                }
            },
            ("base64_decode", Stage::Text(Some(t))) => match b64decode(t.as_bytes()) {
                Ok(v) => Stage::Bytes(Some(v)),
                Err(e) => {
                    out.push(err(
                        "SW383",
                        "/data",
                        format!("cannot be base64-decoded at pipeline step {si}: {e}"),
                        "Make the text at this step valid base64.",
                    ));
                    return;
                }
            },
            ("base64_decode", _) => Stage::Bytes(None),
            ("utf8_decode", Stage::Bytes(b)) => match b.map(String::from_utf8) {
                None => Stage::Text(None),
                Some(Ok(t)) => Stage::Text(Some(t)),
                Some(Err(e)) => {
                    out.push(err(
                        "SW384",
                        "/data",
                        format!(
                            "is not UTF-8 at pipeline step {si} (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                        "Only text assets can be utf8_decoded; drop utf8_decode (and template) for binary content.",
                    ));
                    return;
                }
            },
            ("utf8_decode", Stage::Text(_)) => {
                out.push(wrong(
                    "text",
                    "bytes (utf8_decode appears twice, or after template)",
                ));
                return;
            }
            ("utf8_encode", Stage::Text(t)) => Stage::Bytes(t.map(String::into_bytes)),
            ("utf8_encode", Stage::Bytes(_)) => {
                out.push(wrong("bytes", "text (add utf8_decode first)"));
                return;
            }
            ("template", Stage::Bytes(_)) => {
                out.push(wrong(
                    "bytes",
                    "text: add utf8_decode before template (Drydock feeds assets to the pipeline as bytes, which Jinja2 rejects)",
                ));
                return;
            }
            ("template", Stage::Text(Some(src))) if !templated => {
                templated = true;
                add_template(
                    design,
                    bi,
                    ba,
                    &format!("{bi}/{ai}/data"),
                    &src,
                    at("/data"),
                    what.clone(),
                    templates,
                    jobs,
                    out,
                );
                Stage::Text(None)
            }
            // A second template's source depends on the node; it is checked
            // when boot data is rendered, not here.
            ("template", Stage::Text(_)) => Stage::Text(None),
            (other, _) => {
                out.push(err(
                    "SW385",
                    &step_ptr,
                    format!("pipeline step {si} is `{other}`; expected base64_encode, base64_decode, utf8_encode, utf8_decode or template"),
                    "Use only the pipeline steps Drydock knows.",
                ));
                return;
            }
        };
    }
}

#[allow(clippy::too_many_arguments)]
fn add_template(
    design: &Design,
    bi: usize,
    ba: &Entity<BootActionData>,
    name: &str,
    src: &str,
    pointer: String,
    what: String,
    templates: &mut Templates,
    jobs: &mut Vec<RenderJob>,
    out: &mut Vec<Message>,
) {
    match templates.add(name, src) {
        Ok(()) => jobs.push(RenderJob {
            ba: bi,
            name: name.to_string(),
            paths: simple_paths(src),
            doc: ba.doc,
            pointer,
            what,
        }),
        Err(e) => out.push(design.msg_at(
            Message::error(
                "SW392",
                format!("BootAction {}: {what} is not a valid template: {e}", ba.name),
                "Fix the Jinja syntax, or drop `template` from the pipeline if the braces are literal text.",
            ),
            ba.doc,
            &pointer,
        )),
    }
}

/// Python's `base64.b64decode` (non-validating): characters outside the
/// alphabet are skipped, padding is required.
fn b64decode(input: &[u8]) -> Result<Vec<u8>, String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    if let Some(pos) = input.iter().position(|b| !b.is_ascii()) {
        return Err(format!("non-ASCII byte at offset {pos}"));
    }
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .collect();
    ENGINE.decode(&clean).map_err(|e| e.to_string())
}

/// What makes a valid octal mode dangerous on a node: setuid or setgid (a
/// file that runs as its owner or group, root in a boot-data tarball) or
/// world-write (anyone on the node may change it), if any.
fn unsafe_mode_bits(mode: &str) -> Option<&'static str> {
    let m = u32::from_str_radix(mode, 8).ok()?;
    match (m & 0o4000 != 0, m & 0o2000 != 0, m & 0o0002 != 0) {
        (false, false, false) => None,
        (true, _, _) => Some("sets the setuid bit"),
        (_, true, _) => Some("sets the setgid bit"),
        _ => Some("makes the file world-writable"),
    }
}

/// Why a path is not a normalised absolute file path, if it is not.
fn path_problem(p: &str) -> Option<&'static str> {
    if !p.starts_with('/') {
        return Some("is relative");
    }
    if p.ends_with('/') {
        return Some("names a directory");
    }
    if p.contains('\0') {
        return Some("contains a NUL byte");
    }
    // A newline or other control character would reach the tarball's member
    // name and every tool that lists or logs it.
    if p.chars().any(|c| c.is_control()) {
        return Some("contains a control character (a newline, tab, escape or DEL)");
    }
    for part in p[1..].split('/') {
        match part {
            "" => return Some("contains `//`"),
            "." | ".." => return Some("contains `.` or `..`"),
            _ => {}
        }
    }
    None
}

fn check_pkg_list(
    asset: &Asset,
    err: &dyn Fn(&str, &str, String, &str) -> Message,
    out: &mut Vec<Message>,
) {
    match &asset.data {
        Some(serde_json::Value::Object(pkgs)) if !pkgs.is_empty() => {
            for (name, version) in pkgs {
                let Some(v) = version.as_str().filter(|v| !v.is_empty()) else {
                    continue;
                };
                if !debian_version_ok(v) {
                    out.push(err(
                        "SW382",
                        &format!("/data/{}", super::storage::esc(name)),
                        format!("pins package `{name}` to version `{v}`; expected a Debian version [epoch:]upstream-revision, e.g. `1.0.13-1`"),
                        "Write the full Debian version including the revision after the last `-`, or null for any version.",
                    ));
                }
            }
        }
        _ if asset.location.is_some() => {}
        _ => out.push(err(
            "SW381",
            "",
            "is a pkg_list with no packages; expected a mapping of package names to versions, or a location".to_string(),
            "List the packages under `data` as `name: version` (or `name: null`).",
        )),
    }
}

/// Drydock's version pattern `(\d+:)?([a-zA-Z0-9.+~-]+)(-[a-zA-Z0-9.+~]+)`,
/// matched in full.
fn debian_version_ok(v: &str) -> bool {
    let rest = match v.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            rest
        }
        None => v,
    };
    let Some((upstream, revision)) = rest.rsplit_once('-') else {
        return false;
    };
    let up = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~' | b'-');
    !upstream.is_empty()
        && upstream.bytes().all(up)
        && !revision.is_empty()
        && revision.bytes().all(|b| up(b) && b != b'-')
}

/// Two assets that write one path on one node (Drydock tars both; the
/// node keeps whichever it unpacks last). Within one BootAction that is
/// always a mistake (SW389). Across BootActions Drydock's own samples do it
/// (`helloworld` and `hw_filtered` both write `/var/tmp/hello.sh`), so a
/// clash with different content is a warning (SW395), and identical assets
/// are accepted.
fn check_paths(
    design: &Design,
    targets: &[Vec<usize>],
    nodes: &[std::sync::Arc<crate::design::EffectiveNode>],
    out: &mut Vec<Message>,
) {
    let mut writers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (bi, ba) in design.boot_actions.iter().enumerate() {
        for (ai, a) in ba.data.assets.iter().enumerate() {
            if a.asset_type.as_deref() == Some("pkg_list") {
                continue;
            }
            if let Some(p) = a.path.as_deref() {
                writers.entry(p).or_default().push((bi, ai));
            }
        }
    }
    // (path, first writer, later writer, a node both target); writers are
    // (boot action, asset) indices.
    let mut clashes: Vec<(&str, AssetRef, AssetRef, usize)> = Vec::new();
    for (path, w) in &writers {
        for (j, &(bj, aj)) in w.iter().enumerate().skip(1) {
            // Report each later writer once, against the first it clashes with.
            for &(bi, ai) in &w[..j] {
                let same_action = bi == bj;
                let identical = design.boot_actions[bi].data.assets[ai]
                    == design.boot_actions[bj].data.assets[aj];
                if !same_action && identical {
                    continue;
                }
                if let Some(n) = first_common(&targets[bi], &targets[bj]) {
                    clashes.push((path, (bi, ai), (bj, aj), n));
                    break;
                }
            }
        }
    }
    clashes.sort_by_key(|c| (c.2, c.1));
    for (path, (bi, ai), (bj, aj), n) in clashes {
        let first = &design.boot_actions[bi];
        let second = &design.boot_actions[bj];
        let m = if bi == bj {
            Message::error(
                "SW389",
                format!(
                    "BootAction {}: assets {ai} and {aj} both write `{path}` (on node {} and every other target)",
                    first.name, nodes[n].name
                ),
                "Give each asset of a boot action its own path.",
            )
        } else {
            Message::warning(
                "SW395",
                format!(
                    "BootAction {} asset {aj} writes `{path}` with other content than BootAction {} asset {ai}, on node {} (and any other node both target); which one the node keeps depends on unpacking order",
                    second.name, first.name, nodes[n].name
                ),
                "Give each asset its own path, or make the node filters disjoint.",
            )
        };
        let m = design.msg_at(m, second.doc, &format!("/assets/{aj}/path"));
        out.push(if bi == bj {
            m
        } else {
            m.about(crate::design::Kind::BootAction.schema(), &first.name)
        });
    }
}

/// A boot action's asset: (boot action index, asset index).
type AssetRef = (usize, usize);

/// The first element of two ascending lists that is in both.
fn first_common(a: &[usize], b: &[usize]) -> Option<usize> {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return Some(a[i]),
        }
    }
    None
}

/// Renders each template for each of its target nodes; one message per
/// (template, error), naming the first failing node and counting the rest.
///
/// A simple template (no statements, only paths and total filters) fails or
/// not by the kinds of the values it reads alone, so its targets are grouped
/// by those kinds and one node per group is rendered: the verdict is the same
/// as rendering every node, for a few renders instead of thousands. Other
/// templates are rendered for every target, in parallel, one context per node.
fn render_all(
    ctx: &Ctx,
    targets: &[Vec<usize>],
    templates: &Templates,
    jobs: &[RenderJob],
    out: &mut Vec<Message>,
) {
    if jobs.is_empty() {
        return;
    }
    let builder = ContextBuilder::new(ctx.design);
    let action = PreparedAction::new(&ActionValues::placeholder());
    let compiled: Vec<Option<Compiled>> =
        jobs.iter().map(|j| templates.get(&j.name).ok()).collect();
    let render = |j: usize, n: usize| -> Option<TemplateError> {
        let rc = RenderContext::for_node(builder.node(&ctx.nodes[n]), &action);
        compiled[j].as_ref()?.render(&rc).err()
    };

    // (job, first failing node, number of failing nodes, error)
    let mut failures: Vec<(u32, usize, usize, TemplateError)> = Vec::new();
    let mut per_node: Vec<Vec<u32>> = Vec::new();
    for (ji, job) in jobs.iter().enumerate() {
        let Some(paths) = &job.paths else {
            if per_node.is_empty() {
                per_node = vec![Vec::new(); ctx.nodes.len()];
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
                    .map(|p| builder.kind_of(&ctx.nodes[n], p))
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
        let each: Vec<(u32, usize, TemplateError)> = per_node
            .par_iter()
            .enumerate()
            .filter(|(_, js)| !js.is_empty())
            .flat_map_iter(|(n, js)| {
                let rc = RenderContext::for_node(builder.node(&ctx.nodes[n]), &action);
                js.iter()
                    .filter_map(|&j| {
                        let t = compiled[j as usize].as_ref()?;
                        t.render(&rc).err().map(|e| (j, n, e))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        failures.extend(each.into_iter().map(|(j, n, e)| (j, n, 1, e)));
    }

    // (job, error text) -> (first node, count), in job then node order.
    let mut grouped: BTreeMap<(u32, String), (usize, usize)> = BTreeMap::new();
    for (j, n, count, e) in failures {
        let entry = grouped.entry((j, e.to_string())).or_insert((n, 0));
        entry.0 = entry.0.min(n);
        entry.1 += count;
    }
    for ((j, text), (n, count)) in grouped {
        let job = &jobs[j as usize];
        let ba = &ctx.design.boot_actions[job.ba];
        let others = if count > 1 {
            format!(" (and {} more nodes)", count - 1)
        } else {
            String::new()
        };
        let m = Message::error(
            "SW393",
            format!(
                "BootAction {}: {} fails to render for node {}{others}: {text}",
                ba.name, job.what, ctx.nodes[n].name
            ),
            "Use only variables every target node has (node.hostname, node.domain, node.tags, node.labels.<owner_data key>, node.network.<net with a static address>.{ip,cidr,dns_suffix}, node.interfaces.<dev>, action.*), or guard with `is defined`.",
        );
        out.push(ctx.design.msg_at(m, job.doc, &job.pointer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = crate::design::validate(&site_without_zone_on_n00002());
        let sw393: Vec<&Message> = v.messages.iter().filter(|m| m.code == "SW393").collect();
        // Two templates read node.labels.zone; each fails for n00002 alone.
        assert_eq!(sw393.len(), 2, "{sw393:#?}");
        for m in sw393 {
            assert!(m.message.contains("for node n00002:"), "{}", m.message);
        }
    }

    #[test]
    fn grouped_and_full_rendering_agree() {
        let v = crate::design::validate(&site_without_zone_on_n00002());
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

    #[test]
    fn debian_versions_follow_drydock_pattern() {
        for ok in ["1.0.13-1", "1:2.3-4ubuntu1", "7.58.0-2ubuntu3.1", "a-b-c"] {
            assert!(debian_version_ok(ok), "{ok}");
        }
        for bad in ["7.58.0", ":)", "1:", "-1", "1.0-", "x:1-1", "1.0-a-"] {
            assert!(!debian_version_ok(bad), "{bad}");
        }
    }

    #[test]
    fn base64_like_python() {
        assert_eq!(b64decode(b"aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(b64decode(b"aGVsbG8").is_err());
    }

    #[test]
    fn paths_must_be_normalised_and_absolute() {
        assert_eq!(path_problem("/etc/x.conf"), None);
        for bad in ["etc/x", "/etc/", "/etc//x", "/etc/../x", "/./x"] {
            assert!(path_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn paths_with_control_characters_are_refused() {
        for bad in [
            "/etc/x\nroot",
            "/etc/\tx",
            "/etc/x\u{1b}[2J",
            "/etc/x\u{7f}",
            "/etc/\rx",
        ] {
            assert!(
                path_problem(bad).is_some_and(|w| w.contains("control")),
                "{bad:?}"
            );
        }
        assert_eq!(path_problem("/etc/caf\u{e9}.conf"), None);
    }

    #[test]
    fn setuid_setgid_and_world_write_bits_are_unsafe() {
        for (mode, unsafe_) in [
            ("0644", false),
            ("755", false),
            ("1755", false),
            ("0600", false),
            ("4755", true),
            ("2755", true),
            ("6755", true),
            ("0666", true),
            ("777", true),
            ("0642", true),
            ("0640", false),
        ] {
            assert_eq!(unsafe_mode_bits(mode).is_some(), unsafe_, "{mode}");
        }
    }
}

/// Whatever a user writes into the fields these rules read, validation gives
/// messages and never panics.
#[cfg(test)]
mod never_panics {
    use proptest::prelude::*;

    fn base() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/designs/ok/gen-site-3-nodes.yaml"
        ))
        .unwrap()
    }

    /// Replaces the first `from` with a YAML double-quoted `value`.
    fn with(base: &str, from: &str, value: &str) -> Vec<crate::design::DesignFile> {
        let quoted = serde_json::to_string(value).unwrap();
        vec![crate::design::DesignFile {
            path: "site.yaml".into(),
            bytes: base.replacen(from, &quoted, 1).into_bytes(),
        }]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_field_value(value in "\\PC{0,24}", field in 0usize..8) {
            let base = base();
            let from = [
                "'40g'",
                "'/var/log'",
                "'0644'",
                "'hardwareprofile:cpuset.sriov'",
                "'/etc/gensite/node.json'",
                "'1.0.13-1'",
                "rack01\n  assets",
                "'qemu'",
            ][field];
            let files = with(&base, from, &value);
            let _ = crate::design::validate(&files);
        }

        #[test]
        fn any_template(value in "[{}%#a-z. |()'\"-]{0,40}") {
            let base = base();
            let files = with(&base, "'{{ node.hostname }}'", &value);
            let _ = crate::design::validate(&files);
            let files = with(
                &base,
                "Description=gensite first boot of {{ node.hostname }}",
                &value,
            );
            let _ = crate::design::validate(&files);
        }
    }
}
