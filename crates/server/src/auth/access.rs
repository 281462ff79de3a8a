//! Who may call an endpoint: the one place a request's credential becomes an
//! [`Identity`] and is checked against the role and tenant the endpoint needs.
//!
//! A request presents one bearer credential (`Authorization: Bearer …`, or the
//! `X-Api-Key` header integrations already send):
//!
//! - a JWT (three dot-separated base64url parts starting `eyJ`), verified by
//!   [`super::jwt::Verifier`]: Stonepot's own HS256 tokens or the identity provider's;
//! - the admin token (`THEME_API_TOKEN`), which is the admin role;
//! - a tenant API key, which is the role it was created with (staff or operator) on
//!   the tenants it opens.
//!
//! Guests hold no bearer credential of their own: their session's signed display token
//! opens that one session, and is checked where sessions are loaded (see
//! `routes::chat::authorize`).
//!
//! The answers are deliberately distinct: 401 when the credential is missing, invalid
//! or does not open the tenant at all (another tenant's key looks exactly like a wrong
//! key, so nothing is learnt about other tenants), 403 when it opens the tenant with a
//! role below what the endpoint needs.

use super::{Identity, Role};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::collections::HashMap;
use stonepot_domain::TenantId;
use subtle::ConstantTimeEq;

/// The bearer credential: `Authorization: Bearer …`, else `X-Api-Key`.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|c| !c.is_empty())
}

/// Whether a credential is shaped like a JWT (API keys never are: they have no dots).
pub fn looks_like_jwt(c: &str) -> bool {
    c.starts_with("eyJ") && c.split('.').count() == 3
}

/// Whether `given` is the admin token (`THEME_API_TOKEN`), compared in constant time.
pub fn is_admin_token(app: &App, given: &str) -> bool {
    app.config
        .theme_api_token
        .as_ref()
        .is_some_and(|t| bool::from(t.expose().as_bytes().ct_eq(given.as_bytes())))
}

/// The identity the request's credential names. With `tenant`, an API key is read as
/// its grant on that tenant (401 when it has none); without, as its first grant.
///
/// Once verified, the request counts against its key's and its tenant's rate limits
/// (429 past them): only here, so that a credential that proves nothing spends nothing
/// of anyone's budget.
pub async fn identify(
    app: &App,
    headers: &HeaderMap,
    tenant: Option<&TenantId>,
) -> ApiResult<Identity> {
    let who = verify(app, headers, tenant).await?;
    crate::http::ratelimit::after_auth(app, &who).await?;
    Ok(who)
}

/// [`identify`] without counting the request.
async fn verify(app: &App, headers: &HeaderMap, tenant: Option<&TenantId>) -> ApiResult<Identity> {
    let Some(c) = credential(headers) else {
        return Err(ApiError::unauthorized(
            "send a token or the tenant's API key as Authorization: Bearer <credential>",
        ));
    };
    if looks_like_jwt(c) {
        return Ok(app.verifier.verify(c).await?);
    }
    if is_admin_token(app, c) {
        return Ok(Identity {
            subject: "admin-token".into(),
            role: Role::Admin,
            tenant: None,
            issuer: "THEME_API_TOKEN".into(),
        });
    }
    let grants = app.api_key_grants(c).await?;
    let key_id: String = stonepot_store::hash_api_key(c)
        .chars()
        .take(stonepot_store::KEY_ID_LEN)
        .collect();
    let grant = match tenant {
        Some(t) => grants.into_iter().find(|(g, _)| g == t).ok_or_else(|| {
            ApiError::unauthorized(format!("the API key is not valid for tenant '{t}'"))
        })?,
        None => grants
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?,
    };
    Ok(Identity {
        subject: format!("{}{key_id}", super::KEY_SUBJECT_PREFIX),
        role: grant.1,
        tenant: Some(grant.0),
        issuer: "api-key".into(),
    })
}

/// Requires `role` (or more) on `tenant`: 401 when the credential does not open the
/// tenant, 429 past its key's or the tenant's rate limit, 403 when its role there is too
/// weak.
pub async fn require(
    app: &App,
    headers: &HeaderMap,
    tenant: &TenantId,
    role: Role,
) -> ApiResult<Identity> {
    let who = verify(app, headers, Some(tenant)).await?;
    if who.role == Role::Admin {
        return Ok(who);
    }
    if who.tenant.as_ref() != Some(tenant) {
        return Err(ApiError::unauthorized(format!(
            "the credential is not valid for tenant '{tenant}'"
        )));
    }
    // Counted only now that the credential is known to act for this tenant: another
    // tenant's token spends nothing here (nor of its own tenant's budget).
    crate::http::ratelimit::after_auth(app, &who).await?;
    if who.role < role {
        return Err(ApiError::forbidden(format!(
            "this needs the {} role on tenant '{tenant}'; the credential is {}",
            role.as_str(),
            who.role.as_str()
        )));
    }
    Ok(who)
}

/// Requires the admin role (an admin JWT or `THEME_API_TOKEN`).
pub async fn require_admin(app: &App, headers: &HeaderMap) -> ApiResult<Identity> {
    let who = identify(app, headers, None).await?;
    if who.role == Role::Admin {
        Ok(who)
    } else {
        Err(ApiError::forbidden(format!(
            "this needs the admin role; the credential is {}",
            who.role.as_str()
        )))
    }
}

/// The `{tenant}` of the route's path, 400 when malformed.
async fn path_tenant(parts: &mut Parts, app: &App) -> ApiResult<TenantId> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let raw = params
        .get("tenant")
        .ok_or_else(|| ApiError::internal("route has no {tenant} parameter"))?;
    crate::routes::tenants::tenant_id(raw)
}

/// Proof that the caller is staff (or more) of the `{tenant}` in the path. An
/// extractor, so it runs before the body is read: callers without access learn nothing
/// about what the body should look like.
pub struct StaffOf(pub TenantId, pub Identity);

impl FromRequestParts<App> for StaffOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let tenant = path_tenant(parts, app).await?;
        let who = require(app, &parts.headers, &tenant, Role::Staff).await?;
        Ok(StaffOf(tenant, who))
    }
}

/// Proof that the caller is an operator (or admin) of the `{tenant}` in the path; see
/// [`StaffOf`].
pub struct OperatorOf(pub TenantId, pub Identity);

impl FromRequestParts<App> for OperatorOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let tenant = path_tenant(parts, app).await?;
        let who = require(app, &parts.headers, &tenant, Role::Operator).await?;
        Ok(OperatorOf(tenant, who))
    }
}

/// Proof that the caller is an admin.
pub struct AdminCaller(pub Identity);

impl FromRequestParts<App> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(AdminCaller(require_admin(app, &parts.headers).await?))
    }
}
