//! Per-task logistic regression: the linear baseline. Each task has its own one-dimensional
//! "embedding" per categorical slot, which is exactly a weight per id (the classic one-hot LR),
//! the mean weight of a multi-valued slot's ids (LR on a normalised bag of ids), and a weight per
//! dense feature, plus a bias. No interactions, no sharing between tasks.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::blocks::FeatureEmbedding;
use crate::context::ModelContext;
use crate::contract::{ArchitectureConfig, TaskModel};
use crate::error::Result;
use crate::heads::TaskHeads;
use crate::input::ModelInput;
use crate::outputs::ModelOutputs;

/// `kind = "logistic"`: no settings of its own (the embedding size is 1 by definition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticConfig {}

impl ArchitectureConfig for LogisticConfig {
    type Model = Logistic;

    fn validate(&self) -> Result<()> {
        Ok(())
    }

    fn init(&self, context: &ModelContext, device: &Device) -> Result<Logistic> {
        let tasks = (0..context.tasks.len())
            .map(|_| {
                let embedding = FeatureEmbedding::new(&context.schema, 1, device)?;
                let linear = LinearConfig::new(embedding.input_dim(), 1).init(device);
                Ok(LogisticTask { embedding, linear })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Logistic { tasks, heads: TaskHeads::new(context) })
    }
}

#[derive(Module, Debug)]
pub struct LogisticTask {
    /// Dimension 1: one weight per id.
    pub embedding: FeatureEmbedding,
    /// Sums the id weights and weighs the dense features.
    pub linear: Linear,
}

#[derive(Module, Debug)]
pub struct Logistic {
    pub tasks: Vec<LogisticTask>,
    #[module(skip)]
    pub heads: TaskHeads,
}

impl TaskModel for Logistic {
    fn forward(&self, input: &ModelInput) -> ModelOutputs {
        let raw = self.tasks.iter().map(|t| t.embedding.forward(input).linear(&t.linear)).collect();
        ModelOutputs::of_tasks(self.heads.apply(raw))
    }
}
