//! One record per epoch, appended as a JSON line to `metrics.jsonl` so a run can be followed
//! and plotted while it trains.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::evaluate::Evaluation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: usize,
    /// Mean training loss per task over the epoch.
    pub train_loss: BTreeMap<String, f64>,
    /// Mean of each of the model's auxiliary loss terms (DLEN's emotion supervision, FRAME's
    /// BPR, ...) over the epoch's steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auxiliary_loss: BTreeMap<String, f64>,
    /// Loss weight per task used in the epoch (for GradNorm, which moves them every step: the
    /// weights at its end).
    pub task_weights: BTreeMap<String, f64>,
    /// The see-saw diagnostic after the epoch: for each pair of tasks `"a|b"`, the mean cosine
    /// between their gradients on the shared parameters over `[train] gradient_cosine_batches`
    /// training batches. Empty when it is off or the model shares no parameters between tasks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gradient_cosines: BTreeMap<String, f64>,
    pub valid: Evaluation,
    /// The early-stopping score (higher is better).
    pub score: Option<f64>,
    pub learning_rate: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
}

pub fn append_jsonl(path: &Path, record: &EpochRecord) -> Result<()> {
    let io = |e: std::io::Error| TrainError::Checkpoint {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    let line = serde_json::to_string(record).expect("an epoch record serialises");
    writeln!(file, "{line}").map_err(io)
}
