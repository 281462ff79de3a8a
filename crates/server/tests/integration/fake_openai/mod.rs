//! A fake OpenAI Chat Completions server on 127.0.0.1 speaking the real streaming wire
//! format. What it answers depends on the request, so one server serves many cases:
//! - the last user or tool message decides: "cut" → two chunks then the body ends
//!   with neither a finish reason nor `[DONE]` (a stream broken off mid-answer); "stall" → headers then silence (to see cancellation); "fail" → 500;
//! - a request offering `add_to_cart` whose last message is the user's → a tool call
//!   adding a margherita without basil; after the tool result → a short text reply;
//! - otherwise → "Hello from the fake." with usage (120 in, 8 out, 100 cached).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Fake {
    pub requests: Arc<AtomicUsize>,
    /// Streams whose client went away (seen as the body being dropped).
    pub hangups: Arc<AtomicUsize>,
    pub bodies: Arc<std::sync::Mutex<Vec<Value>>>,
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "fake-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn usage() -> String {
    let c = json!({"id": "fake-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-fake", "choices": [],
        "usage": {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128, "prompt_tokens_details": {"cached_tokens": 100}}});
    format!("data: {c}\n\n")
}

struct Hangup(Arc<AtomicUsize>, std::sync::atomic::AtomicBool);
impl Drop for Hangup {
    fn drop(&mut self) {
        if !self.1.load(Ordering::SeqCst) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn sse(parts: Vec<String>, then: &'static str, hangups: Arc<AtomicUsize>) -> Response {
    let guard = Hangup(hangups, std::sync::atomic::AtomicBool::new(false));
    let s = async_stream(parts, then, guard);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap()
}

fn async_stream(
    parts: Vec<String>,
    then: &'static str,
    guard: Hangup,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    futures::stream::unfold(
        (parts.into_iter(), then, guard),
        |(mut it, then, guard)| async move {
            if let Some(p) = it.next() {
                tokio::time::sleep(Duration::from_millis(2)).await;
                return Some((Ok(p), (it, then, guard)));
            }
            match then {
                "stall" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    None
                }
                _ => {
                    guard.1.store(true, Ordering::SeqCst);
                    None
                }
            }
        },
    )
}

async fn completions(State(f): State<Fake>, body: String) -> Response {
    f.requests.fetch_add(1, Ordering::SeqCst);
    let v: Value = serde_json::from_str(&body).unwrap();
    f.bodies.lock().unwrap().push(v.clone());
    let messages = v["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or_default();
    let text = last["content"].as_str().unwrap_or_default().to_lowercase();
    let offers_cart = v["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "add_to_cart"));
    let h = f.hangups.clone();
    if text.contains("fail") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response();
    }
    if text.contains("stall") {
        return sse(
            vec![chunk(json!({"role": "assistant", "content": ""}), None)],
            "stall",
            h,
        );
    }
    if text.contains("cut") {
        return sse(
            vec![
                chunk(json!({"role": "assistant", "content": ""}), None),
                chunk(json!({"content": "Partial ans"}), None),
            ],
            "end",
            h,
        );
    }
    if offers_cart && last["role"] == "user" {
        return sse(
            vec![
                chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "add_to_cart", "arguments": ""}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"item\":\"margherita\","}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"quantity\":1,\"modifiers\":[\"No basil\"]}"}}]}),
                    None,
                ),
                chunk(json!({}), Some("tool_calls")),
                usage(),
                "data: [DONE]\n\n".into(),
            ],
            "end",
            h,
        );
    }
    if last["role"] == "tool" {
        return sse(
            vec![
                chunk(json!({"role": "assistant", "content": ""}), None),
                chunk(json!({"content": "Added a margherita "}), None),
                chunk(json!({"content": "without basil."}), None),
                chunk(json!({}), Some("stop")),
                usage(),
                "data: [DONE]\n\n".into(),
            ],
            "end",
            h,
        );
    }
    let mut parts = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    if v["tools"].as_array().is_some_and(|t| !t.is_empty()) {
        parts.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":"}}]}), None));
        parts.push(chunk(json!({"tool_calls": [{"index": 1, "id": "call_t", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}), None));
        parts.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            None,
        ));
        parts.push(chunk(json!({}), Some("tool_calls")));
    } else {
        parts.push(chunk(json!({"content": "Hello from "}), None));
        parts.push(chunk(json!({"content": "the fake."}), None));
        parts.push(chunk(json!({}), Some("stop")));
    }
    parts.push(usage());
    parts.push("data: [DONE]\n\n".into());
    sse(parts, "end", h)
}

/// Starts the fake; returns its `/v1` base URL and its counters.
pub async fn start() -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), fake)
}
