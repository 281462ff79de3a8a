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
        .route("/demo/{tenant}", get(demo_display))
}

#[derive(Serialize)]
struct TenantLink {
    id: String,
    name: String,
    category: &'static str,
    demo: bool,
}

async fn landing(State(app): State<App>) -> ApiResult<Html<String>> {
    let tenants: Vec<TenantLink> = app
        .store
        .tenants()
        .await?
        .into_iter()
        .map(|t| TenantLink {
            demo: crate::serve::is_demo_tenant(&t.id),
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
                demo => app.config.demo,
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

/// With `--demo`: opens a fresh display session for a demo tenant, seeds it with a few
/// components from the tenant's own data, and redirects to its signed display page.
async fn demo_display(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    use crate::display::hub::UpdateCommand;
    use serde_json::json;
    let id = crate::routes::tenants::tenant_id(&raw)?;
    if !app.config.demo || !crate::serve::is_demo_tenant(&id) {
        return Err(ApiError::not_found(
            "demo displays exist only with serve --demo",
        ));
    }
    let tenant = app
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant '{id}'")))?;
    let session = format!("demo-{}", uuid::Uuid::now_v7().simple());
    app.hub
        .init(
            &session,
            &id,
            tenant.category,
            &json!({"tenantId": id, "source": "demo"}),
        )
        .await?;
    let mut seed = vec![UpdateCommand::Put {
        kind: "message".into(),
        data: json!({"text": format!("Welcome to {}. This display follows the conversation live.", tenant.name)}),
        key: Some("welcome".into()),
    }];
    match tenant.category {
        stonepot_domain::Category::Restaurant => {
            let menu = app.store.menu(&id).await?;
            for section in menu.sections.iter().take(2) {
                let items: Vec<_> = menu
                    .items
                    .iter()
                    .filter(|i| i.section_id == section.id)
                    .map(|i| json!({"name": i.name, "price": {"minor": i.price}, "available": i.available}))
                    .collect();
                seed.push(UpdateCommand::Put {
                    kind: "menu_section".into(),
                    data: json!({"title": section.name, "items": items}),
                    key: Some(format!("section-{}", section.id)),
                });
            }
        }
        stonepot_domain::Category::Financial => {
            let book = app.store.book(&id).await?;
            if let Some(client) = book.clients.first() {
                for a in book.accounts.iter().filter(|a| a.client_id == client.id) {
                    seed.push(UpdateCommand::Put {
                        kind: "account_card".into(),
                        data: json!({"name": a.name, "kind": a.kind, "owner": client.name, "balance": {"minor": a.balance}}),
                        key: Some(format!("account-{}", a.id)),
                    });
                }
            }
        }
    }
    for cmd in seed {
        app.hub.update(&session, cmd).await?;
    }
    let links =
        crate::routes::conversation::display_links(&app, &headers, &session, &id, tenant.category);
    let url = links["displayUrl"].as_str().unwrap_or("/").to_string();
    Ok(axum::response::Redirect::to(&url).into_response())
}
