//! The reconcile loop: watch + timer + webhook -> newest head -> validate ->
//! plan -> apply. Each pass starts from "what is the newest head?", never from
//! "what event did I get?", so a burst of commits is coalesced to the newest.

pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::clock::now;
use crate::design;
use crate::plan;
use crate::services::{PassOutcome, PassReport, SharedStatus};
use crate::source::{Repo, SourceError};
use crate::state::{DatabaseLock, StateError, Store};

/// The commit trailer that lets a revision delete more nodes than the
/// server's `--max-delete-share` allows (value `true`).
pub const ALLOW_DELETE_TRAILER: &str = "Slipway-Allow-Delete";

/// Why a pass failed (logged, kept in the status, retried on the next trigger).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The repository or a revision could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The database could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// Anything else (a poisoned lock, a panicked pass).
    #[error("{0}")]
    Other(String),
}

/// What a pass needs to find and read the newest head (built by the server).
#[derive(Debug, Clone)]
pub struct PassContext {
    /// A path inside the design repository.
    pub repo: PathBuf,
    /// Branch to follow (`None`: the checked-out branch).
    pub branch: Option<String>,
    /// Design root inside the repository.
    pub design_dir: Option<String>,
    /// Given each applied design, so boot data is ready without re-reading it.
    pub boot: Arc<crate::services::BootService>,
    /// Pass durations and outcomes.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The applied state as the last apply left it, so a pass need not read
    /// it back from the database (`None`: read it).
    pub snapshot: Arc<Mutex<Option<crate::plan::Snapshot>>>,
    /// Parse and typing results of the documents of the last commit read, so
    /// a pass parses only the documents a commit changed.
    pub validation: Arc<Mutex<design::ValidationCache>>,
    /// The database file the server opened: no apply once it changed.
    pub db_file: Arc<crate::state::DatabaseFile>,
    /// The largest share of the applied nodes a revision may delete
    /// (`--max-delete-share`).
    pub max_delete_share: f64,
    /// Apply revisions whatever share of the nodes they delete (`--allow-mass-delete`).
    pub allow_mass_delete: bool,
    /// Held while a pass may still be writing, even past the server's return.
    pub lock: Arc<DatabaseLock>,
}

/// What one pass did.
#[derive(Debug)]
enum Outcome {
    /// The head was already handled; nothing to do.
    Unchanged { commit: String },
    /// The head failed validation and was recorded as invalid.
    Invalid { commit: String, errors: usize },
    /// Another replica leads (PostgreSQL): this one serves what the
    /// database says is applied, compiled from its own repository.
    Following {
        commit: Option<String>,
        /// Documents and nodes of the revision, when it was newly served.
        counts: Option<(usize, usize)>,
    },
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
pub async fn reconcile_loop(
    ctx: PassContext,
    writer: Arc<Mutex<Store>>,
    status: SharedStatus,
    trigger: Arc<Notify>,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut cause = "start";
    // Replicas on one PostgreSQL database: whoever holds the lead applies;
    // the others look at the database this often, and try to take the lead
    // (a leader that died loses it with its session).
    let shared = writer.lock().map(|s| s.is_postgres()).unwrap_or(false);
    let mut leading = !shared;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let ctx2 = ctx.clone();
        let writer2 = writer.clone();
        if leading {
            tracing::info!(cause, "reconcile pass starting");
        }
        // Git reads, validation and SQLite are blocking work: off the runtime.
        let result = tokio::task::spawn_blocking(move || {
            let mut store = writer2
                .lock()
                .map_err(|_| PassError::Other("database lock poisoned".into()))?;
            if store.lead()? {
                pass(&ctx2, &mut store).map(|o| (true, o))
            } else {
                follow(&ctx2, &store).map(|o| (false, o))
            }
        })
        .await
        .unwrap_or_else(|e| Err(PassError::Other(format!("reconcile pass panicked: {e}"))));
        let result = match result {
            Ok((leads, outcome)) => {
                if leads != leading && shared {
                    if leads {
                        tracing::warn!("this replica now leads: it applies new revisions");
                    } else {
                        tracing::warn!("another replica leads: following what it applies");
                    }
                }
                leading = leads;
                Ok(outcome)
            }
            Err(e) => Err(e),
        };
        record(&status, &ctx.metrics, result, started.elapsed());

        let wait = if leading {
            poll
        } else {
            poll.min(FOLLOW_EVERY)
        };
        cause = tokio::select! {
            _ = trigger.notified() => "signal",
            _ = tokio::time::sleep(wait) => "poll",
            _ = stop.changed() => break,
        };
    }
    tracing::info!("reconciler stopped");
}

/// How often a replica that does not lead looks at the database for what
/// the leader applied, and tries to take the lead.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// A pass of a replica that does not lead: serve the revision the database
/// says is applied (compiled from this replica's repository, deployments and
/// keys from the database), apply nothing.
fn follow(ctx: &PassContext, store: &Store) -> Result<Outcome, PassError> {
    let applied = store.applied_revision()?;
    let commit = applied.map(|r| r.revision.commit);
    // What this replica planned from may be stale now: read it again when leading.
    ctx.snapshot
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let newly = commit.as_deref().is_some_and(|c| !ctx.boot.serves(c));
    serve_applied(ctx, commit.as_deref());
    let counts = if newly && commit.as_deref().is_some_and(|c| ctx.boot.serves(c)) {
        let snap = store.snapshot()?;
        Some((snap.documents.len(), snap.nodes.len()))
    } else {
        None
    };
    Ok(Outcome::Following { commit, counts })
}

/// Stores a pass's outcome in the shared status and logs it. Errors are
/// logged and kept for `/health/extended`; the loop goes on.
fn record(
    status: &SharedStatus,
    metrics: &crate::metrics::Metrics,
    result: Result<Outcome, PassError>,
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
                result: PassOutcome::Unchanged,
                commit: Some(commit),
                detail: String::new(),
                duration_ms,
            }
        }
        Ok(Outcome::Following { commit, counts }) => {
            if s.applied != commit {
                tracing::info!(commit = ?commit, "following the leading replica's revision");
                s.applied = commit.clone();
            }
            if let Some((documents, nodes)) = counts {
                s.documents = documents;
                s.nodes = nodes;
            }
            PassReport {
                finished_at: now,
                result: PassOutcome::Unchanged,
                commit,
                detail: "another replica leads; serving what it applied".into(),
                duration_ms,
            }
        }
        Ok(Outcome::Invalid { commit, errors }) => PassReport {
            finished_at: now,
            result: PassOutcome::Invalid,
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
                result: PassOutcome::Applied,
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
                result: PassOutcome::Error,
                commit: None,
                detail: e.to_string(),
                duration_ms,
            }
        }
    };
    metrics.reconcile(report.result.as_str(), took);
    if report.result == PassOutcome::Applied {
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
fn pass(ctx: &PassContext, store: &mut Store) -> Result<Outcome, PassError> {
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
    applied: &crate::plan::Snapshot,
) -> Result<Option<design::Message>, PassError> {
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
) -> Result<Outcome, PassError> {
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
