//! The `slipway` command line. Parsing and exit codes only; the work is in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

mod cli;

// Validation and planning allocate many small strings and maps; glibc's
// allocator spends more time than the work itself on them (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (read at its start; `_RJEM_MALLOC_CONF` in the
/// environment still overrides them): freed pages are returned to the kernel
/// by a background thread within a second, so the memory of a revision's
/// validation does not stay resident while the server serves it (at 10,000
/// nodes serve settles at ~110 MB instead of ~158 MB, with no measurable cost
/// to validation).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Declarative GitOps controller for bare-metal provisioning (Drydock designs).
#[derive(Parser)]
#[command(name = "slipway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Byte caps on a design (`serve` and `validate`); see docs/validation.md SW113, SW114.
#[derive(clap::Args, Clone, Copy)]
struct SizeCaps {
    /// Largest design file accepted (bytes, or with KiB/MiB/GiB); a larger one makes the
    /// revision invalid (SW113) without being read.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64MiB")]
    max_file_size: u64,
    /// Largest design accepted, all files together (SW114).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256MiB")]
    max_design_size: u64,
}

impl SizeCaps {
    fn limits(self) -> slipway::design::Limits {
        slipway::design::Limits {
            max_file_bytes: self.max_file_size,
            max_design_bytes: self.max_design_size,
        }
    }
}

/// `1048576`, `512KiB`, `64MiB`, `1GiB` (also `K`/`M`/`G`, binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a size such as 64MiB, found `{s}`"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (expected KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

/// The power service's limits and the site's TLS switch (`serve` and `power`);
/// see docs/power.md.
#[derive(clap::Args, Clone, Copy)]
struct PowerFlags {
    /// Calls to BMCs at once, over every power operation.
    #[arg(long, default_value_t = 64)]
    power_concurrency: usize,
    /// Seconds one call to a BMC may take (fractions allowed); then it fails with `timeout`.
    #[arg(long, default_value_t = 20.0)]
    power_timeout: f64,
    /// Do not verify Redfish BMCs' TLS certificates (the site's switch; most BMCs ship
    /// self-signed ones).
    #[arg(long)]
    bmc_insecure: bool,
}

impl PowerFlags {
    fn settings(self) -> slipway::services::power::PowerSettings {
        let mut s = slipway::services::power::PowerSettings::default();
        s.config.concurrency = self.power_concurrency.max(1);
        s.config.timeout = Duration::from_secs_f64(self.power_timeout.clamp(0.001, 3600.0));
        s.verify_tls = !self.bmc_insecure;
        s
    }
}

/// How the Commissaire dialect reads clusters and hosts from the design
/// (`serve`); see docs/compat.md, "Commissaire".
#[derive(clap::Args, Clone)]
struct CommissaireFlags {
    /// The `metadata.owner_data` key naming a node's Commissaire cluster, and the Network
    /// `labels` key declaring clusters on that network.
    #[arg(long, default_value = slipway::services::clusters::DEFAULT_CLUSTER_KEY)]
    commissaire_cluster_key: String,
    /// The network whose static address is a Commissaire host's address (default: each
    /// node's primary network, else its first static address off its OOB network).
    #[arg(long)]
    commissaire_network: Option<String>,
}

impl CommissaireFlags {
    fn config(self) -> slipway::services::clusters::ClusterConfig {
        slipway::services::clusters::ClusterConfig {
            key: self.commissaire_cluster_key,
            network: self.commissaire_network,
        }
    }
}

/// Who may log in, and their session tokens (`serve`); see docs/luna2.md.
#[derive(clap::Args, Clone)]
struct UserFlags {
    /// Users file: `NAME:ARGON2-HASH` lines written by `slipway user add` (default:
    /// <db>.users); read again when it changes.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// The HS256 key of Luna2 session tokens: the file's text, trimmed, which is the
    /// `SECRET_KEY` of the Luna2 CLI's luna.ini (default: <db>.luna-key, created 0600 with a
    /// random key on first start).
    #[arg(long, value_name = "FILE")]
    luna_secret_key_file: Option<PathBuf>,
    /// Seconds a Luna2 session token lives.
    #[arg(long, value_name = "SECS", default_value_t = slipway::services::users::DEFAULT_TOKEN_EXPIRY.as_secs())]
    luna_token_expiry: u64,
}

impl UserFlags {
    fn settings(self) -> slipway::services::users::UserSettings {
        slipway::services::users::UserSettings {
            users: self.users,
            key_file: self.luna_secret_key_file,
            expiry: Duration::from_secs(self.luna_token_expiry.max(1)),
        }
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user, or change a user's password: the password is read from standard input
    /// (prompted for, without echo, on a terminal); the file is rewritten atomically, mode 0600.
    Add {
        /// The user's name: 1 to 64 of A-Z a-z 0-9 . _ -
        name: String,
        /// The users file (the server's --users; default: the default database's, slipway.db.users).
        #[arg(long, value_name = "FILE", default_value = "slipway.db.users")]
        users: PathBuf,
        /// Read the password from standard input even on a terminal (its first line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
// Parsed once per process: the size of `Serve`'s flags costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Watch a design repository, apply each valid revision, serve the API.
    Serve {
        /// A path inside the design repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Branch to follow (default: the checked-out branch).
        #[arg(long)]
        branch: Option<String>,
        /// Design root inside the repository (default: designs/ when present, else the root).
        #[arg(long)]
        design_dir: Option<String>,
        /// SQLite database file.
        #[arg(long, default_value = "slipway.db")]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Seconds between polls of the repository (the watcher and webhook act at once).
        #[arg(long, default_value_t = 30)]
        poll: u64,
        /// Server secret file, created 0600 on first start (default: <db>.secret).
        #[arg(long)]
        secret: Option<PathBuf>,
        /// URL nodes report boot-action status to (default: http://<listen>/api/v1.0/bootactions/).
        #[arg(long)]
        report_url: Option<String>,
        /// Operator tokens file: one sha256 hex of a token per line (`printf %s "$TOKEN" | sha256sum`).
        /// Without it, operator routes answer loopback clients only.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Node requests (boot data, status reports) answered at once; beyond it they get
        /// 429 with Retry-After, so a boot storm queues at the nodes instead of in memory.
        #[arg(long, default_value_t = slipway::server::DEFAULT_MAX_IN_FLIGHT)]
        max_in_flight: usize,
        /// Connections open at once; beyond it clients wait in the kernel's backlog, so
        /// 10,000 nodes connecting together cannot grow the server's memory without bound.
        #[arg(long, default_value_t = slipway::server::DEFAULT_MAX_CONNECTIONS)]
        max_connections: usize,
        /// Seconds a client has to send a request's whole header (from its first byte, or the
        /// connection's start); then the connection is closed.
        #[arg(long, default_value_t = slipway::server::DEFAULT_HEADER_TIMEOUT.as_secs())]
        header_timeout: u64,
        /// Seconds a client has to send a request's whole body; then 408 and the connection closes.
        #[arg(long, default_value_t = slipway::server::DEFAULT_BODY_TIMEOUT.as_secs())]
        body_timeout: u64,
        /// Seconds a keep-alive connection may wait for its next request (or a client take to
        /// read more of a response) before it is closed.
        #[arg(long, default_value_t = slipway::server::DEFAULT_IDLE_TIMEOUT.as_secs())]
        idle_timeout: u64,
        /// Largest share of the applied nodes a revision may delete, as a fraction (0.25) or
        /// a percentage (25%); a revision deleting every applied node is refused whatever the
        /// share. A commit with the trailer `Slipway-Allow-Delete: true` is allowed anyway.
        #[arg(long, default_value = "100%", value_parser = parse_share)]
        max_delete_share: f64,
        /// Apply revisions whatever share of the applied nodes they delete.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Branch unknown machines are proposed on (never the followed branch).
        #[arg(long, default_value = slipway::services::inspection::DEFAULT_PROPOSAL_BRANCH)]
        proposal_branch: String,
        /// Commit design edits made through the API (Luna2 config writes, Commissaire
        /// membership) on this review branch, created from the followed head, instead of
        /// the followed branch (which is then never changed by the API).
        #[arg(long)]
        write_branch: Option<String>,
        /// Which nodes an Ironic agent's lookup (`GET /v1/lookup`) may find: `expected` (a node
        /// with an unfinished boot action, or whose agent token was reset or issued within
        /// --agent-window), `any` (every node of the applied design), `none` (every lookup 404).
        #[arg(long, default_value = "expected")]
        agent_lookup: slipway::services::agents::LookupMode,
        /// Seconds after a token reset (a boot-data fetch, an operator's reset) or issue during
        /// which a node counts as expected to run the agent.
        #[arg(long, default_value_t = slipway::services::agents::DEFAULT_AGENT_WINDOW.as_secs())]
        agent_window: u64,
        #[command(flatten)]
        caps: SizeCaps,
        #[command(flatten)]
        power: PowerFlags,
        #[command(flatten)]
        commissaire: CommissaireFlags,
        #[command(flatten)]
        users: UserFlags,
    },
    /// Manage the users file (who may log in to the Luna2 and Commissaire dialects).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// List the proposed nodes of unknown machines: the files on the
    /// proposal branch not yet on the followed branch.
    Discovered {
        /// A path inside the design repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The proposal branch.
        #[arg(long, default_value = slipway::services::inspection::DEFAULT_PROPOSAL_BRANCH)]
        branch: String,
        /// The followed branch (default: the checked-out branch).
        #[arg(long)]
        followed: Option<String>,
    },
    /// Validate a design directory or a git revision; exit 0 valid, 1 invalid, 2 error.
    Validate {
        /// A directory of design files, or a git repository (then --rev selects the commit).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Revision to read when PATH is a git repository.
        #[arg(long)]
        rev: Option<String>,
        /// Design root inside the repository or directory (default: designs/ when present).
        #[arg(long)]
        design_dir: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        caps: SizeCaps,
    },
    /// Write a node's boot-data tarball (units or files) offline.
    Render {
        /// The node.
        hostname: String,
        /// A path inside the design repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Revision to render (default HEAD).
        #[arg(long)]
        rev: Option<String>,
        #[arg(long)]
        design_dir: Option<String>,
        /// The node's `type: unit` assets.
        #[arg(long, conflicts_with = "files", required_unless_present = "files")]
        units: bool,
        /// The node's `type: file` assets.
        #[arg(long)]
        files: bool,
        /// Output file (default: stdout).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Use the node's deployment (action ids, keys) in this database;
        /// without it, placeholder action ids and keys.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Server secret file (default: <db>.secret).
        #[arg(long)]
        secret: Option<PathBuf>,
        /// `action.report_url` of templates.
        #[arg(long, default_value = slipway::render::context::DEFAULT_REPORT_URL)]
        report_url: String,
    },
    /// Print a node's identity key (X-Bootaction-Key) for its current deployment.
    NodeKey {
        /// The node.
        hostname: String,
        /// A path inside the design repository (the applied commit is read from it).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        #[arg(long)]
        design_dir: Option<String>,
        /// SQLite database file of the server.
        #[arg(long, default_value = "slipway.db")]
        db: PathBuf,
        /// Server secret file (default: <db>.secret).
        #[arg(long)]
        secret: Option<PathBuf>,
    },
    /// Run a power action on nodes of a design through their BMCs (no server needed):
    /// status, on, off, soft_off, cycle, pxe-once, disk-once, identify-on, identify-off.
    /// One line per node; exit 0 all succeeded, 1 any failed, 2 usage or I/O error.
    Power {
        /// The nodes, then the action (`slipway power n1 n2 cycle`); with --filter, the
        /// action only.
        #[arg(required = true, num_args = 1..)]
        args: Vec<String>,
        /// A file holding a Drydock node_filter (JSON) selecting the nodes.
        #[arg(long)]
        filter: Option<PathBuf>,
        /// A design directory, or a path inside the design repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Revision to read when --repo is a git repository (default HEAD).
        #[arg(long)]
        rev: Option<String>,
        #[arg(long)]
        design_dir: Option<String>,
        #[command(flatten)]
        power: PowerFlags,
    },
    /// Show, per document and per node, what changes between two revisions.
    Diff {
        /// A path inside the design repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        #[arg(long)]
        design_dir: Option<String>,
        from: String,
        to: String,
    },
}

/// glibc's allocator (used by SQLite's C code) makes an arena per thread
/// that allocates: with a pool of worker threads each touching SQLite, those
/// arenas hold several MB each. Two are enough for SQLite's allocations.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any thread of ours starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// `--max-delete-share`: a fraction in [0, 1] (`0.25`) or a percentage (`25%`).
fn parse_share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (t, 1.0),
    };
    let share = number
        .parse::<f64>()
        .ok()
        .map(|v| v / scale)
        .filter(|v| (0.0..=1.0).contains(v))
        .ok_or_else(|| {
            format!("expected a fraction from 0 to 1 (0.25) or a percentage (25%), found `{text}`")
        })?;
    Ok(share)
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLIPWAY_LOG")
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve {
            repo,
            branch,
            design_dir,
            db,
            listen,
            poll,
            secret,
            report_url,
            tokens,
            max_in_flight,
            max_connections,
            header_timeout,
            body_timeout,
            idle_timeout,
            max_delete_share,
            allow_mass_delete,
            proposal_branch,
            write_branch,
            agent_lookup,
            agent_window,
            caps,
            power,
            commissaire,
            users,
        } => {
            let cfg = slipway::server::ServeConfig {
                users: users.settings(),
                repo,
                branch,
                design_dir,
                db,
                listen,
                poll: Duration::from_secs(poll.max(1)),
                watch: true,
                secret,
                report_url,
                tokens,
                max_in_flight: max_in_flight.max(1),
                max_connections: max_connections.max(1),
                header_timeout: Duration::from_secs(header_timeout.max(1)),
                body_timeout: Duration::from_secs(body_timeout.max(1)),
                idle_timeout: Duration::from_secs(idle_timeout.max(1)),
                max_delete_share,
                allow_mass_delete,
                limits: caps.limits(),
                power: power.settings(),
                proposal_branch: Some(proposal_branch),
                write_branch,
                agents: slipway::services::agents::AgentConfig {
                    lookup: agent_lookup,
                    window: Duration::from_secs(agent_window.max(1)),
                    ..Default::default()
                },
                commissaire: commissaire.config(),
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => return cli::fail(&format!("cannot start the runtime: {e}")),
            };
            let served = rt.block_on(slipway::server::serve(cfg));
            // `serve` has already waited its shutdown grace for requests and
            // a pass in flight; a blocking task still running (a pass past the
            // deadline) must not hold the process: dropping the runtime would
            // wait for it.
            rt.shutdown_timeout(Duration::from_secs(1));
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => cli::fail(&e.to_string()),
            }
        }
        Command::Validate {
            path,
            rev,
            design_dir,
            format,
            caps,
        } => cli::validate(
            &path,
            rev.as_deref(),
            design_dir.as_deref(),
            matches!(format, Format::Json),
            &caps.limits(),
        ),
        Command::Render {
            hostname,
            repo,
            rev,
            design_dir,
            units: _,
            files,
            output,
            db,
            secret,
            report_url,
        } => cli::render(&cli::RenderArgs {
            repo: &repo,
            rev: rev.as_deref(),
            design_dir: design_dir.as_deref(),
            host: &hostname,
            kind: if files {
                slipway::render::bootdata::BootDataKind::Files
            } else {
                slipway::render::bootdata::BootDataKind::Units
            },
            out: output.as_deref(),
            db: db.as_deref(),
            secret: secret.as_deref(),
            report_url: &report_url,
        }),
        Command::NodeKey {
            hostname,
            repo,
            design_dir,
            db,
            secret,
        } => cli::node_key(
            &repo,
            design_dir.as_deref(),
            &db,
            secret.as_deref(),
            &hostname,
        ),
        Command::Power {
            args,
            filter,
            repo,
            rev,
            design_dir,
            power,
        } => {
            let (action, hosts) = args.split_last().expect("clap requires one argument");
            if filter.is_some() != hosts.is_empty() {
                return cli::fail(
                    "name the nodes (`slipway power HOST... ACTION`) or give --filter FILE, not both",
                );
            }
            cli::power(cli::PowerArgs {
                path: &repo,
                rev: rev.as_deref(),
                design_dir: design_dir.as_deref(),
                hosts,
                filter: filter.as_deref(),
                action,
                settings: power.settings(),
            })
        }
        Command::Diff {
            repo,
            design_dir,
            from,
            to,
        } => cli::diff(&repo, design_dir.as_deref(), &from, &to),
        Command::User {
            action:
                UserCommand::Add {
                    name,
                    users,
                    password_stdin,
                },
        } => cli::user_add(&users, &name, password_stdin),
        Command::Discovered {
            repo,
            branch,
            followed,
        } => cli::discovered(&repo, &branch, followed.as_deref()),
    }
}
