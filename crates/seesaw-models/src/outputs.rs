//! `ModelOutputs`: what every model returns — one [B, 1] tensor per task with its kind, named
//! extra scores (DLEN's emotion), the shared representation h when asked for, and diagnostics.

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use crate::label_rules::ConfidenceRules;

/// What a task's (or an extra score's) tensor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// A binary task's logit: the probability is its sigmoid, and the loss can use the stable
    /// BCE-with-logits.
    Logit,
    /// A probability in [0, 1] (a mixture, a product of probabilities).
    Probability,
    /// A regression prediction, after the regression head.
    Value,
}

impl OutputKind {
    /// Whether the prediction of this kind is a probability (usable for demotion in fusion).
    pub fn is_probability(self) -> bool {
        !matches!(self, OutputKind::Value)
    }
}

#[derive(Debug, Clone)]
pub struct TaskOutput {
    /// [B, 1]
    pub tensor: Tensor<2>,
    pub kind: OutputKind,
}

impl TaskOutput {
    /// The probability (binary) or the value (regression).
    pub fn prediction(&self) -> Tensor<2> {
        match self.kind {
            OutputKind::Logit => sigmoid(self.tensor.clone()),
            OutputKind::Probability | OutputKind::Value => self.tensor.clone(),
        }
    }
}

/// A named score a model adds beside its tasks, declared by the model before any forward pass so
/// that fusion configs and the server can be checked against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtraScore {
    pub name: String,
    pub kind: OutputKind,
    /// For a latent score supervised on the rows whose labels are sure of it (DLEN's emotion):
    /// those rules, so that evaluation scores it on the same rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervision: Option<ConfidenceRules>,
    /// For a clip-level score (FRAME's): the 0-based clip of the row's video it scores, as the
    /// probability of watching through that clip. Evaluation then draws the per-video clip
    /// curve against the observed continuation, whatever the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<usize>,
}

impl ExtraScore {
    pub fn new(name: impl Into<String>, kind: OutputKind) -> Self {
        Self { name: name.into(), kind, supervision: None, clip: None }
    }

    /// The probability of watching through clip `clip` of the row's video.
    pub fn clip(name: impl Into<String>, kind: OutputKind, clip: usize) -> Self {
        Self { clip: Some(clip), ..Self::new(name, kind) }
    }
}

/// One gate's mixing weights, for diagnostics (which experts each task uses).
#[derive(Debug, Clone)]
pub struct GateWeights {
    /// e.g. "level0/task:click" or "level0/shared".
    pub name: String,
    /// [B, n_experts], rows sum to 1.
    pub weights: Tensor<2>,
}

#[derive(Debug, Clone)]
pub struct ModelOutputs {
    /// In task order.
    pub tasks: Vec<TaskOutput>,
    /// In the order of the model's `extra_scores`, each [B, 1].
    pub extras: Vec<TaskOutput>,
    /// The representation every task reads ([B, D]), when the input asked for it and the model
    /// has one (single-task and logistic models do not).
    pub shared: Option<Tensor<2>>,
    /// Gate weights, when the input asked for diagnostics and the model has gates.
    pub gates: Vec<GateWeights>,
}

impl ModelOutputs {
    /// Outputs of the tasks alone.
    pub fn of_tasks(tasks: Vec<TaskOutput>) -> Self {
        Self { tasks, extras: Vec::new(), shared: None, gates: Vec::new() }
    }

    /// Probabilities for binary tasks, values for regression tasks, in task order.
    pub fn predictions(&self) -> Vec<Tensor<2>> {
        self.tasks.iter().map(TaskOutput::prediction).collect()
    }

    /// The extra scores as predictions, in declaration order.
    pub fn extra_predictions(&self) -> Vec<Tensor<2>> {
        self.extras.iter().map(TaskOutput::prediction).collect()
    }
}
