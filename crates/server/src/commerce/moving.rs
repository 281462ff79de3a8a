//! Moving orders along (staff, payments, the system) and what follows every change:
//! the guest's display shows the status, and an order that is ready to cook (a
//! pay-at-counter order once confirmed, any other once paid) fires its kitchen ticket —
//! exactly once, however many times this runs.

use super::{now, show_put};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use stonepot_domain::TenantId;
use stonepot_domain::commerce::OrderId;
use stonepot_domain::commerce::order::{Actor, Order, OrderStatus};

/// Moves an order to `to` as `actor`. "paid" on a pay-at-counter order already in the
/// kitchen records the payment and keeps the status; everything else is a move through
/// the state machine. Illegal moves are 409 naming the rule.
pub async fn move_order(
    app: &App,
    tenant: &TenantId,
    id: &OrderId,
    to: OrderStatus,
    actor: &Actor,
) -> ApiResult<Order> {
    let order = app
        .store
        .order(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no order '{id}'")))?;
    let entry = if to == OrderStatus::Paid && !order.is_paid() {
        order.pay(order.total, actor, now())
    } else {
        order.transition(to, actor, now())
    };
    let entry = entry.map_err(|e| ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()))?;
    let order = app.store.apply_order_event(tenant, id, &entry).await?;
    after_move(app, tenant, order).await
}

/// What follows a new order (see [`after_move`]).
pub(crate) async fn after_placed(app: &App, tenant: &TenantId, order: Order) -> ApiResult<Order> {
    after_move(app, tenant, order).await
}

/// What follows any change to an order, safe to run any number of times: the kitchen
/// gets its ticket once the order is ready to cook, a paid order gets its receipt once
/// (retried on the next run when object storage failed),
/// the kitchen page and the guest's display show the status. A display that is gone does not undo the change.
pub async fn after_move(app: &App, tenant: &TenantId, order: Order) -> ApiResult<Order> {
    let ticket = super::kitchen::ticket(app, tenant, &order).await?;
    // The board's card and the receipt are independent writes: made together, they
    // share a commit and its sync. The guest's status is shown after both, so a guest
    // who sees "paid" finds the receipt.
    let board = async {
        match &ticket {
            Some(t) => super::kitchen::show_on_board(app, tenant, &order, t).await,
            None => Ok(()),
        }
    };
    // The move is committed whatever happens to the receipt: a bucket that is away
    // must not turn a recorded payment into an error for the staff or the guest. The
    // receipt is written by the next run of this function (any later move, a repeated
    // payment event), as `ensure` fills in what is missing.
    let receipt = async {
        if let Err(e) =
            super::receipt::ensure(app, tenant, &order, ticket.as_ref().map(|t| t.number)).await
        {
            tracing::error!(order = %order.id, error = ?e, "receipt not stored yet; the order's next move retries it");
        }
    };
    let (shown, ()) = tokio::join!(board, receipt);
    shown?;
    let _ = show_put(
        app,
        order.conversation_id.as_str(),
        "order_status",
        "order",
        order.status_display(),
    )
    .await;
    Ok(order)
}
