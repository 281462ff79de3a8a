//! Statements in sqlx's shape (`query(sql).bind(v).fetch_one(conn)`), run by SQLite on
//! the calling thread, with rows copied out before the call returns.

use super::SqliteConns;
use rusqlite::Connection;
use rusqlite::types::{FromSql, ToSql, Value, ValueRef};
use sqlx::error::{DatabaseError, ErrorKind};
use std::borrow::Cow;
use std::sync::Arc;

/// Where a statement runs: a connection borrowed from the set for just this statement,
/// or one the caller holds (a transaction's).
pub(crate) trait Exec: Send {
    fn run<R: Send>(
        self,
        f: impl Fn(&Connection) -> Result<R, sqlx::Error> + Send,
    ) -> impl Future<Output = Result<R, sqlx::Error>> + Send;
}

impl Exec for &SqliteConns {
    async fn run<R: Send>(
        self,
        f: impl Fn(&Connection) -> Result<R, sqlx::Error> + Send,
    ) -> Result<R, sqlx::Error> {
        if self.routes_to_writer() {
            return self.on_writer(f).await;
        }
        let mut conn = self.acquire().await?;
        (&mut *conn).run(f).await
    }
}

impl Exec for &mut super::TxConn<'_> {
    async fn run<R: Send>(
        self,
        f: impl Fn(&Connection) -> Result<R, sqlx::Error> + Send,
    ) -> Result<R, sqlx::Error> {
        match self {
            super::TxConn::Own(conn) => (&mut **conn).run(f).await,
            super::TxConn::Writer(set) => set.on_writer(f).await,
        }
    }
}

impl Exec for &mut Connection {
    async fn run<R: Send>(
        self,
        f: impl Fn(&Connection) -> Result<R, sqlx::Error> + Send,
    ) -> Result<R, sqlx::Error> {
        retry_busy(move || f(&*self)).await
    }
}

/// Runs `attempt` until it is not SQLITE_BUSY, for up to BUSY_TIMEOUT. Connections have
/// no busy timeout: a statement that finds the database locked by another process (a
/// `stonepot` command run beside the server) fails at once instead of sleeping on this
/// thread, which would stall every task on it, and is tried again here after an
/// asynchronous pause. Retrying is safe: a busy statement did nothing. A transaction
/// whose snapshot went stale (SQLITE_BUSY_SNAPSHOT) cannot succeed by waiting and fails.
pub(crate) async fn retry_busy<R>(
    mut attempt: impl FnMut() -> Result<R, sqlx::Error>,
) -> Result<R, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match attempt() {
            Err(e) if is_busy(&e) && started.elapsed() < super::BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether `e` is SQLite's plain SQLITE_BUSY (another connection holds the lock).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if d.try_downcast_ref::<SqliteError>()
            .is_some_and(|s| s.code == rusqlite::ffi::SQLITE_BUSY))
}

/// One statement and its arguments; see [`query`].
pub(crate) struct Query<'q> {
    sql: &'q str,
    args: Vec<Box<dyn ToSql + Send + 'q>>,
}

/// A statement: `$N` in the text is the N-th value bound.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

/// What a statement that returns no rows did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    rows_affected: u64,
}

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl<'q> Query<'q> {
    /// Adds the next argument (`$1`, `$2`, … in binding order).
    pub(crate) fn bind<T: ToSql + Send + 'q>(mut self, value: T) -> Self {
        self.args.push(Box::new(value));
        self
    }

    /// Runs the statement to its end; the rows it changed.
    pub(crate) async fn execute(self, on: impl Exec) -> Result<Done, sqlx::Error> {
        on.run(move |c| {
            let mut stmt = self.prepare(c)?;
            let mut rows = stmt.raw_query();
            while rows.next().map_err(to_sqlx)?.is_some() {}
            Ok(Done {
                rows_affected: c.changes(),
            })
        })
        .await
    }

    /// Every row.
    pub(crate) async fn fetch_all(self, on: impl Exec) -> Result<Vec<LiteRow>, sqlx::Error> {
        on.run(move |c| self.rows(c, usize::MAX)).await
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional(
        self,
        on: impl Exec,
    ) -> Result<Option<LiteRow>, sqlx::Error> {
        on.run(move |c| Ok(self.rows(c, 1)?.pop())).await
    }

    /// The first row; `RowNotFound` when there is none.
    pub(crate) async fn fetch_one(self, on: impl Exec) -> Result<LiteRow, sqlx::Error> {
        self.fetch_optional(on)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    fn prepare<'c>(&self, c: &'c Connection) -> Result<rusqlite::CachedStatement<'c>, sqlx::Error> {
        tracing::trace!(target: "stonepot_store::sql", sql = self.sql, args = self.args.len());
        let mut stmt = c.prepare_cached(self.sql).map_err(to_sqlx)?;
        for i in 1..=stmt.parameter_count() {
            // `$N` (and `?N`) name the N-th argument, wherever they appear; a bare `?`
            // takes its position.
            let n = stmt
                .parameter_name(i)
                .and_then(|name| name.get(1..))
                .and_then(|digits| digits.parse::<usize>().ok())
                .unwrap_or(i);
            let arg = self.args.get(n.wrapping_sub(1)).ok_or_else(|| {
                sqlx::Error::Protocol(format!(
                    "statement needs argument ${n} but {} were bound",
                    self.args.len()
                ))
            })?;
            stmt.raw_bind_parameter(i, &**arg).map_err(to_sqlx)?;
        }
        Ok(stmt)
    }

    fn rows(&self, c: &Connection, limit: usize) -> Result<Vec<LiteRow>, sqlx::Error> {
        let mut stmt = self.prepare(c)?;
        let width = stmt.column_count();
        let mut columns: Option<Arc<[Box<str>]>> = None;
        let mut out = Vec::new();
        let mut rows = stmt.raw_query();
        while out.len() < limit {
            let Some(row) = rows.next().map_err(to_sqlx)? else {
                break;
            };
            let columns = match &columns {
                Some(c) => c.clone(),
                None => {
                    let names: Arc<[Box<str>]> = row
                        .as_ref()
                        .column_names()
                        .into_iter()
                        .map(Box::from)
                        .collect();
                    columns = Some(names.clone());
                    names
                }
            };
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(Value::from(row.get_ref(i).map_err(to_sqlx)?));
            }
            out.push(LiteRow { columns, values });
        }
        Ok(out)
    }
}

/// A row copied out of SQLite.
#[derive(Debug, Clone)]
pub(crate) struct LiteRow {
    columns: Arc<[Box<str>]>,
    values: Vec<Value>,
}

/// A column named or numbered.
pub(crate) trait LiteIndex: std::fmt::Display {
    fn position(&self, columns: &[Box<str>]) -> Option<usize>;
}

impl LiteIndex for &str {
    fn position(&self, columns: &[Box<str>]) -> Option<usize> {
        columns.iter().position(|c| &**c == *self)
    }
}

impl LiteIndex for usize {
    fn position(&self, columns: &[Box<str>]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl LiteRow {
    /// The value of a column, converted as sqlx would (`ColumnNotFound`,
    /// `ColumnDecode`).
    pub(crate) fn try_get<T: FromSql, I: LiteIndex>(&self, index: I) -> Result<T, sqlx::Error> {
        let at = index
            .position(&self.columns)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(index.to_string()))?;
        let value = self
            .values
            .get(at)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(index.to_string()))?;
        T::column_result(ValueRef::from(value)).map_err(|e| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source: Box::new(e),
        })
    }
}

/// SQLite's error as sqlx reports a database's, so callers match one error type on
/// both backends.
pub(crate) fn to_sqlx(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(err, message) => {
            sqlx::Error::Database(Box::new(SqliteError {
                code: err.extended_code,
                message: message.unwrap_or_else(|| err.to_string()),
            }))
        }
        rusqlite::Error::QueryReturnedNoRows => sqlx::Error::RowNotFound,
        rusqlite::Error::ToSqlConversionFailure(e) => sqlx::Error::Encode(e),
        rusqlite::Error::FromSqlConversionFailure(index, _, source) => sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source,
        },
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// An error SQLite returned, with its extended result code.
#[derive(Debug)]
struct SqliteError {
    code: i32,
    message: String,
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteError {}

impl DatabaseError for SqliteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn set() -> SqliteConns {
        SqliteConns::open(None, 1, Duration::from_secs(1)).unwrap()
    }

    #[tokio::test]
    async fn numbered_arguments_bind_by_number_not_position() {
        let db = set();
        let row = query("SELECT $2 AS b, $1 AS a, $2 || $1 AS ba")
            .bind("one")
            .bind("two")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("a").unwrap(), "one");
        assert_eq!(row.try_get::<String, _>("b").unwrap(), "two");
        assert_eq!(row.try_get::<String, _>("ba").unwrap(), "twoone");
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "two");
    }

    #[tokio::test]
    async fn a_missing_argument_or_column_is_an_error_not_a_panic() {
        let db = set();
        let e = query("SELECT $2 AS x").bind(1_i64).fetch_one(&db).await;
        assert!(matches!(e, Err(sqlx::Error::Protocol(m)) if m.contains("$2")));
        let row = query("SELECT 1 AS x").fetch_one(&db).await.unwrap();
        assert!(matches!(
            row.try_get::<i64, _>("y"),
            Err(sqlx::Error::ColumnNotFound(c)) if c == "y"
        ));
        assert!(matches!(
            row.try_get::<String, _>("x"),
            Err(sqlx::Error::ColumnDecode { .. })
        ));
    }

    #[tokio::test]
    async fn constraint_errors_have_sqlx_kinds() {
        let db = set();
        let mut conn = db.acquire().await.unwrap();
        conn.execute_batch(
            "CREATE TABLE p (id INTEGER PRIMARY KEY); \
             CREATE TABLE c (id TEXT PRIMARY KEY, p INTEGER NOT NULL REFERENCES p(id));",
        )
        .unwrap();
        query("INSERT INTO p (id) VALUES (1)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let dup = query("INSERT INTO p (id) VALUES ($1)")
            .bind(1_i64)
            .execute(&mut *conn)
            .await;
        let Err(sqlx::Error::Database(e)) = dup else {
            panic!("{dup:?}")
        };
        assert_eq!(e.kind(), ErrorKind::UniqueViolation);
        let orphan = query("INSERT INTO c (id, p) VALUES ('x', 9)")
            .execute(&mut *conn)
            .await;
        let Err(sqlx::Error::Database(e)) = orphan else {
            panic!("{orphan:?}")
        };
        assert_eq!(e.kind(), ErrorKind::ForeignKeyViolation);
    }

    #[tokio::test]
    async fn changes_returning_and_dropped_transactions() {
        let db = set();
        {
            let conn = db.acquire().await.unwrap();
            conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
                .unwrap();
        }
        let done = query("INSERT INTO t (v) VALUES ('a'), ('b')")
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 2);
        let back = query("UPDATE t SET v = v || '!' RETURNING id")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(back.len(), 2);
        {
            let mut tx = db.begin().await.unwrap();
            query("DELETE FROM t").execute(&mut *tx).await.unwrap();
            // Dropped without commit: rolled back.
        }
        let n: i64 = query("SELECT COUNT(*) AS n FROM t")
            .fetch_one(&db)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(n, 2);
        let none = query("SELECT v FROM t WHERE id = $1")
            .bind(99_i64)
            .fetch_optional(&db)
            .await
            .unwrap();
        assert!(none.is_none());
    }

    #[tokio::test]
    async fn a_lock_held_elsewhere_is_waited_for_without_blocking_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("busy.db");
        let db = SqliteConns::open(Some(&file), 2, Duration::from_secs(1)).unwrap();
        query("CREATE TABLE t (v INTEGER)")
            .execute(&db)
            .await
            .unwrap();
        // Another process's writer.
        let other = Connection::open(&file).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let write = tokio::spawn(async move {
            query("INSERT INTO t (v) VALUES (1)")
                .execute(&db)
                .await
                .unwrap();
            let n: i64 = query("SELECT COUNT(*) FROM t")
                .fetch_one(&db)
                .await
                .unwrap()
                .try_get(0)
                .unwrap();
            n
        });
        // This test's runtime has one thread: the ticks run only if the waiting
        // write yields it.
        let mut ticks = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            ticks += 1;
        }
        assert_eq!(ticks, 20);
        assert!(!write.is_finished(), "the insert went through a held lock");
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(write.await.unwrap(), 1);
    }
}
