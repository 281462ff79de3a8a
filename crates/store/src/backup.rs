//! Online backup and restore.
//!
//! SQLite: `VACUUM INTO` writes a consistent snapshot while the server keeps serving;
//! restore migrates a copy of the backup to the current schema and swaps every table's
//! rows in one transaction. PostgreSQL: `pg_dump`/`pg_restore` in custom format.

use crate::lite::query;
use crate::pool::AnyPool;
use crate::{Store, StoreError};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Why a backup or restore failed, worded for an operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "{tool} was not found on PATH; install the PostgreSQL client tools (Debian: apt-get install postgresql-client)"
    )]
    ToolMissing { tool: &'static str },
    #[error("{tool} failed: {stderr}")]
    ToolFailed { tool: &'static str, stderr: String },
    #[error("{0} already exists; refusing to overwrite a file")]
    Exists(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{path} is not a Stonepot SQLite backup: {why}")]
    NotABackup { path: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError::Store(StoreError::Db(e))
    }
}

/// What a backup or restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub backend: &'static str,
    pub path: PathBuf,
    pub bytes: u64,
    /// Tables copied (SQLite restore only).
    pub tables: Vec<String>,
}

fn sql_string(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "''"))
}

async fn run_tool(tool: &'static str, args: &[&str]) -> Result<(), BackupError> {
    let out = Command::new(tool).args(args).output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BackupError::ToolMissing { tool }
        } else {
            BackupError::Io(e)
        }
    })?;
    if !out.status.success() {
        return Err(BackupError::ToolFailed {
            tool,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl Store {
    /// Writes a consistent copy of the whole database to `out` (which must not exist).
    pub async fn backup(&self, out: &Path) -> Result<BackupReport, BackupError> {
        if out.exists() {
            return Err(BackupError::Exists(out.to_path_buf()));
        }
        if let Some(parent) = out.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        match &self.pool {
            AnyPool::Sqlite(p) => {
                // A whole copy of the database: on a thread of its own (see `on_side`).
                let sql = format!("VACUUM INTO {}", sql_string(out));
                p.on_side(move |c| c.execute_batch(&sql).map_err(crate::lite::to_sqlx))
                    .await?;
            }
            AnyPool::Postgres(_) => {
                let file = out.to_string_lossy();
                run_tool(
                    "pg_dump",
                    &["--format=custom", "--file", &file, "--dbname", self.url()],
                )
                .await?;
            }
        }
        Ok(BackupReport {
            backend: self.backend().as_str(),
            path: out.to_path_buf(),
            bytes: std::fs::metadata(out)?.len(),
            tables: Vec::new(),
        })
    }

    /// Replaces the database's contents with those of a backup made by [`Store::backup`].
    pub async fn restore(&self, from: &Path) -> Result<BackupReport, BackupError> {
        if !from.is_file() {
            return Err(BackupError::Missing(from.to_path_buf()));
        }
        let bytes = std::fs::metadata(from)?.len();
        match &self.pool {
            AnyPool::Postgres(_) => {
                let file = from.to_string_lossy();
                run_tool(
                    "pg_restore",
                    &[
                        "--clean",
                        "--if-exists",
                        "--no-owner",
                        "--single-transaction",
                        "--dbname",
                        self.url(),
                        &file,
                    ],
                )
                .await?;
                Ok(BackupReport {
                    backend: "postgres",
                    path: from.to_path_buf(),
                    bytes,
                    tables: Vec::new(),
                })
            }
            AnyPool::Sqlite(p) => {
                let tables = self.restore_sqlite(p, from).await?;
                Ok(BackupReport {
                    backend: "sqlite",
                    path: from.to_path_buf(),
                    bytes,
                    tables,
                })
            }
        }
    }

    async fn restore_sqlite(
        &self,
        pool: &crate::lite::SqliteConns,
        from: &Path,
    ) -> Result<Vec<String>, BackupError> {
        // Work on a copy so the backup file itself is never modified, and bring the copy
        // to this binary's schema first.
        let staging = std::env::temp_dir().join(format!(
            "stonepot-restore-{}-{}.db",
            std::process::id(),
            crate::now_ms()
        ));
        std::fs::copy(from, &staging)?;
        let result = async {
            let copy = Store::connect(&format!("sqlite://{}", staging.display()))
                .await
                .map_err(|e| BackupError::NotABackup {
                    path: from.to_path_buf(),
                    why: e.to_string(),
                })?;
            let has_schema = match &copy.pool {
                AnyPool::Sqlite(cp) => query(
                    "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(&**cp)
                .await
                .and_then(|r| r.try_get::<i64, _>("n"))
                .map_err(|e| BackupError::NotABackup {
                    path: from.to_path_buf(),
                    why: e.to_string(),
                })?,
                AnyPool::Postgres(_) => 0,
            };
            if has_schema == 0 {
                copy.close().await;
                return Err(BackupError::NotABackup {
                    path: from.to_path_buf(),
                    why: "it has no migration history".into(),
                });
            }
            copy.migrate().await.map_err(|e| BackupError::NotABackup {
                path: from.to_path_buf(),
                why: e.to_string(),
            })?;
            copy.close().await;

            let mut conn = pool.acquire().await?;
            query("PRAGMA foreign_keys = OFF")
                .execute(&mut *conn)
                .await?;
            query(&format!("ATTACH DATABASE {} AS src", sql_string(&staging)))
                .execute(&mut *conn)
                .await?;
            let copied = async {
                let names: Vec<String> = query(
                    "SELECT name FROM main.sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
                )
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|r| r.try_get("name"))
                .collect::<Result<_, _>>()?;
                query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let copy_all = async {
                    // Triggers (e.g. the display log's seq check) must not re-run on rows
                    // that are already consistent: drop them for the copy and recreate
                    // them in the same transaction.
                    let triggers: Vec<(String, String)> = query(
                        "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger'",
                    )
                    .fetch_all(&mut *conn)
                    .await?
                    .into_iter()
                    .map(|r| Ok((r.try_get("name")?, r.try_get("sql")?)))
                    .collect::<Result<_, sqlx::Error>>()?;
                    for (name, _) in &triggers {
                        query(&format!("DROP TRIGGER main.\"{name}\""))
                            .execute(&mut *conn)
                            .await?;
                    }
                    for t in &names {
                        let cols: Vec<String> =
                            query(&format!("SELECT name FROM pragma_table_info('{t}')"))
                                .fetch_all(&mut *conn)
                                .await?
                                .into_iter()
                                .map(|r| r.try_get("name"))
                                .collect::<Result<_, _>>()?;
                        let cols = cols
                            .iter()
                            .map(|c| format!("\"{c}\""))
                            .collect::<Vec<_>>()
                            .join(", ");
                        query(&format!("DELETE FROM main.\"{t}\""))
                            .execute(&mut *conn)
                            .await?;
                        query(&format!(
                            "INSERT INTO main.\"{t}\" ({cols}) SELECT {cols} FROM src.\"{t}\""
                        ))
                        .execute(&mut *conn)
                        .await?;
                    }
                    for (_, sql) in &triggers {
                        query(sql).execute(&mut *conn).await?;
                    }
                    Ok::<_, sqlx::Error>(())
                }
                .await;
                match copy_all {
                    Ok(()) => query("COMMIT").execute(&mut *conn).await?,
                    Err(e) => {
                        query("ROLLBACK").execute(&mut *conn).await?;
                        return Err(e);
                    }
                };
                Ok::<_, sqlx::Error>(names)
            }
            .await;
            query("DETACH DATABASE src")
                .execute(&mut *conn)
                .await?;
            query("PRAGMA foreign_keys = ON")
                .execute(&mut *conn)
                .await?;
            Ok(copied?)
        }
        .await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", staging.display()));
        }
        result
    }
}
