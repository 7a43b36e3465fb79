//! The planner: pure diffs of designs, per document and per node.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use slipway::design::{filter, Design, DesignFile, Kind};
use slipway::plan::Snapshot;
use slipway::plan::{plan, snapshot_of, Plan};
use slipway::revision::Revision;
use slipway::state::Store;

/// A design as a list of YAML documents, each written to its own file so that
/// file order is document order.
#[derive(Clone, Debug)]
struct Site {
    docs: Vec<String>,
}

impl Site {
    /// The example site in `designs/` (12 nodes, 3 racks, 3 boot actions).
    fn example() -> Site {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("designs");
        let mut paths = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "yaml") {
                    paths.push(p);
                }
            }
        }
        paths.sort();
        let mut docs = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(p).unwrap();
            // gen-site starts every document with a `---` line.
            for chunk in text.split("\n---\n").skip(1) {
                docs.push(format!("---\n{chunk}\n"));
            }
        }
        Site { docs }
    }

    fn files(&self) -> Vec<DesignFile> {
        self.docs
            .iter()
            .enumerate()
            .map(|(i, d)| DesignFile {
                path: format!("doc-{i:06}.yaml"),
                bytes: d.clone().into_bytes(),
            })
            .collect()
    }

    /// The design, valid or not (the planner needs only a built design).
    fn design(&self) -> Design {
        slipway::validate(&self.files()).design.unwrap()
    }

    /// The design, which must be valid.
    fn valid_design(&self) -> Design {
        let v = slipway::validate(&self.files());
        let errors: Vec<String> = v
            .messages
            .iter()
            .filter(|m| m.error)
            .map(|m| m.to_text_line())
            .collect();
        assert!(errors.is_empty(), "design must be valid: {errors:#?}");
        v.design.unwrap()
    }

    fn position(&self, kind: Kind, name: &str) -> usize {
        let schema = format!("schema: 'drydock/{}/v1'", kind.name());
        let named = format!("\n  name: {name}\n");
        self.docs
            .iter()
            .position(|d| d.contains(&schema) && d.contains(&named))
            .unwrap_or_else(|| panic!("no {}/{name} in the site", kind.name()))
    }

    /// The site with one document's text replaced (`from` must occur in it).
    fn edit(&self, kind: Kind, name: &str, from: &str, to: &str) -> Site {
        let mut site = self.clone();
        let i = site.position(kind, name);
        assert!(
            site.docs[i].contains(from),
            "{from:?} not in {}/{name}",
            kind.name()
        );
        site.docs[i] = site.docs[i].replacen(from, to, 1);
        site
    }

    /// The site without one document.
    fn without(&self, kind: Kind, name: &str) -> Site {
        let mut site = self.clone();
        let i = site.position(kind, name);
        site.docs.remove(i);
        site
    }

    /// The example site with its 12 nodes replaced by `n` generated like gen-site's
    /// (same shape, unique names, addresses and MACs), all in rack01.
    fn with_nodes(n: u32) -> Site {
        let example = Site::example();
        let template = example.docs[example.position(Kind::BaremetalNode, "n00001")].clone();
        let mut docs: Vec<String> = example
            .docs
            .into_iter()
            .filter(|d| !d.contains("schema: 'drydock/BaremetalNode/v1'"))
            .collect();
        for i in 1..=n {
            let offset = 256 + i;
            let host = format!("{}.{}", offset / 256, offset % 256);
            let mut d = template
                .replace("name: n00001", &format!("name: n{i:05}"))
                .replace(".1.1\n", &format!(".{host}\n"))
                .replace(
                    "'02:bd:50:00:00:01'",
                    &format!(
                        "'02:bd:50:{:02x}:{:02x}:{:02x}'",
                        i >> 16,
                        (i >> 8) & 0xff,
                        i & 0xff
                    ),
                );
            if i > 3 {
                d = d.replace("control", "compute");
            }
            docs.push(d);
        }
        Site { docs }
    }
}

fn names(set: &BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

/// The plan from `before` to `after`, as if `before` were applied.
fn diff(before: &Site, after: &Site) -> Plan {
    plan(&after.valid_design(), &snapshot_of(&before.valid_design()))
}

#[test]
fn an_empty_state_plans_every_document_and_node() {
    let site = Site::example();
    let d = site.valid_design();
    let p = plan(&d, &Snapshot::default());
    assert_eq!(p.creates.len(), site.docs.len());
    assert!(p.updates.is_empty() && p.deletes.is_empty() && p.node_deletes.is_empty());
    assert_eq!(p.node_writes.len(), 12);
    assert_eq!(p.affected_nodes.len(), 12);
    // Sorted by (kind, name), so output is stable.
    let keys: Vec<(Kind, &str)> = p
        .creates
        .iter()
        .map(|c| (c.kind, c.name.as_str()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(p.summary_lines()[0], "+ Region/gensite");
    assert!(p
        .summary_lines()
        .contains(&"node n00004: new boot data".to_string()));
}

#[test]
fn the_same_design_plans_nothing() {
    let site = Site::example();
    let p = diff(&site, &site);
    assert!(p.is_empty(), "{:#?}", p.summary_lines());
    assert!(p.affected_nodes.is_empty());
    assert!(p.summary_lines().is_empty());
}

#[test]
fn a_network_change_affects_every_node_on_it() {
    let site = Site::example();
    let p = diff(
        &site,
        &site.edit(Kind::Network, "storage", "metric: 100", "metric: 101"),
    );
    assert_eq!(p.summary_lines()[0], "~ Network/storage");
    assert_eq!(p.updates.len(), 1);
    assert_eq!(p.affected_nodes.len(), 12);
}

#[test]
fn a_hardware_profile_change_affects_only_its_nodes() {
    let site = Site::example();
    let p = diff(
        &site,
        &site.edit(
            Kind::HardwareProfile,
            "gen11",
            "vendor: HPE",
            "vendor: Dell",
        ),
    );
    assert_eq!(p.updates.len(), 1);
    // gen11 is the storage nodes' profile: every fourth node.
    assert_eq!(names(&p.affected_nodes), ["n00004", "n00008", "n00012"]);
}

#[test]
fn a_host_profile_change_affects_the_nodes_that_inherit_it() {
    let site = Site::example();
    let p = diff(
        &site,
        &site.edit(
            Kind::HostProfile,
            "storage-node",
            "kernel: hwe-22.04",
            "kernel: ga-22.04",
        ),
    );
    assert_eq!(names(&p.affected_nodes), ["n00004", "n00008", "n00012"]);
    // The root profile reaches every node.
    let p = diff(
        &site,
        &site.edit(Kind::HostProfile, "base", "account: admin", "account: root"),
    );
    assert_eq!(p.affected_nodes.len(), 12);
}

#[test]
fn a_region_or_link_change_affects_every_node() {
    let site = Site::example();
    let p = diff(
        &site,
        &site.edit(Kind::Region, "gensite", "- jammy", "- noble"),
    );
    assert_eq!(p.affected_nodes.len(), 12);
    let p = diff(
        &site,
        &site.edit(Kind::NetworkLink, "data", "mtu: 9000", "mtu: 9100"),
    );
    assert_eq!(p.affected_nodes.len(), 12);
}

#[test]
fn a_boot_action_change_affects_the_nodes_it_targets() {
    let site = Site::example();
    let after = site.edit(
        Kind::BootAction,
        "rack-agent",
        "/etc/gensite/rack-agent.env",
        "/etc/gensite/rack-agent2.env",
    );
    let p = diff(&site, &after);
    assert_eq!(p.summary_lines()[0], "~ BootAction/rack-agent");
    // Whatever the filter selects (rack01 and rack03 once filters are exact).
    let d = after.valid_design();
    let nodes = d.effective_nodes();
    let action = d.boot_action("rack-agent").unwrap();
    let targeted: BTreeSet<String> = filter::select(&d, nodes, action.data.node_filter.as_ref())
        .into_iter()
        .map(|i| nodes[i].name.clone())
        .collect();
    assert!(!targeted.is_empty());
    assert_eq!(p.affected_nodes, targeted);
}

#[test]
fn an_unreferenced_document_affects_no_node() {
    let site = Site::example();
    let mut after = site.clone();
    let rack = after.docs[after.position(Kind::Rack, "rack03")].replace("rack03", "rack99");
    after.docs.push(rack);
    let p = diff(&site, &after);
    assert_eq!(p.summary_lines(), ["+ Rack/rack99"]);
    assert!(p.affected_nodes.is_empty());
}

#[test]
fn a_moved_document_is_not_rewritten() {
    // Same content, other file and line: the hash is the content's, so nothing to do.
    let site = Site::example();
    let mut after = site.clone();
    let doc = after.docs.remove(0);
    after.docs.push(doc);
    assert!(diff(&site, &after).is_empty());
}

#[test]
fn removed_documents_and_nodes_are_deleted() {
    let site = Site::example();
    let p = diff(&site, &site.without(Kind::BaremetalNode, "n00007"));
    assert_eq!(p.deletes, [(Kind::BaremetalNode, "n00007".to_string())]);
    assert_eq!(p.node_deletes, ["n00007"]);
    assert_eq!(names(&p.affected_nodes), ["n00007"]);
    assert_eq!(
        p.summary_lines(),
        ["- BaremetalNode/n00007", "node n00007: removed"]
    );
}

#[test]
fn the_first_of_duplicate_documents_wins() {
    let site = Site::example();
    let mut dup = site.clone();
    let i = dup.position(Kind::Network, "mgmt");
    let changed = dup.docs[i].replacen("metric: 10", "metric: 11", 1);
    dup.docs.push(changed.clone());
    // The later duplicate is ignored ...
    let d = dup.design();
    assert!(plan(&d, &snapshot_of(&site.valid_design())).is_empty());
    // ... and the earlier one counts.
    dup.docs.insert(0, changed);
    let p = plan(&dup.design(), &snapshot_of(&site.valid_design()));
    assert_eq!(p.summary_lines()[0], "~ Network/mgmt");
    assert_eq!(p.affected_nodes.len(), 12);
}

#[test]
fn node_bodies_are_compiled_nodes_without_their_document_index() {
    let p = plan(&Site::example().valid_design(), &Snapshot::default());
    let n = p.node_writes.iter().find(|n| n.name == "n00004").unwrap();
    let body: serde_json::Value = serde_json::from_str(&n.body).unwrap();
    assert_eq!(body["name"], "n00004");
    assert_eq!(body["hardware_profile"], "gen11");
    assert!(body.get("doc").is_none());
    assert_eq!(n.inputs_hash.len(), 64);
    assert_eq!(n.addresses.len(), 4);
}

fn rev(n: u32) -> Revision {
    Revision {
        commit: format!("{n:040x}"),
        tree: String::new(),
        author: "a".into(),
        committer: "c".into(),
        signed_by: None,
        summary: String::new(),
        committed_at: 0,
    }
}

/// 10,000 nodes: a full apply is one transaction, replanning is empty, and a
/// change to one node writes only that node. Times are printed, never asserted
/// (figures live in docs/benchmarks.md).
#[test]
fn ten_thousand_nodes_replan_empty_and_one_change_writes_one_node() {
    let site = Site::with_nodes(10_000);
    let design = site.valid_design();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("slipway.db")).unwrap();

    let t = Instant::now();
    let full = plan(&design, &store.snapshot().unwrap());
    let plan_full = t.elapsed();
    assert_eq!(full.node_writes.len(), 10_000);
    let t = Instant::now();
    let stats = store.apply(&full, &rev(1)).unwrap();
    let apply_full = t.elapsed();
    assert_eq!(stats.nodes_written, 10_000);

    let snapshot = store.snapshot().unwrap();
    // The best of a few runs: the machine is shared, and noise only adds.
    let replan = (0..5)
        .map(|_| {
            let t = Instant::now();
            let again = plan(&design, &snapshot);
            let took = t.elapsed();
            assert!(again.is_empty());
            took
        })
        .min()
        .unwrap();

    let changed = site
        .edit(
            Kind::BaremetalNode,
            "n04242",
            "'02:bd:50:00:10:92'",
            "'02:bd:50:ff:10:92'",
        )
        .valid_design();
    let one = plan(&changed, &snapshot);
    assert_eq!(
        one.summary_lines(),
        ["~ BaremetalNode/n04242", "node n04242: boot data changes"]
    );
    let t = Instant::now();
    let stats = store.apply(&one, &rev(2)).unwrap();
    let apply_one = t.elapsed();
    assert_eq!(
        (
            stats.documents_written,
            stats.nodes_written,
            stats.documents_deleted,
            stats.nodes_deleted
        ),
        (1, 1, 0, 0)
    );
    eprintln!(
        "10,000 nodes: plan {plan_full:?}, apply {apply_full:?}, replan {replan:?}, apply one {apply_one:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Document order does not matter: a shuffled design plans nothing against
    /// the original, and both plan the same writes from empty.
    #[test]
    fn plan_is_independent_of_document_order(
        order in Just((0..Site::example().docs.len()).collect::<Vec<_>>()).prop_shuffle()
    ) {
        let site = Site::example();
        let shuffled = Site { docs: order.iter().map(|&i| site.docs[i].clone()).collect() };
        let (a, b) = (site.design(), shuffled.design());
        prop_assert!(plan(&b, &snapshot_of(&a)).is_empty());
        let (pa, pb) = (plan(&a, &Snapshot::default()), plan(&b, &Snapshot::default()));
        prop_assert_eq!(&pa.node_writes, &pb.node_writes);
        prop_assert_eq!(pa.summary_lines(), pb.summary_lines());
        prop_assert_eq!(snapshot_of(&a), snapshot_of(&b));
    }

    /// From any earlier state (a subset of the documents, valid or not), applying
    /// the plan and planning again gives an empty plan, and the store then holds
    /// what `snapshot_of` predicts.
    #[test]
    fn replanning_after_apply_is_empty(
        keep in proptest::collection::vec(any::<bool>(), Site::example().docs.len()),
        order in Just((0..Site::example().docs.len()).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let site = Site::example();
        let before = Site {
            docs: site.docs.iter().zip(&keep).filter(|(_, k)| **k).map(|(d, _)| d.clone()).collect(),
        };
        let after = Site { docs: order.iter().map(|&i| site.docs[i].clone()).collect() };
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("slipway.db")).unwrap();
        let first = plan(&before.design(), &store.snapshot().unwrap());
        store.apply(&first, &rev(1)).unwrap();
        prop_assert!(plan(&before.design(), &store.snapshot().unwrap()).is_empty());
        let design = after.design();
        let second = plan(&design, &store.snapshot().unwrap());
        store.apply(&second, &rev(2)).unwrap();
        let snapshot = store.snapshot().unwrap();
        let replan = plan(&design, &snapshot);
        prop_assert!(replan.is_empty(), "{:?}", replan.summary_lines());
        let mut expected = snapshot_of(&design);
        expected.revision = Some(rev(2).commit);
        prop_assert_eq!(snapshot, expected);
    }
}

/// The child process of `killing_the_process_mid_apply_leaves_a_whole_state`:
/// `examples/apply_child.rs`, which `cargo test` builds beside the test binaries.
fn apply_child() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/plan-<hash> → target/<profile>/examples/apply_child
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/apply_child");
    assert!(
        path.is_file(),
        "{} is missing: run the whole `cargo test` (it builds the examples) or `cargo build --example apply_child`",
        path.display()
    );
    path
}

/// Writes a site's documents into a directory, one file each, in order.
fn write_site(site: &Site, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in site.files() {
        std::fs::write(dir.join(&f.path), &f.bytes).unwrap();
    }
}

/// SIGKILL during an apply: the database holds the previous state or the new
/// one, whole, never a mix.
#[test]
fn killing_the_process_mid_apply_leaves_a_whole_state() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let (small_site, big_site) = (Site::example(), Site::with_nodes(3_000));
    let small = small_site.valid_design();
    let big = big_site.valid_design();
    let sites = tempfile::tempdir().unwrap();
    let (small_dir, big_dir) = (sites.path().join("small"), sites.path().join("big"));
    write_site(&small_site, &small_dir);
    write_site(&big_site, &big_dir);
    let child_exe = apply_child();
    let with = |mut s: Snapshot, n| {
        s.revision = Some(rev(n).commit);
        s
    };
    let (before, after) = (with(snapshot_of(&small), 1), with(snapshot_of(&big), 2));
    let mut outcomes = BTreeSet::new();
    for delay_ms in [0u64, 30, 5_000] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slipway.db");
        let mut child = Command::new(&child_exe)
            .arg(&path)
            .arg(&small_dir)
            .arg(&big_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = lines.any(|l| l.unwrap().contains("applying"));
        assert!(started, "the child never started applying");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let snap = Store::open(&path).unwrap().snapshot().unwrap();
        if snap == before {
            outcomes.insert("before");
        } else if snap == after {
            outcomes.insert("after");
        } else {
            panic!("killed after {delay_ms} ms: the state is neither before nor after the apply");
        }
    }
    // Killed at once it cannot have committed a 3,000-node apply.
    assert!(outcomes.contains("before"), "{outcomes:?}");
}
