//! The schema, as append-only numbered migrations.
//!
//! Migration `i` (1-based) moves a database from `PRAGMA user_version = i - 1`
//! to `i`. Never edit or reorder a migration once it is committed: databases in
//! the field already ran it. Add a new one at the end instead.

/// Every migration, oldest first. `MIGRATIONS[i]` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The same migrations for PostgreSQL, one per version, with the same rules
/// (append-only, pinned). Each makes the schema of its SQLite twin in
/// PostgreSQL's words: integers are `BIGINT`, JSON columns are checked by a
/// cast to `json`, `INTEGER PRIMARY KEY` is an identity column, no `WITHOUT
/// ROWID`. Table, column and index names are the same, so every query of the
/// state layer runs on both.
pub const PG_MIGRATIONS: &[&str] = &[PG_V1, PG_V2, PG_V3, PG_V4, PG_V5, PG_V6];

/// PostgreSQL keeps the schema version in a one-row table (SQLite's is
/// `PRAGMA user_version`); made, holding 0, by the first migration run.
pub const PG_VERSION_TABLE: &str = "
CREATE TABLE IF NOT EXISTS slipway_schema (version BIGINT NOT NULL);
INSERT INTO slipway_schema (version)
    SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM slipway_schema);
";

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Version 1: every table of DESIGN §3, including those later features fill.
///
/// Times are seconds since the Unix epoch. JSON columns are checked with
/// `json_valid` so a bad write fails its transaction instead of poisoning reads.
/// Hashes are sha256 hex, checked by length for the same reason.
const V1: &str = r#"
CREATE TABLE revisions (
    commit_id    TEXT PRIMARY KEY,
    -- Insertion order: breaks ties between revisions seen in the same second.
    seq          INTEGER NOT NULL UNIQUE,
    tree         TEXT NOT NULL,
    author       TEXT NOT NULL,
    committer    TEXT NOT NULL,
    signed_by    TEXT,
    summary      TEXT NOT NULL,
    committed_at INTEGER NOT NULL,
    seen_at      INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('applied', 'invalid', 'superseded')),
    messages     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(messages))
);
-- At most one revision is being served.
CREATE UNIQUE INDEX revisions_one_applied ON revisions (status) WHERE status = 'applied';
CREATE INDEX revisions_newest ON revisions (seen_at, seq);

-- The current documents of the applied design, one row per (kind, name).
-- `revision` is the revision that last changed the row's content; `file` and
-- `line` are where the content was at that revision.
CREATE TABLE documents (
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    hash     TEXT NOT NULL CHECK (length(hash) = 64),
    body     TEXT NOT NULL CHECK (json_valid(body)),
    file     TEXT NOT NULL,
    line     INTEGER NOT NULL,
    revision TEXT NOT NULL REFERENCES revisions (commit_id),
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

-- Compiled nodes of the applied design. `inputs_hash` covers everything the
-- node's boot data depends on, so an unchanged hash means nothing to re-render.
CREATE TABLE nodes (
    name        TEXT PRIMARY KEY,
    inputs_hash TEXT NOT NULL CHECK (length(inputs_hash) = 64),
    body        TEXT NOT NULL CHECK (json_valid(body)),
    revision    TEXT NOT NULL REFERENCES revisions (commit_id)
) WITHOUT ROWID;

-- A node's addresses (`dhcp` is kept as written), for lookups by address.
CREATE TABLE node_addresses (
    node    TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
    network TEXT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (node, network, address)
) WITHOUT ROWID;
CREATE INDEX node_addresses_by_address ON node_addresses (address);

-- One row per (node, boot action) of a deployment. No foreign key to `nodes`:
-- the history of a node outlives its removal from the design.
CREATE TABLE boot_actions (
    action_id  TEXT PRIMARY KEY CHECK (length(action_id) = 26),
    node       TEXT NOT NULL,
    action     TEXT NOT NULL,
    deployment TEXT NOT NULL,
    created    INTEGER NOT NULL,
    status     TEXT NOT NULL,
    -- When a status report finalised the action; NULL while it is open.
    finalized  INTEGER
) WITHOUT ROWID;
CREATE INDEX boot_actions_by_node ON boot_actions (node, deployment);

-- Status reports of a boot action, in arrival order (`id`).
CREATE TABLE boot_action_status (
    id        INTEGER PRIMARY KEY,
    action_id TEXT NOT NULL REFERENCES boot_actions (action_id) ON DELETE CASCADE,
    ts        INTEGER NOT NULL,
    message   TEXT NOT NULL,
    error     INTEGER NOT NULL CHECK (error IN (0, 1)),
    extra     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra))
);
CREATE INDEX boot_action_status_by_action ON boot_action_status (action_id, id);

-- Data collected from a node while it builds (Drydock's build_data).
CREATE TABLE build_data (
    id           INTEGER PRIMARY KEY,
    node         TEXT NOT NULL,
    task_id      TEXT,
    generator    TEXT NOT NULL,
    data_format  TEXT NOT NULL,
    data_element TEXT NOT NULL,
    collected_at INTEGER NOT NULL
);
CREATE INDEX build_data_by_node ON build_data (node, collected_at);

-- Orchestration tasks (Drydock's tasks); `body` is the task as served.
CREATE TABLE tasks (
    task_id        TEXT PRIMARY KEY,
    parent_task_id TEXT REFERENCES tasks (task_id),
    action         TEXT NOT NULL,
    status         TEXT NOT NULL,
    result         TEXT,
    design_ref     TEXT,
    node_filter    TEXT CHECK (node_filter IS NULL OR json_valid(node_filter)),
    created        INTEGER NOT NULL,
    created_by     TEXT,
    updated        INTEGER,
    terminated     INTEGER,
    body           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(body))
) WITHOUT ROWID;
CREATE INDEX tasks_by_parent ON tasks (parent_task_id);

-- A task's result messages, in arrival order (`id`).
CREATE TABLE task_messages (
    id           INTEGER PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    ts           INTEGER NOT NULL,
    message      TEXT NOT NULL,
    error        INTEGER NOT NULL CHECK (error IN (0, 1)),
    context_type TEXT,
    context      TEXT,
    extra        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra))
);
CREATE INDEX task_messages_by_task ON task_messages (task_id, id);
"#;

/// Version 2: `nodes.source_hash`, the part of a node's inputs that needs no
/// compile (see `plan`), so planning skips compiling unchanged nodes. NULL in
/// rows written before: those nodes are compiled and rewritten once.
const V2: &str = r#"
ALTER TABLE nodes ADD COLUMN source_hash TEXT
    CHECK (source_hash IS NULL OR length(source_hash) = 64);
"#;

/// Version 3: `deployments`, the current deployment of each node and the
/// `inputs_hash` it was made from (a new one starts when the hash changes).
const V3: &str = r#"
CREATE TABLE deployments (
    node         TEXT PRIMARY KEY,
    deployment   TEXT NOT NULL UNIQUE,
    inputs_hash  TEXT NOT NULL CHECK (length(inputs_hash) = 64),
    design_ref   TEXT NOT NULL,
    committed_at INTEGER NOT NULL,
    created      INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 4: `boot_actions.ended`, when the action's deployment ended (the
/// node was redeployed, revoked, removed, or a commit changed it); NULL while
/// it is the node's current deployment. An ended action's keys are refused
/// and its status no longer counts as the node's. Actions of databases
/// written before are ended when no current deployment holds them.
const V4: &str = r#"
ALTER TABLE boot_actions ADD COLUMN ended INTEGER;
UPDATE boot_actions SET ended = CAST(strftime('%s', 'now') AS INTEGER)
WHERE NOT EXISTS (
    SELECT 1 FROM deployments AS d
    WHERE d.node = boot_actions.node AND d.deployment = boot_actions.deployment
);
"#;

/// Version 5: inspection (issue 12). `introspections`, one row per node: the
/// node's latest introspection as ironic-inspector shows it (started by
/// `POST /v1/introspection/{node}` or by the ramdisk's callback itself);
/// `inspection_messages`, where the node's latest inspection disagreed with
/// the design (replaced by each callback). Nodes are named, not referenced:
/// a node removed from the design keeps its history.
const V5: &str = r#"
CREATE TABLE introspections (
    node        TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('waiting', 'processing', 'finished', 'error')),
    manage_boot INTEGER NOT NULL CHECK (manage_boot IN (0, 1)),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    error       TEXT
) WITHOUT ROWID;
CREATE INDEX introspections_newest ON introspections (started_at);
CREATE TABLE inspection_messages (
    id      INTEGER PRIMARY KEY,
    node    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX inspection_messages_by_node ON inspection_messages (node, id);
"#;

/// Version 6: `agents`, one row per node that an Ironic agent (IPA) looked
/// up: its agent token's digest (`Secret::agent_token_digest`, never the
/// token), when it was issued and for which deployment, when a fresh token
/// was asked for (`reset_at`, NULL once issued), and the last heartbeat
/// (agent URL, version, time). Overwritten in place: no history.
const V6: &str = r#"
CREATE TABLE agents (
    node            TEXT PRIMARY KEY,
    token_digest    TEXT CHECK (token_digest IS NULL OR length(token_digest) = 64),
    token_issued_at INTEGER,
    deployment      TEXT,
    reset_at        INTEGER,
    reset_reason    TEXT,
    callback_url    TEXT,
    agent_version   TEXT,
    last_heartbeat  INTEGER
) WITHOUT ROWID;
"#;

/// PostgreSQL version 1 (see [`V1`]).
const PG_V1: &str = r#"
CREATE TABLE revisions (
    commit_id    TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL UNIQUE,
    tree         TEXT NOT NULL,
    author       TEXT NOT NULL,
    committer    TEXT NOT NULL,
    signed_by    TEXT,
    summary      TEXT NOT NULL,
    committed_at BIGINT NOT NULL,
    seen_at      BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('applied', 'invalid', 'superseded')),
    messages     TEXT NOT NULL DEFAULT '[]' CHECK (messages::json IS NOT NULL)
);
CREATE UNIQUE INDEX revisions_one_applied ON revisions (status) WHERE status = 'applied';
CREATE INDEX revisions_newest ON revisions (seen_at, seq);

CREATE TABLE documents (
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    hash     TEXT NOT NULL CHECK (length(hash) = 64),
    body     TEXT NOT NULL CHECK (body::json IS NOT NULL),
    file     TEXT NOT NULL,
    line     BIGINT NOT NULL,
    revision TEXT NOT NULL REFERENCES revisions (commit_id),
    PRIMARY KEY (kind, name)
);

CREATE TABLE nodes (
    name        TEXT PRIMARY KEY,
    inputs_hash TEXT NOT NULL CHECK (length(inputs_hash) = 64),
    body        TEXT NOT NULL CHECK (body::json IS NOT NULL),
    revision    TEXT NOT NULL REFERENCES revisions (commit_id)
);

CREATE TABLE node_addresses (
    node    TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
    network TEXT NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (node, network, address)
);
CREATE INDEX node_addresses_by_address ON node_addresses (address);

CREATE TABLE boot_actions (
    action_id  TEXT PRIMARY KEY CHECK (length(action_id) = 26),
    node       TEXT NOT NULL,
    action     TEXT NOT NULL,
    deployment TEXT NOT NULL,
    created    BIGINT NOT NULL,
    status     TEXT NOT NULL,
    finalized  BIGINT
);
CREATE INDEX boot_actions_by_node ON boot_actions (node, deployment);

CREATE TABLE boot_action_status (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    action_id TEXT NOT NULL REFERENCES boot_actions (action_id) ON DELETE CASCADE,
    ts        BIGINT NOT NULL,
    message   TEXT NOT NULL,
    error     BIGINT NOT NULL CHECK (error IN (0, 1)),
    extra     TEXT NOT NULL DEFAULT '{}' CHECK (extra::json IS NOT NULL)
);
CREATE INDEX boot_action_status_by_action ON boot_action_status (action_id, id);

CREATE TABLE build_data (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    node         TEXT NOT NULL,
    task_id      TEXT,
    generator    TEXT NOT NULL,
    data_format  TEXT NOT NULL,
    data_element TEXT NOT NULL,
    collected_at BIGINT NOT NULL
);
CREATE INDEX build_data_by_node ON build_data (node, collected_at);

CREATE TABLE tasks (
    task_id        TEXT PRIMARY KEY,
    parent_task_id TEXT REFERENCES tasks (task_id),
    action         TEXT NOT NULL,
    status         TEXT NOT NULL,
    result         TEXT,
    design_ref     TEXT,
    node_filter    TEXT CHECK (node_filter IS NULL OR node_filter::json IS NOT NULL),
    created        BIGINT NOT NULL,
    created_by     TEXT,
    updated        BIGINT,
    terminated     BIGINT,
    body           TEXT NOT NULL DEFAULT '{}' CHECK (body::json IS NOT NULL)
);
CREATE INDEX tasks_by_parent ON tasks (parent_task_id);

CREATE TABLE task_messages (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id      TEXT NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    ts           BIGINT NOT NULL,
    message      TEXT NOT NULL,
    error        BIGINT NOT NULL CHECK (error IN (0, 1)),
    context_type TEXT,
    context      TEXT,
    extra        TEXT NOT NULL DEFAULT '{}' CHECK (extra::json IS NOT NULL)
);
CREATE INDEX task_messages_by_task ON task_messages (task_id, id);
"#;

/// PostgreSQL version 2 (see [`V2`]).
const PG_V2: &str = r#"
ALTER TABLE nodes ADD COLUMN source_hash TEXT
    CHECK (source_hash IS NULL OR length(source_hash) = 64);
"#;

/// PostgreSQL version 3 (see [`V3`]).
const PG_V3: &str = r#"
CREATE TABLE deployments (
    node         TEXT PRIMARY KEY,
    deployment   TEXT NOT NULL UNIQUE,
    inputs_hash  TEXT NOT NULL CHECK (length(inputs_hash) = 64),
    design_ref   TEXT NOT NULL,
    committed_at BIGINT NOT NULL,
    created      BIGINT NOT NULL
);
"#;

/// PostgreSQL version 4 (see [`V4`]).
const PG_V4: &str = r#"
ALTER TABLE boot_actions ADD COLUMN ended BIGINT;
UPDATE boot_actions SET ended = CAST(extract(epoch FROM now()) AS BIGINT)
WHERE NOT EXISTS (
    SELECT 1 FROM deployments AS d
    WHERE d.node = boot_actions.node AND d.deployment = boot_actions.deployment
);
"#;

/// PostgreSQL version 5 (see [`V5`]).
const PG_V5: &str = r#"
CREATE TABLE introspections (
    node        TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('waiting', 'processing', 'finished', 'error')),
    manage_boot BIGINT NOT NULL CHECK (manage_boot IN (0, 1)),
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    error       TEXT
);
CREATE INDEX introspections_newest ON introspections (started_at);
CREATE TABLE inspection_messages (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    node    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX inspection_messages_by_node ON inspection_messages (node, id);
"#;

/// PostgreSQL version 6 (see [`V6`]).
const PG_V6: &str = r#"
CREATE TABLE agents (
    node            TEXT PRIMARY KEY,
    token_digest    TEXT CHECK (token_digest IS NULL OR length(token_digest) = 64),
    token_issued_at BIGINT,
    deployment      TEXT,
    reset_at        BIGINT,
    reset_reason    TEXT,
    callback_url    TEXT,
    agent_version   TEXT,
    last_heartbeat  BIGINT
);
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use sha2::{Digest, Sha256};

    /// sha256 of each migration's text as committed. A database in the field ran
    /// these exact statements: editing one makes new databases differ from
    /// upgraded ones. Add a migration (and its digest here) instead.
    const PINNED: &[&str] = &[
        "9f240980fa8792ecb87983dee606a036ada869312f5164e044d857913733eb28",
        "814b78addc2703bca8b4536d4ed6d4d0ecfa376c97616e5b508b8e145c409582",
        "819b7499411eb003c7966a9ba04edfd3a3a6c8b7c23b1aabf5ed6e7bbd2b2b31",
        "254037328fabb3da8fd6c80e4be010cfb1198994ea71aab1757c675bb5b29207",
        "59c737d82d2cd14a4df0fcabeecedf467004950f8ea46948e68a4183beec5267",
        "df2ce761065de701079223679ad67c51df05decc016f0df97fff99ee6550582e",
    ];

    /// sha256 of each PostgreSQL migration as committed (same rule as [`PINNED`]).
    const PG_PINNED: &[&str] = &[
        "c4e3d76b33e22fd85926652a8add70662be1662be4a88a7634055177f8c83d87",
        "814b78addc2703bca8b4536d4ed6d4d0ecfa376c97616e5b508b8e145c409582",
        "06283b36406883780d545cef1ca806daba0f8985d37110a035273c2bcd78ef79",
        "d2c977afcd6e8604bb3b739a5f9d55f990ddf9ac457dd64bc0f9a67ac22b091c",
        "e43fde5a53cb603c12c31d0e028675ad8c2482d5200091d28596886e1edc32f2",
        "493baaf55300bb0c1acb54998f5c0b5942c700823927e4b0d88fa4f654e53ae1",
    ];

    #[test]
    fn committed_postgres_migrations_never_change_and_match_the_sqlite_versions() {
        assert_eq!(
            PG_MIGRATIONS.len(),
            MIGRATIONS.len(),
            "every schema version has a SQLite and a PostgreSQL migration"
        );
        assert_eq!(
            PG_MIGRATIONS.len(),
            PG_PINNED.len(),
            "pin the new one's digest"
        );
        for (i, (sql, pinned)) in PG_MIGRATIONS.iter().zip(PG_PINNED).enumerate() {
            let digest = hex::encode(Sha256::digest(sql.as_bytes()));
            assert_eq!(
                &digest,
                pinned,
                "PostgreSQL migration {} changed; add a new one instead",
                i + 1
            );
        }
    }

    #[test]
    fn committed_migrations_never_change() {
        assert_eq!(
            MIGRATIONS.len(),
            PINNED.len(),
            "a migration was added or removed: pin the new one's digest (never remove one)"
        );
        for (i, (sql, pinned)) in MIGRATIONS.iter().zip(PINNED).enumerate() {
            let digest = hex::encode(Sha256::digest(sql.as_bytes()));
            assert_eq!(
                &digest,
                pinned,
                "migration {} (schema version {}) changed; add a new migration instead",
                i + 1,
                i + 1
            );
        }
    }

    /// The schema objects of a database, for comparing two of them.
    fn schema(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        let mut st = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A database left at `version` by an earlier build, holding a revision, a
    /// node with an address, two boot actions with a status report (one of the
    /// node's current deployment once deployments exist, one of an older one)
    /// and a task.
    fn database_at(path: &std::path::Path, version: usize) {
        let conn = Connection::open(path).unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        if version == 0 {
            return;
        }
        let hash = "a".repeat(64);
        conn.execute_batch(&format!(
            "INSERT INTO revisions VALUES ('c1', 1, 't', 'a', 'c', NULL, 's', 1, 2, 'applied', '[]');
             INSERT INTO nodes (name, inputs_hash, body, revision) VALUES ('n1', '{hash}', '{{}}', 'c1');
             INSERT INTO node_addresses VALUES ('n1', 'pxe', '10.0.0.1');
             INSERT INTO boot_actions (action_id, node, action, deployment, created, status, finalized) VALUES ('{old}', 'n1', 'a1', 'd0', 1, 'Success', 2);
             INSERT INTO boot_actions (action_id, node, action, deployment, created, status, finalized) VALUES ('{cur}', 'n1', 'a1', 'd1', 3, 'Incomplete', NULL);
             INSERT INTO boot_action_status (action_id, ts, message, error) VALUES ('{cur}', 4, 'm', 0);
             INSERT INTO tasks (task_id, action, status, created) VALUES ('t1', 'verify_site', 'complete', 5);",
            old = "0".repeat(26),
            cur = "1".repeat(26),
        ))
        .unwrap();
        if version >= 3 {
            conn.execute(
                "INSERT INTO deployments VALUES ('n1', 'd1', ?1, 'c1', 1, 6)",
                [&hash],
            )
            .unwrap();
        }
        if version >= 4 {
            // A build at version 4 or later ended the older deployment's action itself.
            conn.execute(
                "UPDATE boot_actions SET ended = 7 WHERE deployment = 'd0'",
                [],
            )
            .unwrap();
        }
    }

    /// A new database of the test cluster (`SLIPWAY_TEST_PG`, started by
    /// `scripts/pg.sh`; the test fails without it) and its URL.
    fn pg_database(tag: &str) -> String {
        let admin = std::env::var("SLIPWAY_TEST_PG").expect(
            "SLIPWAY_TEST_PG is not set: run `eval \"$(scripts/pg.sh start /tmp/slipway-pg)\"`",
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("u_{}_{tag}_{nanos}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        ))
        .unwrap();
        let base = admin.split('?').next().unwrap();
        format!("{}/{name}", base.rsplit_once('/').unwrap().0)
    }

    /// The columns and indexes of a PostgreSQL database, for comparing two.
    fn pg_schema(c: &mut postgres::Client) -> Vec<String> {
        let mut out: Vec<String> = c
            .query(
                "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
                 FROM information_schema.columns WHERE table_schema = 'public'
                 ORDER BY 1, 2",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| {
                (0..5)
                    .map(|i| r.get::<_, String>(i))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.extend(
            c.query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
        );
        out
    }

    #[test]
    fn a_postgres_database_of_every_earlier_schema_version_upgrades_to_the_latest_with_its_rows() {
        use std::path::Path;
        let fresh_url = pg_database("fresh");
        drop(crate::state::Store::open(Path::new(&fresh_url)).unwrap());
        let fresh = pg_schema(&mut postgres::Client::connect(&fresh_url, postgres::NoTls).unwrap());
        for version in 0..PG_MIGRATIONS.len() {
            let url = pg_database(&format!("v{version}"));
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(PG_VERSION_TABLE).unwrap();
            for sql in &PG_MIGRATIONS[..version] {
                c.batch_execute(sql).unwrap();
            }
            c.execute(
                "UPDATE slipway_schema SET version = $1",
                &[&(version as i64)],
            )
            .unwrap();
            if version > 0 {
                let hash = "a".repeat(64);
                c.batch_execute(&format!(
                    "INSERT INTO revisions VALUES ('c1', 1, 't', 'a', 'c', NULL, 's', 1, 2, 'applied', '[]');
                     INSERT INTO nodes (name, inputs_hash, body, revision) VALUES ('n1', '{hash}', '{{}}', 'c1');
                     INSERT INTO node_addresses VALUES ('n1', 'pxe', '10.0.0.1');
                     INSERT INTO boot_actions (action_id, node, action, deployment, created, status, finalized) VALUES ('{old}', 'n1', 'a1', 'd0', 1, 'Success', 2);
                     INSERT INTO boot_actions (action_id, node, action, deployment, created, status, finalized) VALUES ('{cur}', 'n1', 'a1', 'd1', 3, 'Incomplete', NULL);
                     INSERT INTO boot_action_status (action_id, ts, message, error) VALUES ('{cur}', 4, 'm', 0);
                     INSERT INTO tasks (task_id, action, status, created) VALUES ('t1', 'verify_site', 'complete', 5);",
                    old = "0".repeat(26),
                    cur = "1".repeat(26),
                ))
                .unwrap();
                if version >= 3 {
                    c.execute(
                        "INSERT INTO deployments VALUES ('n1', 'd1', $1, 'c1', 1, 6)",
                        &[&hash],
                    )
                    .unwrap();
                }
                if version >= 4 {
                    c.batch_execute("UPDATE boot_actions SET ended = 7 WHERE deployment = 'd0'")
                        .unwrap();
                }
            }
            let store = crate::state::Store::open(Path::new(&url))
                .unwrap_or_else(|e| panic!("version {version} does not upgrade: {e}"));
            assert_eq!(
                store.schema_version().unwrap(),
                LATEST,
                "from version {version}"
            );
            drop(store);
            assert_eq!(
                pg_schema(&mut c),
                fresh,
                "version {version} upgraded to another schema"
            );
            if version == 0 {
                continue;
            }
            for (table, rows) in [
                ("revisions", 1),
                ("nodes", 1),
                ("node_addresses", 1),
                ("boot_actions", 2),
                ("boot_action_status", 1),
                ("tasks", 1),
            ] {
                let found: i64 = c
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .unwrap()
                    .get(0);
                assert_eq!(
                    found, rows,
                    "{table} after upgrading from version {version}"
                );
            }
            let ended: Vec<String> = c
                .query(
                    "SELECT deployment FROM boot_actions WHERE ended IS NOT NULL ORDER BY deployment",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let want: &[&str] = if version >= 3 { &["d0"] } else { &["d0", "d1"] };
            assert_eq!(
                ended, want,
                "ended actions after upgrading from version {version}"
            );
        }
    }

    #[test]
    fn a_database_of_every_earlier_schema_version_upgrades_to_the_latest_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let fresh_path = dir.path().join("fresh.db");
        drop(crate::state::Store::open(&fresh_path).unwrap());
        let fresh = schema(&Connection::open(&fresh_path).unwrap());
        for version in 0..MIGRATIONS.len() {
            let path = dir.path().join(format!("v{version}.db"));
            database_at(&path, version);
            let store = crate::state::Store::open(&path)
                .unwrap_or_else(|e| panic!("version {version} does not upgrade: {e}"));
            assert_eq!(
                store.schema_version().unwrap(),
                LATEST,
                "from version {version}"
            );
            drop(store);
            let conn = Connection::open(&path).unwrap();
            assert_eq!(
                schema(&conn),
                fresh,
                "version {version} upgraded to another schema"
            );
            if version == 0 {
                continue;
            }
            for (table, rows) in [
                ("revisions", 1),
                ("nodes", 1),
                ("node_addresses", 1),
                ("boot_actions", 2),
                ("boot_action_status", 1),
                ("tasks", 1),
            ] {
                let found = count(&conn, &format!("SELECT count(*) FROM {table}"));
                assert_eq!(
                    found, rows,
                    "{table} after upgrading from version {version}"
                );
            }
            // Version 4 ends every action no current deployment holds: before
            // deployments existed (version < 3) that is every action.
            let ended: Vec<String> = conn
                .prepare("SELECT deployment FROM boot_actions WHERE ended IS NOT NULL ORDER BY deployment")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let want: &[&str] = if version >= 3 { &["d0"] } else { &["d0", "d1"] };
            assert_eq!(
                ended, want,
                "ended actions after upgrading from version {version}"
            );
        }
    }
}
