//! `/kiosk/{tenant}`: a touch-screen page with the chat beside the live display. Each
//! visit starts a fresh conversation; the page carries only that session's signed
//! token, never the tenant's key. Limited per IP like the API.

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use stonepot_domain::Category;

pub fn router() -> Router<App> {
    Router::new().route("/kiosk/{tenant}", get(kiosk))
}

fn suggestions(c: Category) -> &'static [&'static str] {
    match c {
        Category::Restaurant => &[
            "What's vegetarian?",
            "Two margherita pizzas, one without basil",
            "What's in my cart?",
            "That's all",
        ],
        Category::Financial => &[
            "Show me Ada Lovelace's accounts",
            "Recent transactions on Ada's checking",
            "Compare the savings products",
        ],
    }
}

async fn kiosk(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = crate::routes::tenants::load_tenant(&app, &raw).await?;
    let session = format!("kiosk-{}", uuid::Uuid::now_v7().simple());
    let conv = app.engine.create(&session, &tenant, None, "en").await?;
    let links = crate::routes::chat::session_body(&app, &headers, &conv);
    let token = links["token"].as_str().unwrap_or_default();
    let html = app
        .pages
        .render(
            "kiosk.html",
            minijinja::context! {
                tenant => json!({"id": tenant.id, "name": tenant.name}),
                theme => tenant.theme,
                category => tenant.category.as_str(),
                session => session,
                language => "en",
                welcome => crate::agent::welcome(&tenant),
                suggestions => suggestions(tenant.category),
                offline => !app.engine.has_model(),
                socket_url => format!("/ws/restaurant/{session}?token={token}"),
                display_url => links["displayUrl"].as_str().unwrap_or_default()
                    .strip_prefix(&crate::routes::conversation::base_url(&headers)).unwrap_or_default(),
            },
        )
        .map_err(ApiError::internal)?;
    let mut res = Html(html).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
