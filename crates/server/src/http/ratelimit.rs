//! Per-client-IP rate limiting (GCRA via `governor`): `RATE_LIMIT_REQUESTS` per
//! `RATE_LIMIT_WINDOW`, answered with 429 and `Retry-After` when exceeded. With NATS
//! configured the counters live in a JetStream key-value bucket shared by every instance
//! (see [`crate::bus::SharedLimits`]).

use crate::app::App;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

pub type Limiter = Arc<DefaultKeyedRateLimiter<IpAddr>>;

/// `requests` per `window`, all of which may arrive at once.
pub fn limiter(requests: u32, window: Duration) -> Limiter {
    let burst = NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN);
    let period = window / burst.get();
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    Arc::new(RateLimiter::keyed(quota))
}

/// Counts one request from `ip`: in the shared bucket when NATS is configured (so the
/// limit holds across instances), in this instance's limiter otherwise or while the
/// bucket cannot be reached. `Err(wait)` when over the limit.
async fn check(app: &App, ip: IpAddr) -> Result<(), Duration> {
    if let Some(bus) = &app.bus {
        match bus.limits.hit(&format!("ip.{ip}")).await {
            Ok(None) => return Ok(()),
            Ok(Some(wait)) => return Err(wait),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limits unavailable; limiting per instance");
            }
        }
    }
    app.limiter
        .check_key(&ip)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

pub async fn limit(State(app): State<App>, req: Request, next: Next) -> Response {
    let peer = crate::http::peer_addr(&req);
    let ip = crate::http::client_ip(peer, req.headers(), &app.config.trusted_proxies);
    match check(&app, ip).await {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            app.metrics
                .rate_limited
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "more than {} requests per {}s from this address; retry in {}s",
                    app.config.rate_limit_requests,
                    app.config.rate_limit_window.as_secs(),
                    secs.max(1)
                ),
            );
            e.retry_after = Some(secs.max(1));
            e.into_response()
        }
    }
}
