//! Prometheus metrics: `GET /metrics` and the helpers the doors call.
//!
//! Metrics are process-wide (the `metrics` facade has one global recorder), so every
//! server in a process shares one recorder and one set of series. The recorder is
//! installed by the first server that starts with `[metrics] enabled = true`; until then
//! (or when another recorder was installed first) recording does nothing.

use crate::http::ApiError;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_proto::ErrorCode;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Connections accepted, by `protocol` (`http1`, `http2`) and `tls` (`true`, `false`).
pub const CONNECTIONS_ACCEPTED: &str = "herald_connections_accepted_total";
/// Connections open now (including upgraded WebSockets), by `protocol` and `tls`.
pub const CONNECTIONS_OPEN: &str = "herald_connections_open";
/// Requests or connections refused by a limit, by `limit`.
pub const LIMIT_REJECTIONS: &str = "herald_limit_rejections_total";

/// Requests refused for access or a limit, by stable error `code` (`unauthorized`,
/// `forbidden`, `rate_limited`, `limit_reached`, `payload_too_large`) and `door`
/// (`http`, `ws`, `grpc`).
pub const REFUSALS: &str = "herald_refusals_total";

/// `limit` label: a connection over `limits.max_connections_per_ip`.
pub const LIMIT_CONNECTIONS_PER_IP: &str = "connections_per_ip";
/// `limit` label: a request head (or TLS handshake, or HTTP/2 preface) that did not
/// arrive within `limits.header_read_timeout_seconds`.
pub const LIMIT_HEADER_READ_TIMEOUT: &str = "header_read_timeout";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs herald's Prometheus recorder as the process's recorder (once; later calls
/// return the same handle). `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed; /metrics is unavailable");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        CONNECTIONS_ACCEPTED,
        "Connections accepted, by protocol and TLS."
    );
    metrics::describe_gauge!(
        CONNECTIONS_OPEN,
        "Connections open now (including upgraded WebSockets), by protocol and TLS."
    );
    metrics::describe_counter!(
        REFUSALS,
        "Requests refused for access or a limit, by error code and door."
    );
    metrics::describe_counter!(
        LIMIT_REJECTIONS,
        "Requests or connections refused by a limit, by limit."
    );
}

/// Counts one request or connection refused by `limit` (for example
/// `"connections_per_ip"`, `"header_read_timeout"`, `"rate"`, `"body_size"`).
pub fn rejected(limit: &'static str) {
    metrics::counter!(LIMIT_REJECTIONS, "limit" => limit).increment(1);
}

/// Counts an error answer at `door` when it is an access or limit refusal.
pub fn refused(code: ErrorCode, door: &'static str) {
    if matches!(
        code,
        ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::RateLimited
            | ErrorCode::LimitReached
            | ErrorCode::PayloadTooLarge
    ) {
        metrics::counter!(REFUSALS, "code" => code.as_str(), "door" => door).increment(1);
    }
}

/// The `GET /metrics` route, to be merged into the server's router. With `[auth]`, it
/// needs an admin token.
pub fn router(state: crate::AppState) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(state)
}

async fn render(caller: crate::http::Caller) -> Response {
    if !caller.is_admin() {
        return ApiError::from(caller.refuse("metrics need an admin token")).into_response();
    }
    let Some(handle) = install() else {
        return ApiError::new(ErrorCode::Internal, "the metrics recorder is unavailable")
            .into_response();
    };
    handle.run_upkeep();
    let mut res = handle.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// An open connection in the metrics: counted as accepted when made, and in the open
/// gauge until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    protocol: &'static str,
    tls: &'static str,
}

impl OpenConnection {
    pub(crate) fn new(http2: bool, tls: bool) -> Self {
        let protocol = if http2 { "http2" } else { "http1" };
        let tls = if tls { "true" } else { "false" };
        metrics::counter!(CONNECTIONS_ACCEPTED, "protocol" => protocol, "tls" => tls).increment(1);
        metrics::gauge!(CONNECTIONS_OPEN, "protocol" => protocol, "tls" => tls).increment(1.0);
        OpenConnection { protocol, tls }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN, "protocol" => self.protocol, "tls" => self.tls)
            .decrement(1.0);
    }
}
