//! Property tests for the WebSocket frames (`herald_proto::ws`), decoded the way the server
//! decodes client frames (crates/herald-server/src/http/ws/codec.rs): `herald.v1.json` text
//! frames with `serde_json::from_str`, `herald.v1.msgpack` binary frames with
//! `rmp_serde::from_slice`; frames are written with `serde_json::to_string` and
//! `rmp_serde::to_vec_named`.

use herald_proto::ws::{ClientFrame, Topics, close_reason};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config() -> ProptestConfig {
    ProptestConfig {
        // No regression files in the source tree; failures print the minimal input.
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

/// The ops a client frame may carry.
const OPS: [&str; 10] = [
    "subscribe",
    "unsubscribe",
    "publish",
    "consume",
    "ack",
    "nack",
    "ping",
    "serve",
    "reply",
    "call",
];

/// `ClientFrame` has no `PartialEq`; its `Debug` form shows every field (and tells
/// `1` from `1.0` and `0.0` from `-0.0`), so equal `Debug` text means equal frames.
fn same(a: &ClientFrame, b: &ClientFrame) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn decode_json(text: &str) -> Result<ClientFrame, serde_json::Error> {
    serde_json::from_str(text)
}

fn decode_msgpack(bytes: &[u8]) -> Result<ClientFrame, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

fn encode_json(frame: &ClientFrame) -> String {
    serde_json::to_string(frame).expect("a client frame always serializes to JSON")
}

fn encode_msgpack(frame: &ClientFrame) -> Vec<u8> {
    rmp_serde::to_vec_named(frame).expect("a client frame always serializes to MessagePack")
}

fn map_to_string(map: &serde_json::Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

// ---------------------------------------------------------------------------------------
// Strategies.

/// Short strings, sometimes with characters JSON has to escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._>*-]{0,12}",
        any::<String>(),
        "[\"\\\\\u{0}\u{1f}\u{7f}é😀/]{0,6}",
    ]
}

/// Floats that survive JSON text exactly: short decimals (`m / 10^k` with `|m| < 10^9`,
/// `k <= 9`), which serde_json reads back with one exact division. Arbitrary floats do
/// not: without serde_json's `float_roundtrip` feature (not enabled in this workspace) it
/// reads some 17-digit floats 1 ULP off, e.g. `1.1817211962065424e-256` comes back as
/// `1.1817211962065423e-256`.
fn json_exact_f64() -> BoxedStrategy<f64> {
    const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    prop_oneof![
        (-999_999_999i64..1_000_000_000, 0usize..10).prop_map(|(m, k)| m as f64 / POW10[k]),
        Just(0.0),
        Just(-0.0),
    ]
    .boxed()
}

/// Any finite float (MessagePack carries the bits), seconds as the SDK computes them.
fn any_finite_f64() -> BoxedStrategy<f64> {
    prop_oneof![
        (0u64..100_000_000).prop_map(|ms| ms as f64 / 1000.0),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        json_exact_f64(),
    ]
    .boxed()
}

/// Any JSON value (JSON has finite numbers only), with floats from `floats`.
fn json_value_with(floats: BoxedStrategy<f64>) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        floats.prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A `ref`. `Some(Value::Null)` is written as `"ref":null`, which reads back as `None` (the
/// same meaning: no ref), so it is left out here and checked on its own below.
fn reference(values: BoxedStrategy<Value>) -> impl Strategy<Value = Option<Value>> {
    prop::option::of(values.prop_filter("not null", |v| !v.is_null()))
}

fn topics() -> impl Strategy<Value = Topics> {
    prop_oneof![
        text().prop_map(Topics::One),
        prop::collection::vec(text(), 0..4).prop_map(Topics::Many),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

/// Every client frame a client (the SDK, the CLI, any user of herald-proto) can build.
fn client_frame_with(floats: BoxedStrategy<f64>) -> BoxedStrategy<ClientFrame> {
    let value = json_value_with(floats.clone());
    let refs = || reference(value.clone());
    prop_oneof![
        (refs(), topics(), opt_text()).prop_map(|(reference, topic, after)| {
            ClientFrame::Subscribe {
                reference,
                topic,
                after,
            }
        }),
        (refs(), text()).prop_map(|(reference, sub)| ClientFrame::Unsubscribe { reference, sub }),
        (
            refs(),
            text(),
            value.clone(),
            (opt_text(), opt_text(), opt_text(), opt_text()),
        )
            .prop_map(
                |(reference, topic, data, (event, content_type, encoding, idempotency_key))| {
                    ClientFrame::Publish {
                        reference,
                        topic,
                        data,
                        event,
                        content_type,
                        encoding,
                        idempotency_key,
                    }
                }
            ),
        (refs(), text(), text(), prop::option::of(any::<usize>())).prop_map(
            |(reference, topic, group, prefetch)| ClientFrame::Consume {
                reference,
                topic,
                group,
                prefetch,
            }
        ),
        (refs(), prop::collection::vec(text(), 0..4)).prop_map(|(reference, receipts)| {
            ClientFrame::Ack {
                reference,
                receipts,
            }
        }),
        (
            refs(),
            prop::collection::vec(text(), 0..4),
            prop::option::of(floats.clone()),
            opt_text(),
        )
            .prop_map(|(reference, receipts, delay, error)| ClientFrame::Nack {
                reference,
                receipts,
                delay,
                error,
            }),
        refs().prop_map(|reference| ClientFrame::Ping { reference }),
        (refs(), text()).prop_map(|(reference, service)| ClientFrame::Serve { reference, service }),
        (
            any::<u64>(),
            prop::option::of(any::<u16>()),
            value.clone(),
            opt_text(),
            opt_text(),
        )
            .prop_map(|(request_id, status, data, content_type, encoding)| {
                ClientFrame::Reply {
                    request_id,
                    status,
                    data,
                    content_type,
                    encoding,
                }
            }),
        (
            refs(),
            text(),
            value.clone(),
            (opt_text(), opt_text(), prop::option::of(floats.clone())),
        )
            .prop_map(
                |(reference, service, data, (content_type, encoding, timeout))| {
                    ClientFrame::Call {
                        reference,
                        service,
                        data,
                        content_type,
                        encoding,
                        timeout,
                    }
                }
            ),
    ]
    .boxed()
}

/// Client frames for JSON (floats JSON text carries exactly).
fn client_frame() -> BoxedStrategy<ClientFrame> {
    client_frame_with(json_exact_f64())
}

/// Client frames with any finite float.
fn any_client_frame() -> BoxedStrategy<ClientFrame> {
    client_frame_with(any_finite_f64())
}

/// JSON objects that look like frames: a known, unknown or missing op and a handful of
/// the frame fields with values of any type.
fn frame_like_object() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        "ref",
        "topic",
        "after",
        "sub",
        "data",
        "event",
        "content_type",
        "encoding",
        "idempotency_key",
        "group",
        "prefetch",
        "receipts",
        "delay",
        "error",
        "service",
        "request_id",
        "status",
        "timeout",
    ]);
    let op = prop_oneof![
        3 => prop::sample::select(OPS.to_vec()).prop_map(|op| Some(Value::from(op))),
        1 => "[a-zA-Z_]{0,10}".prop_map(|op| Some(Value::from(op))),
        1 => json_value_with(json_exact_f64()).prop_map(Some),
        1 => Just(None),
    ];
    // JSON-exact floats: both codecs must then agree to the bit.
    let value = json_value_with(json_exact_f64());
    (op, prop::collection::btree_map(field, value, 0..8)).prop_map(|(op, fields)| {
        let mut obj: serde_json::Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Some(op) = op {
            obj.insert("op".into(), op);
        }
        Value::Object(obj)
    })
}

// ---------------------------------------------------------------------------------------
// Decoding never panics.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_arbitrary_text_never_panics(text in prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,0-9a-z \\\\]{0,40}",
        "\\{\"op\":\"[a-z]{0,12}\"[,:\"a-z0-9\\[\\]{}]{0,30}",
    ]) {
        // Whatever decodes is a frame, and writing it again gives the same frame.
        if let Ok(frame) = decode_json(&text) {
            prop_assert!(same(&decode_json(&encode_json(&frame)).expect("again"), &frame));
        }
        // The server recovers the `ref` of an undecodable frame from the parsed value.
        let _ = serde_json::from_str::<Value>(&text).map(|v| v.get("ref").cloned());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        // MessagePack maps (0x80-0x8f) of fixstr keys: more often past the first byte.
        (0x80u8..0x90, prop::collection::vec(prop_oneof![
            Just(0xa2u8), Just(b'o'), Just(b'p'), Just(0xa4), Just(0xc0), Just(0x91), any::<u8>(),
        ], 0..64)).prop_map(|(head, mut rest)| { rest.insert(0, head); rest }),
    ]) {
        if let Ok(frame) = decode_msgpack(&bytes) {
            prop_assert!(same(&decode_msgpack(&encode_msgpack(&frame)).expect("again"), &frame));
        }
        let _ = rmp_serde::from_slice::<Value>(&bytes).map(|v| v.get("ref").cloned());
        let _ = serde_json::from_slice::<ClientFrame>(&bytes);
    }

    #[test]
    fn frame_like_objects_decode_or_fail_cleanly_in_both_codecs(obj in frame_like_object()) {
        let text = obj.to_string();
        let packed = rmp_serde::to_vec_named(&obj).expect("a JSON value packs");
        let (from_json, from_msgpack) = (decode_json(&text), decode_msgpack(&packed));
        // Both subprotocols accept and refuse the same objects, and agree on the frame.
        match (&from_json, &from_msgpack) {
            (Ok(a), Ok(b)) => prop_assert!(same(a, b), "{:?} vs {:?}", a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{} gives {:?} from JSON but {:?} from MessagePack",
                text, from_json, from_msgpack),
        }
        let op = obj.get("op").and_then(Value::as_str);
        match &from_json {
            Ok(_) => prop_assert!(op.is_some_and(|op| OPS.contains(&op)), "{}", text),
            // The server answers `unknown_op` when the message says "unknown variant".
            Err(e) => if let Some(op) = op.filter(|op| !OPS.contains(op)) {
                prop_assert!(e.to_string().contains("unknown variant"), "op {:?}: {}", op, e);
            },
        }
    }

    #[test]
    fn truncated_or_corrupted_frames_never_panic(
        frame in any_client_frame(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let text = encode_json(&frame);
        let bytes = text.as_bytes();
        let at = cut.index(bytes.len());
        // A strict prefix of a frame (a JSON object) is never a frame.
        prop_assert!(serde_json::from_slice::<ClientFrame>(&bytes[..at]).is_err());
        let mut corrupt = bytes.to_vec();
        corrupt[flip.index(bytes.len())] ^= xor;
        let _ = serde_json::from_slice::<ClientFrame>(&corrupt);

        let packed = encode_msgpack(&frame);
        let at = cut.index(packed.len());
        // A strict prefix of a MessagePack map is never complete.
        prop_assert!(decode_msgpack(&packed[..at]).is_err());
        let mut corrupt = packed.clone();
        corrupt[flip.index(packed.len())] ^= xor;
        let _ = decode_msgpack(&corrupt);
    }

    #[test]
    fn deeply_nested_json_fails_cleanly(
        depth in prop_oneof![1usize..4096, 120usize..135],
        array in any::<bool>(),
    ) {
        // `{"op":"ping","ref":[[[…]]]}`: serde_json refuses nesting deeper than 128 with an
        // error instead of recursing until the stack overflows (the frame's object is
        // one level, so the `ref` may nest 126 deep).
        let (open, close) = if array { ("[", "]") } else { ("{\"a\":", "}") };
        let text = format!(
            "{{\"op\":\"ping\",\"ref\":{}1{}}}",
            open.repeat(depth),
            close.repeat(depth)
        );
        let decoded = decode_json(&text);
        prop_assert_eq!(decoded.is_ok(), depth < 127, "depth {}: {:?}", depth, decoded.err());
    }

    #[test]
    fn nested_msgpack_decodes(depth in 1usize..256, array in any::<bool>()) {
        // The same frame in MessagePack, only up to depth 255. Deeper is a known problem:
        // rmp-serde's own limit is 1024 levels, but decoding a `ClientFrame` (buffered
        // through serde's `Content` for the internally tagged enum) overflows a 2 MiB
        // thread stack, a tokio worker's, from about 550 levels of maps / 600 of arrays in
        // a debug build, which aborts the process. Test deeper once the decoding sets a
        // lower depth limit (`rmp_serde::Deserializer::set_max_depth`).
        let mut packed = vec![0x82, 0xa2, b'o', b'p', 0xa4, b'p', b'i', b'n', b'g', 0xa3, b'r', b'e', b'f'];
        for _ in 0..depth {
            // A one-element fixarray, or a one-entry fixmap with key "a".
            packed.extend_from_slice(if array { &[0x91][..] } else { &[0x81, 0xa1, b'a'][..] });
        }
        packed.push(0x01);
        let decoded = decode_msgpack(&packed)
            .map_err(|e| TestCaseError::fail(format!("depth {depth}: {e}")))?;
        let mut v = match decoded {
            ClientFrame::Ping { reference: Some(v) } => v,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        for _ in 0..depth {
            v = match v {
                Value::Array(mut a) if array && a.len() == 1 => a.remove(0),
                Value::Object(mut m) if !array && m.len() == 1 => m.remove("a").expect("key a"),
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
        }
        prop_assert_eq!(v, Value::from(1));
    }
}

// ---------------------------------------------------------------------------------------
// Round trips.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frames_round_trip_through_json(frame in client_frame()) {
        let text = encode_json(&frame);
        let back = decode_json(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert!(same(&back, &frame), "{}\n{:?}\n{:?}", text, back, frame);
        // The op is the tag, in snake case, and written first.
        prop_assert!(
            OPS.iter().any(|op| text.starts_with(&format!("{{\"op\":\"{op}\""))),
            "{}", text
        );
    }

    #[test]
    fn client_frames_round_trip_through_msgpack(frame in any_client_frame()) {
        let packed = encode_msgpack(&frame);
        let back = decode_msgpack(&packed).map_err(|e| TestCaseError::fail(format!("{packed:02x?}: {e}")))?;
        prop_assert!(same(&back, &frame), "{:?}\n{:?}", back, frame);
        // The MessagePack frame is the JSON frame's object (a map with string keys).
        let as_value: Value = rmp_serde::from_slice(&packed).expect("a map with string keys");
        let json_value = serde_json::to_value(&frame).expect("a frame is a JSON value");
        prop_assert_eq!(as_value, json_value);
    }

    #[test]
    fn a_null_ref_reads_as_no_ref(frame in client_frame()) {
        let mut obj: Value = serde_json::from_str(&encode_json(&frame)).expect("json");
        let Some(map) = obj.as_object_mut() else {
            return Err(TestCaseError::fail("a frame is a JSON object"));
        };
        map.remove("ref");
        let without_ref = decode_json(&Value::Object(map.clone()).to_string()).expect("no ref");
        map.insert("ref".into(), Value::Null);
        let text = map_to_string(map);
        let back = decode_json(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert!(same(&back, &without_ref), "{}: {:?}", text, back);
    }

    #[test]
    fn frames_built_like_the_sdk_and_cli_decode_to_what_was_meant(
        pattern in text(),
        cursor in text(),
        topic in text(),
        prefetch in any::<usize>(),
        receipts in prop::collection::vec(text(), 0..4),
        service in text(),
    ) {
        // herald-client subscribe/ws.rs
        let f = json!({"op": "subscribe", "ref": "sub", "topic": pattern, "after": cursor});
        let decoded = decode_json(&f.to_string()).expect("subscribe frame");
        let expected = ClientFrame::Subscribe {
            reference: Some("sub".into()),
            topic: Topics::One(pattern.clone()),
            after: Some(cursor.clone()),
        };
        prop_assert!(same(&decoded, &expected), "{:?}", decoded);
        // herald bench (consume, ack, serve)
        let f = json!({"op": "consume", "topic": topic, "group": "bench", "prefetch": prefetch});
        let decoded = decode_json(&f.to_string()).expect("consume frame");
        let expected = ClientFrame::Consume {
            reference: None,
            topic: topic.clone(),
            group: "bench".into(),
            prefetch: Some(prefetch),
        };
        prop_assert!(same(&decoded, &expected), "{:?}", decoded);
        let f = json!({"op": "ack", "ref": 1, "receipts": receipts});
        let decoded = decode_json(&f.to_string()).expect("ack frame");
        let expected = ClientFrame::Ack { reference: Some(1.into()), receipts: receipts.clone() };
        prop_assert!(same(&decoded, &expected), "{:?}", decoded);
        let f = json!({"op": "serve", "service": service});
        let decoded = decode_json(&f.to_string()).expect("serve frame");
        let expected = ClientFrame::Serve { reference: None, service: service.clone() };
        prop_assert!(same(&decoded, &expected), "{:?}", decoded);
    }

    #[test]
    fn topics_to_vec_lists_what_was_given(topics in topics()) {
        let v = topics.to_vec();
        match &topics {
            Topics::One(t) => prop_assert_eq!(v, vec![t.clone()]),
            Topics::Many(ts) => prop_assert_eq!(&v, ts),
        }
    }

    #[test]
    fn close_reasons_fit_a_close_frame(
        reason in prop_oneof![Just("going_away"), Just("slow_consumer"), Just("token_expired")],
        cursors in prop::collection::btree_map("s[0-9]{1,6}", "[0-9a-f]{24}", 0..12),
    ) {
        let out = close_reason(reason, &cursors);
        prop_assert!(out.len() <= 123, "{} bytes: {}", out.len(), out);
        let Some(rest) = out.strip_prefix(reason) else {
            return Err(TestCaseError::fail(format!("{out:?} does not start with {reason:?}")));
        };
        // The pairs are a prefix of the map, in order, each as " sub=cursor", and stop
        // only when the next one would not fit.
        let pairs: Vec<String> = cursors.iter().map(|(s, c)| format!(" {s}={c}")).collect();
        let kept = pairs.iter().scan(0, |n, p| { *n += p.len(); Some(*n) })
            .take_while(|&n| reason.len() + n <= 123)
            .count();
        prop_assert_eq!(rest, pairs[..kept].concat());
    }
}
