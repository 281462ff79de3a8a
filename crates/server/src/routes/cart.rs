//! The direct cart API (the storefront's taps): read the conversation's cart, add a
//! line, change its quantity or modifiers, remove it. The same session token or tenant
//! key as the other conversation routes.
//!
//! Every change holds the conversation's turn lock ([`crate::agent::Engine::lock`]) from
//! reading the cart to storing it, so a tap and an agent turn are applied one after the
//! other and neither loses the other's change. The cart is priced from the menu as it
//! is at that moment (an 86'd item is refused), stored before the answer, and the
//! display's `cart` component follows.

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use crate::routes::chat::Conversation;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stonepot_domain::cart::ChosenModifier;
use stonepot_domain::{Cart, CartError, Category};
use stonepot_store::{ConversationRecord, StoreError};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest cart request body.
const CART_LIMIT: usize = 16 * 1024;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_cart))
        .routes(routes!(add_line))
        .routes(routes!(update_line, remove_line))
        .layer(axum::extract::DefaultBodyLimit::max(CART_LIMIT))
}

/// A refused cart change: what the guest asked for does not fit the menu (422), the
/// item is off or the cart full (409), or the line is not in the cart (404).
fn refused(e: &CartError) -> ApiError {
    let status = match e {
        CartError::Unavailable { .. } | CartError::CartFull { .. } => StatusCode::CONFLICT,
        CartError::UnknownLine { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// One line of the cart.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartLineView {
    /// Stable within the cart (`l1`, `l2`, …).
    line_id: String,
    item_id: String,
    name: String,
    quantity: u32,
    #[schema(value_type = Vec<Object>)]
    modifiers: Vec<ChosenModifier>,
    /// Item price plus modifier deltas, minor units.
    unit_price: i64,
    line_total: i64,
}

/// The conversation's cart.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartResponse {
    lines: Vec<CartLineView>,
    /// Minor units.
    subtotal: i64,
    item_count: u32,
    currency: String,
    /// The line this request added or changed, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    line_id: Option<String>,
}

fn view(cart: &Cart, currency: &str, line_id: Option<String>) -> CartResponse {
    CartResponse {
        lines: cart
            .lines
            .iter()
            .map(|l| CartLineView {
                line_id: l.line_id.clone(),
                item_id: l.item_id.clone(),
                name: l.name.clone(),
                quantity: l.quantity,
                modifiers: l.modifiers.clone(),
                unit_price: l.unit_price,
                line_total: l.line_total,
            })
            .collect(),
        subtotal: cart.subtotal(),
        item_count: cart.item_count(),
        currency: currency.to_string(),
        line_id,
    }
}

/// The conversation, refused unless it is a restaurant's (only those have a cart).
fn restaurant(conv: ConversationRecord) -> ApiResult<ConversationRecord> {
    if conv.category != Category::Restaurant {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_cart",
            format!(
                "conversation '{}' is {}; only restaurant conversations have a cart",
                conv.id,
                conv.category.as_str()
            ),
        ));
    }
    Ok(conv)
}

async fn currency_of(app: &App, conv: &ConversationRecord) -> ApiResult<String> {
    Ok(app
        .store
        .tenant(&conv.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the conversation's tenant is gone"))?
        .currency
        .code()
        .to_string())
}

/// Applies `change` to the cart under the conversation's turn lock, stores it, shows it
/// on the display, and answers with the new cart.
async fn change_cart(
    app: &App,
    conv: &ConversationRecord,
    change: impl FnOnce(&mut Cart, &stonepot_domain::menu::Menu) -> Result<String, CartError>,
) -> ApiResult<CartResponse> {
    let currency = currency_of(app, conv).await?;
    let _turn = app.engine.lock(&conv.id).await;
    // Re-read under the lock: a turn or tap that ran while we waited changed it.
    let fresh = app.engine.conversation(&conv.id).await?;
    let mut cart: Cart = serde_json::from_str(&fresh.cart).map_err(StoreError::from)?;
    let menu = app.store.menu(&fresh.tenant_id).await?;
    let line = change(&mut cart, &menu).map_err(|e| refused(&e))?;
    let text = serde_json::to_string(&cart).map_err(StoreError::from)?;
    app.store
        .set_conversation_cart(&fresh.tenant_id, &fresh.id, &text)
        .await?;
    // The cart is stored: a display that cannot follow is logged, not a failed tap (a
    // retry would add the line twice).
    if let Err(e) = app
        .hub
        .update(&fresh.id, stonepot_agent::tools::cart_display(&cart).into())
        .await
    {
        tracing::warn!(session = %fresh.id, error = %e, "cart stored but the display did not take it");
    }
    Ok(view(&cart, &currency, Some(line)))
}

/// The conversation's cart, priced in minor units.
#[utoipa::path(get, path = "/api/conversations/{id}/cart", tag = "cart",
    params(("id" = String, Path, description = "conversation id")),
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = CartResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn get_cart(
    State(app): State<App>,
    Conversation(conv): Conversation,
) -> ApiResult<Json<CartResponse>> {
    let conv = restaurant(conv)?;
    let cart: Cart = serde_json::from_str(&conv.cart).map_err(StoreError::from)?;
    Ok(Json(view(&cart, &currency_of(&app, &conv).await?, None)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddLineRequest {
    /// The menu item's id.
    item_id: String,
    /// 1 to 99; defaults to 1. The same item with the same modifiers joins its line.
    #[serde(default = "one")]
    quantity: i64,
    /// Modifier ids (or names) from the item's groups; each group's defaults fill in
    /// where none is chosen.
    #[serde(default)]
    modifiers: Vec<String>,
}

fn one() -> i64 {
    1
}

/// Adds an item to the cart. Unknown items and modifiers, broken modifier rules and bad
/// quantities get 422 naming the problem; an 86'd item or a full cart 409.
#[utoipa::path(post, path = "/api/conversations/{id}/cart/lines", tag = "cart",
    params(("id" = String, Path, description = "conversation id")),
    request_body = AddLineRequest,
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = CartResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_line(
    State(app): State<App>,
    Conversation(conv): Conversation,
    JsonBody(req): JsonBody<AddLineRequest>,
) -> ApiResult<Json<CartResponse>> {
    let conv = restaurant(conv)?;
    let item = req.item_id;
    // Ids only: a tap names the exact item, unlike the agent, which may use a name.
    let res = change_cart(&app, &conv, |cart, menu| {
        if menu.item(&item).is_none() {
            return Err(CartError::UnknownItem { item: item.clone() });
        }
        cart.add(menu, &item, req.quantity, &req.modifiers)
            .map(|l| l.line_id.clone())
    })
    .await?;
    Ok(Json(res))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLineRequest {
    /// 1 to 99 (remove the line to drop it).
    #[serde(default)]
    quantity: Option<i64>,
    /// Replaces the line's modifiers when given.
    #[serde(default)]
    modifiers: Option<Vec<String>>,
}

/// Changes a line's quantity and/or modifiers; re-priced from the menu.
#[utoipa::path(patch, path = "/api/conversations/{id}/cart/lines/{line}", tag = "cart",
    params(("id" = String, Path, description = "conversation id"), ("line" = String, Path, description = "line id, e.g. l1")),
    request_body = UpdateLineRequest,
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = CartResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_line(
    State(app): State<App>,
    Conversation(conv): Conversation,
    Path(ids): Path<(String, String)>,
    JsonBody(req): JsonBody<UpdateLineRequest>,
) -> ApiResult<Json<CartResponse>> {
    let conv = restaurant(conv)?;
    if req.quantity.is_none() && req.modifiers.is_none() {
        return Err(ApiError::unprocessable(
            "give quantity and/or modifiers to change",
        ));
    }
    let line = ids.1;
    let res = change_cart(&app, &conv, |cart, menu| {
        cart.update(menu, &line, req.quantity, req.modifiers.as_deref())
            .map(|l| l.line_id.clone())
    })
    .await?;
    Ok(Json(res))
}

/// Removes a line from the cart.
#[utoipa::path(delete, path = "/api/conversations/{id}/cart/lines/{line}", tag = "cart",
    params(("id" = String, Path, description = "conversation id"), ("line" = String, Path, description = "line id, e.g. l1")),
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = CartResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_line(
    State(app): State<App>,
    Conversation(conv): Conversation,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Json<CartResponse>> {
    let conv = restaurant(conv)?;
    let line = ids.1;
    let res = change_cart(&app, &conv, |cart, _| cart.remove(&line).map(|l| l.line_id)).await?;
    Ok(Json(res))
}
