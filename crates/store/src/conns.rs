//! The SQLite connections of a store, without sqlx's pool.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is a
//! round trip between a tokio worker and that thread (two context switches). sqlx's
//! pool adds a second round trip each time a connection goes back: it sends the
//! connection's thread a `ping` before it is reused. Most of the store's reads are one
//! statement, so that ping doubled their cost; under the orders benchmark, switching
//! threads was the largest single item in the server's profile.
//!
//! A local SQLite file cannot drop a connection the way a network database can, and
//! sqlx's SQLite connection already recovers from a cancelled caller by itself: its
//! thread runs commands in order, rolls back a `BEGIN` nobody received, and a dropped
//! transaction queues its rollback before the connection's next command. So this set
//! simply hands connections out and takes them back; it holds at most `max` of them,
//! opening them on demand and keeping them for the life of the store.
//!
//! [`SqliteConns`] is an [`Executor`] like sqlx's pool (each statement borrows a
//! connection for its duration) and [`SqliteConns::begin`] gives a [`Tx`] that holds one
//! for a whole transaction, so the store's SQL reads the same on both backends.

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement,
    SqliteTypeInfo,
};
use sqlx::{
    ConnectOptions, Connection, Database, Describe, Either, Execute, Executor, Sqlite,
    TransactionManager,
};
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

type Manager = <Sqlite as Database>::TransactionManager;

/// Up to `max` connections to one SQLite database.
#[derive(Debug)]
pub(crate) struct SqliteConns {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Semaphore,
    acquire_timeout: Duration,
}

impl SqliteConns {
    /// Opens the first connection now (so a bad path or a locked file is reported at
    /// start-up, and an in-memory database exists from here on) and the rest on demand.
    pub(crate) async fn open(
        options: SqliteConnectOptions,
        max: usize,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let first = options.connect().await?;
        Ok(SqliteConns {
            options,
            idle: Mutex::new(vec![first]),
            permits: Semaphore::new(max.max(1)),
            acquire_timeout,
        })
    }

    /// Waits for a free connection (opening one if fewer than `max` exist).
    pub(crate) async fn acquire(&self) -> Result<Conn<'_>, sqlx::Error> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await
        {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let idle = self.lock_idle().pop();
        let conn = match idle {
            Some(c) => c,
            None => self.options.connect().await?,
        };
        Ok(Conn {
            conn: Some(conn),
            set: self,
            _permit: permit,
        })
    }

    /// Starts a transaction on a connection of its own (`BEGIN`; the store's writes run
    /// one at a time under its write lock, so no `IMMEDIATE` is needed).
    pub(crate) async fn begin(&self) -> Result<Tx<'_>, sqlx::Error> {
        let mut conn = self.acquire().await?;
        Manager::begin(&mut conn, None).await?;
        Ok(Tx { conn, open: true })
    }

    /// Closes every idle connection and refuses new acquisitions; connections in use
    /// close when they come back.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.lock_idle());
        for c in idle {
            if let Err(e) = c.close().await {
                tracing::debug!(error = %e, "closing a SQLite connection");
            }
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection borrowed from [`SqliteConns`]; it goes back when dropped.
pub(crate) struct Conn<'a> {
    conn: Option<SqliteConnection>,
    set: &'a SqliteConns,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Conn<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            && !self.set.permits.is_closed()
        {
            self.set.lock_idle().push(c);
        }
    }
}

/// A transaction holding its connection until [`Tx::commit`] or [`Tx::rollback`];
/// dropped while open, it rolls back (queued before the connection's next command).
pub(crate) struct Tx<'a> {
    conn: Conn<'a>,
    open: bool,
}

impl Tx<'_> {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        Manager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        Manager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            Manager::start_rollback(&mut self.conn);
        }
    }
}

impl<'p> Executor<'p> for &'p SqliteConns {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        // The rows are collected while the connection is held, then streamed: the
        // store's statements return a handful of rows, and a connection is never
        // left lent to a half-read stream.
        futures::stream::once(async move {
            let mut conn = self.acquire().await?;
            let all: Vec<_> = conn.fetch_many(query).try_collect().await?;
            Ok::<_, sqlx::Error>(futures::stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            conn.fetch_optional(query).await
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<SqliteStatement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            conn.prepare_with(sql, parameters).await
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Sqlite>, sqlx::Error>>
    where
        'p: 'e,
    {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            conn.describe(sql).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;
    use std::str::FromStr;

    async fn memory() -> SqliteConns {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        SqliteConns::open(opts, 1, Duration::from_millis(200))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_statement_borrows_and_returns_the_one_connection() {
        let db = memory().await;
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&db)
            .await
            .unwrap();
        for i in 0..3 {
            sqlx::query("INSERT INTO t VALUES ($1)")
                .bind(i)
                .execute(&db)
                .await
                .unwrap();
        }
        // Same in-memory database each time: the connection came back every time.
        let rows = sqlx::query("SELECT x FROM t ORDER BY x")
            .fetch_all(&db)
            .await
            .unwrap();
        let xs: Vec<i64> = rows.iter().map(|r| r.get("x")).collect();
        assert_eq!(xs, vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn a_dropped_transaction_rolls_back_and_a_committed_one_stays() {
        let db = memory().await;
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&db)
            .await
            .unwrap();
        {
            let mut tx = db.begin().await.unwrap();
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let n: i64 = sqlx::query("SELECT SUM(x) AS n FROM t")
            .fetch_one(&db)
            .await
            .unwrap()
            .get("n");
        assert_eq!(
            n, 2,
            "the dropped transaction's row is gone, the committed one stays"
        );
    }

    #[tokio::test]
    async fn a_busy_set_times_out_and_a_closed_one_refuses() {
        let db = memory().await;
        let held = db.acquire().await.unwrap();
        assert!(matches!(
            db.acquire().await.err(),
            Some(sqlx::Error::PoolTimedOut)
        ));
        drop(held);
        assert!(db.acquire().await.is_ok());
        db.close().await;
        assert!(matches!(
            db.acquire().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
    }
}
