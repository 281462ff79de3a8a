//! The Anthropic adapter against a fake Messages server speaking the real event stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use stonepot_llm::anthropic::AnthropicMessages;
use stonepot_llm::{
    ChatRequest, Collected, LlmError, Message, Role, StopReason, ToolCall, ToolSpec, Usage,
};

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

const EVENTS: &[(&str, &str)] = &[
    (
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"usage":{"input_tokens":40,"cache_read_input_tokens":700,"cache_creation_input_tokens":0,"output_tokens":1}}}"#,
    ),
    ("ping", r#"{"type":"ping"}"#),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Adding "}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"them now."}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ),
    (
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"add_to_cart","input":{}}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"item\": \"margherita\", "}}"#,
    ),
    (
        "content_block_delta",
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"qty\": 2}"}}"#,
    ),
    (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#,
    ),
    (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}"#,
    ),
    ("message_stop", r#"{"type":"message_stop"}"#),
];

async fn messages(
    State((seen, mode)): State<(Seen, &'static str)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    seen.lock()
        .unwrap()
        .push((headers, serde_json::from_str(&body).unwrap()));
    let mut text = String::new();
    let events: Vec<(&str, &str)> = match mode {
        "overloaded" => vec![
            EVENTS[0],
            (
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
        ],
        _ => EVENTS.to_vec(),
    };
    for (name, data) in events {
        text.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = text
        .into_bytes()
        .chunks(29)
        .map(|c| Ok(c.to_vec()))
        .collect();
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(pieces)))
        .unwrap()
}

async fn fake(mode: &'static str) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .with_state((seen.clone(), mode));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "claude-test".into(),
        messages: vec![
            Message::system("You take orders."),
            Message::user("two margheritas"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![
                    ToolCall {
                        id: "t1".into(),
                        name: "search_menu".into(),
                        arguments: "{\"q\":\"pizza\"}".into(),
                    },
                    ToolCall {
                        id: "t2".into(),
                        name: "show_cart".into(),
                        arguments: "{}".into(),
                    },
                ],
                tool_call_id: None,
            },
            Message::tool_result("t1", "[margherita]"),
            Message::tool_result("t2", "empty"),
        ],
        tools: vec![ToolSpec {
            name: "add_to_cart".into(),
            description: "Add an item".into(),
            parameters: json!({"type":"object"}),
        }],
        max_tokens: None,
        temperature: None,
    }
}

#[tokio::test]
async fn streams_text_tool_use_and_cached_usage() {
    let (base, seen) = fake("full").await;
    let api = AnthropicMessages::new(base, Some("sk-ant-test".into()), reqwest::Client::new());
    let mut s = std::pin::pin!(api.stream(&request()).await.unwrap());
    let mut c = Collected::default();
    let mut open = Vec::new();
    while let Some(ev) = s.next().await {
        c.push(&ev.unwrap(), &mut open);
    }
    assert_eq!(c.text, "Adding them now.");
    assert_eq!(c.tool_calls.len(), 1);
    assert_eq!(c.tool_calls[0].id, "toolu_1");
    assert_eq!(
        serde_json::from_str::<Value>(&c.tool_calls[0].arguments).unwrap(),
        json!({"item":"margherita","qty":2})
    );
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 740,
            output_tokens: 42,
            cached_input_tokens: 700
        }
    );
    assert_eq!(c.stop, Some(StopReason::ToolUse));

    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(body["system"], "You take orders.");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    // The assistant's calls became tool_use blocks; both results share one user turn.
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(body["messages"][1]["content"][0]["input"]["q"], "pizza");
    assert_eq!(body["messages"].as_array().unwrap().len(), 3);
    let results = body["messages"][2]["content"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["tool_use_id"], "t2");
}

#[tokio::test]
async fn an_overloaded_error_event_is_a_rate_limit() {
    let (base, _) = fake("overloaded").await;
    let api = AnthropicMessages::new(base, None, reqwest::Client::new());
    let mut s = std::pin::pin!(api.stream(&request()).await.unwrap());
    let mut err = None;
    while let Some(ev) = s.next().await {
        if let Err(e) = ev {
            err = Some(e);
        }
    }
    assert!(matches!(err, Some(LlmError::RateLimited { .. })), "{err:?}");
}
