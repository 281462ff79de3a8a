//! Conversations end to end with the offline agent (no model configured): sessions,
//! the chat socket, SSE messages, the transcript, the display following the cart, and
//! bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, error_code, get, post_json, start};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "sp_chat_test";

async fn server() -> TestServer {
    start(&[("STONEPOT_DEMO_KEY", KEY)]).await
}

async fn session(s: &TestServer, tenant: &str) -> Value {
    let res = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": tenant, "userId": "guest-1", "language": "en"}),
    )
    .await;
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Sends one message and collects events up to `assistant_done` or `error`.
async fn turn(ws: &mut Ws, text: &str) -> Vec<Value> {
    ws.send(Message::text(
        json!({"type": "user_text", "text": text}).to_string(),
    ))
    .await
    .unwrap();
    let mut out = Vec::new();
    loop {
        let v = next(ws).await;
        let end = v["type"] == "assistant_done" || v["type"] == "error";
        out.push(v);
        if end {
            return out;
        }
    }
}

async fn transcript(s: &TestServer, id: &str) -> Value {
    let res = get(s.url(&format!("/api/conversations/{id}")), Some(KEY)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_spoken_order_fills_the_cart_and_the_display() {
    let s = server().await;
    let health: Value = get(s.url("/api/status"), None).await.json().await.unwrap();
    assert_eq!(health["models"], "offline", "{health}");
    let sess = session(&s, "demo-restaurant").await;
    let id = sess["sessionId"].as_str().unwrap().to_string();
    assert!(
        sess["displayUrl"]
            .as_str()
            .unwrap()
            .contains("/ui/conversation?session=")
    );
    let ws_url = sess["websocketUrl"].as_str().unwrap();
    assert!(ws_url.starts_with("ws://") && ws_url.contains(&format!("/ws/restaurant/{id}?token=")));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "ready");

    let events = turn(&mut ws, "two margherita pizzas, one without basil").await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"tool_call"), "{kinds:?}");
    assert!(kinds.contains(&"tool_result"), "{kinds:?}");
    assert!(kinds.contains(&"assistant_delta"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"assistant_done"), "{events:?}");
    let done = events.last().unwrap();
    assert_eq!(done["model"], "offline");
    assert!(!done["text"].as_str().unwrap().is_empty());

    let t = transcript(&s, &id).await;
    let lines = t["cart"]["lines"].as_array().unwrap();
    let qty: u64 = lines.iter().map(|l| l["quantity"].as_u64().unwrap()).sum();
    assert_eq!(qty, 2, "{t}");
    assert!(
        lines.iter().any(|l| l["modifiers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "No basil")),
        "{t}"
    );
    assert_eq!(t["turns"].as_array().unwrap().len(), 1);
    assert_eq!(t["turns"][0]["status"], "ok");
    assert!(!t["turns"][0]["toolCalls"].as_array().unwrap().is_empty());

    // The display shows the cart the tools built.
    let state: Value = get(s.url(&format!("/conversation/{id}/state")), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    let comps = state.to_string();
    assert!(comps.contains("\"cart\""), "{state}");
    assert!(comps.contains("Margherita Pizza"), "{state}");

    // A malformed frame gets an error and the socket stays usable.
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "invalid_json");
    ws.send(Message::text(r#"{"type":"shout"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "unknown_type");
    let big = "a".repeat(5_000);
    ws.send(Message::text(
        json!({"type":"user_text","text": big}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["code"], "too_large");
    let events = turn(&mut ws, "what's in my cart?").await;
    assert_eq!(events.last().unwrap()["type"], "assistant_done");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn messages_stream_as_sse_and_the_token_is_enough() {
    let s = server().await;
    let sess = session(&s, "demo-restaurant").await;
    let id = sess["sessionId"].as_str().unwrap();
    let token = sess["token"].as_str().unwrap();
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/messages?token={token}")),
        None,
        &json!({"text": "a lemonade please"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("event: tool_call"), "{body}");
    assert!(body.contains("event: assistant_done"), "{body}");
    let t = transcript(&s, id).await;
    assert_eq!(t["cart"]["lines"][0]["itemId"], "lemonade", "{t}");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let s = server().await;
    // Unknown session.
    let res = post_json(
        s.url("/api/conversations/conv-nope/messages"),
        Some(KEY),
        &json!({"text": "hi"}),
    )
    .await;
    error_code(res, 404).await;
    let res = get(s.url("/api/conversations/conv-nope"), Some(KEY)).await;
    error_code(res, 404).await;
    // No key.
    let res = post_json(
        s.url("/api/restaurant/sessions"),
        None,
        &json!({"tenantId": "demo-restaurant"}),
    )
    .await;
    error_code(res, 401).await;
    // Unknown tenant / field.
    let res = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": "demo-restaurant", "colour": "red"}),
    )
    .await;
    let (_, msg) = error_code(res, 422).await;
    assert!(msg.contains("colour"), "{msg}");
    let sess = session(&s, "demo-restaurant").await;
    let id = sess["sessionId"].as_str().unwrap();
    // Someone else's token is refused.
    let other = session(&s, "demo-restaurant").await;
    let res = get(
        s.url(&format!(
            "/api/conversations/{id}?token={}",
            other["token"].as_str().unwrap()
        )),
        None,
    )
    .await;
    error_code(res, 401).await;
    // Empty and oversized messages.
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(KEY),
        &json!({"text": "  "}),
    )
    .await;
    error_code(res, 422).await;
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(KEY),
        &json!({"text": "x".repeat(4_001)}),
    )
    .await;
    error_code(res, 413).await;
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_financial_desk_renders_accounts() {
    let s = server().await;
    let sess = session(&s, "demo-finance").await;
    let id = sess["sessionId"].as_str().unwrap();
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(KEY),
        &json!({"text": "show me Ada Lovelace's accounts"}),
    )
    .await;
    let body = res.text().await.unwrap();
    assert!(body.contains("show_account_summary"), "{body}");
    let state: Value = get(s.url(&format!("/conversation/{id}/state")), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert!(state.to_string().contains("account_card"), "{state}");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_kiosk_page_starts_a_conversation() {
    let s = server().await;
    let res = get(s.url("/kiosk/demo-restaurant"), None).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("data-socket=") && html.contains("kiosk-"),
        "{html}"
    );
    assert!(html.contains("<iframe"), "{html}");
    assert!(!html.contains(KEY), "the page never carries the tenant key");
    // Voice: the controls, the scripts, and the microphone worklet served as JavaScript
    // (a browser refuses an AudioWorklet module of any other type).
    for part in [
        "id=\"voice-toggle\"",
        "id=\"voice-ptt\"",
        "id=\"voice-state\"",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    let worklet = html
        .split("data-worklet=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the worklet's URL on the voice bar")
        .replace("&#x2f;", "/");
    assert!(worklet.starts_with("/assets/kiosk-worklet."), "{worklet}");
    let res = get(s.url(&worklet), None).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let js = res.text().await.unwrap();
    assert!(js.contains("registerProcessor(\"stonepot-downsampler\""));
    for script in ["kiosk-audio.", "kiosk-voice."] {
        assert!(html.contains(script), "{script} linked from {html}");
    }
    let res = get(s.url("/kiosk/no-such-tenant"), None).await;
    error_code(res, 404).await;
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn creating_a_session_with_an_idempotency_key_happens_once() {
    let s = server().await;
    let create = |key: &'static str, user: &'static str| {
        let url = s.url("/api/restaurant/sessions");
        async move {
            common::client()
                .post(url)
                .bearer_auth(KEY)
                .header("Idempotency-Key", key)
                .json(&json!({"tenantId": "demo-restaurant", "userId": user}))
                .send()
                .await
                .unwrap()
        }
    };
    let first = create("k-1", "ann").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["idempotent-replayed"], "false");
    let a: Value = first.json().await.unwrap();
    let again = create("k-1", "ann").await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let b: Value = again.json().await.unwrap();
    assert_eq!(
        a["sessionId"], b["sessionId"],
        "a replay returns the first answer"
    );
    let clash = create("k-1", "bob").await;
    let (_, msg) = error_code(clash, 422).await;
    assert!(msg.contains("Idempotency-Key"), "{msg}");
    let other: Value = create("k-2", "ann").await.json().await.unwrap();
    assert_ne!(other["sessionId"], a["sessionId"]);
    let bad = common::client()
        .post(s.url("/api/restaurant/sessions"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "")
        .json(&json!({"tenantId": "demo-restaurant"}))
        .send()
        .await
        .unwrap();
    error_code(bad, 400).await;

    // Twelve racing requests with one new key: one runs, the others get its answer.
    let racers: Vec<_> = (0..12).map(|_| create("k-race", "cy")).collect();
    let answers = futures::future::join_all(racers).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut fresh = 0;
    for r in answers {
        assert_eq!(r.status(), 200);
        if r.headers()["idempotent-replayed"] == "false" {
            fresh += 1;
        }
        let v: Value = r.json().await.unwrap();
        ids.insert(v["sessionId"].as_str().unwrap().to_string());
    }
    assert_eq!(fresh, 1, "exactly one racer ran");
    assert_eq!(ids.len(), 1, "every racer got the same session: {ids:?}");
    s.running.stop().await.unwrap();
}
