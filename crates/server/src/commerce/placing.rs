//! Quotes and confirmations: price-lock the cart as a quote shown on the display, then
//! place the order the guest agreed to, by the quote's hash. A stale confirmation
//! (cart or prices changed, quote expired) is refused and a fresh quote is shown.

use super::{now, show, show_put};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use stonepot_domain::commerce::order::{
    Actor, LineOrigin, Order, OrderOrigin, OrderType, PaymentMethod,
};
use stonepot_domain::commerce::quote::{DEFAULT_QUOTE_TTL, Quote, Tip};
use stonepot_domain::commerce::{OrderId, QuoteId};
use stonepot_domain::{Cart, SessionId};
use stonepot_store::{ConversationRecord, StoreError};

/// Builds, stores and shows a quote for the conversation's cart as it is now.
pub async fn fresh_quote(app: &App, conv: &ConversationRecord, tip: Tip) -> ApiResult<Quote> {
    let tenant = app
        .store
        .tenant(&conv.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the conversation's tenant is gone"))?;
    let cart: Cart = serde_json::from_str(&conv.cart).map_err(StoreError::from)?;
    let (menu, policy, version) = app.store.priced_menu(&tenant.id).await?;
    let mut q = Quote::build(
        &cart,
        &menu,
        &policy,
        tenant.currency,
        tip,
        now(),
        DEFAULT_QUOTE_TTL,
        &version.to_string(),
    )
    .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    // The domain names a quote by its hash, which two guests with the same cart in the
    // same millisecond share; the id is not covered by the hash, so each stored quote
    // gets its own.
    q.id =
        QuoteId::new(format!("q_{}", uuid::Uuid::now_v7().simple())).map_err(ApiError::internal)?;
    app.store.save_quote(&tenant.id, &conv.id, &q).await?;
    show_put(app, &conv.id, "quote", "quote", q.display_data()).await?;
    Ok(q)
}

/// A quote as the API and the agent's `quote_order` tool return it.
pub fn quote_body(q: &Quote) -> Value {
    json!({
        "quoteId": q.id.as_str(),
        "hash": q.hash,
        "currency": q.currency.code(),
        "subtotal": q.subtotal,
        "tax": q.tax,
        "serviceCharge": q.service_charge,
        "tip": q.tip,
        "total": q.total,
        "expiresAt": q.expires_at.to_rfc3339(),
        "readBack": q.read_back(),
        "lines": q.lines,
    })
}

/// An order as the API and the agent's `confirm_order` tool return it.
pub fn order_body(o: &Order) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), Value::String(o.status.as_str().into()));
    }
    v
}

/// Who confirmed what.
pub struct Confirmation {
    /// The hash of the quote the guest saw.
    pub quote_hash: String,
    pub order_type: OrderType,
    pub payment: PaymentMethod,
    /// The guest (a tap) or the agent (`confirm_order`, with its turn and call id).
    pub by: Actor,
    pub turn: Option<u32>,
    pub tool_call_id: Option<String>,
}

/// What a confirmation did.
pub struct Placed {
    pub order: Order,
    /// False when this quote had already been confirmed (the same order comes back).
    pub new: bool,
    /// The guest's cart after it: empty once an order took its lines.
    pub cart: Cart,
}

/// Why a confirmation was refused.
pub enum Refused {
    /// The hash named is not the current quote's, the cart or prices changed, or the
    /// quote expired; `fresh` is the new quote now on the display, when one could be
    /// built.
    Stale {
        error: ApiError,
        fresh: Option<Box<Quote>>,
    },
    Other(ApiError),
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Stale { error, .. } | Refused::Other(error) => error,
        }
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Other(e)
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Other(e.into())
    }
}

/// Each cart line's origin, from the transcript's `add_to_cart` results.
async fn line_origins(
    app: &App,
    conv: &ConversationRecord,
    quote: &Quote,
) -> ApiResult<BTreeMap<String, LineOrigin>> {
    let calls = app.store.tool_calls(&conv.tenant_id, &conv.id).await?;
    let mut found: BTreeMap<String, LineOrigin> = BTreeMap::new();
    for (turn, c) in &calls {
        if let Some(line) = c.result.get("added").and_then(Value::as_str) {
            found.insert(
                line.to_string(),
                LineOrigin {
                    turn: Some(*turn),
                    tool_call_id: Some(c.call_id.clone()),
                },
            );
        }
    }
    Ok(quote
        .lines
        .iter()
        .map(|l| {
            let origin = found.get(&l.line_id).cloned().unwrap_or_default();
            (l.line_id.clone(), origin)
        })
        .collect())
}

/// Confirms the conversation's latest quote, named by its hash, and places the order.
/// Confirming the same quote twice returns the same order. The caller holds the
/// conversation's lock.
pub async fn confirm(
    app: &App,
    conv: &ConversationRecord,
    c: &Confirmation,
) -> Result<Placed, Refused> {
    let cart: Cart = serde_json::from_str(&conv.cart).map_err(StoreError::from)?;
    let stored = app
        .store
        .latest_quote(&conv.tenant_id, &conv.id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_quote",
                "there is no quote to confirm; ask for one first",
            )
        })?;
    let quote = stored.quote;
    if quote.hash == c.quote_hash
        && let Some(existing) = app
            .store
            .order_for_quote(&conv.tenant_id, &quote.id)
            .await?
    {
        return Ok(Placed {
            order: existing,
            new: false,
            cart,
        });
    }
    let (menu, _, version) = app.store.priced_menu(&conv.tenant_id).await?;
    if let Err(stale) = quote.is_valid_for(&c.quote_hash, &cart, &menu, now()) {
        let message = format!("{stale}; a new quote is on the display");
        // An empty or unpriceable cart has no new quote to show; the refusal stands.
        let fresh = fresh_quote(app, conv, Tip::None).await.ok().map(Box::new);
        return Err(Refused::Stale {
            error: ApiError::new(StatusCode::CONFLICT, stale.code(), message),
            fresh,
        });
    }
    // Any menu change since the quote (a price, an 86, a modifier rule) makes it stale,
    // even one the checks above would let through: the guest confirms exactly the menu
    // they were quoted from.
    if quote.menu_version != version.to_string() {
        let fresh = fresh_quote(app, conv, Tip::None).await.ok().map(Box::new);
        return Err(Refused::Stale {
            error: ApiError::new(
                StatusCode::CONFLICT,
                "menu_changed",
                format!(
                    "the menu changed since the quote (version {}, now {version}); a new quote is on the display",
                    quote.menu_version
                ),
            ),
            fresh,
        });
    }
    let session = SessionId::new(&conv.id).map_err(ApiError::internal)?;
    let origin = OrderOrigin {
        conversation_id: session,
        turn: c.turn,
        tool_call_id: c.tool_call_id.clone(),
        confirmed_by: c.by.clone(),
        lines: line_origins(app, conv, &quote).await?,
    };
    let id = OrderId::new(format!("ord-{}", uuid::Uuid::now_v7().simple()))
        .map_err(ApiError::internal)?;
    let order = Order::from_quote(id, &quote, c.order_type, c.payment, origin, now())
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()))?;
    // The order holds the lines now: the guest's next order starts from an empty cart
    // (line numbers keep counting, so origins stay unambiguous), stored with the order.
    let mut next = cart.clone();
    next.clear();
    let text = serde_json::to_string(&next).map_err(StoreError::from)?;
    let created = app
        .store
        .create_order_with_cart(&conv.tenant_id, &order, Some(&text))
        .await?;
    let new = created.is_new();
    let order = created.into_order();
    // The guest's display shows the emptied cart while the kitchen gets its ticket and
    // the order's status is shown: independent writes, so they share a commit.
    let emptied = async {
        if new {
            show(app, &conv.id, stonepot_agent::tools::cart_display(&next)).await?;
        }
        ApiResult::Ok(())
    };
    let ((), order) = tokio::try_join!(
        emptied,
        super::moving::after_placed(app, &conv.tenant_id, order)
    )?;
    Ok(Placed {
        order,
        new,
        cart: if new { next } else { cart },
    })
}

/// Reads a client's order type (`dine_in` when absent).
pub fn order_type(raw: Option<&str>) -> ApiResult<OrderType> {
    match raw {
        None => Ok(OrderType::DineIn),
        Some(t) => OrderType::parse(t).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "orderType: '{t}' is not one of dine_in, pickup, delivery"
            ))
        }),
    }
}
