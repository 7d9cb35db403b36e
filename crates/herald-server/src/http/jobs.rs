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
