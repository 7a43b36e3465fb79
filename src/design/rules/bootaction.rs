//! Boot-action rules (SW380–SW398): Drydock's BootactionDefined (DD4001) and
//! BootactionPackageListValid (DD4002), plus what Drydock only finds when it
//! renders assets at deploy time (pipelines) or never finds (two assets
//! writing one path, filters naming unknown nodes or racks).
//!
//! An asset's pipeline is run by the one interpreter, [`crate::design::pipeline`],
//! as far as it does not depend on the node (up to its first `template`) and
//! type-checked after that. Templates are compiled and rendered for each
//! target node by `render::check` (SW392, SW393), which owns the template engine.

use std::collections::HashMap;

use super::Ctx;
use crate::design::filter::{self, FilterProblem};
use crate::design::message::Message;
use crate::design::model::{Asset, BootActionData};
use crate::design::pipeline::{
    self, AssetType, Data, NoTemplates, PipelineError, PipelineStep, Shape, StepFailure,
};
use crate::design::{Design, Entity};

/// Runs every boot-action rule.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let design = ctx.design;
    let targets = design.boot_action_targets();
    check_every_node_targeted(ctx, out);
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
            check_asset(design, ba, ai, asset, out);
        }
    }
    check_paths(design, targets, ctx.nodes, out);
}

/// BootactionDefined (DD4001, SW380): every node should get something.
fn check_every_node_targeted(ctx: &Ctx, out: &mut Vec<Message>) {
    let by_node = ctx.design.node_boot_actions();
    for (node, _) in ctx.nodes.iter().zip(by_node).filter(|(_, a)| a.is_empty()) {
        out.push(ctx.design.msg_at(
            Message::warning(
                "SW380",
                format!("BaremetalNode {} is targeted by no BootAction", node.name),
                "Drydock expects every node to have at least one post-deploy boot action; add one whose node_filter selects this node.",
            ),
            node.doc,
            "",
        ));
    }
}

/// SW390, SW391: the filter names what the design lacks, or has a shape
/// Drydock crashes on.
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

/// Builds an asset's error messages: the boot action, the asset (by index
/// and path) and the field of the asset the message points at.
struct AssetMessages<'a> {
    design: &'a Design,
    ba: &'a Entity<BootActionData>,
    ai: usize,
    what: String,
}

impl AssetMessages<'_> {
    fn error(&self, code: &str, field: &str, text: String, diag: &str) -> Message {
        self.design.msg_at(
            Message::error(
                code,
                format!("BootAction {}: {} {text}", self.ba.name, self.what),
                diag,
            ),
            self.ba.doc,
            &format!("/assets/{}{field}", self.ai),
        )
    }
}

/// How an asset is named in messages: `asset 2 (`/etc/x`)`.
pub fn asset_label(ai: usize, asset: &Asset) -> String {
    match &asset.path {
        Some(p) => format!("asset {ai} (`{}`)", p.escape_debug()),
        None => format!("asset {ai}"),
    }
}

/// Every rule about one asset: its mode, then (for a package list) its
/// packages, or (for a file or unit) its path and pipeline.
fn check_asset(
    design: &Design,
    ba: &Entity<BootActionData>,
    ai: usize,
    asset: &Asset,
    out: &mut Vec<Message>,
) {
    let msgs = AssetMessages {
        design,
        ba,
        ai,
        what: asset_label(ai, asset),
    };
    check_permissions(asset, &msgs, out);
    if asset.asset_type == Some(AssetType::PkgList) {
        check_pkg_list(asset, &msgs, out);
        return;
    }
    check_asset_path(asset, &msgs, out);
    check_pipeline(asset, &msgs, out);
}

/// SW387 (not an octal mode) and SW398 (setuid, setgid or world-write
/// without the opt-in).
fn check_permissions(asset: &Asset, msgs: &AssetMessages, out: &mut Vec<Message>) {
    let Some(mode) = &asset.permissions else {
        return;
    };
    let ok = (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !ok {
        out.push(msgs.error(
            "SW387",
            "/permissions",
            format!("has permissions `{mode}`; expected an octal mode of 3 or 4 digits 0-7, such as `0644`"),
            "Quote the mode as a string of octal digits, e.g. '0755' or '644'.",
        ));
    } else if let Some(bits) = unsafe_mode_bits(mode) {
        if asset.allow_unsafe_permissions != Some(true) {
            out.push(msgs.error(
                "SW398",
                "/permissions",
                format!("has permissions `{mode}`, which {bits}; expected a mode without setuid (4000), setgid (2000) or world-write (0002) bits"),
                "Drop those bits (e.g. '0755', '0644'), or, if the node really needs them, set `allow_unsafe_permissions: true` on this asset.",
            ));
        }
    }
}

/// SW388: a file or unit asset has a normalised absolute path.
fn check_asset_path(asset: &Asset, msgs: &AssetMessages, out: &mut Vec<Message>) {
    match asset.path.as_deref() {
        None => out.push(msgs.error(
            "SW388",
            "",
            "has no path; expected the absolute path the asset is written to".to_string(),
            "Give every file and unit asset an absolute `path`.",
        )),
        Some(p) => {
            if let Some(why) = path_problem(p) {
                out.push(msgs.error(
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
}

/// Where an asset's pipeline starts, as the interpreter sees it.
pub enum PipelineInput<'a> {
    /// `data` as a string: content known now.
    Data(&'a str),
    /// Only a `location`: content known at deploy time, as bytes.
    Location,
    /// `data` that is not a string (SW386).
    NotAString,
    /// Neither `data` nor `location` (SW386).
    Nothing,
}

impl<'a> PipelineInput<'a> {
    /// What a file or unit asset feeds its pipeline.
    pub fn of(asset: &'a Asset) -> Self {
        if asset.location.is_some() {
            return PipelineInput::Location;
        }
        match &asset.data {
            Some(serde_json::Value::String(s)) => PipelineInput::Data(s),
            Some(_) => PipelineInput::NotAString,
            None => PipelineInput::Nothing,
        }
    }
}

/// The node-independent part of a pipeline over known `data`: the steps
/// before the first `template`, run, and the position of that `template`.
pub fn run_prefix(
    steps: &[PipelineStep],
    data: &str,
) -> (Option<usize>, Result<Data, PipelineError>) {
    let k = steps.iter().position(|s| *s == PipelineStep::Template);
    let before = &steps[..k.unwrap_or(steps.len())];
    let out = pipeline::run(
        before,
        0,
        Data::Bytes(data.as_bytes().to_vec()),
        &mut NoTemplates,
    );
    (k, out)
}

/// SW386 (no content), and the pipeline through the interpreter: SW383
/// (not base64), SW384 (not UTF-8), SW385 (a step gets the wrong shape).
/// Steps after the first `template` are type-checked here; their content
/// depends on the node and is checked by `render::check`.
fn check_pipeline(asset: &Asset, msgs: &AssetMessages, out: &mut Vec<Message>) {
    let steps = &asset.data_pipeline;
    let result = match PipelineInput::of(asset) {
        PipelineInput::Location => pipeline::check_shapes(steps, 0, Shape::Bytes).map(|_| ()),
        PipelineInput::Data(data) => match run_prefix(steps, data) {
            (_, Err(e)) => Err(e),
            (None, Ok(_)) => Ok(()),
            (Some(k), Ok(d)) => pipeline::check_shapes(&steps[k..], k, d.shape()).map(|_| ()),
        },
        PipelineInput::NotAString => {
            out.push(
                msgs.error(
                    "SW386",
                    "/data",
                    "has `data` that is not a string; expected text for a file or unit asset"
                        .to_string(),
                    "Give file and unit assets their content as a string, or use `location`.",
                ),
            );
            return;
        }
        PipelineInput::Nothing => {
            out.push(msgs.error(
                "SW386",
                "",
                "has neither `data` nor `location`; expected one".to_string(),
                "Give the asset its content in `data`, or a `location` to fetch it from.",
            ));
            return;
        }
    };
    if let Err(e) = result {
        out.push(pipeline_message(&e, msgs));
    }
}

/// The message for the step a pipeline stopped at.
fn pipeline_message(e: &PipelineError, msgs: &AssetMessages) -> Message {
    let si = e.index;
    let step = e.step;
    match &e.failure {
        StepFailure::Shape(found) => {
            let expected = match step {
                PipelineStep::Base64Encode => "bytes (add utf8_encode first)",
                PipelineStep::Utf8Decode => "bytes (utf8_decode appears twice, or after template)",
                PipelineStep::Utf8Encode => "text (add utf8_decode first)",
                // base64_decode takes either shape.
                PipelineStep::Template | PipelineStep::Base64Decode => "text: add utf8_decode before template (Drydock feeds assets to the pipeline as bytes, which Jinja2 rejects)",
            };
            msgs.error(
                "SW385",
                &format!("/data_pipeline/{si}"),
                format!("pipeline step {si} `{step}` gets {}; expected {expected}", found.word()),
                "Order the pipeline as the data needs: base64_decode (bytes), then utf8_decode (bytes to text), then template (text).",
            )
        }
        StepFailure::Base64(shape, why) => msgs.error(
            "SW383",
            "/data",
            format!("cannot be base64-decoded at pipeline step {si}: {why}"),
            match shape {
                Shape::Bytes => "Encode the content with `base64` (standard alphabet, with `=` padding) or remove base64_decode from the pipeline.",
                Shape::Text => "Make the text at this step valid base64.",
            },
        ),
        StepFailure::Utf8(offset) => msgs.error(
            "SW384",
            "/data",
            format!("is not UTF-8 at pipeline step {si} (invalid byte at offset {offset})"),
            "Only text assets can be utf8_decoded; drop utf8_decode (and template) for binary content.",
        ),
        // Not reached: the steps run here are those before any template.
        StepFailure::Template(why) => msgs.error(
            "SW393",
            "/data",
            format!("fails at pipeline step {si} `{step}`: {why}"),
            "Fix the template.",
        ),
    }
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

/// BootactionPackageListValid (DD4002): SW381 (no packages), SW382 (a
/// version that is not Debian's).
fn check_pkg_list(asset: &Asset, msgs: &AssetMessages, out: &mut Vec<Message>) {
    match &asset.data {
        Some(serde_json::Value::Object(pkgs)) if !pkgs.is_empty() => {
            for (name, version) in pkgs {
                let Some(v) = version.as_str().filter(|v| !v.is_empty()) else {
                    continue;
                };
                if !debian_version_ok(v) {
                    out.push(msgs.error(
                        "SW382",
                        &format!("/data/{}", super::storage::esc(name)),
                        format!("pins package `{name}` to version `{v}`; expected a Debian version [epoch:]upstream-revision, e.g. `1.0.13-1`"),
                        "Write the full Debian version including the revision after the last `-`, or null for any version.",
                    ));
                }
            }
        }
        _ if asset.location.is_some() => {}
        _ => out.push(msgs.error(
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
            if a.asset_type == Some(AssetType::PkgList) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let _ = crate::validate(&files);
        }

        #[test]
        fn any_template(value in "[{}%#a-z. |()'\"-]{0,40}") {
            let base = base();
            let files = with(&base, "'{{ node.hostname }}'", &value);
            let _ = crate::validate(&files);
            let files = with(
                &base,
                "Description=gensite first boot of {{ node.hostname }}",
                &value,
            );
            let _ = crate::validate(&files);
        }
    }
}
