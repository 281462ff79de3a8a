//! The kitchen: `/kitchen/{tenant}`, a live board of open tickets for staff, and the
//! call that opens it. The page itself holds nothing: staff sign in with the tenant's
//! key, which buys a signed link to the board's display session.

use crate::app::App;
use crate::auth::access::StaffOf;
use crate::commerce::kitchen;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use stonepot_agent::DisplayOp;
use stonepot_domain::Category;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The page (rate limited per IP with the other pages).
pub fn page_router() -> Router<App> {
    Router::new().route("/kitchen/{tenant}", get(page))
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(open_board))
}

async fn page(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Response> {
    let tenant = crate::routes::tenants::load_tenant(&app, &raw).await?;
    if tenant.category != Category::Restaurant {
        return Err(ApiError::not_found(format!(
            "'{}' has no kitchen",
            tenant.id
        )));
    }
    let html = app
        .pages
        .render(
            "kitchen.html",
            minijinja::context! {
                tenant => json!({"id": tenant.id, "name": tenant.name}),
                theme => tenant.theme,
            },
        )
        .map_err(ApiError::internal)?;
    let mut res = Html(html).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Opens the tenant's kitchen board (staff: the tenant key): brings every open ticket's
/// card up to date and returns a signed link to the board's live socket.
#[utoipa::path(post, path = "/api/tenants/{tenant}/kitchen", tag = "orders",
    params(("tenant" = String, Path, description = "tenant id")),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn open_board(
    State(app): State<App>,
    StaffOf(tenant, _): StaffOf,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let t = app.tenant(&tenant).await?;
    if t.category != Category::Restaurant {
        return Err(ApiError::not_found(format!("'{tenant}' has no kitchen")));
    }
    let board = kitchen::open_board(&app, &tenant).await?;
    // The store is the truth; the board catches up with it (a card whose update was
    // lost to a crash between the ticket and the display comes back here).
    let open = app.store.open_tickets(&tenant).await?;
    let mut tickets = Vec::with_capacity(open.len());
    for (ticket, order) in &open {
        let data = kitchen::ticket_data(ticket, order);
        app.hub
            .update(
                &board,
                DisplayOp::put("kitchen_ticket", order.id.as_str(), data.clone()).into(),
            )
            .await?;
        tickets.push(data);
    }
    let links = crate::routes::conversation::display_links(
        &app,
        &headers,
        &board,
        &tenant,
        Category::Restaurant,
    );
    let base = crate::routes::conversation::base_url(&headers).replacen("http", "ws", 1);
    let socket = links["websocketUrl"].as_str().unwrap_or_default();
    Ok(Json(json!({
        "board": board,
        "socketUrl": socket,
        "socketPath": socket.strip_prefix(&base).unwrap_or(socket),
        "tokenExpiresAt": links["tokenExpiresAt"],
        "tickets": tickets,
    })))
}
