//! The answer to `POST /v1/score`: every task's prediction and the fused score per candidate,
//! best first, with the model version and the fusion that ranked them.
//!
//! ```json
//! {"model_version": "3f2a…", "tasks": ["is_click", "is_like", "is_hate"],
//!  "fusion": {"method": "weighted_sum", "weights": {"is_click": 1.0, "is_like": 1.0}, "demote": {"is_hate": 1.0}},
//!  "results": [{"index": 3, "video_id": "5", "fused_score": 0.91, "predictions": {"is_click": 0.62, …}}, …]}
//! ```
//! Predictions are probabilities for binary tasks and values for regression tasks. A request's
//! `predictions` (names) and `top_k` shrink the answer: a 500-candidate answer of the 6-task
//! KuaiRand model is 106 KB in full, a few KB with `"predictions": [], "top_k": 50`.
//!
//! The server writes the answer with `ScoreResponse::to_json`, the same bytes as serde_json's
//! `to_vec` gives for the `Serialize` implementations here (a test holds the two together), with
//! the candidates' keys escaped once per answer instead of once per candidate and without the
//! per-entry bookkeeping of a serde map: serialising was a fifth of the HTTP thread's time at
//! 1 × 100 requests/s, escaping the same dozen keys 500 times a sixth of that.

use serde::Serialize;
use serde::ser::SerializeMap;

use seesaw_models::fusion::{Fusion, FusionConfig};

use crate::batcher::JobPredictions;
use crate::loaded_model::LoadedModel;
use crate::request::ScoreRequest;

#[derive(Debug, Serialize)]
pub struct ScoreResponse {
    pub model_version: String,
    /// The model's task names (shared, not copied per answer).
    #[serde(serialize_with = "names")]
    pub tasks: std::sync::Arc<[String]>,
    pub fusion: FusionConfig,
    pub results: RankedCandidates,
}

impl ScoreResponse {
    /// The answer as JSON: byte for byte what `serde_json::to_vec(self)` writes.
    pub fn to_json(&self) -> Vec<u8> {
        // About 210 bytes a candidate with every prediction (106 KB for 500), less with fewer.
        let mut out = Vec::with_capacity(256 + 220 * self.results.ranked.len());
        out.extend_from_slice(b"{\"model_version\":");
        write_value(&mut out, &self.model_version);
        out.extend_from_slice(b",\"tasks\":");
        write_value(&mut out, &self.tasks[..]);
        out.extend_from_slice(b",\"fusion\":");
        write_value(&mut out, &self.fusion);
        out.extend_from_slice(b",\"results\":");
        self.results.write_json(&mut out);
        out.push(b'}');
        out
    }
}

/// Appends `value` as serde_json writes it (strings escaped, non-finite floats as `null`).
fn write_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("the answer's values serialise to JSON");
}

/// `"name":` as JSON text, after `separator`.
fn key(separator: &str, name: &str) -> Vec<u8> {
    let mut key = separator.as_bytes().to_vec();
    write_value(&mut key, name);
    key.push(b':');
    key
}

fn names<S: serde::Serializer>(names: &std::sync::Arc<[String]>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(names.iter())
}

/// The candidates best first, serialised straight from the model's score-major predictions:
/// one object per candidate with its `index` (position in the request), `video_id`,
/// `fused_score`, `predictions` (task name -> prediction, in the model's task order; absent when
/// the request asked for none) and each returned extra score (e.g. `"emotion"`) as a key of its
/// own. Nothing is copied per candidate (a first version built a struct with two vectors and the
/// id per candidate: 4% of the server's CPU at 500 candidates).
#[derive(Debug)]
pub struct RankedCandidates {
    /// (candidate index, fused score), best first.
    ranked: Vec<(usize, f64)>,
    /// The request's video ids, in request order.
    video_ids: Vec<String>,
    /// `predictions[k][i]`: task (or, past the tasks, extra score) k of candidate i.
    predictions: JobPredictions,
    n_tasks: usize,
    returned: ReturnedScores,
}

impl Serialize for RankedCandidates {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.ranked.iter().map(|&(i, fused_score)| Candidate {
            all: self,
            index: i,
            fused_score,
        }))
    }
}

impl RankedCandidates {
    /// The `Serialize` implementation's JSON (`Candidate` below), written directly.
    fn write_json(&self, out: &mut Vec<u8>) {
        let returned = &self.returned;
        let task_keys: Vec<Vec<u8>> = returned
            .task_names
            .iter()
            .enumerate()
            .map(|(j, name)| key(if j == 0 { ",\"predictions\":{" } else { "," }, name))
            .collect();
        let extra_keys: Vec<Vec<u8>> =
            returned.extra_names.iter().map(|name| key(",", name)).collect();
        out.push(b'[');
        for (n, &(i, fused_score)) in self.ranked.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"index\":");
            write_value(out, &i);
            out.extend_from_slice(b",\"video_id\":");
            write_value(out, &self.video_ids[i]);
            out.extend_from_slice(b",\"fused_score\":");
            write_value(out, &fused_score);
            for (key, &k) in task_keys.iter().zip(&returned.tasks) {
                out.extend_from_slice(key);
                write_value(out, &self.predictions[k][i]);
            }
            if !returned.tasks.is_empty() {
                out.push(b'}');
            }
            for (key, &k) in extra_keys.iter().zip(&returned.extras) {
                out.extend_from_slice(key);
                write_value(out, &self.predictions[self.n_tasks + k][i]);
            }
            out.push(b'}');
        }
        out.push(b']');
    }
}

/// One candidate's object in the answer.
struct Candidate<'a> {
    all: &'a RankedCandidates,
    index: usize,
    fused_score: f64,
}

impl Serialize for Candidate<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Candidate { all, index, fused_score } = *self;
        let returned = &all.returned;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("index", &index)?;
        map.serialize_entry("video_id", &all.video_ids[index])?;
        map.serialize_entry("fused_score", &fused_score)?;
        if !returned.tasks.is_empty() {
            let values = returned.tasks.iter().map(|&k| all.predictions[k][index]);
            map.serialize_entry(
                "predictions",
                &NamedValues { names: &returned.task_names, values },
            )?;
        }
        for (name, &k) in returned.extra_names.iter().zip(&returned.extras) {
            map.serialize_entry(name, &all.predictions[all.n_tasks + k][index])?;
        }
        map.end()
    }
}

/// Names and values, serialised as one JSON object in that order.
struct NamedValues<'a, I> {
    names: &'a [String],
    values: I,
}

impl<I: Iterator<Item = f32> + Clone> Serialize for NamedValues<'_, I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.values.clone()) {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

/// Which of the model's scores an answer lists per candidate: positions among the tasks and among
/// the extra scores, with their names.
#[derive(Debug, Clone)]
pub struct ReturnedScores {
    tasks: Vec<usize>,
    task_names: std::sync::Arc<[String]>,
    extras: Vec<usize>,
    extra_names: std::sync::Arc<[String]>,
}

impl ReturnedScores {
    /// Every score, or those the request names; an unknown name is a 422 that lists the model's.
    pub fn for_request(
        model: &LoadedModel,
        request: &ScoreRequest,
    ) -> Result<Self, crate::error::ApiError> {
        let Some(names) = &request.predictions else {
            return Ok(Self {
                tasks: (0..model.task_names.len()).collect(),
                task_names: model.task_names.clone(),
                extras: (0..model.extra_names.len()).collect(),
                extra_names: model.extra_names.clone(),
            });
        };
        let (mut tasks, mut extras) = (Vec::new(), Vec::new());
        for name in names {
            if let Some(k) = model.task_names.iter().position(|t| t == name) {
                tasks.push(k);
            } else if let Some(k) = model.extra_names.iter().position(|e| e == name) {
                extras.push(k);
            } else {
                let known: Vec<&str> = model
                    .task_names
                    .iter()
                    .chain(model.extra_names.iter())
                    .map(|s| s.as_str())
                    .collect();
                return Err(crate::error::ApiError::unprocessable(
                    "unknown_prediction",
                    format!(
                        "'predictions' names '{name}', which this model does not score (it scores: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        // In the model's order, each once, whatever order and repeats the request used.
        for positions in [&mut tasks, &mut extras] {
            positions.sort_unstable();
            positions.dedup();
        }
        let pick = |all: &[String], at: &[usize]| at.iter().map(|&k| all[k].clone()).collect();
        Ok(Self {
            task_names: pick(&model.task_names, &tasks),
            extra_names: pick(&model.extra_names, &extras),
            tasks,
            extras,
        })
    }
}

impl ScoreResponse {
    /// `predictions` is score-major: `predictions[k][i]` is task (or, past the tasks, extra
    /// score) k for candidate i. The request's video ids move into the answer.
    pub fn build(
        model: &LoadedModel,
        request: ScoreRequest,
        fusion: &Fusion,
        returned: ReturnedScores,
        predictions: JobPredictions,
    ) -> Self {
        let mut row = vec![0.0f32; predictions.len()];
        let mut ranked: Vec<(usize, f64)> = (0..request.candidates.len())
            .map(|i| {
                for (k, score) in predictions.iter().enumerate() {
                    row[k] = score[i];
                }
                (i, fusion.score(&row))
            })
            .collect();
        // Highest first; a stable sort keeps the request's order among equal scores.
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(request.top_k.unwrap_or(usize::MAX));
        Self {
            model_version: model.version.clone(),
            tasks: model.task_names.clone(),
            fusion: request.fusion.unwrap_or_else(|| model.fusion_config.clone()),
            results: RankedCandidates {
                ranked,
                video_ids: request.candidates.into_iter().map(|c| c.video_id.0).collect(),
                predictions,
                n_tasks: model.task_names.len(),
                returned,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    fn names(names: &[&str]) -> Arc<[String]> {
        names.iter().map(|n| n.to_string()).collect()
    }

    /// Three tasks and two extra scores for four candidates, with names and ids that JSON must
    /// escape and values it cannot hold.
    fn response(tasks: &[usize], extras: &[usize], ranked: Vec<(usize, f64)>) -> ScoreResponse {
        let task_names = names(&["is_click", "long \"view\"", "hate\\d"]);
        let extra_names = names(&["emotion", "π"]);
        let pick = |all: &Arc<[String]>, at: &[usize]| at.iter().map(|&k| all[k].clone()).collect();
        let returned = ReturnedScores {
            tasks: tasks.to_vec(),
            task_names: pick(&task_names, tasks),
            extras: extras.to_vec(),
            extra_names: pick(&extra_names, extras),
        };
        let predictions = vec![
            vec![0.25, f32::NAN, 1e-42, -0.0],
            vec![1.0 / 3.0, f32::INFINITY, 0.5, 7.0],
            vec![0.0, 1.0, f32::MIN_POSITIVE, 123456.79],
            vec![0.9, 0.1, f32::NEG_INFINITY, 0.3],
            vec![0.0, 0.2, 0.4, 0.6],
        ];
        ScoreResponse {
            model_version: "3f2a\u{1}".into(),
            tasks: task_names.clone(),
            fusion: FusionConfig {
                weights: BTreeMap::from([("is_click".to_string(), 1.5)]),
                demote: BTreeMap::from([("hate\\d".to_string(), 0.25)]),
                ..FusionConfig::default()
            },
            results: RankedCandidates {
                ranked,
                video_ids: vec!["5".into(), "a\"b\\c".into(), "\u{7}\n".into(), "日本".into()],
                predictions,
                n_tasks: 3,
                returned,
            },
        }
    }

    #[test]
    fn the_written_answer_is_what_serde_writes() {
        let ranked = vec![(2, 0.75), (0, f64::NAN), (3, 1.0 / 3.0), (1, f64::NEG_INFINITY)];
        let selections: [(&[usize], &[usize]); 5] =
            [(&[0, 1, 2], &[0, 1]), (&[1], &[]), (&[], &[1]), (&[], &[]), (&[0, 2], &[0])];
        for (tasks, extras) in selections {
            for ranked in [ranked.clone(), ranked[..1].to_vec(), Vec::new()] {
                let answer = response(tasks, extras, ranked);
                let want = serde_json::to_vec(&answer).unwrap();
                let got = answer.to_json();
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(want).unwrap(),
                    "tasks {tasks:?}, extras {extras:?}"
                );
            }
        }
    }
}
