//! Durable state in SQLite (the default) or PostgreSQL (`--db postgres://…`,
//! several replicas): revisions seen, the applied design, nodes.
//!
//! The only user of `rusqlite` and `postgres`, both behind `state/db.rs`,
//! so each query is written once. Migrations are append-only and versioned
//! (`PRAGMA user_version` on SQLite, the table `slipway_schema` on
//! PostgreSQL; see `state/migrations.rs` for the schema); a database written
//! by a newer slipway is refused before anything is written. One writer at a
//! time (SQLite's lock; a PostgreSQL advisory lock); readers never block it.
//!
//! Invariants:
//! - `documents` and `nodes` always hold exactly one applied revision's design:
//!   [`Store::apply`] writes a whole [`Plan`] in one transaction or nothing.
//! - At most one revision is `applied` (a partial unique index enforces it).
//! - An invalid revision never touches `documents` or `nodes`.
//! - Every query is parameterised; the only SQL built with `format!` joins
//!   constant column lists or the integer of `PRAGMA user_version`.

mod agents;
mod boot_actions;
mod build_data;
pub(crate) mod db;
mod deployments;
mod inspection;
mod migrations;
mod node_summary;
mod ownership;
mod tasks;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use db::{params, Db, OptionalExtension, Row, Transaction};
#[cfg(test)]
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::clock::now;
use crate::design::{Kind, Message};
use crate::plan::{Plan, Snapshot, StoredDocument};
use crate::revision::Revision;

pub use agents::AgentRecord;
pub use boot_actions::{
    BootActionDetail, BootActionRecord, BootActionStatus, Report, ReportOutcome,
    BOOT_ACTION_INCOMPLETE,
};
pub use build_data::BuildDataRecord;
pub use deployments::{
    new_deployment, DeploymentInputs, DeploymentRecord, NewDeployment, BOOT_ACTION_REVOKED,
    BOOT_ACTION_UNREPORTED,
};
pub use inspection::{
    InspectionMessage, InspectionResult, IntrospectionRecord, INSPECTOR_GENERATOR,
};
pub use migrations::LATEST as SCHEMA_VERSION;
pub use ownership::{lock_path, DatabaseFile, DatabaseLock};
pub use tasks::{TaskMessage, TaskRecord};

/// What can go wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file was written by a newer slipway; refusing beats corrupting it.
    #[error("database {path}: schema version {found} is newer than this slipway understands ({supported}); upgrade slipway or use another --db")]
    NewerSchema {
        /// The database file.
        path: String,
        /// Its `PRAGMA user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The file could not be opened as a slipway SQLite database.
    #[error("database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// What was expected and what went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A query failed; the text says which operation and why.
    #[error("database: {0}")]
    Sql(String),
    /// A stored value is not what its column must hold (an unknown kind or
    /// status word, unreadable JSON); the text says where and what was found.
    /// Shown like a query failure, as it always was.
    #[error("database: {0}")]
    Invalid(String),
    /// A value could not be encoded for storing (messages as JSON).
    #[error("database: {0}")]
    Encode(String),
    /// A report batch failed as a whole; each report of it gets this copy of
    /// the batch's error (errors are not `Clone`).
    #[error("database: {0}")]
    Batch(String),
    /// Another process serves the same database (see [`DatabaseLock`]).
    #[error("database {path} is in use by another `slipway serve` ({}, holding the lock {lock}); expected one server per database: stop the other one or give this one another --db", holder.map_or("pid unknown".to_string(), |p| format!("pid {p}")))]
    Locked {
        /// The database file.
        path: String,
        /// The lock file.
        lock: String,
        /// The pid the holder wrote into the lock file, if readable.
        holder: Option<u32>,
    },
    /// The database file was removed or replaced while the server ran (see
    /// [`DatabaseFile`]): writes would go to a file nobody will read again.
    #[error("database {path} {why} while the server ran; writes are refused until the server is restarted on the right file")]
    Replaced {
        /// The database file.
        path: String,
        /// What happened to it.
        why: String,
    },
}

/// Outcome of a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevisionStatus {
    /// The revision being served.
    Applied,
    /// Rejected by validation; never applied.
    Invalid,
    /// Was applied, then replaced by a newer applied revision.
    Superseded,
}

impl RevisionStatus {
    /// The word stored in `revisions.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionStatus::Applied => "applied",
            RevisionStatus::Invalid => "invalid",
            RevisionStatus::Superseded => "superseded",
        }
    }

    /// The status stored as `word`, if it is one.
    pub fn from_str_opt(word: &str) -> Option<RevisionStatus> {
        match word {
            "applied" => Some(RevisionStatus::Applied),
            "invalid" => Some(RevisionStatus::Invalid),
            "superseded" => Some(RevisionStatus::Superseded),
            _ => None,
        }
    }
}

/// A revision as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionRecord {
    /// The commit and its authorship.
    #[serde(flatten)]
    pub revision: Revision,
    /// When slipway first saw it, seconds since the Unix epoch.
    pub seen_at: i64,
    /// Applied, invalid or superseded.
    pub status: RevisionStatus,
    /// Validation messages (errors for an invalid revision, warnings otherwise).
    pub messages: Vec<Message>,
}

/// How many rows an apply wrote, so callers and tests can see its cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApplyStats {
    /// Documents inserted or updated.
    pub documents_written: usize,
    /// Documents removed.
    pub documents_deleted: usize,
    /// Node rows inserted or updated (with their addresses).
    pub nodes_written: usize,
    /// Node rows removed (with their addresses).
    pub nodes_deleted: usize,
    /// Node deployments made (each replacing the node's previous one).
    pub deployments_made: usize,
}

/// A stored document of the applied design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentRecord {
    /// The document's kind.
    pub kind: Kind,
    /// `metadata.name`.
    pub name: String,
    /// sha256 of the canonical JSON.
    pub hash: String,
    /// The canonical JSON of the whole document.
    pub body: String,
    /// File the content came from, at the revision that last changed it.
    pub file: String,
    /// Line of the document in that file.
    pub line: u32,
    /// The revision that last changed the document.
    pub revision: String,
}

/// A stored compiled node of the applied design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRecord {
    /// Hostname.
    pub name: String,
    /// Hash of everything the node's boot data depends on.
    pub inputs_hash: String,
    /// The compiled node (JSON of `EffectiveNode` without its document index).
    pub body: String,
    /// The revision that last changed the node's inputs.
    pub revision: String,
    /// `(network, address)` pairs, sorted.
    pub addresses: Vec<(String, String)>,
}

/// The open database.
pub struct Store {
    conn: Db,
    path: String,
    /// The session generation at which this store took the leader lock
    /// (PostgreSQL replicas; see [`Store::lead`]).
    leading: Option<u64>,
}

/// Whether `--db` names a PostgreSQL database (`postgres://…` or
/// `postgresql://…`) rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// A PostgreSQL URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((auth, host)) => (auth, host),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Adds what was being done to a database error.
trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StateError>;
}

impl<T> Context<T> for db::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, StateError> {
        self.map_err(|e| StateError::Sql(format!("{}: {e}", what())))
    }
}

/// The schema version of `conn`: SQLite's `PRAGMA user_version`, or the row
/// of PostgreSQL's `slipway_schema` (0 when there is none yet).
fn version_of(conn: &Db) -> Result<i64, StateError> {
    let what = || "reading the schema version".to_string();
    if !conn.is_pg() {
        return conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .ctx(what);
    }
    let exists: bool = conn
        .query_row(
            "SELECT to_regclass('slipway_schema') IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .ctx(what)?;
    if !exists {
        return Ok(0);
    }
    Ok(conn
        .query_row("SELECT max(version) FROM slipway_schema", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .ctx(what)?
        .unwrap_or(0))
}

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating and migrating) the database at `path`: a SQLite file,
    /// or a PostgreSQL database when `path` is a `postgres://` URL (see
    /// [`is_postgres_url`]).
    pub fn open(path: &Path) -> Result<Store, StateError> {
        match path.to_str() {
            Some(url) if is_postgres_url(url) => Store::open_postgres(url),
            _ => Store::open_sqlite(path),
        }
    }

    /// Opens (creating and migrating) the PostgreSQL database at `url`. The
    /// schema version sits in the table `slipway_schema`; a newer one is
    /// refused before anything is written.
    fn open_postgres(url: &str) -> Result<Store, StateError> {
        let shown = redact_url(url);
        let open_err = |what: &str, e: db::Error| StateError::Open {
            path: shown.clone(),
            source: format!("{what}: {e}").into(),
        };
        let conn =
            db::PgConn::connect(url).map_err(|e| open_err("cannot connect to PostgreSQL", e))?;
        let mut store = Store {
            conn: Db::Pg(Box::new(conn)),
            path: shown.clone(),
            leading: None,
        };
        let found = store.schema_version()?;
        if found > migrations::LATEST {
            return Err(StateError::NewerSchema {
                path: shown,
                found,
                supported: migrations::LATEST,
            });
        }
        store.migrate()?;
        Ok(store)
    }

    fn open_sqlite(path: &Path) -> Result<Store, StateError> {
        let shown = path.display().to_string();
        let open_err = |what: &str, e: rusqlite::Error| StateError::Open {
            path: shown.clone(),
            source: format!("{what}: {e}").into(),
        };
        let conn = rusqlite::Connection::open(path).map_err(|e| open_err("cannot open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err("cannot set busy_timeout", e))?;
        // The first statement that reads the file: a non-SQLite file fails here.
        // The version is checked before anything writes (switching to WAL
        // rewrites the header), so a newer slipway's database is left as it was.
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| open_err("expected a SQLite database", e))?;
        if found > migrations::LATEST {
            return Err(StateError::NewerSchema {
                path: shown,
                found,
                supported: migrations::LATEST,
            });
        }
        // Switching a fresh file to WAL takes an exclusive lock, and SQLite does
        // not run the busy handler for it: when several processes open a new
        // database at once, retry for a bounded time instead of failing.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(m) => break m,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(
                        f.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(open_err("cannot switch to WAL mode", e)),
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError::Open {
                path: shown,
                source: format!("expected journal mode `wal`, found `{mode}`").into(),
            });
        }
        // synchronous stays FULL (the default): DESIGN §5 promises that nothing
        // acknowledged is lost, and NORMAL in WAL mode may drop the last commits
        // on power loss.
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| open_err("cannot enable foreign keys", e))?;
        let mut store = Store {
            conn: Db::Sqlite(conn),
            path: shown,
            leading: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The path the database was opened at (a PostgreSQL URL without its
    /// password), for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this store's connection leads the replicas sharing its
    /// database, taking the lead when nobody holds it. One replica leads at a
    /// time: on PostgreSQL a session-level advisory lock that its session
    /// holds until it ends (a killed or disconnected leader loses it at
    /// once); on SQLite always (the file lock makes one server per file).
    /// Once a store leads, [`Store::apply_revision`] refuses to apply on any
    /// other session than the one holding the lock.
    pub fn lead(&mut self) -> Result<bool, StateError> {
        let held = self
            .conn
            .lead(self.leading)
            .ctx(|| "taking the reconciler's lead".into())?;
        self.leading = held;
        Ok(held.is_some())
    }

    /// Whether this store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.conn.is_pg()
    }

    /// The schema version of the open database (0 for a new one).
    pub fn schema_version(&self) -> Result<i64, StateError> {
        version_of(&self.conn)
    }

    /// Runs the migrations the database has not run yet, each in its own
    /// transaction with its version bump, so a crash leaves a whole version.
    fn migrate(&mut self) -> Result<(), StateError> {
        if self.schema_version()? == migrations::LATEST {
            return Ok(());
        }
        let pg = self.conn.is_pg();
        let list = if pg {
            migrations::PG_MIGRATIONS
        } else {
            migrations::MIGRATIONS
        };
        for (i, sql) in list.iter().enumerate() {
            let version = i as i64 + 1;
            let path = &self.path;
            let what = || format!("migrating {path} to schema version {version}");
            // SQLite: IMMEDIATE takes the write lock first; PostgreSQL: every
            // writing transaction takes the write advisory lock. The version is
            // read again under it, so two processes opening a fresh database at
            // once do not both run the same migration.
            let tx = self.conn.transaction_immediate().ctx(what)?;
            if pg {
                tx.execute_batch(migrations::PG_VERSION_TABLE).ctx(what)?;
            }
            let found = version_of(&tx)?;
            if found > migrations::LATEST {
                return Err(StateError::NewerSchema {
                    path: path.clone(),
                    found,
                    supported: migrations::LATEST,
                });
            }
            if found >= version {
                continue;
            }
            tx.execute_batch(sql).ctx(what)?;
            if pg {
                tx.execute("UPDATE slipway_schema SET version = ?1", [version])
                    .ctx(what)?;
            } else {
                // PRAGMA takes no bound parameters; `version` is an integer we made.
                tx.execute_batch(&format!("PRAGMA user_version = {version}"))
                    .ctx(what)?;
            }
            tx.commit().ctx(what)?;
        }
        Ok(())
    }

    /// SQLite's journal mode for this connection (`wal` once open);
    /// `postgresql` on PostgreSQL.
    pub fn journal_mode(&self) -> Result<String, StateError> {
        if self.conn.is_pg() {
            return Ok("postgresql".into());
        }
        self.conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ctx(|| "reading PRAGMA journal_mode".into())
    }

    /// The applied state, for planning.
    pub fn snapshot(&self) -> Result<Snapshot, StateError> {
        let revision = self
            .conn
            .query_row(
                "SELECT commit_id FROM revisions WHERE status = 'applied'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .ctx(|| "reading the applied revision".into())?;
        let mut documents = HashMap::new();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, name, hash FROM documents")
            .ctx(|| "reading documents".into())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .ctx(|| "reading documents".into())?;
        for row in rows {
            let (kind, name, hash) = row.ctx(|| "reading documents".into())?;
            let kind = Kind::from_name(&kind).ok_or_else(|| {
                StateError::Invalid(format!(
                    "documents row {kind}/{name}: expected a Drydock kind, found `{kind}`"
                ))
            })?;
            documents.insert((kind, name.clone()), StoredDocument { kind, name, hash });
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, inputs_hash, source_hash FROM nodes")
            .ctx(|| "reading nodes".into())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .ctx(|| "reading nodes".into())?;
        let mut nodes = HashMap::new();
        let mut node_sources = HashMap::new();
        for row in rows {
            let (name, inputs, source) = row.ctx(|| "reading nodes".into())?;
            if let Some(source) = source {
                node_sources.insert(name.clone(), source);
            }
            nodes.insert(name, inputs);
        }
        Ok(Snapshot {
            revision,
            documents,
            nodes,
            node_sources,
        })
    }

    /// Writes a plan for a valid revision in one transaction and records the
    /// revision as applied (the previous applied one becomes superseded).
    pub fn apply(&mut self, plan: &Plan, rev: &Revision) -> Result<ApplyStats, StateError> {
        self.apply_with_messages(plan, rev, &[])
    }

    /// [`Store::apply`], keeping the validation messages (warnings) of the revision.
    pub fn apply_with_messages(
        &mut self,
        plan: &Plan,
        rev: &Revision,
        messages: &[Message],
    ) -> Result<ApplyStats, StateError> {
        self.apply_with_bodies(plan, rev, messages, &|_| String::new())
    }

    /// [`Store::apply_with_messages`] for a plan whose node bodies are left
    /// empty: `body_of(name)` gives each as it is written.
    pub fn apply_with_bodies(
        &mut self,
        plan: &Plan,
        rev: &Revision,
        messages: &[Message],
        body_of: &dyn Fn(&str) -> String,
    ) -> Result<ApplyStats, StateError> {
        self.apply_revision(plan, rev, messages, body_of, &[])
    }

    /// [`Store::apply_with_bodies`] that also writes, in the same
    /// transaction, the new deployments of the nodes the revision changed
    /// (each replacing the node's current one) and ends the deployments of
    /// the nodes it removes: a revision and the deployments it is served
    /// with are applied together or not at all.
    pub fn apply_revision(
        &mut self,
        plan: &Plan,
        rev: &Revision,
        messages: &[Message],
        body_of: &dyn Fn(&str) -> String,
        deployments: &[NewDeployment],
    ) -> Result<ApplyStats, StateError> {
        let what = || format!("applying revision {}", rev.commit);
        // Everything below happens in this one transaction: if any statement
        // fails or the process dies, the database keeps the previous state.
        let tx = self.conn.transaction().ctx(what)?;
        // A store that led must still hold the lead on this very session
        // (a reconnect dropped the lock: another replica may lead now).
        if self.leading.is_some_and(|g| g != tx.generation()) {
            return Err(StateError::Sql(format!(
                "{}: the reconciler's lead was lost with its PostgreSQL session",
                what()
            )));
        }
        tx.execute(
            "UPDATE revisions SET status = 'superseded'
             WHERE status = 'applied' AND commit_id <> ?1",
            params![rev.commit],
        )
        .ctx(|| format!("superseding the revision before {}", rev.commit))?;
        upsert_revision(&tx, rev, RevisionStatus::Applied, messages)?;
        let mut stats = write_plan(&tx, plan, &rev.commit, body_of)?;
        stats.deployments_made =
            deployments::write_deployments(&tx, deployments, &plan.node_deletes, now())?;
        tx.commit().ctx(what)?;
        Ok(stats)
    }

    /// Records a revision rejected by validation, with its messages.
    ///
    /// Documents and nodes are untouched: the last good revision keeps serving.
    /// If `rev` is the applied revision itself (a newer slipway rejects what an
    /// older one accepted), it stays `applied` because it is still what is
    /// served; only its messages are replaced.
    pub fn record_invalid(
        &mut self,
        rev: &Revision,
        messages: &[Message],
    ) -> Result<(), StateError> {
        let tx = self
            .conn
            .transaction()
            .ctx(|| format!("recording invalid revision {}", rev.commit))?;
        upsert_revision(&tx, rev, RevisionStatus::Invalid, messages)?;
        tx.commit()
            .ctx(|| format!("recording invalid revision {}", rev.commit))
    }

    /// Revisions, newest first.
    pub fn revisions(&self, limit: usize) -> Result<Vec<RevisionRecord>, StateError> {
        let what = || "listing revisions".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {REVISION_COLUMNS} FROM revisions ORDER BY seen_at DESC, seq DESC LIMIT ?1"
            ))
            .ctx(what)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], read_revision).ctx(what)?;
        rows.map(|r| r.ctx(what).and_then(|r| r))
            .collect::<Result<Vec<_>, _>>()
    }

    /// The revision being served, if any.
    pub fn applied_revision(&self) -> Result<Option<RevisionRecord>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {REVISION_COLUMNS} FROM revisions WHERE status = 'applied'"),
                [],
                read_revision,
            )
            .optional()
            .ctx(|| "reading the applied revision".into())?
            .transpose()
    }

    /// The record of one commit, if seen.
    pub fn revision(&self, commit: &str) -> Result<Option<RevisionRecord>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {REVISION_COLUMNS} FROM revisions WHERE commit_id = ?1"),
                [commit],
                read_revision,
            )
            .optional()
            .ctx(|| format!("reading revision {commit}"))?
            .transpose()
    }
}

impl Store {
    /// One stored document of the applied design.
    pub fn document(&self, kind: Kind, name: &str) -> Result<Option<DocumentRecord>, StateError> {
        let what = || format!("reading {}/{name}", kind.name());
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT hash, body, file, line, revision FROM documents
                 WHERE kind = ?1 AND name = ?2",
            )
            .ctx(what)?;
        stmt.query_row(params![kind.name(), name], |r| {
            Ok(DocumentRecord {
                kind,
                name: name.to_string(),
                hash: r.get(0)?,
                body: r.get(1)?,
                file: r.get(2)?,
                line: r.get(3)?,
                revision: r.get(4)?,
            })
        })
        .optional()
        .ctx(what)
    }

    /// Names of the stored documents of one kind, sorted.
    pub fn document_names(&self, kind: Kind) -> Result<Vec<String>, StateError> {
        let what = || format!("listing {} documents", kind.name());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM documents WHERE kind = ?1 ORDER BY name")
            .ctx(what)?;
        stmt.query_map([kind.name()], |r| r.get(0))
            .ctx(what)?
            .collect::<db::Result<Vec<String>>>()
            .ctx(what)
    }

    /// One stored node with its addresses.
    pub fn node(&self, name: &str) -> Result<Option<NodeRecord>, StateError> {
        let what = || format!("reading node {name}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT inputs_hash, body, revision FROM nodes WHERE name = ?1")
            .ctx(what)?;
        let Some((inputs_hash, body, revision)) = stmt
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .ctx(what)?
        else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT network, address FROM node_addresses WHERE node = ?1
                 ORDER BY network, address",
            )
            .ctx(what)?;
        let addresses = stmt
            .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx(what)?
            .collect::<db::Result<Vec<(String, String)>>>()
            .ctx(what)?;
        Ok(Some(NodeRecord {
            name: name.to_string(),
            inputs_hash,
            body,
            revision,
            addresses,
        }))
    }

    /// The names of the stored nodes holding `address` on some network,
    /// sorted (an address is unique per network, not across networks).
    pub fn nodes_with_address(&self, address: &str) -> Result<Vec<String>, StateError> {
        let what = || format!("finding nodes with address {address}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT node FROM node_addresses WHERE address = ?1 ORDER BY node",
            )
            .ctx(what)?;
        stmt.query_map([address], |r| r.get(0))
            .ctx(what)?
            .collect::<db::Result<Vec<String>>>()
            .ctx(what)
    }

    /// Names of the stored nodes, sorted.
    pub fn node_names(&self) -> Result<Vec<String>, StateError> {
        let what = || "listing nodes".to_string();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM nodes ORDER BY name")
            .ctx(what)?;
        stmt.query_map([], |r| r.get(0))
            .ctx(what)?
            .collect::<db::Result<Vec<String>>>()
            .ctx(what)
    }
}

/// The columns [`read_revision`] expects, in order.
const REVISION_COLUMNS: &str =
    "commit_id, tree, author, committer, signed_by, summary, committed_at, seen_at, status, messages";

/// A `revisions` row as a record. The outer error is SQLite's; the inner one a
/// stored value slipway cannot read back.
fn read_revision(r: &Row<'_>) -> db::Result<Result<RevisionRecord, StateError>> {
    let commit: String = r.get(0)?;
    let status: String = r.get(8)?;
    let messages: String = r.get(9)?;
    let revision = Revision {
        commit,
        tree: r.get(1)?,
        author: r.get(2)?,
        committer: r.get(3)?,
        signed_by: r.get(4)?,
        summary: r.get(5)?,
        committed_at: r.get(6)?,
    };
    let seen_at = r.get(7)?;
    Ok((|| {
        let status = RevisionStatus::from_str_opt(&status).ok_or_else(|| {
            StateError::Invalid(format!(
                "revision {}: expected status applied|invalid|superseded, found `{status}`",
                revision.commit
            ))
        })?;
        let messages = serde_json::from_str(&messages).map_err(|e| {
            StateError::Invalid(format!(
                "revision {}: expected a JSON list of messages, found an unreadable value: {e}",
                revision.commit
            ))
        })?;
        Ok(RevisionRecord {
            revision,
            seen_at,
            status,
            messages,
        })
    })())
}

/// Inserts a revision or updates its status, authorship and messages. `seen_at`
/// and the insertion order keep their first values: history is by first sight.
fn upsert_revision(
    tx: &Transaction<'_>,
    rev: &Revision,
    status: RevisionStatus,
    messages: &[Message],
) -> Result<(), StateError> {
    let messages = serde_json::to_string(messages)
        .map_err(|e| StateError::Encode(format!("revision {}: messages: {e}", rev.commit)))?;
    // An applied revision stays applied when re-recorded as invalid: it is what
    // is being served (see `record_invalid`).
    tx.execute(
        "INSERT INTO revisions (commit_id, seq, tree, author, committer, signed_by, summary,
                                committed_at, seen_at, status, messages)
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM revisions), ?2, ?3, ?4, ?5, ?6,
                 ?7, ?8, ?9, ?10)
         ON CONFLICT (commit_id) DO UPDATE SET
             tree = excluded.tree, author = excluded.author, committer = excluded.committer,
             signed_by = excluded.signed_by, summary = excluded.summary,
             committed_at = excluded.committed_at, messages = excluded.messages,
             status = CASE WHEN revisions.status = 'applied' AND excluded.status = 'invalid'
                           THEN 'applied' ELSE excluded.status END",
        params![
            rev.commit,
            rev.tree,
            rev.author,
            rev.committer,
            rev.signed_by,
            rev.summary,
            rev.committed_at,
            now(),
            status.as_str(),
            messages,
        ],
    )
    .ctx(|| format!("recording revision {} as {}", rev.commit, status.as_str()))?;
    Ok(())
}

/// Writes a plan's rows with cached statements. The caller owns the transaction.
fn write_plan(
    tx: &Transaction<'_>,
    plan: &Plan,
    commit: &str,
    body_of: &dyn Fn(&str) -> String,
) -> Result<ApplyStats, StateError> {
    let mut stats = ApplyStats::default();
    let mut upsert_doc = tx
        .prepare_cached(
            "INSERT INTO documents (kind, name, hash, body, file, line, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (kind, name) DO UPDATE SET
                 hash = excluded.hash, body = excluded.body, file = excluded.file,
                 line = excluded.line, revision = excluded.revision",
        )
        .ctx(|| "preparing the document upsert".into())?;
    for d in plan.creates.iter().chain(&plan.updates) {
        upsert_doc
            .execute(params![
                d.kind.name(),
                d.name,
                d.hash,
                d.body,
                d.file,
                d.line,
                commit
            ])
            .ctx(|| {
                format!(
                    "writing {}/{} from {}:{}",
                    d.kind.name(),
                    d.name,
                    d.file,
                    d.line
                )
            })?;
        stats.documents_written += 1;
    }
    let mut delete_doc = tx
        .prepare_cached("DELETE FROM documents WHERE kind = ?1 AND name = ?2")
        .ctx(|| "preparing the document delete".into())?;
    for (kind, name) in &plan.deletes {
        stats.documents_deleted += delete_doc
            .execute(params![kind.name(), name])
            .ctx(|| format!("deleting {}/{name}", kind.name()))?;
    }
    let mut upsert_node = tx
        .prepare_cached(
            "INSERT INTO nodes (name, inputs_hash, source_hash, body, revision)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO UPDATE SET
                 inputs_hash = excluded.inputs_hash, source_hash = excluded.source_hash,
                 body = excluded.body, revision = excluded.revision",
        )
        .ctx(|| "preparing the node upsert".into())?;
    let mut clear_addresses = tx
        .prepare_cached("DELETE FROM node_addresses WHERE node = ?1")
        .ctx(|| "preparing the address delete".into())?;
    let mut insert_address = tx
        .prepare_cached(
            "INSERT INTO node_addresses (node, network, address) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .ctx(|| "preparing the address insert".into())?;
    for n in &plan.node_writes {
        let what = || format!("writing node {}", n.name);
        let made;
        let body = if n.body.is_empty() {
            made = body_of(&n.name);
            &made
        } else {
            &n.body
        };
        upsert_node
            .execute(params![n.name, n.inputs_hash, n.source_hash, body, commit])
            .ctx(what)?;
        clear_addresses.execute([&n.name]).ctx(what)?;
        for (network, address) in &n.addresses {
            insert_address
                .execute(params![n.name, network, address])
                .ctx(what)?;
        }
        stats.nodes_written += 1;
    }
    let mut delete_node = tx
        .prepare_cached("DELETE FROM nodes WHERE name = ?1")
        .ctx(|| "preparing the node delete".into())?;
    for name in &plan.node_deletes {
        // Addresses go with the node (ON DELETE CASCADE).
        stats.nodes_deleted += delete_node
            .execute([name])
            .ctx(|| format!("deleting node {name}"))?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::DesignFile;
    use crate::validate;

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

    /// The example site in `designs/`.
    fn example() -> crate::design::Design {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("designs");
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "yaml") {
                    files.push(DesignFile {
                        path: p.strip_prefix(&root).unwrap().display().to_string(),
                        bytes: std::fs::read(&p).unwrap(),
                    });
                }
            }
        }
        validate(&files).design.unwrap()
    }

    #[test]
    fn a_version_1_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(migrations::MIGRATIONS[0]).unwrap();
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
            conn.execute(
                "INSERT INTO revisions (commit_id, seq, tree, author, committer, summary,
                                        committed_at, seen_at, status)
                 VALUES (?1, 1, '', 'a', 'c', 's', 0, 0, 'applied')",
                [rev(1).commit],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO nodes (name, inputs_hash, body, revision) VALUES ('n1', ?1, '{}', ?2)",
                rusqlite::params!["a".repeat(64), rev(1).commit],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.revision, Some(rev(1).commit));
        assert_eq!(snap.nodes["n1"], "a".repeat(64));
        assert!(snap.node_sources.is_empty());
    }

    #[test]
    fn migration_4_ends_the_boot_actions_no_current_deployment_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        {
            let conn = Connection::open(&path).unwrap();
            for m in &migrations::MIGRATIONS[..3] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch("PRAGMA user_version = 3").unwrap();
            conn.execute(
                "INSERT INTO deployments (node, deployment, inputs_hash, design_ref, committed_at, created)
                 VALUES ('n1', 'D2', ?1, 'c', 0, 0)",
                ["a".repeat(64)],
            )
            .unwrap();
            for (id, dep) in [
                ("01HZZZZZZZZZZZZZZZZZZZZZ01", "D1"),
                ("01HZZZZZZZZZZZZZZZZZZZZZ02", "D2"),
            ] {
                conn.execute(
                    "INSERT INTO boot_actions (action_id, node, action, deployment, created, status)
                     VALUES (?1, 'n1', 'base-config', ?2, 0, 'Incomplete')",
                    rusqlite::params![id, dep],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let old = store
            .boot_action("01HZZZZZZZZZZZZZZZZZZZZZ01")
            .unwrap()
            .unwrap();
        let current = store
            .boot_action("01HZZZZZZZZZZZZZZZZZZZZZ02")
            .unwrap()
            .unwrap();
        assert!(old.ended.is_some(), "D1 is no node's current deployment");
        assert_eq!(current.ended, None);
    }

    #[test]
    fn nodes_are_found_by_any_of_their_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let design = example();
        let p = crate::plan::plan(&design, &store.snapshot().unwrap());
        store.apply(&p, &rev(1)).unwrap();
        let node = store.node("n00001").unwrap().unwrap();
        for (_, address) in &node.addresses {
            assert_eq!(store.nodes_with_address(address).unwrap(), ["n00001"]);
        }
        assert!(store.nodes_with_address("192.0.2.1").unwrap().is_empty());
    }

    #[test]
    fn nodes_without_a_source_hash_are_rewritten_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let design = example();
        let p = crate::plan::plan(&design, &store.snapshot().unwrap());
        store.apply(&p, &rev(1)).unwrap();
        // As rows written before migration 2 are.
        store
            .conn
            .execute("UPDATE nodes SET source_hash = NULL", [])
            .unwrap();
        let p = crate::plan::plan(&design, &store.snapshot().unwrap());
        assert_eq!(p.node_writes.len(), 12);
        assert!(p.creates.is_empty() && p.updates.is_empty());
        let stats = store.apply(&p, &rev(2)).unwrap();
        assert_eq!(stats.nodes_written, 12);
        assert!(crate::plan::plan(&design, &store.snapshot().unwrap()).is_empty());
    }

    #[test]
    fn foreign_keys_and_checks_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        // A document must belong to a recorded revision.
        let err = store.conn.execute(
            "INSERT INTO documents (kind, name, hash, body, file, line, revision)
             VALUES ('Network', 'x', ?1, '{}', 'f', 1, 'nope')",
            ["a".repeat(64)],
        );
        assert!(err.is_err());
        // Only one revision can be applied at a time.
        for (i, c) in ["c1", "c2"].iter().enumerate() {
            let r = store.conn.execute(
                "INSERT INTO revisions (commit_id, seq, tree, author, committer, summary,
                                        committed_at, seen_at, status)
                 VALUES (?1, ?2, '', 'a', 'c', 's', 0, 0, 'applied')",
                params![c, i as i64 + 1],
            );
            assert_eq!(r.is_ok(), i == 0);
        }
    }
}
