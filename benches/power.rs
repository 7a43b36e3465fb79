//! `cargo bench --bench power`: power-status sweeps over an emulated fleet on
//! 127.0.0.1 (sushy-emulator systems, pyghmi IPMI BMCs with the real ipmitool,
//! silent BMCs), printing nodes/s and the concurrency reached. Figures in
//! docs/benchmarks.md ("Power"). Needs what the power tests need (ipmitool, the
//! virtualenv of tests/bmc/emulators.rs).

#[path = "../tests/bmc/emulators.rs"]
mod emulators;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use emulators::{ipmitool, FakeBmcs, SilentTcp, SilentUdp, Sushy, USER};
use slipway::power::{
    BmcTarget, OperationRecord, Outcome, PowerConfig, PowerOp, PowerService, Scheme, Secret,
};

const PW: &str = "bench-password";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: expected a number, found `{v}`"))
        })
        .unwrap_or(default)
}

struct Fleet {
    sushys: Vec<Sushy>,
    bmcs: Vec<FakeBmcs>,
    udp: Vec<SilentUdp>,
    tcp: Vec<SilentTcp>,
}

impl Fleet {
    fn redfish(&self) -> Vec<BmcTarget> {
        let mut out = Vec::new();
        for (e, s) in self.sushys.iter().enumerate() {
            for (i, uuid) in s.systems.iter().enumerate() {
                out.push(
                    BmcTarget::redfish(
                        &format!("rf{e}-{i:04}"),
                        Scheme::Http,
                        "127.0.0.1",
                        s.port,
                        USER,
                        Secret::new(PW),
                    )
                    .with_system(uuid),
                );
            }
        }
        out
    }

    fn ipmi(&self) -> Vec<BmcTarget> {
        self.bmcs
            .iter()
            .flat_map(|b| b.ports.iter())
            .enumerate()
            .map(|(i, p)| {
                BmcTarget::ipmi(
                    &format!("ipmi{i:03}"),
                    "127.0.0.1",
                    *p,
                    USER,
                    Secret::new(PW),
                )
            })
            .collect()
    }

    fn silent(&self) -> Vec<BmcTarget> {
        let udp = self.udp.iter().enumerate().map(|(i, s)| {
            BmcTarget::ipmi(
                &format!("dead-ipmi{i:04}"),
                "127.0.0.1",
                s.port,
                USER,
                Secret::new(PW),
            )
        });
        let tcp = self.tcp.iter().enumerate().map(|(i, s)| {
            BmcTarget::redfish(
                &format!("dead-rf{i:04}"),
                Scheme::Http,
                "127.0.0.1",
                s.port,
                USER,
                Secret::new(PW),
            )
            .with_system("1")
        });
        udp.chain(tcp).collect()
    }
}

/// One sweep: prints and returns (nodes, seconds, seconds until the last success).
async fn sweep(svc: &PowerService, name: &str, targets: Vec<BmcTarget>) -> (usize, f64, f64) {
    let n = targets.len();
    svc.reset_peak();
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let wall0 = std::time::SystemTime::now();
    let records: Vec<OperationRecord> = svc.fleet(targets, PowerOp::Status).wait().await;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let peak = svc.peak_in_flight();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let k = match r.outcome {
            Outcome::Succeeded => "ok".to_string(),
            Outcome::Failed(k) => k.to_string(),
            other => format!("{other:?}"),
        };
        *outcomes.entry(k).or_default() += 1;
    }
    // when the last node that succeeded was done: what a dead BMC could have delayed
    let last_ok = records
        .iter()
        .filter(|r| r.outcome == Outcome::Succeeded)
        .filter_map(|r| r.finished?.duration_since(wall0).ok())
        .max()
        .unwrap_or_default();
    println!(
        "{name:<30} {n:>5} nodes {secs:>7.2} s {:>7.1} nodes/s  peak {peak:>3}  last ok at {:>5.2} s  slipway CPU {:>5.2} ms/node  {outcomes:?}",
        n as f64 / secs,
        last_ok.as_secs_f64(),
        cpu * 1000.0 / n as f64
    );
    (n, secs, last_ok.as_secs_f64())
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`, clock ticks of
/// 1/100 s); ipmitool children and the emulators are not counted.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // after the command name: state is field 3, utime 14 and stime 15 (1-based)
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

fn main() {
    let redfish_n = env_usize("SLIPWAY_BENCH_POWER_REDFISH", 500);
    // sushy-emulator's fake driver reads every system of its process on each request
    // (a new driver per request thread), so a request costs more the more systems one
    // process has: many small emulators, as many BMCs are
    let per_emulator = env_usize("SLIPWAY_BENCH_POWER_PER_EMULATOR", 20).max(1);
    let ipmi_n = env_usize("SLIPWAY_BENCH_POWER_IPMI", 32);
    // pyghmi serves all the BMCs of a process from one thread
    let ipmi_per_process = env_usize("SLIPWAY_BENCH_POWER_IPMI_PER_PROCESS", 8).max(1);
    let silent_n = env_usize("SLIPWAY_BENCH_POWER_SILENT", 8);
    let dead_n = env_usize("SLIPWAY_BENCH_POWER_DEAD", 1000);
    let concurrency = env_usize("SLIPWAY_BENCH_POWER_CONCURRENCY", 64);
    let timeout = Duration::from_secs(env_usize("SLIPWAY_BENCH_POWER_TIMEOUT", 5) as u64);

    let emulators_n = redfish_n.div_ceil(per_emulator);
    let ipmi_processes = ipmi_n.div_ceil(ipmi_per_process);
    println!(
        "power bench: {redfish_n} Redfish systems on {emulators_n} sushy-emulators, {ipmi_n} pyghmi BMCs in \
         {ipmi_processes} processes, {silent_n} silent BMCs; concurrency {concurrency}, timeout {timeout:?}"
    );
    let t = Instant::now();
    let sushys: Vec<Sushy> = (0..emulators_n)
        .map(|e| Sushy::start(per_emulator.min(redfish_n - e * per_emulator), "On"))
        .collect();
    let bmcs: Vec<FakeBmcs> = (0..ipmi_processes)
        .map(|p| {
            FakeBmcs::start(
                ipmi_per_process.min(ipmi_n - p * ipmi_per_process),
                PW,
                "off",
            )
        })
        .collect();
    let fleet = Fleet {
        sushys,
        bmcs,
        udp: (0..silent_n / 2).map(|_| SilentUdp::bind()).collect(),
        tcp: (0..silent_n - silent_n / 2)
            .map(|_| SilentTcp::bind())
            .collect(),
    };
    println!("emulators up in {:.1} s", t.elapsed().as_secs_f64());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let svc = PowerService::new(PowerConfig {
            concurrency,
            timeout,
            ipmitool: ipmitool(),
            ..PowerConfig::default()
        })
        .unwrap();
        let mut all = fleet.redfish();
        all.extend(fleet.ipmi());
        // warm-up: every emulator's first requests (Python imports, templates), connections
        sweep(&svc, "warm-up (every BMC once)", all.clone()).await;

        sweep(&svc, "Redfish status", fleet.redfish()).await;
        sweep(&svc, "IPMI status", fleet.ipmi()).await;
        let (_, live_secs, _) = sweep(&svc, "Redfish + IPMI status", all.clone()).await;
        let luna = PowerService::new(PowerConfig {
            concurrency: 9,
            ..svc.config().clone()
        })
        .unwrap();
        sweep(&luna, "  same, concurrency 9 (Luna2's)", all.clone()).await;
        // silent BMCs first, so they hold slots from the start
        let mut mixed = fleet.silent();
        mixed.extend(all);
        let (_, mixed_secs, mixed_last_ok) = sweep(&svc, "Redfish + IPMI + silent", mixed).await;
        println!(
            "  with {silent_n} silent BMCs the live nodes were done at {mixed_last_ok:.2} s (alone: {live_secs:.2} s); \
             the sweep ended at {mixed_secs:.2} s, the silent ones' timeout ({:.0} s)",
            timeout.as_secs_f64()
        );

        if dead_n > 0 {
            drop(fleet);
            let udp: Vec<SilentUdp> = (0..dead_n / 2).map(|_| SilentUdp::bind()).collect();
            let tcp: Vec<SilentTcp> = (0..dead_n - dead_n / 2).map(|_| SilentTcp::bind()).collect();
            let dead = Fleet {
                sushys: Vec::new(),
                bmcs: Vec::new(),
                udp,
                tcp,
            };
            let (n, secs, _) = sweep(&svc, "dead fleet (all silent)", dead.silent()).await;
            let rounds = n.div_ceil(concurrency) as f64;
            println!(
                "  {n} dead BMCs: {secs:.1} s = {rounds:.0} rounds of {concurrency} x {:.0} s timeout (Luna2: 9 threads x <=10 s, ~18 min for 1,000)",
                timeout.as_secs_f64()
            );
        }
    });
}
