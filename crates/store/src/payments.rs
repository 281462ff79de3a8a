//! Payments: Checkout Sessions made for orders, payment events deduplicated on the
//! provider's event id, and refunds.
//!
//! Three rules carry the correctness, all inside one database transaction each:
//!
//! - **An event counts once.** [`Store::record_payment`] inserts the event id first;
//!   a second delivery of the same id finds the row and commits nothing
//!   ([`PaymentRecorded::Duplicate`]). The order's payment (or flag) is written in
//!   the same transaction, so a crash leaves either both or neither.
//! - **An order is paid once.** The payment is decided against the order as read
//!   inside the transaction, after taking the order's row lock, and written with the
//!   same compare-and-set as [`Store::apply_order_event`]; a second, different event
//!   for an order already paid (the success redirect and the webhook racing) is
//!   recorded as `already_paid` and changes nothing.
//! - **Never refund more than captured.** A refund is first reserved
//!   ([`Store::reserve_refund`]): pending reservations count against what can be
//!   refunded, so two racing refunds cannot together exceed it, even while the
//!   provider is still answering. The order's refund entry is written only once the
//!   provider accepted ([`Store::complete_refund`]).
//!
//! "Taking the order's row lock" is a no-op `UPDATE` of the row as the transaction's
//! first write to it: PostgreSQL then holds the row until commit (SQLite has one
//! writer at a time anyway), so what the transaction reads is what it overwrites.

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::Serialize;
use sqlx::Row;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::{
    Actor, Order, OrderFlag, OrderId, PaymentEvidence, Settlement, TransitionError, UnixMs,
};

/// A Checkout Session made for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutSessionRecord {
    pub provider: String,
    pub session_id: String,
    pub tenant_id: String,
    pub order_id: String,
    /// 0 for the order's first session, one more per replacement.
    pub attempt: i64,
    pub amount: i64,
    pub currency: String,
    pub url: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    pub payment_intent: Option<String>,
    /// ms since the epoch.
    pub expires_at: i64,
    pub created_at: i64,
}

/// A payment event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEventInput<'a> {
    pub provider: &'a str,
    /// The provider's event id, or `redirect:<session>` for a success redirect.
    pub event_id: &'a str,
    /// The event type.
    pub kind: &'a str,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    /// The Checkout Session the event is about, the status to give it (`complete`,
    /// `expired`) and its payment intent when known.
    pub session: Option<SessionUpdate<'a>>,
}

/// A change to a stored Checkout Session, made with the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate<'a> {
    pub session_id: &'a str,
    pub status: &'a str,
    pub payment_intent: Option<&'a str>,
}

/// What to do with the order for an event.
#[derive(Debug, Clone)]
pub enum PaymentAction<'a> {
    /// Evidence of a captured payment: settle the order ([`Order::settle`]).
    Settle {
        evidence: &'a PaymentEvidence,
        actor: &'a Actor,
        at: UnixMs,
    },
    /// Only record the event with this outcome (a payment still processing, an
    /// expired session).
    Record { outcome: &'static str },
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRecorded {
    /// This event id was recorded before: nothing was written.
    Duplicate,
    /// Recorded; the order as it now stands.
    Recorded {
        outcome: PaymentOutcome,
        order: Box<Order>,
    },
}

/// The outcome of a recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// This event paid the order.
    Paid,
    /// The order was already paid; nothing changed.
    AlreadyPaid,
    /// The money did not match: the order was flagged and stays unpaid.
    Flagged(OrderFlag),
    /// The payment cannot apply (the reason); nothing changed.
    Refused(String),
    /// Recorded as given in [`PaymentAction::Record`].
    Noted(&'static str),
}

impl PaymentOutcome {
    /// The text stored in `payment_events.outcome`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentOutcome::Paid => "paid",
            PaymentOutcome::AlreadyPaid => "already_paid",
            PaymentOutcome::Flagged(_) => "flagged",
            PaymentOutcome::Refused(_) => "refused",
            PaymentOutcome::Noted(o) => o,
        }
    }
}

/// A recorded payment event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentEventRecord {
    pub provider: String,
    pub event_id: String,
    pub order_id: String,
    pub kind: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub received_at: i64,
    pub outcome: String,
}

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRecord {
    pub id: String,
    pub order_id: String,
    pub amount: i64,
    pub provider: String,
    pub provider_ref: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

/// A refund to reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub provider: &'a str,
    pub reason: Option<&'a str>,
    /// Who asks (checked by [`Order::refund`]).
    pub actor: &'a Actor,
}

fn not_found(order: &OrderId) -> StoreError {
    StoreError::NotFound(format!("order {order}"))
}

/// Builds a [`CheckoutSessionRecord`] from a row of either backend.
macro_rules! session_row {
    ($r:expr) => {{
        let r = $r;
        CheckoutSessionRecord {
            provider: r.try_get("provider")?,
            session_id: r.try_get("session_id")?,
            tenant_id: r.try_get("tenant_id")?,
            order_id: r.try_get("order_id")?,
            attempt: r.try_get("attempt")?,
            amount: r.try_get("amount")?,
            currency: r.try_get("currency")?,
            url: r.try_get("url")?,
            status: r.try_get("status")?,
            payment_intent: r.try_get("payment_intent")?,
            expires_at: r.try_get("expires_at")?,
            created_at: r.try_get("created_at")?,
        }
    }};
}

const SESSION_COLUMNS: &str = "provider, session_id, tenant_id, order_id, attempt, amount, \
     currency, url, status, payment_intent, expires_at, created_at";

/// Inside a transaction `$tx` of `$store`: takes the order's row lock and reads it, or
/// returns NotFound (rolling back). One statement: see [`Store::locked_order_sql`].
macro_rules! lock_order {
    ($store:expr, $tx:expr, $tenant:expr, $order:expr) => {{
        let row = query($store.locked_order_sql())
            .bind($tenant.as_str())
            .bind($order.as_str())
            .fetch_optional(&mut *$tx)
            .await?
            .ok_or_else(|| not_found($order))?;
        let version: i64 = row.try_get("version")?;
        let body: String = row.try_get("body")?;
        let order: Order = serde_json::from_str(&body)?;
        (version, order)
    }};
}

/// Inside a transaction `$tx`: writes `$order` (after applying `$entry`, when given)
/// with the compare-and-set on the version read, and records the entry.
macro_rules! write_order {
    ($tx:expr, $tenant:expr, $order:expr, $read_version:expr, $entry:expr) => {{
        let order: &Order = $order;
        let entry: Option<&stonepot_domain::commerce::AuditEntry> = $entry;
        let version = order.audit.last().map_or(0, |e| i64::from(e.seq));
        let written = query(
            "UPDATE orders SET status = $3, version = $4, body = $5, updated_at = $6 \
             WHERE tenant_id = $1 AND id = $2 AND version = $7",
        )
        .bind($tenant.as_str())
        .bind(order.id.as_str())
        .bind(order.status.as_str())
        .bind(version)
        .bind(serde_json::to_string(order)?)
        .bind(now_ms())
        .bind($read_version)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if written != 1 {
            return Err(StoreError::Conflict(format!(
                "order {} changed while locked",
                order.id
            )));
        }
        if let Some(e) = entry {
            query(
                "INSERT INTO order_events (tenant_id, order_id, seq, from_status, to_status, \
                 actor, action, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind($tenant.as_str())
            .bind(order.id.as_str())
            .bind(i64::from(e.seq))
            .bind(e.from.map(|s| s.as_str()))
            .bind(e.to.as_str())
            .bind(serde_json::to_string(&e.actor)?)
            .bind(serde_json::to_string(&e.action)?)
            .bind(e.at.0)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Store {
    // ---- checkout sessions ----------------------------------------------------------

    /// Stores a Checkout Session made for an order. False when this session id was
    /// already stored (a retried create that the provider answered with the same
    /// session); another session with the same order and attempt is a conflict.
    pub async fn save_checkout_session(&self, s: &CheckoutSessionRecord) -> Result<bool> {
        self.write(async || {
            let sql = format!(
                "INSERT INTO checkout_sessions ({SESSION_COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (provider, session_id) DO NOTHING"
            );
            let inserted = with_pool!(self, |p| {
                let r = query(&sql)
                    .bind(&s.provider)
                    .bind(&s.session_id)
                    .bind(&s.tenant_id)
                    .bind(&s.order_id)
                    .bind(s.attempt)
                    .bind(s.amount)
                    .bind(&s.currency)
                    .bind(&s.url)
                    .bind(&s.status)
                    .bind(&s.payment_intent)
                    .bind(s.expires_at)
                    .bind(s.created_at)
                    .execute(p)
                    .await;
                match r {
                    Ok(done) => done.rows_affected() == 1,
                    Err(sqlx::Error::Database(e))
                        if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                    {
                        return Err(StoreError::Conflict(format!(
                            "order {} already has a checkout session for attempt {}",
                            s.order_id, s.attempt
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            });
            Ok(inserted)
        })
        .await
    }

    /// A stored Checkout Session by the provider's id.
    pub async fn checkout_session(
        &self,
        provider: &str,
        session_id: &str,
    ) -> Result<Option<CheckoutSessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM checkout_sessions WHERE provider = $1 AND session_id = $2"
        );
        with_pool!(self, |p| {
            let row = query(&sql)
                .bind(provider)
                .bind(session_id)
                .fetch_optional(p)
                .await?;
            Ok(match row {
                Some(r) => Some(session_row!(&r)),
                None => None,
            })
        })
    }

    /// An order's Checkout Sessions, oldest attempt first.
    pub async fn checkout_sessions_for_order(
        &self,
        tenant: &TenantId,
        order: &OrderId,
    ) -> Result<Vec<CheckoutSessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM checkout_sessions \
             WHERE tenant_id = $1 AND order_id = $2 ORDER BY attempt"
        );
        with_pool!(self, |p| {
            let rows = query(&sql)
                .bind(tenant.as_str())
                .bind(order.as_str())
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(session_row!(r));
            }
            Ok(out)
        })
    }

    /// Sets a stored session's status (and payment intent, when given). False when
    /// there is no such session.
    pub async fn set_checkout_status(
        &self,
        provider: &str,
        session_id: &str,
        status: &str,
        payment_intent: Option<&str>,
    ) -> Result<bool> {
        self.write(async || {
            with_pool!(self, |p| {
                Ok(query(
                    "UPDATE checkout_sessions SET status = $3, \
                 payment_intent = COALESCE($4, payment_intent), updated_at = $5 \
                 WHERE provider = $1 AND session_id = $2",
                )
                .bind(provider)
                .bind(session_id)
                .bind(status)
                .bind(payment_intent)
                .bind(now_ms())
                .execute(p)
                .await?
                .rows_affected()
                    == 1)
            })
        })
        .await
    }

    // ---- payment events -------------------------------------------------------------

    /// Records a payment event for an order and applies what it means, in one
    /// transaction: nothing at all when the event id was recorded before
    /// ([`PaymentRecorded::Duplicate`]); otherwise the event row, the order's payment
    /// or flag (decided by [`Order::settle`] on the order as locked and read in the
    /// transaction), and the session's new status. See the module docs.
    pub async fn record_payment(
        &self,
        tenant: &TenantId,
        order_id: &OrderId,
        event: &PaymentEventInput<'_>,
        action: &PaymentAction<'_>,
    ) -> Result<PaymentRecorded> {
        let received = now_ms();
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let fresh = query(
                "INSERT INTO payment_events (provider, event_id, tenant_id, order_id, kind, amount, \
                 currency, received_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received') \
                 ON CONFLICT (provider, event_id) DO NOTHING",
            )
            .bind(event.provider)
            .bind(event.event_id)
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .bind(event.kind)
            .bind(event.amount)
            .bind(event.currency)
            .bind(received)
            .execute(&mut *tx)
            .await;
            let fresh = match fresh {
                Ok(r) => r.rows_affected() == 1,
                // The order is not the tenant's (or is gone): say so, not "database error".
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation =>
                {
                    return Err(not_found(order_id));
                }
                Err(e) => return Err(e.into()),
            };
            if !fresh {
                tx.rollback().await?;
                return Ok(PaymentRecorded::Duplicate);
            }
            let (version, mut order) = lock_order!(self, tx, tenant, order_id);
            let outcome = match action {
                PaymentAction::Record { outcome } => PaymentOutcome::Noted(outcome),
                PaymentAction::Settle {
                    evidence,
                    actor,
                    at,
                } => match order.settle(evidence, actor, *at) {
                    Settlement::Pay(entry) => {
                        order
                            .apply(entry.clone())
                            .map_err(|e| StoreError::Conflict(e.to_string()))?;
                        write_order!(tx, tenant, &order, version, Some(&entry));
                        PaymentOutcome::Paid
                    }
                    Settlement::AlreadyPaid => PaymentOutcome::AlreadyPaid,
                    Settlement::Flag(flag) => {
                        if order.add_flag(flag.clone()) {
                            write_order!(tx, tenant, &order, version, None);
                        }
                        PaymentOutcome::Flagged(flag)
                    }
                    Settlement::Refused(e) => PaymentOutcome::Refused(e.to_string()),
                },
            };
            query(
                "UPDATE payment_events SET outcome = $3 WHERE provider = $1 AND event_id = $2",
            )
            .bind(event.provider)
            .bind(event.event_id)
            .bind(outcome.as_str())
            .execute(&mut *tx)
            .await?;
            if let Some(s) = &event.session {
                query(
                    "UPDATE checkout_sessions SET status = $3, \
                     payment_intent = COALESCE($4, payment_intent), updated_at = $5 \
                     WHERE provider = $1 AND session_id = $2",
                )
                .bind(event.provider)
                .bind(s.session_id)
                .bind(s.status)
                .bind(s.payment_intent)
                .bind(received)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(PaymentRecorded::Recorded {
                outcome,
                order: Box::new(order),
            })
        })
        }).await
    }

    /// An order's recorded payment events, in the order they were received.
    pub async fn payment_events(
        &self,
        tenant: &TenantId,
        order: &OrderId,
    ) -> Result<Vec<PaymentEventRecord>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT provider, event_id, order_id, kind, amount, currency, received_at, outcome \
                 FROM payment_events WHERE tenant_id = $1 AND order_id = $2 \
                 ORDER BY received_at, event_id",
            )
            .bind(tenant.as_str())
            .bind(order.as_str())
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(PaymentEventRecord {
                    provider: r.try_get("provider")?,
                    event_id: r.try_get("event_id")?,
                    order_id: r.try_get("order_id")?,
                    kind: r.try_get("kind")?,
                    amount: r.try_get("amount")?,
                    currency: r.try_get("currency")?,
                    received_at: r.try_get("received_at")?,
                    outcome: r.try_get("outcome")?,
                });
            }
            Ok(out)
        })
    }

    // ---- refunds --------------------------------------------------------------------

    /// Reserves a refund: checks it against the order ([`Order::refund`]) and against
    /// what other pending refunds already hold, then records it as `pending`. The
    /// inner error names the rule broken (with what can still be refunded); nothing
    /// is written then. A refund id used before is a conflict.
    pub async fn reserve_refund(
        &self,
        tenant: &TenantId,
        order_id: &OrderId,
        refund: &NewRefund<'_>,
    ) -> Result<std::result::Result<Order, TransitionError>> {
        let now = now_ms();
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let (_, order) = lock_order!(self, tx, tenant, order_id);
            let pending: i64 = query(
                "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS held FROM refunds \
                 WHERE tenant_id = $1 AND order_id = $2 AND status = 'pending'",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get("held")?;
            let available = order.refundable().saturating_sub(pending);
            let checked = match order.refund(refund.amount, refund.actor, UnixMs(now)) {
                Err(e) => Err(e),
                Ok(_) if refund.amount > available => Err(TransitionError::RefundTooLarge {
                    refundable: available,
                    requested: refund.amount,
                }),
                Ok(_) => Ok(()),
            };
            if let Err(e) = checked {
                tx.rollback().await?;
                return Ok(Err(e));
            }
            let inserted = query(
                "INSERT INTO refunds (tenant_id, order_id, id, amount, provider, provider_ref, status, \
                 reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, 'pending', $6, $7, $7)",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .bind(refund.id)
            .bind(refund.amount)
            .bind(refund.provider)
            .bind(refund.reason)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                {
                    return Err(StoreError::Conflict(format!(
                        "refund id {} is already used",
                        refund.id
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            Ok(Ok(order))
        })
        }).await
    }

    /// Completes a reserved refund the provider accepted (its reference, e.g. `re_…`):
    /// the order's refund entry (a full refund moves it to `refunded`) and the refund's
    /// status, in one transaction. Completing it again returns the order unchanged.
    pub async fn complete_refund(
        &self,
        tenant: &TenantId,
        order_id: &OrderId,
        refund_id: &str,
        provider_ref: Option<&str>,
        actor: &Actor,
    ) -> Result<Order> {
        let now = now_ms();
        self.write(async || {
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let (version, mut order) = lock_order!(self, tx, tenant, order_id);
            let row = query(
                "SELECT amount, status FROM refunds WHERE tenant_id = $1 AND order_id = $2 AND id = $3",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .bind(refund_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("refund {refund_id}")))?;
            let amount: i64 = row.try_get("amount")?;
            let status: String = row.try_get("status")?;
            match status.as_str() {
                "pending" => {}
                "succeeded" => {
                    tx.rollback().await?;
                    return Ok(order);
                }
                other => {
                    return Err(StoreError::Conflict(format!(
                        "refund {refund_id} is {other}"
                    )));
                }
            }
            let entry = order
                .refund(amount, actor, UnixMs(now))
                .map_err(|e| StoreError::Conflict(e.to_string()))?;
            order
                .apply(entry.clone())
                .map_err(|e| StoreError::Conflict(e.to_string()))?;
            write_order!(tx, tenant, &order, version, Some(&entry));
            query(
                "UPDATE refunds SET status = 'succeeded', provider_ref = $4, updated_at = $5 \
                 WHERE tenant_id = $1 AND order_id = $2 AND id = $3",
            )
            .bind(tenant.as_str())
            .bind(order_id.as_str())
            .bind(refund_id)
            .bind(provider_ref)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(order)
        })
        }).await
    }

    /// Marks a pending refund failed (the provider refused it), releasing what it held.
    pub async fn fail_refund(&self, tenant: &TenantId, refund_id: &str) -> Result<bool> {
        self.write(async || {
            with_pool!(self, |p| {
                Ok(query(
                    "UPDATE refunds SET status = 'failed', updated_at = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
                )
                .bind(tenant.as_str())
                .bind(refund_id)
                .bind(now_ms())
                .execute(p)
                .await?
                .rows_affected()
                    == 1)
            })
        })
        .await
    }

    /// An order's refunds, oldest first.
    pub async fn refunds(&self, tenant: &TenantId, order: &OrderId) -> Result<Vec<RefundRecord>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT id, order_id, amount, provider, provider_ref, status, reason, created_at \
                 FROM refunds WHERE tenant_id = $1 AND order_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant.as_str())
            .bind(order.as_str())
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(RefundRecord {
                    id: r.try_get("id")?,
                    order_id: r.try_get("order_id")?,
                    amount: r.try_get("amount")?,
                    provider: r.try_get("provider")?,
                    provider_ref: r.try_get("provider_ref")?,
                    status: r.try_get("status")?,
                    reason: r.try_get("reason")?,
                    created_at: r.try_get("created_at")?,
                });
            }
            Ok(out)
        })
    }
}
