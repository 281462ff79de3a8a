//! Kitchen tickets and receipts, one of each per order at most.

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::Serialize;
use sqlx::Row;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::OrderId;
use stonepot_domain::commerce::order::Order;

/// A fired kitchen ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub order_id: String,
    /// Counts up per tenant from 1.
    pub number: i64,
    pub fired_at: i64,
}

/// A receipt written for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub order_id: String,
    pub path: String,
    pub sha256: String,
    pub bytes: i64,
    pub written_at: i64,
}

/// How many times a ticket number clash (two PostgreSQL transactions picking the same
/// next number) is retried before giving up.
const NUMBER_RETRIES: usize = 8;

impl Store {
    /// Fires the order's kitchen ticket if it has none: `Some` with the new ticket the
    /// one time it fires, `None` every later time. Concurrent callers race on the
    /// primary key, so exactly one of them fires it.
    pub async fn fire_ticket(&self, tenant: &TenantId, order: &OrderId) -> Result<Option<Ticket>> {
        let at = now_ms();
        for _ in 0..NUMBER_RETRIES {
            let fired = self
                .write::<_, StoreError>(async || {
                    Ok(with_pool!(self, |p| {
                        query(
                            "INSERT INTO kitchen_tickets (tenant_id, order_id, number, fired_at) \
                     SELECT $1, $2, COALESCE(MAX(number), 0) + 1, $3 FROM kitchen_tickets \
                     WHERE tenant_id = $1 \
                     ON CONFLICT (tenant_id, order_id) DO NOTHING RETURNING number",
                        )
                        .bind(tenant.as_str())
                        .bind(order.as_str())
                        .bind(at)
                        .fetch_optional(p)
                        .await
                        .and_then(|row| row.map(|r| r.try_get::<i64, _>("number")).transpose())
                    }))
                })
                .await?;
            match fired {
                Ok(Some(number)) => {
                    return Ok(Some(Ticket {
                        order_id: order.as_str().to_string(),
                        number,
                        fired_at: at,
                    }));
                }
                Ok(None) => return Ok(None),
                // Another transaction took this number first; take the next one.
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::UniqueViolation => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!(
            "could not number the ticket of order {order}: too many concurrent tickets"
        )))
    }

    /// The order's ticket, if it has fired.
    pub async fn ticket(&self, tenant: &TenantId, order: &OrderId) -> Result<Option<Ticket>> {
        with_pool!(self, |p| {
            let row = query(
                "SELECT number, fired_at FROM kitchen_tickets WHERE tenant_id = $1 AND order_id = $2",
            )
            .bind(tenant.as_str())
            .bind(order.as_str())
            .fetch_optional(p)
            .await?;
            row.map(|r| {
                Ok(Ticket {
                    order_id: order.as_str().to_string(),
                    number: r.try_get("number")?,
                    fired_at: r.try_get("fired_at")?,
                })
            })
            .transpose()
        })
    }

    /// The tickets whose orders the kitchen still works on (confirmed, paid, in the
    /// kitchen or ready), oldest first, with their orders.
    pub async fn open_tickets(&self, tenant: &TenantId) -> Result<Vec<(Ticket, Order)>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT k.order_id, k.number, k.fired_at, o.body FROM kitchen_tickets k \
                 JOIN orders o ON o.tenant_id = k.tenant_id AND o.id = k.order_id \
                 WHERE k.tenant_id = $1 AND o.status IN ('confirmed', 'paid', 'in_kitchen', 'ready') \
                 ORDER BY k.number",
            )
            .bind(tenant.as_str())
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let body: String = r.try_get("body")?;
                out.push((
                    Ticket {
                        order_id: r.try_get("order_id")?,
                        number: r.try_get("number")?,
                        fired_at: r.try_get("fired_at")?,
                    },
                    serde_json::from_str(&body)?,
                ));
            }
            Ok(out)
        })
    }

    /// Records the order's receipt unless it has one: true the one time it is
    /// recorded. The bytes were written to object storage first, so a receipt row
    /// always points at a real object.
    pub async fn record_receipt(&self, tenant: &TenantId, receipt: &Receipt) -> Result<bool> {
        self.write(async || {
            with_pool!(self, |p| {
                Ok(query(
                "INSERT INTO order_receipts (tenant_id, order_id, path, sha256, bytes, written_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, order_id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(&receipt.order_id)
            .bind(&receipt.path)
            .bind(&receipt.sha256)
            .bind(receipt.bytes)
            .bind(receipt.written_at)
            .execute(p)
            .await?
            .rows_affected()
                == 1)
            })
        })
        .await
    }

    /// The order's receipt, if one was written.
    pub async fn receipt(&self, tenant: &TenantId, order: &OrderId) -> Result<Option<Receipt>> {
        with_pool!(self, |p| {
            let row = query(
                "SELECT path, sha256, bytes, written_at FROM order_receipts \
                 WHERE tenant_id = $1 AND order_id = $2",
            )
            .bind(tenant.as_str())
            .bind(order.as_str())
            .fetch_optional(p)
            .await?;
            row.map(|r| {
                Ok(Receipt {
                    order_id: order.as_str().to_string(),
                    path: r.try_get("path")?,
                    sha256: r.try_get("sha256")?,
                    bytes: r.try_get("bytes")?,
                    written_at: r.try_get("written_at")?,
                })
            })
            .transpose()
        })
    }
}
