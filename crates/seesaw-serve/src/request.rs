//! The body of `POST /v1/score`, decoded from raw bytes so that every way a client can get it
//! wrong (invalid UTF-8, malformed JSON, wrong types, no or too many candidates) becomes a typed
//! 4xx error with a message, never a panic.
//!
//! ```json
//! {"user_id": 17, "context": {"tab": 1},
//!  "candidates": [{"video_id": 5}, {"video_id": "9", "context": {"tab": 2}}],
//!  "fusion": {"method": "weighted_sum", "weights": {"is_click": 1.0}, "demote": {"is_hate": 2.0}}}
//! ```
//! Ids may be strings or integers (KuaiRand's are integers). A candidate's `context` overrides
//! the request's for that candidate. `fusion` replaces the model's fusion for this request.
//!
//! A compact response: `"predictions": ["click"]` returns only those scores per candidate (`[]`:
//! only the fused score), and `"top_k": 50` only the best 50 candidates.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use seesaw_data::feature_map::FeatureValue;
use seesaw_models::fusion::FusionConfig;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub user_id: Id,
    #[serde(default)]
    pub context: Context,
    #[serde(deserialize_with = "candidate_objects")]
    pub candidates: Vec<Candidate>,
    #[serde(default, deserialize_with = "fusion_object")]
    pub fusion: Option<FusionConfig>,
    /// The scores (task or extra score names) each candidate's answer lists: all when absent,
    /// only the fused score when empty.
    #[serde(default)]
    pub predictions: Option<Vec<String>>,
    /// Answer only the best `top_k` candidates (all when absent).
    #[serde(default)]
    pub top_k: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    pub video_id: Id,
    #[serde(default)]
    pub context: Context,
}

/// Reads a `T` only from a JSON object. serde's derive also takes a struct written positionally
/// as an array (`[17, {}, [[5]]]`), which no client means to send and which made some arrays a
/// 400 "trailing characters" instead of a 422.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(ObjectOnly)
    }
}

fn candidate_objects<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Candidate>, D::Error> {
    let candidates = Vec::<ObjectOnly<Candidate>>::deserialize(d)?;
    Ok(candidates.into_iter().map(|c| c.0).collect())
}

fn fusion_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FusionConfig>, D::Error> {
    Ok(Option::<ObjectOnly<FusionConfig>>::deserialize(d)?.map(|f| f.0))
}

/// Context features by name (log-level features such as `tab`).
pub type Context = BTreeMap<String, ContextValue>;

/// A user or video id, written as the log writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct Id(pub String);

impl TryFrom<serde_json::Value> for Id {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(s) if !s.is_empty() => Ok(Id(s)),
            serde_json::Value::String(_) => Err("an id must not be empty".into()),
            serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Id(n.to_string())),
            serde_json::Value::Number(n) if n.as_f64().is_some_and(|v| v.fract() == 0.0) => {
                Err(format!(
                    "an id must be a string or a 64-bit integer; {n} is too large: send it as a string"
                ))
            }
            other => Err(format!("an id must be a string or an integer, not {}", kind_of(&other))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub enum ContextValue {
    Text(String),
    Number(f64),
    /// `null`: what an empty cell in a log would be.
    Missing,
}

impl TryFrom<serde_json::Value> for ContextValue {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::String(s) => Ok(ContextValue::Text(s)),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(v) if v.is_finite() => Ok(ContextValue::Number(v)),
                _ => Err(format!("context value {n} is not a finite number")),
            },
            serde_json::Value::Bool(b) => Ok(ContextValue::Text(u8::from(b).to_string())),
            serde_json::Value::Null => Ok(ContextValue::Missing),
            other => Err(format!(
                "a context value must be a string, number, boolean or null, not {}",
                kind_of(&other)
            )),
        }
    }
}

impl ContextValue {
    pub fn as_feature_value(&self) -> FeatureValue<'_> {
        match self {
            ContextValue::Text(s) => FeatureValue::Text(s),
            ContextValue::Number(v) => FeatureValue::Number(*v),
            ContextValue::Missing => FeatureValue::Missing,
        }
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a fractional number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// What a request may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_candidates: usize,
    pub max_body_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { max_candidates: 2000, max_body_bytes: 2 * 1024 * 1024 }
    }
}

/// Decodes and checks a score request. The JSON is checked for shape here; ids and context
/// names are checked against the model when the request is encoded.
pub fn decode(body: &[u8], limits: &RequestLimits) -> Result<ScoreRequest, ApiError> {
    if body.len() > limits.max_body_bytes {
        return Err(ApiError::body_too_large(Some(body.len()), limits.max_body_bytes));
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_utf8",
            format!("the body is not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        )
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "malformed_json",
            "the body is empty; send a JSON object",
        ));
    }
    let ObjectOnly(request) =
        serde_json::from_str::<ObjectOnly<ScoreRequest>>(text).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::unprocessable("invalid_request", e.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
                }
            }
        })?;
    if request.candidates.is_empty() {
        return Err(ApiError::unprocessable(
            "no_candidates",
            "'candidates' is empty: send at least one",
        ));
    }
    if request.top_k == Some(0) {
        return Err(ApiError::unprocessable(
            "invalid_top_k",
            "'top_k' is 0: ask for at least one candidate, or leave it out for all",
        ));
    }
    if request.candidates.len() > limits.max_candidates {
        return Err(ApiError::unprocessable(
            "too_many_candidates",
            format!(
                "{} candidates is more than this server's limit of {}",
                request.candidates.len(),
                limits.max_candidates
            ),
        ));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RequestLimits {
        RequestLimits { max_candidates: 3, max_body_bytes: 1000 }
    }

    fn decoded(body: &str) -> Result<ScoreRequest, ApiError> {
        decode(body.as_bytes(), &limits())
    }

    #[test]
    fn a_full_request() {
        let request = decoded(
            r#"{"user_id": 17, "context": {"tab": 1, "x": null, "y": true},
                "candidates": [{"video_id": 5}, {"video_id": "v9", "context": {"tab": "2"}}],
                "fusion": {"weights": {"is_click": 1.0}}}"#,
        )
        .unwrap();
        assert_eq!(request.user_id, Id("17".into()));
        assert_eq!(request.context["tab"], ContextValue::Number(1.0));
        assert_eq!(request.context["x"], ContextValue::Missing);
        assert_eq!(request.context["y"], ContextValue::Text("1".into()));
        assert_eq!(request.candidates[1].video_id, Id("v9".into()));
        assert_eq!(request.candidates[1].context["tab"], ContextValue::Text("2".into()));
        assert_eq!(request.fusion.unwrap().weights["is_click"], 1.0);
    }

    #[test]
    fn an_id_too_large_for_an_integer_is_called_that_not_fractional() {
        let error = decoded(r#"{"user_id": 1e30, "candidates": [{"video_id": 1}]}"#).unwrap_err();
        assert!(error.message.contains("too large") && !error.message.contains("fractional"));
        let error = decoded(r#"{"user_id": 1.5, "candidates": [{"video_id": 1}]}"#).unwrap_err();
        assert!(error.message.contains("fractional"), "{}", error.message);
    }

    #[test]
    fn each_mistake_has_its_status_and_code() {
        let cases: [(&[u8], u16, &str); 17] = [
            (b"{\"user_id\": 1, \"candidates\": [", 400, "malformed_json"),
            (b"", 400, "malformed_json"),
            (b"\xff\xfe{}", 400, "invalid_utf8"),
            (b"[1, 2]", 422, "invalid_request"),
            (br#"{"user_id": 1.5, "candidates": [{"video_id": 1}]}"#, 422, "invalid_request"),
            (br#"{"user_id": "", "candidates": [{"video_id": 1}]}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": [{"video": 1}]}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": {"video_id": 1}}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": [[1]]}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": [[1, {}, 2]]}"#, 422, "invalid_request"),
            (br#"[1, {}, [{"video_id": 1}]]"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": [{"video_id": 1}], "fusion": ["weighted_sum"]}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": [{"video_id": 1}], "fusion": {"method": 1}}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": [], "extra": 1}"#, 422, "invalid_request"),
            (br#"{"user_id": 1, "candidates": []}"#, 422, "no_candidates"),
            (
                br#"{"user_id": 1, "candidates": [{"video_id": 1}, {"video_id": 2}, {"video_id": 3}, {"video_id": 4}]}"#,
                422,
                "too_many_candidates",
            ),
            (br#"{"user_id": 1, "context": {"tab": [1]}, "candidates": [{"video_id": 1}]}"#, 422, "invalid_request"),
        ];
        for (body, status, code) in cases {
            let error = decode(body, &limits()).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (status, code),
                "{}: {}",
                String::from_utf8_lossy(body),
                error.message
            );
            assert!(!error.message.is_empty());
        }
        let big = vec![b' '; 1001];
        assert_eq!(decode(&big, &limits()).unwrap_err().status, 413);
    }
}
