//! Platform and hardware rules (SW365–SW374): Drydock's HugepagesValidity
//! (DD1008), the kernel-parameter references Drydock resolves while compiling
//! a node (`hardwareprofile:cpuset.X`, `hardwareprofile:hugepages.X.size`),
//! the hardware profile Drydock needs to compile a node at all, and a stand-in
//! for PlatformSelection (DD3001).
//!
//! Drydock resolves references leniently: an unknown cpu set or hugepage
//! config is logged and the literal `hardwareprofile:...` text goes to the
//! kernel command line. slipway rejects it. A reference without the dots
//! Drydock splits on, and a node without (or with an unknown) hardware
//! profile, crash Drydock's compile step; slipway gives a message.

use super::storage::{check_nodes, locate, NodeReport};
use super::Ctx;
use crate::design::effective::EffectiveNode;
use crate::design::message::{Level, Message};
use crate::design::model::scalar_text;
use crate::design::Design;

/// Runs every platform and hardware rule over every node.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let mut report = NodeReport::new(ctx.design);
    check_nodes(
        ctx,
        &mut report,
        |own| own.platform.is_some() || own.hardware_profile.is_some(),
        check_node,
    );
    report.finish(out);
}

fn kernel_param_ptr(design: &Design, node: &EffectiveNode, key: &str) -> super::storage::Origin {
    let ptr = format!("/platform/kernel_params/{}", super::storage::esc(key));
    locate(design, node, |d| {
        d.platform
            .as_ref()?
            .kernel_params
            .as_ref()?
            .contains_key(key)
            .then(|| ptr.clone())
    })
}

/// Every platform rule on one node, in the order they report.
fn check_node(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let hwprof = hardware_profile(design, node, r);
    hugepages_validity(design, node, r);
    for (key, value) in node.kernel_params.iter() {
        kernel_param_reference(design, node, r, hwprof, key, value);
    }
    platform_selection(design, node, r);
}

/// SW369: the node has a hardware profile (Drydock raises "Hardware profile
/// not set/found."); the profile, when it is defined.
fn hardware_profile<'d>(
    design: &'d Design,
    node: &EffectiveNode,
    r: &mut NodeReport,
) -> Option<&'d crate::design::Entity<crate::design::model::HardwareProfileData>> {
    let hw_origin = || {
        locate(design, node, |d| {
            d.hardware_profile
                .as_ref()
                .map(|_| "/hardware_profile".to_string())
        })
    };
    match node.hardware_profile.as_deref() {
        None => {
            r.error(
                node,
                "SW369",
                &hw_origin(),
                "no hardware_profile in the node or its host profiles; expected one".to_string(),
                "Set `hardware_profile` on the node or on a host profile it inherits from.",
            );
            None
        }
        // An undefined name is SW305 (references family); nothing more to check here.
        Some(name) => design.hardware_profile(name),
    }
}

/// HugepagesValidity (DD1008, SW365): `hugepages` and `hugepagesz` both or neither.
fn hugepages_validity(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let kp = &node.kernel_params;
    match (kp.contains_key("hugepages"), kp.contains_key("hugepagesz")) {
        (true, false) | (false, true) => {
            let (has, lacks) = if kp.contains_key("hugepages") {
                ("hugepages", "hugepagesz")
            } else {
                ("hugepagesz", "hugepages")
            };
            let origin = kernel_param_ptr(design, node, has);
            r.error(
                node,
                "SW365",
                &origin,
                format!("kernel_params has `{has}` but no `{lacks}`; expected both or neither"),
                "Set hugepages (count) and hugepagesz (page size) together.",
            );
        }
        _ => {}
    }
}

/// References from a kernel parameter into the hardware profile:
/// malformed (SW368), an undefined cpu set (SW366) or hugepage
/// configuration (SW367).
fn kernel_param_reference(
    design: &Design,
    node: &EffectiveNode,
    r: &mut NodeReport,
    hwprof: Option<&crate::design::Entity<crate::design::model::HardwareProfileData>>,
    key: &str,
    value: &serde_json::Value,
) {
    let text = scalar_text(value);
    let Some(reference) = text.strip_prefix("hardwareprofile:") else {
        return;
    };
    if reference.is_empty() {
        return; // Drydock passes an empty reference through unchanged.
    }
    let origin = || kernel_param_ptr(design, node, key);
    let Some((ref_type, ref_val)) = reference.split_once('.') else {
        r.error(
            node,
            "SW368",
            &origin(),
            format!("kernel_params.{key} is `{text}`; expected `hardwareprofile:cpuset.<set>` or `hardwareprofile:hugepages.<conf>.size|count`"),
            "Write the reference in one of the two supported forms.",
        );
        return;
    };
    match ref_type {
        "cpuset" => {
            let Some(hw) = hwprof else { return };
            if !hw.data.cpu_sets.contains_key(ref_val) {
                let known: Vec<&str> = hw.data.cpu_sets.keys().map(String::as_str).collect();
                r.error(
                    node,
                    "SW366",
                    &origin(),
                    format!(
                        "kernel_params.{key} refers to cpu set `{ref_val}`, which HardwareProfile {} does not define (it has: {})",
                        hw.name,
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                    "Define the cpu set in the node's hardware profile's `cpu_sets`, or correct the name.",
                );
            }
        }
        "hugepages" => {
            let Some((conf, field)) = ref_val.split_once('.') else {
                r.error(
                    node,
                    "SW368",
                    &origin(),
                    format!("kernel_params.{key} is `{text}`; expected `hardwareprofile:hugepages.<conf>.size` or `.count`"),
                    "Name the hugepage configuration and the field (`size` or `count`).",
                );
                return;
            };
            if field != "size" && field != "count" {
                r.error(
                    node,
                    "SW368",
                    &origin(),
                    format!("kernel_params.{key} refers to hugepage field `{field}`; expected `size` or `count`"),
                    "Use `.size` or `.count`.",
                );
                return;
            }
            let Some(hw) = hwprof else { return };
            let resolved = hw
                .data
                .hugepages
                .get(conf)
                .and_then(|c| c.get(field))
                .is_some_and(|v| !v.is_null());
            if !resolved {
                r.error(
                    node,
                    "SW367",
                    &origin(),
                    format!(
                        "kernel_params.{key} refers to hugepages `{conf}.{field}`, which HardwareProfile {} does not define",
                        hw.name
                    ),
                    "Define the hugepage configuration (with size and count) in the hardware profile's `hugepages`.",
                );
            }
        }
        other => r.error(
            node,
            "SW368",
            &origin(),
            format!("kernel_params.{key} refers to `{other}`; expected `cpuset` or `hugepages`"),
            "Only cpu sets and hugepage configurations can be referenced.",
        ),
    }
}

/// PlatformSelection (DD3001, SW371): without an image catalogue slipway can
/// only say when nothing was chosen.
fn platform_selection(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let missing: Vec<&str> = [("image", &node.image), ("kernel", &node.kernel)]
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(f, _)| f)
        .collect();
    if !missing.is_empty() {
        let origin = locate(design, node, |d| {
            d.platform.as_ref().map(|_| "/platform".to_string())
        });
        r.add(
            node,
            "SW371",
            Level::Warning,
            &origin,
            format!(
                "platform {} not set; the deploy driver's default will be used",
                missing.join(" and ")
            ),
            "Set platform.image and platform.kernel so every node deploys the intended OS.",
        );
    }
}
