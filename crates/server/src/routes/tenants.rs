//! Tenant profiles and agents. Reads of profiles are public (display pages need them);
//! the agent needs an operator of the tenant. Menus are in [`super::menu`], keys in
//! [`super::keys`].

use crate::app::App;
use crate::auth::Role;
use crate::auth::access::{self, OperatorOf};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;
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

/// The tenant's agent profile (operator).
#[utoipa::path(get, path = "/api/tenants/{tenant}/agent", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = AgentProfile), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_agent(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
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

/// Sets the tenant's agent persona and instructions (operator); the next turn of every
/// conversation uses them.
#[utoipa::path(put, path = "/api/tenants/{tenant}/agent", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = AgentProfile,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = AgentProfile), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_agent(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
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
    security(()),
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
    /// The tenants the credential opens (every tenant for an admin).
    tenants: Vec<String>,
    /// `staff`, `operator` or `admin` (for a key opening several tenants, its role on
    /// the first).
    role: String,
}

/// Who the presented credential is: the tenants it opens and its role.
#[utoipa::path(get, path = "/api/me", tag = "tenants",
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn me(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<Me>> {
    let who = access::identify(&app, &headers, None).await?;
    if who.role < Role::Staff {
        return Err(ApiError::forbidden("this needs the staff role or more"));
    }
    let tenants: Vec<TenantId> = match (who.role, access::credential(&headers)) {
        (Role::Admin, _) => app
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect(),
        (_, Some(c)) if !access::looks_like_jwt(c) => app.api_key_tenants(c).await?,
        _ => who.tenant.clone().into_iter().collect(),
    };
    Ok(Json(Me {
        tenants: tenants.into_iter().map(|t| t.to_string()).collect(),
        role: who.role.as_str().into(),
    }))
}
