//! The output heads of the tasks: binary towers hand out their logit, regression towers go
//! through the configured regression head. Models keep one `TaskHeads` and pass their raw tower
//! outputs through it, so none repeats the rule.

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use seesaw_data::feature_map::TaskKind;

use crate::context::{ModelContext, RegressionHead};
use crate::outputs::{OutputKind, TaskOutput};

#[derive(Debug, Clone)]
pub struct TaskHeads {
    kinds: Vec<TaskKind>,
    regression_head: RegressionHead,
}

impl TaskHeads {
    pub fn new(context: &ModelContext) -> Self {
        Self {
            kinds: context.tasks.iter().map(|t| t.kind).collect(),
            regression_head: context.regression_head,
        }
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Raw tower outputs ([B, 1] each, in task order) → task outputs.
    pub fn apply(&self, raw: Vec<Tensor<2>>) -> Vec<TaskOutput> {
        raw.into_iter().enumerate().map(|(k, out)| self.apply_one(k, out)).collect()
    }

    /// Task k's raw output ([B, 1]) → its task output.
    pub fn apply_one(&self, k: usize, raw: Tensor<2>) -> TaskOutput {
        match (self.kinds[k], self.regression_head) {
            (TaskKind::Binary, _) => TaskOutput { tensor: raw, kind: OutputKind::Logit },
            (TaskKind::Regression, RegressionHead::Sigmoid) => {
                TaskOutput { tensor: sigmoid(raw), kind: OutputKind::Value }
            }
            (TaskKind::Regression, RegressionHead::Identity) => {
                TaskOutput { tensor: raw, kind: OutputKind::Value }
            }
        }
    }
}
