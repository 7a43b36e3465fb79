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
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Declarative GitOps controller for bare-metal provisioning (Drydock designs).
#[derive(Parser)]
#[command(name = "slipway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
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
        /// Operator tokens file: one sha256 hex of a token per line (`printf %s "$TOKEN" | sha256sum`).
        /// Without it, operator routes answer loopback clients only.
        #[arg(long)]
        tokens: Option<PathBuf>,
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

fn main() -> ExitCode {
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
            tokens,
        } => {
            let cfg = slipway::reconcile::ServeConfig {
                repo,
                branch,
                design_dir,
                db,
                listen,
                poll: Duration::from_secs(poll.max(1)),
                watch: true,
                tokens,
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => return cli::fail(&format!("cannot start the runtime: {e}")),
            };
            match rt.block_on(slipway::reconcile::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => cli::fail(&e.to_string()),
            }
        }
        Command::Validate {
            path,
            rev,
            design_dir,
            format,
        } => cli::validate(
            &path,
            rev.as_deref(),
            design_dir.as_deref(),
            matches!(format, Format::Json),
        ),
        Command::Diff {
            repo,
            design_dir,
            from,
            to,
        } => cli::diff(&repo, design_dir.as_deref(), &from, &to),
    }
}
