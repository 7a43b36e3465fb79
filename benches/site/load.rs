//! The HTTP figures of the site benchmark: the release server on a git
//! repository of a gen-site site, driven by `wrk` (boot-data GETs, Ironic agent
//! lookups by MAC, inspection callbacks, signal POSTs, a boot storm), then a
//! one-node commit through the webhook, and its peak RSS.
//!
//! Every call goes to 127.0.0.1 with a timeout; the server is killed when
//! [`Server`] drops, also on a panic.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::table::{count, less, seconds, times, Row, Table};
use crate::Config;

/// Nodes that fetch their identity and are then cycled over by wrk.
const ASKING_NODES: usize = 1_000;
/// Connections of the keep-alive and new-connection runs (`wrk -t2 -c64`).
const CONNECTIONS: usize = 64;
/// The boot storm's connections, at most (fewer when the file limit is lower).
const STORM_CONNECTIONS: usize = 10_000;
/// Drydock, through its API with PostgreSQL: one boot-data GET at 10,000 nodes.
const DRYDOCK_GET_SECS: f64 = 3.0;
/// Luna2's `/boot/search/mac` on 2 cores (CLIENTS.md / issue 14).
const LUNA2_BOOT_SEARCH_RATE: f64 = 590.0;
/// Drydock's peak RSS at 10,000 nodes, MB.
const DRYDOCK_RSS_MB: f64 = 340.0;
/// The signal POST's body: one progress detail.
const SIGNAL_BODY: &str = r#"{"details":[{"message":"progress","error":false}]}"#;
/// The Luna2 user the `/config/node` figure logs in as.
const BENCH_USER: &str = "bench";
const BENCH_PASSWORD: &str = "bench-password";
/// Runs a command with the soft file limit raised to the hard one.
const RAISE_NOFILE: &str = r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@""#;

/// Runs the HTTP figures in order, printing each and adding its row to
/// `table`; skipped (with how to install it) when wrk is missing.
pub fn run(cfg: &Config, table: &mut Table) -> Result<()> {
    if Command::new("wrk").arg("-v").output().is_err() {
        println!(
            "\nwrk not found: the HTTP figures are skipped. Install it with `apt-get install wrk`."
        );
        return Ok(());
    }
    let nodes = cfg.http_nodes;
    println!(
        "\nHTTP: release server on a {}-node site, wrk {} s per run",
        count(nodes),
        cfg.secs
    );
    let work = Workspace::new(nodes)?;
    let server = Server::start(&work)?;
    let api = Api::new(&server.base)?;
    let t0 = Instant::now();
    server.wait_healthy(&api, Duration::from_secs(120 + nodes as u64 / 500))?;
    println!(
        "  server healthy after {:.1} s, RSS {:.0} MB",
        t0.elapsed().as_secs_f64(),
        server.rss_mb("VmRSS")
    );

    let t0 = Instant::now();
    let mut targets = identities(&api, &work.hosts, &work.macs)?;
    println!(
        "  identity of {} nodes in {:.1} s ({} signaling actions)",
        targets.gets.len(),
        t0.elapsed().as_secs_f64(),
        targets.posts.len()
    );
    // Luna2's session token, for `GET /config/node` (every node).
    let login = serde_json::json!({"username": BENCH_USER, "password": BENCH_PASSWORD});
    let (code, body) = api.post_json("/token", &login.to_string())?;
    ensure!(code == 201, "POST /token: {code} {body}");
    let token: Value = serde_json::from_str(&body)?;
    let token = token["token"].as_str().context("token")?.to_string();
    targets.config_nodes.push(("/config/node".into(), token));
    let scripts = targets.write(&work.dir)?;
    let wrk = Wrk {
        base: &server.base,
        secs: cfg.secs,
    };

    for (name, script) in [
        ("boot-data GET, keep-alive", &scripts.get),
        (
            "boot-data GET, new connection per request",
            &scripts.get_close,
        ),
    ] {
        let r = wrk.run(script, CONNECTIONS)?;
        println!("  {name} (wrk -t2 -c{CONNECTIONS}): {}", r.summary());
        table.push(Row {
            figure: name.into(),
            target: "≥ 20,000/s, p99 < 5 ms".into(),
            measured: format!(
                "{}/s, p50 {}, p99 {}, {} non-2xx",
                count(r.rate() as usize),
                seconds(r.p50),
                seconds(r.p99),
                r.non_2xx()
            ),
            met: Some(r.rate() >= 20_000.0 && r.p99 < 0.005 && r.non_2xx() == 0),
            drydock: format!("{} per GET", seconds(DRYDOCK_GET_SECS)),
            speedup: format!("{} (p50)", times(DRYDOCK_GET_SECS / r.p50)),
        });
    }

    // Ironic agent lookups by MAC (`GET /v1/lookup?addresses=<boot mac>`) of
    // the same nodes: each first looked up once (its token issued), then
    // cycled over by wrk, answered "******" from the in-memory MAC index.
    let t0 = Instant::now();
    for (path, _) in &targets.lookups {
        let (code, body) = api.get(path)?;
        ensure!(code == 200, "lookup {path}: {code} {body}");
    }
    println!(
        "  first lookup (token issued) of {} nodes in {:.1} s",
        targets.lookups.len(),
        t0.elapsed().as_secs_f64()
    );
    let r = wrk.run(&scripts.lookup, CONNECTIONS)?;
    println!(
        "  Ironic lookup by MAC, keep-alive (wrk -t2 -c{CONNECTIONS}): {}",
        r.summary()
    );
    table.push(Row {
        figure: format!("Ironic agent lookup by MAC, {} nodes", count(nodes)),
        target: "≥ 20,000/s, p99 < 5 ms".into(),
        measured: format!(
            "{}/s, p50 {}, p99 {}, {} non-2xx",
            count(r.rate() as usize),
            seconds(r.p50),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: Some(r.rate() >= 20_000.0 && r.p99 < 0.005 && r.non_2xx() == 0),
        drydock: "—".into(),
        speedup: "—".into(),
    });

    // Luna2's boot script by MAC (`GET /boot/search/mac/<boot mac>`) of the
    // same nodes: each asked once (its script rendered for its deployment),
    // then cycled over by wrk, answered from memory.
    let t0 = Instant::now();
    for (path, _) in &targets.boot_search {
        let (code, body) = api.get(path)?;
        ensure!(
            code == 200 && body.contains("imgexec"),
            "boot search {path}: {code} {body}"
        );
    }
    println!(
        "  first boot script by MAC of {} nodes in {:.1} s",
        targets.boot_search.len(),
        t0.elapsed().as_secs_f64()
    );
    let r = wrk.run(&scripts.boot_search, CONNECTIONS)?;
    println!(
        "  Luna2 /boot/search/mac by MAC, keep-alive (wrk -t2 -c{CONNECTIONS}): {}",
        r.summary()
    );
    table.push(Row {
        figure: format!(
            "Luna2 boot script by MAC (/boot/search/mac), {} nodes",
            count(nodes)
        ),
        target: "≥ 50,000/s, p99 < 5 ms".into(),
        measured: format!(
            "{}/s, p50 {}, p99 {}, {} non-2xx",
            count(r.rate() as usize),
            seconds(r.p50),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: Some(r.rate() >= 50_000.0 && r.p99 < 0.005 && r.non_2xx() == 0),
        drydock: "Luna2: ~590/s on 2 cores".into(),
        speedup: format!("{} (rate)", times(r.rate() / LUNA2_BOOT_SEARCH_RATE)),
    });

    // Luna2's `GET /config/node`: every node of the site in one answer,
    // built once per served revision.
    let (code, body) = api.get_with(
        "/config/node",
        "x-access-tokens",
        &targets.config_nodes[0].1,
    )?;
    ensure!(
        code == 200,
        "GET /config/node: {code} {}",
        &body[..body.len().min(200)]
    );
    let listed = serde_json::from_str::<Value>(&body)?["config"]["node"]
        .as_object()
        .map_or(0, |m| m.len());
    ensure!(
        listed == nodes,
        "GET /config/node listed {listed} of {nodes} nodes"
    );
    let r = wrk.run(&scripts.config_nodes, CONNECTIONS)?;
    println!(
        "  Luna2 GET /config/node ({} nodes, {} KB), keep-alive (wrk -t2 -c{CONNECTIONS}): {}",
        count(nodes),
        body.len() / 1024,
        r.summary()
    );
    table.push(Row {
        figure: format!(
            "Luna2 GET /config/node (every node), {} nodes",
            count(nodes)
        ),
        target: "— (measured)".into(),
        measured: format!(
            "{}/s, p50 {}, p99 {}, {} non-2xx",
            count(r.rate() as usize),
            seconds(r.p50),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: None,
        drydock: "Luna2: 96/s at 106 nodes".into(),
        speedup: "—".into(),
    });

    let rows_before = signal_rows(&api, &targets.hosts)?;
    let r = wrk.run(&scripts.post, CONNECTIONS)?;
    let recorded = signal_rows(&api, &targets.hosts)? - rows_before;
    let lost = r.ok.saturating_sub(recorded);
    let verdict = if lost == 0 {
        "none lost".to_string()
    } else {
        format!("{lost} LOST")
    };
    println!(
        "  signal POST (wrk -t2 -c{CONNECTIONS}): {}; {recorded} rows recorded for {} 2xx: {verdict}",
        r.summary(),
        r.ok
    );
    table.push(Row {
        figure: "signal POST".into(),
        target: "≥ 5,000/s, none lost".into(),
        measured: format!(
            "{}/s, p99 {}, {} non-2xx, {verdict}",
            count(r.rate() as usize),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: Some(r.rate() >= 5_000.0 && lost == 0 && r.non_2xx() == 0),
        drydock: "—".into(),
        speedup: "—".into(),
    });

    // Inspection callbacks (`/v1/continue`): each matched by MAC against the
    // served revision's index, its body stored as build data, compared with
    // the design, its introspection row finished.
    let script = continue_script(&work.dir, &work.boot_macs)?;
    let r = wrk.run(&script, CONNECTIONS)?;
    println!(
        "  inspection callback POST /v1/continue (wrk -t2 -c{CONNECTIONS}): {}",
        r.summary()
    );
    table.push(Row {
        figure: format!("inspection callback (/v1/continue), {} nodes", count(nodes)),
        target: "≥ 1,000/s".into(),
        measured: format!(
            "{}/s, p50 {}, p99 {}, {} non-2xx",
            count(r.rate() as usize),
            seconds(r.p50),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: Some(r.rate() >= 1_000.0 && r.non_2xx() == 0),
        drydock: "—".into(),
        speedup: "—".into(),
    });

    let commit = one_node_commit(&api, &work)?;
    println!("  one-node commit: {}", commit.summary());
    table.push(Row {
        figure: "one-node commit, reconcile pass".into(),
        target: "< 50 ms".into(),
        measured: commit.summary(),
        met: commit.met(50),
        drydock: "—".into(),
        speedup: "—".into(),
    });

    // The target figure: the server's peak under the GET and POST load and a
    // one-node commit, before the storm (whose connections are bounded
    // separately, `--max-connections`).
    let peak = server.rss_mb("VmHWM");
    println!("  server peak RSS (VmHWM) under load and a one-node commit: {peak:.0} MB");
    table.push(Row {
        figure: format!(
            "serve peak RSS, {} nodes, GET + POST load and a one-node commit",
            count(nodes)
        ),
        target: "< 150 MB".into(),
        measured: format!("{peak:.0} MB"),
        met: Some(peak < 150.0),
        drydock: format!("{DRYDOCK_RSS_MB:.0} MB (10,000)"),
        speedup: less(DRYDOCK_RSS_MB, peak),
    });

    // The commit gave one node a new deployment (and key): ask again, so the
    // storm presents current keys.
    let scripts = identities(&api, &work.hosts, &work.macs)?.write(&work.dir)?;
    let storm = STORM_CONNECTIONS.min(hard_nofile().saturating_sub(100));
    let r = wrk.run(&scripts.storm, storm)?;
    let rss = server.rss_mb("VmHWM");
    println!(
        "  boot storm (wrk -t2 -c{storm}): {}; server peak RSS {rss:.0} MB",
        r.summary()
    );
    table.push(Row {
        figure: format!("boot storm, {} connections", count(storm)),
        target: "0 5xx".into(),
        measured: format!(
            "{} 2xx, {} 429, {} other non-2xx ({} 5xx), {} socket errors, peak RSS {rss:.0} MB",
            count(r.ok as usize),
            count(r.limited as usize),
            count(r.other as usize),
            r.server_errors,
            count(r.socket_errors as usize)
        ),
        met: Some(r.server_errors == 0),
        drydock: "—".into(),
        speedup: "—".into(),
    });

    Ok(())
}

/// A temporary directory holding the server's git repository (the site under
/// `designs/`), its database, its log and the wrk scripts.
struct Workspace {
    dir: tempfile::TempDir,
    /// The BaremetalNodes' names, in document order.
    hosts: Vec<String>,
    /// Their `boot_mac`s, in document order (what an inspection callback names).
    boot_macs: Vec<String>,
    /// Their boot MACs, by name.
    macs: std::collections::HashMap<String, String>,
}

impl Workspace {
    fn new(nodes: usize) -> Result<Workspace> {
        let dir = tempfile::Builder::new()
            .prefix("slipway-bench-")
            .tempdir()?;
        let designs = dir.path().join("repo/designs");
        std::fs::create_dir_all(&designs)?;
        let site = crate::site(nodes).join("site.yaml");
        std::fs::copy(&site, designs.join("site.yaml")).context("copy the site")?;
        let text = std::fs::read_to_string(&site)?;
        let work = Workspace {
            hosts: baremetal_nodes(&text),
            boot_macs: boot_macs(&text),
            macs: boot_macs_by_name(&text),
            dir,
        };
        git(&work.repo(), &["init", "-q", "-b", "main"])?;
        git(&work.repo(), &["add", "-A"])?;
        git(&work.repo(), &["commit", "-q", "-m", "site"])?;
        Ok(work)
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn site_yaml(&self) -> PathBuf {
        self.repo().join("designs/site.yaml")
    }
}

/// Names of the `drydock/BaremetalNode/v1` documents of a gen-site file.
fn baremetal_nodes(yaml: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut in_node = false;
    for line in yaml.lines() {
        if line.starts_with("schema:") {
            in_node = line.contains("drydock/BaremetalNode/");
        } else if let Some(name) = line.strip_prefix("  name: ").filter(|_| in_node) {
            hosts.push(name.trim().to_string());
            in_node = false;
        }
    }
    hosts
}

/// The `boot_mac`s of a gen-site file's nodes, in document order.
fn boot_macs(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("boot_mac: "))
        .map(|m| m.trim().trim_matches('\'').to_string())
        .collect()
}

/// The inspection callbacks wrk cycles over: one IPA-shaped body per node
/// (its boot interface and BMC-less inventory), for [`ASKING_NODES`] nodes
/// spread over the site; written as `continues.lua`.
fn continue_script(dir: &tempfile::TempDir, macs: &[String]) -> Result<PathBuf> {
    let step = (macs.len() / ASKING_NODES).max(1);
    let mut lua = String::from("continues = {\n");
    for mac in macs.iter().step_by(step).take(ASKING_NODES) {
        let body = serde_json::json!({
            "inventory": {
                "interfaces": [{"name": "eth0", "mac_address": mac, "has_carrier": true}],
                "cpu": {"count": 64, "architecture": "x86_64"},
                "memory": {"physical_mb": 262144},
                "bmc_address": "0.0.0.0",
                "boot": {"current_boot_mode": "bios", "pxe_interface": mac},
            },
            "boot_interface": mac,
            "error": null,
        });
        writeln!(lua, "  {:?},", body.to_string())?;
    }
    lua.push_str("}\n");
    let script = lua
        + r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  ok, limited, server_errors, other = 0, 0, 0, 0
  prepared, next_one = {}, 0
  for i, body in ipairs(continues) do
    prepared[i] = wrk.format("POST", "/v1/continue", {["Content-Type"] = "application/json"}, body)
  end
end
function request()
  next_one = next_one % #prepared + 1
  return prepared[next_one]
end
"# + &WRK_SCRIPT[WRK_SCRIPT
        .find("function response")
        .expect("the shared script")..];
    let path = dir.path().join("continue.lua");
    std::fs::write(&path, script)?;
    Ok(path)
}

/// The `boot_mac` of each `drydock/BaremetalNode/v1` document of a gen-site
/// file, by node name.
fn boot_macs_by_name(yaml: &str) -> std::collections::HashMap<String, String> {
    let mut macs = std::collections::HashMap::new();
    let mut node: Option<String> = None;
    let mut in_node = false;
    for line in yaml.lines() {
        if line.starts_with("schema:") {
            in_node = line.contains("drydock/BaremetalNode/");
            node = None;
        } else if let Some(name) = line.strip_prefix("  name: ").filter(|_| in_node) {
            node = Some(name.trim().to_string());
        } else if let Some(mac) = line.trim_start().strip_prefix("boot_mac: ") {
            if let Some(n) = node.take() {
                macs.insert(n, mac.trim().trim_matches('\'').to_string());
            }
        }
    }
    macs
}

/// Runs git in `repo` as a fixed author, without signing.
fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=slipway bench",
            "-c",
            "user.email=bench@localhost",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .context("run git")?;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The soft file limit this process may raise to (`ulimit -Hn`).
fn hard_nofile() -> usize {
    Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if text == "unlimited" {
                Some(usize::MAX)
            } else {
                text.parse().ok()
            }
        })
        .unwrap_or(1024)
}

/// The release server, killed on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(work: &Workspace) -> Result<Server> {
        let db = work.dir.path().join("slipway.db");
        Server::start_with(work, db.as_os_str(), None, "serve.log")
    }

    /// A server on `db` (a SQLite file or a PostgreSQL URL) with `secret`,
    /// logging to `log` in the workspace.
    fn start_with(
        work: &Workspace,
        db: &std::ffi::OsStr,
        secret: Option<&Path>,
        log: &str,
    ) -> Result<Server> {
        // A free port: bind port 0, read it, release it for the server.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = work.dir.path().join(log);
        // A Luna2 user for the `/config/node` figure (its token is asked
        // with `POST /token`), in the work directory, as for every backend.
        let users = work.dir.path().join("users");
        if !users.exists() {
            let mut add = Command::new(env!("CARGO_BIN_EXE_slipway"))
                .args(["user", "add", BENCH_USER, "--password-stdin", "--users"])
                .arg(&users)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .context("slipway user add")?;
            use std::io::Write as _;
            add.stdin
                .take()
                .context("stdin of slipway user add")?
                .write_all(format!("{BENCH_PASSWORD}\n").as_bytes())?;
            ensure!(add.wait()?.success(), "slipway user add failed");
        }
        let mut cmd = Command::new("sh");
        if let Some(secret) = secret {
            cmd.env("SLIPWAY_SECRET", secret);
        }
        let child = cmd
            .args([
                "-c",
                RAISE_NOFILE,
                "sh",
                env!("CARGO_BIN_EXE_slipway"),
                "serve",
            ])
            .arg("--repo")
            .arg(work.repo())
            .arg("--db")
            .arg(db)
            .arg("--users")
            .arg(&users)
            .arg("--luna-secret-key-file")
            .arg(work.dir.path().join("luna-key"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll", "3600"])
            .env("SLIPWAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("start slipway serve")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    /// Waits for `GET /api/v1.0/health` to answer 204.
    fn wait_healthy(&self, api: &Api, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok((204, _)) = api.get("/api/v1.0/health") {
                return Ok(());
            }
            if !Path::new(&format!("/proc/{}", self.child.id())).exists() {
                bail!("the server exited; its log:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "the server was not healthy after {limit:?}; its log:\n{}",
            self.log_tail()
        )
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A memory figure of `/proc/PID/status` (`VmRSS`, `VmHWM`), in MB.
    fn rss_mb(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client for the few control calls, every one bounded in time.
struct Api {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Result<Api> {
        Ok(Api {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: base.to_string(),
        })
    }

    /// Status and body of one call.
    fn call(&self, method: reqwest::Method, path: &str) -> Result<(u16, String)> {
        let request = self.client.request(method, format!("{}{path}", self.base));
        self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        })
    }

    fn get(&self, path: &str) -> Result<(u16, String)> {
        self.call(reqwest::Method::GET, path)
    }

    /// Status and body of a GET with one extra header.
    fn get_with(&self, path: &str, header: &str, value: &str) -> Result<(u16, String)> {
        let request = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header, value);
        self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        })
    }

    /// Status and body of a POST of a JSON `body`.
    fn post_json(&self, path: &str, body: &str) -> Result<(u16, String)> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        })
    }

    /// The JSON body of a GET answered 2xx.
    fn json(&self, path: &str) -> Result<Value> {
        let (status, body) = self.get(path)?;
        ensure!((200..300).contains(&status), "GET {path}: {status} {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// The `/metrics` text, `None` when the server has no such endpoint.
    fn metrics(&self) -> Result<Option<String>> {
        let (status, body) = self.get("/metrics")?;
        Ok((status == 200).then_some(body))
    }
}

/// The sum of a metric's samples whose series contains `with` (e.g. a label
/// pair; `""` for all label values).
fn metric_sum(text: &str, name: &str, with: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name && series.contains(with)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// What wrk cycles over: a path and the node's identity key.
struct Targets {
    /// Hosts that fetched their identity.
    hosts: Vec<String>,
    gets: Vec<(String, String)>,
    posts: Vec<(String, String)>,
    /// Ironic agent lookups by the nodes' boot MACs (no key).
    lookups: Vec<(String, String)>,
    /// Luna2's boot script by the nodes' boot MACs (no key).
    boot_search: Vec<(String, String)>,
    /// Luna2's `GET /config/node` (every node) with a session token.
    config_nodes: Vec<(String, String)>,
}

/// `GET /nodes/{host}/identity` for [`ASKING_NODES`] nodes spread over the site
/// (this makes their deployments): their boot-data paths and signaling actions.
fn identities(
    api: &Api,
    hosts: &[String],
    macs: &std::collections::HashMap<String, String>,
) -> Result<Targets> {
    let step = (hosts.len() / ASKING_NODES).max(1);
    let mut targets = Targets {
        hosts: Vec::new(),
        gets: Vec::new(),
        posts: Vec::new(),
        lookups: Vec::new(),
        boot_search: Vec::new(),
        config_nodes: Vec::new(),
    };
    for host in hosts.iter().step_by(step).take(ASKING_NODES) {
        let identity = api.json(&format!("/api/v1.0/nodes/{host}/identity"))?;
        let key = identity["identity_key"]
            .as_str()
            .context("identity_key")?
            .to_string();
        for action in identity["actions"].as_array().into_iter().flatten() {
            if action["signaling"].as_bool() == Some(true) {
                let id = action["action_id"].as_str().context("action_id")?;
                targets
                    .posts
                    .push((format!("/api/v1.0/bootactions/{id}"), key.clone()));
            }
        }
        targets.gets.push((
            format!("/api/v1.0/bootactions/nodes/{host}/units"),
            key.clone(),
        ));
        if let Some(mac) = macs.get(host) {
            targets
                .lookups
                .push((format!("/v1/lookup?addresses={mac}"), String::new()));
            targets
                .boot_search
                .push((format!("/boot/search/mac/{mac}"), String::new()));
        }
        targets.hosts.push(host.clone());
    }
    ensure!(!targets.posts.is_empty(), "no signaling boot action");
    ensure!(
        targets.lookups.len() == targets.hosts.len(),
        "a node without a boot_mac in the site"
    );
    Ok(targets)
}

/// `script` without its `response` function: statuses counted by wrk.
fn light(script: &str) -> String {
    let start = script.find("function response").expect("the shared script");
    let end = script.find("function done").expect("the shared script");
    format!("{}{}", &script[..start], &script[end..])
}

/// The wrk scripts of one run. The keep-alive GET figures are [`light`];
/// the boot storm (429s told from 5xx), the new-connection GET and the POSTs
/// count each status class.
struct Scripts {
    get: PathBuf,
    storm: PathBuf,
    get_close: PathBuf,
    post: PathBuf,
    lookup: PathBuf,
    boot_search: PathBuf,
    config_nodes: PathBuf,
}

/// A wrk script: requests prepared once per thread, cycling over a target
/// list, statuses counted per class, one `slipway-wrk` summary line at the end.
/// Without its `response` function ([`light`]) wrk counts the statuses itself
/// (`summary.errors.status`: codes of 400 and more, not told apart); with it,
/// wrk hands every response's headers and body to Lua, which on two shared
/// cores costs the server a fifth of its rate (62,000 against 77,000 boot
/// scripts/s, measured 2026-12-03).
const WRK_SCRIPT: &str = r#"
local list, method, body, close, key_header = LIST, METHOD, BODY, CLOSE, HEADER
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  ok, limited, server_errors, other = 0, 0, 0, 0
  prepared, next_one = {}, 0
  for i, t in ipairs(list) do
    local headers = {[key_header] = t[2]}
    if close then headers["Connection"] = "close" end
    if body then headers["Content-Type"] = "application/json" end
    prepared[i] = wrk.format(method, t[1], headers, body)
  end
end
function request()
  next_one = next_one % #prepared + 1
  return prepared[next_one]
end
function response(status, headers, body)
  if status < 300 then ok = ok + 1
  elseif status == 429 then limited = limited + 1
  elseif status >= 500 then server_errors = server_errors + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local sum = {ok = 0, limited = 0, server_errors = 0, other = 0}
  for _, t in ipairs(threads) do
    for k in pairs(sum) do sum[k] = sum[k] + t:get(k) end
  end
  local e = summary.errors
  if response == nil then
    sum.ok, sum.other = summary.requests - e.status, e.status
  end
  io.write(string.format(
    "slipway-wrk requests=%d duration_us=%d p50_us=%d p99_us=%d ok=%d limited=%d server_errors=%d other=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    sum.ok, sum.limited, sum.server_errors, sum.other,
    e.connect + e.read + e.write + e.timeout))
end
"#;

impl Targets {
    /// Writes `targets.lua` and the three scripts into `dir`.
    fn write(&self, dir: &tempfile::TempDir) -> Result<Scripts> {
        let dir = dir.path();
        let mut lua = String::new();
        for (name, list) in [
            ("gets", &self.gets),
            ("posts", &self.posts),
            ("lookups", &self.lookups),
            ("boot_search", &self.boot_search),
            ("config_nodes", &self.config_nodes),
        ] {
            writeln!(lua, "{name} = {{")?;
            for (path, key) in list {
                writeln!(lua, "  {{{path:?}, {key:?}}},")?;
            }
            writeln!(lua, "}}")?;
        }
        let targets = dir.join("targets.lua");
        std::fs::write(&targets, lua)?;
        let script_with =
            |file: &str, list: &str, method: &str, body: &str, close: bool, header: &str| {
                let shared = if file.starts_with("light-") {
                    light(WRK_SCRIPT)
                } else {
                    WRK_SCRIPT.to_string()
                };
                let text = format!("dofile({:?})\n", targets.display().to_string())
                    + &shared
                        .replacen("LIST", list, 1)
                        .replacen("METHOD", &format!("{method:?}"), 1)
                        .replacen("BODY", body, 1)
                        .replacen("CLOSE", &close.to_string(), 1)
                        .replacen("HEADER", &format!("{header:?}"), 1);
                let path = dir.join(file);
                std::fs::write(&path, text).map(|_| path)
            };
        let script = |file: &str, list: &str, method: &str, body: &str, close: bool| {
            script_with(file, list, method, body, close, "X-Bootaction-Key")
        };
        Ok(Scripts {
            get: script("light-get.lua", "gets", "GET", "nil", false)?,
            storm: script("get.lua", "gets", "GET", "nil", false)?,
            get_close: script("get-close.lua", "gets", "GET", "nil", true)?,
            lookup: script("light-lookup.lua", "lookups", "GET", "nil", false)?,
            boot_search: script("light-boot-search.lua", "boot_search", "GET", "nil", false)?,
            config_nodes: script_with(
                "light-config-nodes.lua",
                "config_nodes",
                "GET",
                "nil",
                false,
                "x-access-tokens",
            )?,
            post: script(
                "post.lua",
                "posts",
                "POST",
                &format!("'{SIGNAL_BODY}'"),
                false,
            )?,
        })
    }
}

/// Build-data rows recorded for `hosts` (`GET /nodes/{host}/builddata`).
fn signal_rows(api: &Api, hosts: &[String]) -> Result<u64> {
    let mut rows = 0;
    for host in hosts {
        let list = api.json(&format!("/api/v1.0/nodes/{host}/builddata"))?;
        rows += list.as_array().context("builddata is a list")?.len() as u64;
    }
    Ok(rows)
}

/// wrk against one server.
struct Wrk<'a> {
    base: &'a str,
    secs: u64,
}

/// One wrk run's summary.
struct WrkRun {
    requests: u64,
    secs: f64,
    /// Latency percentiles, seconds.
    p50: f64,
    p99: f64,
    ok: u64,
    limited: u64,
    server_errors: u64,
    other: u64,
    socket_errors: u64,
}

impl Wrk<'_> {
    /// Runs `script` with `connections` over two threads; the file limit is
    /// raised for wrk, and wrk is killed if it overruns its time.
    fn run(&self, script: &Path, connections: usize) -> Result<WrkRun> {
        let mut child = Command::new("sh")
            .args(["-c", RAISE_NOFILE, "sh", "wrk", "-t2"])
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", self.secs))
            .args(["--timeout", "5s", "-s"])
            .arg(script)
            .arg(self.base)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("start wrk")?;
        let deadline = Instant::now() + Duration::from_secs(self.secs + 60);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("wrk ran past {} s", self.secs + 60);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("slipway-wrk "))
            .with_context(|| {
                format!(
                    "no summary from wrk: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        let field = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(WrkRun {
            requests: field("requests"),
            secs: field("duration_us") as f64 / 1e6,
            p50: field("p50_us") as f64 / 1e6,
            p99: field("p99_us") as f64 / 1e6,
            ok: field("ok"),
            limited: field("limited"),
            server_errors: field("server_errors"),
            other: field("other"),
            socket_errors: field("socket_errors"),
        })
    }
}

impl WrkRun {
    /// Requests answered per second (all statuses).
    fn rate(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }

    fn non_2xx(&self) -> u64 {
        self.limited + self.server_errors + self.other
    }

    fn summary(&self) -> String {
        format!(
            "{}/s ({} requests), p50 {}, p99 {}; 2xx {}, 429 {}, 5xx {}, other non-2xx {}, socket errors {}",
            count(self.rate() as usize),
            count(self.requests as usize),
            seconds(self.p50),
            seconds(self.p99),
            self.ok,
            self.limited,
            self.server_errors,
            self.other,
            self.socket_errors
        )
    }
}

/// What the one-node commit did.
struct OneNodeCommit {
    host: String,
    /// Commits made (one, unless the handling pass's report was missed).
    commits: usize,
    pass: PassFigure,
    /// Counter deltas across the commits, `None` without `/metrics`.
    rerendered: Option<f64>,
    renders: Option<f64>,
}

/// The duration of the pass that handled the commit.
enum PassFigure {
    /// Its own report: result and `duration_ms`.
    Reported { result: String, ms: u64 },
    /// Its report was replaced before it was read, and `/metrics` has the
    /// pass durations: the mean of the applied passes across the commits.
    Metrics { ms: f64, passes: f64 },
    /// Its report was replaced, no `/metrics`: the time from the webhook to
    /// the replacing report, an upper bound (the smallest of the attempts).
    AtMost(Duration),
}

impl OneNodeCommit {
    /// Met when the pass applied the commit under `limit_ms`; unknown when
    /// only a bound above the limit is known.
    fn met(&self, limit_ms: u64) -> Option<bool> {
        match &self.pass {
            PassFigure::Reported { result, ms } => Some(*ms < limit_ms && result == "applied"),
            PassFigure::Metrics { ms, .. } => Some(*ms < limit_ms as f64),
            PassFigure::AtMost(d) => (d.as_millis() < u128::from(limit_ms)).then_some(true),
        }
    }

    fn summary(&self) -> String {
        let pass = match &self.pass {
            PassFigure::Reported { result, ms } => format!("{ms} ms pass ({result})"),
            PassFigure::Metrics { ms, passes } => {
                format!("{ms:.0} ms pass (mean of {passes} applied, from /metrics)")
            }
            PassFigure::AtMost(d) => format!(
                "≤ {} pass (bound from the webhook: a later pass replaced its report)",
                seconds(d.as_secs_f64())
            ),
        };
        let delta = |d: Option<f64>| d.map_or("n/a (no /metrics)".into(), |d| format!("+{d}"));
        format!(
            "{pass}, {} commit(s) tagging {}; nodes re-rendered {}, boot-data renders {}",
            self.commits,
            self.host,
            delta(self.rerendered),
            delta(self.renders)
        )
    }
}

const RERENDERED: &str = "slipway_reconcile_nodes_rerendered_total";
const RENDERS: &str = "slipway_boot_data_renders_total";
const PASS_SECONDS_SUM: &str = "slipway_reconcile_duration_seconds_sum";
const PASS_SECONDS_COUNT: &str = "slipway_reconcile_duration_seconds_count";
/// Commits tried when the handling pass's report is missed.
const COMMIT_ATTEMPTS: usize = 3;

/// Adds a tag to one node in the middle of the site (only its own inputs
/// change), commits, triggers the webhook and waits for the pass that handles
/// the commit. The ref watcher wakes the reconciler too, 100 ms after the
/// commit: when the handling pass outlasts that, a second pass finds the head
/// handled and replaces the report ("unchanged"). The status is then polled
/// closely, and the edit made again when only the replacing report was seen;
/// if every report was missed, `/metrics`' pass durations give the figure.
fn one_node_commit(api: &Api, work: &Workspace) -> Result<OneNodeCommit> {
    let host = work.hosts[work.hosts.len() / 2].clone();
    let before = api.metrics()?;
    let mut bound: Option<Duration> = None;
    let mut commits = 0;
    let mut reported = None;
    while reported.is_none() && commits < COMMIT_ATTEMPTS {
        commits += 1;
        tag_node(&work.site_yaml(), &host, &format!("bench-edit-{commits}"))?;
        git(
            &work.repo(),
            &["commit", "-q", "-am", &format!("bench: tag {host}")],
        )?;
        let commit = git(&work.repo(), &["rev-parse", "HEAD"])?;
        let hooked = Instant::now();
        let (status, body) = api.call(reqwest::Method::POST, "/api/v1.0/hooks/git")?;
        ensure!(status == 202, "POST /hooks/git: {status} {body}");
        match wait_for_pass(api, &commit, hooked)? {
            Seen::Report(pass) => reported = Some(pass),
            Seen::Replaced(within) => bound = Some(bound.map_or(within, |b| b.min(within))),
        }
    }
    // Work that follows the report may still move the counters: let it settle.
    std::thread::sleep(Duration::from_millis(300));
    let after = api.metrics()?;
    let delta = |name: &str, with: &str| match (&before, &after) {
        (Some(b), Some(a)) => Some(metric_sum(a, name, with) - metric_sum(b, name, with)),
        _ => None,
    };
    let applied = r#"outcome="applied""#;
    let applied_secs = delta(PASS_SECONDS_SUM, applied).unwrap_or(0.0);
    let applied_passes = delta(PASS_SECONDS_COUNT, applied).unwrap_or(0.0);
    let pass = match (reported, bound) {
        (Some(pass), _) => PassFigure::Reported {
            result: pass["result"].as_str().unwrap_or("?").to_string(),
            ms: pass["duration_ms"].as_u64().unwrap_or(u64::MAX),
        },
        (None, _) if applied_passes > 0.0 => PassFigure::Metrics {
            ms: applied_secs * 1000.0 / applied_passes,
            passes: applied_passes,
        },
        (None, Some(bound)) => PassFigure::AtMost(bound),
        (None, None) => bail!("no commit was made"),
    };
    Ok(OneNodeCommit {
        host,
        commits,
        pass,
        rerendered: delta(RERENDERED, ""),
        renders: delta(RENDERS, ""),
    })
}

/// What `/health/extended` showed about a commit.
enum Seen {
    /// The report of the pass that handled it.
    Report(Value),
    /// Only a later "unchanged" report: the handling pass ended within this
    /// time of `since`.
    Replaced(Duration),
}

/// Polls `/health/extended` (every millisecond, over one keep-alive
/// connection) until a pass reports on `commit`.
fn wait_for_pass(api: &Api, commit: &str, since: Instant) -> Result<Seen> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (_, body) = api.get("/api/v1.0/health/extended")?;
        let status: Value = serde_json::from_str(&body)?;
        // The pass that applied it is kept as `last_applied` even when a
        // later pass (the ref watcher's) finds nothing to do.
        if status["last_applied"]["commit"].as_str() == Some(commit) {
            return Ok(Seen::Report(status["last_applied"].clone()));
        }
        let pass = &status["last_pass"];
        if pass["commit"].as_str() == Some(commit) {
            return Ok(if pass["result"] == "unchanged" {
                Seen::Replaced(since.elapsed())
            } else {
                Seen::Report(pass.clone())
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("no reconcile pass reported commit {commit} within 60 s")
}

/// Adds `tag` to the `metadata.tags` of BaremetalNode `host` in a gen-site file.
fn tag_node(site: &Path, host: &str, tag: &str) -> Result<()> {
    let text = std::fs::read_to_string(site)?;
    let start = text
        .find(&format!("\n  name: {host}\n"))
        .with_context(|| format!("{host} not in the site"))?;
    let end = text[start..]
        .find("\n---")
        .map_or(text.len(), |e| start + e);
    let tags = "\n    tags:\n";
    let at = text[start..end]
        .find(tags)
        .with_context(|| format!("{host} has no metadata.tags"))?
        + start
        + tags.len();
    let edited = format!("{}      - {tag}\n{}", &text[..at], &text[at..]);
    std::fs::write(site, edited)?;
    Ok(())
}

/// The HTTP GET and POST figures on PostgreSQL (issue 16): one replica, then
/// two on the same database (the load split over both, run at once), in a
/// fresh database of the cluster at `admin` (`SLIPWAY_BENCH_PG`).
pub fn run_postgres(cfg: &Config, table: &mut Table, admin: &str) -> Result<()> {
    if Command::new("wrk").arg("-v").output().is_err() {
        println!("\nwrk not found: the PostgreSQL HTTP figures are skipped.");
        return Ok(());
    }
    let nodes = cfg.http_nodes;
    println!(
        "\nHTTP on PostgreSQL: release server(s) on a {}-node site, wrk {} s per run",
        count(nodes),
        cfg.secs
    );
    let work = Workspace::new(nodes)?;
    let name = format!("slipway_bench_{}", std::process::id());
    let mut client = postgres::Client::connect(admin, postgres::NoTls)
        .with_context(|| format!("connect to SLIPWAY_BENCH_PG {admin}"))?;
    client.batch_execute(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    ))?;
    drop(client);
    let base = admin.split('?').next().unwrap_or(admin);
    let (server_url, _) = base.rsplit_once('/').context("a postgres://host/db URL")?;
    let db = format!("{server_url}/{name}");
    let secret = work.dir.path().join("replicas.secret");
    {
        use std::os::unix::fs::PermissionsExt;
        let bytes: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(29).wrapping_add(3))
            .collect();
        std::fs::write(&secret, bytes)?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    }
    let first = Server::start_with(&work, db.as_ref(), Some(&secret), "serve-pg-a.log")?;
    let api = Api::new(&first.base)?;
    let t0 = Instant::now();
    first.wait_healthy(&api, Duration::from_secs(120 + nodes as u64 / 500))?;
    println!(
        "  replica a healthy after {:.1} s (applied the site into PostgreSQL)",
        t0.elapsed().as_secs_f64()
    );
    let targets = identities(&api, &work.hosts, &work.macs)?;
    let scripts = targets.write(&work.dir)?;
    let one = [Wrk {
        base: &first.base,
        secs: cfg.secs,
    }];
    pg_figures(
        table,
        "PostgreSQL, 1 replica",
        &one,
        &scripts,
        &api,
        &targets.hosts,
    )?;

    let second = Server::start_with(&work, db.as_ref(), Some(&secret), "serve-pg-b.log")?;
    let api_b = Api::new(&second.base)?;
    second.wait_healthy(&api_b, Duration::from_secs(120 + nodes as u64 / 500))?;
    println!("  replica b healthy (following a)");
    let two = [
        Wrk {
            base: &first.base,
            secs: cfg.secs,
        },
        Wrk {
            base: &second.base,
            secs: cfg.secs,
        },
    ];
    pg_figures(
        table,
        "PostgreSQL, 2 replicas",
        &two,
        &scripts,
        &api,
        &targets.hosts,
    )?;
    Ok(())
}

/// wrk against every server of `wrks` at once, the connections split
/// between them; the runs' sums (rates, counts) and worst percentiles.
fn run_all(wrks: &[Wrk<'_>], script: &Path) -> Result<WrkRun> {
    let per = (CONNECTIONS / wrks.len()).max(2);
    let runs: Vec<Result<WrkRun>> = std::thread::scope(|s| {
        let handles: Vec<_> = wrks
            .iter()
            .map(|w| s.spawn(move || w.run(script, per)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("wrk thread panicked")))
            })
            .collect()
    });
    let mut total = WrkRun {
        requests: 0,
        secs: 0.0,
        p50: 0.0,
        p99: 0.0,
        ok: 0,
        limited: 0,
        server_errors: 0,
        other: 0,
        socket_errors: 0,
    };
    let mut rate = 0.0;
    for r in runs {
        let r = r?;
        rate += r.rate();
        total.requests += r.requests;
        total.p50 = total.p50.max(r.p50);
        total.p99 = total.p99.max(r.p99);
        total.ok += r.ok;
        total.limited += r.limited;
        total.server_errors += r.server_errors;
        total.other += r.other;
        total.socket_errors += r.socket_errors;
    }
    // The summed rate, as one run's requests over its seconds.
    total.secs = total.requests as f64 / rate.max(1e-9);
    Ok(total)
}

/// The GET keep-alive and signal POST figures of `label` (none lost: every
/// 2xx POST is a build-data row, read back through `api`).
fn pg_figures(
    table: &mut Table,
    label: &str,
    wrks: &[Wrk<'_>],
    scripts: &Scripts,
    api: &Api,
    hosts: &[String],
) -> Result<()> {
    let r = run_all(wrks, &scripts.get)?;
    println!(
        "  {label}: boot-data GET, keep-alive (wrk -c{CONNECTIONS} in all): {}",
        r.summary()
    );
    table.push(Row {
        figure: format!("{label}: boot-data GET, keep-alive"),
        target: "≥ 20,000/s, p99 < 5 ms".into(),
        measured: format!(
            "{}/s, p50 {}, p99 {}, {} non-2xx",
            count(r.rate() as usize),
            seconds(r.p50),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: Some(r.rate() >= 20_000.0 && r.p99 < 0.005 && r.non_2xx() == 0),
        drydock: format!("{} per GET", seconds(DRYDOCK_GET_SECS)),
        speedup: format!("{} (p50)", times(DRYDOCK_GET_SECS / r.p50)),
    });
    let before = signal_rows(api, hosts)?;
    let r = run_all(wrks, &scripts.post)?;
    let recorded = signal_rows(api, hosts)? - before;
    let lost = r.ok.saturating_sub(recorded);
    let verdict = if lost == 0 {
        "none lost".to_string()
    } else {
        format!("{lost} LOST")
    };
    println!(
        "  {label}: signal POST: {}; {recorded} rows recorded for {} 2xx: {verdict}",
        r.summary(),
        r.ok
    );
    table.push(Row {
        figure: format!("{label}: signal POST"),
        target: "≥ 5,000/s, none lost".into(),
        measured: format!(
            "{}/s, p99 {}, {} non-2xx, {verdict}",
            count(r.rate() as usize),
            seconds(r.p99),
            r.non_2xx()
        ),
        met: Some(r.rate() >= 5_000.0 && lost == 0 && r.non_2xx() == 0),
        drydock: "—".into(),
        speedup: "—".into(),
    });
    Ok(())
}
