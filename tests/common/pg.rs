//! The two state backends for tests that run once per backend: SQLite files
//! and PostgreSQL databases in the cluster named by `SLIPWAY_TEST_PG` (started
//! by `scripts/pg.sh`; scripts/test.sh exports it). A PostgreSQL test without
//! it fails: it is never skipped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's directory.
    Sqlite,
    /// A fresh database of the test PostgreSQL cluster.
    Postgres,
}

impl Backend {
    /// A new, empty database for `--db`: `dir/slipway.db`, or a new
    /// PostgreSQL database's URL.
    pub fn db(self, dir: &Path) -> PathBuf {
        self.db_named(dir, "slipway.db")
    }

    /// Like [`Backend::db`], naming the SQLite file (tests holding several).
    pub fn db_named(self, dir: &Path, file: &str) -> PathBuf {
        match self {
            Backend::Sqlite => dir.join(file),
            Backend::Postgres => PathBuf::from(fresh_database()),
        }
    }
}

/// The server secret file a test server on `db` uses: `<db>.secret` for a
/// SQLite file (the default), a file in the temp dir named after the
/// database for PostgreSQL (a URL has no directory; the server needs --secret).
pub fn secret_for(db: &Path) -> PathBuf {
    match db.to_str() {
        Some(url) if slipway::state::is_postgres_url(url) => {
            let name = url.rsplit('/').next().unwrap_or("db");
            std::env::temp_dir().join(format!("slipway-{name}.secret"))
        }
        _ => slipway::keys::default_secret_path(db),
    }
}

/// The test cluster's URL (its `postgres` database); panics when unset.
pub fn cluster_url() -> String {
    std::env::var("SLIPWAY_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "SLIPWAY_TEST_PG is not set: the PostgreSQL tests need a cluster; \
             run `eval \"$(scripts/pg.sh start /tmp/slipway-pg)\"` (scripts/test.sh does)"
        )
    })
}

/// Creates a database with a name no other test uses and returns its URL.
///
/// Safe to call from async tests: the blocking client runs on its own thread.
pub fn fresh_database() -> String {
    std::thread::spawn(make_database).join().unwrap()
}

fn make_database() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let admin = cluster_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "t_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to SLIPWAY_TEST_PG {admin}: {e}"));
    // The name is made above from digits and `t_`: no quoting issue.
    client
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        ))
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    let (base, _) = admin
        .split_once('?')
        .map_or((admin.as_str(), ""), |(b, q)| (b, q));
    let (server, _) = base.rsplit_once('/').expect("a postgres://host/db URL");
    format!("{server}/{name}")
}

/// Runs a test body once per backend: `per_backend!(name, …)` makes, for each
/// `fn name(backend: Backend)`, the tests `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::common::pg::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name($crate::common::pg::Backend::Postgres)
            }
        }
    )+};
}

/// [`per_backend!`] for `async fn name(backend: Backend)` tests.
#[macro_export]
macro_rules! per_backend_async {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name($crate::common::pg::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name($crate::common::pg::Backend::Postgres).await
            }
        }
    )+};
}
