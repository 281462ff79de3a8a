//! Writes on one connection, batched into shared transactions while writers queue.
//!
//! SQLite has one writer at a time, and each commit appends every page it dirtied to
//! the WAL. An order's writes touch the same few pages again and again (the newest
//! leaf of each table and index, the session row its display updates move), so
//! committing each write alone wrote those pages once per write: under the orders
//! benchmark, appending WAL frames was a fifth of the server's time.
//!
//! Every write runs on one connection, the writer, inside a savepoint of a transaction
//! that stays open while other writers are queued for the slot: the last writer of a
//! queue commits (or the first to find the batch 2 ms old), and one commit carries every
//! write of the batch, each hot page once.
//! With nobody queued a write commits at once, as before. A write that fails rolls back
//! its savepoint only; a commit that fails fails every write of its batch. No write
//! returns before the commit that holds it, so nothing is acknowledged (or read back by
//! its caller) before it is committed; the group commit then makes it durable.
//!
//! Statements a write's task runs go to the writer while it holds the slot (a task-local
//! marks it); a transaction begun there is a savepoint of the batch.

use super::SqliteConns;
use super::query::{retry_busy, to_sqlx};
use crate::StoreError;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

tokio::task_local! {
    /// Set while a task runs a write, to the address of the connection set it writes
    /// to: that set's statements go to its writer connection.
    static WRITING: usize;
}

/// Whether the current task is running a batched write on `set`.
pub(crate) fn in_write(set: &SqliteConns) -> bool {
    WRITING
        .try_with(|at| *at == std::ptr::from_ref(set) as usize)
        .unwrap_or(false)
}

/// How long a writer that left its batch open for the next one waits for that commit
/// before taking the slot back to commit the batch itself (the next writer may have
/// been cancelled while it queued).
const HANDOFF_WAIT: Duration = Duration::from_millis(5);

/// Failed batches remembered for their writers to find.
const FAILURES_KEPT: usize = 64;

pub(crate) struct Writer {
    /// The connection every write runs on; opened with the first write.
    conn: Mutex<Option<Connection>>,
    /// The write slot, and the open batch (its id) if any.
    slot: tokio::sync::Mutex<Batch>,
    /// Writers waiting for the slot.
    queued: AtomicUsize,
    /// The id of the latest batch finished (committed or failed).
    finished: watch::Sender<u64>,
    /// Recent batches whose commit failed, with why.
    failures: Mutex<VecDeque<(u64, String)>>,
    /// Writes run and batches committed (writes per commit is the batching).
    writes: AtomicU64,
    commits: AtomicU64,
}

#[derive(Default)]
struct Batch {
    /// Ids handed out so far; the open batch, if any, has the last one.
    last: u64,
    /// When the open batch began; None with no batch open.
    began: Option<Instant>,
}

impl Batch {
    fn open(&self) -> bool {
        self.began.is_some()
    }
}

/// A batch commits once this old even while writers are still queued, so under steady
/// load the first writer of a batch waits for a few more, not for the queue to drain.
const MAX_BATCH_AGE: Duration = Duration::from_millis(2);

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            conn: Mutex::new(None),
            slot: tokio::sync::Mutex::new(Batch::default()),
            queued: AtomicUsize::new(0),
            finished: watch::Sender::new(0),
            failures: Mutex::new(VecDeque::new()),
            writes: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }
}

/// Decrements the queue count when a queued writer gets the slot or gives up.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The slot held by a write in progress. Dropped before the write finished (its task
/// was cancelled), it rolls the write's savepoint back and, with nobody queued,
/// commits the rest of the batch, whose writers are waiting for it.
struct Held<'a> {
    set: &'a SqliteConns,
    slot: tokio::sync::MutexGuard<'a, Batch>,
    armed: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let set = self.set;
        let rolled =
            set.writer_now(|c| c.execute_batch("ROLLBACK TO w; RELEASE w").map_err(to_sqlx));
        if set.writer.queued.load(Ordering::Acquire) == 0 && self.slot.open() {
            let committed = rolled
                .and_then(|()| set.writer_now(|c| c.execute_batch("COMMIT").map_err(to_sqlx)));
            set.settle(&mut self.slot, committed);
        }
    }
}

impl SqliteConns {
    /// Runs `f` on the writer connection now (no retry), opening it if needed.
    fn writer_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, sqlx::Error>,
    ) -> Result<R, sqlx::Error> {
        // Closed with the set: later statements fail, as on any of its connections.
        if self.permits.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let mut conn = self.writer.conn.lock().unwrap_or_else(|p| p.into_inner());
        let c = match &mut *conn {
            Some(c) => c,
            empty @ None => empty.insert(self.connect()?),
        };
        f(c)
    }

    /// Rolls a savepoint back at once (a transaction dropped uncommitted).
    pub(crate) fn rollback_savepoint_now(&self, name: &str) -> Result<(), sqlx::Error> {
        self.writer_now(|c| {
            c.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
                .map_err(to_sqlx)
        })
    }

    /// Closes the writer connection (a batch still open is rolled back by SQLite).
    pub(crate) fn close_writer(&self) {
        let conn = self
            .writer
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(c) = conn
            && let Err((_, e)) = c.close()
        {
            tracing::debug!(error = %e, "closing the SQLite writer connection");
        }
    }

    /// Runs a statement on the writer connection, waiting out (asynchronously) a lock
    /// another process holds, as every statement does (see `retry_busy`).
    pub(crate) async fn on_writer<R>(
        &self,
        f: impl Fn(&Connection) -> Result<R, sqlx::Error>,
    ) -> Result<R, sqlx::Error> {
        retry_busy(move || self.writer_now(&f)).await
    }

    /// Runs one write in the current batch (see the module's docs); returns once the
    /// batch holding it has committed. An in-memory database has one connection for
    /// everything, so there each write simply runs alone under the slot.
    pub(crate) async fn write<T, E: From<StoreError>>(
        &self,
        f: impl AsyncFnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if self.file.is_none() {
            let _slot = self.writer.slot.lock().await;
            return f().await;
        }
        self.writer.queued.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(&self.writer.queued);
        let mut slot = self.writer.slot.lock().await;
        drop(queued);
        if !slot.open() {
            self.on_writer(|c| c.execute_batch("BEGIN IMMEDIATE").map_err(to_sqlx))
                .await
                .map_err(StoreError::from)?;
            slot.last += 1;
            slot.began = Some(Instant::now());
        }
        let batch = slot.last;
        if let Err(e) = self
            .on_writer(|c| c.execute_batch("SAVEPOINT w").map_err(to_sqlx))
            .await
        {
            return Err(self.abandon(&mut slot, batch, e).into());
        }
        let mut held = Held {
            set: self,
            slot,
            armed: true,
        };
        self.writer.writes.fetch_add(1, Ordering::Relaxed);
        let out = WRITING.scope(std::ptr::from_ref(self) as usize, f()).await;
        held.armed = false;
        let end = if out.is_ok() {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        let ended = self
            .on_writer(|c| c.execute_batch(end).map_err(to_sqlx))
            .await;
        // SQLite rolls a whole transaction back on some errors (a full disk, an I/O
        // error): then the batch is gone, for every writer in it.
        let aborted = self.writer_now(|c| Ok(c.is_autocommit())).unwrap_or(true);
        if let Err(e) = ended {
            return Err(self.abandon(&mut held.slot, batch, e).into());
        }
        if aborted {
            let e = sqlx::Error::Protocol("the transaction was rolled back by SQLite".into());
            return Err(self.abandon(&mut held.slot, batch, e).into());
        }
        let old = held
            .slot
            .began
            .is_some_and(|t| t.elapsed() >= MAX_BATCH_AGE);
        if old || self.writer.queued.load(Ordering::Acquire) == 0 {
            self.commit(&mut held.slot).await;
        }
        drop(held);
        self.committed(batch).await?;
        out
    }

    /// Runs `f` alone, with no batch open and outside the writer (a checkpoint that
    /// resets the WAL): any open batch is committed first.
    pub(crate) async fn exclusive<T>(&self, f: impl AsyncFnOnce() -> T) -> T {
        let mut slot = self.writer.slot.lock().await;
        if slot.open() {
            self.commit(&mut slot).await;
        }
        f().await
    }

    /// Commits the open batch and tells its writers.
    async fn commit(&self, slot: &mut Batch) {
        let committed = self
            .on_writer(|c| c.execute_batch("COMMIT").map_err(to_sqlx))
            .await;
        self.settle(slot, committed);
    }

    /// Closes the open batch after its `COMMIT`: done, or abandoned for every writer
    /// in it; either way its writers are told.
    fn settle(&self, slot: &mut Batch, committed: Result<(), sqlx::Error>) {
        let batch = slot.last;
        match committed {
            Ok(()) => {
                slot.began = None;
                self.writer.commits.fetch_add(1, Ordering::Relaxed);
                self.finish(batch);
            }
            Err(e) => {
                self.abandon(slot, batch, e);
            }
        }
    }

    /// (writes, commits) so far: how many writes a commit carried.
    pub(crate) fn batch_stats(&self) -> (u64, u64) {
        (
            self.writer.writes.load(Ordering::Relaxed),
            self.writer.commits.load(Ordering::Relaxed),
        )
    }

    /// Rolls the open batch back after `e`, records it as failed and tells its writers;
    /// returns the error for the writer that met it.
    fn abandon(&self, slot: &mut Batch, batch: u64, e: sqlx::Error) -> StoreError {
        let _ = self.writer_now(|c| {
            if !c.is_autocommit() {
                c.execute_batch("ROLLBACK").map_err(to_sqlx)?;
            }
            Ok(())
        });
        slot.began = None;
        {
            let mut failures = self
                .writer
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if failures.len() >= FAILURES_KEPT {
                failures.pop_front();
            }
            failures.push_back((batch, e.to_string()));
        }
        self.finish(batch);
        StoreError::Db(e)
    }

    fn finish(&self, batch: u64) {
        self.writer.finished.send_if_modified(|f| {
            let newer = batch > *f;
            if newer {
                *f = batch;
            }
            newer
        });
    }

    /// Waits until `batch` has finished; an error if it failed.
    async fn committed(&self, batch: u64) -> Result<(), StoreError> {
        let mut rx = self.writer.finished.subscribe();
        loop {
            let finished = tokio::time::timeout(HANDOFF_WAIT, rx.wait_for(|f| *f >= batch))
                .await
                .is_ok();
            if finished {
                break;
            }
            // Nobody committed it in time: take the slot and commit it here.
            let mut slot = self.writer.slot.lock().await;
            if slot.open() && slot.last == batch {
                self.commit(&mut slot).await;
            }
        }
        let failures = self
            .writer
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match failures.iter().find(|(b, _)| *b == batch) {
            Some((_, why)) => Err(StoreError::Db(sqlx::Error::Protocol(format!(
                "the write was rolled back with its batch: {why}"
            )))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::query;
    use super::*;
    use std::sync::Arc;

    async fn set(dir: &tempfile::TempDir) -> Arc<SqliteConns> {
        let set =
            SqliteConns::open(Some(&dir.path().join("w.db")), 4, Duration::from_secs(5)).unwrap();
        set.write(async || {
            query("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
                .execute(&set)
                .await
                .map_err(StoreError::from)
        })
        .await
        .unwrap();
        Arc::new(set)
    }

    async fn count(set: &SqliteConns) -> i64 {
        query("SELECT COUNT(*) FROM t")
            .fetch_one(set)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    async fn keys(set: &SqliteConns) -> Vec<String> {
        query("SELECT k FROM t ORDER BY k")
            .fetch_all(set)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("k").unwrap())
            .collect()
    }

    async fn insert(set: &SqliteConns, k: &str) -> Result<(), StoreError> {
        let k = k.to_string();
        set.write(async || {
            // Two statements, so a batch interleaves with writes mid-way.
            query("INSERT INTO t (k, v) VALUES ($1, 0)")
                .bind(k.clone())
                .execute(set)
                .await?;
            tokio::task::yield_now().await;
            query("UPDATE t SET v = v + 1 WHERE k = $1")
                .bind(k.clone())
                .execute(set)
                .await?;
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_share_commits_and_each_is_visible_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir).await;
        let (writes0, commits0) = set.batch_stats();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let set = Arc::clone(&set);
            tasks.push(tokio::spawn(async move {
                insert(&set, &format!("k{i}")).await.unwrap();
                // Returned: committed, so a reader on another connection sees it.
                let v: i64 = query("SELECT v FROM t WHERE k = $1")
                    .bind(format!("k{i}"))
                    .fetch_one(&*set)
                    .await
                    .unwrap()
                    .try_get(0)
                    .unwrap();
                assert_eq!(v, 1);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(count(&set).await, 200);
        let (writes, commits) = set.batch_stats();
        assert_eq!(writes - writes0, 200);
        assert!(
            commits - commits0 < 200,
            "{} commits for 200 queued writes",
            commits - commits0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir).await;
        let mut tasks = Vec::new();
        for i in 0..60 {
            let set = Arc::clone(&set);
            tasks.push(tokio::spawn(async move {
                // Every third key is a duplicate of the one before: its first insert
                // fails, and so does that write, whole.
                let k = format!("k{}", i - i % 3 + usize::from(i % 3 == 2));
                (i, insert(&set, &k).await)
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let (_, r) = t.await.unwrap();
            if r.is_ok() {
                ok += 1;
            }
        }
        assert_eq!(count(&set).await, ok);
        // No half-applied write: every row went through both statements.
        let half: i64 = query("SELECT COUNT(*) FROM t WHERE v <> 1")
            .fetch_one(&*set)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(half, 0);
        assert_eq!(ok, 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_inner_transaction_rolls_back_to_its_savepoint() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir).await;
        set.write(async || {
            query("INSERT INTO t (k, v) VALUES ('kept', 1)")
                .execute(&*set)
                .await?;
            let mut tx = set.begin().await?;
            query("INSERT INTO t (k, v) VALUES ('dropped', 1)")
                .execute(&mut *tx)
                .await?;
            tx.rollback().await?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let keys = keys(&set).await;
        assert_eq!(keys, ["kept"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_cancelled_midway_leaves_nothing_and_blocks_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(&dir).await;
        let stuck = {
            let set = Arc::clone(&set);
            tokio::spawn(async move {
                set.write(async || {
                    query("INSERT INTO t (k, v) VALUES ('cancelled', 1)")
                        .execute(&*set)
                        .await?;
                    std::future::pending::<()>().await;
                    Ok::<_, StoreError>(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let queued = {
            let set = Arc::clone(&set);
            tokio::spawn(async move { insert(&set, "after").await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        stuck.abort();
        let _ = stuck.await;
        tokio::time::timeout(Duration::from_secs(2), queued)
            .await
            .expect("the queued write went through")
            .unwrap()
            .unwrap();
        let keys = keys(&set).await;
        assert_eq!(keys, ["after"]);
    }
}
