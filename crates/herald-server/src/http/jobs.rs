//! `/v1/jobs/{queue}`: submit, status (short or long poll), progress, complete, fail.

use super::body::read_body;
use super::{ApiError, Caller, query::Query};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_core::Publish;
use herald_core::jobs::{JobDoc, json_or_text};
use herald_proto::ErrorCode;
use serde_json::Value;

fn status_url(queue: &str, id: &str) -> String {
    format!("/v1/jobs/{queue}/{id}")
}

/// `POST /v1/jobs/{queue}`: body = task; `Herald-Callback: <url>` for a signed callback
/// when it finishes → 202 `{"id","status":"queued","status_url","callback_secret"?}`.
#[utoipa::path(
    post, path = "/v1/jobs/{queue}", operation_id = "submit_job", tag = "jobs",
    params(
        super::openapi::QueueParam,
        ("Herald-Callback" = Option<String>, Header, description = "A URL to POST the finished job document to, signed like a webhook.", format = "uri"),
        ("Herald-Event" = Option<String>, Header, description = "The task's event type.", pattern = r"^[A-Za-z0-9_.:/-]{1,64}$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Submits at most once per key within the dedup window: 1–256 visible ASCII characters.", pattern = r"^[!-~]{1,256}$"),
    ),
    request_body(
        description = "The task, kept with its `Content-Type`.",
        content(
            (Option<serde_json::Value> = "application/json"),
            (Option<String> = "text/plain"),
            ("application/octet-stream"),
        ),
    ),
    responses(
        (status = 202, description = "Queued.", body = super::openapi::JobSubmitted,
            headers(("Location" = String, description = "The job's status URL."))),
        (status = 400, description = "Invalid queue, callback, event, idempotency key, content type or JSON payload.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The task is over `limits.max_payload_bytes`.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let data = read_body(&headers, body, st.hub.options().max_payload_bytes).await?;
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::to_owned))
            .transpose()
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("{name} is not visible ASCII"),
                )
            })
    };
    let callback = text("herald-callback")?;
    if let Some(url) = &callback {
        st.webhooks.check_destination(url).await?;
    }
    let task = Publish {
        topic: None,
        event: text("herald-event")?,
        content_type: text("content-type")?,
        headers: Vec::new(),
        data,
        idempotency_key: text("idempotency-key")?,
    };
    let submitted = st.hub.submit_job(&caller, &queue, task, callback).await?;
    let url = status_url(&queue, &submitted.doc.id);
    let mut body = serde_json::json!({
        "id": submitted.doc.id,
        "status": submitted.doc.status,
        "status_url": url,
    });
    if let Some(secret) = submitted.callback_secret {
        body["callback_secret"] = Value::String(secret);
    }
    let mut res = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// `GET /v1/jobs/{queue}/{id}?wait=N`: the job document; with `wait`, held until the
/// job finishes or the wait ends.
#[utoipa::path(
    get, path = "/v1/jobs/{queue}/{id}", operation_id = "job_status", tag = "jobs",
    params(super::openapi::JobParams, super::openapi::JobWaitQuery),
    responses(
        (status = 200, description = "The job document.", body = herald_proto::JobDoc),
        (status = 400, description = "Invalid queue or wait.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn status(
    State(st): State<AppState>,
    caller: Caller,
    Path((queue, id)): Path<(String, String)>,
    q: Query,
) -> Result<Json<JobDoc>, ApiError> {
    let wait = st.hub.check_wait(q.get("wait"))?;
    Ok(Json(st.hub.job(&caller, &queue, &id, wait).await?))
}

async fn value(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(headers, body, 1024 * 1024).await?;
    Ok(if bytes.is_empty() {
        Value::Null
    } else {
        json_or_text(&bytes)
    })
}

/// `POST /v1/jobs/{queue}/{id}/progress` `{…}`
#[utoipa::path(
    post, path = "/v1/jobs/{queue}/{id}/progress", operation_id = "job_progress", tag = "jobs",
    params(super::openapi::JobParams),
    request_body(
        description = "Reports progress (any JSON, or text); the job is `running`.",
        content(
            (Option<serde_json::Value> = "application/json"),
            (Option<String> = "text/plain"),
        ),
    ),
    responses(
        (status = 200, description = "The job document.", body = herald_proto::JobDoc),
        (status = 400, description = "Invalid queue.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is already finished.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn progress(
    State(st): State<AppState>,
    caller: Caller,
    Path((queue, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<JobDoc>, ApiError> {
    let v = value(&headers, body).await?;
    Ok(Json(st.hub.job_progress(&caller, &queue, &id, v).await?))
}

/// `POST /v1/jobs/{queue}/{id}/complete` `{…result…}`
#[utoipa::path(
    post, path = "/v1/jobs/{queue}/{id}/complete", operation_id = "job_complete", tag = "jobs",
    params(super::openapi::JobParams),
    request_body(
        description = "Completes the job with this result (any JSON, or text): `succeeded`.",
        content(
            (Option<serde_json::Value> = "application/json"),
            (Option<String> = "text/plain"),
        ),
    ),
    responses(
        (status = 200, description = "The job document.", body = herald_proto::JobDoc),
        (status = 400, description = "Invalid queue.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is already finished.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn complete(
    State(st): State<AppState>,
    caller: Caller,
    Path((queue, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<JobDoc>, ApiError> {
    let v = value(&headers, body).await?;
    Ok(Json(st.hub.finish_job(&caller, &queue, &id, Ok(v)).await?))
}

/// `POST /v1/jobs/{queue}/{id}/fail` `{…error…}`: failed for good (no retry).
#[utoipa::path(
    post, path = "/v1/jobs/{queue}/{id}/fail", operation_id = "job_fail", tag = "jobs",
    params(super::openapi::JobParams),
    request_body(
        description = "Fails the job for good with this error (any JSON, or text): `failed`.",
        content(
            (Option<serde_json::Value> = "application/json"),
            (Option<String> = "text/plain"),
        ),
    ),
    responses(
        (status = 200, description = "The job document.", body = herald_proto::JobDoc),
        (status = 400, description = "Invalid queue.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is already finished.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn fail(
    State(st): State<AppState>,
    caller: Caller,
    Path((queue, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<JobDoc>, ApiError> {
    let v = value(&headers, body).await?;
    let v = if v.is_null() {
        Value::String("failed".into())
    } else {
        v
    };
    Ok(Json(st.hub.finish_job(&caller, &queue, &id, Err(v)).await?))
}
