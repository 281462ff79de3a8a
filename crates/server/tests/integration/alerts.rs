//! Error capture and critical alerts against fake endpoints on 127.0.0.1: a
//! Sentry-compatible envelope endpoint and a Slack incoming webhook. 5xx answers are
//! reported with their route, status, request id; the same problem only once; a
//! Sentry 429 pauses sending; 4xx answers are not reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{client, start};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Sinks {
    /// (X-Sentry-Auth, envelope body) of every Sentry request.
    sentry: Arc<Mutex<Vec<(String, String)>>>,
    slack: Arc<Mutex<Vec<Value>>>,
    /// Answer the next Sentry request with 429 and Retry-After.
    throttle: Arc<AtomicBool>,
}

async fn sentry(State(s): State<Sinks>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    s.sentry
        .lock()
        .unwrap()
        .push((auth, String::from_utf8(body.to_vec()).unwrap()));
    if s.throttle.swap(false, Ordering::SeqCst) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "60")], "").into_response();
    }
    (StatusCode::OK, axum::Json(json!({"id": "ok"}))).into_response()
}

async fn slack(State(s): State<Sinks>, axum::Json(v): axum::Json<Value>) -> &'static str {
    s.slack.lock().unwrap().push(v);
    "ok"
}

async fn start_sinks() -> (Sinks, String) {
    let sinks = Sinks::default();
    let app = Router::new()
        .route("/api/42/envelope/", post(sentry))
        .route("/hooks/alerts", post(slack))
        .with_state(sinks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (sinks, format!("127.0.0.1:{}", addr.port()))
}

/// Waits until `f` holds (up to 5 s), then a little longer to catch extras.
async fn settle(f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for deliveries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn server_errors_reach_sentry_and_slack_once_per_problem() {
    let (sinks, host) = start_sinks().await;
    let dsn = format!("http://pubkey123@{host}/42");
    let hook = format!("http://{host}/hooks/alerts");
    let s = start(&[
        ("SENTRY_DSN", dsn.as_str()),
        ("SLACK_WEBHOOK_URL", hook.as_str()),
        // An identity provider that is down: its tokens get 503.
        ("JWKS_URL", "http://127.0.0.1:1/jwks.json"),
        ("JWT_ISSUER", "https://idp.test"),
        ("JWT_AUDIENCE", "stonepot"),
    ])
    .await;

    // Five identical failures (no webhook secret configured: 503).
    let mut first_id = String::new();
    for i in 0..5 {
        let res = client()
            .post(s.url("/webhooks/stripe"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        if i == 0 {
            first_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        }
    }
    settle(|| !sinks.sentry.lock().unwrap().is_empty() && !sinks.slack.lock().unwrap().is_empty())
        .await;
    let sent = sinks.sentry.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "the same problem is reported once");
    let (auth, body) = &sent[0];
    assert!(
        auth.starts_with("Sentry sentry_version=7, sentry_key=pubkey123"),
        "{auth}"
    );
    // The envelope: a header line, an item header whose length is the event's, the event.
    let lines: Vec<&str> = body.trim_end().split('\n').collect();
    assert_eq!(lines.len(), 3, "{body}");
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    let item: Value = serde_json::from_str(lines[1]).unwrap();
    let event: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(item["type"], "event");
    assert_eq!(item["length"].as_u64().unwrap() as usize, lines[2].len());
    assert_eq!(header["event_id"], event["event_id"]);
    assert_eq!(event["event_id"].as_str().unwrap().len(), 32);
    assert_eq!(event["level"], "error");
    assert_eq!(event["tags"]["route"], "/webhooks/stripe");
    assert_eq!(event["tags"]["status"], "503");
    assert_eq!(event["tags"]["request_id"], first_id.as_str());
    assert!(
        event["message"]["formatted"]
            .as_str()
            .unwrap()
            .contains("POST /webhooks/stripe answered 503")
    );
    let posted = sinks.slack.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let text = posted[0]["text"].as_str().unwrap();
    assert!(
        text.contains("POST /webhooks/stripe answered 503"),
        "{text}"
    );
    assert!(text.contains(&first_id), "{text}");

    // Client errors are nobody's emergency.
    let res = client()
        .get(s.url("/api/tenants/nobody-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Sentry says 429: a different problem still goes to Slack, and Sentry hears
    // nothing until Retry-After has passed.
    sinks.throttle.store(true, Ordering::SeqCst);
    let token = provider_token();
    let res = client()
        .get(s.url("/api/tenants/demo-restaurant/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503, "the identity provider is down");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "keys_unavailable");
    settle(|| sinks.sentry.lock().unwrap().len() >= 2 && sinks.slack.lock().unwrap().len() >= 2)
        .await;
    let res = client()
        .get(s.url("/api/tenants/demo-restaurant/kitchen"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405, "a 4xx, not reported");
    let res = client()
        .post(s.url("/api/tenants/demo-restaurant/kitchen"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    settle(|| sinks.slack.lock().unwrap().len() >= 3).await;
    assert_eq!(
        sinks.sentry.lock().unwrap().len(),
        2,
        "paused by the 429: the third problem is not sent"
    );
    assert_eq!(sinks.slack.lock().unwrap().len(), 3);
    assert!(s.running.app.alerts.dropped.load(Ordering::Relaxed) >= 4);
}

#[tokio::test]
async fn a_malformed_dsn_stops_start_up() {
    let mut env = std::collections::HashMap::new();
    env.insert(
        "SENTRY_DSN".to_string(),
        "https://o1.ingest.sentry.io/42".to_string(),
    );
    let dir = tempfile::tempdir().unwrap();
    env.insert("DATA_DIR".into(), dir.path().display().to_string());
    let config = stonepot_server::config::Config::load(
        None,
        &env,
        &stonepot_server::config::Overrides::default(),
    )
    .unwrap();
    let err = stonepot_server::serve::prepare(config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("SENTRY_DSN"), "{err}");
}

/// An RS256-shaped token from the configured provider (its keys cannot be fetched, so
/// the signature is never looked at).
fn provider_token() -> String {
    let h = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}).to_string());
    let p = URL_SAFE_NO_PAD.encode(
        json!({"iss": "https://idp.test", "aud": "stonepot", "sub": "u1", "role": "staff",
            "tenant": "demo-restaurant", "exp": 4_000_000_000_i64})
        .to_string(),
    );
    format!("{h}.{p}.c2ln")
}
