//! Ordering from a conversation (the guest's tap path; pay at counter): price-lock the
//! cart as a quote shown on the display, confirm it by its hash, and let staff move the
//! order along. A stale confirmation (cart or prices changed, quote expired) is refused
//! and a fresh quote is shown instead.

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use crate::routes::chat::authorize;
use crate::routes::tenants::TenantKey;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use stonepot_agent::DisplayOp;
use stonepot_domain::commerce::order::{
    Actor, LineOrigin, Order, OrderOrigin, OrderStatus, OrderType, PaymentMethod,
};
use stonepot_domain::commerce::quote::{DEFAULT_QUOTE_TTL, Quote, Tip};
use stonepot_domain::commerce::{OrderId, UnixMs};
use stonepot_domain::{Cart, SessionId};
use stonepot_store::{ConversationRecord, OrderCreated, StoreError};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(confirm))
        .routes(routes!(list_orders))
        .routes(routes!(move_order))
}

fn now() -> UnixMs {
    UnixMs(jiff::Timestamp::now().as_millisecond())
}

async fn show(app: &App, session: &str, kind: &str, key: &str, data: Value) -> ApiResult<()> {
    show_op(app, session, DisplayOp::put(kind, key, data)).await
}

async fn show_op(app: &App, session: &str, op: DisplayOp) -> ApiResult<()> {
    app.hub.update(session, op.into()).await?;
    Ok(())
}

/// Builds, stores and shows a quote for the conversation's cart as it is now.
async fn fresh_quote(app: &App, conv: &ConversationRecord, tip: Tip) -> ApiResult<Quote> {
    let tenant = app
        .store
        .tenant(&conv.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the conversation's tenant is gone"))?;
    let cart: Cart = serde_json::from_str(&conv.cart).map_err(StoreError::from)?;
    let menu = app.store.menu(&tenant.id).await?;
    let (policy, version) = app.store.pricing_policy(&tenant.id).await?;
    let q = Quote::build(
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
    app.store.save_quote(&tenant.id, &conv.id, &q).await?;
    show(app, &conv.id, "quote", "quote", q.display_data()).await?;
    Ok(q)
}

fn quote_body(q: &Quote) -> Value {
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

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// `{"kind":"amount","minor":200}` or `{"kind":"percent","bps":1800}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    tip: Option<Tip>,
}

/// Price-locks the cart: lines re-priced from the menu, tax, tip, total, a hash and an
/// expiry (10 min); shown on the display as a `quote` with the read-back text.
#[utoipa::path(post, path = "/api/conversations/{id}/quote", tag = "orders",
    params(("id" = String, Path, description = "conversation id")),
    request_body = QuoteRequest,
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn quote(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<QuoteRequest>,
) -> ApiResult<Json<Value>> {
    let conv = authorize(&app, &raw, &headers, &q).await?;
    let quote = fresh_quote(&app, &conv, req.tip.unwrap_or_default()).await?;
    Ok(Json(quote_body(&quote)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Confirm {
    /// The hash of the quote the guest saw.
    quote_hash: String,
    /// `dine_in` (default), `pickup` or `delivery`.
    #[serde(default)]
    order_type: Option<String>,
}

/// Each cart line's origin, from the transcript's `add_to_cart` results.
async fn line_origins(
    app: &App,
    conv: &ConversationRecord,
    quote: &Quote,
) -> ApiResult<BTreeMap<String, LineOrigin>> {
    let turns = app.store.turns(&conv.tenant_id, &conv.id).await?;
    let mut found: BTreeMap<String, LineOrigin> = BTreeMap::new();
    for t in &turns {
        for c in &t.tool_calls {
            if let Some(line) = c.result.get("added").and_then(Value::as_str) {
                found.insert(
                    line.to_string(),
                    LineOrigin {
                        turn: Some(t.turn),
                        tool_call_id: Some(c.call_id.clone()),
                    },
                );
            }
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

/// Confirms the quote the guest saw (by its hash) and places the order, paid at the
/// counter. A stale hash — cart or prices changed, quote expired — is refused with 409
/// and a fresh quote goes to the display. Confirming the same quote twice returns the
/// same order.
#[utoipa::path(post, path = "/api/conversations/{id}/confirm", tag = "orders",
    params(("id" = String, Path, description = "conversation id")),
    request_body = Confirm,
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn confirm(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<Confirm>,
) -> ApiResult<Json<Value>> {
    let conv = authorize(&app, &raw, &headers, &q).await?;
    // Hold the conversation's turn lock: the cart checked against the quote is the one
    // cleared below, with no agent turn or storefront tap landing in between.
    let _turn = app.engine.lock(&conv.id).await;
    let conv = app.engine.conversation(&conv.id).await?;
    let order_type = match req.order_type.as_deref() {
        None => OrderType::DineIn,
        Some(t) => OrderType::parse(t)
            .ok_or_else(|| ApiError::unprocessable("orderType: dine_in, pickup or delivery"))?,
    };
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
    if let Some(existing) = app
        .store
        .order_for_quote(&conv.tenant_id, &quote.id)
        .await?
        && quote.hash == req.quote_hash
    {
        return Ok(Json(order_body(&existing)));
    }
    let cart: Cart = serde_json::from_str(&conv.cart).map_err(StoreError::from)?;
    let menu = app.store.menu(&conv.tenant_id).await?;
    if let Err(stale) = quote.is_valid_for(&req.quote_hash, &cart, &menu, now()) {
        let message = format!("{stale}; a new quote is on the display");
        // Best effort: an empty or unpriceable cart has no new quote to show.
        let _ = fresh_quote(&app, &conv, Tip::None).await;
        return Err(ApiError::new(StatusCode::CONFLICT, stale.code(), message));
    }
    // Any menu change since the quote (a price, an 86, a modifier rule) makes it stale,
    // even one the checks above would let through: the guest confirms exactly the
    // menu they were quoted from.
    let (_, version) = app.store.pricing_policy(&conv.tenant_id).await?;
    if quote.menu_version != version.to_string() {
        let _ = fresh_quote(&app, &conv, Tip::None).await;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "menu_changed",
            format!(
                "the menu changed since the quote (version {}, now {version}); a new quote is on the display",
                quote.menu_version
            ),
        ));
    }
    let session = SessionId::new(&conv.id).map_err(ApiError::internal)?;
    let origin = OrderOrigin {
        conversation_id: session,
        turn: None,
        tool_call_id: None,
        confirmed_by: Actor::Guest {
            session_id: conv.id.clone(),
        },
        lines: line_origins(&app, &conv, &quote).await?,
    };
    let id = OrderId::new(format!("ord-{}", uuid::Uuid::now_v7().simple()))
        .map_err(ApiError::internal)?;
    let order = Order::from_quote(
        id,
        &quote,
        order_type,
        PaymentMethod::Counter,
        origin,
        now(),
    )
    .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()))?;
    let order = match app.store.create_order(&conv.tenant_id, &order).await? {
        OrderCreated::New(o) => {
            // The order holds the lines now: start the guest's next order from an empty
            // cart (line numbers keep counting, so origins stay unambiguous).
            let mut next = cart.clone();
            next.clear();
            let text = serde_json::to_string(&next).map_err(StoreError::from)?;
            app.store
                .set_conversation_cart(&conv.tenant_id, &conv.id, &text)
                .await?;
            show_op(&app, &conv.id, stonepot_agent::tools::cart_display(&next)).await?;
            o
        }
        OrderCreated::Existing(o) => o,
    };
    show(
        &app,
        &conv.id,
        "order_status",
        "order",
        order.status_display(),
    )
    .await?;
    Ok(Json(order_body(&order)))
}

fn order_body(o: &Order) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), Value::String(o.status.as_str().into()));
    }
    v
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// The tenant's orders, newest first (tenant key).
#[utoipa::path(get, path = "/api/tenants/{tenant}/orders", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id"), ("status" = Option<String>, Query, description = "only orders in this status"), ("limit" = Option<u32>, Query, description = "at most this many (default 50)")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_orders(
    State(app): State<App>,
    TenantKey(tenant): TenantKey,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::unprocessable(format!("status: '{s}' is not an order status"))
        })?),
    };
    let orders = app
        .store
        .orders(&tenant, status, q.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    Ok(Json(
        json!({"orders": orders.iter().map(order_body).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// The status to move to, e.g. `in_kitchen`, `ready`, `completed`, `paid`.
    to: String,
    /// Who is moving it (shown in the audit trail).
    #[serde(default)]
    by: Option<String>,
}

/// Moves an order along (tenant key, acting as staff); illegal moves get 409 naming
/// the rule, and the guest's display shows the new status.
#[utoipa::path(post, path = "/api/tenants/{tenant}/orders/{order}/status", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id"), ("order" = String, Path, description = "order id")),
    request_body = Move,
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn move_order(
    State(app): State<App>,
    TenantKey(tenant): TenantKey,
    Path(ids): Path<(String, String)>,
    JsonBody(m): JsonBody<Move>,
) -> ApiResult<Json<Value>> {
    let raw = ids.1;
    let id = OrderId::new(raw.clone())
        .map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    let to = OrderStatus::parse(&m.to)
        .ok_or_else(|| ApiError::unprocessable(format!("to: '{}' is not an order status", m.to)))?;
    let actor = Actor::Staff {
        user_id: m.by.unwrap_or_else(|| "staff".into()),
    };
    let order = app
        .store
        .order(&tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no order '{raw}'")))?;
    // "paid" on a counter order already in the kitchen records the payment and keeps
    // the status; everywhere else it is a move.
    let entry = if to == OrderStatus::Paid && !order.is_paid() {
        order.pay(order.total, &actor, now())
    } else {
        order.transition(to, &actor, now())
    };
    let entry = entry.map_err(|e| ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string()))?;
    let order = app.store.apply_order_event(&tenant, &id, &entry).await?;
    // The guest's display follows; a display that is gone does not undo the move.
    let _ = show(
        &app,
        order.conversation_id.as_str(),
        "order_status",
        "order",
        order.status_display(),
    )
    .await;
    Ok(Json(order_body(&order)))
}
