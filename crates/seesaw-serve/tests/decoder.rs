//! Property tests of the `POST /v1/score` request decoder (`seesaw_serve::request::decode`):
//! many thousands of generated bodies (random bytes, character and token soups, arbitrary JSON,
//! near-valid and valid requests, mutated requests, bodies at the limits) must never panic, every
//! failure must be a 4xx `ApiError` with a documented code and a message, and whatever decodes
//! must respect the limits.
//!
//! Where a body is valid JSON the test goes further and compares `decode` with a small reference
//! decoder written against `serde_json::Value` (`model_request`), which spells out what the wire
//! format accepts: objects only where a struct belongs, a fusion method as a string. A body that
//! serde_json parses but that has the wrong shape is always a 422 `invalid_request`; only a body
//! it cannot parse is a 400 `malformed_json`.
//!
//! Failure persistence is off so that a failing run writes no regression file next to this one;
//! a case found that way belongs in `known_inputs` below.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

use seesaw_models::fusion::{FusionConfig, FusionMethod};
use seesaw_serve::ApiError;
use seesaw_serve::request::{Candidate, ContextValue, Id, RequestLimits, ScoreRequest, decode};

/// Small limits, so that generated bodies cross them often.
const LIMITS: RequestLimits = RequestLimits { max_candidates: 20, max_body_bytes: 8192 };

/// The codes `decode` documents, with the status each comes with.
const CODES: [(&str, u16); 6] = [
    ("malformed_json", 400),
    ("invalid_utf8", 400),
    ("body_too_large", 413),
    ("invalid_request", 422),
    ("no_candidates", 422),
    ("too_many_candidates", 422),
];

/// Field names of the request, a candidate and a fusion config, and one that is none of them.
const KEYS: [&str; 9] = [
    "user_id",
    "context",
    "candidates",
    "fusion",
    "video_id",
    "weights",
    "method",
    "demote",
    "extra",
];

/// The characters of JSON, for a soup that often gets past the first byte.
const JSON_CHARS: &[u8] = b"{}[]\":,0123456789abcdefghijklmnopqrstuvwxyz_ .-eE\\";

/// Whole JSON tokens, including the request's field names and a few troublemakers: numbers out
/// of range, a lone surrogate escape, an unterminated string, a byte-order mark.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "\n",
    "\"user_id\"",
    "\"context\"",
    "\"candidates\"",
    "\"fusion\"",
    "\"video_id\"",
    "\"weights\"",
    "\"method\"",
    "\"demote\"",
    "\"extra\"",
    "\"weighted_sum\"",
    "\"weighted_product\"",
    "\"\"",
    "\"x\"",
    "\"\\u00e9\"",
    "\"\\ud800\"",
    "\"\\",
    "0",
    "1",
    "-1",
    "-0",
    "1.5",
    "2e3",
    "1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "true",
    "false",
    "null",
    "\u{feff}",
];

// ---------------------------------------------------------------------------------------------
// Checks shared by every property.

/// What must hold for any body and any outcome.
fn check_contract(
    body: &[u8],
    limits: &RequestLimits,
    result: &Result<ScoreRequest, ApiError>,
) -> Result<(), TestCaseError> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
    match result {
        Ok(request) => {
            prop_assert!(body.len() <= limits.max_body_bytes, "accepted {} bytes", body.len());
            prop_assert!(
                (1..=limits.max_candidates).contains(&request.candidates.len()),
                "accepted {} candidates",
                request.candidates.len()
            );
            prop_assert!(!request.user_id.0.is_empty(), "empty user id from {}", shown());
            for candidate in &request.candidates {
                prop_assert!(!candidate.video_id.0.is_empty(), "empty video id from {}", shown());
            }
            let contexts = std::iter::once(&request.context)
                .chain(request.candidates.iter().map(|c| &c.context));
            for value in contexts.flat_map(|c| c.values()) {
                if let ContextValue::Number(v) = value {
                    prop_assert!(v.is_finite(), "context value {v} from {}", shown());
                }
            }
            if let Some(fusion) = &request.fusion {
                for v in fusion.weights.values().chain(fusion.demote.values()) {
                    prop_assert!(v.is_finite(), "fusion number {v} from {}", shown());
                }
            }
            // Whatever decodes is one valid JSON document, and decodes as the reference says.
            // (Duplicate map keys collapse the same way in both: the last one wins.)
            let value: Value = match serde_json::from_slice(body) {
                Ok(value) => value,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "accepted non-JSON ({e}): {}",
                        shown()
                    )));
                }
            };
            prop_assert_eq!(model_request(&value), Ok(request.clone()), "body {}", shown());
        }
        Err(error) => {
            prop_assert!((400..500).contains(&error.status), "{error:?} for {}", shown());
            prop_assert!(!error.message.trim().is_empty(), "{error:?} for {}", shown());
            let status = CODES.iter().find(|(code, _)| *code == error.code).map(|(_, s)| *s);
            prop_assert_eq!(status, Some(error.status), "undocumented code: {:?}", error);
            // The size is checked first, then the encoding, then emptiness.
            prop_assert_eq!(error.code == "body_too_large", body.len() > limits.max_body_bytes);
            if body.len() <= limits.max_body_bytes {
                let text = std::str::from_utf8(body);
                prop_assert_eq!(error.code == "invalid_utf8", text.is_err(), "{:?}", error);
                if text.is_ok_and(|t| t.trim().is_empty()) {
                    prop_assert_eq!(error.code, "malformed_json");
                }
            }
        }
    }
    Ok(())
}

fn decode_and_check(body: &[u8], limits: &RequestLimits) -> Result<ScoreRequest, TestCaseError> {
    let result = decode(body, limits);
    check_contract(body, limits, &result)?;
    result.map_err(|e| TestCaseError::fail(format!("{e:?}")))
}

fn expect_error(
    body: &[u8],
    limits: &RequestLimits,
    status: u16,
    code: &str,
) -> Result<ApiError, TestCaseError> {
    let result = decode(body, limits);
    check_contract(body, limits, &result)?;
    match result {
        Ok(request) => Err(TestCaseError::fail(format!("expected {code}, decoded {request:?}"))),
        Err(error) => {
            prop_assert_eq!((error.status, error.code), (status, code), "{}", error.message);
            Ok(error)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference decoder: what `decode` should make of a body that is valid JSON.

/// Why the reference rejects a valid JSON document. There is one reason: well-formed JSON of the
/// wrong shape is always a 422, never a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A value of the wrong shape or type: serde_json's `Data` category, 422 `invalid_request`.
    Shape,
}

type Model<T> = Result<T, Fault>;

/// Objects only: an array where an object belongs is a wrong shape like any other.
fn model_request(value: &Value) -> Model<ScoreRequest> {
    match value {
        Value::Object(map) => {
            let (mut user_id, mut context, mut candidates, mut fusion) = (None, None, None, None);
            // serde_json reports the first error in document order, which for a `Value`
            // serialised by serde_json is the map's iteration order.
            for (key, value) in map {
                match key.as_str() {
                    "user_id" => user_id = Some(model_id(value)?),
                    "context" => context = Some(model_context(value)?),
                    "candidates" => candidates = Some(model_candidates(value)?),
                    "fusion" => fusion = Some(model_fusion(value)?),
                    _ => return Err(Fault::Shape),
                }
            }
            Ok(ScoreRequest {
                user_id: user_id.ok_or(Fault::Shape)?,
                context: context.unwrap_or_default(),
                candidates: candidates.ok_or(Fault::Shape)?,
                fusion: fusion.flatten(),
                predictions: None,
                top_k: None,
            })
        }
        _ => Err(Fault::Shape),
    }
}

fn model_id(value: &Value) -> Model<Id> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(Id(s.clone())),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Id(n.to_string())),
        _ => Err(Fault::Shape),
    }
}

fn model_context(value: &Value) -> Model<BTreeMap<String, ContextValue>> {
    let Value::Object(map) = value else { return Err(Fault::Shape) };
    map.iter().map(|(k, v)| Ok((k.clone(), model_context_value(v)?))).collect()
}

fn model_context_value(value: &Value) -> Model<ContextValue> {
    match value {
        Value::String(s) => Ok(ContextValue::Text(s.clone())),
        Value::Number(n) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(ContextValue::Number(v)),
            _ => Err(Fault::Shape),
        },
        Value::Bool(b) => Ok(ContextValue::Text(if *b { "1" } else { "0" }.into())),
        Value::Null => Ok(ContextValue::Missing),
        Value::Array(_) | Value::Object(_) => Err(Fault::Shape),
    }
}

fn model_candidates(value: &Value) -> Model<Vec<Candidate>> {
    let Value::Array(items) = value else { return Err(Fault::Shape) };
    items.iter().map(model_candidate).collect()
}

fn model_candidate(value: &Value) -> Model<Candidate> {
    match value {
        Value::Object(map) => {
            let (mut video_id, mut context) = (None, None);
            for (key, value) in map {
                match key.as_str() {
                    "video_id" => video_id = Some(model_id(value)?),
                    "context" => context = Some(model_context(value)?),
                    _ => return Err(Fault::Shape),
                }
            }
            Ok(Candidate {
                video_id: video_id.ok_or(Fault::Shape)?,
                context: context.unwrap_or_default(),
            })
        }
        _ => Err(Fault::Shape),
    }
}

/// `fusion` is an `Option`: `null` is no fusion.
fn model_fusion(value: &Value) -> Model<Option<FusionConfig>> {
    let mut config = FusionConfig::default();
    match value {
        Value::Null => return Ok(None),
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "method" => config.method = model_method(value)?,
                    "weights" => config.weights = model_numbers(value)?,
                    "demote" => config.demote = model_numbers(value)?,
                    _ => return Err(Fault::Shape),
                }
            }
        }
        _ => return Err(Fault::Shape),
    }
    Ok(Some(config))
}

/// A method is a string naming one.
fn model_method(value: &Value) -> Model<FusionMethod> {
    match value.as_str() {
        Some("weighted_sum") => Ok(FusionMethod::WeightedSum),
        Some("weighted_product") => Ok(FusionMethod::WeightedProduct),
        _ => Err(Fault::Shape),
    }
}

fn model_numbers(value: &Value) -> Model<BTreeMap<String, f64>> {
    let Value::Object(map) = value else { return Err(Fault::Shape) };
    map.iter()
        .map(|(k, v)| match v.as_f64() {
            Some(x) => Ok((k.clone(), x)),
            None => Err(Fault::Shape),
        })
        .collect()
}

/// `decode` of `body` (the serialisation of `value`) must be exactly what the reference says.
fn check_against_model(
    body: &[u8],
    value: &Value,
    limits: &RequestLimits,
) -> Result<(), TestCaseError> {
    let result = decode(body, limits);
    check_contract(body, limits, &result)?;
    let expected = if body.len() > limits.max_body_bytes {
        Err((413, "body_too_large"))
    } else {
        match model_request(value) {
            Err(Fault::Shape) => Err((422, "invalid_request")),
            Ok(r) if r.candidates.is_empty() => Err((422, "no_candidates")),
            Ok(r) if r.candidates.len() > limits.max_candidates => {
                Err((422, "too_many_candidates"))
            }
            Ok(r) => Ok(r),
        }
    };
    let body = String::from_utf8_lossy(body);
    match (result, expected) {
        (Ok(got), Ok(want)) => {
            prop_assert_eq!(got, want, "body {}", body);
            Ok(())
        }
        (Err(got), Err(want)) => {
            prop_assert_eq!((got.status, got.code), want, "{} for body {}", got.message, body);
            Ok(())
        }
        (got, want) => Err(TestCaseError::fail(format!(
            "decoded {got:?}, the reference expects {want:?}, for body {body}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Any characters, or (half the time) printable ASCII, quotes and backslashes included.
fn any_string(len: std::ops::Range<usize>) -> impl Strategy<Value = String> + Clone {
    let char = prop_oneof![any::<char>(), prop::char::range(' ', '~')];
    prop::collection::vec(char, len).prop_map(String::from_iter)
}

fn finite_f64() -> BoxedStrategy<f64> {
    use prop::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
        -100.0..100.0f64,
        (-1000i32..1000).prop_map(f64::from),
    ]
    .boxed()
}

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(&KEYS[..]).prop_map(str::to_owned),
        1 => "[a-z_]{0,6}",
        1 => any_string(0..6),
    ]
    .boxed()
}

/// Arbitrary JSON, nested at most 4 deep.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..30).prop_map(Value::from),
        finite_f64().prop_map(Value::from),
        json_key().prop_map(Value::String),
        any_string(0..12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Mostly the right thing, sometimes absent, sometimes anything at all.
fn field(good: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        16 => good.prop_map(Some),
        2 => Just(None),
        2 => json_value().prop_map(Some),
    ]
    .boxed()
}

/// A struct as an object (now and then with a stray key), or positionally as an array.
fn record(fields: Vec<(&'static str, BoxedStrategy<Option<Value>>)>) -> BoxedStrategy<Value> {
    let (names, values): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
    let extra = prop_oneof![
        8 => Just(Vec::new()),
        1 => prop::collection::vec((json_key(), json_value()), 1..3),
    ];
    let object = (values.clone(), extra).prop_map(move |(values, extra)| {
        let mut map = Map::new();
        for (name, value) in names.iter().zip(values) {
            if let Some(value) = value {
                map.insert((*name).to_owned(), value);
            }
        }
        map.extend(extra);
        Value::Object(map)
    });
    let array = (values, prop::option::weighted(0.2, json_value())).prop_map(|(values, extra)| {
        Value::Array(values.into_iter().map_while(|v| v).chain(extra).collect())
    });
    prop_oneof![12 => object, 1 => array].boxed()
}

fn near_id() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => "[a-z0-9]{1,6}".prop_map(Value::String),
        2 => any::<u64>().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        2 => (0i64..100).prop_map(Value::from),
        1 => Just(json!("")),
        1 => finite_f64().prop_map(Value::from),
        1 => any_string(0..6).prop_map(Value::String),
    ]
    .boxed()
}

fn near_context() -> BoxedStrategy<Value> {
    let value = prop_oneof![
        4 => any_string(0..6).prop_map(Value::String),
        4 => finite_f64().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        2 => any::<bool>().prop_map(Value::Bool),
        2 => Just(Value::Null),
        1 => json_value(),
    ];
    prop::collection::vec((prop_oneof![json_key(), "[a-z]{1,4}".boxed()], value), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
        .boxed()
}

fn near_candidate() -> BoxedStrategy<Value> {
    record(vec![("video_id", field(near_id())), ("context", field(near_context()))])
}

fn near_candidates() -> BoxedStrategy<Value> {
    // Either every candidate valid, so that whole requests often decode, or any near-valid mix.
    let valid = prop::collection::vec(gen_candidate(), 0..23)
        .prop_map(|c| Value::Array(c.iter().map(GenCandidate::json).collect()));
    let mixed = prop::collection::vec(near_candidate(), 0..23).prop_map(Value::Array);
    prop_oneof![valid, mixed].boxed()
}

fn near_method() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => prop::sample::select(&["weighted_sum", "weighted_product"][..]).prop_map(Value::from),
        1 => Just(json!("weighted_mean")),
        1 => Just(json!("WeightedSum")),
        1 => Just(json!({"weighted_sum": null})),
        1 => Just(json!({"weighted_product": null, "x": 1})),
        1 => Just(json!({"weighted_product": 1})),
        1 => Just(json!({})),
        1 => Just(json!(null)),
        1 => Just(json!(1)),
        1 => Just(json!(["weighted_sum"])),
        2 => json_value(),
    ]
    .boxed()
}

fn near_numbers() -> BoxedStrategy<Value> {
    let number = prop_oneof![
        8 => finite_f64().prop_map(Value::from),
        2 => any::<i64>().prop_map(Value::from),
        1 => json_value(),
    ];
    prop::collection::vec((json_key(), number), 0..4)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
        .boxed()
}

fn near_fusion() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => record(vec![
            ("method", field(near_method())),
            ("weights", field(near_numbers())),
            ("demote", field(near_numbers())),
        ]),
        1 => Just(Value::Null),
    ]
    .boxed()
}

fn near_request() -> BoxedStrategy<Value> {
    record(vec![
        ("user_id", field(near_id())),
        ("context", field(near_context())),
        ("candidates", field(near_candidates())),
        ("fusion", field(near_fusion())),
    ])
}

/// An id as a client may send it.
#[derive(Debug, Clone)]
enum GenId {
    Text(String),
    Int(i64),
    UInt(u64),
}

impl GenId {
    fn json(&self) -> Value {
        match self {
            GenId::Text(s) => Value::from(s.as_str()),
            GenId::Int(i) => Value::from(*i),
            GenId::UInt(u) => Value::from(*u),
        }
    }

    fn expected(&self) -> Id {
        match self {
            GenId::Text(s) => Id(s.clone()),
            GenId::Int(i) => Id(i.to_string()),
            GenId::UInt(u) => Id(u.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
enum GenValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl GenValue {
    fn json(&self) -> Value {
        match self {
            GenValue::Text(s) => Value::from(s.as_str()),
            GenValue::Int(i) => Value::from(*i),
            GenValue::Float(v) => Value::from(*v),
            GenValue::Bool(b) => Value::Bool(*b),
            GenValue::Null => Value::Null,
        }
    }

    fn expected(&self) -> ContextValue {
        match self {
            GenValue::Text(s) => ContextValue::Text(s.clone()),
            GenValue::Int(i) => ContextValue::Number(*i as f64),
            GenValue::Float(v) => ContextValue::Number(*v),
            GenValue::Bool(b) => ContextValue::Text(if *b { "1" } else { "0" }.into()),
            GenValue::Null => ContextValue::Missing,
        }
    }
}

type GenContext = BTreeMap<String, GenValue>;

fn context_json(context: &GenContext) -> Value {
    Value::Object(context.iter().map(|(k, v)| (k.clone(), v.json())).collect())
}

fn context_expected(context: &Option<GenContext>) -> BTreeMap<String, ContextValue> {
    let entries = context.iter().flatten();
    entries.map(|(k, v)| (k.clone(), v.expected())).collect()
}

#[derive(Debug, Clone)]
struct GenCandidate {
    video_id: GenId,
    context: Option<GenContext>,
    context_first: bool,
}

impl GenCandidate {
    fn json(&self) -> Value {
        let mut map = Map::new();
        map.insert("video_id".into(), self.video_id.json());
        if let Some(context) = &self.context {
            map.insert("context".into(), context_json(context));
        }
        Value::Object(map)
    }

    /// The candidate with its fields in the generated order.
    fn text(&self) -> String {
        let id = format!("\"video_id\":{}", self.video_id.json());
        match &self.context {
            None => format!("{{{id}}}"),
            Some(context) => {
                let context = format!("\"context\":{}", context_json(context));
                if self.context_first {
                    format!("{{{context},{id}}}")
                } else {
                    format!("{{{id},{context}}}")
                }
            }
        }
    }

    fn expected(&self) -> Candidate {
        Candidate { video_id: self.video_id.expected(), context: context_expected(&self.context) }
    }
}

/// A fusion config; `None` fields are left out of the JSON.
#[derive(Debug, Clone)]
struct GenFusion {
    method: Option<FusionMethod>,
    weights: Option<BTreeMap<String, f64>>,
    demote: Option<BTreeMap<String, f64>>,
}

impl GenFusion {
    fn json(&self) -> Value {
        let mut map = Map::new();
        if let Some(method) = self.method {
            map.insert("method".into(), serde_json::to_value(method).expect("a method"));
        }
        if let Some(weights) = &self.weights {
            map.insert("weights".into(), json!(weights));
        }
        if let Some(demote) = &self.demote {
            map.insert("demote".into(), json!(demote));
        }
        Value::Object(map)
    }

    fn expected(&self) -> FusionConfig {
        FusionConfig {
            method: self.method.unwrap_or_default(),
            weights: self.weights.clone().unwrap_or_default(),
            demote: self.demote.clone().unwrap_or_default(),
        }
    }
}

/// A valid request, and how to write it.
#[derive(Debug, Clone)]
struct GenRequest {
    user_id: GenId,
    context: Option<GenContext>,
    candidates: Vec<GenCandidate>,
    /// `Some(None)` is `"fusion": null`.
    fusion: Option<Option<GenFusion>>,
    /// The order of the top-level fields in the text.
    order: Vec<usize>,
    pretty: bool,
}

impl GenRequest {
    fn body(&self) -> Vec<u8> {
        let candidates = self.candidates.iter().map(GenCandidate::text).collect::<Vec<_>>();
        let mut fields = [
            Some(format!("\"user_id\":{}", self.user_id.json())),
            self.context.as_ref().map(|c| format!("\"context\":{}", context_json(c))),
            Some(format!("\"candidates\":[{}]", candidates.join(","))),
            self.fusion.as_ref().map(|f| {
                let fusion = f.as_ref().map_or(Value::Null, GenFusion::json);
                format!("\"fusion\":{fusion}")
            }),
        ];
        let text = format!(
            "{{{}}}",
            self.order.iter().filter_map(|&i| fields[i].take()).collect::<Vec<_>>().join(",")
        );
        if self.pretty {
            let value: Value = serde_json::from_str(&text).expect("the generated text is JSON");
            serde_json::to_vec_pretty(&value).expect("serialisable")
        } else {
            text.into_bytes()
        }
    }

    fn expected(&self) -> ScoreRequest {
        ScoreRequest {
            user_id: self.user_id.expected(),
            context: context_expected(&self.context),
            candidates: self.candidates.iter().map(GenCandidate::expected).collect(),
            fusion: self.fusion.clone().flatten().map(|f| f.expected()),
            predictions: None,
            top_k: None,
        }
    }
}

fn gen_id() -> BoxedStrategy<GenId> {
    prop_oneof![
        3 => any_string(1..12).prop_map(GenId::Text),
        1 => "[a-z0-9_-]{1,10}".prop_map(GenId::Text),
        2 => any::<i64>().prop_map(GenId::Int),
        1 => (0i64..1000).prop_map(GenId::Int),
        2 => any::<u64>().prop_map(GenId::UInt),
    ]
    .boxed()
}

fn gen_context() -> BoxedStrategy<GenContext> {
    let value = prop_oneof![
        any_string(0..10).prop_map(GenValue::Text),
        any::<i64>().prop_map(GenValue::Int),
        finite_f64().prop_map(GenValue::Float),
        any::<bool>().prop_map(GenValue::Bool),
        Just(GenValue::Null),
    ];
    prop::collection::btree_map(any_string(0..8), value, 0..4).boxed()
}

fn gen_candidate() -> BoxedStrategy<GenCandidate> {
    (gen_id(), prop::option::of(gen_context()), any::<bool>())
        .prop_map(|(video_id, context, context_first)| GenCandidate {
            video_id,
            context,
            context_first,
        })
        .boxed()
}

fn gen_fusion() -> BoxedStrategy<GenFusion> {
    let method = prop_oneof![Just(FusionMethod::WeightedSum), Just(FusionMethod::WeightedProduct)];
    let numbers = || prop::collection::btree_map(any_string(0..10), finite_f64(), 0..4);
    (prop::option::of(method), prop::option::of(numbers()), prop::option::of(numbers()))
        .prop_map(|(method, weights, demote)| GenFusion { method, weights, demote })
        .boxed()
}

fn gen_request_with(candidates: BoxedStrategy<Vec<GenCandidate>>) -> BoxedStrategy<GenRequest> {
    let fusion = prop::option::of(prop::option::weighted(0.8, gen_fusion()));
    let order = Just(vec![0, 1, 2, 3]).prop_shuffle();
    (
        gen_id(),
        prop::option::of(gen_context()),
        candidates,
        fusion,
        order,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(user_id, context, candidates, fusion, order, pretty)| GenRequest {
            user_id,
            context,
            candidates,
            fusion,
            order,
            pretty,
        })
        .boxed()
}

/// A valid request within `LIMITS`.
fn gen_request() -> BoxedStrategy<GenRequest> {
    gen_request_with(prop::collection::vec(gen_candidate(), 1..=LIMITS.max_candidates).boxed())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: Index, mask: u8 },
    Delete { at: Index, len: usize },
    Duplicate { at: Index, len: usize },
    Insert { at: Index, bytes: Vec<u8> },
    Truncate { at: Index },
}

fn mutation() -> BoxedStrategy<Mutation> {
    let bytes = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 1..8),
        2 => prop::collection::vec(prop::sample::select(JSON_CHARS), 1..8),
        2 => prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
    ];
    // Mostly masks that keep an ASCII byte ASCII, so that not every mutant is invalid UTF-8.
    let mask = prop_oneof![3 => 1..=127u8, 1 => 1..=255u8];
    prop_oneof![
        3 => (any::<Index>(), mask).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        2 => (any::<Index>(), 1..32usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        2 => (any::<Index>(), 1..64usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        3 => (any::<Index>(), bytes).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
    ]
    .boxed()
}

fn mutate(body: &mut Vec<u8>, mutation: &Mutation) {
    let len = body.len();
    match mutation {
        Mutation::Insert { at, bytes } => {
            let i = at.index(len + 1);
            body.splice(i..i, bytes.iter().copied());
        }
        _ if len == 0 => {}
        Mutation::Flip { at, mask } => body[at.index(len)] ^= mask,
        Mutation::Delete { at, len: n } => {
            let i = at.index(len);
            body.drain(i..(i + n).min(len));
        }
        Mutation::Duplicate { at, len: n } => {
            let i = at.index(len);
            let copy = body[i..(i + n).min(len)].to_vec();
            body.splice(i..i, copy);
        }
        Mutation::Truncate { at } => body.truncate(at.index(len)),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Arbitrary bytes and soups: no panic, only documented 4xx errors.

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        check_contract(&body, &LIMITS, &decode(&body, &LIMITS))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn utf8_strings_never_panic(text in any_string(0..1024)) {
        check_contract(text.as_bytes(), &LIMITS, &decode(text.as_bytes(), &LIMITS))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn json_character_soup_never_panics(
        body in prop::collection::vec(prop::sample::select(JSON_CHARS), 0..1024),
    ) {
        check_contract(&body, &LIMITS, &decode(&body, &LIMITS))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn json_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..300)) {
        let body = tokens.concat();
        check_contract(body.as_bytes(), &LIMITS, &decode(body.as_bytes(), &LIMITS))?;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Structured JSON: arbitrary trees and near-valid requests decode as the reference says.

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_json_decodes_as_the_reference_says(value in json_value(), pretty in any::<bool>()) {
        let body = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) };
        check_against_model(&body.expect("serialisable"), &value, &LIMITS)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn near_valid_requests_decode_as_the_reference_says(value in near_request()) {
        let body = serde_json::to_vec(&value).expect("serialisable");
        check_against_model(&body, &value, &LIMITS)?;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Round trip: a valid request decodes to exactly what was generated.

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn valid_requests_round_trip(request in gen_request()) {
        let body = request.body();
        prop_assume!(body.len() <= LIMITS.max_body_bytes, "rarely, a generated request is too big");
        let decoded = decode_and_check(&body, &LIMITS)?;
        let expected = request.expected();
        prop_assert_eq!(&decoded.user_id, &expected.user_id);
        prop_assert_eq!(&decoded.context, &expected.context);
        prop_assert_eq!(decoded.candidates.len(), expected.candidates.len());
        for (got, want) in decoded.candidates.iter().zip(&expected.candidates) {
            prop_assert_eq!(got, want);
        }
        prop_assert_eq!(&decoded.fusion, &expected.fusion);
        prop_assert_eq!(decoded, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Mutations of valid requests: Ok or a documented 4xx error.

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_requests_never_panic(
        request in gen_request(),
        mutations in prop::collection::vec(mutation(), 1..=8),
    ) {
        let mut body = request.body();
        for m in &mutations {
            mutate(&mut body, m);
        }
        check_contract(&body, &LIMITS, &decode(&body, &LIMITS))?;
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Limits: the body size and the candidate count, on both sides of each limit.

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn body_size_limit(request in gen_request(), padding in 0..1024usize, max_body_bytes in 32..4096usize) {
        // Whitespace around the document keeps it valid JSON of any length.
        let mut body = vec![b' '; padding / 2];
        body.extend(request.body());
        body.resize(body.len() + padding - padding / 2, b'\n');
        let limits = RequestLimits { max_body_bytes, ..LIMITS };
        if body.len() > max_body_bytes {
            let error = expect_error(&body, &limits, 413, "body_too_large")?;
            prop_assert!(error.message.contains(&body.len().to_string()), "{}", error.message);
        } else {
            prop_assert_eq!(decode_and_check(&body, &limits)?, request.expected());
        }
        // Exactly at the limit is accepted, one byte under it is not.
        let at = RequestLimits { max_body_bytes: body.len(), ..LIMITS };
        prop_assert_eq!(decode_and_check(&body, &at)?, request.expected());
        let under = RequestLimits { max_body_bytes: body.len() - 1, ..LIMITS };
        expect_error(&body, &under, 413, "body_too_large")?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn oversized_garbage_is_body_too_large(
        body in prop::collection::vec(any::<u8>(), LIMITS.max_body_bytes + 1..LIMITS.max_body_bytes + 2048),
    ) {
        // The size is checked before anything else: invalid UTF-8 or JSON does not matter.
        expect_error(&body, &LIMITS, 413, "body_too_large")?;
    }
}

/// A candidate limit, and a candidate count at, around or away from it.
fn limit_and_count() -> BoxedStrategy<(usize, Vec<GenCandidate>)> {
    (1..=40usize)
        .prop_flat_map(|limit| {
            let count = prop_oneof![Just(0), Just(limit), Just(limit + 1), 0..=limit + 3];
            (Just(limit), count)
        })
        .prop_flat_map(|(limit, count)| {
            (Just(limit), prop::collection::vec(gen_candidate(), count..=count))
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn candidate_count_limit(
        (max_candidates, candidates) in limit_and_count(),
        request in gen_request_with(Just(Vec::new()).boxed()),
    ) {
        let request = GenRequest { candidates, ..request };
        let limits = RequestLimits { max_candidates, max_body_bytes: 1 << 20 };
        let body = request.body();
        let count = request.candidates.len();
        if count == 0 {
            expect_error(&body, &limits, 422, "no_candidates")?;
        } else if count > max_candidates {
            let error = expect_error(&body, &limits, 422, "too_many_candidates")?;
            prop_assert!(error.message.contains(&max_candidates.to_string()), "{}", error.message);
        } else {
            prop_assert_eq!(decode_and_check(&body, &limits)?, request.expected());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed inputs: the boundaries at `LIMITS`, and behaviour the generators found worth pinning.

fn request_with(candidates: usize) -> Vec<u8> {
    let candidates = (0..candidates).map(|i| json!({"video_id": i})).collect::<Vec<_>>();
    serde_json::to_vec(&json!({"user_id": 1, "candidates": candidates})).unwrap()
}

#[test]
fn limits_at_the_edges() {
    let max = LIMITS.max_candidates;
    assert_eq!(decode(&request_with(max), &LIMITS).unwrap().candidates.len(), max);
    let error = decode(&request_with(max + 1), &LIMITS).unwrap_err();
    assert_eq!((error.status, error.code), (422, "too_many_candidates"));
    let error = decode(&request_with(0), &LIMITS).unwrap_err();
    assert_eq!((error.status, error.code), (422, "no_candidates"));

    let mut body = request_with(1);
    body.resize(LIMITS.max_body_bytes, b' ');
    assert!(decode(&body, &LIMITS).is_ok());
    body.push(b' ');
    let error = decode(&body, &LIMITS).unwrap_err();
    assert_eq!((error.status, error.code), (413, "body_too_large"));
}

/// Decodes, or fails with this status and code.
type Expected = Result<(), (u16, &'static str)>;

#[test]
fn known_inputs() {
    let cases: &[(&str, Expected)] = &[
        // Objects only: serde's positional array form of a struct is refused, whatever its length.
        (r#"[1, {}, [{"video_id": 5}]]"#, Err((422, "invalid_request"))),
        (r#"[1, {}, [[5]], null, 0]"#, Err((422, "invalid_request"))),
        (r#"{"user_id": 1, "candidates": [[5, {"tab": 1}]]}"#, Err((422, "invalid_request"))),
        (r#"{"user_id": 1, "candidates": [[5, {}, 6]]}"#, Err((422, "invalid_request"))),
        (
            r#"{"user_id": 1, "candidates": [{"video_id": 5}], "fusion": []}"#,
            Err((422, "invalid_request")),
        ),
        (r#"{"user_id": 1, "candidates": [{"video_id": 5}], "fusion": null}"#, Ok(())),
        // The method is a string; anything else is a wrong shape (422), not a syntax error.
        (
            r#"{"user_id": 1, "candidates": [{"video_id": 5}], "fusion": {"method": {"weighted_sum": null}}}"#,
            Err((422, "invalid_request")),
        ),
        (
            r#"{"user_id": 1, "candidates": [{"video_id": 5}], "fusion": {"method": 1}}"#,
            Err((422, "invalid_request")),
        ),
        (
            r#"{"user_id": 1, "candidates": [{"video_id": 5}], "fusion": {"method": null}}"#,
            Err((422, "invalid_request")),
        ),
        (
            r#"{"user_id": 1, "candidates": [{"video_id": 5}], "fusion": {"method": "mean"}}"#,
            Err((422, "invalid_request")),
        ),
        // serde stops at the first bad field, so a truncated body can be a 422 rather than a 400.
        (r#"{"extra": 1, "candidates": ["#, Err((422, "invalid_request"))),
        (r#"{"user_id": 1.5, "candidates": [{"#, Err((422, "invalid_request"))),
        (r#"{"user_id": 1, "candidates": [{"video_id": 5}]"#, Err((400, "malformed_json"))),
        // Numbers JSON allows but f64 cannot hold, and a lone surrogate, are syntax errors.
        (
            r#"{"user_id": 1, "context": {"x": 1e999}, "candidates": [{"video_id": 5}]}"#,
            Err((400, "malformed_json")),
        ),
        (r#"{"user_id": "\ud800", "candidates": [{"video_id": 5}]}"#, Err((400, "malformed_json"))),
        // An integer id beyond i64/u64 is parsed as a float, so it is not an id.
        (
            r#"{"user_id": 18446744073709551616, "candidates": [{"video_id": 5}]}"#,
            Err((422, "invalid_request")),
        ),
        // `-0` too: serde_json reads it as the float -0.0.
        (r#"{"user_id": -0, "candidates": [{"video_id": 5}]}"#, Err((422, "invalid_request"))),
        // A byte-order mark is not JSON whitespace.
        (
            "\u{feff}{\"user_id\": 1, \"candidates\": [{\"video_id\": 5}]}",
            Err((400, "malformed_json")),
        ),
        // Unicode whitespace only counts as an empty body.
        ("\u{a0}\u{2003}", Err((400, "malformed_json"))),
    ];
    for (body, expected) in cases {
        let result = decode(body.as_bytes(), &LIMITS);
        check_contract(body.as_bytes(), &LIMITS, &result).unwrap();
        let got = result.as_ref().map(|_| ()).map_err(|e| (e.status, e.code));
        assert_eq!(&got, expected, "{body}: {result:?}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let limits = RequestLimits::default();
    let depth = 100_000;
    let nested =
        |open: &str, close: &str| format!("{}1{}", open.repeat(depth), close.repeat(depth));
    // Nesting inside a value that is read whole (an id, a context value) meets serde_json's
    // recursion limit (128), which reports valid but deep JSON as a syntax error.
    let too_deep = [
        nested("{\"user_id\":", "}"),
        format!("{{\"user_id\": {}, \"candidates\": [{{\"video_id\": 1}}]}}", nested("[", "]")),
        format!(
            "{{\"user_id\": 1, \"context\": {{\"x\": {}}}, \"candidates\": [{{\"video_id\": 1}}]}}",
            nested("{\"a\":", "}")
        ),
    ];
    for body in too_deep {
        assert!(body.len() <= limits.max_body_bytes);
        let error = decode(body.as_bytes(), &limits).unwrap_err();
        assert_eq!((error.status, error.code), (400, "malformed_json"), "{}", error.message);
        assert!(error.message.contains("recursion limit"), "{}", error.message);
    }
    // Nesting where an object belongs (the request, a candidate) is refused at its first bracket.
    let wrong_shape =
        [nested("[", "]"), format!("{{\"user_id\": 1, \"candidates\": {}}}", nested("[", "]"))];
    for body in wrong_shape {
        let error = decode(body.as_bytes(), &limits).unwrap_err();
        assert_eq!((error.status, error.code), (422, "invalid_request"), "{}", error.message);
        assert!(error.message.contains("expected a JSON object"), "{}", error.message);
    }
}
