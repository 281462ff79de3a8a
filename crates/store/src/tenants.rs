//! Tenants and their API keys (stored as SHA-256 hashes, never in clear).

use crate::{Result, Store, StoreError, now_ms, with_pool};
use sha2::{Digest, Sha256};
use sqlx::Row;
use stonepot_domain::{Category, Currency, Tenant, TenantId, Theme};

/// How many hex digits of a key's hash name it in listings and revocations (64 bits: no
/// two keys of one tenant share it in practice, and it reveals nothing usable).
pub const KEY_ID_LEN: usize = 16;

/// One API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// The first [`KEY_ID_LEN`] hex digits of the key's SHA-256.
    pub id: String,
    pub label: String,
    /// `staff` or `operator`.
    pub role: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

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
            query(sql)
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
        // After the commit: a read racing this write may put the old row back, for
        // at most the TTL.
        self.tenants.forget(t.id.as_str());
        Ok(())
        }).await
    }

    /// The tenant with this id, if any: from memory when read less than [`TENANT_TTL`]
    /// ago. Every request of an order needs its tenant (up to five reads per order);
    /// a tenant changes rarely, and a change made on this instance is seen at once,
    /// one made on another (PostgreSQL) within the TTL.
    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        if let Some(t) = self.tenants.get(id.as_str()) {
            return Ok(Some(t));
        }
        let read = self.read_tenant(id).await?;
        if let Some(t) = &read {
            self.tenants.put(t);
        }
        Ok(read)
    }

    async fn read_tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        with_pool!(self, |p| {
            let row = query(&sql).bind(id.as_str()).fetch_optional(p).await?;
            row.map(|r| tenant_row!(r)).transpose()
        })
    }

    /// All tenants, ordered by id.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id");
        with_pool!(self, |p| {
            let rows = query(&sql).fetch_all(p).await?;
            rows.into_iter().map(|r| tenant_row!(r)).collect()
        })
    }

    /// Grants `key` (stored as its hash) operator access to `tenant` under `label`.
    /// Granting a revoked key again re-activates it.
    pub async fn add_api_key(&self, tenant: &TenantId, key: &str, label: &str) -> Result<()> {
        self.add_api_key_as(tenant, key, label, "operator").await
    }

    /// Grants `key` (stored as its hash) access to `tenant` as `role` (`staff` or
    /// `operator`; the caller checks the name) under `label`. Granting a revoked key
    /// again re-activates it with the new label and role.
    pub async fn add_api_key_as(
        &self,
        tenant: &TenantId,
        key: &str,
        label: &str,
        role: &str,
    ) -> Result<()> {
        self.write(async || {
        let sql = "INSERT INTO api_keys (tenant_id, key_hash, label, role, created_at, revoked_at) \
                   VALUES ($1, $2, $3, $4, $5, NULL) \
                   ON CONFLICT (tenant_id, key_hash) DO UPDATE SET revoked_at = NULL, \
                   label = excluded.label, role = excluded.role";
        with_pool!(self, |p| {
            query(sql)
                .bind(tenant.as_str())
                .bind(hash_api_key(key))
                .bind(label)
                .bind(role)
                .bind(now_ms())
                .execute(p)
                .await?;
        });
        Ok(())
        }).await
    }

    /// Every key of `tenant`, active and revoked, oldest first. Keys are named by
    /// [`ApiKeyInfo::id`], a prefix of their hash: enough to revoke one, useless to
    /// authenticate with.
    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyInfo>> {
        let sql = "SELECT key_hash, label, role, created_at, revoked_at FROM api_keys \
                   WHERE tenant_id = $1 ORDER BY created_at, key_hash";
        with_pool!(self, |p| {
            query(sql)
                .bind(tenant.as_str())
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| {
                    let hash: String = r.try_get("key_hash")?;
                    Ok(ApiKeyInfo {
                        id: hash.chars().take(KEY_ID_LEN).collect(),
                        label: r.try_get("label")?,
                        role: r.try_get("role")?,
                        created_at_ms: r.try_get("created_at")?,
                        revoked_at_ms: r.try_get("revoked_at")?,
                    })
                })
                .collect()
        })
    }

    /// Revokes the active key of `tenant` whose id (see [`Store::api_keys`]) is `id`.
    /// `Ok(false)` when no active key of this tenant has that id.
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        if id.len() != KEY_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let pattern = format!("{}%", id.to_ascii_lowercase());
        self.write(async || {
            let sql = "UPDATE api_keys SET revoked_at = $1 \
                   WHERE tenant_id = $2 AND key_hash LIKE $3 AND revoked_at IS NULL";
            with_pool!(self, |p| {
                let done = query(sql)
                    .bind(now_ms())
                    .bind(tenant.as_str())
                    .bind(&pattern)
                    .execute(p)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
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
                let done = query(sql)
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
            let row = query(sql)
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
            query(sql)
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

impl Store {
    /// Every tenant an active key opens, with the role it grants there, ordered by
    /// tenant.
    pub async fn api_key_grants(&self, key: &str) -> Result<Vec<(TenantId, String)>> {
        let sql = "SELECT tenant_id, role FROM api_keys WHERE key_hash = $1 \
                   AND revoked_at IS NULL ORDER BY tenant_id";
        with_pool!(self, |p| {
            query(sql)
                .bind(hash_api_key(key))
                .fetch_all(p)
                .await?
                .into_iter()
                .map(|r| {
                    let id: String = r.try_get("tenant_id")?;
                    let role: String = r.try_get("role")?;
                    let id = TenantId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Ok((id, role))
                })
                .collect()
        })
    }
}

/// How long a tenant read from the database is served from memory.
pub const TENANT_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Tenants read recently, by id (see [`Store::tenant`]).
#[derive(Debug, Default)]
pub(crate) struct TenantCache(
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Tenant)>>,
);

impl TenantCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (std::time::Instant, Tenant)>>
    {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<Tenant> {
        self.lock()
            .get(id)
            .filter(|(at, _)| at.elapsed() < TENANT_TTL)
            .map(|(_, t)| t.clone())
    }

    fn put(&self, t: &Tenant) {
        self.lock().insert(
            t.id.as_str().to_string(),
            (std::time::Instant::now(), t.clone()),
        );
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}
