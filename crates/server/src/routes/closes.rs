//! The daily close over HTTP (tenant key): read a closed day (JSON, the exact report
//! bytes, or CSV), run a close now, and read or change the close settings.

use crate::app::App;
use crate::auth::access::OperatorOf;
use crate::close::{CloseFailure, object_path};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::json::Json as JsonBody;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stonepot_domain::TenantId;
use stonepot_domain::commerce::close::CloseSettings;
use stonepot_domain::commerce::close::day::parse_date;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_close, run_close))
        .routes(routes!(get_settings, put_settings))
}

impl From<CloseFailure> for ApiError {
    fn from(e: CloseFailure) -> Self {
        match e {
            CloseFailure::BadInput(d) => ApiError::unprocessable(d.to_string()),
            CloseFailure::UnknownTenant(_) => ApiError::not_found(e.to_string()),
            CloseFailure::Future { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "future_date",
                e.to_string(),
            ),
            CloseFailure::BeforeTenant { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "before_tenant",
                e.to_string(),
            ),
            CloseFailure::Busy { .. } => {
                ApiError::new(StatusCode::CONFLICT, "close_running", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

/// The two path parameters, the date checked.
fn day(ids: &(String, String)) -> ApiResult<String> {
    let date = parse_date(&ids.1).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    Ok(date.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseQuery {
    format: Option<String>,
    revision: Option<u32>,
}

/// A closed day: by default the latest revision's report with every revision listed;
/// `?format=json` is the report's exact bytes, `?format=csv` its CSV; `?revision=N`
/// picks an earlier revision. 404 when the day was never closed.
#[utoipa::path(get, path = "/api/tenants/{tenant}/closes/{date}", tag = "closes",
    params(("tenant" = String, Path, description = "tenant id"),
        ("date" = String, Path, description = "business date, YYYY-MM-DD"),
        ("format" = Option<String>, Query, description = "`json` (the report bytes) or `csv`"),
        ("revision" = Option<u32>, Query, description = "a revision (default: the latest)")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_close(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
    Path(ids): Path<(String, String)>,
    Query(q): Query<CloseQuery>,
) -> ApiResult<Response> {
    let date = day(&ids)?;
    let record = app
        .store
        .close_record(&tenant, &date, q.revision)
        .await?
        .ok_or_else(|| match q.revision {
            Some(r) => ApiError::not_found(format!(
                "{tenant} has no revision {r} of the close of {date}"
            )),
            None => ApiError::not_found(format!("{tenant} has not closed {date}")),
        })?;
    let etag = format!("\"{}\"", record.sha256);
    match q.format.as_deref() {
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::ETAG, etag),
            ],
            record.csv,
        )
            .into_response()),
        Some("json") => Ok((
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::ETAG, etag),
            ],
            record.report,
        )
            .into_response()),
        None => {
            let revisions = app.store.close_revisions(&tenant, &date).await?;
            let report: Value = serde_json::from_str(&record.report)
                .map_err(|e| ApiError::internal(format!("stored close report: {e}")))?;
            Ok((
                [(header::ETAG, etag)],
                Json(json!({
                    "tenant": tenant.as_str(),
                    "businessDate": date,
                    "revision": record.revision,
                    "sha256": record.sha256,
                    "createdAt": stonepot_domain::UnixMs(record.created_at).to_rfc3339(),
                    "objects": {
                        "json": object_path(&tenant, &date, record.revision, "json"),
                        "csv": object_path(&tenant, &date, record.revision, "csv"),
                    },
                    "revisions": revisions.iter().map(|r| json!({
                        "revision": r.revision,
                        "sha256": r.sha256,
                        "createdAt": stonepot_domain::UnixMs(r.created_at).to_rfc3339(),
                    })).collect::<Vec<_>>(),
                    "report": report,
                })),
            )
                .into_response())
        }
        Some(other) => Err(ApiError::unprocessable(format!(
            "format: '{other}' is not json or csv"
        ))),
    }
}

/// Closes the business day now: the first close stores revision 0; a re-run with the
/// same figures returns the stored revision byte for byte (`outcome: unchanged`); any
/// change is stored as the next revision (`amended`), never over an earlier one. A day
/// that has not started, or that ended before the tenant existed, is 422.
#[utoipa::path(post, path = "/api/tenants/{tenant}/closes/{date}", tag = "closes",
    params(("tenant" = String, Path, description = "tenant id"),
        ("date" = String, Path, description = "business date, YYYY-MM-DD")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn run_close(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
    Path(ids): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let date = day(&ids)?;
    let run = app.closer.run(&tenant, &date, true).await?;
    Ok(Json(run.body()))
}

/// New close settings.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseSettingsRequest {
    /// When the business day ends (and the next begins), local `HH:MM` (or `HH:MM:SS`).
    day_end: String,
    /// IANA time zone of `dayEnd` and `cron`, e.g. `America/New_York`.
    time_zone: String,
    /// When the scheduled close runs, in `timeZone`: cron with optional seconds,
    /// e.g. `0 5 16 * * *` (16:05:00 every day).
    cron: String,
}

/// A tenant's close settings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloseSettingsResponse {
    /// Local `HH:MM` (or `HH:MM:SS`) at which a business day ends and the next begins.
    day_end: String,
    /// IANA time zone of `dayEnd` and `cron`.
    time_zone: String,
    /// When the scheduled close runs, in `timeZone`.
    cron: String,
    /// The next scheduled run, RFC 3339 in UTC (none when the pattern never fires again).
    next_run: Option<String>,
}

fn settings_body(s: &CloseSettings) -> CloseSettingsResponse {
    CloseSettingsResponse {
        day_end: s.day_end(),
        time_zone: s.time_zone().to_string(),
        cron: s.cron().to_string(),
        next_run: s
            .next_run_after(jiff::Timestamp::now())
            .map(|t| t.to_string()),
    }
}

async fn known_tenant(app: &App, tenant: &TenantId) -> ApiResult<()> {
    app.tenant(tenant).await.map(|_| ())
}

/// The tenant's close settings (the defaults — 16:00 UTC, closed at 16:05 — until set).
#[utoipa::path(get, path = "/api/tenants/{tenant}/close-settings", tag = "closes",
    params(("tenant" = String, Path, description = "tenant id")),
    security(("bearer" = ["operator"])),
    responses((status = 200, body = CloseSettingsResponse), (status = 401, body = ErrorBody)))]
async fn get_settings(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
) -> ApiResult<Json<CloseSettingsResponse>> {
    known_tenant(&app, &tenant).await?;
    Ok(Json(settings_body(&app.closer.settings(&tenant).await?)))
}

/// Sets the tenant's close settings; a bad time, time zone or cron pattern is 422
/// naming the field. Days already closed keep their reports; re-running one under new
/// settings stores an amendment.
#[utoipa::path(put, path = "/api/tenants/{tenant}/close-settings", tag = "closes",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = CloseSettingsRequest,
    security(("bearer" = ["operator"])),
    responses((status = 200, body = CloseSettingsResponse), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn put_settings(
    State(app): State<App>,
    OperatorOf(tenant, _): OperatorOf,
    JsonBody(body): JsonBody<CloseSettingsRequest>,
) -> ApiResult<Json<CloseSettingsResponse>> {
    known_tenant(&app, &tenant).await?;
    let settings = CloseSettings::new(&body.day_end, &body.time_zone, &body.cron)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    app.store.set_close_settings(&tenant, &settings).await?;
    Ok(Json(settings_body(&settings)))
}
