//! The OpenAI-compatible surface for integrators: `POST /v1/chat/completions` (streamed
//! or not, with tools) and `GET /v1/models`, routed through the model router and
//! authenticated by any tenant's API key. `model` names a route, a target, or a
//! `provider/model` pair such as `openai/gpt-4o-mini`.
//!
//! Errors use OpenAI's own shape (`{"error":{"message","type","param","code"}}`) so the
//! official SDKs raise their usual exceptions. A failure after the first chunk of a
//! stream is sent as an error chunk — never a silent end.

use crate::app::App;
use crate::routes::conversation::bearer;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use stonepot_llm::{
    ChatRequest, Collected, LlmError, Message, Role, StopReason, StreamEvent, ToolCall, ToolSpec,
    Usage,
};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body (long conversations with tool results).
pub const COMPLETIONS_LIMIT: usize = 1024 * 1024;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(completions))
        .routes(routes!(models))
        .layer(axum::extract::DefaultBodyLimit::max(COMPLETIONS_LIMIT))
}

/// An error in OpenAI's shape.
pub struct OaiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
    param: Option<&'static str>,
    /// Seconds for `Retry-After` (our own rate limits).
    retry_after: Option<u64>,
}

impl OaiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        OaiError {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        OaiError {
            param: Some(param),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
                message,
            )
        }
    }

    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }

    fn from_llm(e: &LlmError) -> Self {
        let msg = e.to_string();
        match e {
            LlmError::UnknownModel(_) => Self {
                param: Some("model"),
                ..Self::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "model_not_found",
                    msg,
                )
            },
            LlmError::NoTargets => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "no_models_configured",
                "no model targets are configured on this server",
            ),
            LlmError::RateLimited { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limited",
                msg,
            ),
            LlmError::Status { status, .. } if (400..500).contains(status) && *status != 408 => {
                Self::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "upstream_refused",
                    msg,
                )
            }
            LlmError::FirstTokenTimeout { .. } | LlmError::Stalled { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "api_error", e.code(), msg)
            }
            LlmError::Unavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", e.code(), msg)
            }
            _ => Self::new(StatusCode::BAD_GATEWAY, "api_error", e.code(), msg),
        }
    }
}

impl IntoResponse for OaiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

impl From<stonepot_store::StoreError> for OaiError {
    fn from(e: stonepot_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error on the OpenAI-compatible API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal",
            "internal error",
        )
    }
}

/// Staff or more of any tenant (its API key or a JWT), or an admin; refusals in
/// OpenAI's error shape so OpenAI clients show them.
async fn authorize(app: &App, headers: &HeaderMap) -> Result<(), OaiError> {
    let refuse = |status: StatusCode, m: &str| {
        OaiError::new(status, "invalid_request_error", "invalid_api_key", m)
    };
    if bearer(headers).is_none() {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "send a tenant API key as Authorization: Bearer <key>",
        ));
    }
    match crate::auth::access::identify(app, headers, None).await {
        Ok(who) if who.role >= crate::auth::Role::Staff => Ok(()),
        Ok(_) => Err(refuse(
            StatusCode::FORBIDDEN,
            "this needs the staff role or more",
        )),
        Err(e) if e.status.is_server_error() => Err(refuse(e.status, &e.message)),
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Err(OaiError {
            retry_after: e.retry_after,
            ..OaiError::new(e.status, "rate_limit_error", e.code, e.message)
        }),
        Err(_) => Err(refuse(StatusCode::UNAUTHORIZED, "the API key is not valid")),
    }
}

/// The models this server routes: routes first, then targets.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = Object)))]
async fn models(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&app, &headers).await {
        return e.into_response();
    }
    let data: Vec<Value> = app
        .router
        .models()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "stonepot"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

#[derive(Deserialize)]
struct Body {
    model: String,
    messages: Vec<Value>,
    #[serde(default)]
    tools: Vec<Value>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<Value>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
}

fn text_of(content: &Value) -> Result<String, OaiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    (kind, _) => {
                        return Err(OaiError::invalid(
                            "messages",
                            format!("content part type {kind:?} is not supported; send text"),
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(OaiError::invalid(
            "messages",
            "content must be a string or an array of parts",
        )),
    }
}

fn message(i: usize, m: &Value) -> Result<Message, OaiError> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some("system" | "developer") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        other => {
            return Err(OaiError::invalid(
                "messages",
                format!(
                    "messages[{i}].role: {other:?} is not system, developer, user, assistant or tool"
                ),
            ));
        }
    };
    let content = text_of(m.get("content").unwrap_or(&Value::Null))?;
    let mut tool_calls = Vec::new();
    if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
        for (j, c) in calls.iter().enumerate() {
            let f = &c["function"];
            match (c["id"].as_str(), f["name"].as_str()) {
                (Some(id), Some(name)) => tool_calls.push(ToolCall {
                    id: id.into(),
                    name: name.into(),
                    arguments: f["arguments"].as_str().unwrap_or("{}").into(),
                }),
                _ => {
                    return Err(OaiError::invalid(
                        "messages",
                        format!("messages[{i}].tool_calls[{j}]: needs id and function.name"),
                    ));
                }
            }
        }
    }
    let tool_call_id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .map(String::from);
    if role == Role::Tool && tool_call_id.is_none() {
        return Err(OaiError::invalid(
            "messages",
            format!("messages[{i}].tool_call_id: required for a tool message"),
        ));
    }
    Ok(Message {
        role,
        content,
        tool_calls,
        tool_call_id,
    })
}

fn tool(i: usize, t: &Value) -> Result<ToolSpec, OaiError> {
    let f = &t["function"];
    if t["type"].as_str() != Some("function") {
        return Err(OaiError::invalid(
            "tools",
            format!("tools[{i}].type: only \"function\" is supported"),
        ));
    }
    let name = f["name"]
        .as_str()
        .filter(|n| !n.is_empty() && n.len() <= 64)
        .ok_or_else(|| {
            OaiError::invalid(
                "tools",
                format!("tools[{i}].function.name: required, at most 64 characters"),
            )
        })?;
    Ok(ToolSpec {
        name: name.into(),
        description: f["description"].as_str().unwrap_or_default().into(),
        parameters: if f["parameters"].is_object() {
            f["parameters"].clone()
        } else {
            json!({"type": "object", "properties": {}})
        },
    })
}

fn parse(raw: &[u8]) -> Result<(Body, ChatRequest), OaiError> {
    let body: Body = serde_json::from_slice(raw).map_err(|e| {
        OaiError::invalid(
            "body",
            format!("the body is not a valid chat completion request: {e}"),
        )
    })?;
    if body.model.trim().is_empty() {
        return Err(OaiError::invalid("model", "model: required"));
    }
    if body.messages.is_empty() {
        return Err(OaiError::invalid(
            "messages",
            "messages: at least one message",
        ));
    }
    if body.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(OaiError::invalid(
            "temperature",
            "temperature: between 0 and 2",
        ));
    }
    let messages = body
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = body
        .tools
        .iter()
        .enumerate()
        .map(|(i, t)| tool(i, t))
        .collect::<Result<Vec<_>, _>>()?;
    let req = ChatRequest {
        model: body.model.clone(),
        messages,
        tools,
        max_tokens: body.max_completion_tokens.or(body.max_tokens),
        temperature: body.temperature,
    };
    Ok((body, req))
}

fn finish_reason(r: Option<&StopReason>) -> &'static str {
    match r {
        Some(StopReason::ToolUse) => "tool_calls",
        Some(StopReason::MaxTokens) => "length",
        Some(StopReason::ContentFilter) => "content_filter",
        _ => "stop",
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
    })
}

/// Chat completions, streamed (`stream: true`, SSE chunks ending in `[DONE]`) or whole.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    request_body(content = Object, description = "an OpenAI chat completion request"),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 400, body = Object), (status = 401, body = Object),
        (status = 404, body = Object), (status = 429, body = Object), (status = 502, body = Object)))]
async fn completions(
    State(app): State<App>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Response {
    match run(app, headers, raw).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(app: App, headers: HeaderMap, raw: axum::body::Bytes) -> Result<Response, OaiError> {
    authorize(&app, &headers).await?;
    let (body, req) = parse(&raw)?;
    let cancel = CancellationToken::new();
    let routed = app
        .router
        .stream(&body.model, None, req, cancel.clone())
        .await
        .map_err(|e| OaiError::from_llm(&e))?;
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = jiff::Timestamp::now().as_second();
    let model = body.model.clone();
    if !body.stream {
        let mut got = Collected::default();
        let mut open = Vec::new();
        let mut events = routed.events;
        while let Some(ev) = events.next().await {
            got.push(&ev.map_err(|e| OaiError::from_llm(&e))?, &mut open);
        }
        let calls: Vec<Value> = got
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        let mut msg = json!({"role": "assistant", "content": if got.text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(got.text.clone()) }});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": finish_reason(got.stop.as_ref())}],
            "usage": usage_json(&got.usage),
        }))
        .into_response());
    }
    let include_usage = body
        .stream_options
        .as_ref()
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    // Dropping the response (client gone) drops `events`, which closes the upstream.
    let guard = cancel.drop_guard();
    let state = (routed.events, chunk, Usage::default(), false, Some(guard));
    let body_stream = futures::stream::unfold(state, move |(mut events, chunk, mut usage, done, guard)| async move {
        if done {
            return None;
        }
        loop {
            let out = match events.next().await {
                None => {
                    let mut out = Vec::new();
                    if include_usage {
                        let mut u = chunk(json!({}), None);
                        u["choices"] = json!([]);
                        u["usage"] = usage_json(&usage);
                        out.push(Event::default().data(u.to_string()));
                    }
                    out.push(Event::default().data("[DONE]"));
                    return Some((out, (events, chunk, usage, true, guard)));
                }
                Some(Err(e)) => {
                    let body = OaiError::from_llm(&e).body();
                    return Some((vec![Event::default().data(body.to_string())], (events, chunk, usage, true, guard)));
                }
                Some(Ok(StreamEvent::TextDelta(t))) => chunk(json!({"content": t}), None),
                Some(Ok(StreamEvent::ToolCallStart { index, id, name })) => chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                ),
                Some(Ok(StreamEvent::ToolCallDelta { index, arguments })) => chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
                    None,
                ),
                Some(Ok(StreamEvent::ToolCallEnd { .. })) => continue,
                Some(Ok(StreamEvent::Usage(u))) => {
                    usage = u;
                    continue;
                }
                Some(Ok(StreamEvent::Done(r))) => chunk(json!({}), Some(finish_reason(Some(&r)))),
            };
            return Some((vec![Event::default().data(out.to_string())], (events, chunk, usage, false, guard)));
        }
    })
    .flat_map(|evs| futures::stream::iter(evs.into_iter().map(Ok::<_, std::convert::Infallible>)));
    let head = futures::stream::once(async move { Ok(Event::default().data(first.to_string())) });
    Ok(Sse::new(head.chain(body_stream)).into_response())
}
