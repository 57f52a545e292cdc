//! `ModelContext`: everything a model is built from besides its own config — the feature schema,
//! the tasks (name, kind, polarity), the settings every architecture shares (embedding size,
//! tower shape, regression head), the clip shape when the dataset has clips, and the model's
//! fitted state.

use seesaw_data::feature_map::{FeatureSchema, TaskInfo};
use serde::{Deserialize, Serialize};

/// What a model learns from the training split before its first step and needs again at serving
/// time (FRAME's user–clip graphs, a normaliser of its own). Built by the architecture's `fit`,
/// saved beside the weights in the model directory and in checkpoints, and handed back to `init`
/// through the context. Its content is the model's business: JSON, so that it can be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FittedState(pub serde_json::Value);

/// The clips of each video, when the dataset has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipShape {
    /// N_c: clips per video.
    pub n_clips: usize,
    /// Width of each clip's feature vector; 0 when the dataset has clip labels but no features.
    pub feature_dim: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelContext {
    pub schema: FeatureSchema,
    pub tasks: Vec<TaskInfo>,
    /// Size of every categorical and multi-valued embedding.
    pub embedding_dim: usize,
    /// Hidden layers of each task tower (before its single output unit).
    pub tower_hidden: Vec<usize>,
    pub regression_head: RegressionHead,
    pub clips: Option<ClipShape>,
    /// `None` until the architecture's `fit` has run (and for architectures that fit nothing).
    pub fitted: Option<FittedState>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegressionHead {
    /// Squash into (0, 1): right for watch ratios capped at 1.
    #[default]
    Sigmoid,
    /// Raw tower output: for targets outside (0, 1).
    Identity,
}
