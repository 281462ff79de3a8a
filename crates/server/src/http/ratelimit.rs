//! Rate limits, answered with 429 and `Retry-After` when exceeded:
//!
//! - per client IP, `RATE_LIMIT_REQUESTS` per `RATE_LIMIT_WINDOW`, as a middleware in
//!   front of the API routes;
//! - per API key (`RATE_LIMIT_KEY_REQUESTS`) and per tenant (`RATE_LIMIT_TENANT_REQUESTS`),
//!   same window, counted by [`after_auth`] once the credential is verified. Counting
//!   after authentication is what keeps a stranger from locking a tenant out: a request
//!   with a wrong key is refused before it spends anything of the tenant's budget. The
//!   key is counted by its id (a prefix of its hash), never by the raw key.
//!
//! With NATS configured the counters live in a JetStream key-value bucket shared by every
//! instance (see [`crate::bus::SharedLimits`]), so each limit holds across all of them
//! together; without NATS, or while the bucket cannot be reached, each instance limits
//! with its own GCRA limiters (`governor`).

use crate::app::App;
use crate::auth::{Identity, Role};
use crate::config::Config;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One client address.
    Ip,
    /// One tenant API key.
    Key,
    /// One tenant, over every key and token acting for it.
    Tenant,
}

impl Scope {
    /// The error code a client sees, naming the limit that was hit.
    pub fn code(self) -> &'static str {
        match self {
            Scope::Ip => "rate_limited",
            Scope::Key => "key_rate_limited",
            Scope::Tenant => "tenant_rate_limited",
        }
    }

    /// The prefix of the shared counter's name, so the scopes never share a counter.
    fn prefix(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Key => "key",
            Scope::Tenant => "tenant",
        }
    }

    fn requests(self, config: &Config) -> u32 {
        match self {
            Scope::Ip => config.rate_limit_requests,
            Scope::Key => config.rate_limit_key_requests,
            Scope::Tenant => config.rate_limit_tenant_requests,
        }
    }
}

type Keyed<K> = Arc<DefaultKeyedRateLimiter<K>>;

/// This instance's own limiters, one per scope; used without NATS and while it is away.
#[derive(Clone)]
pub struct Limiters {
    ip: Keyed<IpAddr>,
    key: Keyed<String>,
    tenant: Keyed<String>,
}

impl Limiters {
    pub fn new(config: &Config) -> Limiters {
        let window = config.rate_limit_window;
        Limiters {
            ip: limiter(config.rate_limit_requests, window),
            key: limiter(config.rate_limit_key_requests, window),
            tenant: limiter(config.rate_limit_tenant_requests, window),
        }
    }

    /// Forgets clients whose budget is back to full (run once per window).
    pub fn prune(&self) {
        self.ip.retain_recent();
        self.ip.shrink_to_fit();
        self.key.retain_recent();
        self.key.shrink_to_fit();
        self.tenant.retain_recent();
        self.tenant.shrink_to_fit();
    }

    fn check(&self, scope: Scope, ip: Option<IpAddr>, id: &str) -> Result<(), Duration> {
        // The limiter's own clock: a new `DefaultClock` probes the CPU (cpuid) each time,
        // which showed in the request profile.
        let now = self.ip.clock().now();
        let wait = |n: governor::NotUntil<_>| n.wait_time_from(now);
        match (scope, ip) {
            (Scope::Ip, Some(ip)) => self.ip.check_key(&ip).map_err(wait),
            (Scope::Ip, None) => Ok(()),
            (Scope::Key, _) => self.key.check_key(&id.to_string()).map_err(wait),
            (Scope::Tenant, _) => self.tenant.check_key(&id.to_string()).map_err(wait),
        }
    }
}

/// `requests` per `window`, all of which may arrive at once.
fn limiter<K: Hash + Eq + Clone>(requests: u32, window: Duration) -> Keyed<K> {
    let burst = NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN);
    let period = window / burst.get();
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    Arc::new(RateLimiter::keyed(quota))
}

/// Counts one request against `scope`'s limit for `id`: in the shared bucket when NATS is
/// configured (so the limit holds across instances), in this instance's limiter otherwise
/// or while the bucket cannot be reached. `Err(wait)` when over the limit.
async fn check(app: &App, scope: Scope, ip: Option<IpAddr>, id: &str) -> Result<(), Duration> {
    if let Some(bus) = &app.bus {
        let counter = format!("{}.{id}", scope.prefix());
        match bus.limits.hit(&counter, scope.requests(&app.config)).await {
            Ok(None) => return Ok(()),
            Ok(Some(wait)) => return Err(wait),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limits unavailable; limiting per instance");
            }
        }
    }
    app.limiter.check(scope, ip, id)
}

/// The 429 for `scope`, whose message says which limit and when to retry.
fn refused(app: &App, scope: Scope, whose: &str, wait: Duration) -> ApiError {
    app.metrics
        .rate_limited
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        scope.code(),
        format!(
            "more than {} requests per {}s {whose}; retry in {secs}s",
            scope.requests(&app.config),
            app.config.rate_limit_window.as_secs(),
        ),
    );
    e.retry_after = Some(secs);
    e
}

/// The per-IP limit, in front of the API routes.
pub async fn limit(State(app): State<App>, req: Request, next: Next) -> Response {
    let peer = crate::http::peer_addr(&req);
    let ip = crate::http::client_ip(peer, req.headers(), &app.config.trusted_proxies);
    match check(&app, Scope::Ip, Some(ip), &ip.to_string()).await {
        Ok(()) => next.run(req).await,
        Err(wait) => refused(&app, Scope::Ip, "from this address", wait).into_response(),
    }
}

/// Counts a request whose credential has been verified against its API key's limit and
/// its tenant's. The key's budget is checked first, so a key over its own limit does not
/// also spend its tenant's. Admins (the platform's operators) are not limited per tenant:
/// they must be able to act, revoke a key for one, while a tenant is being flooded.
pub async fn after_auth(app: &App, who: &Identity) -> Result<(), ApiError> {
    if who.role == Role::Admin {
        return Ok(());
    }
    if let Some(key_id) = who.api_key_id() {
        check(app, Scope::Key, None, key_id)
            .await
            .map_err(|wait| refused(app, Scope::Key, "with this API key", wait))?;
    }
    if let Some(tenant) = &who.tenant {
        check(app, Scope::Tenant, None, tenant.as_str())
            .await
            .map_err(|wait| refused(app, Scope::Tenant, &format!("for tenant '{tenant}'"), wait))?;
    }
    Ok(())
}
