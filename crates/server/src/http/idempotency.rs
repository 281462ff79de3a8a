//! `Idempotency-Key` on POSTs: the first JSON answer to a (credential, key) pair is kept
//! for 24 h; a replay with the same method, path and body gets it back with
//! `Idempotent-Replayed: true`, and the same key with a different request gets 422.
//!
//! Only answers below 500 are kept, so a request that failed on the server can be
//! retried with its key. Streams (SSE, WebSocket upgrades) are never stored.
//!
//! A key is claimed in the store before the request runs (a record with status 0, the
//! store's insert-if-absent deciding the winner), so two requests racing with one key
//! never both run, on one instance or several: the second waits for the first's answer
//! (up to [`WAIT`]) and replays it, or gets 409 `idempotency_in_progress` with
//! `Retry-After`. A claim whose request kept no answer is released; one abandoned by a
//! crash is taken over after [`ABANDONED_MS`]. Webhooks (`/webhooks/…`) are exempt:
//! they carry their own event ids.

use crate::app::App;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use stonepot_store::IdempotencyRecord;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// Largest answer kept for replay.
const MAX_STORED: usize = 256 * 1024;
/// How long a request waits for a running twin's answer before 409.
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// A claim this old belongs to a request that died; the key may be claimed again.
const ABANDONED_MS: i64 = 60_000;

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

pub async fn idempotent(State(app): State<App>, req: Request, next: Next) -> Response {
    // Webhooks are deduplicated by their own event ids, in the same transaction as
    // their effect; a replayed answer from here could hide a redelivery that must run.
    if req.method() != Method::POST || req.uri().path().starts_with("/webhooks/") {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key: 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    // Keys belong to whoever presents them: scope by the credential.
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .or_else(|| req.headers().get("x-api-key"))
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let scope = hex_sha256(&[&credential]);
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
    let (parts, body) = req.into_parts();
    let limit = app.config.body_limit;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over {limit} bytes"),
            )
            .into_response();
        }
    };
    let body_hash = hex_sha256(&[method.as_bytes(), path.as_bytes(), &bytes]);
    let claim = IdempotencyRecord {
        method: method.clone(),
        path: path.clone(),
        body_hash: body_hash.clone(),
        status: 0,
        response: String::new(),
        created_at: jiff::Timestamp::now().as_millisecond(),
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match app.store.idempotency_put(&scope, &key, &claim).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
        match app.store.idempotency_get(&scope, &key).await {
            Ok(Some(rec)) if rec.body_hash != body_hash => {
                return ApiError::unprocessable(
                    "Idempotency-Key: already used with a different request; use a new key",
                )
                .into_response();
            }
            Ok(Some(rec)) if !rec.is_claim() => return replay(&rec),
            Ok(Some(rec)) if claim.created_at - rec.created_at > ABANDONED_MS => {
                if let Err(e) = app
                    .store
                    .idempotency_release(&scope, &key, rec.created_at)
                    .await
                {
                    return ApiError::from(e).into_response();
                }
                continue;
            }
            Ok(Some(_)) => {}
            // Gone between the two calls (released or expired): claim it again.
            Ok(None) => continue,
            Err(e) => return ApiError::from(e).into_response(),
        }
        if tokio::time::Instant::now() >= deadline {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            );
            e.retry_after = Some(1);
            return e.into_response();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json || res.status().is_server_error() {
        release(&app, &scope, &key, claim.created_at).await;
        return res;
    }
    let status = res.status();
    let (mut parts, body) = res.into_parts();
    let Ok(out) = axum::body::to_bytes(body, MAX_STORED).await else {
        release(&app, &scope, &key, claim.created_at).await;
        return ApiError::internal("the response could not be kept for replay").into_response();
    };
    let rec = IdempotencyRecord {
        status: status.as_u16(),
        response: String::from_utf8_lossy(&out).into_owned(),
        ..claim
    };
    match app.store.idempotency_finish(&scope, &key, &rec).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("an idempotency claim was taken over before its answer"),
        Err(e) => tracing::warn!(error = %e, "could not keep an idempotent response"),
    }
    parts
        .headers
        .insert(REPLAYED, HeaderValue::from_static("false"));
    Response::from_parts(parts, Body::from(out))
}

/// Frees a key whose request kept no answer, so a retry can run.
async fn release(app: &App, scope: &str, key: &str, created_at: i64) {
    if let Err(e) = app.store.idempotency_release(scope, key, created_at).await {
        tracing::warn!(error = %e, "could not release an idempotency claim");
    }
}

fn replay(rec: &IdempotencyRecord) -> Response {
    let status = StatusCode::from_u16(rec.status).unwrap_or(StatusCode::OK);
    let mut res = (status, rec.response.clone()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    res
}
