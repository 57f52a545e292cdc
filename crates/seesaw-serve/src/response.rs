//! The answer to `POST /v1/score`: every task's prediction and the fused score per candidate,
//! best first, with the model version and the fusion that ranked them.
//!
//! ```json
//! {"model_version": "3f2a…", "tasks": ["is_click", "is_like", "is_hate"],
//!  "fusion": {"method": "weighted_sum", "weights": {"is_click": 1.0, "is_like": 1.0}, "demote": {"is_hate": 1.0}},
//!  "results": [{"index": 3, "video_id": "5", "fused_score": 0.91, "predictions": {"is_click": 0.62, …}}, …]}
//! ```
//! Predictions are probabilities for binary tasks and values for regression tasks.

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
    /// Task name → prediction, in the model's task order.
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
        predictions: &JobPredictions,
    ) -> Self {
        let names = model.task_names.clone();
        let n_tasks = names.len();
        let mut row = vec![0.0f32; predictions.len()];
        let mut results: Vec<ScoredCandidate> = request
            .candidates
            .iter()
            .enumerate()
            .map(|(i, candidate)| {
                for (k, task) in predictions.iter().enumerate() {
                    row[k] = task[i];
                }
                ScoredCandidate {
                    index: i,
                    video_id: candidate.video_id.0.clone(),
                    fused_score: fusion.score(&row),
                    predictions: TaskValues {
                        names: names.clone(),
                        values: row[..n_tasks].to_vec(),
                    },
                    extras: TaskValues {
                        names: model.extra_names.clone(),
                        values: row[n_tasks..].to_vec(),
                    },
                }
            })
            .collect();
        // Highest first; a stable sort keeps the request's order among equal scores.
        results.sort_by(|a, b| b.fused_score.total_cmp(&a.fused_score));
        Self {
            model_version: model.version.clone(),
            tasks: names.to_vec(),
            fusion: request.fusion.clone().unwrap_or_else(|| model.fusion_config.clone()),
            results,
        }
    }
}
