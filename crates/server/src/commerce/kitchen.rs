//! The kitchen: a ticket per order, fired once the order is ready to cook, shown on
//! the tenant's live board at `/kitchen/{tenant}`.
//!
//! The board is a display session of the hub (`kitchen-{tenant}`), so staff screens get
//! the same ordered log, exact resume and hibernation as guests' displays: each open
//! ticket is a `kitchen_ticket` component keyed by its order id, replaced as the order
//! moves and removed once it is completed, cancelled or refunded. The store decides
//! "once" (one ticket row per order, a primary key), never the display.

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use serde_json::{Value, json};
use stonepot_agent::DisplayOp;
use stonepot_domain::commerce::order::{Order, OrderStatus, PaymentMethod};
use stonepot_domain::{Category, TenantId};
use stonepot_store::Ticket;

/// The board's display session id.
pub fn board_id(tenant: &TenantId) -> String {
    format!("kitchen-{tenant}")
}

/// Whether the kitchen may start on the order: a pay-at-counter order as soon as it is
/// confirmed, any other once it is paid (and until it leaves the kitchen's hands).
pub fn ready_to_cook(order: &Order) -> bool {
    match order.status {
        OrderStatus::Confirmed => order.payment_method == PaymentMethod::Counter,
        OrderStatus::Paid | OrderStatus::InKitchen | OrderStatus::Ready => true,
        OrderStatus::Completed | OrderStatus::Cancelled | OrderStatus::Refunded => false,
    }
}

/// Creates the tenant's board session if it has none yet.
pub async fn open_board(app: &App, tenant: &TenantId) -> ApiResult<String> {
    let id = board_id(tenant);
    let init = json!({"tenantId": tenant.as_str(), "category": "restaurant", "board": "kitchen"});
    app.hub
        .init(&id, tenant, Category::Restaurant, &init)
        .await
        .map_err(ApiError::internal)?;
    Ok(id)
}

/// Fires the order's ticket if it is ready to cook and has none; returns the order's
/// ticket, if it has one. Safe to run any number of times, concurrently: the store
/// fires the ticket once. [`show_on_board`] then brings the board's card up to date.
pub async fn ticket(app: &App, tenant: &TenantId, order: &Order) -> ApiResult<Option<Ticket>> {
    // Read first: most moves come after the ticket fired, and a read does not wait
    // for the write slot and its sync the way an (idle) insert attempt does.
    let mut ticket = app.store.ticket(tenant, &order.id).await?;
    if ticket.is_none() && ready_to_cook(order) {
        ticket = match app.store.fire_ticket(tenant, &order.id).await? {
            Some(t) => {
                app.metrics.ticket_fired();
                Some(t)
            }
            // Fired meanwhile by a concurrent run.
            None => app.store.ticket(tenant, &order.id).await?,
        };
    }
    Ok(ticket)
}

/// Shows the order's ticket on the kitchen board as the order now stands: its card
/// while the order is open, none once it is closed.
pub async fn show_on_board(
    app: &App,
    tenant: &TenantId,
    order: &Order,
    ticket: &Ticket,
) -> ApiResult<()> {
    let board = board_id(tenant);
    let op = if order.status.is_open() {
        DisplayOp::put(
            "kitchen_ticket",
            order.id.as_str(),
            ticket_data(ticket, order),
        )
    } else {
        DisplayOp::Remove {
            key: order.id.as_str().to_string(),
        }
    };
    // The board is created by the first ticket that needs it, not checked on every
    // move (that would be a write per order change).
    let shown = match app.hub.update(&board, op.clone().into()).await {
        Err(crate::display::HubError::NotInitialized(_)) => {
            open_board(app, tenant).await?;
            app.hub.update(&board, op.into()).await
        }
        other => other,
    };
    match shown {
        Ok(_) => Ok(()),
        // Removing a card that is already gone is what we wanted.
        Err(crate::display::HubError::Invalid(_)) if !order.status.is_open() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A ticket as the board shows it.
pub fn ticket_data(ticket: &Ticket, order: &Order) -> Value {
    let lines: Vec<Value> = order
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
            json!({"name": l.priced.name, "quantity": l.priced.quantity, "modifiers": mods})
        })
        .collect();
    json!({
        "orderId": order.id.as_str(),
        "number": ticket.number,
        "status": order.status.as_str(),
        "orderType": order.order_type.as_str(),
        "paid": order.is_paid(),
        "placedAt": order.created_at.to_rfc3339(),
        "lines": lines,
    })
}
