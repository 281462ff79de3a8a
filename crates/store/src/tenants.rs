//! Tenants and their API keys (stored as SHA-256 hashes, never in clear).

use crate::{Result, Store, StoreError, now_ms, with_pool};
use sha2::{Digest, Sha256};
use sqlx::Row;
use stonepot_domain::{Category, Currency, Tenant, TenantId, Theme};

/// The hex SHA-256 of an API key, the only form in which keys are stored.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn tenant_from_parts(
    id: String,
    name: String,
    category: String,
    currency: String,
    timezone: String,
    theme: String,
) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name,
        category: Category::parse(&category)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown category '{category}'")))?,
        currency: Currency::from_code(&currency).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        timezone,
        theme: serde_json::from_str::<Theme>(&theme)?,
    })
}

/// Builds a tenant from a row of either backend (selected with [`TENANT_COLUMNS`]).
macro_rules! tenant_row {
    ($r:expr) => {
        tenant_from_parts(
            $r.try_get("id")?,
            $r.try_get("name")?,
            $r.try_get("category")?,
            $r.try_get("currency")?,
            $r.try_get("timezone")?,
            $r.try_get("theme")?,
        )
    };
}

const TENANT_COLUMNS: &str = "id, name, category, currency, timezone, theme";

impl Store {
    /// Inserts a tenant, or updates its fields when it already exists.
    pub async fn upsert_tenant(&self, t: &Tenant) -> Result<()> {
        self.write(async || {
        let theme = serde_json::to_string(&t.theme)?;
        let now = now_ms();
        let sql = "INSERT INTO tenants (id, name, category, currency, timezone, theme, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category, \
                   currency = excluded.currency, timezone = excluded.timezone, theme = excluded.theme, \
                   updated_at = excluded.updated_at";
        with_pool!(self, |p| {
            sqlx::query(sql)
                .bind(t.id.as_str())
                .bind(&t.name)
                .bind(t.category.as_str())
                .bind(t.currency.code())
                .bind(&t.timezone)
                .bind(&theme)
                .bind(now)
                .execute(p)
                .await?;
        });
        Ok(())
        }).await
    }

    /// The tenant with this id, if any.
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        with_pool!(self, |p| {
            let row = sqlx::query(&sql)
                .bind(id.as_str())
                .fetch_optional(p)
                .await?;
            row.map(|r| tenant_row!(r)).transpose()
        })
    }

    /// All tenants, ordered by id.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id");
        with_pool!(self, |p| {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.into_iter().map(|r| tenant_row!(r)).collect()
        })
    }

    /// Grants `key` (stored as its hash) access to `tenant` under `label`. Granting a
    /// revoked key again re-activates it.
    pub async fn add_api_key(&self, tenant: &TenantId, key: &str, label: &str) -> Result<()> {
        self.write(async || {
        let sql = "INSERT INTO api_keys (tenant_id, key_hash, label, created_at, revoked_at) \
                   VALUES ($1, $2, $3, $4, NULL) \
                   ON CONFLICT (tenant_id, key_hash) DO UPDATE SET revoked_at = NULL, label = excluded.label";
        with_pool!(self, |p| {
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(hash_api_key(key))
                .bind(label)
                .bind(now_ms())
                .execute(p)
                .await?;
        });
        Ok(())
        }).await
    }

    /// Revokes every active key of `tenant` with `label`, except `keep` (a plain key).
    pub async fn revoke_api_keys(
        &self,
        tenant: &TenantId,
        label: &str,
        keep: Option<&str>,
    ) -> Result<u64> {
        self.write(async || {
            let keep_hash = keep.map(hash_api_key).unwrap_or_default();
            let sql = "UPDATE api_keys SET revoked_at = $1 \
                   WHERE tenant_id = $2 AND label = $3 AND revoked_at IS NULL AND key_hash <> $4";
            with_pool!(self, |p| {
                let done = sqlx::query(sql)
                    .bind(now_ms())
                    .bind(tenant.as_str())
                    .bind(label)
                    .bind(keep_hash)
                    .execute(p)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// Whether `key` is an active key of `tenant`.
    pub async fn api_key_valid(&self, tenant: &TenantId, key: &str) -> Result<bool> {
        let sql = "SELECT COUNT(*) AS n FROM api_keys \
                   WHERE tenant_id = $1 AND key_hash = $2 AND revoked_at IS NULL";
        with_pool!(self, |p| {
            let row = sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(hash_api_key(key))
                .fetch_one(p)
                .await?;
            Ok(row.try_get::<i64, _>("n")? > 0)
        })
    }

    /// Every tenant an active key opens, ordered by id.
    pub async fn api_key_tenants(&self, key: &str) -> Result<Vec<TenantId>> {
        let sql = "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL \
                   ORDER BY tenant_id";
        with_pool!(self, |p| {
            sqlx::query(sql)
                .bind(hash_api_key(key))
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| {
                    let id: String = r.try_get("tenant_id")?;
                    TenantId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect()
        })
    }
}
