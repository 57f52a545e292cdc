//! `ModelContext`: everything a model is built from besides its own config — the feature schema,
//! the tasks (name, kind, polarity), the settings every architecture shares (embedding size,
//! tower shape, regression head), the clip shape when the dataset has clips, and the model's
//! fitted state.

use seesaw_data::feature_map::{FeatureMap, FeatureSchema, TaskInfo};
use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, RegressionHead};

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

impl ModelContext {
    pub fn new(config: &ModelConfig, schema: FeatureSchema, tasks: Vec<TaskInfo>) -> Self {
        Self {
            schema,
            tasks,
            embedding_dim: config.embedding_dim,
            tower_hidden: config.tower_hidden.clone(),
            regression_head: config.regression_head,
            clips: None,
            fitted: None,
        }
    }

    /// The context of a dataset: its schema, tasks and clip shape.
    pub fn from_feature_map(config: &ModelConfig, map: &FeatureMap) -> Self {
        let clips = map
            .spec
            .labels
            .clips
            .map(|n_clips| ClipShape { n_clips, feature_dim: map.clip_feature_dim.unwrap_or(0) });
        Self { clips, ..Self::new(config, map.schema(), map.tasks.clone()) }
    }

    pub fn with_fitted(self, fitted: Option<FittedState>) -> Self {
        Self { fitted, ..self }
    }
}
