//! Commerce: each tenant's pricing policy and menu version, sealed quotes, orders with
//! their audit trail, and the idempotency keys of POST requests.
//!
//! Two rules carry the correctness, and both live in the database rather than in a
//! process's memory, so they hold across server processes and on either backend:
//!
//! - **One order per quote.** `orders` is unique on (tenant, quote): a second
//!   confirmation of the same quote, however it races the first, gets the first order
//!   back ([`OrderCreated::Existing`]) and never makes another.
//! - **Compare-and-set transitions.** An order's `version` is the seq of its last audit
//!   entry. [`Store::apply_order_event`] updates the order only where the stored
//!   version and status are the ones the entry was checked against, in the same
//!   transaction that records the entry, so of two racing transitions built from the
//!   same loaded order exactly one applies; the other gets [`StoreError::Conflict`]
//!   ("reload and retry").

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::Serialize;
use sqlx::Row;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::{
    AuditEntry, Order, OrderId, OrderStatus, PricingPolicy, Quote, QuoteId, UnixMs,
};

/// How long an idempotency key is honoured: 24 hours, in milliseconds.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A quote as stored: the sealed quote and the conversation it was shown in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredQuote {
    pub conversation_id: String,
    pub quote: Quote,
}

/// The outcome of [`Store::create_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCreated {
    /// This call placed the order.
    New(Order),
    /// The quote already had an order (a repeated or racing confirmation): this is it,
    /// as stored now.
    Existing(Order),
}

impl OrderCreated {
    /// The order, new or existing.
    pub fn order(&self) -> &Order {
        match self {
            OrderCreated::New(o) | OrderCreated::Existing(o) => o,
        }
    }

    /// The order, new or existing.
    pub fn into_order(self) -> Order {
        match self {
            OrderCreated::New(o) | OrderCreated::Existing(o) => o,
        }
    }

    /// Whether this call placed it.
    pub fn is_new(&self) -> bool {
        matches!(self, OrderCreated::New(_))
    }
}

/// The first response to a request carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    pub method: String,
    pub path: String,
    /// A hash of the request body: the same key with another body is refused.
    pub body_hash: String,
    /// The HTTP status of the first response.
    pub status: u16,
    /// The first response (its body, or whatever the caller needs to replay it).
    pub response: String,
    /// When it was stored (ms since the epoch); it is honoured for
    /// [`IDEMPOTENCY_TTL_MS`] after that.
    pub created_at: i64,
}

impl IdempotencyRecord {
    /// A claim: the key is taken by a request still running (status 0), so a second
    /// request with it waits for the answer instead of running again.
    pub fn is_claim(&self) -> bool {
        self.status == 0
    }
}

fn version_of(order: &Order) -> i64 {
    order.audit.last().map_or(0, |e| i64::from(e.seq))
}

fn parse_status(s: &str) -> Result<OrderStatus> {
    OrderStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("order status '{s}'")))
}

fn enum_text<T: Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v)? {
        serde_json::Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

/// Builds an [`AuditEntry`] from an `order_events` row of either backend.
macro_rules! event_row {
    ($r:expr) => {{
        let r = $r;
        let seq: i64 = r.try_get("seq")?;
        let from: Option<String> = r.try_get("from_status")?;
        let to: String = r.try_get("to_status")?;
        let actor: String = r.try_get("actor")?;
        let action: String = r.try_get("action")?;
        AuditEntry {
            seq: u32::try_from(seq).map_err(|_| StoreError::Corrupt(format!("event seq {seq}")))?,
            at: UnixMs(r.try_get("at")?),
            actor: serde_json::from_str(&actor)?,
            from: from.as_deref().map(parse_status).transpose()?,
            to: parse_status(&to)?,
            action: serde_json::from_str(&action)?,
        }
    }};
}

impl Store {
    // ---- pricing -------------------------------------------------------------------

    /// The tenant's pricing policy and menu version: the default policy (no tax, no
    /// service charge, tips allowed) and version 0 when none was set.
    pub async fn pricing_policy(&self, tenant: &TenantId) -> Result<(PricingPolicy, u64)> {
        with_pool!(self, |p| {
            let row = query("SELECT policy, menu_version FROM tenant_pricing WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(p)
                .await?;
            match row {
                None => Ok((PricingPolicy::default(), 0)),
                Some(r) => {
                    let policy: String = r.try_get("policy")?;
                    let version: i64 = r.try_get("menu_version")?;
                    Ok((
                        serde_json::from_str(&policy)?,
                        u64::try_from(version)
                            .map_err(|_| StoreError::Corrupt(format!("menu version {version}")))?,
                    ))
                }
            }
        })
    }

    /// Sets the tenant's pricing policy, keeping its menu version. The caller validates
    /// the policy ([`PricingPolicy::validate`]).
    pub async fn set_pricing_policy(
        &self,
        tenant: &TenantId,
        policy: &PricingPolicy,
    ) -> Result<()> {
        let body = serde_json::to_string(policy)?;
        self.write(async || {
            with_pool!(self, |p| {
                query(
                    "INSERT INTO tenant_pricing (tenant_id, policy, menu_version, updated_at) \
                 VALUES ($1, $2, 0, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy, \
                 updated_at = excluded.updated_at",
                )
                .bind(tenant.as_str())
                .bind(&body)
                .bind(now_ms())
                .execute(p)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Adds one to the tenant's menu version (after any menu change) and returns the
    /// new version. A tenant without a row gets the default policy and version 1.
    pub async fn bump_menu_version(&self, tenant: &TenantId) -> Result<u64> {
        let default = serde_json::to_string(&PricingPolicy::default())?;
        self.write(async || {
            let v: i64 = with_pool!(self, |p| {
                query(
                    "INSERT INTO tenant_pricing (tenant_id, policy, menu_version, updated_at) \
                 VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET \
                 menu_version = tenant_pricing.menu_version + 1, updated_at = excluded.updated_at \
                 RETURNING menu_version",
                )
                .bind(tenant.as_str())
                .bind(&default)
                .bind(now_ms())
                .fetch_one(p)
                .await?
                .try_get("menu_version")?
            });
            u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("menu version {v}")))
        })
        .await
    }

    // ---- quotes --------------------------------------------------------------------

    /// Stores a quote shown in `conversation_id`. Returns `false` when a quote with this
    /// id was already stored (ids derive from the hash, so it is the same quote); the
    /// same id with another hash is a conflict.
    pub async fn save_quote(
        &self,
        tenant: &TenantId,
        conversation_id: &str,
        quote: &Quote,
    ) -> Result<bool> {
        let body = serde_json::to_string(quote)?;
        self.write(async || {
        let inserted = with_pool!(self, |p| {
            query(
                "INSERT INTO quotes (tenant_id, id, conversation_id, hash, body, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(quote.id.as_str())
            .bind(conversation_id)
            .bind(&quote.hash)
            .bind(&body)
            .bind(quote.expires_at.0)
            .bind(quote.created_at.0)
            .execute(p)
            .await?
            .rows_affected()
                == 1
        });
        if !inserted {
            let hash: Option<String> = with_pool!(self, |p| {
                query("SELECT hash FROM quotes WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(quote.id.as_str())
                    .fetch_optional(p)
                    .await?
                    .map(|r| r.try_get("hash"))
                    .transpose()?
            });
            if hash.as_deref() != Some(quote.hash.as_str()) {
                return Err(StoreError::Conflict(format!(
                    "quote {} is stored with another hash",
                    quote.id
                )));
            }
        }
        Ok(inserted)
        }).await
    }

    /// A quote of the tenant's by id.
    pub async fn quote(&self, tenant: &TenantId, id: &QuoteId) -> Result<Option<StoredQuote>> {
        with_pool!(self, |p| {
            let row =
                query("SELECT conversation_id, body FROM quotes WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .fetch_optional(p)
                    .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let body: String = r.try_get("body")?;
                    Ok(Some(StoredQuote {
                        conversation_id: r.try_get("conversation_id")?,
                        quote: serde_json::from_str(&body)?,
                    }))
                }
            }
        })
    }

    /// The newest quote built in a conversation (expired or not: the caller checks).
    pub async fn latest_quote(
        &self,
        tenant: &TenantId,
        conversation_id: &str,
    ) -> Result<Option<StoredQuote>> {
        with_pool!(self, |p| {
            let row = query(
                "SELECT conversation_id, body FROM quotes \
                 WHERE tenant_id = $1 AND conversation_id = $2 \
                 ORDER BY created_at DESC, expires_at DESC, id DESC LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(conversation_id)
            .fetch_optional(p)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let body: String = r.try_get("body")?;
                    Ok(Some(StoredQuote {
                        conversation_id: r.try_get("conversation_id")?,
                        quote: serde_json::from_str(&body)?,
                    }))
                }
            }
        })
    }

    // ---- orders --------------------------------------------------------------------

    /// Places an order, at most one per quote: when the quote already has an order
    /// (a repeated or concurrent confirmation), nothing is written and that order is
    /// returned as [`OrderCreated::Existing`]. The order's audit trail (normally just
    /// its creation entry) is recorded as its first events, in the same transaction.
    /// An order id already used for another quote is a conflict.
    pub async fn create_order(&self, tenant: &TenantId, order: &Order) -> Result<OrderCreated> {
        self.create_order_with_cart(tenant, order, None).await
    }

    /// [`Store::create_order`], and when the order is new, the conversation's cart set to
    /// `next_cart` (the emptied cart the guest's next order starts from) in the same
    /// transaction: an order placed and the cart still holding its lines are never
    /// both on disk, and placing costs one write.
    pub async fn create_order_with_cart(
        &self,
        tenant: &TenantId,
        order: &Order,
        next_cart: Option<&str>,
    ) -> Result<OrderCreated> {
        let body = serde_json::to_string(order)?;
        let mut events = Vec::with_capacity(order.audit.len());
        for e in &order.audit {
            events.push((
                i64::from(e.seq),
                e.from.map(|s| s.as_str()),
                e.to.as_str(),
                serde_json::to_string(&e.actor)?,
                serde_json::to_string(&e.action)?,
                e.at.0,
            ));
        }
        let order_type = order.order_type.as_str();
        let payment_method = enum_text(&order.payment_method)?;
        let now = now_ms();
        let inserted = self.write::<_, StoreError>(async || Ok(with_pool!(self, |p| {
                let mut tx = p.begin().await?;
                let fresh = query(
                    "INSERT INTO orders (tenant_id, id, conversation_id, quote_id, status, version, \
                     total, currency, order_type, payment_method, body, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(order.id.as_str())
                .bind(order.conversation_id.as_str())
                .bind(order.quote_id.as_str())
                .bind(order.status.as_str())
                .bind(version_of(order))
                .bind(order.total)
                .bind(order.currency.code())
                .bind(order_type)
                .bind(&payment_method)
                .bind(&body)
                .bind(order.created_at.0)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if fresh {
                    for (seq, from, to, actor, action, at) in &events {
                        query(
                            "INSERT INTO order_events (tenant_id, order_id, seq, from_status, to_status, \
                             actor, action, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(tenant.as_str())
                        .bind(order.id.as_str())
                        .bind(*seq)
                        .bind(*from)
                        .bind(*to)
                        .bind(actor)
                        .bind(action)
                        .bind(*at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if let Some(cart) = next_cart {
                        let set = query(crate::conversations::SET_CART)
                        .bind(order.conversation_id.as_str())
                        .bind(tenant.as_str())
                        .bind(cart)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        if set.rows_affected() == 0 {
                            return Err(StoreError::NotFound(format!(
                                "conversation {}",
                                order.conversation_id
                            )));
                        }
                    }
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                fresh
            }))).await?;
        if inserted {
            return Ok(OrderCreated::New(order.clone()));
        }
        match self.order_for_quote(tenant, &order.quote_id).await? {
            Some(existing) => Ok(OrderCreated::Existing(existing)),
            None => Err(StoreError::Conflict(format!(
                "order id {} is taken by another quote",
                order.id
            ))),
        }
    }

    /// A tenant's order by id.
    pub async fn order(&self, tenant: &TenantId, id: &OrderId) -> Result<Option<Order>> {
        self.order_where(tenant, "id", id.as_str()).await
    }

    /// The order placed from a quote, if any.
    pub async fn order_for_quote(
        &self,
        tenant: &TenantId,
        quote: &QuoteId,
    ) -> Result<Option<Order>> {
        self.order_where(tenant, "quote_id", quote.as_str()).await
    }

    /// The tenant's order whose `column` (a unique key: `id` or `quote_id`) is `value`.
    async fn order_where(
        &self,
        tenant: &TenantId,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Order>> {
        let sql = format!("SELECT body FROM orders WHERE tenant_id = $1 AND {column} = $2");
        with_pool!(self, |p| {
            let body: Option<String> = query(&sql)
                .bind(tenant.as_str())
                .bind(value)
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get("body"))
                .transpose()?;
            Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
        })
    }

    /// A tenant's orders, newest first, optionally only those in one status; at most
    /// `limit`.
    pub async fn orders(
        &self,
        tenant: &TenantId,
        status: Option<OrderStatus>,
        limit: u32,
    ) -> Result<Vec<Order>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT body FROM orders WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) \
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .bind(tenant.as_str())
            .bind(status.map(|s| s.as_str()))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let body: String = r.try_get("body")?;
                out.push(serde_json::from_str(&body)?);
            }
            Ok(out)
        })
    }

    /// Reads an order's status, version and body inside a write transaction, holding it
    /// until commit: a change that keeps the version (a payment flag) must not be
    /// overwritten from a body read before it. PostgreSQL takes the row lock with
    /// `FOR NO KEY UPDATE`, the lock a plain update of the row takes: it does not
    /// conflict with the key-share locks that inserts referencing the order (payment
    /// events) hold, which `FOR UPDATE` would turn into deadlocks. SQLite has no row
    /// locks and needs none, as its writers already run one at a time under the
    /// store's write lock ([`Store::write`]).
    pub(crate) fn locked_order_sql(&self) -> &'static str {
        match self.backend() {
            crate::Backend::Postgres => {
                "SELECT status, version, body FROM orders WHERE tenant_id = $1 AND id = $2 \
                 FOR NO KEY UPDATE"
            }
            crate::Backend::Sqlite => {
                "SELECT status, version, body FROM orders WHERE tenant_id = $1 AND id = $2"
            }
        }
    }

    /// Applies one audit entry (a move, payment or refund, built with
    /// [`Order::transition`], [`Order::pay`] or [`Order::refund`] from a loaded order)
    /// and returns the order as it now stands.
    ///
    /// In one transaction: the stored order must still be where the entry was checked
    /// (its version is `entry.seq - 1` and its status `entry.from`), the entry is
    /// re-checked by [`Order::apply`] against the stored order, the order's status,
    /// version and body are updated only where version and status still match
    /// (compare-and-set), and the entry is recorded in `order_events`. Anything else
    /// — another transition got in first, or the entry does not apply — is
    /// [`StoreError::Conflict`]: reload the order and retry. An order the tenant does
    /// not have is [`StoreError::NotFound`].
    pub async fn apply_order_event(
        &self,
        tenant: &TenantId,
        order_id: &OrderId,
        entry: &AuditEntry,
    ) -> Result<Order> {
        let stale = |why: String| {
            StoreError::Conflict(format!(
                "order {order_id} changed ({why}): reload it and retry"
            ))
        };
        let Some(from) = entry.from else {
            return Err(stale("a creation entry cannot be applied".into()));
        };
        let Some(expected) = i64::from(entry.seq).checked_sub(1).filter(|v| *v >= 0) else {
            return Err(stale(format!(
                "entry seq {} is not a transition",
                entry.seq
            )));
        };
        let actor = serde_json::to_string(&entry.actor)?;
        let action = serde_json::to_string(&entry.action)?;
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let row = query(self.locked_order_sql())
                .bind(tenant.as_str())
                .bind(order_id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("order {order_id}")))?;
            let status: String = row.try_get("status")?;
            let version: i64 = row.try_get("version")?;
            let body: String = row.try_get("body")?;
            if version != expected || status != from.as_str() {
                return Err(stale(format!(
                    "it is {status} at version {version}, the entry expects {from} at version {expected}"
                )));
            }
            let mut order: Order = serde_json::from_str(&body)?;
            order
                .apply(entry.clone())
                .map_err(|e| stale(e.to_string()))?;
            let new_body = serde_json::to_string(&order)?;
            let moved = query(
                "UPDATE orders SET status = $3, version = $4, body = $5, updated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2 AND version = $7 AND status = $8",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .bind(order.status.as_str())
            .bind(i64::from(entry.seq))
            .bind(&new_body)
            .bind(now_ms())
            .bind(expected)
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await?;
                return Err(stale("another transition got in first".into()));
            }
            let recorded = query(
                "INSERT INTO order_events (tenant_id, order_id, seq, from_status, to_status, \
                 actor, action, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .bind(i64::from(entry.seq))
            .bind(from.as_str())
            .bind(entry.to.as_str())
            .bind(&actor)
            .bind(&action)
            .bind(entry.at.0)
            .execute(&mut *tx)
            .await;
            match recorded {
                Ok(_) => {}
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                {
                    tx.rollback().await?;
                    return Err(stale(format!("entry {} is already recorded", entry.seq)));
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            Ok(order)
        })
        }).await
    }

    /// An order's recorded audit trail, oldest first (empty for an order the tenant
    /// does not have).
    pub async fn order_events(
        &self,
        tenant: &TenantId,
        order_id: &OrderId,
    ) -> Result<Vec<AuditEntry>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT seq, from_status, to_status, actor, action, at FROM order_events \
                 WHERE tenant_id = $1 AND order_id = $2 ORDER BY seq",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(event_row!(r));
            }
            Ok(out)
        })
    }

    // ---- idempotency ---------------------------------------------------------------

    /// The first response stored under (scope, key), unless it is older than
    /// [`IDEMPOTENCY_TTL_MS`].
    pub async fn idempotency_get(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let cutoff = now_ms().saturating_sub(IDEMPOTENCY_TTL_MS);
        with_pool!(self, |p| {
            let row = query(
                "SELECT method, path, body_hash, status, response, created_at FROM idempotency_keys \
                 WHERE scope = $1 AND key = $2 AND created_at > $3",
            )
            .bind(scope)
            .bind(key)
            .bind(cutoff)
            .fetch_optional(p)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let status: i32 = r.try_get("status")?;
                    Ok(Some(IdempotencyRecord {
                        method: r.try_get("method")?,
                        path: r.try_get("path")?,
                        body_hash: r.try_get("body_hash")?,
                        status: u16::try_from(status)
                            .map_err(|_| StoreError::Corrupt(format!("http status {status}")))?,
                        response: r.try_get("response")?,
                        created_at: r.try_get("created_at")?,
                    }))
                }
            }
        })
    }

    /// Stores the first response under (scope, key) unless one is already there:
    /// `true` when this call stored it, `false` when an unexpired record was kept (read
    /// it with [`Store::idempotency_get`] and replay it). An expired record is
    /// replaced.
    pub async fn idempotency_put(
        &self,
        scope: &str,
        key: &str,
        record: &IdempotencyRecord,
    ) -> Result<bool> {
        let cutoff = now_ms().saturating_sub(IDEMPOTENCY_TTL_MS);
        self.write(async || {
        with_pool!(self, |p| {
            let n = query(
                "INSERT INTO idempotency_keys (scope, key, method, path, body_hash, status, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, \
                 body_hash = excluded.body_hash, status = excluded.status, response = excluded.response, \
                 created_at = excluded.created_at \
                 WHERE idempotency_keys.created_at <= $9",
            )
            .bind(scope)
            .bind(key)
            .bind(&record.method)
            .bind(&record.path)
            .bind(&record.body_hash)
            .bind(i32::from(record.status))
            .bind(&record.response)
            .bind(record.created_at)
            .bind(cutoff)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
        }).await
    }

    /// Completes a claim (a record with status 0, see [`IdempotencyRecord::is_claim`])
    /// with the response it got; `false` when there was no claim to complete.
    pub async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        record: &IdempotencyRecord,
    ) -> Result<bool> {
        self.write(async || {
        with_pool!(self, |p| {
            let n = query(
                "UPDATE idempotency_keys SET status = $3, response = $4                  WHERE scope = $1 AND key = $2 AND status = 0 AND body_hash = $5",
            )
            .bind(scope)
            .bind(key)
            .bind(i32::from(record.status))
            .bind(&record.response)
            .bind(&record.body_hash)
            .execute(p)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
        }).await
    }

    /// Drops a claim made at `created_at` (its request kept no answer, or it was
    /// abandoned), so the key can be used again; a completed record is never dropped.
    pub async fn idempotency_release(&self, scope: &str, key: &str, created_at: i64) -> Result<()> {
        self.write(async || {
        with_pool!(self, |p| {
            query(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 0                  AND created_at = $3",
            )
            .bind(scope)
            .bind(key)
            .bind(created_at)
            .execute(p)
            .await?;
            Ok(())
        })
        }).await
    }

    /// Deletes idempotency records created before `older_than_ms` (ms since the epoch;
    /// pass `now - IDEMPOTENCY_TTL_MS` to drop the expired ones) and returns how many.
    pub async fn idempotency_purge(&self, older_than_ms: i64) -> Result<u64> {
        self.write(async || {
            with_pool!(self, |p| {
                Ok(query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(older_than_ms)
                    .execute(p)
                    .await?
                    .rows_affected())
            })
        })
        .await
    }
}
