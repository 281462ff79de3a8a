//! Group commit for a SQLite database file.
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`: a commit appends its pages to the
//! `-wal` file and returns without syncing it. Before a write is acknowledged,
//! [`GroupCommit::barrier`] makes sure a `fdatasync` of the WAL has completed *after* that
//! commit. Syncs run one at a time; a writer that finds one already running waits for the
//! next, which then covers every commit made up to its start. Under load, N concurrent
//! writers share one sync instead of paying N in a row (SQLite's `FULL` mode syncs inside
//! each commit, while holding the only write slot).
//!
//! Why this keeps FULL's guarantee: `fsync` on Linux flushes the file's dirty pages
//! whichever descriptor wrote them, so syncing our own descriptor of the WAL after a
//! commit returned covers that commit's frames (and a restarted WAL's new header). What
//! a power cut can take back is only commits not yet acknowledged; SQLite's recovery
//! stops at the first frame whose checksum fails, so it never half-applies one.

use crate::{Result, StoreError};
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct GroupCommit {
    wal: PathBuf,
    db: PathBuf,
    /// Commits made so far (a ticket per write).
    committed: AtomicU64,
    /// Every commit with a ticket at or below this is on disk.
    synced: AtomicU64,
    /// Held by the one sync in flight.
    syncing: tokio::sync::Mutex<()>,
    /// Syncs performed (for tests and benchmarks: commits / syncs is the batching).
    syncs: AtomicU64,
}

impl GroupCommit {
    pub(crate) fn new(db: &Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        GroupCommit {
            wal: PathBuf::from(wal),
            db: db.to_path_buf(),
            committed: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
            syncs: AtomicU64::new(0),
        }
    }

    /// Counts a finished commit; the ticket to wait on.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once the commit holding `ticket` is on disk.
    pub(crate) async fn barrier(&self, ticket: u64) -> Result<()> {
        if self.synced.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let _turn = self.syncing.lock().await;
        if self.synced.load(Ordering::Acquire) >= ticket {
            // The sync we queued behind started after our commit.
            return Ok(());
        }
        // Read before syncing: every commit counted here has returned, so its pages are
        // in the WAL and the sync below covers them.
        let target = self.committed.load(Ordering::Acquire);
        let (wal, db) = (self.wal.clone(), self.db.clone());
        tokio::task::spawn_blocking(move || sync(&wal, &db))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))??;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.synced.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// (commits, syncs) so far.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.committed.load(Ordering::Relaxed),
            self.syncs.load(Ordering::Relaxed),
        )
    }
}

/// Syncs the WAL's data; with no WAL (SQLite removes it when its last connection
/// closes, after checkpointing it into the database) the database file instead.
fn sync(wal: &Path, db: &Path) -> std::io::Result<()> {
    match File::open(wal) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == ErrorKind::NotFound => File::open(db)?.sync_data(),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_writers_share_syncs_and_each_waits_for_one_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"x").unwrap();
        std::fs::write(dir.path().join("x.db-wal"), b"wal").unwrap();
        let g = Arc::new(GroupCommit::new(&db));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let g = g.clone();
            tasks.push(tokio::spawn(async move {
                let ticket = g.committed();
                g.barrier(ticket).await.unwrap();
                assert!(g.synced.load(Ordering::Acquire) >= ticket);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let (commits, syncs) = g.stats();
        assert_eq!(commits, 64);
        assert!((1..=64).contains(&syncs), "{syncs}");
        // Nothing new committed: waiting again costs no sync.
        g.barrier(64).await.unwrap();
        assert_eq!(g.stats().1, syncs);
    }

    #[tokio::test]
    async fn a_missing_wal_syncs_the_database_and_a_missing_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("y.db");
        let g = GroupCommit::new(&db);
        let t = g.committed();
        assert!(matches!(g.barrier(t).await, Err(StoreError::Io(_))));
        std::fs::write(&db, b"y").unwrap();
        let t = g.committed();
        g.barrier(t).await.unwrap();
    }
}
