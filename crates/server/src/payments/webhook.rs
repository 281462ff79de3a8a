//! Stripe webhooks: verify, then read, then act.
//!
//! The `Stripe-Signature` header is checked against the raw body before a byte of it
//! is parsed; a missing, malformed, wrong or expired signature is a 400 naming the
//! problem, and nothing is recorded. A verified event is read as untyped JSON (so new
//! fields and event types never break us) and:
//!
//! - `checkout.session.completed` and `checkout.session.async_payment_succeeded` go
//!   to [`super::fulfil`];
//! - `checkout.session.expired` marks the stored session expired (deduplicated like
//!   any other event);
//! - anything else is acknowledged with 200 and ignored, as Stripe asks.
//!
//! Sessions we did not make (another integration on the same Stripe account) are
//! acknowledged and ignored too. A 4xx makes Stripe retry for days, so it is kept for
//! events that are really wrong.

use super::STRIPE;
use super::fulfil::{Evidence, Fulfilled, fulfil};
use super::stripe::CheckoutSession;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use serde_json::{Value, json};
use stonepot_domain::TenantId;
use stonepot_domain::commerce::{OrderId, stripe_signature};
use stonepot_store::{PaymentAction, PaymentEventInput, PaymentRecorded, SessionUpdate};

/// The longest event id we store.
const EVENT_ID_MAX: usize = 255;

/// Checks the signature of a webhook body; 400 naming the problem otherwise.
pub fn verify(app: &App, signature: Option<&str>, body: &[u8]) -> ApiResult<()> {
    let secrets = &app.config.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            "STRIPE_WEBHOOK_SECRET is not set on the server, so no webhook can be verified",
        ));
    }
    let reject = |code: &'static str, message: String| {
        app.metrics.count(&app.metrics.webhooks_rejected);
        Err(ApiError::bad_request(code, message))
    };
    let Some(header) = signature else {
        return reject(
            "missing_signature",
            "the Stripe-Signature header is missing".into(),
        );
    };
    let keys: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).collect();
    match stripe_signature::verify(header, body, &keys, jiff::Timestamp::now().as_second()) {
        Ok(_) => Ok(()),
        Err(e) => reject(e.code(), e.to_string()),
    }
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("malformed_event", message)
}

/// Handles a verified event body; the JSON answer says what was done.
pub async fn handle(app: &App, body: &[u8]) -> ApiResult<Value> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("the body is not JSON: {e}")))?;
    if event.get("object").and_then(Value::as_str) != Some("event") {
        return Err(malformed("object: not an event"));
    }
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= EVENT_ID_MAX)
        .ok_or_else(|| malformed("id: missing, empty or longer than 255 characters"))?;
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("type: missing or not a string"))?;
    let handled = matches!(
        kind,
        "checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.expired"
    );
    if !handled {
        return Ok(json!({"received": true, "id": id, "ignored": kind}));
    }
    let object = event
        .pointer("/data/object")
        .ok_or_else(|| malformed("data.object: missing"))?;
    let session =
        CheckoutSession::from_json(object).map_err(|e| malformed(format!("data.object.{e}")))?;
    let Some(stored) = app.store.checkout_session(STRIPE, &session.id).await? else {
        tracing::info!(event = id, session = %session.id, "webhook for a session we did not make; ignored");
        return Ok(json!({"received": true, "id": id, "ignored": "unknown checkout session"}));
    };
    if kind == "checkout.session.expired" {
        return expired(app, &stored, id, kind, &session).await;
    }
    let done = fulfil(
        app,
        &stored,
        &Evidence {
            event_id: id.to_string(),
            kind: kind.to_string(),
            session,
        },
    )
    .await?;
    Ok(answer(id, &done))
}

fn answer(id: &str, done: &Fulfilled) -> Value {
    let o = done.order();
    let mut v = json!({
        "received": true,
        "id": id,
        "outcome": done.as_str(),
        "orderId": o.id.as_str(),
        "status": o.status.as_str(),
    });
    if let Fulfilled::Flagged(_, flag) = done {
        v["flag"] = json!(flag.problem.to_string());
    }
    v
}

/// Records an expired session (once per event id) and tells the guest.
async fn expired(
    app: &App,
    stored: &stonepot_store::CheckoutSessionRecord,
    id: &str,
    kind: &str,
    session: &CheckoutSession,
) -> ApiResult<Value> {
    super::fulfil::check_claims(stored, session)?;
    let tenant = TenantId::new(&stored.tenant_id).map_err(ApiError::internal)?;
    let order_id = OrderId::new(stored.order_id.clone()).map_err(ApiError::internal)?;
    let recorded = app
        .store
        .record_payment(
            &tenant,
            &order_id,
            &PaymentEventInput {
                provider: STRIPE,
                event_id: id,
                kind,
                amount: Some(session.amount_total),
                currency: Some(&session.currency),
                session: Some(SessionUpdate {
                    session_id: &session.id,
                    status: "expired",
                    payment_intent: None,
                }),
            },
            &PaymentAction::Record { outcome: "expired" },
        )
        .await?;
    match recorded {
        PaymentRecorded::Duplicate => {
            app.metrics.count(&app.metrics.payment_duplicates);
            Ok(json!({"received": true, "id": id, "outcome": "duplicate"}))
        }
        PaymentRecorded::Recorded { order, .. } => {
            if !order.is_paid() {
                super::checkout::show_outcome(
                    app,
                    &order,
                    "Payment link expired",
                    "The payment link has expired; confirm again to get a new one, or pay at the counter.",
                )
                .await;
            }
            Ok(
                json!({"received": true, "id": id, "outcome": "expired", "orderId": order.id.as_str()}),
            )
        }
    }
}
