//! Operations endpoints: health, status, stats, metrics and the OpenAPI document.

use crate::app::App;
use crate::error::ApiResult;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("STONEPOT_GIT_COMMIT");
const BUILD_EPOCH: &str = env!("STONEPOT_BUILD_EPOCH");

/// Unrate-limited routes: probes and scrapers must always get through.
pub fn router(spec: Arc<utoipa::openapi::OpenApi>) -> Router<App> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { Json(spec.as_ref().clone()) }
            }),
        )
}

/// Rate-limited JSON routes documented in OpenAPI.
pub fn api_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(session_stats))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    ok: bool,
    /// `ok`, or `error` when a real query failed.
    database: &'static str,
    bus: &'static str,
    storage: &'static str,
    environment: &'static str,
    version: &'static str,
    /// Voice: the default mode and whether the local speech engines run here. Missing
    /// engines do not fail the check: the kiosk then uses the browser's own speech.
    speech: Speech,
    /// The parts that failed, with why (absent when healthy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Speech {
    /// `offline`, `cascade` or `relay`.
    mode: &'static str,
    /// espeak-ng (offline text to speech) runs.
    espeak_ng: bool,
    /// The offline recognizer (pocketsphinx) loads.
    recognizer: bool,
    /// The realtime model relay-mode tenants use (`openai` or `gemini`), when any tenant
    /// is in relay mode; its key was checked at start-up, the provider is not called.
    #[serde(skip_serializing_if = "Option::is_none")]
    realtime: Option<&'static str>,
}

async fn check_storage(app: &App) -> Result<(), String> {
    let dir = app.config.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        if meta.permissions().readonly() {
            return Err(format!("{} is read-only", dir.display()));
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Liveness and readiness: 200 when the database answers a real query and the bus and
/// storage are usable, 503 naming what failed otherwise. Not rate limited.
#[utoipa::path(get, path = "/health", tag = "ops",
    security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(app): State<App>) -> Response {
    let mut failing = Vec::new();
    let database = match tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            failing.push(format!("database: {e}"));
            "error"
        }
        Err(_) => {
            failing.push("database: no answer within 2s".into());
            "error"
        }
    };
    let storage = match check_storage(&app).await {
        Ok(()) => "ok",
        Err(e) => {
            failing.push(format!("storage: {e}"));
            "error"
        }
    };
    // The in-process bus has no failure mode of its own; NATS JetStream is checked.
    let bus = match &app.bus {
        None => "ok",
        Some(bus) => match bus.log.check().await {
            Ok(()) => "ok",
            Err(e) => {
                failing.push(format!("bus: {e}"));
                "error"
            }
        },
    };
    let body = Health {
        ok: failing.is_empty(),
        database,
        bus,
        storage,
        environment: app.config.environment.as_str(),
        version: VERSION,
        speech: {
            let (espeak_ng, recognizer) = app.voice.local_engines().await;
            Speech {
                mode: app.config.voice.mode.as_str(),
                espeak_ng,
                recognizer,
                realtime: app.voice.relay().map(|p| p.name()),
            }
        },
        failing,
    };
    let status = if body.ok {
        StatusCode::OK
    } else {
        tracing::warn!(failing = ?body.failing, "health check failed");
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    version: &'static str,
    git_commit: &'static str,
    /// RFC 3339.
    build_time: String,
    /// RFC 3339.
    start_time: String,
    uptime_seconds: f64,
    environment: &'static str,
    database: &'static str,
    /// `offline` (no model targets: the offline agent answers every turn), `ok`, or
    /// `degraded` when some target's circuit is open.
    models: &'static str,
    /// Whether Stripe Checkout is offered (`STRIPE_SECRET_KEY` set) and whether its
    /// webhooks can be verified (`STRIPE_WEBHOOK_SECRET` set); never the keys.
    payments: PaymentsStatus,
    /// Each model target with its circuit state.
    #[schema(value_type = Vec<Object>)]
    model_targets: Vec<stonepot_llm::router::TargetHealth>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentsStatus {
    stripe: bool,
    stripe_webhooks: bool,
}

/// Build and run information.
#[utoipa::path(get, path = "/api/status", tag = "ops", security(()), responses((status = 200, body = Status)))]
async fn status(State(app): State<App>) -> Json<Status> {
    let build_time = BUILD_EPOCH
        .parse::<i64>()
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| "unknown".into());
    let model_targets = app.router.health();
    let models = if app.router.is_empty() {
        "offline"
    } else if model_targets
        .iter()
        .all(|t| matches!(t.breaker, stonepot_llm::router::BreakerState::Closed))
    {
        "ok"
    } else {
        "degraded"
    };
    Json(Status {
        payments: PaymentsStatus {
            stripe: app.stripe.is_some(),
            stripe_webhooks: !app.config.stripe_webhook_secrets.is_empty(),
        },
        models,
        model_targets,
        version: VERSION,
        git_commit: GIT_COMMIT,
        build_time,
        start_time: app.started_at.to_string(),
        uptime_seconds: app.started.elapsed().as_secs_f64(),
        environment: app.config.environment.as_str(),
        database: app.store.backend().as_str(),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStats {
    tenants: i64,
    menu_items: i64,
    api_keys: i64,
    requests_in_flight: i64,
    display_sessions: i64,
    sessions_resident: usize,
    display_sockets: i64,
}

/// Counts of what the server holds.
#[utoipa::path(get, path = "/api/session/stats", tag = "ops",
    security(()),
    responses((status = 200, body = SessionStats)))]
async fn session_stats(State(app): State<App>) -> ApiResult<Json<SessionStats>> {
    let c = app.store.counts().await?;
    Ok(Json(SessionStats {
        tenants: c.tenants,
        menu_items: c.menu_items,
        api_keys: c.api_keys,
        requests_in_flight: app
            .metrics
            .in_flight
            .load(std::sync::atomic::Ordering::Relaxed),
        display_sessions: app.store.display_session_count().await?,
        sessions_resident: app.hub.resident(),
        display_sockets: app.hub.sockets.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

/// Prometheus text exposition. Not rate limited.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<App>) -> Response {
    let uptime = app.started.elapsed().as_secs_f64();
    let reads = app.hub.log().read_stats();
    // SQLite's batched writes and group commit (absent on PostgreSQL): writes per
    // commit and commits per sync are how much the batching saves.
    let (writes, commits) = app.store.write_batch_stats().unwrap_or_default();
    let (_, syncs) = app.store.group_commit_stats().unwrap_or_default();
    let text = app.metrics.render(&[
        (
            "stonepot_uptime_seconds",
            "Seconds since the server started.",
            uptime,
        ),
        (
            "stonepot_sessions_resident",
            "Display sessions held in memory (others are hibernated in the store).",
            app.hub.resident() as f64,
        ),
        (
            "stonepot_display_sockets_open",
            "Open display WebSockets and SSE streams.",
            app.hub.sockets.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        (
            "stonepot_display_catch_ups_total",
            "Times a display fell behind its channel and caught up from the log.",
            app.hub.catch_ups.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        (
            "stonepot_log_backend_readers_total",
            "Log reads that opened a reader on the log's backend (a JetStream consumer each).",
            reads.backend_readers as f64,
        ),
        (
            "stonepot_log_recent_hits_total",
            "Log reads answered from the recent entries held in memory.",
            reads.recent_hits as f64,
        ),
        (
            "stonepot_store_writes_total",
            "Store writes on SQLite (each in a savepoint of a batch).",
            writes as f64,
        ),
        (
            "stonepot_store_commits_total",
            "SQLite commits, each carrying a batch of writes.",
            commits as f64,
        ),
        (
            "stonepot_store_syncs_total",
            "fdatasync calls of the SQLite write-ahead log (each covers every commit before it).",
            syncs as f64,
        ),
    ]);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
