//! One connection to either backend: SQLite (`rusqlite`) or PostgreSQL
//! (`postgres`), so every query of the state layer is written once.
//!
//! The only user of the `postgres` crate. Its surface is the small part of
//! rusqlite's that `state` uses: `execute`, `query_row`, `prepare_cached`
//! statements with `query_row`/`query_map`, transactions and savepoints,
//! typed column getters. SQL is written portably (`ON CONFLICT`, no
//! `INSERT OR …`, `coalesce`); placeholders are SQLite's `?N`, rewritten to
//! PostgreSQL's `$N` once per statement text.
//!
//! Values cross the edge as [`Value`]: integers, reals, text and NULL. On
//! PostgreSQL every integer column is `BIGINT` and every string `TEXT`; a
//! value is encoded as the type the server inferred for its parameter, and
//! a column decoded by its type, so the queries need no casts.
//!
//! Transactions on PostgreSQL: a writing one ([`Db::transaction`],
//! [`Db::transaction_immediate`]) takes one transaction-level advisory lock
//! ([`WRITE_LOCK`]) first, so writers of every replica run one at a time as
//! SQLite's writers do, and every check-then-write (a node's first
//! deployment, a report finalising an action) keeps its meaning across
//! replicas. Reads take no lock ([`Db::read_transaction`] is a snapshot).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error as StdError;

use postgres::types::{FromSql, IsNull, ToSql, Type};

/// The advisory lock key every writing PostgreSQL transaction takes (see the
/// module docs). An arbitrary constant: "slipway" in ASCII, as an integer.
pub const WRITE_LOCK: i64 = 0x0073_6c69_7077_6179;
/// The session-level advisory lock key held by the reconciling replica.
pub const LEADER_LOCK: i64 = WRITE_LOCK + 1;

/// A failed database call.
#[derive(Debug)]
pub enum Error {
    /// SQLite's error.
    Sqlite(rusqlite::Error),
    /// PostgreSQL's error.
    Pg(postgres::Error),
    /// `query_row` found no row (see [`OptionalExtension`]).
    NoRows,
    /// A column held a value the getter cannot read as its type.
    Conversion(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(e) => e.fmt(f),
            // The server's message (with its detail) beats the crate's summary.
            Error::Pg(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
                None => e.fmt(f),
            },
            Error::NoRows => f.write_str("expected a row, found none"),
            Error::Conversion(s) => f.write_str(s),
        }
    }
}

impl StdError for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            e => Error::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Pg(e)
    }
}

/// A database call's result.
pub type Result<T> = std::result::Result<T, Error>;

/// rusqlite's `optional()`: no row is `None`.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for [`Error::NoRows`].
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (`BIGINT` on PostgreSQL).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
}

/// A column value as read, borrowed where the backend allows.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(&'a str),
}

/// Something that can be bound as a parameter.
pub trait ToValue {
    /// The value bound.
    fn to_value(&self) -> Value;
}

/// Something a column can be read as.
pub trait FromValue: Sized {
    /// The column's value as `Self`.
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String>;
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
        impl FromValue for $t {
            fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
                match v {
                    ValueRef::Int(i) => <$t>::try_from(i)
                        .map_err(|_| format!("expected a {}, found {i}", stringify!($t))),
                    other => Err(format!("expected an integer, found {other:?}")),
                }
            }
        }
    )*};
}
int_values!(i64, i32, u32, u64, usize, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl FromValue for bool {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Int(i) => Ok(i != 0),
            other => Err(format!("expected 0 or 1, found {other:?}")),
        }
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl FromValue for f64 {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Real(r) => Ok(r),
            ValueRef::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromValue for String {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Text(s) => Ok(s.to_string()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: ValueRef<'_>) -> std::result::Result<Self, String> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl ToValue for std::sync::Arc<str> {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// The parameters of one statement: `params![…]`, `[a, b]` or `[]`.
pub trait Params {
    /// The values, in placeholder order.
    fn values(&self) -> Vec<Value>;
}

impl Params for &[&dyn ToValue] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

impl Params for [&dyn ToValue; 0] {
    fn values(&self) -> Vec<Value> {
        Vec::new()
    }
}

macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn values(&self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// rusqlite's `params!`, for [`Db`]: `params![a, b]` binds `?1`, `?2`.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::state::db::ToValue]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::state::db::ToValue),+] as &[&dyn $crate::state::db::ToValue]
    };
}
pub(crate) use params;

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => R::Null,
            Value::Int(i) => R::Integer(*i),
            Value::Real(r) => R::Real(*r),
            Value::Text(s) => R::Text(s.as_bytes()),
        }))
    }
}

/// Text types PostgreSQL may infer for a parameter or return for a column.
fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                ref t if is_text(t) => i.to_string().as_str().to_sql(&Type::TEXT, out),
                ref t => Err(format!("cannot bind an integer as PostgreSQL type {t}").into()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                ref t => Err(format!("cannot bind a float as PostgreSQL type {t}").into()),
            },
            Value::Text(s) => match *ty {
                ref t if is_text(t) => s.as_str().to_sql(&Type::TEXT, out),
                ref t => Err(format!("cannot bind text as PostgreSQL type {t}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Value, Box<dyn StdError + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            ref t if is_text(t) => Value::Text(<&str>::from_sql(&Type::TEXT, raw)?.to_string()),
            ref t => {
                return Err(format!(
                    "cannot read PostgreSQL type {t}; cast it in the query (e.g. CAST(x AS BIGINT))"
                )
                .into())
            }
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Value, Box<dyn StdError + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// One row of a result, read by column index.
pub enum Row<'a> {
    /// A SQLite row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A PostgreSQL row.
    Pg(&'a postgres::Row),
}

/// A column index (rusqlite's `get::<_, T>(i)` shape).
pub trait RowIndex {
    /// The index.
    fn index(&self) -> usize;
}

impl RowIndex for usize {
    fn index(&self) -> usize {
        *self
    }
}

impl Row<'_> {
    /// Column `i` as `T`.
    pub fn get<I: RowIndex, T: FromValue>(&self, i: I) -> Result<T> {
        let i = i.index();
        let conv = |e: String| Error::Conversion(format!("column {i}: {e}"));
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef as R;
                let v = r.get_ref(i)?;
                let v = match v {
                    R::Null => ValueRef::Null,
                    R::Integer(n) => ValueRef::Int(n),
                    R::Real(f) => ValueRef::Real(f),
                    R::Text(t) => ValueRef::Text(
                        std::str::from_utf8(t).map_err(|e| conv(format!("not UTF-8: {e}")))?,
                    ),
                    R::Blob(_) => return Err(conv("expected a value, found a blob".into())),
                };
                T::from_value(v).map_err(conv)
            }
            Row::Pg(r) => {
                let v: Value = r.try_get(i)?;
                let v = match &v {
                    Value::Null => ValueRef::Null,
                    Value::Int(n) => ValueRef::Int(*n),
                    Value::Real(f) => ValueRef::Real(*f),
                    Value::Text(s) => ValueRef::Text(s),
                };
                T::from_value(v).map_err(conv)
            }
        }
    }
}

/// A PostgreSQL session and its prepared statements.
pub struct PgConn {
    url: String,
    /// `None` only while being dropped.
    client: RefCell<Option<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// Bumped by every reconnect: a session lock taken at an older
    /// generation is gone.
    generation: Cell<u64>,
    /// A transaction is open: a lost session is an error, never replaced
    /// (the rest of the transaction would run outside it).
    in_tx: Cell<bool>,
}

/// Runs `f`, which blocks on the `postgres` client's own runtime. The state
/// layer is called on blocking threads; should it be called on a worker of a
/// multi-threaded tokio runtime (a test, a drop at shutdown), the worker is
/// told it blocks instead of the client panicking.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Closing the session blocks on the client's runtime too.
        if let Some(c) = self.client.get_mut().take() {
            blocking(move || drop(c));
        }
    }
}

impl PgConn {
    /// Runs `f` on the session, blocking (see [`blocking`]).
    fn with<T>(&self, f: impl FnOnce(&mut postgres::Client) -> T) -> T {
        let mut guard = self.client.borrow_mut();
        let client = guard
            .as_mut()
            .expect("a PgConn has its client until dropped");
        blocking(|| f(client))
    }

    fn closed(&self) -> bool {
        self.client.borrow().as_ref().is_none_or(|c| c.is_closed())
    }

    /// Connects to `url` (a `postgres://` or `postgresql://` URL).
    pub fn connect(url: &str) -> Result<PgConn> {
        let client = blocking(|| postgres::Client::connect(url, postgres::NoTls))?;
        Ok(PgConn {
            url: url.to_string(),
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            generation: Cell::new(0),
            in_tx: Cell::new(false),
        })
    }

    /// Which session this is (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Connects again when the session was lost (the server restarted, the
    /// connection dropped), so one failure does not end the store for good.
    fn revive(&self) -> Result<()> {
        if self.closed() {
            if self.in_tx.get() {
                return Err(Error::Conversion(
                    "the PostgreSQL session was lost inside a transaction".into(),
                ));
            }
            let client = blocking(|| postgres::Client::connect(&self.url, postgres::NoTls))?;
            let old = self.client.borrow_mut().replace(client);
            blocking(move || drop(old));
            self.statements.borrow_mut().clear();
            self.generation.set(self.generation.get() + 1);
        }
        Ok(())
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        self.revive()?;
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.with(|c| c.prepare(&placeholders(sql)))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn execute(&self, sql: &str, values: &[Value]) -> Result<usize> {
        let st = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        Ok(self.with(|c| c.execute(&st, &refs))? as usize)
    }

    fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<postgres::Row>> {
        let st = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        Ok(self.with(|c| c.query(&st, &refs))?)
    }

    /// Runs `sql` (one or more statements, no parameters).
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.revive()?;
        Ok(self.with(|c| c.batch_execute(sql))?)
    }
}

/// `?N` placeholders as `$N`, outside quoted strings and identifiers.
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push('$');
            }
            None => out.push(c),
        }
    }
    out
}

/// One connection to the state database.
pub enum Db {
    /// The embedded SQLite file.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL server.
    Pg(Box<PgConn>),
}

/// How a transaction on SQLite starts (PostgreSQL writers all take
/// [`WRITE_LOCK`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Begin {
    /// SQLite `BEGIN` (takes the write lock at the first write).
    Deferred,
    /// SQLite `BEGIN IMMEDIATE` (takes the write lock now).
    Immediate,
    /// A snapshot read.
    Read,
}

impl Db {
    /// Whether this is a PostgreSQL connection.
    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// Runs one statement; the number of rows changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs `sql` (statements without parameters).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(c) => c.batch(sql),
        }
    }

    /// The first row of `sql` through `f`; [`Error::NoRows`] when there is none.
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// A statement, prepared once per connection and text.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(match self {
            Db::Sqlite(c) => Statement::Sqlite(c.prepare_cached(sql)?),
            Db::Pg(c) => Statement::Pg {
                conn: c,
                sql: sql.to_string(),
            },
        })
    }

    fn begin(&mut self, how: Begin) -> Result<Transaction<'_>> {
        match (&*self, how) {
            (Db::Sqlite(c), Begin::Immediate) => c.execute_batch("BEGIN IMMEDIATE")?,
            (Db::Sqlite(c), _) => c.execute_batch("BEGIN")?,
            (Db::Pg(c), Begin::Read) => {
                c.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
                c.in_tx.set(true);
            }
            (Db::Pg(c), _) => {
                c.batch("BEGIN")?;
                c.in_tx.set(true);
                let lock = c
                    .execute(
                        "SELECT pg_advisory_xact_lock(?1)",
                        &[Value::Int(WRITE_LOCK)],
                    )
                    .map(|_| ());
                if let Err(e) = lock {
                    let _ = c.batch("ROLLBACK");
                    c.in_tx.set(false);
                    return Err(e);
                }
            }
        }
        Ok(Transaction {
            db: self,
            done: false,
        })
    }

    fn end_tx(&self) {
        if let Db::Pg(c) = self {
            c.in_tx.set(false);
        }
    }

    /// PostgreSQL: takes the session-level [`LEADER_LOCK`] if no other
    /// session holds it, or tells that this session still holds it (taken
    /// at `held`, a [`PgConn::generation`]). The new generation when held.
    /// SQLite: always `Some(0)` (one process per file, see `DatabaseLock`).
    pub fn lead(&self, held: Option<u64>) -> Result<Option<u64>> {
        let Db::Pg(c) = self else {
            return Ok(Some(0));
        };
        // A query first: a dead session is noticed (and replaced) here.
        c.query("SELECT 1", &[])?;
        if held == Some(c.generation()) {
            return Ok(held);
        }
        let rows = c.query(
            "SELECT pg_try_advisory_lock(?1)",
            &[Value::Int(LEADER_LOCK)],
        )?;
        let got = rows
            .first()
            .map(|r| Row::Pg(r).get::<_, bool>(0))
            .transpose()?
            .unwrap_or(false);
        Ok(got.then(|| c.generation()))
    }

    /// The session's generation (0 on SQLite).
    pub fn generation(&self) -> u64 {
        match self {
            Db::Sqlite(_) => 0,
            Db::Pg(c) => c.generation(),
        }
    }

    /// A writing transaction (SQLite: deferred; PostgreSQL: takes [`WRITE_LOCK`]).
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.begin(Begin::Deferred)
    }

    /// A writing transaction holding the write lock from its start.
    pub fn transaction_immediate(&mut self) -> Result<Transaction<'_>> {
        self.begin(Begin::Immediate)
    }

    /// A read-only transaction: its reads agree with each other.
    pub fn read_transaction(&mut self) -> Result<Transaction<'_>> {
        self.begin(Begin::Read)
    }
}

/// An open transaction; rolled back when dropped without [`Transaction::commit`].
pub struct Transaction<'a> {
    db: &'a mut Db,
    done: bool,
}

impl Transaction<'_> {
    /// Commits.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let r = self.db.execute_batch("COMMIT");
        self.db.end_tx();
        r
    }

    /// A savepoint inside this transaction.
    pub fn savepoint(&mut self) -> Result<Savepoint<'_>> {
        self.db.execute_batch("SAVEPOINT sp")?;
        Ok(Savepoint {
            db: self.db,
            done: false,
        })
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.execute_batch("ROLLBACK");
            self.db.end_tx();
        }
    }
}

/// A savepoint; rolled back when dropped without [`Savepoint::commit`].
pub struct Savepoint<'a> {
    db: &'a Db,
    done: bool,
}

impl Savepoint<'_> {
    /// Keeps what was done since the savepoint.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.execute_batch("RELEASE sp")
    }

    /// Undoes what was done since the savepoint.
    pub fn rollback(&mut self) -> Result<()> {
        self.done = true;
        self.db.execute_batch("ROLLBACK TO sp; RELEASE sp")
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.execute_batch("ROLLBACK TO sp; RELEASE sp");
        }
    }
}

/// A prepared statement of either backend.
pub enum Statement<'a> {
    /// SQLite's cached statement.
    Sqlite(rusqlite::CachedStatement<'a>),
    /// PostgreSQL: the text; the connection caches the prepared statement.
    Pg {
        /// The connection.
        conn: &'a PgConn,
        /// The statement's text, with `?N` placeholders.
        sql: String,
    },
}

impl Statement<'_> {
    /// Runs it; the number of rows changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let values = params.values();
        match self {
            Statement::Sqlite(s) => Ok(s.execute(rusqlite::params_from_iter(values.iter()))?),
            Statement::Pg { conn, sql } => conn.execute(sql, &values),
        }
    }

    /// The first row through `f`; [`Error::NoRows`] when there is none.
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> Result<T> {
        let values = params.values();
        match self {
            Statement::Sqlite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::NoRows),
                }
            }
            Statement::Pg { conn, sql } => {
                let rows = conn.query(sql, &values)?;
                match rows.first() {
                    Some(r) => f(&Row::Pg(r)),
                    None => Err(Error::NoRows),
                }
            }
        }
    }

    /// Every row through `f`, in order.
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let values = params.values();
        let mut out = Vec::new();
        match self {
            Statement::Sqlite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(values.iter()))?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r)));
                }
            }
            Statement::Pg { conn, sql } => {
                for r in conn.query(sql, &values)? {
                    out.push(f(&Row::Pg(&r)));
                }
            }
        }
        Ok(out.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_quotes_only() {
        assert_eq!(
            placeholders("SELECT '?1', \"?2\" FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"?2\" FROM t WHERE a = $1 AND b = $12"
        );
    }
}
