//! `GET /openapi.json`: the document parses, documents exactly the router's routes, and
//! its schemas describe what the server really answers.

use herald_testkit::TestServer;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The router, read from its source: a route added there without documentation (or
/// documentation without a route) fails [`every_route_is_documented`].
const ROUTER: &str = include_str!("../../src/http/mod.rs");

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// `(METHOD, path)` of every `.route(path, get(…).post(…)…)` in [`ROUTER`].
fn router_routes() -> BTreeSet<(String, String)> {
    assert!(
        !ROUTER.contains(".nest(") && !ROUTER.contains(".route_service("),
        "teach this test to read nested routers and services"
    );
    let mut out = BTreeSet::new();
    for (start, _) in ROUTER.match_indices(".route(") {
        let rest = &ROUTER[start + ".route(".len()..];
        let rest = rest.trim_start();
        let path = rest
            .strip_prefix('"')
            .and_then(|r| r.split_once('"'))
            .map(|(p, _)| p)
            .expect("a route's path is a string literal");
        // The method router: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced parentheses");
        let methods = &rest[path.len() + 2..end];
        assert!(
            !methods.contains("any("),
            "{path}: document each method instead of any()"
        );
        let mut found = false;
        for m in METHODS {
            for (i, _) in methods.match_indices(&format!("{m}(")) {
                let before = methods[..i].chars().next_back().unwrap_or(' ');
                // `get(h)` or `.post(h)`, not `handlers::get)` or `forget(`.
                if !(before.is_alphanumeric() || before == '_' || before == ':') {
                    out.insert((m.to_uppercase(), path.to_owned()));
                    found = true;
                }
            }
        }
        assert!(found, "{path}: no method found in {methods:?}");
    }
    out
}

/// `(METHOD, path)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

async fn document(s: &TestServer) -> Value {
    let res = s
        .http()
        .get(s.at("/openapi.json"))
        .send()
        .await
        .expect("get /openapi.json");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "content type"
    );
    res.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_document_parses() {
    let s = TestServer::memory().await;
    let doc = document(&s).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "herald");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    // The request form of retention has the fields of the answer's.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        keys(&schemas["RetentionSettings"]["properties"]),
        keys(&schemas["RetentionSpec"]["properties"])
    );
    // Every reference resolves, and every operation has an id of its own.
    let mut ids = BTreeSet::new();
    walk(&doc, &mut |v| {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let target = doc.pointer(r.trim_start_matches('#'));
            assert!(target.is_some(), "unresolved {r}");
        }
    });
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_owned()), "{id} is used twice");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}: no responses"
        );
        if path.starts_with("/v1/") {
            // Errors are problem documents; auth and rate limits apply everywhere.
            for status in ["401", "403", "429"] {
                assert_eq!(
                    op["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_route_is_documented() {
    let s = TestServer::memory().await;
    let doc = document(&s).await;
    let routes = router_routes();
    assert!(routes.len() > 30, "the router parser found {routes:?}");
    let documented = documented(&doc);
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes without #[utoipa::path] (add them to http/openapi.rs): {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
    // The router and the document agree on the live server too: no documented operation
    // falls through to the fallbacks (`not_found`, `method_not_allowed`).
    for (method, path) in &documented {
        let concrete = path
            .replace("{topic}", "t")
            .replace("{group}", "g")
            .replace("{queue}", "q")
            .replace("{id}", "x")
            .replace("{service}", "svc");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let res = s
            .http()
            .request(method.clone(), s.at(&concrete))
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        if status == 404 || status == 405 {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            assert!(
                !matches!(
                    body["code"].as_str(),
                    Some("not_found" | "method_not_allowed")
                ),
                "{method} {concrete}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn answers_match_their_schemas() {
    let s = TestServer::start_with(|c| {
        c.memory = true;
        c.webhooks.allow_private_networks = true;
    })
    .await;
    let doc = document(&s).await;
    let http = s.http();

    // Publish: the answer has exactly the documented fields.
    let res = http
        .post(s.at("/v1/topics/shapes/messages"))
        .header("content-type", "application/json")
        .header("herald-event", "shape.made")
        .body(r#"{"sides":3}"#)
        .send()
        .await
        .expect("publish");
    assert_eq!(res.status(), 201);
    let published: Value = res.json().await.expect("json");
    let schema = response_schema(&doc, "/v1/topics/{topic}/messages", "post", "201");
    check(&doc, &schema, &published, "publish 201");
    assert_eq!(
        keys(&published),
        properties(&doc, &schema),
        "the publish answer's fields"
    );

    // Messages with every optional field: an event, base64 data, headers (a job's task
    // carries its callback as a header).
    let res = http
        .post(s.at("/v1/topics/shapes/messages"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .expect("publish bytes");
    assert_eq!(res.status(), 201);
    let res = http
        .post(s.at("/v1/jobs/shapes"))
        .header("content-type", "application/json")
        .header("herald-callback", "http://127.0.0.1:9/done")
        .body("{}")
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status(), 202);
    let submitted: Value = res.json().await.expect("json");
    check(
        &doc,
        &response_schema(&doc, "/v1/jobs/{queue}", "post", "202"),
        &submitted,
        "submit 202",
    );

    let mut seen = BTreeSet::new();
    for topic in ["shapes", "jobs.shapes"] {
        let res = http
            .get(s.at(&format!("/v1/topics/{topic}/messages")))
            .send()
            .await
            .expect("read");
        assert_eq!(res.status(), 200);
        let read: Value = res.json().await.expect("json");
        let schema = response_schema(&doc, "/v1/topics/{topic}/messages", "get", "200");
        check(&doc, &schema, &read, "read 200");
        for m in read["messages"].as_array().expect("messages") {
            seen.extend(keys(m));
        }
    }
    let envelope = json!({"$ref": "#/components/schemas/Envelope"});
    assert_eq!(
        seen,
        properties(&doc, &envelope),
        "the envelope's fields, over messages that use every optional one"
    );

    // A few more answers, whole.
    let id = submitted["id"].as_str().expect("job id");
    for (path, template, method, status) in [
        ("/v1/topics/shapes", "/v1/topics/{topic}", "get", "200"),
        ("/v1/topics", "/v1/topics", "get", "200"),
        (
            &*format!("/v1/jobs/shapes/{id}"),
            "/v1/jobs/{queue}/{id}",
            "get",
            "200",
        ),
        ("/healthz", "/healthz", "get", "200"),
        ("/readyz", "/readyz", "get", "200"),
        ("/v1/topics/nope", "/v1/topics/{topic}", "get", "404"),
    ] {
        let res = http.get(s.at(path)).send().await.expect("get");
        assert_eq!(res.status().as_str(), status, "GET {path}");
        let ct = res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let body: Value = res.json().await.expect("json");
        let content = &doc["paths"][template][method]["responses"][status]["content"];
        let schema = content[&ct]["schema"].clone();
        assert!(!schema.is_null(), "GET {path}: {ct} is not documented");
        check(&doc, &schema, &body, path);
    }
}

fn response_schema(doc: &Value, path: &str, method: &str, status: &str) -> Value {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status}: no JSON schema"
    );
    schema.clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(doc, doc.pointer(r.trim_start_matches('#')).expect("ref")),
        None => schema,
    }
}

fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    keys(&resolve(doc, schema)["properties"])
}

/// A structural check of `v` against `schema`: types, required and unknown properties,
/// items, enums and alternatives (`oneOf`, `anyOf`, `allOf`).
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    if let Err(e) = matches(doc, schema, v, at) {
        panic!("{e}\nvalue: {v}");
    }
}

fn matches(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            matches(doc, s, v, at)?;
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let ok = alts
                .iter()
                .filter(|s| matches(doc, s, v, at).is_ok())
                .count();
            if ok == 0 || (key == "oneOf" && ok > 1) {
                return Err(format!("{at}: {ok} of the {key} alternatives match"));
            }
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {options:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let typed = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !types.is_empty() && !typed {
        return Err(format!("{at}: a {kind}, documented as {types:?}"));
    }
    if let Value::Object(fields) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema["required"].as_array().into_iter().flatten() {
            let req = req.as_str().unwrap_or_default();
            if !fields.contains_key(req) {
                return Err(format!("{at}: required {req} is missing"));
            }
        }
        for (k, field) in fields {
            match props.and_then(|p| p.get(k)) {
                Some(s) => matches(doc, s, field, &format!("{at}.{k}"))?,
                None if schema["additionalProperties"] == false => {
                    return Err(format!("{at}: {k} is not documented"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            matches(doc, s, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
    f(v);
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk(i, f)),
        Value::Object(fields) => fields.values().for_each(|i| walk(i, f)),
        _ => {}
    }
}
