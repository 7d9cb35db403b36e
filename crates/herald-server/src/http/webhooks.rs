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
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: CreateWebhook = serde_json::from_slice(&body).map_err(|e| {
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
pub async fn list(State(st): State<AppState>, caller: Caller) -> Json<Value> {
    Json(serde_json::json!({ "webhooks": st.webhooks.list(&caller) }))
}

/// `GET /v1/webhooks/{id}`
pub async fn get(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(st.webhooks.get(&caller, &id)?))
}

/// `DELETE /v1/webhooks/{id}` → 204.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.webhooks.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/webhooks/{id}/deliveries?limit=` → the latest attempts, newest first.
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
pub async fn test(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(st.webhooks.test(&caller, &id).await?))
}
