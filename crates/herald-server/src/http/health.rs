//! Liveness and readiness.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "The process is up.", body = super::openapi::Health)),
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the server accepts work (503 while shutting down).
#[utoipa::path(
    get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "The server accepts work.", body = super::openapi::Readiness),
        (status = 503, description = "The server is shutting down.", body = super::openapi::Readiness),
    ),
)]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    if st.hub.is_shutting_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "latest": st.hub.latest().to_string()})),
        )
    }
}
