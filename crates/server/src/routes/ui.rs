//! Themed display pages and the theme/cache admin API.

use crate::app::App;
use crate::auth::access::{self, OperatorOf};
use crate::display::token;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use stonepot_domain::{Tenant, TenantId, Theme};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(conversation_page))
        .routes(routes!(get_theme, put_theme))
        .routes(routes!(generate_theme))
        .routes(routes!(purge))
}

/// Tenants as last read for page renders; purged on theme writes and by the purge API.
#[derive(Default)]
pub struct TenantCache(std::sync::Mutex<HashMap<String, Tenant>>);

impl TenantCache {
    pub async fn get(&self, app: &App, id: &TenantId) -> ApiResult<Option<Tenant>> {
        if let Some(t) = self.0.lock().ok().and_then(|m| m.get(id.as_str()).cloned()) {
            return Ok(Some(t));
        }
        let t = app.store.tenant(id).await?;
        if let (Some(t), Ok(mut m)) = (&t, self.0.lock()) {
            m.insert(id.to_string(), t.clone());
        }
        Ok(t)
    }
    pub fn purge(&self, id: Option<&str>) -> usize {
        let Ok(mut m) = self.0.lock() else { return 0 };
        match id {
            Some(id) => usize::from(m.remove(id).is_some()),
            None => {
                let n = m.len();
                m.clear();
                n
            }
        }
    }
}

/// The display page for one session, server-rendered in the tenant's theme.
#[utoipa::path(get, path = "/ui/conversation", tag = "display",
    params(("session" = String, Query), ("tenant" = String, Query),
        ("category" = Option<String>, Query), ("token" = String, Query)),
    security(("session_token" = ["guest"])),
    responses((status = 200, content_type = "text/html", body = String),
        (status = 304, description = "unchanged (ETag)"), (status = 401, body = ErrorBody)))]
async fn conversation_page(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let need = |k: &str| {
        q.get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_request("missing_parameter", format!("{k}: required")))
    };
    let session = need("session")?;
    // A missing token is a missing credential (401), like a wrong one.
    let tok = q
        .get("token")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::unauthorized("a display token is required (?token=)"))?;
    let claims = token::verify(
        app.config.signing_key.expose().as_bytes(),
        tok,
        session,
        jiff::Timestamp::now().as_second(),
    )
    .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    if let Some(t) = q.get("tenant")
        && t != &claims.t
    {
        return Err(ApiError::unauthorized(
            "the display token is for another tenant",
        ));
    }
    let tenant_id = TenantId::new(claims.t.clone())
        .map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    let tenant = app
        .tenant_cache
        .get(&app, &tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant '{tenant_id}'")))?;
    let category = tenant.category.as_str();
    if let Some(c) = q.get("category")
        && c != category
    {
        return Err(ApiError::bad_request(
            "invalid_category",
            format!("category: tenant '{tenant_id}' is {category}"),
        ));
    }
    tenant.theme.validate().map_err(ApiError::internal)?;
    let html = app
        .pages
        .render(
            "display.html",
            minijinja::context! {
                tenant => json!({"id": tenant.id, "name": tenant.name, "currency": tenant.currency.code()}),
                theme => tenant.theme,
                category => category,
                session => session,
                token => tok,
            },
        )
        .map_err(ApiError::internal)?;
    let etag = format!(
        "\"{}\"",
        hex::encode(
            Sha256::digest(html.as_bytes())
                .get(..12)
                .unwrap_or_default()
        )
    );
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Html(html).into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}

/// A tenant's theme (operator of the tenant, or admin).
#[utoipa::path(get, path = "/api/admin/tenants/{tenant}/theme", tag = "admin",
    params(("tenant" = String, Path)),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_theme(
    State(app): State<App>,
    OperatorOf(id, _): OperatorOf,
) -> ApiResult<Json<Theme>> {
    let t = app
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant '{id}'")))?;
    Ok(Json(t.theme))
}

/// Replaces a tenant's theme (operator of the tenant, or admin); pages render it on
/// next load.
#[utoipa::path(put, path = "/api/admin/tenants/{tenant}/theme", tag = "admin",
    params(("tenant" = String, Path)),
    request_body(content = Object),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_theme(
    State(app): State<App>,
    OperatorOf(id, _): OperatorOf,
    JsonBody(theme): JsonBody<Theme>,
) -> ApiResult<Json<Theme>> {
    theme
        .validate()
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let mut t = app
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant '{id}'")))?;
    t.theme = theme;
    app.store.upsert_tenant(&t).await?;
    app.tenant_cache.purge(Some(id.as_str()));
    Ok(Json(t.theme))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThemeRequest {
    /// What the business looks like: "a cosy trattoria in deep burgundy", "#0b3d91 bank".
    description: String,
    /// Save it as the tenant's theme (default: only return it).
    #[serde(default)]
    apply: bool,
}

/// Generates a theme from a description (operator of the tenant, or admin): asks the
/// configured model through a schema-checked tool call, or derives a readable palette
/// from the description's brand color when there is no model or its answer is invalid.
#[utoipa::path(post, path = "/api/admin/tenants/{tenant}/theme/generate", tag = "admin",
    params(("tenant" = String, Path)),
    request_body = ThemeRequest,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Object, description = "{theme, source, applied, note?}"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn generate_theme(
    State(app): State<App>,
    OperatorOf(id, _): OperatorOf,
    JsonBody(req): JsonBody<ThemeRequest>,
) -> ApiResult<Json<Value>> {
    let description = req.description.trim();
    if description.is_empty() || description.chars().count() > 500 {
        return Err(ApiError::unprocessable(
            "description: between 1 and 500 characters",
        ));
    }
    let mut t = app
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant '{id}'")))?;
    let g = crate::agent::theme::generate(app.engine.model(), description, t.category).await;
    if req.apply {
        t.theme = g.theme.clone();
        app.store.upsert_tenant(&t).await?;
        app.tenant_cache.purge(Some(id.as_str()));
    }
    Ok(Json(json!({
        "theme": g.theme,
        "source": g.source,
        "applied": req.apply,
        "note": g.note,
    })))
}

/// Drops every cached render input (admin, or the narrower `CACHE_PURGE_TOKEN` a CDN
/// hook can hold without being an admin).
#[utoipa::path(post, path = "/api/admin/cache/purge", tag = "admin",
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn purge(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let purge_token = access::credential(&headers).is_some_and(|c| {
        app.config
            .cache_purge_token
            .as_ref()
            .is_some_and(|t| bool::from(t.expose().as_bytes().ct_eq(c.as_bytes())))
    });
    if !purge_token {
        access::require_admin(&app, &headers).await?;
    }
    let n = app.tenant_cache.purge(None);
    Ok(Json(json!({ "purged": n })))
}
