//! Receipts: one HTML page per paid order, written to object storage once, its SHA-256
//! kept in the store beside the order.
//!
//! The page is a pure function of the order and its tenant (times in the tenant's zone,
//! nothing from the clock), so rendering it twice — two payment events racing, a
//! retry after a crash — writes the same bytes to the same path, and the store keeps the
//! first record.

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::pages::Pages;
use jiff::tz::TimeZone;
use serde_json::json;
use stonepot_domain::commerce::UnixMs;
use stonepot_domain::commerce::order::{Order, PaymentMethod};
use stonepot_domain::{Tenant, TenantId};
use stonepot_store::Receipt;

/// Writes the paid order's receipt unless it has one: the bytes go to object storage
/// first, then the store records their path and hash (insert-if-absent), so a recorded
/// receipt always points at a real object and an order never has two. `ticket` is the
/// order's kitchen ticket number, printed on the receipt (the caller has just read it).
pub async fn ensure(
    app: &App,
    tenant_id: &TenantId,
    order: &Order,
    ticket: Option<i64>,
) -> ApiResult<Option<Receipt>> {
    if !order.is_paid() {
        return Ok(None);
    }
    if let Some(r) = app.store.receipt(tenant_id, &order.id).await? {
        return Ok(Some(r));
    }
    let tenant = app.tenant(tenant_id).await?;
    let html = render(&app.pages, &tenant, order, ticket).map_err(ApiError::internal)?;
    let bytes = i64::try_from(html.len()).unwrap_or(i64::MAX);
    let at = path(&tenant, order);
    let sha256 = app
        .objects
        .put(&at, html.into_bytes(), "text/html; charset=utf-8")
        .await
        .map_err(ApiError::internal)?;
    let receipt = Receipt {
        order_id: order.id.as_str().to_string(),
        path: at,
        sha256,
        bytes,
        written_at: jiff::Timestamp::now().as_millisecond(),
    };
    if app.store.record_receipt(tenant_id, &receipt).await? {
        app.metrics.receipt_written();
        return Ok(Some(receipt));
    }
    // Another caller recorded it first (the same bytes at the same path).
    Ok(app.store.receipt(tenant_id, &order.id).await?)
}

/// Where an order's receipt lives in object storage.
pub fn path(tenant: &Tenant, order: &Order) -> String {
    format!("receipts/{}/{}.html", tenant.id, order.id)
}

fn local_time(at: UnixMs, tz: &TimeZone) -> String {
    jiff::Timestamp::from_millisecond(at.0)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_rfc3339())
}

/// The receipt's HTML.
pub fn render(
    pages: &Pages,
    tenant: &Tenant,
    order: &Order,
    ticket: Option<i64>,
) -> anyhow::Result<String> {
    let tz = TimeZone::get(&tenant.timezone).unwrap_or(TimeZone::UTC);
    let money = |minor: i64| {
        format!(
            "{} {}",
            order.currency.format_minor(minor),
            order.currency.code()
        )
    };
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| {
            let mods: Vec<&str> = l
                .priced
                .modifiers
                .iter()
                .filter(|m| !m.is_default)
                .map(|m| m.name.as_str())
                .collect();
            json!({
                "quantity": l.priced.quantity,
                "name": l.priced.name,
                "modifiers": mods.join(", "),
                "total": money(l.priced.line_total),
            })
        })
        .collect();
    let tax_line = match (order.tax > 0, order.tax_inclusive) {
        (false, _) => None,
        (true, false) => Some("Tax"),
        (true, true) => Some("Included tax"),
    };
    pages.render(
        "receipt.html",
        minijinja::context! {
            tenant => tenant.name,
            order_id => order.id.as_str(),
            ticket => ticket,
            order_type => order.order_type.as_str().replace('_', " "),
            placed_at => local_time(order.created_at, &tz),
            paid_at => order.paid_at.map(|t| local_time(t, &tz)),
            payment => match order.payment_method {
                PaymentMethod::Counter => "at the counter",
                PaymentMethod::Stripe => "by card online",
            },
            lines => lines,
            subtotal => money(order.subtotal),
            tax_line => tax_line,
            tax => money(order.tax),
            service_charge => (order.service_charge > 0).then(|| money(order.service_charge)),
            tip => (order.tip > 0).then(|| money(order.tip)),
            total => money(order.total),
            refunded => (order.refunded > 0).then(|| money(order.refunded)),
            quote_hash => order.quote_hash.get(..12).unwrap_or(&order.quote_hash),
        },
    )
}
