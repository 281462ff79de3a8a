//! The menu admin API: the whole menu, sections, items with their modifier groups and
//! tags, and the "86" (availability) toggle. Reads are public (storefronts and displays
//! need them); writes need the tenant's API key or the admin token.
//!
//! Every write is validated by the domain, committed with a menu-version bump in one
//! transaction (so outstanding quotes go stale at once), and then pushed to the
//! tenant's open displays ([`crate::display::menu`]). A refused write changes nothing.

use crate::app::App;
use crate::display::menu::{MenuChange, push};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use stonepot_domain::menu::{Item, Menu, MenuError, ModifierGroup, Section, check_id};
use stonepot_domain::{Currency, Tenant, TenantId};
use stonepot_store::MenuEditError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_menu, put_menu))
        .routes(routes!(put_section, delete_section))
        .routes(routes!(get_item, put_item, delete_item))
        .routes(routes!(set_availability))
}

/// Proof that the caller is an operator (or admin) of the `{tenant}` in its path, with
/// the tenant loaded. An extractor, so it runs before the body is read.
pub struct Operator(pub Tenant);

impl FromRequestParts<App> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let crate::auth::access::OperatorOf(id, _) =
            crate::auth::access::OperatorOf::from_request_parts(parts, app).await?;
        Ok(Operator(app.tenant(&id).await?))
    }
}

fn invalid(e: &MenuError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_menu",
        e.to_string(),
    )
}

impl From<MenuEditError> for ApiError {
    fn from(e: MenuEditError) -> Self {
        match e {
            MenuEditError::Invalid(m) => invalid(&m),
            MenuEditError::NotFound { .. } => ApiError::not_found(e.to_string()),
            MenuEditError::VersionMismatch { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version_conflict", e.to_string())
            }
            MenuEditError::SectionInUse { .. } => {
                ApiError::new(StatusCode::CONFLICT, "section_in_use", e.to_string())
            }
            MenuEditError::Store(s) => s.into(),
        }
    }
}

/// A section or item id from the path.
fn path_id(kind: &str, raw: &str) -> ApiResult<String> {
    check_id(kind, raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    Ok(raw.to_string())
}

/// An `id` in the body, when given, must be the path's.
fn same_id(body: Option<&str>, path: &str) -> ApiResult<()> {
    match body {
        Some(b) if b != path => Err(ApiError::unprocessable(format!(
            "id: must match the path ('{path}'), not '{b}'"
        ))),
        _ => Ok(()),
    }
}

/// Prices are minor units of the tenant's currency; a body that says which currency it
/// means must mean that one.
fn same_currency(given: Option<&str>, tenant: &Tenant) -> ApiResult<()> {
    let Some(code) = given else { return Ok(()) };
    let c = Currency::from_code(code.trim())
        .map_err(|_| ApiError::unprocessable(format!("currency: unknown currency '{code}'")))?;
    if c != tenant.currency {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            format!(
                "currency: {} prices in {}, not {}; send prices as {} minor units",
                tenant.id,
                tenant.currency.code(),
                c.code(),
                tenant.currency.code()
            ),
        ));
    }
    Ok(())
}

/// Pushes a committed change to the tenant's open displays; returns how many it reached.
async fn live(app: &App, tenant: &TenantId, change: &MenuChange) -> usize {
    push(&app.hub, tenant, change).await
}

/// A tenant's menu with its version.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MenuResponse {
    /// Bumped by every change; send it back with `PUT …/menu` to refuse lost updates.
    version: u64,
    /// The currency every price is in (minor units).
    currency: String,
    #[schema(value_type = Vec<Object>)]
    sections: Vec<Section>,
    #[schema(value_type = Vec<Object>)]
    items: Vec<Item>,
}

/// The tenant's menu: sections and items, prices in integer minor units, with its
/// version.
#[utoipa::path(get, path = "/api/tenants/{tenant}/menu", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id")),
    security(()),
    responses((status = 200, body = MenuResponse), (status = 404, body = ErrorBody)))]
async fn get_menu(
    State(app): State<App>,
    Path(raw): Path<String>,
) -> ApiResult<Json<MenuResponse>> {
    let id = crate::routes::tenants::tenant_id(&raw)?;
    let tenant = app.tenant(&id).await?;
    let (menu, version) = app.store.menu_with_version(&id).await?;
    Ok(Json(MenuResponse {
        version,
        currency: tenant.currency.code().into(),
        sections: menu.sections.clone(),
        items: menu.items.clone(),
    }))
}

/// A whole menu, as `GET` returns it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutMenuRequest {
    /// The version this menu was edited from; when given, a menu changed since then is
    /// refused with 409 instead of being overwritten.
    #[serde(default)]
    version: Option<u64>,
    /// Optional: the currency the prices are in; must be the tenant's.
    #[serde(default)]
    currency: Option<String>,
    #[schema(value_type = Vec<Object>)]
    sections: Vec<Section>,
    #[schema(value_type = Vec<Object>)]
    items: Vec<Item>,
}

#[derive(Serialize, ToSchema)]
pub struct MenuSaved {
    /// The menu's new version.
    version: u64,
    sections: usize,
    items: usize,
    /// Sessions with an open display that were told.
    displays: usize,
}

/// Replaces the whole menu (tenant key or admin token). Invalid menus get 422 naming the
/// field; a stale `version` gets 409.
#[utoipa::path(put, path = "/api/tenants/{tenant}/menu", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = PutMenuRequest,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = MenuSaved), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_menu(
    State(app): State<App>,
    Operator(t): Operator,
    JsonBody(req): JsonBody<PutMenuRequest>,
) -> ApiResult<Json<MenuSaved>> {
    same_currency(req.currency.as_deref(), &t)?;
    let menu = Menu {
        sections: req.sections,
        items: req.items,
    };
    menu.validate().map_err(|e| invalid(&e))?;
    let old = app.store.menu(&t.id).await?;
    let version = app.store.replace_menu_at(&t.id, &menu, req.version).await?;
    let displays = live(&app, &t.id, &MenuChange::between(version, &old, &menu)).await;
    Ok(Json(MenuSaved {
        version,
        sections: menu.sections.len(),
        items: menu.items.len(),
        displays,
    }))
}

/// A section; the id comes from the path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionRequest {
    /// Optional; must be the path's id when given.
    #[serde(default)]
    id: Option<String>,
    name: String,
    /// Sections are listed by position, then id.
    #[serde(default)]
    position: i32,
}

#[derive(Serialize, ToSchema)]
pub struct SectionSaved {
    #[schema(value_type = Object)]
    section: Section,
    created: bool,
    version: u64,
}

/// Creates or renames/moves a section (tenant key or admin token); 201 when new.
#[utoipa::path(put, path = "/api/tenants/{tenant}/menu/sections/{section}", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id"), ("section" = String, Path, description = "section id")),
    request_body = SectionRequest,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = SectionSaved), (status = 201, body = SectionSaved),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_section(
    State(app): State<App>,
    Operator(t): Operator,
    Path(ids): Path<(String, String)>,
    JsonBody(req): JsonBody<SectionRequest>,
) -> ApiResult<(StatusCode, Json<SectionSaved>)> {
    let id = path_id("section", &ids.1)?;
    same_id(req.id.as_deref(), &id)?;
    let section = Section {
        id,
        name: req.name,
        position: req.position,
    };
    let (created, version) = app.store.upsert_menu_section(&t.id, &section).await?;
    live(
        &app,
        &t.id,
        &MenuChange {
            version,
            reload: true,
            ..MenuChange::default()
        },
    )
    .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(SectionSaved {
            section,
            created,
            version,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    /// The menu's new version.
    version: u64,
}

/// Deletes an empty section (tenant key or admin token); 409 while it holds items.
#[utoipa::path(delete, path = "/api/tenants/{tenant}/menu/sections/{section}", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id"), ("section" = String, Path, description = "section id")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Deleted), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_section(
    State(app): State<App>,
    Operator(t): Operator,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    let id = path_id("section", &ids.1)?;
    let version = app.store.delete_menu_section(&t.id, &id).await?;
    live(
        &app,
        &t.id,
        &MenuChange {
            version,
            reload: true,
            ..MenuChange::default()
        },
    )
    .await;
    Ok(Json(Deleted { version }))
}

/// An item; the id comes from the path. Prices are integer minor units of the tenant's
/// currency (1299 for 12.99).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRequest {
    /// Optional; must be the path's id when given.
    #[serde(default)]
    id: Option<String>,
    section_id: String,
    name: String,
    #[serde(default)]
    description: String,
    /// Minor units, 0 to 100,000,000.
    price: i64,
    /// Optional: the currency `price` is in; must be the tenant's.
    #[serde(default)]
    currency: Option<String>,
    /// From the fixed list: vegetarian, vegan, gluten_free, dairy_free, nut_free, halal,
    /// kosher, spicy.
    #[serde(default)]
    dietary: Vec<String>,
    /// From the fixed list of the 14 major allergens (gluten, milk, eggs, …).
    #[serde(default)]
    allergens: Vec<String>,
    /// Other names guests use for it.
    #[serde(default)]
    aliases: Vec<String>,
    /// Defaults to true.
    #[serde(default = "yes")]
    available: bool,
    #[serde(default)]
    image_url: Option<String>,
    /// `[{"id","name","min","max","modifiers":[{"id","name","priceDelta","default"}]}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    modifier_groups: Vec<ModifierGroup>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
pub struct ItemSaved {
    #[schema(value_type = Object)]
    item: Item,
    created: bool,
    /// The menu's new version.
    version: u64,
    /// Sessions with an open display that were told.
    displays: usize,
}

/// One item of the menu.
#[utoipa::path(get, path = "/api/tenants/{tenant}/menu/items/{item}", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id"), ("item" = String, Path, description = "item id")),
    security(()),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn get_item(
    State(app): State<App>,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Json<Item>> {
    let tenant = crate::routes::tenants::tenant_id(&ids.0)?;
    let id = path_id("item", &ids.1)?;
    app.store
        .menu_item(&tenant, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no item '{id}' on the menu")))
}

/// Creates or replaces an item with its modifier groups and tags (tenant key or admin
/// token); 201 when new. A new item goes last; an existing one keeps its place.
#[utoipa::path(put, path = "/api/tenants/{tenant}/menu/items/{item}", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id"), ("item" = String, Path, description = "item id")),
    request_body = ItemRequest,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = ItemSaved), (status = 201, body = ItemSaved),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_item(
    State(app): State<App>,
    Operator(t): Operator,
    Path(ids): Path<(String, String)>,
    JsonBody(req): JsonBody<ItemRequest>,
) -> ApiResult<(StatusCode, Json<ItemSaved>)> {
    let id = path_id("item", &ids.1)?;
    same_id(req.id.as_deref(), &id)?;
    same_currency(req.currency.as_deref(), &t)?;
    let item = Item {
        id,
        section_id: req.section_id,
        name: req.name,
        description: req.description,
        price: req.price,
        dietary: req.dietary,
        allergens: req.allergens,
        aliases: req.aliases,
        available: req.available,
        image_url: req.image_url,
        modifier_groups: req.modifier_groups,
    };
    let c = app.store.upsert_menu_item(&t.id, &item).await?;
    let created = c.before.is_none();
    // Only a pure availability flip leaves a listed menu's shape and text as they were.
    let only_availability = c.before.as_ref().is_some_and(|b| {
        let mut flipped = b.clone();
        flipped.available = item.available;
        flipped == item
    });
    let displays = live(
        &app,
        &t.id,
        &MenuChange::item(c.version, &item.id, Some(item.clone()), !only_availability),
    )
    .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ItemSaved {
            item,
            created,
            version: c.version,
            displays,
        }),
    ))
}

/// Deletes an item (tenant key or admin token). Carts holding it can no longer be
/// quoted; displays showing it mark it unavailable.
#[utoipa::path(delete, path = "/api/tenants/{tenant}/menu/items/{item}", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id"), ("item" = String, Path, description = "item id")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Deleted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_item(
    State(app): State<App>,
    Operator(t): Operator,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Json<Deleted>> {
    let id = path_id("item", &ids.1)?;
    let (_, version) = app.store.delete_menu_item(&t.id, &id).await?;
    live(&app, &t.id, &MenuChange::item(version, &id, None, true)).await;
    Ok(Json(Deleted { version }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// false to "86" the item (sold out), true to bring it back.
    available: bool,
}

/// Marks an item available or not — the "86" (tenant key or admin token). Open displays
/// and storefronts of the tenant see it at once; the agent refuses to add it while it
/// is off; quotes made before are stale.
#[utoipa::path(post, path = "/api/tenants/{tenant}/menu/items/{item}/availability", tag = "menu",
    params(("tenant" = String, Path, description = "tenant id"), ("item" = String, Path, description = "item id")),
    request_body = AvailabilityRequest,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = ItemSaved), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_availability(
    State(app): State<App>,
    Operator(t): Operator,
    Path(ids): Path<(String, String)>,
    JsonBody(req): JsonBody<AvailabilityRequest>,
) -> ApiResult<Json<ItemSaved>> {
    let id = path_id("item", &ids.1)?;
    let c = app
        .store
        .set_menu_item_available(&t.id, &id, req.available)
        .await?;
    let displays = live(
        &app,
        &t.id,
        &MenuChange::item(c.version, &id, Some(c.after.clone()), false),
    )
    .await;
    Ok(Json(ItemSaved {
        item: c.after,
        created: false,
        version: c.version,
        displays,
    }))
}
