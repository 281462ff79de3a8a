//! The admin API for tenant API keys: an operator of the tenant (or an admin) creates,
//! lists and revokes them. A created key is in the response once and never again.

use crate::app::App;
use crate::auth::access::OperatorOf;
use crate::auth::keys::{self, CreatedKey, KeyError, KeyView};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::BadLabel | KeyError::BadRole(_) => ApiError::unprocessable(e.to_string()),
            KeyError::NoTenant(_) => ApiError::not_found(e.to_string()),
            KeyError::Store(s) => s.into(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for, e.g. "kitchen tablet".
    label: String,
    /// `staff` (kitchen, orders) or `operator` (also menu, theme, agent, keys).
    role: String,
}

/// The tenant's API keys, active and revoked, oldest first (operator). Keys themselves
/// are never listed; `id` names each one.
#[utoipa::path(get, path = "/api/admin/tenants/{tenant}/keys", tag = "admin",
    params(("tenant" = String, Path, description = "tenant id")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Vec<KeyView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_keys(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
) -> ApiResult<Json<Vec<KeyView>>> {
    let keys = app.store.api_keys(&tenant).await?;
    Ok(Json(keys.into_iter().map(KeyView::from).collect()))
}

/// Creates an API key (operator). The response holds the key: the only time it is
/// shown, as only its hash is stored.
#[utoipa::path(post, path = "/api/admin/tenants/{tenant}/keys", tag = "admin",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = NewKey,
    security(("bearer" = ["operator"])),
    responses((status = 201, body = CreatedKey), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_key(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
    JsonBody(req): JsonBody<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let role = keys::key_role(&req.role)?;
    let created = keys::create(&app.store, &tenant, &req.label, role).await?;
    tracing::info!(tenant = %tenant, key = %created.id, role = %created.role, "API key created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes an API key by its id (operator); it stops working at once on this instance
/// and within seconds on the others. 404 when the tenant has no active key with that id.
#[utoipa::path(delete, path = "/api/admin/tenants/{tenant}/keys/{key}", tag = "admin",
    params(("tenant" = String, Path, description = "tenant id"),
        ("key" = String, Path, description = "the key's id from the listing")),
    security(("bearer" = ["operator"])),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_key(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
    Path(path): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = path.1;
    if !app.store.revoke_api_key(&tenant, &id).await? {
        return Err(ApiError::not_found(format!(
            "tenant '{tenant}' has no active key '{id}'"
        )));
    }
    app.forget_keys();
    tracing::info!(tenant = %tenant, key = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
