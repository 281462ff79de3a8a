//! Routes fall back to the next target when one refuses before streaming.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use futures::StreamExt;
use stonepot_llm::anthropic::AnthropicMessages;
use stonepot_llm::openai::OpenAiChat;
use stonepot_llm::provider::{Provider, Target, stream_with_fallback};
use stonepot_llm::{ChatRequest, LlmError, Message, StreamEvent};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn req() -> ChatRequest {
    ChatRequest {
        model: "ignored".into(),
        messages: vec![Message::user("hi")],
        tools: vec![],
        max_tokens: None,
        temperature: None,
    }
}

#[tokio::test]
async fn a_rate_limited_target_falls_back_and_a_bad_request_does_not() {
    let busy = serve(Router::new().route(
        "/v1/messages",
        post(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "3")],
                "busy",
            )
                .into_response()
        }),
    ))
    .await;
    let ok = serve(Router::new().route(
        "/v1/chat/completions",
        post(|body: String| async move {
            assert!(body.contains("\"model\":\"second-model\""), "{body}");
            (
                [("content-type", "text/event-stream")],
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
            )
        }),
    ))
    .await;
    let bad = serve(Router::new().route(
        "/v1/chat/completions",
        post(|| async { (StatusCode::BAD_REQUEST, "bad tool schema").into_response() }),
    ))
    .await;
    let client = reqwest::Client::new();
    let targets = vec![
        Target {
            provider: Provider::Anthropic(AnthropicMessages::new(busy, None, client.clone())),
            model: "first-model".into(),
        },
        Target {
            provider: Provider::OpenAi(OpenAiChat::new(format!("{ok}/v1"), None, client.clone())),
            model: "second-model".into(),
        },
    ];
    let (used, mut s) = stream_with_fallback(&targets, &req()).await.unwrap();
    assert_eq!(used, 1);
    assert_eq!(
        s.next().await.unwrap().unwrap(),
        StreamEvent::TextDelta("hello".into())
    );

    let targets = vec![
        Target {
            provider: Provider::OpenAi(OpenAiChat::new(format!("{bad}/v1"), None, client.clone())),
            model: "m".into(),
        },
        targets[1].clone(),
    ];
    match stream_with_fallback(&targets, &req()).await {
        Err(LlmError::Status { status: 400, .. }) => {}
        Err(e) => panic!("expected the 400 to stop the route, got {e:?}"),
        Ok(_) => panic!("expected the 400 to stop the route"),
    }
}
