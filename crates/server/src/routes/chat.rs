//! Conversations with the agent: create a session, talk over a WebSocket or SSE, read the
//! transcript. Paths and fields are the original system's public contract.
//!
//! A caller proves it may talk in a conversation with the tenant's API key or with the
//! session's signed token (the one in its display link), so a kiosk or a guest's phone
//! never needs the tenant's key.

use crate::agent::{EngineError, TextProblem};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use crate::routes::conversation::{
    base_url, bearer, display_links, enc, require_staff, session_id,
};
use crate::voice::session::{VoiceOut, VoiceSession};
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use stonepot_agent::turn::TurnEvent;
use stonepot_domain::TenantId;
use stonepot_store::ConversationRecord;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest frame or body a chat client may send.
pub const CHAT_LIMIT: usize = 32 * 1024;
/// Messages a socket may queue behind a running turn.
const QUEUE_MAX: usize = 8;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_session))
        .routes(routes!(post_message))
        .routes(routes!(get_conversation))
        .routes(routes!(chat_socket))
        .layer(axum::extract::DefaultBodyLimit::max(CHAT_LIMIT))
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(_) => ApiError::not_found(e.to_string()),
            EngineError::Invalid(m) => ApiError::unprocessable(m),
            EngineError::OtherTenant(_) => {
                ApiError::new(StatusCode::CONFLICT, "session_conflict", e.to_string())
            }
            EngineError::Store(s) => s.into(),
            EngineError::Display(m) | EngineError::Tool(m) => ApiError::internal(m),
            EngineError::Unavailable(m) => ApiError::unavailable("bus", m),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSession {
    tenant_id: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    language: Option<String>,
    /// Optional: reuse a given id (idempotent for the same tenant).
    #[serde(default)]
    session_id: Option<String>,
}

/// Creates a conversation and its display session; returns a signed display link.
#[utoipa::path(post, path = "/api/restaurant/sessions", tag = "conversations",
    request_body = NewSession,
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object, description = "{sessionId, displayUrl, websocketUrl, token, …}"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_session(
    State(app): State<App>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewSession>,
) -> ApiResult<Json<Value>> {
    let tenant_id = TenantId::new(&body.tenant_id)
        .map_err(|e| ApiError::unprocessable(format!("tenantId: {e}")))?;
    require_staff(&app, &headers, &tenant_id).await?;
    let tenant = app
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| ApiError::unprocessable(format!("tenantId: no tenant '{tenant_id}'")))?;
    let language = body.language.unwrap_or_else(|| "en".into());
    if language.is_empty() || language.len() > 16 {
        return Err(ApiError::unprocessable(
            "language: a language tag like \"en\" or \"en-US\"",
        ));
    }
    if body.user_id.as_ref().is_some_and(|u| u.len() > 128) {
        return Err(ApiError::unprocessable("userId: at most 128 characters"));
    }
    let id = match body.session_id {
        Some(raw) => session_id(&raw)?.to_string(),
        None => format!("conv-{}", uuid::Uuid::now_v7().simple()),
    };
    let conv = app
        .engine
        .create(&id, &tenant, body.user_id.as_deref(), &language)
        .await?;
    Ok(Json(session_body(&app, &headers, &conv)))
}

/// The links a session's clients need.
pub fn session_body(app: &App, headers: &HeaderMap, conv: &ConversationRecord) -> Value {
    let links = display_links(app, headers, &conv.id, &conv.tenant_id, conv.category);
    let token = links["displayToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = base_url(headers);
    let ws_base = base.replacen("http", "ws", 1);
    json!({
        "sessionId": conv.id,
        "tenantId": conv.tenant_id.as_str(),
        "category": conv.category.as_str(),
        "displayUrl": links["displayUrl"],
        "websocketUrl": format!("{ws_base}/ws/restaurant/{}?token={}", enc(&conv.id), enc(&token)),
        "messagesUrl": format!("{base}/api/conversations/{}/messages", enc(&conv.id)),
        "displaySocketUrl": links["websocketUrl"],
        "token": token,
        "tokenExpiresAt": links["tokenExpiresAt"],
    })
}

/// Loads the conversation and checks the caller: the session token (`?token=` or a
/// bearer token) or the tenant's API key.
pub(crate) async fn authorize(
    app: &App,
    raw: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<ConversationRecord> {
    let id = session_id(raw)?;
    let conv = app.engine.conversation(id.as_str()).await?;
    if !guest_token_fits(app, &conv.id, headers, query) {
        require_staff(app, headers, &conv.tenant_id).await?;
    }
    Ok(conv)
}

/// Whether the caller presents a valid session token (`?token=` or a bearer token) for
/// conversation `id`. The token is signed for that id, so it proves access without a
/// read.
fn guest_token_fits(
    app: &App,
    id: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> bool {
    let presented = query
        .get("token")
        .map(String::as_str)
        .or_else(|| bearer(headers));
    presented.is_some_and(|t| {
        crate::display::token::verify(
            app.config.signing_key.expose().as_bytes(),
            t,
            id,
            jiff::Timestamp::now().as_second(),
        )
        .is_ok()
    })
}

/// The path's conversation id once the caller is let in, as [`authorize`] does, but
/// without loading the conversation when a guest's session token proves access (staff
/// keys still need its tenant). For handlers that lock the conversation and read it
/// under the lock anyway: one read per request instead of two.
pub(crate) struct ConversationAccess(pub String);

impl axum::extract::FromRequestParts<App> for ConversationAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App,
    ) -> Result<Self, Self::Rejection> {
        let (raw, q) = path_and_query(parts, app).await?;
        let id = session_id(&raw)?;
        if guest_token_fits(app, id.as_str(), &parts.headers, &q) {
            return Ok(ConversationAccess(id.to_string()));
        }
        let conv = app.engine.conversation(id.as_str()).await?;
        require_staff(app, &parts.headers, &conv.tenant_id).await?;
        Ok(ConversationAccess(conv.id))
    }
}

/// The `{id}` path parameter and the query of a conversation route.
async fn path_and_query(
    parts: &mut axum::http::request::Parts,
    app: &App,
) -> ApiResult<(String, HashMap<String, String>)> {
    use axum::extract::FromRequestParts;
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let raw = params
        .get("id")
        .cloned()
        .ok_or_else(|| ApiError::internal("route has no {id} parameter"))?;
    let Query(q) = Query::<HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    Ok((raw, q))
}

/// The conversation named by the path's `{id}`, after [`authorize`] let the caller in
/// (guest with the session token, or staff of its tenant). An extractor, so routes that
/// take a body check the caller first: one without access learns nothing about the
/// body's shape.
pub(crate) struct Conversation(pub ConversationRecord);

impl axum::extract::FromRequestParts<App> for Conversation {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &App,
    ) -> Result<Self, Self::Rejection> {
        let (raw, q) = path_and_query(parts, app).await?;
        Ok(Conversation(
            authorize(app, &raw, &parts.headers, &q).await?,
        ))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserMessage {
    text: String,
}

/// Sends a guest message; the reply streams back as Server-Sent Events
/// (`assistant_delta`, `tool_call`, `tool_result`, then `assistant_done` or `error`).
/// Closing the stream cancels the turn and its model request.
#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    request_body = UserMessage,
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn post_message(
    State(app): State<App>,
    ConversationAccess(conversation): ConversationAccess,
    JsonBody(msg): JsonBody<UserMessage>,
) -> ApiResult<Response> {
    check_text(&msg.text)?;
    let (tx, rx) = mpsc::channel::<TurnEvent>(64);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let a = app.clone();
    tokio::spawn(
        async move {
            if let Err(e) = a
                .engine
                .run(&a, &conversation, &msg.text, tx.clone(), c)
                .await
            {
                let _ = tx
                    .send(TurnEvent::Error {
                        code: "turn_failed".into(),
                        message: e.to_string(),
                    })
                    .await;
            }
        }
        .in_current_span(),
    );
    // The guard cancels the turn when the response body is dropped (client gone).
    let guard = cancel.drop_guard();
    let events = futures::stream::unfold((rx, Some(guard)), |(mut rx, guard)| async move {
        let ev = rx.recv().await?;
        let out = Event::default()
            .event(ev.kind())
            .data(ev.to_json().to_string());
        Some((Ok::<_, std::convert::Infallible>(out), (rx, guard)))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn check_text(text: &str) -> ApiResult<()> {
    crate::agent::check_text(text).map_err(|p| match p {
        TextProblem::Empty => ApiError::unprocessable(p.to_string()),
        TextProblem::TooLong => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", p.to_string())
        }
    })
}

/// The conversation: its cart and every turn (text, tool calls and results, model,
/// usage, cost, latency).
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_conversation(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let conv = authorize(&app, &raw, &headers, &q).await?;
    Ok(Json(app.engine.transcript(&conv).await?))
}

/// The guest's chat socket: `{"type":"user_text","text":"…"}` in; `assistant_delta`,
/// `tool_call`, `tool_result`, `assistant_done` and `error` out. Voice on the same
/// socket: binary PCM16 mono frames (20 ms, 16 kHz unless `start` announces
/// `sampleRate`) and `start`/`stop`/`playout` events in; `speech_started`,
/// `speech_stopped`, `transcript`, `audio_start`, binary PCM16 reply audio, `audio_end`
/// and `interrupted` out (see `crate::voice`). In relay mode, after `start`, typed
/// messages go to the realtime model too, so speech and text stay one conversation.
#[utoipa::path(get, path = "/ws/restaurant/{id}", tag = "conversations",
    params(("id" = String, Path, description = "conversation id"),
        ("token" = Option<String>, Query, description = "the session's signed token")),
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 101, description = "switching to WebSocket"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn chat_socket(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let conv = authorize(&app, &raw, &headers, &q).await?;
    Ok(upgrade
        .max_message_size(CHAT_LIMIT)
        .on_upgrade(move |socket| serve_socket(app, conv, socket)))
}

fn event_text(ev: &TurnEvent) -> Message {
    Message::Text(ev.to_json().to_string().into())
}

fn error_frame(code: &str, message: impl Into<String>) -> Message {
    event_text(&TurnEvent::Error {
        code: code.into(),
        message: message.into(),
    })
}

/// Parses one client frame into the text of a turn, or the error to send back.
fn parse_frame(text: &str) -> Result<Option<String>, Message> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| error_frame("invalid_json", format!("the frame is not JSON: {e}")))?;
    match v.get("type").and_then(Value::as_str) {
        Some("user_text") => match v.get("text").and_then(Value::as_str) {
            Some(t) => match crate::agent::check_text(t) {
                Ok(()) => Ok(Some(t.to_string())),
                Err(p @ TextProblem::Empty) => Err(error_frame("invalid_message", p.to_string())),
                Err(p @ TextProblem::TooLong) => Err(error_frame("too_large", p.to_string())),
            },
            None => Err(error_frame("invalid_message", "text: required string")),
        },
        Some("ping") => Ok(None),
        Some(other) => Err(error_frame(
            "unknown_type",
            format!("unknown message type '{other}'; send user_text, start, stop or playout"),
        )),
        None => Err(error_frame("invalid_message", "type: required string")),
    }
}

async fn serve_socket(app: App, conv: ConversationRecord, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::channel::<TurnEvent>(64);
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut running: Option<(CancellationToken, tokio::task::JoinHandle<()>)> = None;
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let (voice_tx, mut voice_rx) = mpsc::channel::<VoiceOut>(256);
    let mut voice = VoiceSession::new(app.clone(), conv.clone(), voice_tx);
    // Keepalive as on display sockets: a ping every 10 s, a peer silent for 30 s is gone.
    let mut last_heard = std::time::Instant::now();
    let mut ping = tokio::time::interval(crate::display::ws::PING_EVERY);
    ping.tick().await;
    let _ = socket
        .send(Message::Text(
            json!({"type": "ready", "sessionId": conv.id, "offline": !app.engine.has_model()})
                .to_string()
                .into(),
        ))
        .await;
    loop {
        if running.is_none()
            && let Some(text) = queue.pop_front()
        {
            let cancel = CancellationToken::new();
            let (a, conv, tx, c, done) = (
                app.clone(),
                conv.clone(),
                tx.clone(),
                cancel.clone(),
                done_tx.clone(),
            );
            let task = tokio::spawn(
                async move {
                    if let Err(e) = a.engine.run(&a, &conv.id, &text, tx.clone(), c).await {
                        let _ = tx
                            .send(TurnEvent::Error {
                                code: "turn_failed".into(),
                                message: e.to_string(),
                            })
                            .await;
                    }
                    let _ = done.send(()).await;
                }
                .in_current_span(),
            );
            running = Some((cancel, task));
        }
        tokio::select! {
            _ = ping.tick() => {
                if last_heard.elapsed() > crate::display::ws::DEAD_AFTER {
                    tracing::info!(conversation = %conv.id, "dropping a silent chat socket");
                    break;
                }
                let sent = tokio::time::timeout(
                    crate::display::ws::SEND_TIMEOUT,
                    socket.send(Message::Ping(Default::default())),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let sent = tokio::time::timeout(
                    crate::display::ws::SEND_TIMEOUT,
                    socket.send(event_text(&ev)),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            Some(()) = done_rx.recv() => {
                running = None;
            }
            Some(out) = voice_rx.recv() => {
                let Some(m) = voice.outbound(out) else { continue };
                let sent = tokio::time::timeout(crate::display::ws::SEND_TIMEOUT, socket.send(m)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            msg = socket.recv() => {
                last_heard = std::time::Instant::now();
                let replies = match msg {
                    Some(Ok(Message::Text(t))) => match voice_event(t.as_str()) {
                        Some(v) => voice.on_event(&v).await,
                        None => match parse_frame(t.as_str()) {
                            // A realtime model holds the conversation: it answers typing too.
                            Ok(Some(text)) if voice.relaying() => voice.relay_text(text),
                            parsed => reply_to_text(parsed, &mut queue).into_iter().collect(),
                        },
                    },
                    Some(Ok(Message::Binary(b))) => voice.on_audio(&b),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => Vec::new(),
                };
                let mut end = false;
                for r in replies {
                    // A close (an audio flood) ends the session after it is sent.
                    end = matches!(r, Message::Close(_));
                    if socket.send(r).await.is_err() || end {
                        end = true;
                        break;
                    }
                }
                if end {
                    break;
                }
            }
        }
    }
    voice.close().await;
    // The guest left: stop the running turn (and its model request); queued ones never start.
    if let Some((cancel, task)) = running {
        cancel.cancel();
        let _ = task.await;
    }
}

/// The frame as JSON when it is a voice event (`start`, `stop`, `playout`).
fn voice_event(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    let kind = v.get("type")?.as_str()?;
    VoiceSession::handles(kind).then_some(v)
}

/// Queues a parsed text message, or says why not.
fn reply_to_text(
    parsed: Result<Option<String>, Message>,
    queue: &mut VecDeque<String>,
) -> Option<Message> {
    match parsed {
        Ok(Some(_)) if queue.len() >= QUEUE_MAX => Some(error_frame(
            "busy",
            "too many messages waiting; wait for the reply",
        )),
        Ok(Some(text)) => {
            queue.push_back(text);
            None
        }
        Ok(None) => Some(Message::Text(r#"{"type":"pong"}"#.into())),
        Err(frame) => Some(frame),
    }
}
