//! Traces over OTLP/HTTP: the real binary with `TRACING_ENABLED=true` exports to a fake
//! collector on 127.0.0.1 that decodes the protobuf the way a collector does. One guest
//! message, sent with a W3C `traceparent`, must come back as one trace: the HTTP
//! request, the agent turn under it, the model calls and the tool under the turn, the
//! log append under the tool and the fan-out under the append; the display update and
//! the request's log lines carry the same trace id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::fake_openai;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{client, spawn_server};
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sp_tracing_test";
/// The caller's trace, continued by the server.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[derive(Clone, Debug)]
struct SpanSeen {
    name: String,
    trace: String,
    id: String,
    parent: String,
    service: String,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    bad: Arc<Mutex<Vec<String>>>,
}

async fn export(State(c): State<Collector>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if ct != "application/x-protobuf" {
        c.bad.lock().unwrap().push(format!("content-type {ct}"));
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
    }
    let req = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(e) => {
            c.bad.lock().unwrap().push(e.to_string());
            return (StatusCode::BAD_REQUEST, Vec::new());
        }
    };
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                c.spans.lock().unwrap().push(SpanSeen {
                    name: s.name,
                    trace: hex::encode(&s.trace_id),
                    id: hex::encode(&s.span_id),
                    parent: hex::encode(&s.parent_span_id),
                    service: service.clone(),
                });
            }
        }
    }
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

async fn start_collector() -> (Collector, String) {
    let c = Collector::default();
    let app = Router::new()
        .route("/v1/traces", post(export))
        .with_state(c.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (c, format!("http://{addr}"))
}

fn find<'a>(spans: &'a [SpanSeen], name: &str) -> Vec<&'a SpanSeen> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_is_one_trace_from_request_to_fan_out() {
    let (collector, endpoint) = start_collector().await;
    let (openai, _fake) = fake_openai::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let mut server = spawn_server(
        &["--demo"],
        &[
            ("DATA_DIR", data.as_str()),
            ("STONEPOT_DEMO_KEY", KEY),
            ("TRACING_ENABLED", "true"),
            ("TRACING_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OPENAI_BASE_URL", openai.as_str()),
            ("OPENAI_API_KEY", "sk-fake"),
            ("OPENAI_MODEL", "gpt-fake"),
        ],
        dir.path(),
    );
    let base = server.base();
    let v: Value = client()
        .post(format!("{base}/api/restaurant/sessions"))
        .bearer_auth(KEY)
        .json(&json!({"tenantId": "demo-restaurant"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["sessionId"].as_str().unwrap().to_string();
    // A display watching the conversation, so the update fans out to a socket.
    let socket_url = v["displaySocketUrl"].as_str().unwrap().to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(socket_url).await.unwrap();
    let _snapshot = ws.next().await.unwrap().unwrap();

    let sse = client()
        .post(format!("{base}/api/conversations/{id}/messages"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .json(&json!({"text": "a margherita please"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sse.contains("assistant_done"), "{sse}");
    assert!(sse.contains("add_to_cart"), "{sse}");

    // The cart update reached the display with the trace id.
    let update = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let m = ws.next().await.unwrap().unwrap();
            let text = m.into_text().unwrap().to_string();
            if text.contains("\"cart\"") {
                return text;
            }
        }
    })
    .await
    .expect("a cart update on the display");
    assert!(
        update.contains(&format!("\"traceId\":\"{TRACE}\"")),
        "{update}"
    );

    // The spans arrive (batched every 100 ms).
    let deadline = Instant::now() + Duration::from_secs(15);
    let spans = loop {
        let spans: Vec<SpanSeen> = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace == TRACE)
            .cloned()
            .collect();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        if ["agent_turn", "model_call", "tool", "log_append", "fan_out"]
            .iter()
            .all(|n| names.contains(n))
            && names
                .iter()
                .any(|n| n.starts_with("POST /api/conversations"))
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans of the trace so far: {names:?}; problems: {:?}",
            collector.bad.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(collector.bad.lock().unwrap().is_empty());
    let request = spans
        .iter()
        .find(|s| s.name == "POST /api/conversations/{id}/messages")
        .expect("the request span, named by its route");
    assert_eq!(
        request.parent, PARENT,
        "the caller's span is the request's parent"
    );
    assert!(request.service.contains("stonepot"), "{}", request.service);
    let turn = find(&spans, "agent_turn")[0];
    assert_eq!(turn.parent, request.id, "the turn is under the request");
    let models = find(&spans, "model_call");
    assert_eq!(models.len(), 2, "a tool call, then the reply");
    assert!(models.iter().all(|m| m.parent == turn.id));
    let tool = find(&spans, "tool")[0];
    assert_eq!(tool.parent, turn.id, "the tool is under the turn");
    let append = find(&spans, "log_append")
        .into_iter()
        .find(|a| a.parent == tool.id)
        .expect("the tool's display update is appended under it");
    assert!(
        find(&spans, "fan_out")
            .iter()
            .any(|f| f.parent == append.id),
        "the fan-out is under the append"
    );

    // The request's log lines carry the trace id too.
    let logs = server.stdout.lock().unwrap().clone();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"trace_id\"") && l.contains(TRACE) && l.contains("request")),
        "{logs}"
    );
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(20)).success());
}
