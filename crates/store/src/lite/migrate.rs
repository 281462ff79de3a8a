//! The SQLite schema's migrations, applied on the store's own connection.
//!
//! The history is kept in sqlx's `_sqlx_migrations` table, in sqlx's layout, so a
//! database migrated by an earlier build (which ran sqlx's migrator) carries on.

use super::SqliteConns;
use super::query::{query, to_sqlx};
use sqlx::migrate::{MigrateError, Migrator};
use std::time::Instant;

const HISTORY: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
    version BIGINT PRIMARY KEY, \
    description TEXT NOT NULL, \
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
    success BOOLEAN NOT NULL, \
    checksum BLOB NOT NULL, \
    execution_time BIGINT NOT NULL)";

/// Applies the migrations `migrator` holds that the database has not had, each in a
/// transaction of its own with its history row; refuses a database whose history is
/// dirty, or whose applied migrations differ from (or are missing in) this build's.
pub(crate) async fn migrate(conns: &SqliteConns, migrator: &Migrator) -> Result<(), MigrateError> {
    let mut conn = conns.acquire().await?;
    conn.execute_batch(HISTORY).map_err(to_sqlx)?;
    let applied = query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await?;
    let mut done = std::collections::BTreeMap::new();
    for row in applied {
        let version: i64 = row.try_get("version")?;
        if !row.try_get::<bool, _>("success")? {
            return Err(MigrateError::Dirty(version));
        }
        done.insert(version, row.try_get::<Vec<u8>, _>("checksum")?);
    }
    let ups: Vec<_> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    for version in done.keys() {
        if !migrator.ignore_missing && !ups.iter().any(|m| m.version == *version) {
            return Err(MigrateError::VersionMissing(*version));
        }
    }
    for m in ups {
        if let Some(checksum) = done.get(&m.version) {
            if checksum.as_slice() != &*m.checksum {
                return Err(MigrateError::VersionMismatch(m.version));
            }
            continue;
        }
        let started = Instant::now();
        // On the one connection (an in-memory database has no other); a failure
        // returns it inside the transaction, and handing it back rolls that back.
        conn.execute_batch("BEGIN").map_err(to_sqlx)?;
        conn.execute_batch(&m.sql)
            .map_err(|e| MigrateError::ExecuteMigration(to_sqlx(e), m.version))?;
        query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, -1)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .execute(&mut *conn)
        .await?;
        conn.execute_batch("COMMIT").map_err(to_sqlx)?;
        query("UPDATE _sqlx_migrations SET execution_time = $1 WHERE version = $2")
            .bind(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX))
            .bind(m.version)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
