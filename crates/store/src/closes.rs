//! The daily close: each tenant's close settings, the facts a close is computed from,
//! and the append-only record of its reports.
//!
//! A close is kept as revisions: [`Store::save_close`] compares the new report's SHA-256
//! with the latest revision of the day and either returns that revision untouched (the
//! same bytes: a re-run) or adds the next one (an amendment). Rows are never updated —
//! a trigger refuses it — so revision 0, the original close, stays as it was.

use crate::{Result, Store, StoreError, now_ms, with_pool};
use serde::Serialize;
use sqlx::Row;
use stonepot_domain::commerce::close::{CloseEvent, CloseOrder, CloseSettings, DayError, Window};
use stonepot_domain::commerce::{OrderStatus, PaymentMethod, UnixMs};
use stonepot_domain::{Currency, TenantId};

/// One stored revision of a day's close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseRecord {
    pub business_date: String,
    /// 0 for the original close, then 1, 2, … for amendments.
    pub revision: u32,
    /// The canonical JSON report, exactly as rendered.
    #[serde(skip)]
    pub report: String,
    /// The CSV rendering, exactly as rendered.
    #[serde(skip)]
    pub csv: String,
    pub sha256: String,
    /// The business day's span, ms since the epoch.
    pub window_start: i64,
    pub window_end: i64,
    /// When this revision was stored, ms since the epoch.
    pub created_at: i64,
}

/// A revision without its bytes, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseRevision {
    pub revision: u32,
    pub sha256: String,
    pub created_at: i64,
}

/// A rendered report to store.
#[derive(Debug, Clone, Copy)]
pub struct NewClose<'a> {
    pub business_date: &'a str,
    pub report: &'a str,
    pub csv: &'a str,
    pub sha256: &'a str,
    pub window_start: i64,
    pub window_end: i64,
}

/// The outcome of [`Store::save_close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseSaved {
    /// The latest revision already has these bytes; nothing was written.
    Unchanged(CloseRecord),
    /// A new revision: 0 for a first close, more for an amendment.
    Created(CloseRecord),
}

impl CloseSaved {
    pub fn record(&self) -> &CloseRecord {
        match self {
            CloseSaved::Unchanged(r) | CloseSaved::Created(r) => r,
        }
    }
}

fn revision(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("close revision {v}")))
}

/// Builds a [`CloseRecord`] from a `closes` row of either backend.
macro_rules! close_row {
    ($r:expr) => {{
        let r = $r;
        CloseRecord {
            business_date: r.try_get("business_date")?,
            revision: revision(r.try_get("revision")?)?,
            report: r.try_get("report")?,
            csv: r.try_get("csv")?,
            sha256: r.try_get("sha256")?,
            window_start: r.try_get("window_start")?,
            window_end: r.try_get("window_end")?,
            created_at: r.try_get("created_at")?,
        }
    }};
}

/// Builds a [`CloseEvent`] from an event row joined with its order.
macro_rules! close_event_row {
    ($r:expr) => {{
        let r = $r;
        let seq: i64 = r.try_get("seq")?;
        let to: String = r.try_get("to_status")?;
        let action: String = r.try_get("action")?;
        let method: String = r.try_get("payment_method")?;
        let currency: String = r.try_get("currency")?;
        CloseEvent {
            order_id: r.try_get("order_id")?,
            payment_method: payment_method(&method)?,
            currency: Currency::from_code(&currency)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            seq: u32::try_from(seq).map_err(|_| StoreError::Corrupt(format!("event seq {seq}")))?,
            at: UnixMs(r.try_get("at")?),
            to: OrderStatus::parse(&to)
                .ok_or_else(|| StoreError::Corrupt(format!("order status '{to}'")))?,
            action: serde_json::from_str(&action)?,
        }
    }};
}

fn payment_method(s: &str) -> Result<PaymentMethod> {
    Ok(serde_json::from_value(serde_json::Value::String(
        s.to_string(),
    ))?)
}

const CLOSE_COLUMNS: &str =
    "business_date, revision, report, csv, sha256, window_start, window_end, created_at";

/// Every audit entry of the orders placed in the window, and the entries in the window
/// of orders placed outside it, each with its order's payment method and currency.
const EVENTS_SQL: &str = "\
    SELECT e.order_id, e.seq, e.to_status, e.action, e.at, o.payment_method, o.currency \
    FROM orders o JOIN order_events e ON e.tenant_id = o.tenant_id AND e.order_id = o.id \
    WHERE o.tenant_id = $1 AND o.created_at >= $2 AND o.created_at < $3 \
    UNION ALL \
    SELECT e.order_id, e.seq, e.to_status, e.action, e.at, o.payment_method, o.currency \
    FROM order_events e JOIN orders o ON o.tenant_id = e.tenant_id AND o.id = e.order_id \
    WHERE e.tenant_id = $1 AND e.at >= $2 AND e.at < $3 \
    AND (o.created_at < $2 OR o.created_at >= $3)";

impl Store {
    // ---- settings ------------------------------------------------------------------

    /// The tenant's close settings, or `None` when it never set any (the caller uses
    /// [`CloseSettings::default`]).
    pub async fn close_settings(&self, tenant: &TenantId) -> Result<Option<CloseSettings>> {
        with_pool!(self, |p| {
            let row =
                query("SELECT day_end, time_zone, cron FROM close_settings WHERE tenant_id = $1")
                    .bind(tenant.as_str())
                    .fetch_optional(p)
                    .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let (d, z, c): (String, String, String) = (
                        r.try_get("day_end")?,
                        r.try_get("time_zone")?,
                        r.try_get("cron")?,
                    );
                    CloseSettings::new(&d, &z, &c).map(Some).map_err(|e| {
                        StoreError::Corrupt(format!("close settings of {tenant}: {e}"))
                    })
                }
            }
        })
    }

    /// Sets the tenant's close settings (validated by their type).
    pub async fn set_close_settings(
        &self,
        tenant: &TenantId,
        settings: &CloseSettings,
    ) -> Result<()> {
        self.write(async || {
            with_pool!(self, |p| {
                query(
                    "INSERT INTO close_settings (tenant_id, day_end, time_zone, cron, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id) DO UPDATE SET day_end = excluded.day_end, \
                 time_zone = excluded.time_zone, cron = excluded.cron, \
                 updated_at = excluded.updated_at",
                )
                .bind(tenant.as_str())
                .bind(settings.day_end())
                .bind(settings.time_zone())
                .bind(settings.cron())
                .bind(now_ms())
                .execute(p)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every tenant with its close settings (the defaults where none were set), ordered
    /// by id. A stored setting that no longer validates (a time zone dropped from the
    /// time zone database) is that tenant's error, not everyone's.
    pub async fn close_schedules(
        &self,
    ) -> Result<Vec<(TenantId, std::result::Result<CloseSettings, DayError>)>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT t.id, s.day_end, s.time_zone, s.cron FROM tenants t \
                 LEFT JOIN close_settings s ON s.tenant_id = t.id ORDER BY t.id",
            )
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get("id")?;
                let id = TenantId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let d: Option<String> = r.try_get("day_end")?;
                let z: Option<String> = r.try_get("time_zone")?;
                let c: Option<String> = r.try_get("cron")?;
                let settings = match (d, z, c) {
                    (Some(d), Some(z), Some(c)) => CloseSettings::new(&d, &z, &c),
                    _ => Ok(CloseSettings::default()),
                };
                out.push((id, settings));
            }
            Ok(out)
        })
    }

    /// When the tenant was created, or `None` for an unknown tenant.
    pub async fn tenant_created_at(&self, tenant: &TenantId) -> Result<Option<UnixMs>> {
        with_pool!(self, |p| {
            let row = query("SELECT created_at FROM tenants WHERE id = $1")
                .bind(tenant.as_str())
                .fetch_optional(p)
                .await?;
            row.map(|r| Ok(UnixMs(r.try_get("created_at")?)))
                .transpose()
        })
    }

    // ---- facts ---------------------------------------------------------------------

    /// What a close of `window` is computed from, read in one transaction so orders and
    /// entries agree: the orders placed in the window, every audit entry of theirs, and
    /// the entries in the window of orders placed before or after it.
    pub async fn close_facts(
        &self,
        tenant: &TenantId,
        window: &Window,
    ) -> Result<(Vec<CloseOrder>, Vec<CloseEvent>)> {
        let (start, end) = (window.start_ms(), window.end_ms());
        with_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let rows = query(
                "SELECT body FROM orders WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
            )
            .bind(tenant.as_str())
            .bind(start)
            .bind(end)
            .fetch_all(&mut *tx)
            .await?;
            let mut orders = Vec::with_capacity(rows.len());
            for r in &rows {
                let body: String = r.try_get("body")?;
                orders.push(serde_json::from_str::<CloseOrder>(&body)?);
            }
            let rows = query(EVENTS_SQL)
                .bind(tenant.as_str())
                .bind(start)
                .bind(end)
                .fetch_all(&mut *tx)
                .await?;
            let mut events = Vec::with_capacity(rows.len());
            for r in &rows {
                events.push(close_event_row!(r));
            }
            tx.commit().await?;
            Ok((orders, events))
        })
    }

    // ---- reports -------------------------------------------------------------------

    /// Stores a rendered report as the day's next revision, unless the latest revision
    /// has the same SHA-256, in which case that revision is returned untouched. Two
    /// racing saves of the same day cannot both take a revision number (the primary
    /// key); the loser re-reads and, if its bytes are now the latest, gets them back.
    pub async fn save_close(&self, tenant: &TenantId, new: &NewClose<'_>) -> Result<CloseSaved> {
        let select = format!(
            "SELECT {CLOSE_COLUMNS} FROM closes WHERE tenant_id = $1 AND business_date = $2 \
             ORDER BY revision DESC LIMIT 1"
        );
        for _ in 0..3 {
            let outcome: Option<CloseSaved> = self.write::<_, StoreError>(async || Ok(with_pool!(self, |p| {
                let mut tx = p.begin().await?;
                let latest = query(&select)
                    .bind(tenant.as_str())
                    .bind(new.business_date)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| Ok::<_, StoreError>(close_row!(r)))
                    .transpose()?;
                let next = match &latest {
                    Some(l) if l.sha256 == new.sha256 => {
                        tx.commit().await?;
                        return Ok(Some(CloseSaved::Unchanged(l.clone())));
                    }
                    Some(l) => l.revision.checked_add(1).ok_or_else(|| {
                        StoreError::Corrupt(format!("close revision {}", l.revision))
                    })?,
                    None => 0,
                };
                let record = CloseRecord {
                    business_date: new.business_date.to_string(),
                    revision: next,
                    report: new.report.to_string(),
                    csv: new.csv.to_string(),
                    sha256: new.sha256.to_string(),
                    window_start: new.window_start,
                    window_end: new.window_end,
                    created_at: now_ms(),
                };
                let inserted = query(
                    "INSERT INTO closes (tenant_id, business_date, revision, report, csv, sha256, \
                     window_start, window_end, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant.as_str())
                .bind(&record.business_date)
                .bind(i64::from(record.revision))
                .bind(&record.report)
                .bind(&record.csv)
                .bind(&record.sha256)
                .bind(record.window_start)
                .bind(record.window_end)
                .bind(record.created_at)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {
                        tx.commit().await?;
                        Some(CloseSaved::Created(record))
                    }
                    Err(sqlx::Error::Database(e))
                        if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                    {
                        tx.rollback().await?;
                        None
                    }
                    Err(e) => return Err(e.into()),
                }
            }))).await?;
            if let Some(saved) = outcome {
                return Ok(saved);
            }
        }
        Err(StoreError::Conflict(format!(
            "the close of {} for {tenant} kept changing under concurrent runs",
            new.business_date
        )))
    }

    /// A revision of a day's close: the given one, or the latest.
    pub async fn close_record(
        &self,
        tenant: &TenantId,
        business_date: &str,
        revision: Option<u32>,
    ) -> Result<Option<CloseRecord>> {
        let sql = format!(
            "SELECT {CLOSE_COLUMNS} FROM closes WHERE tenant_id = $1 AND business_date = $2 \
             AND ($3 < 0 OR revision = $3) ORDER BY revision DESC LIMIT 1"
        );
        with_pool!(self, |p| {
            let row = query(&sql)
                .bind(tenant.as_str())
                .bind(business_date)
                .bind(revision.map_or(-1, i64::from))
                .fetch_optional(p)
                .await?;
            row.map(|r| Ok(close_row!(r))).transpose()
        })
    }

    /// Every revision of a day's close, oldest first (empty when it was never closed).
    pub async fn close_revisions(
        &self,
        tenant: &TenantId,
        business_date: &str,
    ) -> Result<Vec<CloseRevision>> {
        with_pool!(self, |p| {
            let rows = query(
                "SELECT revision, sha256, created_at FROM closes \
                 WHERE tenant_id = $1 AND business_date = $2 ORDER BY revision",
            )
            .bind(tenant.as_str())
            .bind(business_date)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(CloseRevision {
                    revision: revision(r.try_get("revision")?)?,
                    sha256: r.try_get("sha256")?,
                    created_at: r.try_get("created_at")?,
                });
            }
            Ok(out)
        })
    }
}
