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
        Ok(App {
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
        api_routes().split_for_parts().1
    }

    /// The full router with every layer.
    pub fn router(&self) -> Router {
        let (api, spec) = api_routes().split_for_parts();
        let spec = Arc::new(spec);
        let api = api.layer(from_fn_with_state(self.clone(), ratelimit::limit));
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

/// Rate-limited API routes that appear in the OpenAPI document.
fn api_routes() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::ops::api_router())
        .merge(routes::tenants::router())
}
