//! `Idempotency-Key` on POSTs: the first JSON answer to a (credential, key) pair is kept
//! for 24 h; a replay with the same method, path and body gets it back with
//! `Idempotent-Replayed: true`, and the same key with a different request gets 422.
//!
//! Only answers below 500 are kept, so a request that failed on the server can be
//! retried with its key. Streams (SSE, WebSocket upgrades) are never stored. Two requests
//! racing with the same key may both run (the first one to finish is kept); creating
//! calls that must never run twice also guard themselves in the store (one order per
//! quote, one tool call per id). Webhooks (`/webhooks/…`) are exempt: they carry their
//! own event ids.

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
    match app.store.idempotency_get(&scope, &key).await {
        Ok(Some(rec)) if rec.body_hash == body_hash => return replay(&rec),
        Ok(Some(_)) => {
            return ApiError::unprocessable(
                "Idempotency-Key: already used with a different request; use a new key",
            )
            .into_response();
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
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
        return res;
    }
    let status = res.status();
    let (mut parts, body) = res.into_parts();
    let Ok(out) = axum::body::to_bytes(body, MAX_STORED).await else {
        return ApiError::internal("the response could not be kept for replay").into_response();
    };
    let rec = IdempotencyRecord {
        method,
        path,
        body_hash,
        status: status.as_u16(),
        response: String::from_utf8_lossy(&out).into_owned(),
        created_at: jiff::Timestamp::now().as_millisecond(),
    };
    if let Err(e) = app.store.idempotency_put(&scope, &key, &rec).await {
        tracing::warn!(error = %e, "could not keep an idempotent response");
    }
    parts
        .headers
        .insert(REPLAYED, HeaderValue::from_static("false"));
    Response::from_parts(parts, Body::from(out))
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
