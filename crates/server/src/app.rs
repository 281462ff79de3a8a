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

/// Everything a request handler reaches, shared: a handler's `State<App>` is one
/// reference count, not a copy of each part.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl std::ops::Deref for App {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// The parts of an [`App`].
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub limiter: ratelimit::Limiters,
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
    /// Verifies bearer JWTs: Stonepot's own (HS256, `JWT_SECRET`) and the identity
    /// provider's (RS256/ES256 from `JWKS_URL`).
    pub verifier: Arc<crate::auth::jwt::Verifier>,
    /// Error capture (`SENTRY_DSN`) and critical alerts (`SLACK_WEBHOOK_URL`).
    pub alerts: Arc<crate::alerts::Alerts>,
    /// NATS JetStream (session log, shared rate limits) when `NATS_URL` is set.
    pub bus: Option<crate::bus::Bus>,
    /// Speech engines for voice sessions on the chat socket.
    pub voice: Arc<crate::voice::Voice>,
    /// Recently verified key hashes with their grants; see [`App::api_key_grants`].
    key_cache: Arc<std::sync::Mutex<KeyGrants>>,
}

/// What one API key opens: each tenant with the role the key has there.
pub type Grants = Vec<(stonepot_domain::TenantId, crate::auth::Role)>;

type KeyGrants = std::collections::HashMap<String, (Grants, Instant)>;

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
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The two ways a caller proves who they are. Every operation lists what it accepts
/// with the least role as the requirement's scope (`security(("bearer" = ["staff"]))`),
/// or an empty requirement when it is public; `tests/integration/access.rs` reads these to try
/// every endpoint with other tenants' credentials and too-weak roles.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityScheme;
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT (Stonepot's own HS256, or the identity provider's RS256/ES256) \
                         whose `role` claim is the role, a tenant API key (staff or operator \
                         role, also accepted as `X-Api-Key`), or the admin token \
                         (`THEME_API_TOKEN`). The scope is the least role the operation needs: \
                         guest < staff < operator < admin; below admin, only on the \
                         credential's own tenant.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The session's signed display token (guest): opens that one session only. \
                 Also accepted as a bearer token.",
            ))),
        );
    }
}

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
        let voice = Arc::new(crate::voice::Voice::new(config.voice.clone())?);
        let provider = config.identity_provider.as_ref().map(|p| {
            (
                crate::auth::jwt::Provider {
                    issuer: p.issuer.clone(),
                    audiences: p.audiences.clone(),
                    authorized_parties: p.authorized_parties.clone(),
                },
                Arc::new(crate::auth::jwks::Jwks::new(
                    &p.jwks_url,
                    crate::auth::jwks::JwksPolicy::default(),
                )),
            )
        });
        let verifier = Arc::new(crate::auth::jwt::Verifier::new(
            config.jwt_secret.expose().as_bytes(),
            provider,
        ));
        let alerts = crate::alerts::Alerts::new(
            config.sentry_dsn.as_ref(),
            config
                .slack_webhook_url
                .clone()
                .map(crate::close::Slack::new),
            match config.environment {
                crate::config::Environment::Production => "production",
                crate::config::Environment::Development => "development",
            },
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        Ok(App(Arc::new(AppState {
            voice,
            alerts: Arc::new(alerts),
            verifier,
            bus,
            stripe,
            objects,
            closer,
            engine,
            router,
            hub,
            tenant_cache: Arc::default(),
            key_cache: Arc::default(),
            limiter: ratelimit::Limiters::new(&config),
            pages: Arc::new(Pages::new(assets.clone())?),
            assets,
            config: Arc::new(config),
            store,
            metrics,
            started: Instant::now(),
            started_at: jiff::Timestamp::now(),
        })))
    }

    /// Whether `key` is an active key of `tenant` (any role).
    pub async fn api_key_valid(
        &self,
        tenant: &stonepot_domain::TenantId,
        key: &str,
    ) -> Result<bool, stonepot_store::StoreError> {
        Ok(self
            .api_key_grants(key)
            .await?
            .iter()
            .any(|(t, _)| t == tenant))
    }

    /// The tenants `key` is an active key of (empty: not a key).
    pub async fn api_key_tenants(
        &self,
        key: &str,
    ) -> Result<Vec<stonepot_domain::TenantId>, stonepot_store::StoreError> {
        Ok(self
            .api_key_grants(key)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    /// The tenants `key` opens, each with the role it grants (empty: not a key).
    /// Non-empty answers are remembered for [`KEY_CACHE_TTL`] (hot paths such as
    /// display updates skip a query per request), so a revoked key stops working
    /// within it; unknown keys always ask the store.
    pub async fn api_key_grants(&self, key: &str) -> Result<Grants, stonepot_store::StoreError> {
        let h = stonepot_store::hash_api_key(key);
        if let Some(g) = self.cached_grants(&h) {
            return Ok(g);
        }
        let grants: Grants = self
            .store
            .api_key_grants(key)
            .await?
            .into_iter()
            .map(|(t, role)| {
                // A role the server does not know grants nothing rather than guessing.
                crate::auth::Role::parse(&role)
                    .filter(|r| matches!(r, crate::auth::Role::Staff | crate::auth::Role::Operator))
                    .map(|r| (t, r))
            })
            .collect::<Option<Grants>>()
            .ok_or_else(|| {
                stonepot_store::StoreError::Corrupt("an API key has an unknown role".into())
            })?;
        if !grants.is_empty()
            && let Ok(mut cache) = self.key_cache.lock()
        {
            if cache.len() > 10_000 {
                cache.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            }
            cache.insert(h, (grants.clone(), Instant::now()));
        }
        Ok(grants)
    }

    /// Forgets cached key grants, so a revocation through this instance takes effect
    /// at once (other instances within [`KEY_CACHE_TTL`]).
    pub fn forget_keys(&self) {
        if let Ok(mut cache) = self.key_cache.lock() {
            cache.clear();
        }
    }

    fn cached_grants(&self, hash: &str) -> Option<Grants> {
        let cache = self.key_cache.lock().ok()?;
        let (grants, at) = cache.get(hash)?;
        (at.elapsed() < KEY_CACHE_TTL).then(|| grants.clone())
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
            .merge(routes::keys::router())
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
