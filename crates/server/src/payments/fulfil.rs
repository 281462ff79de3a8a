//! Fulfilment: the one place a Stripe payment reaches an order, used by the webhook
//! and by the success redirect alike.
//!
//! Both bring the same evidence — a Checkout Session Stripe says is paid, read from a
//! signed event or fetched from Stripe's API — under their own dedup id (the event id,
//! or `redirect:<session>`). [`fulfil`] checks the session belongs to the order and
//! tenant it names, then hands the evidence to [`stonepot_store::Store::record_payment`],
//! which in one transaction counts the id once and pays the order once, at exactly
//! its total and currency (anything else is flagged, never paid). Whatever the
//! outcome, [`crate::commerce::after_move`] follows a payment, and a repeat finishes
//! what a crash may have interrupted (a ticket not fired yet), so running this any
//! number of times, concurrently, in any order, ends in the same state.

use super::STRIPE;
use super::checkout::show_outcome;
use super::stripe::CheckoutSession;
use crate::app::App;
use crate::commerce::kitchen::ready_to_cook;
use crate::error::{ApiError, ApiResult};
use stonepot_domain::TenantId;
use stonepot_domain::commerce::order::{Actor, Order};
use stonepot_domain::commerce::{OrderFlag, OrderId, PaymentEvidence, UnixMs};
use stonepot_store::{
    CheckoutSessionRecord, PaymentAction, PaymentEventInput, PaymentOutcome, PaymentRecorded,
    SessionUpdate,
};

/// A Checkout Session as evidence, and where it came from.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The dedup id: the event's id, or `redirect:<session>`.
    pub event_id: String,
    /// The event type (`checkout.session.completed`, or `redirect` for the redirect).
    pub kind: String,
    pub session: CheckoutSession,
}

/// What fulfilment did.
#[derive(Debug, Clone)]
pub enum Fulfilled {
    /// This call paid the order.
    Paid(Order),
    /// The order was already paid (another event or the redirect got there first).
    AlreadyPaid(Order),
    /// This event id was seen before; nothing was recorded.
    Duplicate(Order),
    /// The money did not match; the order is flagged and stays unpaid.
    Flagged(Order, OrderFlag),
    /// Stripe has not captured the money yet (an asynchronous payment method).
    Pending(Order),
    /// The payment cannot apply to the order (the reason).
    Refused(Order, String),
}

impl Fulfilled {
    pub fn order(&self) -> &Order {
        match self {
            Fulfilled::Paid(o)
            | Fulfilled::AlreadyPaid(o)
            | Fulfilled::Duplicate(o)
            | Fulfilled::Flagged(o, _)
            | Fulfilled::Pending(o)
            | Fulfilled::Refused(o, _) => o,
        }
    }

    /// A short word for logs and answers.
    pub fn as_str(&self) -> &'static str {
        match self {
            Fulfilled::Paid(_) => "paid",
            Fulfilled::AlreadyPaid(_) => "already_paid",
            Fulfilled::Duplicate(_) => "duplicate",
            Fulfilled::Flagged(..) => "flagged",
            Fulfilled::Pending(_) => "pending",
            Fulfilled::Refused(..) => "refused",
        }
    }
}

/// Checks that the session's own order and tenant claims (client reference, metadata)
/// agree with the session we stored, naming the first that does not.
pub fn check_claims(stored: &CheckoutSessionRecord, s: &CheckoutSession) -> ApiResult<()> {
    let claims = [
        (
            "client_reference_id",
            &s.client_reference_id,
            &stored.order_id,
        ),
        ("metadata.order_id", &s.metadata_order_id, &stored.order_id),
        (
            "metadata.tenant_id",
            &s.metadata_tenant_id,
            &stored.tenant_id,
        ),
    ];
    for (field, claim, ours) in claims {
        if let Some(c) = claim
            && c != ours
        {
            return Err(ApiError::unprocessable(format!(
                "{field}: '{c}' does not match session {}'s {ours}",
                s.id
            )));
        }
    }
    Ok(())
}

/// Settles the stored session's order from `ev` (see the module docs).
pub async fn fulfil(
    app: &App,
    stored: &CheckoutSessionRecord,
    ev: &Evidence,
) -> ApiResult<Fulfilled> {
    check_claims(stored, &ev.session)?;
    let tenant = TenantId::new(&stored.tenant_id).map_err(ApiError::internal)?;
    let order_id = OrderId::new(stored.order_id.clone()).map_err(ApiError::internal)?;
    let s = &ev.session;
    let event = PaymentEventInput {
        provider: STRIPE,
        event_id: &ev.event_id,
        kind: &ev.kind,
        amount: Some(s.amount_total),
        currency: Some(&s.currency),
        session: Some(SessionUpdate {
            session_id: &s.id,
            status: &s.status,
            payment_intent: s.payment_intent.as_deref(),
        }),
    };
    let evidence = PaymentEvidence {
        provider: STRIPE.into(),
        reference: s.id.clone(),
        amount: s.amount_total,
        currency: s.currency.clone(),
    };
    let actor = Actor::Payment {
        provider: STRIPE.into(),
        reference: ev.event_id.clone(),
    };
    let action = if s.is_paid() {
        PaymentAction::Settle {
            evidence: &evidence,
            actor: &actor,
            at: UnixMs(jiff::Timestamp::now().as_millisecond()),
        }
    } else {
        PaymentAction::Record {
            outcome: "processing",
        }
    };
    let recorded = app
        .store
        .record_payment(&tenant, &order_id, &event, &action)
        .await
        .map_err(|e| match e {
            stonepot_store::StoreError::NotFound(_) => {
                ApiError::not_found(format!("session {}'s order {order_id} is gone", s.id))
            }
            other => other.into(),
        })?;
    let (outcome, order) = match recorded {
        PaymentRecorded::Duplicate => {
            app.metrics.count(&app.metrics.payment_duplicates);
            let order = app
                .store
                .order(&tenant, &order_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no order '{order_id}'")))?;
            let order = finish(app, &tenant, order).await?;
            return Ok(Fulfilled::Duplicate(order));
        }
        PaymentRecorded::Recorded { outcome, order } => (outcome, *order),
    };
    Ok(match outcome {
        PaymentOutcome::Paid => {
            app.metrics.count(&app.metrics.payments_captured);
            tracing::info!(order = %order.id, event = %ev.event_id, amount = order.total, "order paid");
            show_outcome(
                app,
                &order,
                "Paid — thank you",
                "Your order is on its way to the kitchen.",
            )
            .await;
            Fulfilled::Paid(crate::commerce::after_move(app, &tenant, order).await?)
        }
        PaymentOutcome::AlreadyPaid => {
            app.metrics.count(&app.metrics.payment_duplicates);
            Fulfilled::AlreadyPaid(finish(app, &tenant, order).await?)
        }
        PaymentOutcome::Flagged(flag) => {
            app.metrics.count(&app.metrics.payments_flagged);
            tracing::warn!(order = %order.id, event = %ev.event_id, problem = %flag.problem, "payment flagged, order not paid");
            Fulfilled::Flagged(order, flag)
        }
        PaymentOutcome::Refused(why) => {
            tracing::warn!(order = %order.id, event = %ev.event_id, why, "payment refused");
            Fulfilled::Refused(order, why)
        }
        PaymentOutcome::Noted(_) => Fulfilled::Pending(order),
    })
}

/// For a repeat: runs what follows a payment again only when it did not finish (the
/// order is ready to cook but has no ticket, or has no receipt: a crash after the
/// payment committed), so duplicates cost two reads.
async fn finish(app: &App, tenant: &TenantId, order: Order) -> ApiResult<Order> {
    if order.is_paid()
        && ((ready_to_cook(&order) && app.store.ticket(tenant, &order.id).await?.is_none())
            || app.store.receipt(tenant, &order.id).await?.is_none())
    {
        return crate::commerce::after_move(app, tenant, order).await;
    }
    Ok(order)
}
