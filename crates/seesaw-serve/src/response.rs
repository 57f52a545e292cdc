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

use serde::Serialize;
use serde::ser::SerializeMap;

use seesaw_models::fusion::{Fusion, FusionConfig};

use crate::batcher::JobPredictions;
use crate::loaded_model::LoadedModel;
use crate::request::ScoreRequest;

#[derive(Debug, Clone, Serialize)]
pub struct ScoreResponse {
    pub model_version: String,
    pub tasks: Vec<String>,
    pub fusion: FusionConfig,
    pub results: Vec<ScoredCandidate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoredCandidate {
    /// The candidate's position in the request.
    pub index: usize,
    pub video_id: String,
    pub fused_score: f64,
    /// Task name → prediction, in the model's task order (absent when the request asked for
    /// none).
    #[serde(skip_serializing_if = "TaskValues::is_empty")]
    pub predictions: TaskValues,
    /// The model's extra scores (e.g. `"emotion"`), each a key of the candidate's object.
    #[serde(flatten)]
    pub extras: TaskValues,
}

/// Task names and values, serialised as one JSON object in task order.
#[derive(Debug, Clone)]
pub struct TaskValues {
    pub names: std::sync::Arc<[String]>,
    pub values: Vec<f32>,
}

impl TaskValues {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
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

impl Serialize for TaskValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (name, value) in self.names.iter().zip(&self.values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl ScoreResponse {
    /// `predictions` is score-major: `predictions[k][i]` is task (or, past the tasks, extra
    /// score) k for candidate i.
    pub fn build(
        model: &LoadedModel,
        request: &ScoreRequest,
        fusion: &Fusion,
        returned: &ReturnedScores,
        predictions: &JobPredictions,
    ) -> Self {
        let n_tasks = model.task_names.len();
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
        let results = ranked
            .into_iter()
            .map(|(i, fused_score)| ScoredCandidate {
                index: i,
                video_id: request.candidates[i].video_id.0.clone(),
                fused_score,
                predictions: TaskValues {
                    names: returned.task_names.clone(),
                    values: returned.tasks.iter().map(|&k| predictions[k][i]).collect(),
                },
                extras: TaskValues {
                    names: returned.extra_names.clone(),
                    values: returned.extras.iter().map(|&k| predictions[n_tasks + k][i]).collect(),
                },
            })
            .collect();
        Self {
            model_version: model.version.clone(),
            tasks: model.task_names.to_vec(),
            fusion: request.fusion.clone().unwrap_or_else(|| model.fusion_config.clone()),
            results,
        }
    }
}
