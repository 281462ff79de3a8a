//! The landing page and embedded static assets (not rate limited).

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(landing))
        .route("/assets/{*path}", get(asset))
}

#[derive(Serialize)]
struct TenantLink {
    id: String,
    name: String,
    category: &'static str,
}

async fn landing(State(app): State<App>) -> ApiResult<Html<String>> {
    let tenants: Vec<TenantLink> = app
        .store
        .tenants()
        .await?
        .into_iter()
        .map(|t| TenantLink {
            id: t.id.to_string(),
            name: t.name,
            category: t.category.as_str(),
        })
        .collect();
    let html = app
        .pages
        .render(
            "landing.html",
            minijinja::context! {
                tenants => tenants,
                version => crate::routes::ops::VERSION,
                environment => app.config.environment.as_str(),
            },
        )
        .map_err(ApiError::internal)?;
    Ok(Html(html))
}

async fn asset(State(app): State<App>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = app.assets.get(&path) else {
        return ApiError::not_found(format!("no asset '{path}'")).into_response();
    };
    let etag = format!("\"{}\"", a.hash);
    let cache = if a.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    (h, a.bytes.into_owned()).into_response()
}
