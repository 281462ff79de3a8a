//! Ordering from a conversation (the guest's tap path; pay at counter): price-lock the
//! cart as a quote shown on the display, confirm it by its hash, and let staff move the
//! order along. A stale confirmation (cart or prices changed, quote expired) is refused
//! and a fresh quote is shown instead.

use crate::app::App;
use crate::auth::access::StaffOf;
use crate::commerce::{self, Confirmation, order_body, quote_body};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use crate::payments;
use crate::routes::chat::ConversationAccess;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use stonepot_domain::commerce::OrderId;
use stonepot_domain::commerce::order::{Actor, OrderStatus, PaymentMethod};
use stonepot_domain::commerce::quote::Tip;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(confirm))
        .routes(routes!(list_orders))
        .routes(routes!(move_order))
        .routes(routes!(receipt))
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
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn quote(
    State(app): State<App>,
    ConversationAccess(id): ConversationAccess,
    JsonBody(req): JsonBody<QuoteRequest>,
) -> ApiResult<Json<Value>> {
    let _turns = app.engine.lock(&id).await;
    let conv = app.engine.conversation(&id).await?;
    let quote = commerce::fresh_quote(&app, &conv, req.tip.unwrap_or_default()).await?;
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
    /// `counter` (default: pay at the counter) or `stripe` (Stripe Checkout: the answer
    /// carries a `checkout` with the payment link, also shown on the display; needs
    /// `STRIPE_SECRET_KEY` on the server).
    #[serde(default)]
    payment_method: Option<String>,
}

/// Confirms the quote the guest saw (by its hash) and places the order, paid at the
/// counter unless `paymentMethod` is `stripe`. A stale hash — cart or prices changed,
/// quote expired — is refused with 409 and a fresh quote goes to the display.
/// Confirming the same quote twice returns the same order. With Stripe, a Checkout
/// Session for exactly the total is opened (or the open one reused) and returned as
/// `checkout`; if Stripe fails the order stays confirmed and unpaid, the answer is
/// 502/503, and confirming again retries.
#[utoipa::path(post, path = "/api/conversations/{id}/confirm", tag = "orders",
    params(("id" = String, Path, description = "conversation id")),
    request_body = Confirm,
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn confirm(
    State(app): State<App>,
    ConversationAccess(id): ConversationAccess,
    headers: HeaderMap,
    JsonBody(req): JsonBody<Confirm>,
) -> ApiResult<Json<Value>> {
    let order_type = commerce::placing::order_type(req.order_type.as_deref())?;
    let payment = payment_method(&app, req.payment_method.as_deref())?;
    let _turns = app.engine.lock(&id).await;
    // Read under the lock: a turn that just ended may have changed the cart.
    let conv = app.engine.conversation(&id).await?;
    if payment == PaymentMethod::Stripe
        && let Some(q) = app.store.latest_quote(&conv.tenant_id, &conv.id).await?
        && q.quote.hash == req.quote_hash
    {
        // Refuse a total Stripe cannot take before placing an order nobody can pay.
        payments::checkout::check_amount(q.quote.total)?;
    }
    let placed = commerce::confirm(
        &app,
        &conv,
        &Confirmation {
            quote_hash: req.quote_hash,
            order_type,
            payment,
            by: Actor::Guest {
                session_id: conv.id.clone(),
            },
            turn: None,
            tool_call_id: None,
        },
    )
    .await?;
    let mut body = order_body(&placed.order);
    if placed.order.payment_method == PaymentMethod::Stripe {
        let base = crate::routes::conversation::base_url(&headers);
        let checkout =
            payments::checkout::start(&app, &conv.tenant_id, &placed.order, &base).await?;
        body["checkout"] = serde_json::to_value(&checkout).map_err(ApiError::internal)?;
    }
    Ok(Json(body))
}

/// Reads a client's payment method (`counter` when absent); `stripe` only when Stripe
/// is configured.
fn payment_method(app: &App, raw: Option<&str>) -> ApiResult<PaymentMethod> {
    match raw {
        None | Some("counter") => Ok(PaymentMethod::Counter),
        Some("stripe") => {
            payments::checkout::client(app)?;
            Ok(PaymentMethod::Stripe)
        }
        Some(other) => Err(ApiError::unprocessable(format!(
            "paymentMethod: '{other}' is not one of counter, stripe"
        ))),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// The tenant's orders, newest first (tenant key).
#[utoipa::path(get, path = "/api/tenants/{tenant}/orders", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id"), ("status" = Option<String>, Query, description = "only orders in this status"), ("limit" = Option<u32>, Query, description = "at most this many (default 50)")),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_orders(
    State(app): State<App>,
    StaffOf(tenant, _): StaffOf,
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
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn move_order(
    State(app): State<App>,
    StaffOf(tenant, _): StaffOf,
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
    let order = commerce::move_order(&app, &tenant, &id, to, &actor).await?;
    Ok(Json(order_body(&order)))
}

/// The paid order's HTML receipt as written to object storage (tenant key); its SHA-256
/// is in `X-Receipt-Sha256`. 404 until the order is paid.
#[utoipa::path(get, path = "/api/tenants/{tenant}/orders/{order}/receipt", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id"), ("order" = String, Path, description = "order id")),
    security(("bearer" = ["staff"])),
    responses((status = 200, content_type = "text/html", body = String), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn receipt(
    State(app): State<App>,
    StaffOf(tenant, _): StaffOf,
    Path(ids): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let raw = ids.1;
    let id = OrderId::new(raw.clone())
        .map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    let rec = app.store.receipt(&tenant, &id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "order '{raw}' has no receipt (not paid yet, or no such order)"
        ))
    })?;
    let bytes = app
        .objects
        .get(&rec.path)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("receipt object {} is missing", rec.path)))?;
    let mut res = (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        bytes,
    )
        .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&rec.sha256) {
        res.headers_mut().insert("x-receipt-sha256", v);
    }
    Ok(res)
}
