//! `cargo bench --bench site`: every figure of the performance issue, in one command.
//!
//! In process, per size of `SLIPWAY_BENCH_NODES` (comma-separated, default
//! `1000,10000,100000`): `slipway::validate` and `services::render_site` (every node's
//! boot data), medians of several runs. Then, against the release server binary on
//! a git repository holding a site of `SLIPWAY_BENCH_HTTP_NODES` nodes (default
//! 10000), with `wrk` as the load generator, `SLIPWAY_BENCH_SECS` seconds per run
//! (default 8): boot-data GETs (keep-alive and a new connection per request),
//! Ironic agent lookups by MAC (`GET /v1/lookup`), Luna2 boot scripts by MAC (`GET /boot/search/mac/{mac}`), boot-action signal POSTs (and a count of the recorded rows), a boot storm with
//! as many connections as the file limit allows (up to 10,000), a one-node commit
//! through the git webhook, and the server's peak RSS. With `SLIPWAY_BENCH_PG`
//! (a PostgreSQL URL, e.g. the cluster `scripts/pg.sh start` prints), the GET
//! and POST figures again on PostgreSQL, one replica and then two.
//!
//! Sites are written by `../shared/tools/gen-site` into `target/bench-sites/nN/`
//! (kept between runs). Without `wrk` the HTTP figures are skipped. Prints the
//! figures of each stage as it goes, then one table: target, measured, met or not,
//! Drydock's figure (`../shared/CLIENTS.md`) and the speed-up. Nothing is asserted.

#[path = "site/load.rs"]
mod load;
#[path = "site/table.rs"]
mod table;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use slipway::design::{Design, DesignFile};
use slipway::keys::{Secret, SECRET_LEN};
use slipway::render::bootdata::BootDataKind;
use slipway::services;

use table::{secs, Row, Table};

// The server binary runs on jemalloc; so do the in-process figures.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Drydock in process (CLIENTS.md): validatedesign, seconds per node count.
const DRYDOCK_VALIDATE: &[(usize, f64)] = &[(100, 0.11), (1_000, 1.12), (10_000, 14.2)];
/// Drydock in process: rendering every node's boot data, seconds per node count.
const DRYDOCK_RENDER: &[(usize, f64)] = &[(100, 0.44), (1_000, 7.0), (10_000, 452.0)];

/// The knobs, from the environment.
pub struct Config {
    /// Site sizes of the in-process figures.
    pub sizes: Vec<usize>,
    /// Site size of the HTTP figures.
    pub http_nodes: usize,
    /// Seconds per wrk run.
    pub secs: u64,
}

impl Config {
    fn from_env() -> Config {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let number = |name: &str, default: &str| {
            let text = var(name, default);
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={text:?} is not a number"))
        };
        Config {
            sizes: var("SLIPWAY_BENCH_NODES", "1000,10000,100000")
                .split(',')
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap_or_else(|_| panic!("bad size {s:?}")))
                .collect(),
            http_nodes: number("SLIPWAY_BENCH_HTTP_NODES", "10000") as usize,
            secs: number("SLIPWAY_BENCH_SECS", "8"),
        }
    }
}

/// The gen-site site of `nodes` nodes, generated on first use.
pub fn site(nodes: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench-sites").join(format!("n{nodes}"));
    if !out.join("site.yaml").exists() {
        let status = Command::new("python3")
            .arg(root.join("../shared/tools/gen-site"))
            .args(["--nodes", &nodes.to_string(), "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("python3 runs gen-site");
        assert!(status.success(), "gen-site failed");
    }
    out
}

/// The median of `runs` timings of `f` (after the first call, which also runs).
fn median_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        // The previous result is freed first (outside the timing): a server
        // holds one validation at a time, not two.
        drop(last.take());
        let t0 = Instant::now();
        let out = f();
        times.push(t0.elapsed());
        last = Some(out);
    }
    times.sort();
    (times[times.len() / 2], last.expect("at least one run"))
}

fn drydock(figures: &[(usize, f64)], nodes: usize) -> Option<f64> {
    figures.iter().find(|(n, _)| *n == nodes).map(|(_, s)| *s)
}

/// Validation and rendering of one site size, in process.
struct InProcess {
    nodes: usize,
    validate: Duration,
}

fn in_process(nodes: usize, table: &mut Table) -> InProcess {
    let bytes = std::fs::read(site(nodes).join("site.yaml")).expect("site.yaml reads");
    let megabytes = bytes.len() as f64 / 1e6;
    let files = [DesignFile {
        path: "site.yaml".into(),
        bytes,
    }];
    let runs = if nodes >= 100_000 { 3 } else { 7 };
    let (validate, validation) = median_of(runs, || slipway::validate(&files));
    let valid = validation.is_valid();
    let design: Design = validation.design.expect("gen-site designs type");

    let secret = Secret::from_bytes([7; SECRET_LEN]);
    let report_url = "http://127.0.0.1:9000/api/v1.0/bootactions/";
    let render_runs = if nodes >= 100_000 { 1 } else { 5 };
    let (render, rendered) = median_of(render_runs, || {
        services::render_site(&design, &secret, report_url, BootDataKind::All, 0)
            .expect("gen-site boot actions render")
    });
    println!(
        "nodes={nodes:>7} ({megabytes:.1} MB, valid={valid}): validate {} (median of {runs}) | \
         render all boot data {} (median of {render_runs}; {} nodes, {:.1} MB)",
        secs(validate),
        secs(render),
        rendered.nodes,
        rendered.bytes as f64 / 1e6,
    );

    let target = |limit: f64| (nodes == 10_000).then_some(limit);
    table.push(Row::time(
        format!("validate, {} nodes", table::count(nodes)),
        target(0.15),
        validate,
        drydock(DRYDOCK_VALIDATE, nodes),
    ));
    table.push(Row::time(
        format!("render all boot data, {} nodes", table::count(nodes)),
        target(2.0),
        render,
        drydock(DRYDOCK_RENDER, nodes),
    ));
    InProcess { nodes, validate }
}

/// The growth of validation time from 10,000 to 100,000 nodes (or between the
/// two largest sizes): time ratio over node ratio, 1 when linear.
fn growth(runs: &[InProcess], table: &mut Table) {
    let pick = |n: usize| runs.iter().find(|r| r.nodes == n);
    let (small, large) = match (pick(10_000), pick(100_000)) {
        (Some(s), Some(l)) => (s, l),
        _ if runs.len() >= 2 => (&runs[runs.len() - 2], &runs[runs.len() - 1]),
        _ => return,
    };
    let nodes = large.nodes as f64 / small.nodes as f64;
    let time = large.validate.as_secs_f64() / small.validate.as_secs_f64();
    let ratio = time / nodes;
    println!(
        "validate growth {}→{} nodes: {time:.1}× the time for {nodes:.0}× the nodes = {ratio:.2} (1 is linear)",
        table::count(small.nodes),
        table::count(large.nodes),
    );
    table.push(Row {
        figure: format!(
            "validate growth {}→{} (time ratio / node ratio)",
            table::count(small.nodes),
            table::count(large.nodes)
        ),
        target: "≈ 1 (≤ 1.2)".into(),
        measured: format!("{ratio:.2}"),
        met: Some(ratio <= 1.2),
        drydock: "—".into(),
        speedup: "—".into(),
    });
}

fn main() {
    // `cargo bench` passes `--bench`; there are no arguments to read.
    let cfg = Config::from_env();
    let started = Instant::now();
    println!(
        "site benchmark: sizes {:?}, HTTP at {} nodes, {} s per load run, {} rayon threads",
        cfg.sizes,
        cfg.http_nodes,
        cfg.secs,
        rayon::current_num_threads()
    );
    let mut table = Table::default();
    let runs: Vec<InProcess> = cfg
        .sizes
        .iter()
        .map(|&n| in_process(n, &mut table))
        .collect();
    growth(&runs, &mut table);
    drop(runs);

    if let Err(e) = load::run(&cfg, &mut table) {
        println!("HTTP figures stopped: {e}");
    }
    // The same GET and POST figures on PostgreSQL, one and two replicas,
    // when a cluster is named (`SLIPWAY_BENCH_PG=postgres://…`, e.g. the
    // test cluster of scripts/pg.sh).
    if let Ok(admin) = std::env::var("SLIPWAY_BENCH_PG") {
        if let Err(e) = load::run_postgres(&cfg, &mut table, &admin) {
            println!("PostgreSQL HTTP figures stopped: {e}");
        }
    }

    println!(
        "\nall figures ({:.0} s in all; load average {}):",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    table.print();
}

/// `/proc/loadavg`'s first three fields: how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
