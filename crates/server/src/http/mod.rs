//! Cross-cutting HTTP layers: request ids, access logs and metrics, client IPs and rate
//! limits, CORS, and turning every bare error status into the JSON error shape.

pub mod idempotency;
pub mod json;
pub mod ratelimit;

use crate::app::App;
use crate::config::IpNet;
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served (also in every log line of its span).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Filled by [`record_route`] once routing has matched, read by [`observe`]: the route
/// template and, when spans are exported, the request's trace id.
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<String>>, Arc<OnceLock<String>>);

fn acceptable_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    .then(|| s.to_string())
}

/// Outermost layer: assigns the request id, opens the request's span, counts the request
/// by matched route, and writes one access-log line.
pub async fn observe(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    // The log span of the request (not exported: the exported span is opened by
    // [`record_route`] once the route, its name, is known). `trace_id` is filled there.
    let span = tracing::info_span!(target: REQUEST_SPAN_TARGET, "request", request_id = %id,
        method = %method, path = %req.uri().path(), trace_id = tracing::field::Empty);
    app.metrics
        .in_flight
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut res = next.run(req).instrument(span.clone()).await;
    app.metrics
        .in_flight
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    let took = started.elapsed();
    let route = slot.0.get().map(String::as_str).unwrap_or("unmatched");
    let status = res.status().as_u16();
    app.metrics.observe(route, method.as_str(), status, took);
    if status >= 500 {
        let trace_id = slot.1.get().cloned();
        app.alerts.critical(crate::alerts::Problem {
            fingerprint: format!("{status} {method} {route}"),
            message: format!("{method} {route} answered {status}"),
            level: crate::alerts::Level::Error,
            tags: vec![
                ("route", route.to_string()),
                ("status", status.to_string()),
                ("request_id", id.clone()),
            ],
            trace_id,
        });
    }
    span.in_scope(|| {
        tracing::info!(
            route,
            status,
            latency_ms = took.as_secs_f64() * 1000.0,
            "request"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}

/// The target of [`observe`]'s log span, which the trace exporter leaves out.
pub const REQUEST_SPAN_TARGET: &str = "stonepot_server::http::request";

/// Route layer: notes the matched route template for metrics, and opens the request's
/// exported span, named `METHOD /route/{template}` (a span's exported name is fixed once
/// it has children, so it must be known when the span opens). It continues the caller's
/// W3C `traceparent` and gives its trace id to the log span and to [`observe`].
pub async fn record_route(req: Request, next: Next) -> Response {
    let Some(path) = req.extensions().get::<MatchedPath>().cloned() else {
        return next.run(req).await;
    };
    let slot = req.extensions().get::<RouteSlot>().cloned();
    if let Some(slot) = &slot {
        let _ = slot.0.set(path.as_str().to_string());
    }
    let method = req.method().clone();
    let span = tracing::info_span!("http_request",
        otel.name = %format_args!("{method} {}", path.as_str()), otel.kind = "server",
        http.request.method = %method, http.route = %path.as_str(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty);
    crate::telemetry::adopt_parent(&span, req.headers());
    if let Some(trace) = crate::telemetry::trace_id(&span) {
        tracing::Span::current().record("trace_id", trace.as_str());
        if let Some(slot) = &slot {
            let _ = slot.1.set(trace);
        }
    }
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    res
}

/// Gives every error response without a JSON body (routing 404/405, the body-limit 413,
/// a caught panic) the standard JSON error body, keeping its headers.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let fresh = ApiError::for_status(status).into_response();
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in fresh_parts.headers.iter() {
        parts.headers.insert(k.clone(), v.clone());
    }
    Response::from_parts(parts, body)
}

/// Panics become a logged 500 with the JSON body; no internals reach the client.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    ApiError::for_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(**ip))
        .copied()
        .unwrap_or(peer)
}

/// The peer address axum recorded for this connection.
pub fn peer_addr(req: &Request) -> IpAddr {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// CORS for the exact origins configured; other origins get no CORS headers at all.
pub fn cors(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("x-api-key"),
            X_REQUEST_ID.clone(),
        ])
        .expose_headers([X_REQUEST_ID.clone(), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec![IpNet::parse("10.0.0.0/8").unwrap()];
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let direct: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(direct, &h, &trusted), direct);
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
    }

    #[test]
    fn request_ids_are_sanitized() {
        assert!(acceptable_request_id(&HeaderValue::from_static("abc-123")).is_some());
        assert!(acceptable_request_id(&HeaderValue::from_static("a b")).is_none());
        assert!(acceptable_request_id(&HeaderValue::from_static("")).is_none());
    }
}
