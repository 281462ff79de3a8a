//! The server with a model configured (a fake OpenAI provider on 127.0.0.1): the
//! conversation engine's tool loop, fallback to the offline agent, cancellation on
//! disconnect, and the OpenAI-compatible API driven by the official Python client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::fake_openai;

use common::{TestServer, client, get, post_json, start};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

const KEY: &str = "sp_model_test";

async fn server() -> (TestServer, fake_openai::Fake) {
    let (base, fake) = fake_openai::start().await;
    let s = start(&[
        ("STONEPOT_DEMO_KEY", KEY),
        ("OPENAI_BASE_URL", &base),
        ("OPENAI_API_KEY", "sk-fake"),
        ("OPENAI_MODEL", "gpt-fake"),
    ])
    .await;
    (s, fake)
}

async fn conversation(s: &TestServer) -> String {
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": "demo-restaurant"}),
    )
    .await
    .json()
    .await
    .unwrap();
    v["sessionId"].as_str().unwrap().to_string()
}

async fn say(s: &TestServer, id: &str, text: &str) -> String {
    post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(KEY),
        &json!({"text": text}),
    )
    .await
    .text()
    .await
    .unwrap()
}

async fn transcript(s: &TestServer, id: &str) -> Value {
    get(s.url(&format!("/api/conversations/{id}")), Some(KEY))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_model_drives_the_tools_and_the_transcript_keeps_usage() {
    let (s, fake) = server().await;
    let health: Value = get(s.url("/api/status"), None).await.json().await.unwrap();
    assert_eq!(health["models"], "ok", "{health}");
    let id = conversation(&s).await;
    let body = say(&s, &id, "a margherita without basil please").await;
    assert!(body.contains("event: tool_call"), "{body}");
    assert!(body.contains("event: tool_result"), "{body}");
    assert!(body.contains("Added a margherita "), "{body}");
    assert!(body.contains("event: assistant_done"), "{body}");
    assert_eq!(
        fake.requests.load(Ordering::SeqCst),
        2,
        "the call, then the reply"
    );
    // The model saw the tools and the tenant's system prompt.
    let first = fake.bodies.lock().unwrap()[0].clone();
    assert_eq!(first["model"], "gpt-fake");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Stonepot Trattoria")
    );
    let t = transcript(&s, &id).await;
    assert_eq!(t["cart"]["lines"][0]["itemId"], "margherita", "{t}");
    let turn = &t["turns"][0];
    assert_eq!(turn["model"], "gpt-fake", "{t}");
    assert_eq!(turn["target"], "openai", "{t}");
    assert_eq!(turn["inputTokens"], 240, "two requests of 120: {t}");
    assert_eq!(turn["cachedTokens"], 200, "{t}");
    assert_eq!(turn["toolCalls"][0]["callId"], "call_1");
    let metrics = get(s.url("/metrics"), None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"stonepot_agent_turns_total{target="openai",status="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"stonepot_llm_tokens_total{target="openai",kind="cached"} 200"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("stonepot_agent_first_output_seconds_count{target=\"openai\"} 1"),
        "{metrics}"
    );
    // The next turn replays the history, tool call and result included.
    say(&s, &id, "thanks").await;
    let third = fake.bodies.lock().unwrap()[2].clone();
    let roles: Vec<&str> = third["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "user"],
        "{third}"
    );
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn when_the_model_fails_before_answering_the_offline_agent_takes_the_turn() {
    let (s, fake) = server().await;
    let id = conversation(&s).await;
    let body = say(&s, &id, "fail: two lemonades").await;
    assert!(body.contains("event: assistant_done"), "{body}");
    assert!(fake.requests.load(Ordering::SeqCst) >= 1);
    let t = transcript(&s, &id).await;
    assert_eq!(t["turns"][0]["model"], "offline", "{t}");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_break_mid_answer_is_an_error_event() {
    let (s, _fake) = server().await;
    let id = conversation(&s).await;
    let body = say(&s, &id, "cut").await;
    assert!(body.contains("Partial ans"), "{body}");
    assert!(body.contains("event: error"), "{body}");
    assert!(!body.contains("event: assistant_done"), "{body}");
    let t = transcript(&s, &id).await;
    assert_eq!(t["turns"][0]["status"], "error", "{t}");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_turn_and_the_upstream_request() {
    let (s, fake) = server().await;
    let id = conversation(&s).await;
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(KEY),
        &json!({"text": "stall"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    // Wait until the request reached the provider, then hang up.
    for _ in 0..100 {
        if fake.requests.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(res);
    let mut closed = false;
    for _ in 0..150 {
        if fake.hangups.load(Ordering::SeqCst) > 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the upstream request was closed within 3 s");
    // The turn is stored as cancelled.
    let mut status = Value::Null;
    for _ in 0..100 {
        let t = transcript(&s, &id).await;
        status = t["turns"][0]["status"].clone();
        if !status.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "cancelled");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_official_openai_python_client_works_against_v1() {
    let (s, _fake) = server().await;
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/python/openai_client.py"
            ))
            .env("STONEPOT_URL", base)
            .env("STONEPOT_KEY", KEY)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok  openai python client"), "{text}");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_tenants_persona_and_instructions_reach_the_model() {
    let (s, fake) = server().await;
    let url = s.url("/api/tenants/demo-restaurant/agent");
    let before: Value = get(&url, Some(KEY)).await.json().await.unwrap();
    assert_eq!(before["custom"], false);
    let res = client()
        .put(&url)
        .json(&json!({"persona": "You are Gia."}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client()
        .put(&url)
        .bearer_auth(KEY)
        .json(&json!({"persona": " "}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = client()
        .put(&url)
        .bearer_auth(KEY)
        .json(&json!({"persona": "You are Gia, the host.", "instructions": "Suggest a drink with every pizza."}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = conversation(&s).await;
    say(&s, &id, "hello").await;
    let system = fake.bodies.lock().unwrap()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(system.starts_with("You are Gia, the host."), "{system}");
    assert!(
        system.contains("Suggest a drink with every pizza."),
        "{system}"
    );
    assert!(
        system.contains("margherita: Margherita Pizza, 12.99"),
        "{system}"
    );
    s.running.stop().await.unwrap();
}
