//! `/v1/webhooks`: endpoints, their delivery log, replay and test.

use super::{ApiError, Caller, query::Query};
use crate::state::AppState;
use crate::webhooks::CreateWebhook;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_proto::ErrorCode;
use serde_json::Value;

/// `POST /v1/webhooks` `{"pattern","url","after?","secret?","max_attempts?"}` → 201
/// `{"id","secret",…}`.
#[utoipa::path(
    post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    request_body(content = super::openapi::CreateWebhook),
    responses(
        (status = 201, description = "The endpoint, with its signing secret.", body = super::openapi::Webhook),
        (status = 400, description = "Invalid pattern, URL, destination, cursor, secret or attempts, or a body that is not the JSON object described.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = super::body::read_body(&headers, body, 64 * 1024).await?;
    let req: CreateWebhook = super::body::json_settings(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "expected {{\"pattern\",\"url\",\"after\"?,\"secret\"?,\"max_attempts\"?}}: {e}"
            ),
        )
    })?;
    let rec = st.webhooks.create(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(st.webhooks.view(&rec, true))).into_response())
}

/// `GET /v1/webhooks`
#[utoipa::path(
    get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    responses((status = 200, description = "The caller's endpoints (without secrets).", body = super::openapi::Webhooks)),
)]
pub async fn list(State(st): State<AppState>, caller: Caller) -> Json<Value> {
    Json(serde_json::json!({ "webhooks": st.webhooks.list(&caller) }))
}

/// `GET /v1/webhooks/{id}`
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    params(super::openapi::WebhookParam),
    responses(
        (status = 200, description = "The endpoint (without its secret).", body = super::openapi::Webhook),
        (status = 404, description = "No such endpoint.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(st.webhooks.get(&caller, &id)?))
}

/// `DELETE /v1/webhooks/{id}` → 204.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    params(super::openapi::WebhookParam),
    responses(
        (status = 204, description = "Removed; its deliveries stop."),
        (status = 404, description = "No such endpoint.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.webhooks.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/webhooks/{id}/deliveries?limit=` → the latest attempts, newest first.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", operation_id = "webhook_deliveries", tag = "webhooks",
    params(super::openapi::WebhookParam, super::openapi::LimitQuery),
    responses(
        (status = 200, description = "The latest attempts, newest first.", body = super::openapi::Deliveries),
        (status = 400, description = "Invalid limit.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn deliveries(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Query,
) -> Result<Json<Value>, ApiError> {
    let limit = herald_core::Hub::check_limit(q.get("limit"))?;
    let list = st.webhooks.deliveries(&caller, &id, limit).await?;
    Ok(Json(serde_json::json!({ "deliveries": list })))
}

/// `POST /v1/webhooks/{id}/replay?after=` → redelivers from `after` (default `earliest`).
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/replay", operation_id = "replay_webhook", tag = "webhooks",
    params(super::openapi::WebhookParam, super::openapi::ReplayQuery),
    responses(
        (status = 200, description = "The endpoint, re-enabled and delivering from `after`.", body = super::openapi::Webhook),
        (status = 400, description = "Invalid cursor.", body = herald_proto::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn replay(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Query,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        st.webhooks
            .replay(&caller, &id, q.get("after").unwrap_or("earliest"))
            .await?,
    ))
}

/// `POST /v1/webhooks/{id}/test` → sends a test event now and answers the attempt.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks",
    params(super::openapi::WebhookParam),
    responses(
        (status = 200, description = "The attempt: a signed test event sent now.", body = super::openapi::DeliveryAttempt),
        (status = 404, description = "No such endpoint.", body = herald_proto::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn test(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(st.webhooks.test(&caller, &id).await?))
}
