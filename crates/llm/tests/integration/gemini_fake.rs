//! The Gemini adapter against a fake `streamGenerateContent?alt=sse` server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stonepot_llm::gemini::Gemini;
use stonepot_llm::{
    ChatRequest, Collected, LlmError, Message, Role, StopReason, ToolCall, ToolSpec, Usage,
};

type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>, HeaderMap, Value)>>>;

const CHUNKS: &[&str] = &[
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Sure, "}]}}],"usageMetadata":{"promptTokenCount":90}}"#,
    r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"two pizzas."},{"functionCall":{"name":"add_to_cart","args":{"item":"margherita","qty":2}}}]}}]}"#,
    r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"show_cart","args":{}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":90,"candidatesTokenCount":31,"cachedContentTokenCount":64}}"#,
];

async fn generate(
    State((seen, cut)): State<(Seen, bool)>,
    Path(model): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    seen.lock()
        .unwrap()
        .push((model, q, headers, serde_json::from_str(&body).unwrap()));
    let n = if cut { 2 } else { CHUNKS.len() };
    let text: String = CHUNKS[..n]
        .iter()
        .map(|c| format!("data: {c}\r\n\r\n"))
        .collect();
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = text
        .into_bytes()
        .chunks(23)
        .map(|c| Ok(c.to_vec()))
        .collect();
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(pieces)))
        .unwrap()
}

async fn fake(cut: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/v1beta/models/{model}", post(generate))
        .with_state((seen.clone(), cut));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gemini-test".into(),
        messages: vec![
            Message::system("You take orders."),
            Message::user("two margheritas"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c9".into(),
                    name: "search_menu".into(),
                    arguments: "{\"q\":\"pizza\"}".into(),
                }],
                tool_call_id: None,
            },
            Message::tool_result("c9", "{\"items\":[\"margherita\"]}"),
        ],
        tools: vec![ToolSpec {
            name: "add_to_cart".into(),
            description: "Add".into(),
            parameters: json!({"type":"object"}),
        }],
        max_tokens: Some(200),
        temperature: Some(0.2),
    }
}

#[tokio::test]
async fn streams_text_whole_function_calls_and_usage() {
    let (base, seen) = fake(false).await;
    let api = Gemini::new(base, Some("g-key".into()), reqwest::Client::new());
    let mut s = std::pin::pin!(api.stream(&request()).await.unwrap());
    let mut c = Collected::default();
    let mut open = Vec::new();
    while let Some(ev) = s.next().await {
        c.push(&ev.unwrap(), &mut open);
    }
    assert_eq!(c.text, "Sure, two pizzas.");
    assert_eq!(
        c.tool_calls
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["add_to_cart", "show_cart"]
    );
    assert_eq!(
        serde_json::from_str::<Value>(&c.tool_calls[0].arguments).unwrap(),
        json!({"item":"margherita","qty":2})
    );
    assert_ne!(c.tool_calls[0].id, c.tool_calls[1].id);
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 90,
            output_tokens: 31,
            cached_input_tokens: 64
        }
    );
    assert_eq!(c.stop, Some(StopReason::ToolUse));

    let seen = seen.lock().unwrap();
    let (model, query, headers, body) = &seen[0];
    assert_eq!(model, "gemini-test:streamGenerateContent");
    assert_eq!(query["alt"], "sse");
    assert_eq!(headers["x-goog-api-key"], "g-key");
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "You take orders."
    );
    assert_eq!(body["contents"][1]["role"], "model");
    assert_eq!(
        body["contents"][1]["parts"][0]["functionCall"]["args"]["q"],
        "pizza"
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "search_menu"
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["response"]["items"][0],
        "margherita"
    );
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "add_to_cart"
    );
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 200);
}

#[tokio::test]
async fn a_stream_without_a_finish_reason_is_truncated() {
    let (base, _) = fake(true).await;
    let api = Gemini::new(base, None, reqwest::Client::new());
    let mut s = std::pin::pin!(api.stream(&request()).await.unwrap());
    let mut last = None;
    while let Some(ev) = s.next().await {
        last = Some(ev);
    }
    assert!(matches!(last, Some(Err(LlmError::Truncated))), "{last:?}");
}
