//! Checkout Sessions for orders: made only for a confirmed, unpaid Stripe order, for
//! exactly its total, expiring after [`SESSION_TTL_SECS`]; reused while open, so a retried
//! confirmation never makes a second one; shown on the guest's display as a `card`
//! with the link and a QR code the server renders as SVG.
//!
//! The display's `card` takes an `imageUrl` that must be an http(s) URL or a path on
//! this site (no `data:` URLs), so the QR code is served at
//! `/checkout/{session}/qr`: a path keyed by the session's unguessable id, showing
//! nothing the link itself does not.

use super::STRIPE;
use super::stripe::{NewCheckout, StripeClient};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::order::{Order, OrderStatus, PaymentMethod};
use stonepot_store::CheckoutSessionRecord;
use utoipa::ToSchema;

/// How long a Checkout Session stays payable. Stripe's minimum is 30 minutes from the
/// create call; a minute more keeps a slow request on the right side of it.
pub const SESSION_TTL_SECS: i64 = 31 * 60;

/// The most Stripe Checkout takes in one payment, in minor units (999,999.99 in a
/// two-decimal currency).
pub const MAX_AMOUNT: i64 = 99_999_999;

/// An open session an order can be paid through.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkout {
    /// The Checkout Session id (`cs_…`).
    pub session_id: String,
    /// Stripe's payment page.
    pub url: String,
    /// Minor units: the order total.
    pub amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// RFC 3339.
    pub expires_at: String,
    /// The QR code of `url`, as SVG (a path on this server).
    pub qr_url: String,
}

/// The Stripe client, or 422 naming the setting when payments are not configured.
pub fn client(app: &App) -> ApiResult<&StripeClient> {
    app.stripe.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "stripe_not_configured",
            "paymentMethod: stripe needs STRIPE_SECRET_KEY on the server; pay at the counter instead",
        )
    })
}

/// Refuses a total Stripe cannot charge, naming the limit.
pub fn check_amount(total: i64) -> ApiResult<()> {
    if total <= 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing_to_pay",
            format!("the total is {total}; Stripe Checkout needs an amount above zero"),
        ));
    }
    if total > MAX_AMOUNT {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_too_large",
            format!(
                "the total {total} is over Stripe Checkout's limit of {MAX_AMOUNT} minor units"
            ),
        ));
    }
    Ok(())
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn rfc3339_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn describe(rec: &CheckoutSessionRecord) -> Checkout {
    Checkout {
        session_id: rec.session_id.clone(),
        url: rec.url.clone(),
        amount: rec.amount,
        currency: rec.currency.clone(),
        expires_at: rfc3339_ms(rec.expires_at),
        qr_url: format!("/checkout/{}/qr", rec.session_id),
    }
}

/// Opens (or reuses) the Checkout Session of a Stripe order and shows it on the
/// guest's display. `base` is the public origin for the return URLs.
///
/// Refused with 409 unless the order is a confirmed, unpaid Stripe order. A failure at
/// Stripe is a 502/503 and changes nothing here: the order stays confirmed and unpaid,
/// and the next call tries again with the same idempotency key, so Stripe hands back
/// the session it may have made meanwhile rather than a second one.
pub async fn start(app: &App, tenant: &TenantId, order: &Order, base: &str) -> ApiResult<Checkout> {
    let stripe = client(app)?;
    if order.payment_method != PaymentMethod::Stripe {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_a_stripe_order",
            format!("order {} is paid at the counter", order.id),
        ));
    }
    if order.is_paid() || order.status != OrderStatus::Confirmed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_payable",
            format!(
                "order {} is {}{}; only a confirmed, unpaid order can be paid",
                order.id,
                order.status,
                if order.is_paid() { " and paid" } else { "" }
            ),
        ));
    }
    check_amount(order.total)?;
    let sessions = app
        .store
        .checkout_sessions_for_order(tenant, &order.id)
        .await?;
    // Reuse the newest session while it can still be paid for a while.
    if let Some(open) = sessions.last().filter(|s| {
        s.status == "open" && s.amount == order.total && s.expires_at > (now_secs() + 60) * 1000
    }) {
        let checkout = describe(open);
        show(app, order, &checkout).await;
        return Ok(checkout);
    }
    let attempt = i64::try_from(sessions.len()).map_err(ApiError::internal)?;
    let currency = order.currency.code().to_ascii_lowercase();
    let key = format!("stonepot-checkout-{tenant}-{}-{attempt}", order.id);
    let name = format!("Order {}", order.id);
    let success = format!("{base}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}");
    let cancel = format!("{base}/checkout/cancel?order_id={}", order.id);
    let session = stripe
        .create_checkout_session(&NewCheckout {
            tenant_id: tenant.as_str(),
            order_id: order.id.as_str(),
            amount: order.total,
            currency: &currency,
            name: &name,
            success_url: &success,
            cancel_url: &cancel,
            expires_at: now_secs() + SESSION_TTL_SECS,
            idempotency_key: &key,
        })
        .await?;
    if session.amount_total != order.total || session.currency != currency {
        // Never leave a payable session for the wrong money.
        let _ = stripe.expire_checkout_session(&session.id).await;
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "payment_provider_mismatch",
            format!(
                "Stripe made a session for {} {}, not the order's {} {currency}; it was expired",
                session.amount_total, session.currency, order.total
            ),
        ));
    }
    let url = session.url.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "payment_provider_mismatch",
            "Stripe made a session without a payment page URL",
        )
    })?;
    let rec = CheckoutSessionRecord {
        provider: STRIPE.into(),
        session_id: session.id.clone(),
        tenant_id: tenant.to_string(),
        order_id: order.id.to_string(),
        attempt,
        amount: session.amount_total,
        currency: session.currency.clone(),
        url,
        status: session.status.clone(),
        payment_intent: session.payment_intent.clone(),
        expires_at: session.expires_at.saturating_mul(1000),
        created_at: jiff::Timestamp::now().as_millisecond(),
    };
    app.store.save_checkout_session(&rec).await?;
    let checkout = describe(&rec);
    show(app, order, &checkout).await;
    Ok(checkout)
}

/// Puts the payment card on the guest's display. A display that is gone does not undo
/// the session.
async fn show(app: &App, order: &Order, c: &Checkout) {
    let total = format!(
        "{} {}",
        order.currency.format_minor(order.total),
        order.currency.code()
    );
    let data = json!({
        "title": "Pay for your order",
        "body": format!("Scan the code or open the link to pay {total} with Stripe. It stays open until {}.", c.expires_at),
        "imageUrl": c.qr_url,
        "fields": [
            {"label": "Total", "value": total},
            {"label": "Pay here", "value": c.url},
        ],
    });
    if let Err(e) = crate::commerce::show_put(
        app,
        order.conversation_id.as_str(),
        "card",
        "checkout",
        data,
    )
    .await
    {
        tracing::warn!(error = %e.message, order = %order.id, "could not show the checkout card");
    }
}

/// Replaces the payment card once the order is paid (or its session expired).
pub async fn show_outcome(app: &App, order: &Order, title: &str, body: &str) {
    let data = json!({"title": title, "body": body});
    let _ = crate::commerce::show_put(
        app,
        order.conversation_id.as_str(),
        "card",
        "checkout",
        data,
    )
    .await;
}

/// The QR code of a stored session's payment URL, as SVG.
pub async fn qr_svg(app: &App, session_id: &str) -> ApiResult<String> {
    let rec = if super::stripe::valid_id(session_id) {
        app.store.checkout_session(STRIPE, session_id).await?
    } else {
        None
    };
    let rec =
        rec.ok_or_else(|| ApiError::not_found(format!("no checkout session '{session_id}'")))?;
    let code = qrcode::QrCode::new(rec.url.as_bytes()).map_err(ApiError::internal)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build())
}
