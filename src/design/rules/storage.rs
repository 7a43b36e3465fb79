//! Storage layout rules (SW350–SW364): Drydock's BootStorageRational
//! (DD1001), StoragePartitioning (DD2002), StorageSizing (DD2003) and
//! StorageMountpoints (DD2004), with messages where Drydock crashes, plus
//! checks Drydock lacks (one `/`, `>` sizes that leave no room, relative
//! mount points).
//!
//! Also home of [`NodeReport`], shared by the host rule families: a node's
//! storage, OOB and platform usually come from a HostProfile, so a message
//! points at the profile's field, names both documents, and is given once per
//! field rather than once per node (10,000 nodes sharing one bad profile give
//! one message that counts them).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Ctx;
use crate::design::effective::EffectiveNode;
use crate::design::message::{Level, Message};
use crate::design::model::{HostData, LogicalVolume, Partition};
use crate::design::{Design, Kind};

/// Escapes one JSON-pointer token (`~` and `/`).
pub(super) fn esc(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Where a node's field is written: a document and a JSON pointer into it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Origin {
    pub doc: usize,
    pub pointer: String,
    /// The HostProfile that holds the field, when not the node itself.
    pub profile: Option<String>,
}

/// The layers of a node, nearest first: the node's own data, then each
/// profile of its chain.
pub(super) fn layers<'d>(
    design: &'d Design,
    node: &EffectiveNode,
) -> Vec<(usize, Option<&'d str>, &'d HostData)> {
    let mut out = Vec::new();
    // By name first (a hash lookup); a duplicate name falls back to a scan.
    let own = design
        .node(&node.name)
        .filter(|n| n.doc == node.doc)
        .or_else(|| design.nodes.iter().find(|n| n.doc == node.doc));
    if let Some(n) = own {
        out.push((n.doc, None, &*n.data));
    }
    for p in &node.profile_chain {
        if let Some(e) = design.host_profile(p) {
            out.push((e.doc, Some(e.name.as_str()), &e.data));
        }
    }
    out
}

/// The nearest layer for which `find` gives a pointer; the node's document
/// root when no layer does.
pub(super) fn locate(
    design: &Design,
    node: &EffectiveNode,
    find: impl Fn(&HostData) -> Option<String>,
) -> Origin {
    for (doc, profile, data) in layers(design, node) {
        if let Some(pointer) = find(data) {
            return Origin {
                doc,
                pointer,
                profile: profile.map(str::to_string),
            };
        }
    }
    Origin {
        doc: node.doc,
        pointer: String::new(),
        profile: None,
    }
}

/// Collects node messages, one per (code, field), counting the nodes affected.
pub(super) struct NodeReport<'a> {
    design: &'a Design,
    seen: HashMap<(&'static str, usize, String, String), usize>,
    messages: Vec<(Message, Vec<String>)>,
    /// Findings of the node being checked, kept to replay for its twins.
    recording: Option<Vec<Finding>>,
}

/// One finding, as given to [`NodeReport::add`].
#[derive(Debug, Clone)]
pub(super) struct Finding {
    code: &'static str,
    level: Level,
    origin: Origin,
    text: String,
    diagnostic: String,
}

/// Runs `check` on every node. Nodes whose own document sets none of the
/// fields a family reads (`own_fields` is false) and that share a host
/// profile get the same findings: the first is checked, the others replay
/// its findings. With 10,000 nodes on a handful of profiles this turns the
/// family's cost from per node to per profile.
pub(super) fn check_nodes(
    ctx: &Ctx,
    report: &mut NodeReport,
    own_fields: impl Fn(&HostData) -> bool,
    check: impl Fn(&Design, &EffectiveNode, &mut NodeReport),
) {
    let design = ctx.design;
    let mut memo: HashMap<&str, Vec<Finding>> = HashMap::new();
    for (i, node) in ctx.nodes.iter().enumerate() {
        // `Ctx::nodes` compiles `Design::nodes` in order; check, don't assume.
        let own = design
            .nodes
            .get(i)
            .filter(|n| n.doc == node.doc)
            .or_else(|| design.nodes.iter().find(|n| n.doc == node.doc));
        let key = match (own, node.profile_chain.first()) {
            (Some(own), Some(p)) if !own_fields(&own.data) && node.missing_profile.is_none() => {
                Some(p.as_str())
            }
            _ => None,
        };
        let Some(key) = key else {
            check(design, node, report);
            continue;
        };
        if let Some(findings) = memo.get(key) {
            for f in findings {
                // An origin in the node itself is its document root: this node's.
                let mut origin = f.origin.clone();
                if origin.profile.is_none() {
                    origin.doc = node.doc;
                }
                report.add(
                    node,
                    f.code,
                    f.level,
                    &origin,
                    f.text.clone(),
                    &f.diagnostic,
                );
            }
            continue;
        }
        report.recording = Some(Vec::new());
        check(design, node, report);
        let findings = report.recording.take().unwrap_or_default();
        memo.insert(key, findings);
    }
}

impl<'a> NodeReport<'a> {
    /// An empty report over a design.
    pub fn new(design: &'a Design) -> Self {
        NodeReport {
            design,
            seen: HashMap::new(),
            messages: Vec::new(),
            recording: None,
        }
    }

    /// Adds a finding about `node` at `origin`; `text` should not name the
    /// node (the report does, and counts the others sharing the field).
    pub fn add(
        &mut self,
        node: &EffectiveNode,
        code: &'static str,
        level: Level,
        origin: &Origin,
        text: String,
        diagnostic: &str,
    ) {
        if let Some(rec) = &mut self.recording {
            rec.push(Finding {
                code,
                level,
                origin: origin.clone(),
                text: text.clone(),
                diagnostic: diagnostic.to_string(),
            });
        }
        let key = (code, origin.doc, origin.pointer.clone(), text.clone());
        if let Some(&i) = self.seen.get(&key) {
            self.messages[i].1.push(node.name.clone());
            return;
        }
        let subject = match &origin.profile {
            Some(p) => format!("HostProfile {p} (used by BaremetalNode {})", node.name),
            None => format!("BaremetalNode {}", node.name),
        };
        let m = Message::new(code, level, format!("{subject}: {text}"), diagnostic);
        let mut m = self.design.msg_at(m, origin.doc, &origin.pointer);
        if origin.profile.is_some() {
            m = m.about(Kind::BaremetalNode.schema(), &node.name);
        }
        self.seen.insert(key, self.messages.len());
        self.messages.push((m, Vec::new()));
    }

    /// Adds an error; see [`NodeReport::add`].
    pub fn error(
        &mut self,
        node: &EffectiveNode,
        code: &'static str,
        origin: &Origin,
        text: String,
        diagnostic: &str,
    ) {
        self.add(node, code, Level::Error, origin, text, diagnostic);
    }

    /// Moves the messages into `out`, noting how many more nodes each covers.
    pub fn finish(self, out: &mut Vec<Message>) {
        for (mut m, others) in self.messages {
            if !others.is_empty() {
                let shown: Vec<&str> = others.iter().take(3).map(String::as_str).collect();
                let more = if others.len() > 3 {
                    format!(" and {} more", others.len() - 3)
                } else {
                    String::new()
                };
                m.message
                    .push_str(&format!(" (also nodes {}{more})", shown.join(", ")));
            }
            out.push(m);
        }
    }
}

/// A parsed storage size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// A fixed number of bytes (may be negative).
    Bytes { bytes: i128, minimum: bool },
    /// A percentage of the device or volume group (may be negative).
    Percent { percent: i64, minimum: bool },
}

impl Size {
    /// True for `>` sizes: the minimum, growing into all remaining space.
    pub fn is_minimum(self) -> bool {
        matches!(
            self,
            Size::Bytes { minimum: true, .. } | Size::Percent { minimum: true, .. }
        )
    }

    /// True when the number is below zero.
    pub fn is_negative(self) -> bool {
        match self {
            Size::Bytes { bytes, .. } => bytes < 0,
            Size::Percent { percent, .. } => percent < 0,
        }
    }
}

/// Parses a size as Drydock's MAAS driver reads it: optional `>`, an integer,
/// and one of `m M mb MB g G gb GB t T tb TB` (powers of 1000), `mi Mi mib MiB
/// gi Gi gib GiB ti Ti tib TiB` (powers of 1024) or `%`. A leading `-` is
/// accepted here so negative sizes get their own message.
pub fn parse_size(text: &str) -> Option<Size> {
    let s = text.trim();
    let (minimum, s) = match s.strip_prefix('>') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let n: i128 = s[..digits].parse().ok()?;
    let n = if negative { -n } else { n };
    let unit = &s[digits..];
    if unit == "%" {
        return Some(Size::Percent {
            percent: n as i64,
            minimum,
        });
    }
    let k: i128 = match unit {
        "m" | "M" | "mb" | "MB" => 1000 * 1000,
        "g" | "G" | "gb" | "GB" => 1000 * 1000 * 1000,
        "t" | "T" | "tb" | "TB" => 1000 * 1000 * 1000 * 1000,
        "mi" | "Mi" | "mib" | "MiB" => 1 << 20,
        "gi" | "Gi" | "gib" | "GiB" => 1 << 30,
        "ti" | "Ti" | "tib" | "TiB" => 1 << 40,
        _ => return None,
    };
    Some(Size::Bytes {
        bytes: n * k,
        minimum,
    })
}

const GB: i128 = 1000 * 1000 * 1000;

/// Runs every storage rule over every node.
pub fn check(ctx: &Ctx, out: &mut Vec<Message>) {
    let mut report = NodeReport::new(ctx.design);
    check_nodes(ctx, &mut report, |own| own.storage.is_some(), check_node);
    report.finish(out);
}

fn part_ptr(dev: &str, i: usize, field: &str) -> String {
    format!(
        "/storage/physical_devices/{}/partitions/{i}{field}",
        esc(dev)
    )
}

fn lv_ptr(vg: &str, i: usize, field: &str) -> String {
    format!(
        "/storage/volume_groups/{}/logical_volumes/{i}{field}",
        esc(vg)
    )
}

/// Where partition `name` of device `dev` is written, at `field`.
fn locate_part(
    design: &Design,
    node: &EffectiveNode,
    dev: &str,
    p: &Partition,
    field: &str,
) -> Origin {
    locate(design, node, |d| {
        let parts = d
            .storage
            .as_ref()?
            .physical_devices
            .get(dev)?
            .partitions
            .as_ref()?;
        let i = parts.iter().position(|q| q.name == p.name)?;
        // Point at the field if this layer sets it, else at the partition.
        let v = serde_json::to_value(&parts[i]).ok()?;
        let has = field.is_empty() || v.pointer(field).is_some_and(|x| !x.is_null());
        Some(part_ptr(dev, i, if has { field } else { "" }))
    })
}

fn locate_lv(
    design: &Design,
    node: &EffectiveNode,
    vg: &str,
    lv: &LogicalVolume,
    field: &str,
) -> Origin {
    locate(design, node, |d| {
        let lvs = &d.storage.as_ref()?.volume_groups.get(vg)?.logical_volumes;
        let i = lvs.iter().position(|q| q.name == lv.name)?;
        let v = serde_json::to_value(&lvs[i]).ok()?;
        let has = field.is_empty() || v.pointer(field).is_some_and(|x| !x.is_null());
        Some(lv_ptr(vg, i, if has { field } else { "" }))
    })
}

fn locate_dev(design: &Design, node: &EffectiveNode, dev: &str) -> Origin {
    locate(design, node, |d| {
        d.storage
            .as_ref()?
            .physical_devices
            .contains_key(dev)
            .then(|| format!("/storage/physical_devices/{}", esc(dev)))
    })
}

fn locate_vg(design: &Design, node: &EffectiveNode, vg: &str) -> Origin {
    locate(design, node, |d| {
        d.storage
            .as_ref()?
            .volume_groups
            .contains_key(vg)
            .then(|| format!("/storage/volume_groups/{}", esc(vg)))
    })
}

fn locate_storage(design: &Design, node: &EffectiveNode) -> Origin {
    locate(design, node, |d| {
        d.storage.as_ref().map(|_| "/storage".to_string())
    })
}

fn name_of(n: &Option<String>) -> &str {
    n.as_deref().unwrap_or("(unnamed)")
}

/// One sized item of a node: a partition of a device or an LV of a VG.
/// Its origin is looked up only when there is something to report.
enum Item<'n> {
    Part(&'n str, &'n Partition),
    Lv(&'n str, &'n LogicalVolume),
}

impl Item<'_> {
    fn what(&self) -> String {
        match self {
            Item::Part(dev, p) => format!("partition {} on device {dev}", name_of(&p.name)),
            Item::Lv(vg, lv) => {
                format!("logical volume {} in volume group {vg}", name_of(&lv.name))
            }
        }
    }

    fn size(&self) -> Option<&str> {
        match self {
            Item::Part(_, p) => p.size.as_deref(),
            Item::Lv(_, lv) => lv.size.as_deref(),
        }
    }

    fn origin(&self, design: &Design, node: &EffectiveNode, field: &str) -> Origin {
        match self {
            Item::Part(dev, p) => locate_part(design, node, dev, p, field),
            Item::Lv(vg, lv) => locate_lv(design, node, vg, lv, field),
        }
    }
}

/// Every storage rule family on one node, in the order they report.
fn check_node(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    boot_storage_rational(design, node, r);
    storage_partitioning(design, node, r);
    storage_sizes(design, node, r);
    mount_points(design, node, r);
}

/// BootStorageRational (DD1001): a partition named root (SW350) of at least
/// 20g (SW351), boot of at least 1g (SW352), both with fixed sizes (SW354).
fn boot_storage_rational(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let mut root_seen = false;
    for (dev, d) in node.physical_devices.iter() {
        for p in d.partitions.iter().flatten() {
            let (min, label) = match p.name.as_deref() {
                Some("root") => (20 * GB, "root"),
                Some("boot") => (GB, "boot"),
                _ => continue,
            };
            if label == "root" {
                root_seen = true;
            }
            let origin = || locate_part(design, node, dev, p, "/size");
            match p.size.as_deref().map(parse_size) {
                // Missing or malformed sizes are SW353's.
                None | Some(None) => {}
                Some(Some(Size::Bytes {
                    bytes,
                    minimum: false,
                })) => {
                    if bytes < min {
                        let (code, diag) = if label == "root" {
                            ("SW351", "Give the root partition at least 20g (units are powers of 1000).")
                        } else {
                            ("SW352", "Give the boot partition at least 1g (units are powers of 1000).")
                        };
                        r.error(
                            node,
                            code,
                            &origin(),
                            format!(
                                "partition `{label}` on device {dev} is {} ({bytes} bytes); expected at least {} bytes",
                                p.size.as_deref().unwrap_or(""),
                                min
                            ),
                            diag,
                        );
                    }
                }
                Some(Some(_)) => r.error(
                    node,
                    "SW354",
                    &origin(),
                    format!(
                        "partition `{label}` on device {dev} has size `{}`; expected a fixed size such as `40g` (Drydock cannot check `%` or `>` sizes of root and boot)",
                        p.size.as_deref().unwrap_or("")
                    ),
                    "Size the root and boot partitions with a number and a unit (m, g, t), without `%` or `>`.",
                ),
            }
        }
    }
    if !root_seen {
        let origin = locate_storage(design, node);
        r.error(
            node,
            "SW350",
            &origin,
            "no partition named `root`; expected one of at least 20g".to_string(),
            "Add a partition `name: root` (at least 20g) to one of the node's physical devices, in the node or its host profile.",
        );
    }
}

/// StoragePartitioning (DD2002): a device is partitioned or a physical
/// volume (SW358), a partition is formatted or a physical volume (SW359),
/// every volume group has a physical volume (SW360).
fn storage_partitioning(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let mut pv_vgs: HashSet<&str> = HashSet::new();
    for (dev, d) in node.physical_devices.iter() {
        let has_parts = d.partitions.as_ref().is_some_and(|p| !p.is_empty());
        let has_vg = d.volume_group.is_some();
        if has_parts == has_vg {
            let origin = locate_dev(design, node, dev);
            let found = if has_parts {
                "both `partitions` and `volume_group`"
            } else {
                "neither `partitions` nor `volume_group`"
            };
            r.error(
                node,
                "SW358",
                &origin,
                format!("physical device {dev} has {found}; expected exactly one of them"),
                "Either carve the device into partitions or make it a physical volume of one volume group.",
            );
        }
        if let Some(vg) = &d.volume_group {
            pv_vgs.insert(vg);
        }
        for p in d.partitions.iter().flatten() {
            if let Some(vg) = &p.volume_group {
                pv_vgs.insert(vg);
                if p.filesystem.is_some() {
                    let origin = locate_part(design, node, dev, p, "/volume_group");
                    r.error(
                        node,
                        "SW359",
                        &origin,
                        format!(
                            "partition {} on device {dev} has both a filesystem and volume_group {vg}; expected one",
                            name_of(&p.name)
                        ),
                        "A partition is either formatted (filesystem) or a physical volume (volume_group), not both.",
                    );
                }
            }
        }
    }
    for (vg, _) in node.volume_groups.iter() {
        if !pv_vgs.contains(vg.as_str()) {
            let origin = locate_vg(design, node, vg);
            r.error(
                node,
                "SW360",
                &origin,
                format!("volume group {vg} has no physical volume; expected a device or partition with `volume_group: {vg}`"),
                "Set `volume_group` on a physical device or partition, or remove the volume group.",
            );
        }
    }
}

/// Sizes (DD2003 and beyond), per device and per volume group: each item's
/// size (SW353 format, SW355 sign, SW363 after a `>` size) and their
/// percentages (SW356 on a device, SW357 in a volume group).
fn storage_sizes(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let mut groups: Vec<(String, &'static str, Vec<Item>)> = Vec::new();
    for (dev, d) in node.physical_devices.iter() {
        let items = d
            .partitions
            .iter()
            .flatten()
            .map(|p| Item::Part(dev, p))
            .collect();
        groups.push((format!("device {dev}"), "SW356", items));
    }
    for (vg, g) in node.volume_groups.iter() {
        let items = g
            .logical_volumes
            .iter()
            .map(|lv| Item::Lv(vg, lv))
            .collect();
        groups.push((format!("volume group {vg}"), "SW357", items));
    }
    for (group, sum_code, items) in &groups {
        group_sizes(design, node, r, group, sum_code, items);
    }
}

/// The sizes of one device's partitions or one volume group's logical
/// volumes (SW353, SW355, SW363), and their percentage sum (`sum_code`).
fn group_sizes(
    design: &Design,
    node: &EffectiveNode,
    r: &mut NodeReport,
    group: &str,
    sum_code: &'static str,
    items: &[Item],
) {
    let mut percent_sum: i64 = 0;
    let mut last_percent: Option<&Item> = None;
    let mut greedy: Option<&Item> = None;
    for item in items {
        let Some(text) = item.size() else {
            r.error(
                node,
                "SW353",
                &item.origin(design, node, "/size"),
                format!(
                    "{} has no size; expected e.g. `20g`, `10%` or `>100g`",
                    item.what()
                ),
                "Give every partition and logical volume a `size`.",
            );
            continue;
        };
        let Some(size) = parse_size(text) else {
            r.error(
                node,
                "SW353",
                &item.origin(design, node, "/size"),
                format!(
                    "{} has size `{text}`; expected an integer with a unit m/g/t (x1000), mi/gi/ti (x1024) or %, optionally after `>`",
                    item.what()
                ),
                "Write sizes like `500m`, `20g`, `1t`, `30%` or `>100g`.",
            );
            continue;
        };
        if size.is_negative() {
            r.error(
                node,
                "SW355",
                &item.origin(design, node, "/size"),
                format!(
                    "{} has negative size `{text}`; expected zero or more",
                    item.what()
                ),
                "Sizes must be positive.",
            );
            continue;
        }
        if let Some(g) = greedy {
            r.error(
                node,
                "SW363",
                &item.origin(design, node, "/size"),
                format!(
                    "{} cannot fit: it comes after {}, whose `>` size takes all remaining space of {group}",
                    item.what(),
                    g.what()
                ),
                "Put the single `>`-sized item last on its device or volume group, or give it a fixed size.",
            );
        }
        if size.is_minimum() {
            greedy = Some(item);
        }
        if let Size::Percent { percent, .. } = size {
            percent_sum = percent_sum.saturating_add(percent);
            last_percent = Some(item);
        }
    }
    if percent_sum > 99 {
        let origin = match last_percent {
            Some(i) => i.origin(design, node, "/size"),
            None => locate_storage(design, node),
        };
        r.error(
            node,
            sum_code,
            &origin,
            format!("percentage sizes on {group} add up to {percent_sum}%; expected at most 99%"),
            "Reduce the percentages so they sum to 99% or less.",
        );
    }
}

/// Mount points (DD2004 and beyond): absolute (SW364), once each (SW361),
/// and `/` mounted (SW362).
fn mount_points(design: &Design, node: &EffectiveNode, r: &mut NodeReport) {
    let mut mounts: BTreeMap<&str, Vec<Item>> = BTreeMap::new();
    for (dev, d) in node.physical_devices.iter() {
        for p in d.partitions.iter().flatten() {
            if let Some(mp) = p.filesystem.as_ref().and_then(|f| f.mountpoint.as_deref()) {
                mounts.entry(mp).or_default().push(Item::Part(dev, p));
            }
        }
    }
    for (vg, g) in node.volume_groups.iter() {
        for lv in &g.logical_volumes {
            if let Some(mp) = lv.filesystem.as_ref().and_then(|f| f.mountpoint.as_deref()) {
                mounts.entry(mp).or_default().push(Item::Lv(vg, lv));
            }
        }
    }
    for (mp, users) in &mounts {
        if *mp == "none" || mp.is_empty() {
            continue;
        }
        if !mp.starts_with('/') {
            for item in users {
                r.error(
                    node,
                    "SW364",
                    &item.origin(design, node, "/filesystem/mountpoint"),
                    format!(
                        "{} has mountpoint `{mp}`; expected an absolute path (or `none`)",
                        item.what()
                    ),
                    "Write mount points as absolute paths such as `/var/log`.",
                );
            }
        }
        if users.len() > 1 {
            let first = users[0].what();
            for item in &users[1..] {
                r.error(
                    node,
                    "SW361",
                    &item.origin(design, node, "/filesystem/mountpoint"),
                    format!(
                        "{} mounts `{mp}`, already mounted by {first}; expected each mount point once",
                        item.what()
                    ),
                    "Give every filesystem of a node its own mount point.",
                );
            }
        }
    }
    if !node.physical_devices.is_empty() && !mounts.contains_key("/") {
        let origin = locate_storage(design, node);
        r.error(
            node,
            "SW362",
            &origin,
            "no filesystem is mounted at `/`; expected exactly one".to_string(),
            "Mount the root partition (or a logical volume) at `/`.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_drydock_reads_them() {
        assert_eq!(
            parse_size("20g"),
            Some(Size::Bytes {
                bytes: 20 * GB,
                minimum: false
            })
        );
        assert_eq!(
            parse_size(">10%"),
            Some(Size::Percent {
                percent: 10,
                minimum: true
            })
        );
        assert!(parse_size("-77%").unwrap().is_negative());
        assert_eq!(parse_size("1Gi").map(|s| s.is_minimum()), Some(false));
        for bad in ["", "g", "20", "20b", "20Gb", "20mB", "twenty", "20 gb", "%"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}

/// Drydock's own samples (README §4 of its reference copy) through the whole
/// pipeline: valid ones get no error from the host rule families, invalid
/// ones are rejected by the rule that matches Drydock's.
#[cfg(test)]
mod drydock_samples {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use crate::design::{DesignFile, Message};
    use crate::validate;

    /// Drydock's samples; a missing copy fails the test (`../shared` must sit
    /// beside the checkout), it never skips it.
    fn samples() -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/reference/drydock/yaml_samples");
        assert!(dir.is_dir(), "{} is missing", dir.display());
        dir
    }

    fn run(name: &str) -> Vec<Message> {
        let path = samples().join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        validate(&[DesignFile {
            path: name.to_string(),
            bytes,
        }])
        .messages
    }

    /// Error codes of the host families (SW350–SW399).
    fn host_errors(ms: &[Message]) -> BTreeSet<String> {
        ms.iter()
            .filter(|m| m.error && (350..=399).contains(&m.code[2..].parse::<u32>().unwrap_or(0)))
            .map(|m| m.code.clone())
            .collect()
    }

    #[test]
    fn valid_samples_get_no_host_error() {
        for name in [
            "deckhand_fullsite.yaml",
            "deckhand_fullsite_no_nodes.yaml",
            "deckhand_fullsite_nic_autodetect.yaml",
            "deckhand_routedomain.yaml",
            "validation.yaml",
            "partitions_without_mountpoints.yaml",
        ] {
            let ms = run(name);
            let errs: Vec<String> = ms
                .iter()
                .filter(|m| m.error && m.code.as_str() >= "SW350")
                .map(|m| m.to_text_line())
                .collect();
            assert!(errs.is_empty(), "{name}:\n{}", errs.join("\n"));
        }
    }

    #[test]
    fn invalid_samples_are_rejected_by_the_matching_rule() {
        for (name, codes) in [
            ("invalid_boot_storage_small.yaml", &["SW351", "SW352"][..]),
            ("invalid_hugepages.yaml", &["SW365"]),
            ("deckhand_fullsite_bad_hugepages.yaml", &["SW365"]),
            ("invalid_mountpoint.yaml", &["SW361"]),
            ("invalid_bootaction_pkg.yaml", &["SW382"]),
            ("deckhand_fullsite_libvirt.yaml", &["SW377", "SW378"]),
            ("storage_sizing.yaml", &["SW354"]),
            ("invalid_kernel.yaml", &["SW354"]),
            (
                "invalid_validation.yaml",
                &["SW350", "SW355", "SW356", "SW360", "SW361", "SW365"],
            ),
        ] {
            let ms = run(name);
            let got = host_errors(&ms);
            for c in codes {
                assert!(
                    got.contains(*c),
                    "{name}: expected {c}, got {got:?}:\n{}",
                    ms.iter()
                        .map(|m| m.to_text_line())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }
}
