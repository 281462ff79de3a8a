//! The display hub's public contract: `/conversation/{id}/init|update|state|display|events`
//! and the original system's alias `POST /api/restaurant/sessions/{id}/display`.

use crate::app::App;
use crate::display::feed::{Feed, FeedError};
use crate::display::hub::UpdateCommand;
use crate::display::token::{self, Claims};
use crate::display::{HubError, sse, ws};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use stonepot_domain::{Category, SessionId, TenantId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest display update body.
pub const UPDATE_LIMIT: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(init))
        .routes(routes!(update))
        .routes(routes!(update_alias))
        .routes(routes!(state))
        .routes(routes!(events))
        .routes(routes!(display_socket))
        .layer(DefaultBodyLimit::max(UPDATE_LIMIT))
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::NotFound(_) => ApiError::not_found(e.to_string()),
            HubError::NotInitialized(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_initialized", e.to_string())
            }
            HubError::OtherTenant { .. } => {
                ApiError::new(StatusCode::CONFLICT, "session_conflict", e.to_string())
            }
            HubError::UnknownTenant(_) => ApiError::unprocessable(e.to_string()),
            HubError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_component", m)
            }
            HubError::Busy(_) => ApiError::new(StatusCode::CONFLICT, "busy", e.to_string()),
            HubError::Store(s) => ApiError::from(s),
            HubError::Unavailable(m) => ApiError::unavailable("bus", m),
        }
    }
}

pub(crate) fn session_id(raw: &str) -> ApiResult<SessionId> {
    SessionId::new(raw).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

/// Staff (or more) of `tenant`: a staff or operator key or JWT of the tenant, an
/// admin JWT or the admin token. Integrations driving sessions and displays use it.
pub(crate) async fn require_staff(
    app: &App,
    headers: &HeaderMap,
    tenant: &TenantId,
) -> ApiResult<()> {
    crate::auth::access::require(app, headers, tenant, crate::auth::Role::Staff).await?;
    Ok(())
}

fn verify_token(app: &App, token: Option<&String>, session: &str) -> ApiResult<Claims> {
    let t = token.ok_or_else(|| ApiError::unauthorized("a display token is required (?token=)"))?;
    token::verify(
        app.config.signing_key.expose().as_bytes(),
        t,
        session,
        jiff::Timestamp::now().as_second(),
    )
    .map_err(|e| ApiError::unauthorized(e.to_string()))
}

/// The origin the client used (`http(s)://host`), for absolute links.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// Percent-encodes a query or path value.
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Builds the signed display links for a session.
pub fn display_links(
    app: &App,
    headers: &HeaderMap,
    id: &str,
    tenant: &TenantId,
    category: Category,
) -> Value {
    let exp = jiff::Timestamp::now().as_second() + app.config.display_token_ttl.as_secs() as i64;
    let tok = token::sign(
        app.config.signing_key.expose().as_bytes(),
        &Claims {
            s: id.to_string(),
            t: tenant.to_string(),
            e: exp,
        },
    );
    let base = base_url(headers);
    let ws_base = base.replacen("http", "ws", 1);
    json!({
        "displayToken": tok,
        "displayUrl": format!("{base}/ui/conversation?session={}&tenant={}&category={}&token={}",
            enc(id), enc(tenant.as_str()), category.as_str(), enc(&tok)),
        "websocketUrl": format!("{ws_base}/conversation/{}/display?token={}", enc(id), enc(&tok)),
        "eventsUrl": format!("{base}/conversation/{}/events?token={}", enc(id), enc(&tok)),
        "tokenExpiresAt": jiff::Timestamp::from_second(exp).map(|t| t.to_string()).unwrap_or_default(),
    })
}

/// Creates the display session (idempotent for the same tenant) and returns signed links.
#[utoipa::path(post, path = "/conversation/{id}/init", tag = "display",
    params(("id" = String, Path, description = "conversation/session id")),
    request_body(content = Object, description = "{\"tenantId\",\"category\", …any init fields}"),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn init(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let id = session_id(&raw)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::unprocessable("the body must be a JSON object"))?;
    let tenant_raw = obj
        .get("tenantId")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::unprocessable("tenantId: required string"))?;
    let tenant_id =
        TenantId::new(tenant_raw).map_err(|e| ApiError::unprocessable(format!("tenantId: {e}")))?;
    require_staff(&app, &headers, &tenant_id).await?;
    let tenant = app
        .store
        .tenant(&tenant_id)
        .await?
        .ok_or_else(|| ApiError::unprocessable(format!("tenantId: no tenant '{tenant_id}'")))?;
    let category = match obj.get("category") {
        None | Some(Value::Null) => tenant.category,
        Some(Value::String(c)) => Category::parse(c).ok_or_else(|| {
            ApiError::unprocessable(format!("category: '{c}' is not restaurant or financial"))
        })?,
        Some(_) => return Err(ApiError::unprocessable("category: must be a string")),
    };
    if category != tenant.category {
        return Err(ApiError::unprocessable(format!(
            "category: tenant '{tenant_id}' is a {} tenant",
            tenant.category.as_str()
        )));
    }
    let (rec, created) = app
        .hub
        .init(id.as_str(), &tenant_id, category, &body)
        .await?;
    let mut out = json!({
        "sessionId": rec.id,
        "tenantId": rec.tenant_id,
        "category": rec.category.as_str(),
        "seq": rec.seq,
        "created": created,
    });
    if let (Some(o), Value::Object(links)) = (
        out.as_object_mut(),
        display_links(&app, &headers, id.as_str(), &rec.tenant_id, rec.category),
    ) {
        o.extend(links);
    }
    Ok(Json(out))
}

fn parse_update(body: Value) -> ApiResult<UpdateCommand> {
    let Value::Object(mut o) = body else {
        return Err(ApiError::unprocessable("the body must be a JSON object"));
    };
    let key = match o.remove("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 128 => Some(k),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "key: must be a non-empty string of at most 128 characters",
            ));
        }
    };
    if let Some(op) = o.remove("op") {
        return match (op.as_str(), key) {
            (Some("remove"), Some(key)) => Ok(UpdateCommand::Remove { key }),
            (Some("remove"), None) => Err(ApiError::unprocessable("key: required to remove")),
            _ => Err(ApiError::unprocessable("op: the only op is \"remove\"")),
        };
    }
    let kind = match o.remove("type") {
        Some(Value::String(t)) => t,
        _ => return Err(ApiError::unprocessable("type: required string")),
    };
    let data = match o.remove("data") {
        Some(d @ Value::Object(_)) => d,
        _ => return Err(ApiError::unprocessable("data: required object")),
    };
    if let Some(extra) = o.keys().next() {
        return Err(ApiError::unprocessable(format!("{extra}: unknown field")));
    }
    Ok(UpdateCommand::Put { kind, data, key })
}

async fn do_update(
    app: &App,
    raw: &str,
    headers: &HeaderMap,
    body: Value,
) -> ApiResult<Json<Value>> {
    let id = session_id(raw)?;
    let tenant = app
        .hub
        .tenant_of(id.as_str())
        .await?
        .ok_or_else(|| HubError::NotInitialized(id.to_string()))?;
    require_staff(app, headers, &tenant).await?;
    let cmd = parse_update(body)?;
    let seq = app.hub.update(id.as_str(), cmd).await?;
    Ok(Json(json!({ "seq": seq })))
}

/// Appends one display update; durable before the response and before any socket sees it.
#[utoipa::path(post, path = "/conversation/{id}/update", tag = "display",
    params(("id" = String, Path, description = "session id")),
    request_body(content = Object, description = "{\"type\",\"data\",\"key\"?} or {\"op\":\"remove\",\"key\"}"),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object, description = "{\"seq\": N}"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    do_update(&app, &raw, &headers, body).await
}

/// The original system's path for the same update.
#[utoipa::path(post, path = "/api/restaurant/sessions/{id}/display", tag = "display",
    params(("id" = String, Path, description = "session id")),
    request_body(content = Object),
    security(("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_alias(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    do_update(&app, &raw, &headers, body).await
}

/// Init fields, current components, the last updates, seq, connected displays.
#[utoipa::path(get, path = "/conversation/{id}/state", tag = "display",
    params(("id" = String, Path, description = "session id")),
    security(("session_token" = ["guest"]), ("bearer" = ["staff"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn state(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let id = session_id(&raw)?;
    let tenant = app
        .hub
        .tenant_of(id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session '{id}'")))?;
    if q.contains_key("token") {
        verify_token(&app, q.get("token"), id.as_str())?;
    } else {
        require_staff(&app, &headers, &tenant).await?;
    }
    let v = app
        .hub
        .state(id.as_str(), 50)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session '{id}'")))?;
    Ok(Json(v))
}

fn parse_since(v: Option<&str>) -> ApiResult<Option<u64>> {
    match v {
        None => Ok(None),
        Some(s) => s.trim().parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(
                "invalid_since",
                format!("since: '{s}' is not a sequence number"),
            )
        }),
    }
}

/// The display stream as Server-Sent Events (resumable with `Last-Event-ID`).
#[utoipa::path(get, path = "/conversation/{id}/events", tag = "display",
    params(("id" = String, Path, description = "session id"),
        ("token" = String, Query, description = "signed display token"),
        ("since" = Option<u64>, Query, description = "resume after this seq")),
    security(("session_token" = ["guest"])),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn events(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = session_id(&raw)?;
    verify_token(&app, q.get("token"), id.as_str())?;
    let last_event = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let since = parse_since(last_event.or(q.get("since").map(String::as_str)))?;
    match Feed::open(&app.hub, id.as_str(), "sse", since).await {
        Ok((feed, initial)) => Ok(sse::stream(feed, initial).into_response()),
        Err(FeedError::NotFound(_)) => Err(ApiError::not_found(format!("no session '{id}'"))),
        Err(e @ FeedError::SinceAhead { .. }) => {
            Err(ApiError::bad_request("invalid_since", e.to_string()))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The display WebSocket: a snapshot (or the missed updates), then each update.
#[utoipa::path(get, path = "/conversation/{id}/display", tag = "display",
    params(("id" = String, Path, description = "session id"),
        ("token" = String, Query, description = "signed display token"),
        ("since" = Option<u64>, Query, description = "resume after this seq")),
    security(("session_token" = ["guest"])),
    responses((status = 101, description = "switching to WebSocket"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn display_socket(
    State(app): State<App>,
    Path(raw): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let id = session_id(&raw)?;
    let since = parse_since(q.get("since").map(String::as_str))?;
    let verdict = verify_token(&app, q.get("token"), id.as_str());
    let hub = app.hub.clone();
    // Small per-socket buffers: displays send tiny acks and receive modest frames, and
    // thousands of idle sockets should cost kilobytes each, not the 128 KiB defaults.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            match verdict {
                Ok(_) => ws::serve(hub, id.to_string(), since, socket).await,
                Err(e) => ws::close(socket, 4401, &e.message).await,
            }
        }))
}
