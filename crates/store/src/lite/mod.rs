//! SQLite on the calling thread.
//!
//! The store first ran SQLite through sqlx, which gives each connection a thread of its
//! own: every statement was a round trip between a tokio worker and that thread, and
//! every row a message back. Under the orders benchmark two thirds of the server's time
//! went to the kernel switching those threads, and the store's single writer held its
//! write slot for each of those hops.
//!
//! Here statements run on the task's own thread, on connections kept in a small set:
//! a statement against the page cache costs microseconds, less than one thread switch.
//! The SQL text is the same one the PostgreSQL side runs through sqlx (`$N` parameters
//! are bound by their number), and [`query`] is a builder in sqlx's shape, so a store
//! method's body serves both backends (see `with_pool!`). Errors come back as
//! `sqlx::Error` with the database's error kind, so a unique or foreign-key violation
//! reads the same on both backends.
//!
//! A statement runs to its end before the call returns, so nothing of SQLite's is held
//! across an `.await` except a connection, which is only ever used by one task at a time.

mod migrate;
mod query;
mod writer;

pub(crate) use migrate::migrate;
pub(crate) use query::{Exec, query, to_sqlx};

use rusqlite::{Connection, OpenFlags};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Prepared statements kept per connection: the store has about a hundred distinct
/// statements, and preparing one again costs more than running it.
const STATEMENT_CACHE: usize = 256;

/// How long a statement waits for a lock another connection holds (a checkpoint
/// resetting the WAL, or another process) before failing with SQLITE_BUSY. The wait
/// is asynchronous (see `Exec`); SQLite's own busy handler, which sleeps on the calling
/// thread, is off.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Up to `max` connections to one SQLite database.
pub(crate) struct SqliteConns {
    /// The database file; None for a private in-memory database.
    file: Option<std::path::PathBuf>,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    acquire_timeout: Duration,
    /// The connection writes run on, and their batching (see `writer`).
    writer: writer::Writer,
}

impl std::fmt::Debug for SqliteConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConns")
            .field("file", &self.file)
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl SqliteConns {
    /// Opens the first connection now (so a bad path or a locked file is reported at
    /// start-up, and an in-memory database exists from here on) and the rest on demand.
    /// An in-memory database is private to its connection, so it gets exactly one.
    pub(crate) fn open(
        file: Option<&Path>,
        max: usize,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let set = SqliteConns {
            file: file.map(Path::to_path_buf),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(if file.is_some() { max.max(1) } else { 1 }),
            acquire_timeout,
            writer: writer::Writer::new(),
        };
        let first = set.connect()?;
        set.lock_idle().push(first);
        Ok(set)
    }

    fn connect(&self) -> Result<Connection, sqlx::Error> {
        open_connection(self.file.as_deref())
    }

    /// Runs `f` on a connection of its own on a blocking thread, for work that may take
    /// long (a checkpoint's copy and syncs, a backup) and must not hold up a runtime
    /// thread. That connection may wait for locks (SQLite's busy handler, up to
    /// BUSY_TIMEOUT): only its own thread sleeps. An in-memory database has only its
    /// one connection, so there `f` runs on it, here.
    pub(crate) async fn on_side<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, sqlx::Error> + Send + 'static,
    ) -> Result<R, sqlx::Error> {
        let Some(file) = self.file.clone() else {
            let conn = self.acquire().await?;
            return f(&conn);
        };
        tokio::task::spawn_blocking(move || {
            let conn = open_connection(Some(&file))?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(query::to_sqlx)?;
            f(&conn)
        })
        .await
        .map_err(|_| sqlx::Error::WorkerCrashed)?
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
            None => self.connect()?,
        };
        Ok(Conn {
            conn: Some(conn),
            set: self,
            _permit: permit,
        })
    }

    /// Whether the current task's statements go to the writer connection: it is
    /// running a write (see `writer`) on a database file.
    fn routes_to_writer(&self) -> bool {
        self.file.is_some() && writer::in_write(self)
    }

    /// Starts a transaction: inside a write, a savepoint of the write's batch on the
    /// writer connection; otherwise `BEGIN` on a connection of its own (the store's
    /// writes run one at a time, so no `IMMEDIATE` is needed).
    pub(crate) async fn begin(&self) -> Result<Tx<'_>, sqlx::Error> {
        if self.routes_to_writer() {
            self.on_writer(|c| c.execute_batch("SAVEPOINT tx").map_err(query::to_sqlx))
                .await?;
            return Ok(Tx {
                conn: TxConn::Writer(self),
                open: true,
            });
        }
        let conn = self.acquire().await?;
        conn.execute_batch("BEGIN").map_err(query::to_sqlx)?;
        Ok(Tx {
            conn: TxConn::Own(conn),
            open: true,
        })
    }

    /// Closes every idle connection and refuses new acquisitions; connections in use
    /// close when they come back.
    pub(crate) async fn close(&self) {
        self.permits.close();
        self.close_writer();
        let idle = std::mem::take(&mut *self.lock_idle());
        for c in idle {
            if let Err((_, e)) = c.close() {
                tracing::debug!(error = %e, "closing a SQLite connection");
            }
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection to `file` (a private in-memory database for None), set up as the store
/// runs SQLite.
fn open_connection(file: Option<&Path>) -> Result<Connection, sqlx::Error> {
    let conn = match file {
        Some(path) => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ),
        None => Connection::open_in_memory(),
    }
    .map_err(query::to_sqlx)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(Duration::ZERO).map_err(query::to_sqlx)?;
    let pragmas = if file.is_some() {
        // WAL + NORMAL: a commit appends to the WAL without syncing it; the store's
        // group commit (see `durable`) syncs the WAL once for every commit waiting,
        // so an acknowledged commit survives power loss as with FULL, at one fsync
        // per batch. SQLite's automatic checkpoint is off: the store checkpoints
        // from a background task, not inside whichever commit crosses the threshold,
        // and the WAL file is trimmed to the store's WAL_RESET_BYTES when it starts over.
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA foreign_keys = ON;"
    } else {
        "PRAGMA foreign_keys = ON;"
    };
    conn.execute_batch(pragmas).map_err(query::to_sqlx)?;
    if file.is_some() {
        let limit = crate::pool::WAL_RESET_BYTES;
        conn.execute_batch(&format!("PRAGMA journal_size_limit = {limit}"))
            .map_err(query::to_sqlx)?;
    }
    Ok(conn)
}

/// A connection borrowed from [`SqliteConns`]; it goes back when dropped.
pub(crate) struct Conn<'a> {
    conn: Option<Connection>,
    set: &'a SqliteConns,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection left inside a transaction (a caller that returned early) must
        // not carry it to its next user.
        if !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "rolling back a returned SQLite connection; dropping it");
            return;
        }
        if !self.set.permits.is_closed() {
            self.set.lock_idle().push(conn);
        }
    }
}

/// A transaction: rolled back when dropped uncommitted.
pub(crate) struct Tx<'a> {
    conn: TxConn<'a>,
    open: bool,
}

/// Where a transaction's statements run: see [`SqliteConns::begin`].
pub(crate) enum TxConn<'a> {
    /// `BEGIN` … `COMMIT` on a connection of its own.
    Own(Conn<'a>),
    /// A savepoint of the current write's batch on the writer connection.
    Writer(&'a SqliteConns),
}

impl TxConn<'_> {
    async fn end(&mut self, commit: bool) -> Result<(), sqlx::Error> {
        let sql = match (&self, commit) {
            (TxConn::Own(_), true) => "COMMIT",
            (TxConn::Own(_), false) => "ROLLBACK",
            (TxConn::Writer(_), true) => "RELEASE tx",
            (TxConn::Writer(_), false) => "ROLLBACK TO tx; RELEASE tx",
        };
        match self {
            TxConn::Own(c) => c.execute_batch(sql).map_err(query::to_sqlx),
            TxConn::Writer(set) => {
                set.on_writer(|c| c.execute_batch(sql).map_err(query::to_sqlx))
                    .await
            }
        }
    }
}

impl Tx<'_> {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        self.conn.end(true).await
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.open = false;
        self.conn.end(false).await
    }
}

impl<'a> Deref for Tx<'a> {
    type Target = TxConn<'a>;
    fn deref(&self) -> &TxConn<'a> {
        &self.conn
    }
}

impl<'a> DerefMut for Tx<'a> {
    fn deref_mut(&mut self) -> &mut TxConn<'a> {
        &mut self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // A connection of its own rolls back when it goes back to the set (`Conn`'s
        // drop); a savepoint of the writer's batch is rolled back here.
        let TxConn::Writer(set) = &self.conn else {
            return;
        };
        if let Err(e) = set.rollback_savepoint_now("tx") {
            tracing::warn!(error = %e, "rolling back a dropped SQLite transaction");
        }
    }
}
