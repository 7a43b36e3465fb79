//! The server's wiring: [`serve`] and [`run`] (mini-redis style: a bound
//! listener and a shutdown future, so tests start a real server on an
//! ephemeral port). It runs the start-up checks (the database lock, the
//! secret beside deployments, a repository that may be missing), builds the
//! state and the services, starts the background tasks (the reconcile loop,
//! the ref watcher; the report writer starts with the first report) and
//! serves the merged routers of every dialect ([`crate::api::app`]) until
//! one shutdown deadline covers the HTTP drain and a pass in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::api::{self, AppParts, AppState};
use crate::clock::now;
use crate::design;
use crate::reconcile::{self, watch, PassContext};
use crate::services::designs::DesignSource;
use crate::services::inventory::Inventory;
use crate::services::tasks::TaskEngine;
use crate::services::{ServeStatus, SharedStatus};
use crate::source::Repo;
use crate::state::{DatabaseFile, DatabaseLock, StateError, Store};

/// Everything `slipway serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A path inside the design repository.
    pub repo: PathBuf,
    /// Branch to follow (`None`: the checked-out branch).
    pub branch: Option<String>,
    /// Design root inside the repository (`None`: `designs/` when present, else the root).
    pub design_dir: Option<String>,
    /// SQLite database file.
    pub db: PathBuf,
    /// Address `serve` listens on (`run` takes a bound listener instead).
    pub listen: SocketAddr,
    /// Time between polls of the branch head; the watcher and webhook act at once.
    pub poll: Duration,
    /// Operator tokens file (`None`: operator routes are loopback-only).
    pub tokens: Option<PathBuf>,
    /// Watch the repository's refs and reconcile at once when they move.
    /// Off only in tests that must show the webhook or poll acting alone.
    pub watch: bool,
    /// The server secret file (`None`: `<db>.secret`), created 0600 on first start.
    pub secret: Option<PathBuf>,
    /// `action.report_url` of templates (`None`: `http://<listen>/api/v1.0/bootactions/`).
    pub report_url: Option<String>,
    /// Node requests (boot data, signals) answered at once; beyond it a
    /// request gets 429 with `Retry-After` (`--max-in-flight`).
    pub max_in_flight: usize,
    /// Connections open at once; beyond it clients wait in the kernel's
    /// backlog, and the connection waiting longest on its client (idle, or
    /// with half a request) is closed to make room (`--max-connections`).
    pub max_connections: usize,
    /// Longest wait for a request's complete header, from the connection's
    /// start or the request's first byte (`--header-timeout`).
    pub header_timeout: Duration,
    /// Longest wait for a request's complete body; 408 after it (`--body-timeout`).
    pub body_timeout: Duration,
    /// Longest wait for the next request on a keep-alive connection, or for
    /// a client to read more of a response (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// The largest share (0 to 1) of the applied nodes a revision may delete
    /// (`--max-delete-share`); a revision deleting every applied node is
    /// refused whatever the share. Either is allowed by `allow_mass_delete`
    /// or the commit trailer `Slipway-Allow-Delete: true`.
    pub max_delete_share: f64,
    /// Apply revisions whatever share of the nodes they delete (`--allow-mass-delete`).
    pub allow_mass_delete: bool,
    /// Byte caps on a commit's design files (`--max-file-size`,
    /// `--max-design-size`): a commit over them is recorded invalid unread.
    pub limits: design::Limits,
    /// The power service's limits and the site's TLS switch (`--power-concurrency`,
    /// `--power-timeout`, `--bmc-insecure`).
    pub power: crate::services::power::PowerSettings,
    /// The branch unknown machines are proposed on (`--proposal-branch`;
    /// `None`: `slipway/discovered`); never the followed branch.
    pub proposal_branch: Option<String>,
    /// The Ironic agents' lookup restriction and token window
    /// (`--agent-lookup`, `--agent-window`).
    pub agents: crate::services::agents::AgentConfig,
    /// How the Commissaire dialect reads clusters and hosts from the design
    /// (`--commissaire-cluster-key`, `--commissaire-network`).
    pub commissaire: crate::services::clusters::ClusterConfig,
    /// The review branch API design edits are committed on (`--write-branch`;
    /// `None`: the followed branch, waiting for each commit to be applied).
    pub write_branch: Option<String>,
    /// The users file, the session tokens' key file and their lifetime
    /// (`--users`, `--luna-secret-key-file`, `--luna-token-expiry`).
    pub users: crate::services::users::UserSettings,
}

/// The HTTP defaults (`--max-in-flight`, `--max-connections`, the
/// timeouts, the drain) belong to the HTTP layer; re-exported for the CLI.
pub use crate::api::http::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_IN_FLIGHT, DRAIN_TIMEOUT,
};

/// Default of [`ServeConfig::max_delete_share`]: only a revision deleting
/// every applied node is refused.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 1.0;

/// How long a stop waits for requests and a reconcile pass in flight before
/// the process ends without them (an interrupted pass leaves nothing: its
/// transaction is atomic).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The repository or a revision could not be read.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The database could not be opened or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The server secret could not be read or created.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// Anything else (a failed task, the HTTP server).
    #[error("{0}")]
    Other(String),
}

/// Runs the server until Ctrl-C / SIGTERM.
pub async fn serve(cfg: ServeConfig) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: cfg.listen,
            source,
        })?;
    run(cfg, listener, shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

/// Connections of the boot service to a PostgreSQL database.
const PG_BOOT_CONNECTIONS: usize = 8;

/// Serves on `listener` and reconciles until `shutdown` completes. The entry
/// point tests use (bind `127.0.0.1:0`, pass a oneshot as `shutdown`).
pub async fn run(
    cfg: ServeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tokens = match &cfg.tokens {
        Some(p) => Some(Arc::new(api::Tokens::load(p).map_err(ServeError::Other)?)),
        None => None,
    };
    if tokens.is_none() {
        if let Ok(addr) = listener.local_addr() {
            if !api::is_loopback(addr.ip()) {
                tracing::warn!(
                    %addr,
                    "NO --tokens FILE: listening on a non-loopback address, but operator routes \
                     will answer loopback clients only (403 to everyone else); pass --tokens"
                );
            }
        }
    }
    // A missing repository is not fatal when the database has a revision to
    // serve: what it holds is served (health says why boot data is not)
    // and each pass tries the repository again.
    let found = Repo::discover(&cfg.repo).map(|repo| {
        (
            repo.root(),
            cfg.branch.clone().or_else(|| repo.current_branch()),
            repo.watch_paths(),
        )
    });

    // One server per database, before anything is written.
    let db = cfg.db.clone();
    let lock = tokio::task::spawn_blocking(move || DatabaseLock::acquire(&db))
        .await
        .map_err(|e| ServeError::Other(format!("locking the database: {e}")))??;
    let lock = Arc::new(lock);

    // Two connections: the loop writes while the API reads (WAL), so a long
    // apply never blocks `/revisions`.
    let db = cfg.db.clone();
    let (writer, reader, boot_store, more_boot_stores, status, deployments, db_file) =
        tokio::task::spawn_blocking(move || {
            let mut writer = Store::open(&db)?;
            let db_file = DatabaseFile::pin(&db)?;
            // Replicas share one PostgreSQL database: a task in flight may be
            // another replica's, so only a sole server ends them at start.
            let ended = if writer.is_postgres() {
                0
            } else {
                crate::services::tasks::recover_interrupted(&mut writer)?
            };
            if ended > 0 {
                tracing::warn!(
                    tasks = ended,
                    "ended tasks interrupted by the previous stop as failures"
                );
            }
            let reader = Store::open(&db)?;
            let boot_store = Store::open(&db)?;
            // PostgreSQL: every query is a round trip, so requests get
            // several connections at once (SQLite: one, it reads in-process).
            let more_boot_stores = if boot_store.is_postgres() {
                (1..PG_BOOT_CONNECTIONS)
                    .map(|_| Store::open(&db))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            let status = resume(&reader)?;
            let deployments = reader.deployment_count()?;
            Ok::<_, StateError>((
                writer,
                reader,
                boot_store,
                more_boot_stores,
                status,
                deployments,
                db_file,
            ))
        })
        .await
        .map_err(|e| ServeError::Other(format!("opening the database: {e}")))??;
    let db_file = Arc::new(db_file);
    let (root, branch, watch_paths) = match found {
        Ok(f) => f,
        Err(e) if status.applied.is_some() => {
            tracing::error!(
                error = %e,
                "the repository cannot be opened; serving the applied state of the database, \
                 retrying the repository on every pass"
            );
            (cfg.repo.clone(), cfg.branch.clone(), Vec::new())
        }
        Err(e) => return Err(e.into()),
    };
    // A review branch for API edits is not the followed branch.
    if let (Some(w), Some(b)) = (&cfg.write_branch, &branch) {
        if w == b {
            return Err(ServeError::Other(format!(
                "--write-branch `{w}` is the followed branch; leave it out to commit API edits \
                 on the followed branch, or name a review branch"
            )));
        }
    }
    // Proposals of unknown machines never go on the followed branch.
    if let (Some(p), Some(b)) = (&cfg.proposal_branch, &branch) {
        if p == b {
            return Err(ServeError::Other(format!(
                "--proposal-branch `{p}` is the followed branch; proposals of unknown machines \
                 need a branch of their own (default {})",
                crate::services::inspection::DEFAULT_PROPOSAL_BRANCH
            )));
        }
    }
    // Replicas must share one secret (every node's keys derive from it), and
    // a URL has no directory to keep it beside: PostgreSQL needs --secret.
    let on_postgres = cfg.db.to_str().is_some_and(crate::state::is_postgres_url);
    if on_postgres && cfg.secret.is_none() {
        return Err(ServeError::Other(
            "--db is a PostgreSQL URL: give --secret (or SLIPWAY_SECRET) the server secret \
             file, the same file on every replica"
                .into(),
        ));
    }
    let secret_path = cfg
        .secret
        .clone()
        .unwrap_or_else(|| crate::keys::default_secret_path(&cfg.db));
    // A new secret beside deployments made with the old one would change
    // every node's keys: refuse, unless nothing depends on it yet.
    if deployments > 0 && std::fs::symlink_metadata(&secret_path).is_err() {
        return Err(crate::keys::KeyError::Missing {
            path: secret_path.display().to_string(),
            db: cfg.db.display().to_string(),
            deployments,
        }
        .into());
    }
    let secret = crate::keys::Secret::load_or_create(&secret_path)?;
    let secret_for_inspection = secret.clone();
    let report_url = match &cfg.report_url {
        Some(u) => u.clone(),
        None => {
            let addr = listener.local_addr().unwrap_or(cfg.listen);
            format!("http://{addr}/api/v1.0/bootactions/")
        }
    };
    // Boot scripts point machines at the origin their reports go to.
    let boot_base = report_url.clone();
    let metrics = Arc::new(crate::metrics::Metrics::new());
    if let Some(c) = &status.applied {
        metrics.revision_applied(c, status.nodes, now());
    }
    let boot = Arc::new(
        crate::services::BootService::new(
            crate::services::BootConfig {
                repo: root.clone(),
                design_dir: cfg.design_dir.clone(),
                report_url,
                limits: cfg.limits,
            },
            secret.clone(),
            boot_store,
            metrics.clone(),
        )
        .with_database_file(db_file.clone())
        .with_more_stores(more_boot_stores),
    );
    match &status.applied {
        Some(c) => {
            // The reconciler's first pass reads it again, on its own thread;
            // boot-data requests wait for it (bounded) meanwhile.
            boot.begin_loading(c);
            tracing::info!(
                commit = %c,
                documents = status.documents,
                nodes = status.nodes,
                "resuming: serving the applied revision from the database"
            )
        }
        None => tracing::info!("no applied revision yet; health is 503 until one is"),
    }

    let status: SharedStatus = Arc::new(RwLock::new(status));
    let trigger = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    // The watcher is a convenience: without it the poll timer still works.
    let _watcher = match cfg
        .watch
        .then(|| watch::spawn(&watch_paths, trigger.clone()))
    {
        None => None,
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot watch the repository; relying on the poll timer");
            None
        }
    };

    let followed = branch.clone();
    let followed_for_writes = branch.clone();
    let ctx = PassContext {
        repo: root.clone(),
        branch,
        design_dir: cfg.design_dir.clone(),
        boot: boot.clone(),
        metrics: metrics.clone(),
        snapshot: Default::default(),
        validation: Arc::new(Mutex::new(design::ValidationCache::with_limits(cfg.limits))),
        db_file,
        max_delete_share: cfg.max_delete_share,
        allow_mass_delete: cfg.allow_mass_delete,
        lock: lock.clone(),
    };
    tracing::info!(
        repo = %root.display(),
        branch = ctx.branch.as_deref().unwrap_or("HEAD"),
        db = %cfg.db.display(),
        poll_secs = cfg.poll.as_secs_f64(),
        "reconciler starting"
    );
    let reconciler = tokio::spawn(reconcile::reconcile_loop(
        ctx,
        Arc::new(Mutex::new(writer)),
        status.clone(),
        trigger.clone(),
        cfg.poll,
        stop_rx,
    ));

    // The services every dialect calls.
    let design = DesignSource {
        repo: root.clone(),
        design_dir: cfg.design_dir.clone(),
        limits: cfg.limits,
    };
    let inventory = Inventory::new(Arc::new(Mutex::new(reader)));
    let power = crate::services::power::NodePower::new(&cfg.power)
        .map_err(|e| ServeError::Other(e.to_string()))?;
    let agents = Arc::new(crate::services::agents::AgentService::new(
        boot.clone(),
        secret.clone(),
        inventory.connection(),
        cfg.agents.clone(),
    )?);
    let tasks = TaskEngine::new(
        inventory.connection(),
        boot.clone(),
        status.clone(),
        design.clone(),
    )
    .with_power(power.clone());
    let inspection = Arc::new(crate::services::inspection::InspectionService::new(
        crate::services::inspection::InspectionConfig {
            repo: root.clone(),
            branch: followed,
            design_dir: cfg.design_dir.clone(),
            proposal_branch: cfg.proposal_branch.clone().unwrap_or_else(|| {
                crate::services::inspection::DEFAULT_PROPOSAL_BRANCH.to_string()
            }),
        },
        boot.clone(),
        inventory.connection(),
        secret_for_inspection,
        metrics.clone(),
    ));
    let writeback = Arc::new(
        crate::services::writeback::WriteBack::new(
            crate::services::writeback::WriteBackConfig {
                repo: root.clone(),
                branch: followed_for_writes,
                design_dir: cfg.design_dir.clone(),
                write_branch: cfg.write_branch.clone(),
                limits: cfg.limits,
                apply_wait: crate::services::writeback::DEFAULT_APPLY_WAIT,
            },
            Some((status.clone(), trigger.clone())),
        )
        .with_design(boot.clone()),
    );
    let users = Arc::new(
        // The users and token-key files default beside the database file;
        // a PostgreSQL URL names no file, so there they sit beside the
        // secret file every replica is given (give them the same files too).
        crate::services::users::UserService::open(
            &cfg.users,
            if on_postgres { &secret_path } else { &cfg.db },
        )
        .map_err(|e| ServeError::Other(e.to_string()))?,
    );
    let boot_scripts = Arc::new(crate::services::boot_scripts::BootScriptService::new(
        boot.clone(),
        agents.clone(),
        &boot_base,
    ));
    let node_status = Arc::new(crate::services::node_status::NodeStatusService::new(
        boot.clone(),
        inventory.connection(),
    ));
    let power_requests = crate::services::power_requests::PowerRequests::new(power.clone());
    let luna = Arc::new(crate::services::luna2_view::Luna2Site::new(boot.clone()));
    let clusters = Arc::new(crate::services::clusters::ClusterService::new(
        cfg.commissaire.clone(),
        boot.clone(),
        agents.clone(),
        inventory.connection(),
        writeback.clone(),
        node_status.clone(),
    ));
    let state = AppState::new(AppParts {
        clusters,
        writeback,
        boot_scripts,
        node_status,
        power_requests,
        users,
        luna,
        inspection,
        inventory,
        tasks,
        status,
        trigger,
        db_path: cfg.db.display().to_string(),
        started: Instant::now(),
        boot,
        agents,
        design,
        tokens,
        metrics,
        max_in_flight: cfg.max_in_flight.max(1),
        body_timeout: cfg.body_timeout,
        power,
    });
    let limits = api::ConnLimits {
        max_connections: cfg.max_connections.max(1),
        header_timeout: cfg.header_timeout,
        idle_timeout: cfg.idle_timeout,
        drain_timeout: DRAIN_TIMEOUT,
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(e) => tracing::warn!(error = %e, "listening (address unknown)"),
    }
    // Everything after the shutdown request shares one deadline.
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<tokio::time::Instant>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping_tx.send(tokio::time::Instant::now() + SHUTDOWN_GRACE);
    };
    let (served, deadline) = serve_http(listener, limits, state, shutdown, stopping_rx).await;
    let _ = stop_tx.send(true);
    // A pass in progress finishes its transaction first: stopping never leaves
    // half a revision (and a killed process leaves none, thanks to SQLite).
    // Past the deadline the process goes without it: SQLite rolls an
    // unfinished transaction back.
    let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + SHUTDOWN_GRACE);
    match tokio::time::timeout_at(deadline, reconciler).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "reconciler task failed"),
        Err(_) => tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "a reconcile pass is still running at the shutdown deadline; stopping without it \
             (its transaction is atomic)"
        ),
    }
    drop(lock);
    served
}

/// Runs the HTTP server until `shutdown`, then drains requests in flight
/// until the deadline `stopping` gives (a client that never finishes its
/// request cannot hold the process); returns with that deadline.
async fn serve_http(
    listener: tokio::net::TcpListener,
    limits: api::ConnLimits,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: tokio::sync::oneshot::Receiver<tokio::time::Instant>,
) -> (Result<(), ServeError>, Option<tokio::time::Instant>) {
    let server = api::serve(listener, limits, state, shutdown);
    tokio::pin!(server);
    let mut stopping = stopping;
    let deadline = tokio::select! {
        r = &mut server => {
            return (r.map_err(|e| ServeError::Other(format!("http server: {e}"))), None)
        }
        d = &mut stopping => match d {
            Ok(d) => d,
            // The shutdown future was dropped without firing: serve on.
            Err(_) => {
                let r = server.await;
                return (r.map_err(|e| ServeError::Other(format!("http server: {e}"))), None);
            }
        },
    };
    match tokio::time::timeout_at(deadline, &mut server).await {
        Ok(r) => (
            r.map_err(|e| ServeError::Other(format!("http server: {e}"))),
            Some(deadline),
        ),
        Err(_) => {
            tracing::warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "requests still in flight at the shutdown deadline; stopping without them"
            );
            (Ok(()), Some(deadline))
        }
    }
}

/// The status to start from: whatever the database says is applied.
fn resume(store: &Store) -> Result<ServeStatus, StateError> {
    let applied = store.applied_revision()?;
    let mut status = ServeStatus::default();
    if let Some(rec) = applied {
        let snap = store.snapshot()?;
        status.applied = Some(rec.revision.commit);
        status.documents = snap.documents.len();
        status.nodes = snap.nodes.len();
    }
    Ok(status)
}
