//! Connecting, migrating and health-checking either backend.

use crate::lite::SqliteConns;
use crate::{Counts, Result, StoreError, with_pool};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum AnyPool {
    Sqlite(std::sync::Arc<SqliteConns>),
    Postgres(PgPool),
}

/// A handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// The connection url with any password removed (for logs and errors).
    url_redacted: String,
    /// Where the SQLite file lives (None for PostgreSQL and in-memory databases).
    sqlite_path: Option<PathBuf>,
    /// The url as given, kept for `pg_dump`/`pg_restore`; never logged.
    url: String,
    /// The group commit of a SQLite database file (None for PostgreSQL and memory).
    durable: Option<std::sync::Arc<crate::durable::GroupCommit>>,
    /// Menus read, by version (see `menu_with_version`).
    pub(crate) menus: std::sync::Arc<crate::menu::MenuCache>,
    /// Tenants read recently (see `tenant`).
    pub(crate) tenants: std::sync::Arc<crate::tenants::TenantCache>,
}

/// The SQLite file a `sqlite:` url names, or None for an in-memory database.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

fn redact(url: &str) -> String {
    // postgres://user:password@host/db → postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl Store {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:`, `postgres://…`), creating
    /// the SQLite file and its directory when missing. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let url_redacted = redact(url);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(format!("{url_redacted}: {e}")))?
                .log_statements(tracing::log::LevelFilter::Trace)
                .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(3))
                .connect_with(opts)
                .await?;
            return Ok(Store {
                pool: AnyPool::Postgres(pool),
                url_redacted,
                sqlite_path: None,
                url: url.to_string(),
                durable: None,
                menus: Default::default(),
                tenants: Default::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::BadUrl(format!(
                "{url_redacted}: expected sqlite://PATH or postgres://…"
            )));
        }
        let file = sqlite_file(url);
        if let Some(parent) = file.as_deref().and_then(Path::parent)
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        // Checked as sqlx would, so a malformed url is refused up front.
        SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{url_redacted}: {e}")))?;
        // A file gets a few connections (readers run beside the one writer); an
        // in-memory database is private to its connection and gets exactly one. See
        // `lite` for the settings and why SQLite runs on the calling thread.
        let pool = SqliteConns::open(file.as_deref(), 8, Duration::from_secs(5))?;
        Ok(Store {
            pool: AnyPool::Sqlite(std::sync::Arc::new(pool)),
            url_redacted,
            url: url.to_string(),
            durable: file
                .as_deref()
                .map(|f| std::sync::Arc::new(crate::durable::GroupCommit::new(f))),
            sqlite_path: file,
            menus: Default::default(),
            tenants: Default::default(),
        })
    }

    /// Applies this backend's pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            AnyPool::Sqlite(p) => {
                crate::lite::migrate(p, &sqlx::migrate!("./migrations/sqlite")).await?
            }
            AnyPool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            AnyPool::Sqlite(_) => Backend::Sqlite,
            AnyPool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The url with its password masked.
    pub fn url_redacted(&self) -> &str {
        &self.url_redacted
    }

    /// Runs one write. On SQLite the writes run one at a time on one connection, batched
    /// into shared transactions while writers queue (see `lite::writer`); the write
    /// returns once its batch has committed and, for a database file, once that commit
    /// is on disk, so a caller never acknowledges a write a power cut could take back.
    /// The wait for the disk is a group commit (see [`crate::durable`]): one sync covers
    /// every commit made before it started. PostgreSQL needs neither: its row locks
    /// order writers and its own commit is durable.
    pub(crate) async fn write<T, E: From<StoreError>>(
        &self,
        f: impl AsyncFnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        match self.pool {
            AnyPool::Sqlite(ref p) => {
                let out = p.write(f).await;
                if let Some(d) = &self.durable {
                    // A failed write may have committed part of its work (a retried
                    // insert after an earlier commit): sync in every case.
                    let ticket = d.committed();
                    d.barrier(ticket).await?;
                }
                out
            }
            AnyPool::Postgres(_) => f().await,
        }
    }

    /// (writes, commits) of SQLite's batched writes so far: how many writes one
    /// transaction carried (see `lite::writer`). None on PostgreSQL.
    pub fn write_batch_stats(&self) -> Option<(u64, u64)> {
        match &self.pool {
            AnyPool::Sqlite(p) => Some(p.batch_stats()),
            AnyPool::Postgres(_) => None,
        }
    }

    /// (commits, syncs) of the SQLite group commit so far; None without one.
    pub fn group_commit_stats(&self) -> Option<(u64, u64)> {
        self.durable.as_ref().map(|d| d.stats())
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite database file, when there is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// A real round trip through the schema, for `/health`.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, |p| {
            query("SELECT COUNT(*) AS n FROM tenants WHERE id = $1")
                .bind("health-probe")
                .fetch_one(p)
                .await?;
        });
        Ok(())
    }

    /// Row counts of the main tables.
    pub async fn counts(&self) -> Result<Counts> {
        let sql = "SELECT (SELECT COUNT(*) FROM tenants) AS tenants, \
                   (SELECT COUNT(*) FROM menu_items) AS items, \
                   (SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL) AS keys";
        with_pool!(self, |p| {
            let row = query(sql).fetch_one(p).await?;
            Ok(Counts {
                tenants: row.try_get("tenants")?,
                menu_items: row.try_get("items")?,
                api_keys: row.try_get("keys")?,
            })
        })
    }

    /// Copies committed WAL pages into the SQLite database file (a no-op on PostgreSQL).
    /// The server calls this every second because SQLite's own automatic checkpoint is
    /// turned off to keep it out of the commit path. Usually a PASSIVE checkpoint, which
    /// never blocks writers; but under steady load a PASSIVE checkpoint never catches the
    /// WAL's end, so SQLite never starts the WAL over and it grows without bound (1.3 GB
    /// in 35 s of the orders benchmark). Once the WAL holds more than
    /// [`WAL_RESET_BYTES`] of frames the checkpoint runs RESTART inside the write slot:
    /// no commit can start meanwhile, readers finish (its busy handler waits for them),
    /// and the next commit writes the WAL from its start again, over the old frames. The
    /// file keeps its size (SQLite's `journal_size_limit` trims it to the limit): writing
    /// over allocated blocks is cheaper than growing a truncated file again, for the
    /// commit and for each sync of it.
    pub async fn checkpoint(&self) -> Result<()> {
        self.checkpoint_past(WAL_RESET_BYTES).await
    }

    /// [`Store::checkpoint`], starting the WAL over once its frames hold more than
    /// `limit` bytes.
    pub async fn checkpoint_past(&self, limit: u64) -> Result<()> {
        let AnyPool::Sqlite(p) = &self.pool else {
            return Ok(());
        };
        if self.sqlite_path.is_none() {
            return Ok(());
        }
        let p: &SqliteConns = p;
        // On a connection of its own on a blocking thread: a checkpoint copies pages and
        // syncs the database file, which must not stall a runtime thread.
        let in_use = p
            .on_side(|c| {
                let page: i64 = c
                    .query_row("PRAGMA page_size", [], |r| r.get(0))
                    .map_err(crate::lite::to_sqlx)?;
                // (busy, frames in the WAL, frames checkpointed)
                let frames: i64 = c
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                    .map_err(crate::lite::to_sqlx)?;
                // Each frame is a page and a 24-byte header.
                Ok(u64::try_from(frames.max(0) * (page + 24)).unwrap_or(u64::MAX))
            })
            .await?;
        if in_use > limit {
            p.exclusive(async || {
                p.on_side(|c| {
                    c.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                        .map_err(crate::lite::to_sqlx)
                })
                .await
            })
            .await?;
        }
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await)
    }
}

/// WAL frames (bytes) past which [`Store::checkpoint`] starts the WAL over; also the
/// size SQLite trims the WAL file to when it starts over.
pub const WAL_RESET_BYTES: u64 = 64 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/stonepot.db"),
            Some(PathBuf::from("./data/stonepot.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/x.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://x"), None);
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }
}
