//! Display sessions: the durable half of the display hub. Each append assigns the next
//! `seq` with an optimistic check on the previous one, writes the update and the
//! component it changes, and trims the retained log, all in one transaction.

use crate::pool::AnyPool;
use crate::{Result, Store, StoreError, now_ms, with_pool};
use sqlx::Row;
use stonepot_domain::{Category, TenantId};

/// A stored display session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub category: Category,
    /// The init body as JSON text.
    pub init: String,
    pub seq: u64,
    pub created_at: i64,
}

/// One entry of a session's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRecord {
    pub seq: u64,
    /// The update envelope as JSON text.
    pub body: String,
    pub created_at: i64,
}

/// One current component of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentRecord {
    pub key: String,
    pub seq: u64,
    pub body: String,
}

/// What an update does to the session's current components.
#[derive(Debug, Clone)]
pub enum ComponentChange {
    Put { key: String, body: String },
    Remove { key: String },
}

/// The outcome of creating a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(SessionRecord),
    Existing(SessionRecord),
}

fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative seq {v}")))
}

/// Inserts one update on SQLite, whose triggers (migration 0003) check the seq and
/// apply the component change the envelope's `key`/`op` name. `None` when the session
/// was not at `seq - 1` (another writer moved it).
async fn insert_sqlite(
    exec: impl crate::lite::Exec,
    session: &str,
    seq: i64,
    tenant: &TenantId,
    body: &str,
    now: i64,
) -> Result<Option<()>> {
    let done = crate::lite::query(
        "INSERT INTO display_updates (session_id, seq, tenant_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session)
    .bind(seq)
    .bind(tenant.as_str())
    .bind(body)
    .bind(now)
    .execute(exec)
    .await;
    match done {
        Ok(_) => Ok(Some(())),
        Err(sqlx::Error::Database(e))
            if e.message().contains("seq_conflict")
                || e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("seq {v} out of range")))
}

macro_rules! session_from_row {
    ($r:expr) => {{
        let r = $r;
        let tenant: String = r.try_get("tenant_id")?;
        let category: String = r.try_get("category")?;
        SessionRecord {
            id: r.try_get("id")?,
            tenant_id: TenantId::new(tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            category: Category::parse(&category)
                .ok_or_else(|| StoreError::Corrupt(format!("category '{category}'")))?,
            init: r.try_get("init")?,
            seq: to_u64(r.try_get("seq")?)?,
            created_at: r.try_get("created_at")?,
        }
    }};
}

/// Builds an [`UpdateRecord`] from a row of either backend.
macro_rules! update_row {
    ($r:expr) => {
        UpdateRecord {
            seq: to_u64($r.try_get("seq")?)?,
            body: $r.try_get("body")?,
            created_at: $r.try_get("created_at")?,
        }
    };
}

impl Store {
    /// Creates the session unless one with this id exists; either way returns the row.
    pub async fn create_display_session(
        &self,
        id: &str,
        tenant: &TenantId,
        category: Category,
        init: &str,
    ) -> Result<Created> {
        self.write(async || {
        let now = now_ms();
        with_pool!(self, |p| {
            let done = query(
                "INSERT INTO display_sessions (id, tenant_id, category, init, seq, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 0, $5, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(tenant.as_str())
            .bind(category.as_str())
            .bind(init)
            .bind(now)
            .execute(p)
            .await?;
            if done.rows_affected() == 1 {
                // The row is exactly what was inserted: no need to read it back.
                return Ok(Created::New(SessionRecord {
                    id: id.to_string(),
                    tenant_id: tenant.clone(),
                    category,
                    init: init.to_string(),
                    seq: 0,
                    created_at: now,
                }));
            }
            let rec = self
                .display_session(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("session {id}")))?;
            Ok(Created::Existing(rec))
        })
        }).await
    }

    pub async fn display_session(&self, id: &str) -> Result<Option<SessionRecord>> {
        with_pool!(self, |p| {
            let row = query(
                "SELECT id, tenant_id, category, init, seq, created_at FROM display_sessions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?;
            Ok(match row {
                Some(r) => Some(session_from_row!(r)),
                None => None,
            })
        })
    }

    /// Appends `body` (the update envelope, whose `key` and `op` name the component it
    /// sets or removes) as `expected_seq + 1`, applies that change to the session's
    /// components, and keeps only the last
    /// `retain` updates. Fails with [`StoreError::Conflict`] when another writer moved the
    /// session's seq first: the caller reloads and retries, the log never forks.
    pub async fn append_display_update(
        &self,
        session: &str,
        tenant: &TenantId,
        expected_seq: u64,
        body: &str,
        retain: u64,
    ) -> Result<u64> {
        self.append_display_updates(session, tenant, expected_seq, &[body], retain)
            .await
    }

    /// Appends `bodies` as `expected_seq + 1 ..= expected_seq + n` in one transaction
    /// (all or none, one commit and one disk sync for the lot) and returns the last seq.
    /// Otherwise as [`Store::append_display_update`]. A session many writers update at
    /// once (a kitchen board) batches what queued up meanwhile into one call.
    pub async fn append_display_updates(
        &self,
        session: &str,
        tenant: &TenantId,
        expected_seq: u64,
        bodies: &[&str],
        retain: u64,
    ) -> Result<u64> {
        let n = u64::try_from(bodies.len()).unwrap_or(u64::MAX);
        let last = expected_seq
            .checked_add(n)
            .ok_or_else(|| StoreError::Corrupt(format!("seq {expected_seq} + {n} overflows")))?;
        if n == 0 {
            return Ok(expected_seq);
        }
        let (expected, last_i) = (to_i64(expected_seq)?, to_i64(last)?);
        let now = now_ms();
        // Trim in batches: only when the log has grown a tenth past what is retained
        // (checked at every multiple of the slack this batch crosses).
        let trim_from = {
            let slack = (retain / 10).max(1);
            (retain > 0 && last > retain + slack && (last / slack) > (expected_seq / slack))
                .then(|| to_i64(last - retain))
                .transpose()?
        };
        let conflict = || {
            StoreError::Conflict(format!(
                "session {session} is no longer at seq {expected_seq}"
            ))
        };
        self.write(async || match &self.pool {
            AnyPool::Sqlite(p) => {
                use crate::lite::query;
                let p: &crate::lite::SqliteConns = p;
                // Triggers (migration 0003) check each seq and apply its component change
                // inside the insert; `body` is the envelope whose `key`/`op` drive them.
                if let ([body], None) = (bodies, trim_from) {
                    // One update needs no explicit transaction: the insert is atomic.
                    return insert_sqlite(p, session, last_i, tenant, body, now)
                        .await?
                        .map(|()| last)
                        .ok_or_else(conflict);
                }
                let mut tx = p.begin().await?;
                for (seq, body) in (expected_seq + 1..=last).zip(bodies) {
                    if insert_sqlite(&mut *tx, session, to_i64(seq)?, tenant, body, now)
                        .await?
                        .is_none()
                    {
                        tx.rollback().await?;
                        return Err(conflict());
                    }
                }
                if let Some(upto) = trim_from {
                    query("DELETE FROM display_updates WHERE session_id = $1 AND seq <= $2")
                        .bind(session)
                        .bind(upto)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(last)
            }
            AnyPool::Postgres(p) => {
                use sqlx::query;
                let mut changes = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let envelope: serde_json::Value = serde_json::from_str(body)?;
                    changes.push(match (envelope["key"].as_str(), envelope["op"].as_str()) {
                        (Some(key), Some("remove")) => {
                            Some(ComponentChange::Remove { key: key.into() })
                        }
                        (Some(key), None) => Some(ComponentChange::Put {
                            key: key.into(),
                            body: body.to_string(),
                        }),
                        _ => None,
                    });
                }
                let mut tx = p.begin().await?;
                let moved = query(
                    "UPDATE display_sessions SET seq = $1, updated_at = $2 \
                     WHERE id = $3 AND tenant_id = $4 AND seq = $5",
                )
                .bind(last_i)
                .bind(now)
                .bind(session)
                .bind(tenant.as_str())
                .bind(expected)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(conflict());
                }
                for ((seq, body), change) in (expected_seq + 1..=last).zip(bodies).zip(changes) {
                    let seq = to_i64(seq)?;
                    query(
                        "INSERT INTO display_updates (session_id, seq, tenant_id, body, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(session)
                    .bind(seq)
                    .bind(tenant.as_str())
                    .bind(*body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    match change {
                        Some(ComponentChange::Put { key, body }) => {
                            query(
                                "INSERT INTO display_components (session_id, key, tenant_id, seq, body) \
                                 VALUES ($1, $2, $3, $4, $5) \
                                 ON CONFLICT (session_id, key) DO UPDATE SET seq = excluded.seq, body = excluded.body",
                            )
                            .bind(session)
                            .bind(key)
                            .bind(tenant.as_str())
                            .bind(seq)
                            .bind(body)
                            .execute(&mut *tx)
                            .await?;
                        }
                        Some(ComponentChange::Remove { key }) => {
                            query(
                                "DELETE FROM display_components WHERE session_id = $1 AND key = $2 AND tenant_id = $3",
                            )
                            .bind(session)
                            .bind(key)
                            .bind(tenant.as_str())
                            .execute(&mut *tx)
                            .await?;
                        }
                        None => {}
                    }
                }
                if let Some(upto) = trim_from {
                    query("DELETE FROM display_updates WHERE session_id = $1 AND seq <= $2")
                        .bind(session)
                        .bind(upto)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(last)
            }
        })
        .await
    }

    /// Moves a session's seq from `from` to `to` without an update: used when the log
    /// lives elsewhere (JetStream) and the entries between were trimmed before the store
    /// saw them. Does nothing when the session is no longer at `from`.
    pub async fn advance_display_seq(&self, session: &str, from: u64, to: u64) -> Result<()> {
        let (from, to) = (to_i64(from)?, to_i64(to)?);
        let now = now_ms();
        self.write(async || {
            with_pool!(self, |p| {
                query(
                "UPDATE display_sessions SET seq = $1, updated_at = $2 WHERE id = $3 AND seq = $4",
            )
            .bind(to)
            .bind(now)
            .bind(session)
            .bind(from)
            .execute(p)
            .await?;
                Ok(())
            })
        })
        .await
    }

    /// Updates with `seq > after`, in order, at most `limit`.
    pub async fn display_updates_after(
        &self,
        session: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<UpdateRecord>> {
        let after = to_i64(after)?;
        with_pool!(self, |p| {
            query(
                "SELECT seq, body, created_at FROM display_updates \
                 WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(session)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok(update_row!(r)))
            .collect()
        })
    }

    /// The last `n` updates, oldest first.
    pub async fn display_updates_last(&self, session: &str, n: u32) -> Result<Vec<UpdateRecord>> {
        let mut v: Vec<UpdateRecord> = with_pool!(self, |p| {
            query(
                "SELECT seq, body, created_at FROM display_updates \
                 WHERE session_id = $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(session)
            .bind(i64::from(n))
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| Ok(update_row!(r)))
            .collect::<Result<Vec<_>>>()?
        });
        v.reverse();
        Ok(v)
    }

    /// The smallest retained seq (None when the log is empty).
    pub async fn display_oldest_seq(&self, session: &str) -> Result<Option<u64>> {
        with_pool!(self, |p| {
            let row = query("SELECT MIN(seq) AS s FROM display_updates WHERE session_id = $1")
                .bind(session)
                .fetch_one(p)
                .await?;
            let v: Option<i64> = row.try_get("s")?;
            v.map(to_u64).transpose()
        })
    }

    /// The session's current components, in the order they were last set.
    pub async fn display_components(&self, session: &str) -> Result<Vec<ComponentRecord>> {
        with_pool!(self, |p| {
            query(
                "SELECT key, seq, body FROM display_components WHERE session_id = $1 ORDER BY seq",
            )
            .bind(session)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| {
                Ok(ComponentRecord {
                    key: r.try_get("key")?,
                    seq: to_u64(r.try_get("seq")?)?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
        })
    }

    /// How many display sessions exist.
    pub async fn display_session_count(&self) -> Result<i64> {
        with_pool!(self, |p| {
            let r = query("SELECT COUNT(*) AS n FROM display_sessions")
                .fetch_one(p)
                .await?;
            Ok(r.try_get("n")?)
        })
    }
}
