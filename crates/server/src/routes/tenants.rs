//! Tenant profiles and agents. Reads of profiles are public (display pages need them);
//! the rest needs one of the tenant's API keys. Menus are in [`super::menu`].

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Serialize;
use std::collections::HashMap;
use stonepot_domain::{Tenant, TenantId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_tenant))
        .routes(routes!(me))
        .routes(routes!(get_agent, put_agent))
}

/// A tenant's agent: its persona and house instructions (the system prompt's parts).
#[derive(Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    /// Who the agent is, e.g. "You are Gia, the host of Stonepot Trattoria."
    persona: String,
    /// House rules, e.g. "Suggest a drink with every pizza."
    #[serde(default)]
    instructions: String,
    /// False when the category's default persona is in use.
    #[serde(default, skip_deserializing)]
    custom: bool,
}

/// The tenant's agent profile (needs the tenant's API key).
#[utoipa::path(get, path = "/api/tenants/{tenant}/agent", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = AgentProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_agent(
    State(app): State<App>,
    TenantKey(tenant): TenantKey,
) -> ApiResult<Json<AgentProfile>> {
    let t = load_tenant(&app, tenant.as_str()).await?;
    Ok(Json(match app.store.agent_profile(&t.id).await? {
        Some((persona, instructions)) => AgentProfile {
            persona,
            instructions,
            custom: true,
        },
        None => AgentProfile {
            persona: crate::agent::default_persona(&t),
            instructions: String::new(),
            custom: false,
        },
    }))
}

/// Sets the tenant's agent persona and instructions (needs the tenant's API key); the
/// next turn of every conversation uses them.
#[utoipa::path(put, path = "/api/tenants/{tenant}/agent", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = AgentProfile,
    responses((status = 200, body = AgentProfile), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_agent(
    State(app): State<App>,
    TenantKey(tenant): TenantKey,
    JsonBody(mut p): JsonBody<AgentProfile>,
) -> ApiResult<Json<AgentProfile>> {
    let t = load_tenant(&app, tenant.as_str()).await?;
    if p.persona.trim().is_empty() || p.persona.chars().count() > 2_000 {
        return Err(ApiError::unprocessable(
            "persona: between 1 and 2000 characters",
        ));
    }
    if p.instructions.chars().count() > 8_000 {
        return Err(ApiError::unprocessable(
            "instructions: at most 8000 characters",
        ));
    }
    app.store
        .set_agent_profile(&t.id, p.persona.trim(), p.instructions.trim())
        .await?;
    p.custom = true;
    Ok(Json(p))
}

/// Parses a tenant id from the path, refusing bad ones with 400.
pub fn tenant_id(raw: &str) -> ApiResult<TenantId> {
    TenantId::new(raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

/// The API key from `Authorization: Bearer …` or `X-Api-Key`.
pub fn api_key(headers: &HeaderMap) -> ApiResult<String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let header = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer
        .or(header)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .ok_or_else(|| {
            ApiError::unauthorized("send the tenant's API key as Authorization: Bearer <key>")
        })
}

/// Proof that the request carries an active API key of the `{tenant}` in its path.
/// An extractor, so it runs before the body is read: unauthenticated callers learn
/// nothing about what the body should look like.
pub struct TenantKey(pub TenantId);

impl FromRequestParts<App> for TenantKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        let raw = params
            .get("tenant")
            .ok_or_else(|| ApiError::internal("route has no {tenant} parameter"))?;
        let tenant = tenant_id(raw)?;
        let key = api_key(&parts.headers)?;
        if app.api_key_valid(&tenant, &key).await? {
            Ok(TenantKey(tenant))
        } else {
            Err(ApiError::unauthorized(format!(
                "the API key is not valid for tenant '{tenant}'"
            )))
        }
    }
}

/// The tenant a path segment names: 400 for a malformed id, 404 when there is none.
pub(crate) async fn load_tenant(app: &App, raw: &str) -> ApiResult<Tenant> {
    app.tenant(&tenant_id(raw)?).await
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    id: String,
    name: String,
    /// `restaurant` or `financial`.
    category: String,
    currency: String,
    timezone: String,
    #[schema(value_type = Object)]
    theme: stonepot_domain::Theme,
}

/// A tenant's public profile and theme.
#[utoipa::path(get, path = "/api/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)))]
async fn get_tenant(
    State(app): State<App>,
    Path(raw): Path<String>,
) -> ApiResult<Json<TenantView>> {
    let t = load_tenant(&app, &raw).await?;
    Ok(Json(TenantView {
        id: t.id.to_string(),
        name: t.name,
        category: t.category.as_str().into(),
        currency: t.currency.code().into(),
        timezone: t.timezone,
        theme: t.theme,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    tenants: Vec<String>,
}

/// The tenants the presented API key opens.
#[utoipa::path(get, path = "/api/me", tag = "tenants",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<Me>> {
    let key = api_key(&headers)?;
    let tenants = app.store.api_key_tenants(&key).await?;
    if tenants.is_empty() {
        return Err(ApiError::unauthorized("unknown or revoked API key"));
    }
    Ok(Json(Me {
        tenants: tenants.into_iter().map(|t| t.to_string()).collect(),
    }))
}
