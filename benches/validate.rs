//! `cargo bench --bench validate`: time `slipway validate` stages on gen-site sites.
//!
//! Sizes come from `SLIPWAY_BENCH_NODES` (comma-separated, default `1000,10000`).
//! Sites are generated with `../shared/tools/gen-site` into `target/bench-sites/`.
//! Prints, per size, the median and minimum of several runs for the whole
//! validation and for each stage, and the growth ratio between sizes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use slipway::design::{self, parse, rules, DesignFile};

// Validation and planning allocate many small strings and maps; glibc's
// allocator spends more time than the work itself on them (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn site(nodes: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench-sites").join(format!("n{nodes}"));
    if !out.join("site.yaml").exists() {
        let status = Command::new("python3")
            .arg(root.join("../shared/tools/gen-site"))
            .args(["--nodes", &nodes.to_string(), "--out"])
            .arg(&out)
            .status()
            .expect("python3 runs gen-site");
        assert!(status.success(), "gen-site failed");
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let sizes: Vec<usize> = std::env::var("SLIPWAY_BENCH_NODES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "validate benchmark ({} threads)",
        rayon::current_num_threads()
    );
    let mut previous: Option<(usize, Duration)> = None;
    for n in sizes {
        let dir = site(n);
        let bytes = std::fs::read(dir.join("site.yaml")).unwrap();
        let files = vec![DesignFile {
            path: "site.yaml".into(),
            bytes,
        }];
        let runs = if n >= 100_000 { 3 } else { 7 };
        let (mut total, mut p, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut valid = true;
        for _ in 0..runs {
            let t0 = Instant::now();
            let v = slipway::validate(&files);
            total.push(t0.elapsed());
            valid &= v.is_valid();
            drop(v);
            let t0 = Instant::now();
            let parsed = parse::parse_files(&files);
            p.push(t0.elapsed());
            let t0 = Instant::now();
            let (d, _) = design::build(parsed.documents);
            b.push(t0.elapsed());
            let t0 = Instant::now();
            let msgs = rules::check(&d);
            r.push(t0.elapsed());
            std::hint::black_box(msgs);
        }
        let min = *total.iter().min().unwrap();
        let med = median(total);
        println!(
            "nodes={n:>6} size={:.1} MB valid={valid} validate: median {} (min {}) | parse {} | schema+typing {} | rules {}",
            files[0].bytes.len() as f64 / 1e6,
            ms(med),
            ms(min),
            ms(median(p)),
            ms(median(b)),
            ms(median(r)),
        );
        if let Some((pn, pd)) = previous {
            println!(
                "  growth {}x nodes -> {:.2}x time",
                n / pn.max(1),
                med.as_secs_f64() / pd.as_secs_f64()
            );
        }
        previous = Some((n, med));
    }
}
