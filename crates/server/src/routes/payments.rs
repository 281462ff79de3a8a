//! Payment routes: Stripe's webhook, the guest's return from Checkout (success and
//! cancel), the payment QR code, and staff refunds.
//!
//! The webhook and the return pages are reached by Stripe and by guests' browsers, so
//! they take no tenant key: the webhook is authenticated by its signature, and the
//! success page only ever asks Stripe what happened to a session we made.

use crate::app::App;
use crate::auth::access::StaffOf;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use crate::payments::{self, Evidence, Fulfilled, STRIPE};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use stonepot_domain::commerce::OrderId;
use stonepot_domain::commerce::order::Actor;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes Stripe and guests' browsers reach (no tenant key, no IP rate limit: Stripe
/// delivers in bursts).
pub fn public_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(stripe_webhook))
        .routes(routes!(checkout_success))
        .routes(routes!(checkout_cancel))
        .routes(routes!(checkout_qr))
}

/// Staff routes (tenant key).
pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(create_refund, list_refunds))
}

/// Stripe's webhook. The `Stripe-Signature` header is verified on the raw body
/// (HMAC-SHA256, any configured secret, at most 300 s off either way) before the body
/// is read; then `checkout.session.completed` and
/// `checkout.session.async_payment_succeeded` pay the order (once, at exactly its
/// total), `checkout.session.expired` marks the session expired, and other types are
/// acknowledged and ignored. Repeated events are acknowledged with 200 and change
/// nothing.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "payments",
    request_body(content = Object, description = "a Stripe event, signed", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>")),
    security(()),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn stripe_webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let signature = headers
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    payments::webhook::verify(&app, signature, &body)?;
    Ok(Json(payments::webhook::handle(&app, &body).await?))
}

#[derive(Deserialize)]
struct SuccessQuery {
    session_id: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, text: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title></head><body><main><h1>{t}</h1><p>{x}</p></main></body></html>",
        t = escape(title),
        x = escape(text)
    ))
}

/// Where Stripe sends the guest after paying: asks Stripe for the session and settles
/// the order through the same fulfilment as the webhook (whichever comes first pays;
/// the other changes nothing). Answers a small HTML page.
#[utoipa::path(get, path = "/checkout/success", tag = "payments",
    params(("session_id" = String, Query, description = "the Checkout Session id Stripe put in the URL")),
    security(()),
    responses((status = 200, content_type = "text/html", body = String), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn checkout_success(
    State(app): State<App>,
    Query(q): Query<SuccessQuery>,
) -> ApiResult<Response> {
    let id = q
        .session_id
        .filter(|s| payments::stripe::valid_id(s))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_session_id",
                "session_id: a Stripe Checkout Session id (cs_…) is required",
            )
        })?;
    let stored = app
        .store
        .checkout_session(STRIPE, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no checkout session '{id}'")))?;
    let stripe = payments::checkout::client(&app)?;
    let session = stripe.retrieve_checkout_session(&id).await?;
    if session.id != id {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "payment_provider_mismatch",
            format!("Stripe answered with session {} for {id}", session.id),
        ));
    }
    let done = payments::fulfil(
        &app,
        &stored,
        &Evidence {
            event_id: format!("redirect:{id}"),
            kind: "redirect".into(),
            session,
        },
    )
    .await?;
    let order = done.order();
    let (title, text) = match &done {
        _ if order.is_paid() => (
            "Paid — thank you",
            format!("Order {} is paid and on its way to the kitchen.", order.id),
        ),
        Fulfilled::Pending(_) => (
            "Payment processing",
            format!(
                "Stripe is still confirming the payment for order {}; the display will update.",
                order.id
            ),
        ),
        Fulfilled::Flagged(..) | Fulfilled::Refused(..) => (
            "Please see the staff",
            format!(
                "The payment for order {} needs a member of staff to check it.",
                order.id
            ),
        ),
        _ => (
            "Not paid yet",
            format!("Order {} is not paid yet.", order.id),
        ),
    };
    Ok(page(title, &text).into_response())
}

#[derive(Deserialize)]
struct CancelQuery {
    order_id: Option<String>,
}

/// Where Stripe sends a guest who left Checkout without paying. The order stays
/// confirmed and unpaid; its session stays open until it expires.
#[utoipa::path(get, path = "/checkout/cancel", tag = "payments",
    params(("order_id" = Option<String>, Query, description = "the order the guest was paying")),
    security(()),
    responses((status = 200, content_type = "text/html", body = String)))]
async fn checkout_cancel(Query(q): Query<CancelQuery>) -> Html<String> {
    let order = q
        .order_id
        .filter(|o| OrderId::new(o.clone()).is_ok())
        .map(|o| format!("Order {o} is not paid. "))
        .unwrap_or_default();
    page(
        "Payment cancelled",
        &format!("{order}You can go back to the payment link, or pay at the counter."),
    )
}

/// The QR code of a Checkout Session's payment page, as SVG (what the display's
/// payment card shows).
#[utoipa::path(get, path = "/checkout/{session}/qr", tag = "payments",
    params(("session" = String, Path, description = "Checkout Session id")),
    security(()),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, body = ErrorBody)))]
async fn checkout_qr(State(app): State<App>, Path(session): Path<String>) -> ApiResult<Response> {
    let svg = payments::checkout::qr_svg(&app, &session).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        svg,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units to refund: more than zero, at most what was captured minus what is
    /// already refunded.
    amount: i64,
    /// Why (kept with the refund, at most 500 characters).
    #[serde(default)]
    reason: Option<String>,
    /// Who is refunding (shown in the audit trail).
    #[serde(default)]
    by: Option<String>,
}

fn order_id(raw: String) -> ApiResult<OrderId> {
    OrderId::new(raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

/// Refunds part or all of a paid order (tenant key, acting as staff). A Stripe order
/// is refunded through Stripe first and recorded only once Stripe accepted; a
/// pay-at-counter order is recorded at once. More than captured minus refunded is 422
/// naming the limit; a full refund moves the order to `refunded`.
#[utoipa::path(post, path = "/api/tenants/{tenant}/orders/{order}/refunds", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id"), ("order" = String, Path, description = "order id")),
    request_body = RefundRequest,
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn create_refund(
    State(app): State<App>,
    StaffOf(tenant, _): StaffOf,
    Path(ids): Path<(String, String)>,
    JsonBody(req): JsonBody<RefundRequest>,
) -> ApiResult<Json<Value>> {
    let id = order_id(ids.1)?;
    let actor = Actor::Staff {
        user_id: req.by.unwrap_or_else(|| "staff".into()),
    };
    let (refund, order) = payments::refunds::refund(
        &app,
        &tenant,
        &id,
        req.amount,
        req.reason.as_deref(),
        &actor,
    )
    .await?;
    Ok(Json(
        json!({"refund": refund, "order": crate::commerce::order_body(&order)}),
    ))
}

/// An order's refunds, oldest first (tenant key).
#[utoipa::path(get, path = "/api/tenants/{tenant}/orders/{order}/refunds", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id"), ("order" = String, Path, description = "order id")),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_refunds(
    State(app): State<App>,
    StaffOf(tenant, _): StaffOf,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = order_id(ids.1)?;
    if app.store.order(&tenant, &id).await?.is_none() {
        return Err(ApiError::not_found(format!("no order '{id}'")));
    }
    let refunds = app.store.refunds(&tenant, &id).await?;
    Ok(Json(json!({"refunds": refunds})))
}
