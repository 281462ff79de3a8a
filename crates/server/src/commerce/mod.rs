//! Ordering on the server: what the HTTP routes (a tap on the display, the storefront)
//! and the agent's `quote_order` / `confirm_order` tools share, so there is exactly one
//! way a quote is built, a confirmation checked and an order placed or moved.
//!
//! Every function here changes a conversation's cart or orders and expects its caller
//! to hold that conversation's lock ([`crate::agent::Engine::lock`]): the routes take
//! it, an agent turn already holds it.
//!
//! - [`placing`]: quotes and confirmations.
//! - [`moving`]: status changes, and what follows each one.
//! - [`kitchen`]: tickets, fired once per order, on the kitchen's live board.
//! - [`receipt`]: the HTML receipt of a paid order.

pub mod kitchen;
pub mod moving;
pub mod placing;
pub mod receipt;

pub use moving::{after_move, move_order};
pub use placing::{Confirmation, confirm, fresh_quote, order_body, quote_body};

use crate::app::App;
use crate::error::ApiResult;
use serde_json::Value;
use stonepot_agent::DisplayOp;
use stonepot_domain::commerce::UnixMs;

pub(crate) fn now() -> UnixMs {
    UnixMs(jiff::Timestamp::now().as_millisecond())
}

/// Appends one change to a conversation's display.
pub(crate) async fn show(app: &App, session: &str, op: DisplayOp) -> ApiResult<()> {
    app.hub.update(session, op.into()).await?;
    Ok(())
}

pub(crate) async fn show_put(
    app: &App,
    session: &str,
    kind: &str,
    key: &str,
    data: Value,
) -> ApiResult<()> {
    show(app, session, DisplayOp::put(kind, key, data)).await
}
