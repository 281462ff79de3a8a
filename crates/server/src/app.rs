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
    pub engine: Arc<crate::agent::Engine>,
    /// Model routes for conversations and the OpenAI-compatible API (empty without
    /// configured targets).
    pub router: stonepot_llm::Router,
    /// The Stripe client when `STRIPE_SECRET_KEY` is set (pay at counter needs none).
    pub stripe: Option<Arc<crate::payments::stripe::StripeClient>>,
    /// Artifacts (close reports, receipts): a directory or an S3-compatible bucket.
    pub objects: crate::objects::Objects,
    /// Runs daily closes (API, scheduler).
    pub closer: Arc<crate::close::Closer>,
    /// NATS JetStream (session log, shared rate limits) when `NATS_URL` is set.
    pub bus: Option<crate::bus::Bus>,
    /// Recently verified key hashes with their tenants; see [`App::api_key_tenants`].
    key_cache: Arc<std::sync::Mutex<KeyTenants>>,
}

type KeyTenants = std::collections::HashMap<String, (Vec<stonepot_domain::TenantId>, Instant)>;

/// How long a verified API key is trusted without asking the store again; a revoked key
/// stops working within this time.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// The tenant `id` names, or 404 naming it.
    pub async fn tenant(
        &self,
        id: &stonepot_domain::TenantId,
    ) -> crate::error::ApiResult<stonepot_domain::Tenant> {
        self.store
            .tenant(id)
            .await?
            .ok_or_else(|| crate::error::ApiError::not_found(format!("no tenant '{id}'")))
    }

    pub fn new(config: Config, store: Store) -> anyhow::Result<App> {
        Self::with_bus(config, store, None)
    }

    /// The app with its session log on `bus` when given (see [`crate::bus::Bus`]).
    pub fn with_bus(
        config: Config,
        store: Store,
        bus: Option<crate::bus::Bus>,
    ) -> anyhow::Result<App> {
        let assets = Arc::new(Assets::load());
        let hub_config = crate::display::HubConfig {
            retain: config.display_retain,
            idle: config.session_idle,
            ..Default::default()
        };
        let hub = match &bus {
            Some(bus) => crate::display::Hub::with_log(
                store.clone(),
                hub_config,
                bus.log.clone(),
                Some(bus.displays.clone()),
            ),
            None => crate::display::Hub::new(store.clone(), hub_config),
        };
        let router = stonepot_llm::Router::new(&config.llm, &config.llm_env.0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let model: Option<Arc<dyn stonepot_agent::turn::Model>> = if router.is_empty() {
            None
        } else {
            Some(Arc::new(crate::agent::model::RouterModel {
                router: router.clone(),
                route: config.agent_route.clone(),
            }))
        };
        let stripe = match &config.stripe_secret_key {
            Some(key) => Some(Arc::new(crate::payments::stripe::StripeClient::new(
                &config.stripe_api_base,
                key.clone(),
            )?)),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let objects = crate::objects::Objects::open(
            config.object_store_url.as_deref(),
            &config.data_dir,
            &config.aws_env.0,
        )?;
        let closer = Arc::new(crate::close::Closer::new(
            store.clone(),
            objects.clone(),
            config
                .slack_webhook_url
                .clone()
                .map(crate::close::Slack::new),
        ));
        let engine = crate::agent::Engine::new(store.clone(), hub.clone(), model, metrics.clone());
        Ok(App {
            bus,
            stripe,
            objects,
            closer,
            engine,
            router,
            hub,
            tenant_cache: Arc::default(),
            key_cache: Arc::default(),
            limiter: ratelimit::limiter(config.rate_limit_requests, config.rate_limit_window),
            pages: Arc::new(Pages::new(assets.clone())?),
            assets,
            config: Arc::new(config),
            store,
            metrics,
            started: Instant::now(),
            started_at: jiff::Timestamp::now(),
        })
    }

    /// Whether `key` is an active key of `tenant`. Uses the cache of
    /// [`App::api_key_tenants`] (hot paths such as display updates skip a query per
    /// request); a key not cached for this tenant always asks the store.
    pub async fn api_key_valid(
        &self,
        tenant: &stonepot_domain::TenantId,
        key: &str,
    ) -> Result<bool, stonepot_store::StoreError> {
        let h = stonepot_store::hash_api_key(key);
        if self.cached_tenants(&h).is_some_and(|t| t.contains(tenant)) {
            return Ok(true);
        }
        Ok(self.load_tenants(h, key).await?.contains(tenant))
    }

    /// The tenants `key` is an active key of (empty: not a key). Non-empty answers are
    /// remembered for [`KEY_CACHE_TTL`], so a revoked key stops working within it.
    pub async fn api_key_tenants(
        &self,
        key: &str,
    ) -> Result<Vec<stonepot_domain::TenantId>, stonepot_store::StoreError> {
        let h = stonepot_store::hash_api_key(key);
        match self.cached_tenants(&h) {
            Some(t) => Ok(t),
            None => self.load_tenants(h, key).await,
        }
    }

    fn cached_tenants(&self, hash: &str) -> Option<Vec<stonepot_domain::TenantId>> {
        let cache = self.key_cache.lock().ok()?;
        let (tenants, at) = cache.get(hash)?;
        (at.elapsed() < KEY_CACHE_TTL).then(|| tenants.clone())
    }

    async fn load_tenants(
        &self,
        hash: String,
        key: &str,
    ) -> Result<Vec<stonepot_domain::TenantId>, stonepot_store::StoreError> {
        let tenants = self.store.api_key_tenants(key).await?;
        if !tenants.is_empty()
            && let Ok(mut cache) = self.key_cache.lock()
        {
            if cache.len() > 10_000 {
                cache.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            }
            cache.insert(hash, (tenants.clone(), Instant::now()));
        }
        Ok(tenants)
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
            .merge(routes::tenants::router())
            .merge(routes::menu::router())
            .merge(routes::closes::router());
        let limited = match app {
            Some(app) => limited.layer(from_fn_with_state(app.clone(), ratelimit::limit)),
            None => limited,
        };
        limited
            .merge(routes::conversation::router())
            .merge(routes::chat::router())
            .merge(routes::openai::router())
            .merge(routes::orders::router())
            .merge(routes::kitchen::router())
            .merge(routes::cart::router())
            .merge(routes::payments::router())
            .merge(routes::payments::public_router())
            .merge(routes::ui::router())
    }

    /// The full router with every layer.
    pub fn router(&self) -> Router {
        let (api, spec) = Self::documented(Some(self)).split_for_parts();
        let spec = Arc::new(spec);
        let open = routes::ops::router(spec)
            .merge(routes::site::router())
            .merge(
                routes::kiosk::router()
                    .merge(routes::kitchen::page_router())
                    .merge(routes::storefront::router())
                    .layer(from_fn_with_state(self.clone(), ratelimit::limit)),
            );
        Router::new()
            .merge(api)
            .merge(open)
            .fallback(routes::not_found)
            .route_layer(from_fn(http::record_route))
            .layer(from_fn_with_state(
                self.clone(),
                http::idempotency::idempotent,
            ))
            .layer(DefaultBodyLimit::max(self.config.body_limit))
            .layer(RequestBodyLimitLayer::new(self.config.body_limit))
            .layer(CatchPanicLayer::custom(http::panic_response))
            .layer(from_fn(http::json_errors))
            .layer(http::cors(&self.config.allowed_origins))
            .layer(from_fn_with_state(self.clone(), http::observe))
            .with_state(self.clone())
    }
}
