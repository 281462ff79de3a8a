//! The OpenAI adapter against a fake server on 127.0.0.1 that speaks the real streaming
//! wire format: content deltas, two parallel tool calls with interleaved argument
//! fragments, usage with cached tokens, `[DONE]`; plus 429, a 500 and a cut stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use stonepot_llm::openai::OpenAiChat;
use stonepot_llm::{
    ChatRequest, Collected, LlmError, Message, StopReason, StreamEvent, ToolSpec, Usage,
};

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<Vec<&'static str>>>,
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

const CHUNKS: &[&str] = &[
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Two pizzas"},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":", coming up."},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"add_to_cart","arguments":""}}]},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"item\":\"margh"}}]},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"add_to_cart","arguments":"{\"item\":"}}]},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"erita\",\"qty\":1}"}}]},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"margherita\",\"qty\":1,\"without\":[\"basil\"]}"}}]},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":812,"completion_tokens":57,"total_tokens":869,"prompt_tokens_details":{"cached_tokens":768}}}"#,
];

async fn completions(State(f): State<Fake>, headers: HeaderMap, body: String) -> Response {
    f.seen
        .lock()
        .unwrap()
        .push((headers, serde_json::from_str(&body).unwrap()));
    let mode = f.script.lock().unwrap().remove(0);
    match mode {
        "429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            r#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
        )
            .into_response(),
        "500" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
        full_or_cut => {
            let n = if full_or_cut == "cut" {
                5
            } else {
                CHUNKS.len()
            };
            // Odd framing on purpose: CRLF endings, a keep-alive comment, and chunks
            // that split lines in the middle.
            let mut text = String::from(": ping\r\n\r\n");
            for c in &CHUNKS[..n] {
                text.push_str(&format!("data: {c}\r\n\r\n"));
            }
            if full_or_cut == "full" {
                text.push_str("data: [DONE]\r\n\r\n");
            }
            let bytes = text.into_bytes();
            let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
                bytes.chunks(37).map(|c| Ok(c.to_vec())).collect();
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(pieces)))
                .unwrap()
        }
    }
}

async fn fake(script: Vec<&'static str>) -> (String, Fake) {
    let f = Fake {
        script: Arc::new(Mutex::new(script)),
        ..Default::default()
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), f)
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-test".into(),
        messages: vec![
            Message::system("You take orders."),
            Message::user("two margherita pizzas, one without basil"),
        ],
        tools: vec![ToolSpec {
            name: "add_to_cart".into(),
            description: "Add an item".into(),
            parameters: json!({"type":"object","properties":{"item":{"type":"string"}}}),
        }],
        max_tokens: Some(256),
        temperature: None,
    }
}

async fn collect(
    s: impl futures::Stream<Item = Result<StreamEvent, LlmError>>,
) -> (Vec<StreamEvent>, Option<LlmError>) {
    let mut s = std::pin::pin!(s);
    let mut evs = Vec::new();
    while let Some(e) = s.next().await {
        match e {
            Ok(ev) => evs.push(ev),
            Err(err) => return (evs, Some(err)),
        }
    }
    (evs, None)
}

#[tokio::test]
async fn streams_text_parallel_tool_calls_and_usage() {
    let (base, f) = fake(vec!["full"]).await;
    let chat = OpenAiChat::new(base, Some("sk-test".into()), reqwest::Client::new());
    let (evs, err) = collect(chat.stream(&request()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    let mut c = Collected::default();
    let mut open = Vec::new();
    for e in &evs {
        c.push(e, &mut open);
    }
    assert_eq!(c.text, "Two pizzas, coming up.");
    assert_eq!(c.tool_calls.len(), 2);
    assert_eq!(c.tool_calls[0].id, "call_a");
    assert_eq!(
        serde_json::from_str::<Value>(&c.tool_calls[0].arguments).unwrap(),
        json!({"item":"margherita","qty":1})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&c.tool_calls[1].arguments).unwrap(),
        json!({"item":"margherita","qty":1,"without":["basil"]})
    );
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 812,
            output_tokens: 57,
            cached_input_tokens: 768
        }
    );
    assert_eq!(c.stop, Some(StopReason::ToolUse));
    assert_eq!(evs.last(), Some(&StreamEvent::Done(StopReason::ToolUse)));
    // What the server received.
    let seen = f.seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "add_to_cart");
    assert_eq!(body["max_tokens"], 256);
}

#[tokio::test]
async fn errors_are_typed() {
    let (base, _) = fake(vec!["429", "500", "cut"]).await;
    let chat = OpenAiChat::new(base, None, reqwest::Client::new());
    match chat.stream(&request()).await {
        Err(LlmError::RateLimited { retry_after }) => assert_eq!(retry_after, Some(7)),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    match chat.stream(&request()).await {
        Err(LlmError::Status { status, body }) => {
            assert_eq!(status, 500);
            assert!(body.contains("exploded"));
        }
        other => panic!("expected 500, got {:?}", other.map(|_| ())),
    }
    // A stream that stops without [DONE] yields what it had, then Truncated.
    let (evs, err) = collect(chat.stream(&request()).await.unwrap()).await;
    assert!(matches!(err, Some(LlmError::Truncated)), "{err:?}");
    assert!(evs.iter().any(|e| matches!(e, StreamEvent::TextDelta(_))));
    assert!(!evs.iter().any(|e| matches!(e, StreamEvent::Done(_))));
}
