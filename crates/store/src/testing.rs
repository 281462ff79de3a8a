//! Test support: a fresh, empty PostgreSQL database per test.
//!
//! `STONEPOT_TEST_POSTGRES_URL` names a server the tests may create databases on
//! (`scripts/test.sh` starts one). Tests that need PostgreSQL fail loudly without it:
//! a suite that silently skips its second backend proves nothing about it.

use crate::{Result, StoreError};
use sqlx::Connection;

/// The admin url from the environment, or an error saying how to get one.
pub fn postgres_admin_url() -> Result<String> {
    std::env::var("STONEPOT_TEST_POSTGRES_URL").map_err(|_| {
        StoreError::BadUrl(
            "STONEPOT_TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh, \
             which starts a throwaway PostgreSQL"
                .into(),
        )
    })
}

/// Creates a uniquely named database and returns its url.
pub async fn fresh_postgres_url(prefix: &str) -> Result<String> {
    let admin = postgres_admin_url()?;
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        crate::now_ms() % 1_000_000_000
    )
    .to_ascii_lowercase();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "{name}_{}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// Drops a database made by [`fresh_postgres_url`], disconnecting its users.
pub async fn drop_postgres_database(url: &str) -> Result<()> {
    let admin = postgres_admin_url()?;
    let name = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
