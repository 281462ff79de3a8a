//! `/s/{tenant}`: the public storefront — the menu server-rendered in the tenant's theme,
//! dietary filters, a cart, chat with the same agent, and checkout. Limited per IP like
//! the API.
//!
//! The page itself carries no session: the script asks `POST /s/{tenant}/session` for
//! one (or reuses the one it kept), so a reload keeps the guest's cart and a crawler
//! reading the menu creates nothing. That route is the public twin of
//! `POST /api/restaurant/sessions`, which needs the tenant's key a public page must never
//! hold; like the kiosk it hands out only the new session's signed token.
//! `GET /s/{tenant}/menu` renders the menu part again, for pages told by a live `menu`
//! frame that the menu's shape changed (one renderer, on the server).

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use stonepot_domain::commerce::quote::spoken_amount;
use stonepot_domain::menu::{DIETARY_TAGS, Menu};
use stonepot_domain::{Category, Currency, Tenant};

pub fn router() -> Router<App> {
    Router::new()
        .route("/s/{tenant}", get(page))
        .route("/s/{tenant}/menu", get(menu_fragment))
        .route("/s/{tenant}/session", post(new_session))
}

/// A restaurant tenant (others have no storefront).
async fn restaurant(app: &App, raw: &str) -> ApiResult<Tenant> {
    let tenant = crate::routes::tenants::load_tenant(app, raw).await?;
    if tenant.category != Category::Restaurant {
        return Err(ApiError::not_found(format!(
            "tenant '{}' has no storefront (it is not a restaurant)",
            tenant.id
        )));
    }
    Ok(tenant)
}

#[derive(Serialize)]
struct ModifierView {
    id: String,
    name: String,
    /// `+$1.50`, or empty when free.
    delta: String,
    default: bool,
}

#[derive(Serialize)]
struct GroupView {
    id: String,
    name: String,
    min: u32,
    max: u32,
    modifiers: Vec<ModifierView>,
}

#[derive(Serialize)]
struct ItemView {
    id: String,
    name: String,
    description: String,
    price: String,
    dietary: Vec<String>,
    allergens: Vec<String>,
    available: bool,
    image_url: Option<String>,
    /// The modifier groups as JSON, for the options dialog (empty: add directly).
    groups: String,
}

#[derive(Serialize)]
struct SectionView {
    id: String,
    name: String,
    items: Vec<ItemView>,
}

fn delta_text(delta: i64, cur: Currency) -> String {
    match delta {
        0 => String::new(),
        d if d > 0 => format!("+{}", spoken_amount(d, cur)),
        d => spoken_amount(d, cur),
    }
}

/// The menu as the template lists it: sections in order, each with its items.
fn sections(menu: &Menu, cur: Currency) -> Vec<SectionView> {
    menu.sections
        .iter()
        .map(|s| SectionView {
            id: s.id.clone(),
            name: s.name.clone(),
            items: menu
                .items
                .iter()
                .filter(|i| i.section_id == s.id)
                .map(|i| {
                    let groups: Vec<GroupView> = i
                        .modifier_groups
                        .iter()
                        .map(|g| GroupView {
                            id: g.id.clone(),
                            name: g.name.clone(),
                            min: g.min,
                            max: g.max,
                            modifiers: g
                                .modifiers
                                .iter()
                                .map(|m| ModifierView {
                                    id: m.id.clone(),
                                    name: m.name.clone(),
                                    delta: delta_text(m.price_delta, cur),
                                    default: m.default,
                                })
                                .collect(),
                        })
                        .collect();
                    ItemView {
                        id: i.id.clone(),
                        name: i.name.clone(),
                        description: i.description.clone(),
                        price: spoken_amount(i.price, cur),
                        dietary: i.dietary.clone(),
                        allergens: i.allergens.clone(),
                        available: i.available,
                        image_url: i.image_url.clone(),
                        groups: if groups.is_empty() {
                            String::new()
                        } else {
                            serde_json::to_string(&groups).unwrap_or_default()
                        },
                    }
                })
                .collect(),
        })
        .filter(|s| !s.items.is_empty())
        .collect()
}

fn no_store(html: String) -> Response {
    let mut res = Html(html).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn page(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Response> {
    let tenant = restaurant(&app, &raw).await?;
    let (menu, version) = app.store.menu_with_version(&tenant.id).await?;
    let html = app
        .pages
        .render(
            "storefront.html",
            minijinja::context! {
                tenant => json!({"id": tenant.id, "name": tenant.name}),
                theme => tenant.theme,
                currency => tenant.currency.code(),
                sections => sections(&menu, tenant.currency),
                version => version,
                dietary_tags => DIETARY_TAGS,
                welcome => crate::agent::welcome(&tenant),
                offline => !app.engine.has_model(),
            },
        )
        .map_err(ApiError::internal)?;
    Ok(no_store(html))
}

/// The menu part of the page; `?since=N` answers 204 when the menu is still at version
/// N. The version is in `X-Menu-Version`.
async fn menu_fragment(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let tenant = restaurant(&app, &raw).await?;
    let (menu, version) = app.store.menu_with_version(&tenant.id).await?;
    let mut res = if q.get("since").is_some_and(|s| *s == version.to_string()) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let html = app
            .pages
            .render(
                "storefront_menu.html",
                minijinja::context! { sections => sections(&menu, tenant.currency) },
            )
            .map_err(ApiError::internal)?;
        no_store(html)
    };
    if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
        res.headers_mut().insert("x-menu-version", v);
    }
    Ok(res)
}

/// Starts a guest conversation for the storefront: its id, signed token and links.
async fn new_session(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Value>> {
    let tenant = restaurant(&app, &raw).await?;
    let id = format!("shop-{}", uuid::Uuid::now_v7().simple());
    let conv = app.engine.create(&id, &tenant, None, "en").await?;
    let body = crate::routes::chat::session_body(&app, &headers, &conv);
    let token = body["token"].as_str().unwrap_or_default();
    let enc = crate::routes::conversation::enc;
    Ok(axum::Json(json!({
        "sessionId": conv.id,
        "token": token,
        "tokenExpiresAt": body["tokenExpiresAt"],
        "socketPath": format!("/ws/restaurant/{}?token={}", enc(&conv.id), enc(token)),
        "eventsPath": format!("/conversation/{}/events?token={}", enc(&conv.id), enc(token)),
    })))
}
