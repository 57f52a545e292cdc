//! How to train: optimiser, schedule, task weighting, early stopping, seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::weighting::TaskWeighting;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    /// Adam: L2 added to the gradient; AdamW: decoupled decay.
    pub weight_decay: f64,
    /// How the embedding tables are stepped: every row every step (`dense`), or only the rows
    /// the batch looked up, with lazy moments (`lazy`, as PyTorch's SparseAdam).
    pub embedding_updates: EmbeddingUpdates,
    /// Linear warm-up from 0 over this many steps.
    pub warmup_steps: usize,
    pub decay: LrDecay,
    pub weighting: TaskWeighting,
    pub early_stopping: EarlyStopping,
    /// Seeds parameter initialisation and batch order: the same seed gives the same numbers.
    pub seed: u64,
    /// Cap on steps per epoch (for quick runs); all batches when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_steps_per_epoch: Option<usize>,
    /// After each epoch, the cosine between every pair of tasks' gradients on the shared
    /// parameters, averaged over this many training batches (the same ones every epoch; one
    /// forward and backward pass per task and batch). 0 turns the diagnostic off; it never
    /// changes the trained weights.
    pub gradient_cosine_batches: usize,
    /// `seesaw train --stream` only: training rows are shuffled within windows of this many
    /// consecutive rows (an in-memory run shuffles the whole training part).
    pub shuffle_rows: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 1024,
            eval_batch_size: 8192,
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            embedding_updates: EmbeddingUpdates::Dense,
            warmup_steps: 0,
            decay: LrDecay::None,
            weighting: TaskWeighting::default(),
            early_stopping: EarlyStopping::default(),
            seed: 0,
            max_steps_per_epoch: None,
            gradient_cosine_batches: 4,
            shuffle_rows: seesaw_data::streamed_dataset::DEFAULT_SHUFFLE_ROWS,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Config(m.into()));
        if self.epochs == 0
            || self.batch_size == 0
            || self.eval_batch_size == 0
            || self.shuffle_rows == 0
        {
            return bad("epochs, batch_size, eval_batch_size and shuffle_rows must be positive");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate must be a positive number");
        }
        if self.weight_decay < 0.0 || self.weight_decay.is_nan() {
            return bad("weight_decay must not be negative");
        }
        self.weighting.validate()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    AdamW,
}

/// See `TrainConfig::embedding_updates` and `crate::lazy_adam`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingUpdates {
    /// The optimiser steps every row of every table on every step.
    Dense,
    /// Only the rows a batch looked up move, and only their moments decay.
    Lazy,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Constant after warm-up.
    None,
    /// Linear to `final_fraction` of the peak over the whole run.
    Linear { final_fraction: f64 },
    /// Cosine to `final_fraction` of the peak over the whole run.
    Cosine { final_fraction: f64 },
}

/// Stop when the validation score has not improved for `patience` epochs; keep the best epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStopping {
    /// Weighted terms of the score (higher is better; lower-is-better metrics count negated).
    /// Empty: the mean AUC of the binary tasks.
    pub monitor: Vec<MonitorTerm>,
    pub patience: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self { monitor: Vec::new(), patience: 2 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorTerm {
    pub task: String,
    /// auc, gauc, logloss, accuracy, mse, rmse or mae.
    pub metric: String,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// Per-task fixed loss weights (absent tasks weigh 1).
pub type FixedWeights = BTreeMap<String, f64>;
