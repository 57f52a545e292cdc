//! `TaskOutputs`: what every model returns, one [B, 1] tensor per task in task order. Binary
//! tasks carry the logit (so the trainer can use the stable BCE-with-logits), regression tasks
//! the prediction after the configured regression head.

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use seesaw_data::feature_map::{TaskInfo, TaskKind};

#[derive(Debug, Clone)]
pub struct TaskOutputs {
    pub outputs: Vec<Tensor<2>>,
}

impl TaskOutputs {
    /// Probabilities for binary tasks (sigmoid of the logit), the values for regression tasks.
    pub fn predictions(&self, tasks: &[TaskInfo]) -> Vec<Tensor<2>> {
        self.outputs
            .iter()
            .zip(tasks)
            .map(|(out, task)| match task.kind {
                TaskKind::Binary => sigmoid(out.clone()),
                TaskKind::Regression => out.clone(),
            })
            .collect()
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
