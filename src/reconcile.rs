//! The reconcile loop: watch + timer + webhook -> newest head -> validate ->
//! plan -> apply. Each pass starts from "what is the newest head?", never from
//! "what event did I get?", so a burst of commits is coalesced to the newest.

mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::api::{self, AppState};
use crate::design;
use crate::plan;
use crate::source::{Repo, SourceError};
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
}

/// Default of [`ServeConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Default of [`ServeConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default of [`ServeConfig::header_timeout`] (nginx: 60 s; hyper: 30 s;
/// a node sends its header in one packet).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`ServeConfig::body_timeout`]: 1 MiB at 35 KB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Default of [`ServeConfig::idle_timeout`] (nginx's keep-alive: 75 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a shutdown waits for the requests being answered.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default of [`ServeConfig::max_delete_share`]: only a revision deleting
/// every applied node is refused.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 1.0;

/// The commit trailer that lets a revision delete more nodes than
/// [`ServeConfig::max_delete_share`] allows (value `true`).
pub const ALLOW_DELETE_TRAILER: &str = "Slipway-Allow-Delete";

/// How long a stop waits for requests and a reconcile pass in flight before
/// the process ends without them (an interrupted pass leaves nothing: its
/// transaction is atomic).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a boot-data request waits for the applied revision to be loaded
/// after a start before it gets 503 with `Retry-After`.
pub const LOAD_WAIT: Duration = Duration::from_secs(10);

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

/// What the last reconcile pass did, for `/health/extended`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassReport {
    /// When the pass finished, seconds since the Unix epoch.
    pub finished_at: i64,
    /// `unchanged`, `applied`, `invalid` or `error`.
    pub result: String,
    /// The head commit the pass looked at, when it got that far.
    pub commit: Option<String>,
    /// Human-readable detail (counts, or the error).
    pub detail: String,
    /// How long the pass took.
    pub duration_ms: u64,
}

/// What the server is serving, shared by the loop (writer) and the API (reader).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServeStatus {
    /// The applied revision's commit; `None` until a good revision is loaded.
    pub applied: Option<String>,
    /// Documents of the applied design.
    pub documents: usize,
    /// Nodes of the applied design.
    pub nodes: usize,
    /// The last pass, if one finished.
    pub last_pass: Option<PassReport>,
    /// The last pass that applied a revision (kept when later passes find
    /// nothing to do), if one did since start.
    pub last_applied: Option<PassReport>,
    /// Passes finished since start.
    pub passes: u64,
}

/// Shared handle on [`ServeStatus`].
pub type SharedStatus = Arc<RwLock<ServeStatus>>;

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
    let (writer, reader, boot_store, status, deployments, db_file) =
        tokio::task::spawn_blocking(move || {
            let mut writer = Store::open(&db)?;
            let db_file = DatabaseFile::pin(&db)?;
            let ended = api::tasks::recover_interrupted(&mut writer)?;
            if ended > 0 {
                tracing::warn!(
                    tasks = ended,
                    "ended tasks interrupted by the previous stop as failures"
                );
            }
            let reader = Store::open(&db)?;
            let boot_store = Store::open(&db)?;
            let status = resume(&reader)?;
            let deployments = reader.deployment_count()?;
            Ok::<_, StateError>((writer, reader, boot_store, status, deployments, db_file))
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
    let report_url = match &cfg.report_url {
        Some(u) => u.clone(),
        None => {
            let addr = listener.local_addr().unwrap_or(cfg.listen);
            format!("http://{addr}/api/v1.0/bootactions/")
        }
    };
    let metrics = Arc::new(crate::metrics::Metrics::new());
    if let Some(c) = &status.applied {
        metrics.revision_applied(c, status.nodes, now());
    }
    let boot = Arc::new(
        crate::boot::BootService::new(
            crate::boot::BootConfig {
                repo: root.clone(),
                design_dir: cfg.design_dir.clone(),
                report_url,
                limits: cfg.limits,
            },
            secret,
            boot_store,
            metrics.clone(),
        )
        .with_database_file(db_file.clone()),
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
        _lock: lock.clone(),
    };
    tracing::info!(
        repo = %root.display(),
        branch = ctx.branch.as_deref().unwrap_or("HEAD"),
        db = %cfg.db.display(),
        poll_secs = cfg.poll.as_secs_f64(),
        "reconciler starting"
    );
    let reconciler = tokio::spawn(reconcile_loop(
        ctx,
        Arc::new(Mutex::new(writer)),
        status.clone(),
        trigger.clone(),
        cfg.poll,
        stop_rx,
    ));

    let state = AppState {
        store: Arc::new(Mutex::new(reader)),
        status,
        trigger,
        db_path: cfg.db.display().to_string(),
        started: Instant::now(),
        boot,
        design: api::DesignSource {
            repo: root.clone(),
            design_dir: cfg.design_dir.clone(),
            limits: cfg.limits,
        },
        tokens,
        metrics,
        max_in_flight: cfg.max_in_flight.max(1),
        body_timeout: cfg.body_timeout,
    };
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

/// What a pass needs to find and read the newest head.
#[derive(Debug, Clone)]
struct PassContext {
    repo: PathBuf,
    branch: Option<String>,
    design_dir: Option<String>,
    /// Given each applied design, so boot data is ready without re-reading it.
    boot: Arc<crate::boot::BootService>,
    /// Pass durations and outcomes.
    metrics: Arc<crate::metrics::Metrics>,
    /// The applied state as the last apply left it, so a pass need not read
    /// it back from the database (`None`: read it).
    snapshot: Arc<Mutex<Option<crate::state::Snapshot>>>,
    /// Parse and typing results of the documents of the last commit read, so
    /// a pass parses only the documents a commit changed.
    validation: Arc<Mutex<design::ValidationCache>>,
    /// The database file the server opened: no apply once it changed.
    db_file: Arc<crate::state::DatabaseFile>,
    /// See [`ServeConfig::max_delete_share`].
    max_delete_share: f64,
    /// See [`ServeConfig::allow_mass_delete`].
    allow_mass_delete: bool,
    /// Held while a pass may still be writing, even past `run`'s return.
    _lock: Arc<DatabaseLock>,
}

/// What one pass did.
#[derive(Debug)]
enum Outcome {
    /// The head was already handled; nothing to do.
    Unchanged { commit: String },
    /// The head failed validation and was recorded as invalid.
    Invalid { commit: String, errors: usize },
    /// The head was applied.
    Applied {
        commit: String,
        documents: usize,
        nodes: usize,
        changes: usize,
        rerendered: usize,
    },
}

/// Passes until `stop`: one at start, then one per trigger or poll tick.
/// Several triggers during a pass leave one stored permit in the `Notify`, so
/// they coalesce into a single next pass that reads the newest head.
async fn reconcile_loop(
    ctx: PassContext,
    writer: Arc<Mutex<Store>>,
    status: SharedStatus,
    trigger: Arc<Notify>,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut cause = "start";
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let ctx2 = ctx.clone();
        let writer2 = writer.clone();
        tracing::info!(cause, "reconcile pass starting");
        // Git reads, validation and SQLite are blocking work: off the runtime.
        let result = tokio::task::spawn_blocking(move || {
            let mut store = writer2
                .lock()
                .map_err(|_| ServeError::Other("database lock poisoned".into()))?;
            pass(&ctx2, &mut store)
        })
        .await
        .unwrap_or_else(|e| Err(ServeError::Other(format!("reconcile pass panicked: {e}"))));
        record(&status, &ctx.metrics, result, started.elapsed());

        cause = tokio::select! {
            _ = trigger.notified() => "signal",
            _ = tokio::time::sleep(poll) => "poll",
            _ = stop.changed() => break,
        };
    }
    tracing::info!("reconciler stopped");
}

/// Stores a pass's outcome in the shared status and logs it. Errors are
/// logged and kept for `/health/extended`; the loop goes on.
fn record(
    status: &SharedStatus,
    metrics: &crate::metrics::Metrics,
    result: Result<Outcome, ServeError>,
    took: Duration,
) {
    let now = now();
    let duration_ms = took.as_millis() as u64;
    let mut s = match status.write() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    s.passes += 1;
    let report = match result {
        Ok(Outcome::Unchanged { commit }) => {
            tracing::info!(%commit, "head already reconciled; nothing to do");
            PassReport {
                finished_at: now,
                result: "unchanged".into(),
                commit: Some(commit),
                detail: String::new(),
                duration_ms,
            }
        }
        Ok(Outcome::Invalid { commit, errors }) => PassReport {
            finished_at: now,
            result: "invalid".into(),
            commit: Some(commit),
            detail: format!("{errors} error(s); the previous revision keeps serving"),
            duration_ms,
        },
        Ok(Outcome::Applied {
            commit,
            documents,
            nodes,
            changes,
            rerendered,
        }) => {
            s.applied = Some(commit.clone());
            s.documents = documents;
            s.nodes = nodes;
            PassReport {
                finished_at: now,
                result: "applied".into(),
                commit: Some(commit),
                detail: format!(
                    "{changes} change(s); {documents} document(s), {nodes} node(s); \
                     {rerendered} node(s) rendered again"
                ),
                duration_ms,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "reconcile pass failed; retrying on the next trigger");
            PassReport {
                finished_at: now,
                result: "error".into(),
                commit: None,
                detail: e.to_string(),
                duration_ms,
            }
        }
    };
    metrics.reconcile(&report.result, took);
    if report.result == "applied" {
        if let Some(c) = &report.commit {
            metrics.revision_applied(c, s.nodes, now);
        }
        s.last_applied = Some(report.clone());
    }
    s.last_pass = Some(report);
}

/// One idempotent pass: (the applied revision served? else load it) ->
/// newest head -> (already handled? stop) -> validate -> record invalid, or
/// plan + guard + prepare deployments + apply in one transaction.
fn pass(ctx: &PassContext, store: &mut Store) -> Result<Outcome, ServeError> {
    let applied = store.applied_revision()?;
    serve_applied(ctx, applied.as_ref().map(|r| r.revision.commit.as_str()));
    // Reopened per pass so packed refs and new objects are always seen fresh.
    let repo = Repo::discover(&ctx.repo)?;
    let head = repo.head(ctx.branch.as_deref())?;
    let commit = head.commit.clone();
    // Handled: the head is what is applied, or it was rejected before. A
    // superseded head (the branch was reset to an older commit) is applied
    // again; one refused only for the nodes it deletes is looked at again
    // (the server may allow it now).
    if applied.as_ref().map(|r| &r.revision.commit) == Some(&commit) {
        return Ok(Outcome::Unchanged { commit });
    }
    if let Some(rec) = store.revision(&commit)? {
        let only_deletes = rec
            .messages
            .iter()
            .filter(|m| m.error)
            .all(|m| m.code == MASS_DELETE);
        if rec.status == crate::state::RevisionStatus::Invalid && !only_deletes {
            return Ok(Outcome::Unchanged { commit });
        }
    }
    tracing::info!(%commit, summary = %head.summary, author = %head.author, "reconciling new head");

    // A commit without a design is the commit's fault, not a transient error:
    // record it as invalid rather than applying an empty design, which would
    // delete every document and node.
    let limits = ctx
        .validation
        .lock()
        .map(|c| c.limits())
        .unwrap_or_default();
    let files = match repo.design_files_within(&commit, ctx.design_dir.as_deref(), &limits) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            let where_ = ctx
                .design_dir
                .as_deref()
                .unwrap_or("designs/ (or the root)");
            return record_no_design(
                store,
                &head,
                format!("no *.yaml or *.yml design files under {where_}"),
            );
        }
        Err(e @ SourceError::NoDesignDir { .. }) => {
            return record_no_design(store, &head, e.to_string())
        }
        // Over a byte cap: the commit's fault, recorded invalid (its blobs unread).
        Err(SourceError::TooLarge(m)) => {
            store.record_invalid(&head, &[*m])?;
            tracing::warn!(%commit, "revision is over a size cap; recorded, not applied");
            return Ok(Outcome::Invalid { commit, errors: 1 });
        }
        Err(e) => return Err(e.into()),
    };
    let t = Instant::now();
    let validation = with_cache(ctx, |cache| crate::validate_cached(&files, cache));
    // The documents keep their text; the files' bytes are not needed again.
    let file_count = files.len();
    drop(files);
    let (reused, parsed) = ctx
        .validation
        .lock()
        .map(|c| c.last_counts())
        .unwrap_or_default();
    let errors = validation.error_count();
    let warnings = validation
        .messages
        .iter()
        .filter(|m| m.level == design::Level::Warning)
        .count();
    let documents = validation
        .design
        .as_ref()
        .map(|d| d.documents.len())
        .unwrap_or(0);
    tracing::info!(
        %commit,
        files = file_count,
        documents,
        errors,
        warnings,
        valid = validation.is_valid(),
        chunks_reused = reused,
        chunks_parsed = parsed,
        took_ms = t.elapsed().as_millis() as u64,
        "validated"
    );
    let design = match validation.design {
        Some(d) if errors == 0 => d,
        _ => {
            store.record_invalid(&head, &validation.messages)?;
            tracing::warn!(%commit, errors, "revision is invalid; recorded, not applied");
            return Ok(Outcome::Invalid { commit, errors });
        }
    };

    let t = Instant::now();
    // The snapshot the last apply left, when it is of the applied revision;
    // otherwise (first pass, a failed apply) the database's.
    let kept = ctx
        .snapshot
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .filter(|s| s.revision.as_ref() == applied.as_ref().map(|r| &r.revision.commit));
    let snapshot = match kept {
        Some(s) => s,
        None => store.snapshot()?,
    };
    let snapshot_ms = t.elapsed().as_millis() as u64;
    let p = plan::plan_without_bodies(&design, &snapshot);
    let changes = p.creates.len()
        + p.updates.len()
        + p.deletes.len()
        + p.node_writes.len()
        + p.node_deletes.len();
    let plan_ms = t.elapsed().as_millis() as u64;

    // Deleting (nearly) every node is far more often a mistake (a node file
    // dropped, a wrong --design-dir) than an intent: refused unless allowed.
    if let Some(m) = mass_delete(ctx, &repo, &head, &p, &snapshot)? {
        let mut messages = validation.messages;
        messages.push(m);
        store.record_invalid(&head, &messages)?;
        *ctx.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
        tracing::warn!(%commit, deletes = p.node_deletes.len(), "revision deletes too many nodes; recorded invalid, not applied");
        return Ok(Outcome::Invalid { commit, errors: 1 });
    }
    drop(repo);

    // Every changed node's new deployment, its boot data rendered with the
    // ids and keys it will be served with, before anything is written.
    let t = Instant::now();
    let prepared = match ctx.boot.prepare_revision(
        &commit,
        head.committed_at,
        &design,
        &p,
        &snapshot,
    ) {
        Ok(prepared) => prepared,
        Err(failures) => {
            let errors = failures.len();
            let mut messages = validation.messages;
            messages.extend(failures);
            store.record_invalid(&head, &messages)?;
            *ctx.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
            tracing::warn!(%commit, errors, "boot data does not render with the deployments' values; recorded invalid, not applied");
            return Ok(Outcome::Invalid { commit, errors });
        }
    };
    tracing::info!(
        %commit,
        creates = p.creates.len(),
        updates = p.updates.len(),
        deletes = p.deletes.len(),
        node_writes = p.node_writes.len(),
        node_deletes = p.node_deletes.len(),
        affected_nodes = p.affected_nodes.len(),
        deployments = prepared.deployments().len(),
        snapshot_ms,
        plan_ms,
        rendered_ms = t.elapsed().as_millis() as u64,
        "planned; applying"
    );
    let t = Instant::now();
    // Nothing is applied into a file that is no longer the database.
    ctx.db_file.check()?;
    let bodies = plan::NodeBodies::new(&design);
    let stats = store.apply_revision(
        &p,
        &head,
        &validation.messages,
        &|n| bodies.body(n),
        prepared.deployments(),
    )?;
    drop(bodies);
    // A file removed during the apply took the revision with it.
    ctx.db_file.check()?;
    *ctx.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot.after(&p, &commit));
    tracing::info!(
        %commit,
        documents_written = stats.documents_written,
        documents_deleted = stats.documents_deleted,
        nodes_written = stats.nodes_written,
        nodes_deleted = stats.nodes_deleted,
        deployments_made = stats.deployments_made,
        took_ms = t.elapsed().as_millis() as u64,
        "applied"
    );
    let (documents, nodes) = (design.documents.len(), design.nodes.len());
    drop(validation.messages);
    let changed = p
        .affected_nodes
        .iter()
        .chain(&p.node_deletes)
        .map(String::as_str);
    let rerendered = ctx.boot.install(prepared, design, changed);
    Ok(Outcome::Applied {
        commit,
        documents,
        nodes,
        changes,
        rerendered,
    })
}

/// Makes sure boot data is served from the applied revision `applied`: at
/// start, or while it could not be read, its design is read again here, on
/// the reconciler's thread (never on a request's). A failure is logged and
/// shown by health; the pass goes on (a new head may replace it).
fn serve_applied(ctx: &PassContext, applied: Option<&str>) {
    let Some(commit) = applied else {
        ctx.boot.serve_nothing();
        return;
    };
    if ctx.boot.serves(commit) {
        return;
    }
    let _ = with_cache(ctx, |cache| ctx.boot.load_applied(commit, Some(cache)));
}

/// Runs `f` (a validation, which works on the rayon pool) with the pass's
/// validation cache taken out of its mutex, so no lock is held while it
/// waits on the pool.
fn with_cache<T>(ctx: &PassContext, f: impl FnOnce(&mut design::ValidationCache) -> T) -> T {
    let mut cache = std::mem::take(&mut *ctx.validation.lock().unwrap_or_else(|p| p.into_inner()));
    let out = f(&mut cache);
    *ctx.validation.lock().unwrap_or_else(|p| p.into_inner()) = cache;
    out
}

/// The SW401 message when the plan deletes more of the applied nodes than
/// the server allows (every one of them, or more than `max_delete_share`),
/// unless the server or the commit allows it.
fn mass_delete(
    ctx: &PassContext,
    repo: &Repo,
    head: &crate::revision::Revision,
    p: &plan::Plan,
    applied: &crate::state::Snapshot,
) -> Result<Option<design::Message>, ServeError> {
    let (deleted, total) = (p.node_deletes.len(), applied.nodes.len());
    if deleted == 0 || total == 0 || ctx.allow_mass_delete {
        return Ok(None);
    }
    let share = deleted as f64 / total as f64;
    let all = deleted == total;
    if !all && share <= ctx.max_delete_share {
        return Ok(None);
    }
    let allowed = repo.trailers(&head.commit)?.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case(ALLOW_DELETE_TRAILER)
            && matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")
    });
    if allowed {
        tracing::warn!(commit = %head.commit, deleted, total, "revision deletes nodes beyond the limit; allowed by its {ALLOW_DELETE_TRAILER} trailer");
        return Ok(None);
    }
    let limit = if all {
        "which is every applied node".to_string()
    } else {
        format!(
            "more than the {}% that --max-delete-share allows",
            fmt_percent(ctx.max_delete_share)
        )
    };
    let mut named: Vec<&str> = p.node_deletes.iter().take(5).map(String::as_str).collect();
    if deleted > named.len() {
        named.push("...");
    }
    Ok(Some(design::Message::new(
        MASS_DELETE,
        design::Level::Error,
        format!(
            "commit {} would delete {deleted} of the {total} applied nodes ({}%: {}), {limit}, \
             and neither the commit nor the server allows it; not applied, the previous \
             revision keeps serving",
            head.commit,
            fmt_percent(share),
            named.join(", "),
        ),
        format!(
            "If the deletion is intended, add the trailer `{ALLOW_DELETE_TRAILER}: true` to the \
             commit message (git commit --trailer '{ALLOW_DELETE_TRAILER}: true'), or run the \
             server with --allow-mass-delete (or a larger --max-delete-share). Otherwise restore \
             the BaremetalNode documents."
        ),
    )))
}

/// A share as a percentage, without needless decimals (`50`, `33.3`).
fn fmt_percent(share: f64) -> String {
    let p = (share * 1000.0).round() / 10.0;
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

/// Message code of a revision refused for the share of nodes it deletes.
pub const MASS_DELETE: &str = "SW401";

/// Records a commit that has no design to validate as invalid.
fn record_no_design(
    store: &mut Store,
    head: &crate::revision::Revision,
    why: String,
) -> Result<Outcome, ServeError> {
    let message = design::Message::new(
        NO_DESIGN,
        design::Level::Error,
        format!("commit {}: {why}", head.commit),
        "Commit the design documents under the design directory, or start slipway with the right --design-dir.",
    );
    store.record_invalid(head, &[message])?;
    tracing::warn!(commit = %head.commit, %why, "revision has no design; recorded as invalid");
    Ok(Outcome::Invalid {
        commit: head.commit.clone(),
        errors: 1,
    })
}

/// Message code for a commit without design files (a source-stage error).
const NO_DESIGN: &str = "SW100";

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
