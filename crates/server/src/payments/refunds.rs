//! Refunds, full or partial, never more than captured minus what is already refunded
//! or being refunded.
//!
//! 1. The refund is reserved in the store against the order (checked by
//!    [`stonepot_domain::commerce::Order::refund`] and against other pending refunds).
//! 2. A Stripe order's refund goes to Stripe, on the payment intent of its completed
//!    Checkout Session, with the refund id as the idempotency key; a refusal releases
//!    the reservation and is a 502 with Stripe's reason.
//! 3. Only once Stripe accepted (or at once, for a pay-at-counter order, whose money
//!    staff hand back) the order's refund entry is written; a full refund moves the
//!    order to `refunded`.
//!
//! A Stripe call with no clear answer (timeout, 5xx), like a crash between 2 and 3, leaves the refund `pending` with the money returned at
//! Stripe: it still holds its amount (nothing can refund it twice) and shows in the
//! order's refunds for staff to reconcile.

use super::STRIPE;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::OrderId;
use stonepot_domain::commerce::order::{Actor, Order, PaymentMethod, TransitionError};
use stonepot_store::{NewRefund, RefundRecord};

/// The longest reason kept.
pub const REASON_MAX: usize = 500;

fn refused(e: TransitionError) -> ApiError {
    let status = match e {
        TransitionError::RefundTooLarge { .. } | TransitionError::BadAmount { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        TransitionError::NotAllowed { .. } => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// Refunds `amount` minor units of an order as `actor` (staff). Returns the refund as
/// stored and the order after it.
pub async fn refund(
    app: &App,
    tenant: &TenantId,
    order_id: &OrderId,
    amount: i64,
    reason: Option<&str>,
    actor: &Actor,
) -> ApiResult<(RefundRecord, Order)> {
    if let Some(r) = reason
        && r.chars().count() > REASON_MAX
    {
        return Err(ApiError::unprocessable(format!(
            "reason: at most {REASON_MAX} characters"
        )));
    }
    let order = app
        .store
        .order(tenant, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no order '{order_id}'")))?;
    // Where the money went: a Stripe order refunds on its payment intent.
    let intent = match order.payment_method {
        PaymentMethod::Counter => None,
        PaymentMethod::Stripe => {
            if !order.is_paid() {
                return Err(refused(TransitionError::NotPaid));
            }
            let sessions = app
                .store
                .checkout_sessions_for_order(tenant, order_id)
                .await?;
            let pi = sessions
                .iter()
                .rev()
                .find(|s| s.status == "complete")
                .and_then(|s| s.payment_intent.clone());
            Some(pi.ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "no_stripe_payment",
                    format!("order {order_id} has no completed Stripe payment to refund"),
                )
            })?)
        }
    };
    let provider = if intent.is_some() { STRIPE } else { "counter" };
    let id = format!("rf-{}", uuid::Uuid::now_v7().simple());
    app.store
        .reserve_refund(
            tenant,
            order_id,
            &NewRefund {
                id: &id,
                amount,
                provider,
                reason,
                actor,
            },
        )
        .await?
        .map_err(refused)?;
    let provider_ref = match &intent {
        None => None,
        Some(pi) => {
            let stripe = super::checkout::client(app)?;
            match stripe
                .create_refund(pi, amount, &id, order_id.as_str())
                .await
            {
                Ok(r)
                    if matches!(r.status.as_str(), "succeeded" | "pending")
                        && r.amount == amount =>
                {
                    Some(r.id)
                }
                Ok(r) => {
                    app.store.fail_refund(tenant, &id).await?;
                    return Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "payment_provider_refused",
                        format!(
                            "Stripe's refund {} is {} for {} (asked {amount})",
                            r.id, r.status, r.amount
                        ),
                    ));
                }
                Err(e @ super::stripe::StripeError::Refused { .. }) => {
                    app.store.fail_refund(tenant, &id).await?;
                    return Err(e.into());
                }
                // No clear answer: Stripe may have refunded. The reservation stays
                // pending and keeps holding the amount, so nothing refunds it twice.
                Err(e) => {
                    tracing::warn!(error = %e, refund = %id, "refund outcome unknown; left pending");
                    let mut err = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "refund_pending",
                        format!(
                            "Stripe did not answer; refund {id} stays pending and holds {amount} until it is reconciled"
                        ),
                    );
                    err.retry_after = Some(5);
                    return Err(err);
                }
            }
        }
    };
    let order = app
        .store
        .complete_refund(tenant, order_id, &id, provider_ref.as_deref(), actor)
        .await?;
    let order = crate::commerce::after_move(app, tenant, order).await?;
    let record = app
        .store
        .refunds(tenant, order_id)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::internal(format!("refund {id} vanished")))?;
    Ok((record, order))
}
