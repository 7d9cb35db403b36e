//! The OpenAPI 3.1 document of the HTTP door (`GET /openapi.json`), generated from the
//! handlers' `#[utoipa::path]` attributes and the wire types' `ToSchema` derives.
//!
//! What the attributes cannot say is added here: the problem responses every `/v1` route
//! can give (401, 403, 429, 500, 503), the bearer scheme, and the limits this server was
//! configured with (the longest `wait` and RPC `timeout`).

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr, Response as DocResponse};
use utoipa::{Modify, OpenApi};

pub(crate) use schema::*;

/// Event names herald keeps for its own SSE events (see `herald_core`'s publish checks).
const RESERVED_EVENTS: [&str; 4] = ["open", "reset", "error", "close"];

/// The document, as the code describes it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "herald",
        description = "One durable, ordered log behind every client-server pattern: \
            request-response, short and long polling, Server-Sent Events, WebSockets, \
            publish/subscribe, queues, jobs, webhooks and request-reply. Errors are RFC 9457 \
            `application/problem+json` documents with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        openapi_json,
        super::topics::list,
        super::topics::stats,
        super::topics::configure,
        super::topics::delete,
        super::read::read_topic,
        super::publish::publish,
        super::read::read_patterns,
        super::publish::publish_batch,
        super::sse::topic_events,
        super::sse::pattern_events,
        super::groups::stats,
        super::groups::configure,
        super::groups::claim,
        super::groups::ack,
        super::groups::nack,
        super::groups::extend,
        super::groups::redrive,
        super::jobs::submit,
        super::jobs::status,
        super::jobs::progress,
        super::jobs::complete,
        super::jobs::fail,
        super::webhooks::list,
        super::webhooks::create,
        super::webhooks::get,
        super::webhooks::delete,
        super::webhooks::deliveries,
        super::webhooks::replay,
        super::webhooks::test,
        super::rpc::call,
        super::ws::connect,
        super::ws::receive,
    ),
    components(schemas(herald_proto::Problem, herald_proto::ErrorCode)),
    modifiers(&Common),
    tags(
        (name = "operations", description = "Health, readiness and this document."),
        (name = "topics", description = "Topics: listing, statistics, retention, deletion."),
        (name = "messages", description = "Publish, read, short poll and long poll."),
        (name = "push", description = "Server-Sent Events and WebSockets."),
        (name = "groups", description = "Queues: consumer groups on a topic (at-least-once)."),
        (name = "jobs", description = "Asynchronous jobs on a queue, with status and callbacks."),
        (name = "webhooks", description = "Topics' subscribers that are URLs."),
        (name = "rpc", description = "Request-reply over HTTP."),
    ),
)]
pub struct ApiDoc;

/// The problem responses of every `/v1` operation, and the bearer scheme.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // Anonymous access is allowed when the server's `[auth]` says so (by default, on
        // loopback only); otherwise a token is needed.
        let security = vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::default(),
        ];
        let common = [
            (
                "401",
                "No valid credentials (`Authorization: Bearer`, `?token=` or the \
                 `herald_token` cookie).",
            ),
            (
                "403",
                "The credentials do not allow this operation (outside the token's patterns).",
            ),
            (
                "429",
                "Too many requests; retry after `Retry-After` seconds.",
            ),
            (
                "500",
                "Storage or internal failure; the operation did not happen.",
            ),
            ("503", "The server is shutting down."),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in operations(item) {
                op.security = Some(security.clone());
                for (status, description) in common {
                    if !op.responses.responses.contains_key(status) {
                        let mut r = problem(description);
                        if status == "429" {
                            r.headers.insert(
                                "Retry-After".into(),
                                RefOr::T(
                                    utoipa::openapi::header::HeaderBuilder::new()
                                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                                            utoipa::openapi::schema::Type::Integer,
                                        )))
                                        .description(Some("Seconds to wait before retrying."))
                                        .build(),
                                ),
                            );
                        }
                        op.responses.responses.insert(status.into(), RefOr::T(r));
                    }
                }
            }
        }
    }
}

/// Every operation of a path item.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// A response whose body is a problem document.
fn problem(description: &str) -> DocResponse {
    utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            utoipa::openapi::content::Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

/// The document as the code describes it, rendered once, with what the attributes cannot
/// write.
fn base() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        // Names herald keeps for its own SSE events (`open`, `reset`, `error`, `close`)
        // cannot be an event type: JSON Schema's `not`.
        let reserved = json!({"enum": RESERVED_EVENTS});
        for_each_parameter(&mut doc, |p| {
            // An absent parameter is `required: false`; none can be `null`.
            drop_null(&mut p["schema"]);
            if matches!(p["name"].as_str(), Some("Herald-Event" | "event")) {
                p["schema"]["not"] = reserved.clone();
            }
        });
        if let Some(event) = doc.pointer_mut("/components/schemas/BatchItem/properties/event") {
            event["not"] = reserved;
        }
        // `Option<T>` bodies are optional (an empty body), not JSON `null`.
        for_each_operation(&mut doc, |op| {
            let Some(content) = op
                .pointer_mut("/requestBody/content")
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            for media in content.values_mut() {
                if let Some(schema) = media.get_mut("schema") {
                    drop_null(schema);
                }
            }
        });
        doc
    })
}

/// `T` for the schema of an `Option<T>`.
fn drop_null(schema: &mut Value) {
    let is_null = |s: &Value| s["type"] == "null";
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array)
        && branches.len() == 2
        && let Some(other) = branches.iter().find(|b| !is_null(b))
        && branches.iter().any(is_null)
    {
        *schema = other.clone();
    } else if let Some(types) = schema.get("type").and_then(Value::as_array)
        && let [one] = types.iter().filter(|t| *t != "null").collect::<Vec<_>>()[..]
    {
        schema["type"] = one.clone();
    }
}

/// The document of a server: [`ApiDoc`] with its configured limits.
pub fn document(st: &AppState) -> Value {
    let mut doc = base().clone();
    let opts = st.hub.options();
    let max_wait = opts.max_wait.as_secs_f64();
    set_maximum(&mut doc, "wait", max_wait);
    set_maximum(&mut doc, "timeout", opts.rpc_max_timeout.as_secs_f64());
    if let Some(wait) = doc.pointer_mut("/components/schemas/ClaimRequest/properties/wait") {
        set_number(wait, "maximum", max_wait);
    }
    doc
}

/// Calls `f` on every operation.
fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&mut Value)) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        if let Some(item) = item.as_object_mut() {
            item.values_mut().for_each(&mut f);
        }
    }
}

/// Calls `f` on every parameter of every operation.
fn for_each_parameter(doc: &mut Value, mut f: impl FnMut(&mut Value)) {
    for_each_operation(doc, |op| {
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            params.iter_mut().for_each(&mut f);
        }
    });
}

/// Sets the `maximum` of every parameter called `name`.
fn set_maximum(doc: &mut Value, name: &str, max: f64) {
    for_each_parameter(doc, |p| {
        if p["name"] == name {
            set_number(&mut p["schema"], "maximum", max);
        }
    });
}

/// Sets `schema[key]` (or the non-null branch of an `Option`'s `oneOf`) to `n`, written
/// as an integer when it is one.
fn set_number(schema: &mut Value, key: &str, n: f64) {
    let n = if n.fract() == 0.0 && n.abs() < 1e15 {
        json!(n as i64)
    } else {
        json!(n)
    };
    if let Some(branches) = schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        for b in branches.iter_mut().filter(|b| b["type"] != "null") {
            b[key] = n.clone();
        }
    } else if schema.is_object() {
        schema[key] = n;
    }
}

/// `GET /openapi.json`: this server's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this server's HTTP API.",
            body = serde_json::Value, content_type = "application/json"),
    ),
)]
pub async fn openapi_json(State(st): State<AppState>) -> Response {
    let body = serde_json::to_vec(&document(&st)).unwrap_or_default();
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Parameters and JSON shapes that exist only in the document: the handlers read them
/// by hand (repeated query keys, lenient bodies) or answer with `json!` literals.
#[allow(dead_code)]
mod schema {
    use herald_proto::{BatchItem, ErrorCode, JobStatus};
    use serde::Serialize;
    use utoipa::openapi::schema::{ArrayBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{IntoParams, PartialSchema, ToSchema};

    /// `{topic}`
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub(crate) struct TopicParam {
        /// A topic name: 1–16 segments of `[A-Za-z0-9_-]{1,64}` joined by `.`, at most
        /// 200 bytes (`orders.eu.created`).
        #[param(
            pattern = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$",
            max_length = 200
        )]
        topic: String,
    }

    /// `{topic}` and `{group}`
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub(crate) struct GroupParams {
        /// A topic name: 1–16 segments of `[A-Za-z0-9_-]{1,64}` joined by `.`, at most
        /// 200 bytes.
        #[param(
            pattern = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$",
            max_length = 200
        )]
        topic: String,
        /// The consumer group: 1–64 characters from `A-Z a-z 0-9 _ -`.
        #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
        group: String,
    }

    /// `{queue}`
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub(crate) struct QueueParam {
        /// The job queue: 1–64 characters from `A-Z a-z 0-9 _ -` (its topic is
        /// `jobs.{queue}`).
        #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
        queue: String,
    }

    /// `{queue}` and `{id}`
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub(crate) struct JobParams {
        /// The job queue: 1–64 characters from `A-Z a-z 0-9 _ -`.
        #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
        queue: String,
        /// The job id (the `id` answered by the submit).
        id: String,
    }

    /// `{id}` of a webhook endpoint
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub(crate) struct WebhookParam {
        /// The endpoint id (the `id` answered when it was created).
        id: String,
    }

    /// `{service}`
    #[derive(IntoParams)]
    #[into_params(parameter_in = Path)]
    pub(crate) struct ServiceParam {
        /// The service: `rpc.{service}` must be a valid topic name.
        #[param(
            pattern = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,14}$",
            max_length = 196
        )]
        service: String,
    }

    /// The position to read after, `limit` and `wait` of a read.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct ReadQuery {
        /// Read after this cursor: `earliest` (the default: from the oldest retained
        /// message), `latest`, or a message `id`/`next` returned by herald.
        #[param(pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})?$")]
        after: Option<String>,
        /// Most messages to answer (default 100).
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<u32>,
        /// Seconds to hold the request while nothing is there (long poll); absent or 0
        /// answers at once (short poll). At most the server's `long_poll.max_wait_seconds`.
        #[param(minimum = 0, maximum = 60)]
        wait: Option<f64>,
    }

    /// The topics or patterns of a multi-topic read.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct PatternsQuery {
        /// A topic or a pattern (`*` matches one segment, a final `>` one or more); repeat
        /// the key for several.
        #[param(
            style = Form,
            explode,
            min_items = 1,
            pattern = r"^(>|([A-Za-z0-9_-]{1,64}|\*)(\.([A-Za-z0-9_-]{1,64}|\*)){0,15}|([A-Za-z0-9_-]{1,64}|\*)(\.([A-Za-z0-9_-]{1,64}|\*)){0,14}\.>)$",
            max_length = 200
        )]
        topic: Vec<String>,
    }

    /// Where a push stream starts and what its `data:` lines carry.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct EventsQuery {
        /// Start after this cursor: `latest` (the default), `earliest` or a message `id`.
        /// `Last-Event-ID` wins over it.
        #[param(pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})?$")]
        after: Option<String>,
        /// `envelope` (the default): `data:` is the message's JSON envelope; `data`: the
        /// bare payload.
        #[param(inline)]
        format: Option<EventFormat>,
    }

    /// What an SSE `data:` carries.
    #[derive(ToSchema, Serialize)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum EventFormat {
        /// The message's JSON envelope.
        Envelope,
        /// The bare payload.
        Data,
    }

    /// `?after=` of a receive-only WebSocket.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct AfterQuery {
        /// Start after this cursor: `latest` (the default), `earliest` or a message `id`.
        #[param(pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})?$")]
        after: Option<String>,
    }

    /// `?after=` of a webhook replay.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct ReplayQuery {
        /// Redeliver what comes after this cursor: `earliest` (the default), `latest` or a
        /// message `id`.
        #[param(pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})?$")]
        after: Option<String>,
    }

    /// `?wait=` of a job's status.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct JobWaitQuery {
        /// Seconds to hold the request until the job finishes (long poll); absent or 0
        /// answers at once. At most the server's `long_poll.max_wait_seconds`.
        #[param(minimum = 0, maximum = 60)]
        wait: Option<f64>,
    }

    /// `?limit=` of a delivery log.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct LimitQuery {
        /// Most attempts to answer, newest first (default 100).
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<u32>,
    }

    /// `?timeout=` of a call.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub(crate) struct TimeoutQuery {
        /// Seconds to wait for the reply (default `rpc.default_timeout_seconds`, 5); more
        /// than 0 and at most `rpc.max_timeout_seconds`.
        #[param(exclusive_minimum = 0, maximum = 60)]
        timeout: Option<f64>,
    }

    /// `GET /healthz`
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Health {
        /// Always `ok`.
        status: HealthStatus,
    }

    /// The process is up.
    #[derive(ToSchema, Serialize)]
    #[serde(rename_all = "lowercase")]
    pub(crate) enum HealthStatus {
        /// Up.
        Ok,
    }

    /// `GET /readyz`
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Readiness {
        /// `ready`, or `shutting_down` (with 503).
        status: ReadyStatus,
        /// The cursor of the newest message (when ready).
        #[serde(skip_serializing_if = "Option::is_none")]
        latest: Option<String>,
    }

    /// Whether the server accepts work.
    #[derive(ToSchema, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum ReadyStatus {
        /// Accepting work.
        Ready,
        /// Stopping.
        ShuttingDown,
    }

    /// `PUT /v1/topics/{topic}`: the retention settings, wrapped in `{"retention": …}`
    /// or bare.
    #[derive(ToSchema, Serialize)]
    #[serde(untagged)]
    pub(crate) enum TopicConfig {
        /// `{"retention":{…}}`
        Wrapped(RetentionWrapper),
        /// The retention object itself.
        Bare(RetentionSettings),
    }

    /// `{"retention":{…}}`
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RetentionWrapper {
        /// The topic's retention; absent or zero fields mean no limit.
        retention: RetentionSettings,
    }

    /// `RetentionSpec` as a request: the same fields, with what `max_age` accepts.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RetentionSettings {
        /// Keep at most this many messages (absent, `null` or 0: no limit).
        #[schema(maximum = 18446744073709551615u64)]
        max_messages: Option<u64>,
        /// Keep at most this many payload bytes (absent, `null` or 0: no limit).
        #[schema(maximum = 18446744073709551615u64)]
        max_bytes: Option<u64>,
        /// Keep messages at most this long: numbers with units, e.g. `"30s"`, `"12h"`,
        /// `"7d"`, `"1h 30m"` (absent, `null` or zero: no limit).
        #[schema(
            pattern = r"^[0-9]{1,9} ?(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)( ?[0-9]{1,9} ?(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)){0,7}$"
        )]
        max_age: Option<String>,
    }

    /// A consumer group's statistics and settings.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct GroupStats {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// Messages after the acked position that are not done yet (including in flight).
        lag: u64,
        /// Leased deliveries.
        in_flight: u64,
        /// Every message at or before this cursor is done.
        acked: String,
        /// Messages dead-lettered and not redriven.
        dead_lettered: u64,
        /// Default lease length in seconds.
        lease_seconds: f64,
        /// Deliveries of one message before it is dead-lettered.
        max_attempts: u32,
        /// The topic dead letters go to.
        dead_letter: String,
    }

    /// `PUT …/groups/{group}`: every field is optional.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct GroupConfig {
        /// Where a new group starts: `earliest`, `latest` or a cursor.
        #[schema(pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})$")]
        start: Option<String>,
        /// Default lease length in seconds (default 30): more than 0, at most 12 h.
        #[schema(minimum = 0.000000001, maximum = 43200)]
        lease_seconds: Option<f64>,
        /// Deliveries of one message before it is dead-lettered (default 5).
        #[schema(minimum = 1, maximum = 1000)]
        max_attempts: Option<u32>,
        /// The dead-letter topic (default `{topic}.dlq`).
        #[schema(
            pattern = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,15}$",
            max_length = 200
        )]
        dead_letter: Option<String>,
    }

    /// `POST …/claim`: every field is optional (an empty body is `{}`).
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct ClaimRequest {
        /// Most deliveries to lease (default 10).
        #[schema(minimum = 1, maximum = 1000)]
        max: Option<u32>,
        /// Seconds to wait while nothing is claimable (long poll); at most the server's
        /// `long_poll.max_wait_seconds`.
        #[schema(minimum = 0, maximum = 60)]
        wait: Option<f64>,
        /// Lease length in seconds (default: the group's): more than 0, at most 12 h.
        #[schema(minimum = 0.000000001, maximum = 43200)]
        lease_seconds: Option<f64>,
    }

    /// `POST …/ack`.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct AckRequest {
        /// Receipts of current deliveries.
        #[schema(min_items = 1, max_items = 1000)]
        receipts: Vec<String>,
        /// Ignored here (see nack).
        delay_seconds: Option<f64>,
        /// Ignored here (see extend).
        lease_seconds: Option<f64>,
        /// Ignored here (see nack).
        error: Option<String>,
    }

    /// `POST …/nack`.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct NackRequest {
        /// Receipts of current deliveries.
        #[schema(min_items = 1, max_items = 1000)]
        receipts: Vec<String>,
        /// Seconds before the message may be delivered again (default 0, at most 12 h).
        #[schema(minimum = 0, maximum = 43200)]
        delay_seconds: Option<f64>,
        /// Ignored here (see extend).
        lease_seconds: Option<f64>,
        /// Why the delivery failed; kept with a dead letter.
        error: Option<String>,
    }

    /// `POST …/extend`.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct ExtendRequest {
        /// Receipts of current deliveries.
        #[schema(min_items = 1, max_items = 1000)]
        receipts: Vec<String>,
        /// The new lease length in seconds, from now: more than 0, at most 12 h.
        #[schema(minimum = 0.000000001, maximum = 43200)]
        lease_seconds: f64,
        /// Ignored here (see nack).
        delay_seconds: Option<f64>,
        /// Ignored here (see nack).
        error: Option<String>,
    }

    /// A receipt that was not settled.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Refusal {
        /// The receipt.
        receipt: String,
        /// Why.
        code: ErrorCode,
        /// What went wrong.
        detail: String,
    }

    /// The answer to an ack.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Acked {
        /// Receipts acked.
        acked: u64,
        /// Receipts refused (when at least one was acked).
        refused: Vec<Refusal>,
    }

    /// The answer to a nack.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Nacked {
        /// Receipts nacked.
        nacked: u64,
        /// Receipts refused (when at least one was nacked).
        refused: Vec<Refusal>,
    }

    /// The answer to an extend.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Extended {
        /// Leases extended.
        extended: u64,
        /// Receipts refused (when at least one was extended).
        refused: Vec<Refusal>,
    }

    /// The answer to a redrive.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Redriven {
        /// Dead letters moved back to the topic.
        redriven: u64,
    }

    /// The answer to a job submit.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct JobSubmitted {
        /// The job id.
        id: String,
        /// `queued`.
        status: JobStatus,
        /// Where to poll the job document.
        status_url: String,
        /// With `Herald-Callback`: the secret the callback is signed with.
        #[serde(skip_serializing_if = "Option::is_none")]
        callback_secret: Option<String>,
    }

    /// A webhook endpoint.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Webhook {
        /// The endpoint id.
        id: String,
        /// The topic or pattern delivered.
        pattern: String,
        /// Where messages are POSTed.
        url: String,
        /// Attempts per message before it is dead-lettered.
        max_attempts: u32,
        /// When it was created (RFC 3339).
        #[schema(format = DateTime)]
        created: String,
        /// Every message at or before this cursor is delivered or dead-lettered.
        cursor: String,
        /// Failed attempts for the next message.
        attempt: u32,
        /// When the next attempt is due, while retrying.
        #[schema(format = DateTime)]
        next_attempt: Option<String>,
        /// Why the endpoint is disabled, if it is.
        disabled: Option<String>,
        /// Messages delivered.
        delivered: u64,
        /// Messages dead-lettered.
        dead_lettered: u64,
        /// The last attempt's error.
        last_error: Option<String>,
        /// The signing secret (`whsec_…`); only in the answer to the create.
        #[serde(skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    }

    /// `GET /v1/webhooks`
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Webhooks {
        /// The caller's endpoints, oldest first.
        webhooks: Vec<Webhook>,
    }

    /// `POST /v1/webhooks`
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct CreateWebhook {
        /// The topic or pattern to deliver.
        #[schema(
            pattern = r"^(>|([A-Za-z0-9_-]{1,64}|\*)(\.([A-Za-z0-9_-]{1,64}|\*)){0,15}|([A-Za-z0-9_-]{1,64}|\*)(\.([A-Za-z0-9_-]{1,64}|\*)){0,14}\.>)$",
            max_length = 200
        )]
        pattern: String,
        /// Where to POST (http or https). Loopback, private, link-local and metadata
        /// addresses are refused unless the server allows them.
        #[schema(format = "uri", max_length = 2048)]
        url: String,
        /// Start after this cursor: `latest` (the default), `earliest` or a message `id`.
        #[schema(pattern = r"^(earliest|latest|[0-9A-Fa-f]{24})?$")]
        after: Option<String>,
        /// The signing secret: `whsec_` and base64 of 16 to 64 bytes (generated when
        /// absent).
        #[schema(pattern = r"^whsec_[A-Za-z0-9+/]+={0,2}$")]
        secret: Option<String>,
        /// Attempts per message before it is dead-lettered.
        #[schema(minimum = 1, maximum = 100)]
        max_attempts: Option<u32>,
    }

    /// One delivery attempt.
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct DeliveryAttempt {
        /// The message's id (`test_…` for a test event).
        message_id: String,
        /// 1 for the first attempt of the message.
        attempt: u32,
        /// The receiver's HTTP status, when it answered.
        status: Option<u16>,
        /// Time to the answer (or the failure), in milliseconds.
        latency_ms: f64,
        /// What went wrong, if anything.
        error: Option<String>,
        /// What happened.
        outcome: Outcome,
        /// When (RFC 3339).
        #[schema(format = DateTime)]
        time: String,
    }

    /// What a delivery attempt led to.
    #[derive(ToSchema, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum Outcome {
        /// The receiver answered 2xx.
        Delivered,
        /// A test event was not delivered.
        Failed,
        /// Retried later.
        Retrying,
        /// The last attempt failed; the message went to the dead letters.
        DeadLettered,
        /// The receiver answered 410; the endpoint is disabled.
        Disabled,
    }

    /// `GET /v1/webhooks/{id}/deliveries`
    #[derive(ToSchema, Serialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Deliveries {
        /// The latest attempts, newest first.
        deliveries: Vec<DeliveryAttempt>,
    }

    /// `POST /v1/messages` as JSON: an array of at least one item.
    pub(crate) struct Batch;

    impl utoipa::PartialSchema for Batch {
        fn schema() -> RefOr<Schema> {
            ArrayBuilder::new()
                .items(Ref::from_schema_name(BatchItem::name()))
                .min_items(Some(1))
                .into()
        }
    }

    impl ToSchema for Batch {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((BatchItem::name().into(), BatchItem::schema()));
            <BatchItem as ToSchema>::schemas(schemas);
        }
    }

    /// One result of a batch publish: the published message or why the item failed.
    #[derive(ToSchema, Serialize)]
    #[serde(untagged)]
    pub(crate) enum BatchResult {
        /// Published.
        Published(herald_proto::Published),
        /// Refused.
        Problem(herald_proto::Problem),
    }
}
