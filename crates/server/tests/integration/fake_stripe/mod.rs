//! A fake Stripe API on 127.0.0.1:0 speaking the real wire format (form-encoded
//! requests with a Bearer key and Idempotency-Key, JSON answers and errors in Stripe's
//! shapes): Checkout Session create/retrieve/expire and refunds. Tests "complete" a
//! session as a paying guest would and deliver signed events to the server's webhook.
//! Also helpers that drive the server through an order paid with Stripe.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use stonepot_domain::commerce::stripe_signature;

pub const SECRET_KEY: &str = "sk_test_fake_0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_fake_0123456789abcdef";

#[derive(Default)]
pub struct FakeState {
    pub sessions: Mutex<HashMap<String, Value>>,
    /// Idempotency-Key → the first answer.
    idempotent: Mutex<HashMap<String, Value>>,
    /// payment intent → (captured, refunded).
    captures: Mutex<HashMap<String, (i64, i64)>>,
    pub refunds: Mutex<Vec<Value>>,
    /// (method, path, Idempotency-Key) of every authorized call.
    pub calls: Mutex<Vec<(String, String, Option<String>)>>,
    /// Session creates to fail with a 500 before answering normally.
    pub fail_creates: AtomicUsize,
    next: AtomicU64,
}

pub struct FakeStripe {
    pub base: String,
    pub state: Arc<FakeState>,
}

fn stripe_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": "invalid_request_error", "code": code, "message": message}})),
    )
        .into_response()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl FakeState {
    fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}_test_{:06}",
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn authorized(&self, h: &HeaderMap, method: &str, path: &str) -> Result<(), Response> {
        let auth = h.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {SECRET_KEY}")) {
            return Err(stripe_error(
                StatusCode::UNAUTHORIZED,
                "api_key_invalid",
                "Invalid API Key provided",
            ));
        }
        let key = h
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        self.calls
            .lock()
            .unwrap()
            .push((method.into(), path.into(), key));
        Ok(())
    }
}

async fn create_session(
    State(st): State<Arc<FakeState>>,
    h: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = st.authorized(&h, "POST", "/v1/checkout/sessions") {
        return r;
    }
    if st
        .fail_creates
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "scripted failure",
        );
    }
    let key = h
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if let Some(k) = &key
        && let Some(first) = st.idempotent.lock().unwrap().get(k)
    {
        return Json(first.clone()).into_response();
    }
    let f: HashMap<String, String> = form.into_iter().collect();
    let get = |k: &str| f.get(k).cloned();
    let Some(unit) =
        get("line_items[0][price_data][unit_amount]").and_then(|v| v.parse::<i64>().ok())
    else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "Missing required param: line_items[0][price_data][unit_amount].",
        );
    };
    let qty: i64 = get("line_items[0][quantity]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let currency = get("line_items[0][price_data][currency]").unwrap_or_default();
    let expires_at: i64 = get("expires_at").and_then(|v| v.parse().ok()).unwrap_or(0);
    if get("mode").as_deref() != Some("payment")
        || qty < 1
        || currency.len() != 3
        || currency != currency.to_ascii_lowercase()
    {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            "bad line items or mode",
        );
    }
    if expires_at < now() + 30 * 60 || expires_at > now() + 24 * 3600 {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "parameter_invalid_integer",
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
        );
    }
    let success = get("success_url").unwrap_or_default();
    if !success.contains("{CHECKOUT_SESSION_ID}") {
        return stripe_error(StatusCode::BAD_REQUEST, "parameter_invalid", "success_url");
    }
    let id = st.id("cs");
    let session = json!({
        "id": id, "object": "checkout.session", "mode": "payment",
        "url": format!("https://checkout.stripe.test/c/pay/{id}"),
        "amount_total": unit * qty, "amount_subtotal": unit * qty, "currency": currency,
        "status": "open", "payment_status": "unpaid", "payment_intent": null,
        "expires_at": expires_at, "created": now(),
        "client_reference_id": get("client_reference_id"),
        "metadata": {"order_id": get("metadata[order_id]"), "tenant_id": get("metadata[tenant_id]")},
        "success_url": success, "cancel_url": get("cancel_url"), "livemode": false,
    });
    st.sessions
        .lock()
        .unwrap()
        .insert(id.clone(), session.clone());
    if let Some(k) = key {
        st.idempotent.lock().unwrap().insert(k, session.clone());
    }
    Json(session).into_response()
}

async fn retrieve_session(
    State(st): State<Arc<FakeState>>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = st.authorized(&h, "GET", &format!("/v1/checkout/sessions/{id}")) {
        return r;
    }
    match st.sessions.lock().unwrap().get(&id) {
        Some(s) => Json(s.clone()).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "resource_missing",
            &format!("No such checkout.session: '{id}'"),
        ),
    }
}

async fn expire_session(
    State(st): State<Arc<FakeState>>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = st.authorized(&h, "POST", &format!("/v1/checkout/sessions/{id}/expire")) {
        return r;
    }
    let mut sessions = st.sessions.lock().unwrap();
    let Some(s) = sessions.get_mut(&id) else {
        return stripe_error(StatusCode::NOT_FOUND, "resource_missing", "No such session");
    };
    if s["status"] != "open" {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "checkout_session_not_open",
            "Only open sessions can be expired.",
        );
    }
    s["status"] = json!("expired");
    s["url"] = Value::Null;
    Json(s.clone()).into_response()
}

async fn create_refund(
    State(st): State<Arc<FakeState>>,
    h: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(r) = st.authorized(&h, "POST", "/v1/refunds") {
        return r;
    }
    let key = h
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if let Some(k) = &key
        && let Some(first) = st.idempotent.lock().unwrap().get(k)
    {
        return Json(first.clone()).into_response();
    }
    let f: HashMap<String, String> = form.into_iter().collect();
    let pi = f.get("payment_intent").cloned().unwrap_or_default();
    let Some(amount) = f.get("amount").and_then(|a| a.parse::<i64>().ok()) else {
        return stripe_error(StatusCode::BAD_REQUEST, "parameter_missing", "amount");
    };
    let mut caps = st.captures.lock().unwrap();
    let Some((captured, refunded)) = caps.get_mut(&pi) else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "resource_missing",
            &format!("No such payment_intent: '{pi}'"),
        );
    };
    if amount <= 0 || *refunded + amount > *captured {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "amount_too_large",
            &format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                *captured - *refunded
            ),
        );
    }
    *refunded += amount;
    let refund = json!({
        "id": st.id("re"), "object": "refund", "amount": amount, "currency": "usd",
        "payment_intent": pi, "status": "succeeded", "metadata": {"order_id": f.get("metadata[order_id]")},
    });
    st.refunds.lock().unwrap().push(refund.clone());
    if let Some(k) = key {
        st.idempotent.lock().unwrap().insert(k, refund.clone());
    }
    Json(refund).into_response()
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(retrieve_session))
            .route("/v1/checkout/sessions/{id}/expire", post(expire_session))
            .route("/v1/refunds", post(create_refund))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeStripe {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// The server settings that point at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("STRIPE_SECRET_KEY", SECRET_KEY.to_string()),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
            ("STRIPE_API_BASE", self.base.clone()),
        ]
    }

    /// The guest pays: the session completes with `amount` (the session's own unless
    /// overridden, to script a mismatch) and `currency`. Returns the session.
    pub fn complete(&self, id: &str, amount: Option<i64>, currency: Option<&str>) -> Value {
        let mut sessions = self.state.sessions.lock().unwrap();
        let s = sessions.get_mut(id).expect("known session");
        if s["status"] == "open" {
            let pi = format!("pi_for_{id}");
            s["status"] = json!("complete");
            s["payment_status"] = json!("paid");
            s["payment_intent"] = json!(pi);
            s["url"] = Value::Null;
            if let Some(a) = amount {
                s["amount_total"] = json!(a);
            }
            if let Some(c) = currency {
                s["currency"] = json!(c);
            }
            let captured = s["amount_total"].as_i64().unwrap();
            self.state
                .captures
                .lock()
                .unwrap()
                .insert(pi, (captured, 0));
        }
        s.clone()
    }

    /// Stripe expires an unpaid session.
    pub fn expire(&self, id: &str) -> Value {
        let mut sessions = self.state.sessions.lock().unwrap();
        let s = sessions.get_mut(id).expect("known session");
        s["status"] = json!("expired");
        s["url"] = Value::Null;
        s.clone()
    }

    /// An event of `kind` about `object`, as Stripe sends it.
    pub fn event(&self, kind: &str, object: &Value) -> String {
        json!({
            "id": self.state.id("evt"), "object": "event", "type": kind, "created": now(),
            "api_version": "2024-06-20", "livemode": false, "pending_webhooks": 1,
            "data": {"object": object},
        })
        .to_string()
    }

    /// Creates calls made with an Idempotency-Key, in order.
    pub fn creates(&self) -> Vec<Option<String>> {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == "POST" && p == "/v1/checkout/sessions")
            .map(|(_, _, k)| k.clone())
            .collect()
    }
}

/// A `Stripe-Signature` for `body`, `offset` seconds from now.
pub fn signature(body: &str, offset: i64) -> String {
    stripe_signature::header(WEBHOOK_SECRET.as_bytes(), now() + offset, body.as_bytes())
}

/// POSTs `body` to the server's webhook with `signature` (none when `None`).
pub async fn deliver(
    client: &reqwest::Client,
    base: &str,
    body: &str,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    req.send().await.unwrap()
}

/// Drives the server: a conversation whose cart holds `text`, its quote, and a
/// confirmation paying with `method`. Returns the confirm answer (200) or the response.
pub async fn stripe_order(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    text: &str,
    method: &str,
) -> Result<Value, reqwest::Response> {
    tipped_order(client, base, key, text, method, None).await
}

/// Like [`stripe_order`], with a tip of `tip` minor units on the quote.
pub async fn tipped_order(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    text: &str,
    method: &str,
    tip: Option<i64>,
) -> Result<Value, reqwest::Response> {
    let v: Value = client
        .post(format!("{base}/api/restaurant/sessions"))
        .bearer_auth(key)
        .json(&json!({"tenantId": "demo-restaurant"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = v["sessionId"].as_str().unwrap().to_string();
    let said = client
        .post(format!("{base}/api/conversations/{conv}/messages"))
        .bearer_auth(key)
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(said.contains("assistant_done"), "{said}");
    let res = client
        .post(format!("{base}/api/conversations/{conv}/quote"))
        .bearer_auth(key)
        .json(&match tip {
            Some(minor) => json!({"tip": {"kind": "amount", "minor": minor}}),
            None => json!({}),
        })
        .send()
        .await
        .unwrap();
    if res.status() != 200 {
        return Err(res);
    }
    let q: Value = res.json().await.unwrap();
    let res = client
        .post(format!("{base}/api/conversations/{conv}/confirm"))
        .bearer_auth(key)
        .json(&json!({"quoteHash": q["hash"], "paymentMethod": method}))
        .send()
        .await
        .unwrap();
    if res.status() != 200 {
        return Err(res);
    }
    let mut order: Value = res.json().await.unwrap();
    order["conversationId"] = json!(conv);
    order["quote"] = q;
    Ok(order)
}
