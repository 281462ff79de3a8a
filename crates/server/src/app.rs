//! The application: shared state and the router with its layers.

use crate::assets::Assets;
use crate::config::Config;
use crate::http::{self, ratelimit};
use crate::metrics::Metrics;
use crate::pages::Pages;
use crate::routes;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use std::sync::Arc;
use std::time::Instant;
use stonepot_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub limiter: ratelimit::Limiter,
    pub assets: Arc<Assets>,
    pub pages: Arc<Pages>,
    pub started: Instant,
    pub started_at: jiff::Timestamp,
    pub hub: Arc<crate::display::Hub>,
    pub tenant_cache: Arc<routes::ui::TenantCache>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stonepot",
        description = "Real-time conversational agents with a live, themed display."
    ),
    paths(routes::ops::health, routes::ops::metrics),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

impl App {
    pub fn new(config: Config, store: Store) -> anyhow::Result<App> {
        let assets = Arc::new(Assets::load());
        let hub = crate::display::Hub::new(
            store.clone(),
            crate::display::HubConfig {
                retain: config.display_retain,
                idle: config.session_idle,
                ..Default::default()
            },
        );
        Ok(App {
            hub,
            tenant_cache: Arc::default(),
            limiter: ratelimit::limiter(config.rate_limit_requests, config.rate_limit_window),
            pages: Arc::new(Pages::new(assets.clone())?),
            assets,
            config: Arc::new(config),
            store,
            metrics: Arc::new(Metrics::default()),
            started: Instant::now(),
            started_at: jiff::Timestamp::now(),
        })
    }

    /// The OpenAPI document of every JSON route.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        Self::documented(None).split_for_parts().1
    }

    /// Every documented route; with an app, the IP rate limit wraps the API routes
    /// (display routes need a tenant key or a signed token and are not IP-limited).
    fn documented(app: Option<&App>) -> OpenApiRouter<App> {
        let limited = OpenApiRouter::with_openapi(ApiDoc::openapi())
            .merge(routes::ops::api_router())
            .merge(routes::tenants::router());
        let limited = match app {
            Some(app) => limited.layer(from_fn_with_state(app.clone(), ratelimit::limit)),
            None => limited,
        };
        limited
            .merge(routes::conversation::router())
            .merge(routes::ui::router())
    }

    /// The full router with every layer.
    pub fn router(&self) -> Router {
        let (api, spec) = Self::documented(Some(self)).split_for_parts();
        let spec = Arc::new(spec);
        let open = routes::ops::router(spec).merge(routes::site::router());
        Router::new()
            .merge(api)
            .merge(open)
            .fallback(routes::not_found)
            .route_layer(from_fn(http::record_route))
            .layer(DefaultBodyLimit::max(self.config.body_limit))
            .layer(RequestBodyLimitLayer::new(self.config.body_limit))
            .layer(CatchPanicLayer::custom(http::panic_response))
            .layer(from_fn(http::json_errors))
            .layer(http::cors(&self.config.allowed_origins))
            .layer(from_fn_with_state(self.clone(), http::observe))
            .with_state(self.clone())
    }
}
