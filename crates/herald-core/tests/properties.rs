//! Property tests for the parsers and matchers of the core: topic names, patterns,
//! filters, cursors, start positions and JSON-carried payloads.

use herald_core::{
    Cursor, Epoch, Filter, Pattern, Start, TopicName, payload_from_json, payload_to_json,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        // No regression files in the source tree; failures print the minimal input.
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

// ---------------------------------------------------------------------------------------
// Reference implementations, written independently of crates/herald-core/src/topic.rs.

/// The naming rules: 1-16 segments joined by '.', at most 200 bytes in all; a segment is
/// 1-64 bytes of `[A-Za-z0-9_-]`, or (patterns only) `*`, or `>` as the last segment.
fn reference_valid(s: &str, pattern: bool) -> bool {
    let segments: Vec<&str> = s.split('.').collect();
    let last = segments.len() - 1;
    !s.is_empty()
        && s.len() <= 200
        && segments.len() <= 16
        && segments.iter().enumerate().all(|(i, seg)| match *seg {
            "*" => pattern,
            ">" => pattern && i == last,
            _ => {
                (1..=64).contains(&seg.len())
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }
        })
}

/// NATS matching, segment by segment: `*` is any one segment, a final `>` one or more.
/// A wildcard in the first segment never matches a topic whose name starts with `_`.
fn reference_matches(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    if matches!(p[0], "*" | ">") && topic.starts_with('_') {
        return false;
    }
    let (fixed, rest) = match p.split_last() {
        Some((&">", init)) => (init, true),
        _ => (&p[..], false),
    };
    let length_ok = if rest {
        t.len() > fixed.len()
    } else {
        t.len() == fixed.len()
    };
    length_ok && fixed.iter().zip(&t).all(|(ps, ts)| *ps == "*" || ps == ts)
}

// ---------------------------------------------------------------------------------------
// Strategies.

/// Valid topic names: many short segments, or a few long ones (up to 64 bytes).
fn valid_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec("[A-Za-z0-9_-]{1,11}", 1..=16),
        prop::collection::vec("[A-Za-z0-9_-]{1,64}", 1..=3),
    ]
    .prop_map(|segs| segs.join("."))
    .prop_filter("at most 200 bytes", |s| s.len() <= 200)
}

/// Strings built from the characters that matter to the rules, often near-valid.
fn near_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a_.*>é -]{0,24}",
        prop::collection::vec(
            prop_oneof![
                Just("*".to_owned()),
                Just(">".to_owned()),
                Just(String::new()),
                "[A-Za-z0-9_-]{1,70}",
                "[a-z]{0,3}[*>é \u{0}/][a-z]{0,3}",
            ],
            1..=18,
        )
        .prop_map(|segs| segs.join(".")),
    ]
}

/// Segments from a small alphabet so that topics and patterns often line up; `_x` is an
/// internal-looking segment.
fn small_segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "_x", "c-1"])
}

fn small_topic() -> impl Strategy<Value = String> {
    prop::collection::vec(small_segment(), 1..=4).prop_map(|segs| segs.join("."))
}

fn small_pattern() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![small_segment(), Just("*"), Just("*")], 1..=4),
        any::<bool>(),
    )
        .prop_map(|(mut segs, rest)| {
            if rest && let Some(last) = segs.last_mut() {
                *last = ">";
            }
            segs.join(".")
        })
}

/// Every topic of 1-5 segments over the small alphabet and a segment no pattern names.
fn universe() -> &'static [String] {
    static TOPICS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TOPICS.get_or_init(|| {
        let alphabet = ["a", "b", "_x", "c-1", "z"];
        let mut all: Vec<String> = Vec::new();
        let mut level: Vec<String> = vec![String::new()];
        for _ in 0..5 {
            level = level
                .iter()
                .flat_map(|prefix| {
                    alphabet.iter().map(move |seg| {
                        if prefix.is_empty() {
                            (*seg).to_owned()
                        } else {
                            format!("{prefix}.{seg}")
                        }
                    })
                })
                .collect();
            all.extend(level.iter().cloned());
        }
        all
    })
}

fn pattern(s: &str) -> Pattern {
    Pattern::parse(s).unwrap_or_else(|e| panic!("{s:?} should be a valid pattern: {e}"))
}

// ---------------------------------------------------------------------------------------
// Topic names and patterns.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_any_string_never_panics_and_agrees_with_the_rules(s in any::<String>()) {
        prop_assert_eq!(TopicName::parse(&s).is_ok(), reference_valid(&s, false));
        prop_assert_eq!(Pattern::parse(&s).is_ok(), reference_valid(&s, true));
    }

    #[test]
    fn parsing_near_valid_strings_agrees_with_the_rules(s in near_name()) {
        prop_assert_eq!(
            TopicName::parse(&s).is_ok(),
            reference_valid(&s, false),
            "TopicName::parse({:?}) = {:?}", s, TopicName::parse(&s)
        );
        prop_assert_eq!(
            Pattern::parse(&s).is_ok(),
            reference_valid(&s, true),
            "Pattern::parse({:?}) = {:?}", s, Pattern::parse(&s)
        );
    }

    #[test]
    fn valid_names_round_trip(s in valid_name()) {
        let name = TopicName::parse(&s).expect("generated names are valid");
        prop_assert_eq!(name.as_str(), s.as_str());
        prop_assert_eq!(name.to_string(), s.clone());
        prop_assert_eq!(s.parse::<TopicName>().expect("FromStr"), name.clone());

        let p = Pattern::parse(&s).expect("a name is a valid pattern");
        prop_assert_eq!(p.as_str(), s.as_str());
        prop_assert_eq!(p.to_string(), s.clone());
        prop_assert_eq!(p.exact(), Some(s.as_str()));
        prop_assert_eq!(Pattern::from(name), p);
    }

    #[test]
    fn a_name_matches_itself_and_full_wildcards_unless_internal(s in valid_name()) {
        prop_assert!(pattern(&s).matches(&s));
        let internal = s.starts_with('_');
        prop_assert_eq!(pattern(">").matches(&s), !internal);
        let stars = vec!["*"; s.split('.').count()].join(".");
        prop_assert_eq!(pattern(&stars).matches(&s), !internal);
        // The stars match exactly as many segments as the name has; `stars.>` needs more.
        let longer = format!("{s}.z");
        prop_assert!(!pattern(&stars).matches(&longer));
        if s.split('.').count() < 16 {
            let stars_rest = format!("{stars}.>");
            prop_assert!(!pattern(&stars_rest).matches(&s));
            prop_assert_eq!(pattern(&stars_rest).matches(&longer), !internal);
        }
    }

    #[test]
    fn wildcarding_segments_of_a_name_still_matches_it(
        s in valid_name(),
        wild in prop::collection::vec(any::<bool>(), 16),
        rest in any::<bool>(),
    ) {
        let segs: Vec<&str> = s.split('.').collect();
        let mut p: Vec<&str> = segs
            .iter()
            .zip(&wild)
            .map(|(seg, w)| if *w { "*" } else { *seg })
            .collect();
        if rest {
            let keep = (segs.len() - 1).max(1);
            p.truncate(keep);
            if keep < segs.len() {
                p.push(">");
            } else if let Some(last) = p.last_mut() {
                *last = ">";
            }
        }
        let text = p.join(".");
        let pat = pattern(&text);
        let blocked = s.starts_with('_') && matches!(p[0], "*" | ">");
        prop_assert_eq!(pat.matches(&s), !blocked, "{} vs {}", text, s);
        prop_assert_eq!(pat.matches(&s), reference_matches(&text, &s));
    }

    #[test]
    fn matching_agrees_with_the_reference(p in small_pattern(), t in small_topic()) {
        prop_assert_eq!(
            pattern(&p).matches(&t),
            reference_matches(&p, &t),
            "pattern {} topic {}", p, t
        );
    }

    #[test]
    fn covers_is_reflexive_and_full_wildcard_covers_all_non_internal(p in small_pattern()) {
        let pat = pattern(&p);
        prop_assert!(pat.covers(&pat), "{} should cover itself", p);
        prop_assert_eq!(pattern(">").covers(&pat), !p.starts_with('_'), "> covers {}", p);
    }

    #[test]
    fn covers_is_exactly_the_subset_relation(a in small_pattern(), b in small_pattern()) {
        // Over every topic of 1-5 segments drawn from the patterns' alphabet plus a fresh
        // segment, `a` covers `b` exactly when every topic `b` matches, `a` matches too.
        // (Patterns have at most 4 segments, so 5-segment topics tell `*` from `>`.)
        let (pa, pb) = (pattern(&a), pattern(&b));
        let witness = universe().iter().find(|t| pb.matches(t) && !pa.matches(t));
        prop_assert_eq!(
            pa.covers(&pb),
            witness.is_none(),
            "{} covers {}? a topic only the latter matches: {:?}", a, b, witness
        );
    }

    #[test]
    fn filters_match_when_any_pattern_does(
        ps in prop::collection::vec(small_pattern(), 1..6),
        t in small_topic(),
    ) {
        let pats: Vec<Pattern> = ps.iter().map(|p| pattern(p)).collect();
        let f = Filter::new(pats.clone()).expect("1-5 patterns make a filter");
        prop_assert_eq!(f.matches(&t), ps.iter().any(|p| reference_matches(p, &t)));
        // Duplicates are removed; the rest are kept, in text order.
        let mut distinct = ps.clone();
        distinct.sort();
        distinct.dedup();
        let kept: Vec<&str> = f.patterns().iter().map(Pattern::as_str).collect();
        prop_assert_eq!(kept, distinct.iter().map(String::as_str).collect::<Vec<_>>());
        let exact = f.exact_topics();
        prop_assert_eq!(exact.is_some(), ps.iter().all(|p| !p.contains(['*', '>'])));
    }
}

// ---------------------------------------------------------------------------------------
// Cursors and start positions.

fn hex24() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{24}"
}

/// Strings of about 24 bytes mixing hex digits with other (also multi-byte) characters.
fn near_cursor() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::char::range('0', '9'),
            4 => prop::char::range('a', 'f'),
            1 => Just('é'),
            1 => Just('+'),
            1 => Just('g'),
            1 => any::<char>(),
        ],
        18..=25,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cursor_parse_agrees_with_the_format(s in prop_oneof![any::<String>(), near_cursor(), hex24()]) {
        let ok = s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match Cursor::parse(&s) {
            Ok(c) => {
                prop_assert!(ok, "{:?} parsed as {:?}", s, c);
                prop_assert_eq!(c.to_string(), s.to_ascii_lowercase());
                let epoch = u32::from_str_radix(&s[..8], 16).expect("hex");
                let seq = u64::from_str_radix(&s[8..], 16).expect("hex");
                prop_assert_eq!(c, Cursor::new(Epoch(epoch), seq));
            }
            Err(e) => {
                prop_assert!(!ok, "{:?} refused: {}", s, e);
            }
        }
    }

    #[test]
    fn cursors_round_trip(epoch in any::<u32>(), seq in any::<u64>()) {
        let c = Cursor::new(Epoch(epoch), seq);
        let s = c.to_string();
        prop_assert_eq!(s.len(), 24);
        prop_assert!(s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{}", s);
        prop_assert_eq!(s.as_bytes(), &c.encode()[..]);
        prop_assert_eq!(s.clone(), format!("{epoch:08x}{seq:016x}"));
        prop_assert_eq!(Cursor::parse(&s), Ok(c));
        prop_assert_eq!(Start::parse(&s), Ok(Start::After(c)));
        prop_assert_eq!(Start::After(c).to_string(), s);
    }

    #[test]
    fn rendered_cursors_of_one_epoch_sort_in_log_order(
        epoch in any::<u32>(),
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let (ca, cb) = (Cursor::new(Epoch(epoch), a), Cursor::new(Epoch(epoch), b));
        prop_assert_eq!(ca.to_string().cmp(&cb.to_string()), a.cmp(&b));
        prop_assert_eq!(ca.cmp(&cb), a.cmp(&b));
    }

    #[test]
    fn start_parse_never_panics(s in prop_oneof![
        any::<String>(),
        near_cursor(),
        Just("earliest".to_owned()),
        Just("latest".to_owned()),
        "(earliest|latest|Earliest|LATEST| latest)",
    ]) {
        match Start::parse(&s) {
            Ok(Start::Earliest) => prop_assert_eq!(s.as_str(), "earliest"),
            Ok(Start::Latest) => prop_assert_eq!(s.as_str(), "latest"),
            Ok(Start::After(c)) => prop_assert_eq!(Cursor::parse(&s), Ok(c)),
            Err(_) => {
                prop_assert!(s != "earliest" && s != "latest");
                prop_assert!(Cursor::parse(&s).is_err());
            }
        }
        if let Ok(start) = Start::parse(&s) {
            prop_assert_eq!(Start::parse(&start.to_string()), Ok(start));
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON-carried payloads (WebSocket publish, batch publish).

/// The documented JSON content types: base type `application/json` or `…+json`,
/// case-insensitive, parameters ignored.
fn reference_is_json(content_type: &str) -> bool {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    base == "application/json" || (base.len() > 5 && base.ends_with("+json"))
}

/// Content types a client may send: printable ASCII, with the interesting ones often.
///
/// ASCII only: a non-ASCII content type (e.g. "ééé") makes
/// `herald_proto::payload::is_json_type` / `is_text_type` panic, because they slice the
/// string at byte offsets that can fall inside a character. Widen this to `any::<String>()`
/// once those are fixed.
fn ascii_content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_owned()),
        Just("application/cloudevents+json; charset=utf-8".to_owned()),
        Just(" Application/JSON ;x=1".to_owned()),
        Just("text/plain".to_owned()),
        Just("TEXT/html;q=1".to_owned()),
        Just("application/octet-stream".to_owned()),
        Just("+json".to_owned()),
        Just("a+JSON".to_owned()),
        "[ -~]{0,20}",
    ]
}

fn encoding() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        3 => Just("base64".to_owned()),
        1 => Just("BASE64".to_owned()),
        1 => "[a-z0-9]{0,8}",
    ])
}

/// Any JSON value (finite numbers only, as JSON has no others).
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The text of a `data` field: arbitrary text, JSON strings (some valid base64), any JSON.
fn data_json() -> impl Strategy<Value = String> {
    use base64::Engine;
    prop_oneof![
        any::<String>(),
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
        "\"[A-Za-z0-9+/=]{0,12}\"",
        prop::collection::vec(any::<u8>(), 0..24).prop_map(|b| format!(
            "\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(b)
        )),
        json_value().prop_map(|v| v.to_string()),
    ]
}

/// Checks `payload_from_json` against the three documented forms.
fn check_payload_from_json(
    data: &str,
    content_type: Option<String>,
    encoding: Option<&str>,
) -> Result<(), TestCaseError> {
    use base64::Engine;
    let json_string = serde_json::from_str::<String>(data).ok();
    let expected: Option<(String, Vec<u8>)> = match (encoding, &content_type) {
        (Some("base64"), ct) => json_string
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .map(|bytes| {
                let ct = ct
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into());
                (ct, bytes)
            }),
        (Some(_), _) => None,
        (None, None) => Some(("application/json".into(), data.as_bytes().to_vec())),
        (None, Some(ct)) if reference_is_json(ct) => Some((ct.clone(), data.as_bytes().to_vec())),
        (None, Some(ct)) => json_string.map(|text| (ct.clone(), text.into_bytes())),
    };
    let got = payload_from_json(data, content_type.clone(), encoding)
        .map(|(ct, bytes)| (ct, bytes.to_vec()))
        .ok();
    prop_assert_eq!(
        got,
        expected,
        "payload_from_json({:?}, {:?}, {:?})",
        data,
        content_type,
        encoding
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn payload_from_json_agrees_with_the_documented_forms(
        data in data_json(),
        content_type in prop::option::of(ascii_content_type()),
        encoding in encoding(),
    ) {
        check_payload_from_json(&data, content_type, encoding.as_deref())?;
    }

    #[test]
    fn payloads_round_trip_through_json(
        content_type in prop_oneof![
            Just("text/plain"),
            Just("text/csv; charset=utf-8"),
            Just("application/x-www-form-urlencoded"),
            Just("application/octet-stream"),
            Just("image/png"),
            Just("application/json"),
            Just("application/ld+json"),
        ],
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            any::<String>().prop_map(String::into_bytes),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            json_value().prop_map(|v| format!(" {v:#}\n").into_bytes()),
        ],
    ) {
        let (json, enc) = payload_to_json(content_type, &data);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok(), "{}", json);
        let (ct, back) = payload_from_json(&json, Some(content_type.to_owned()), enc)
            .expect("payload_to_json output is accepted");
        prop_assert_eq!(ct.as_str(), content_type);
        let data_is_json = serde_json::from_slice::<serde_json::Value>(&data).is_ok();
        if reference_is_json(content_type) && data_is_json {
            // Embedded JSON comes back as the same JSON value (whitespace may differ).
            prop_assert_eq!(enc, None);
            let a: serde_json::Value = serde_json::from_slice(&back).expect("json back");
            let b: serde_json::Value = serde_json::from_slice(&data).expect("json data");
            prop_assert_eq!(a, b);
        } else {
            prop_assert_eq!(&back[..], &data[..]);
        }
    }
}
