//! Per-task logistic regression: the linear baseline. Each task has its own one-dimensional
//! "embedding" per categorical slot, which is exactly a weight per id (the classic one-hot LR),
//! the mean weight of a multi-valued slot's ids (LR on a normalised bag of ids), and a weight per
//! dense feature, plus a bias. No interactions, no sharing between tasks.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::FeatureSchema;

use crate::blocks::FeatureEmbedding;
use crate::blocks::mlp::split_linear;
use crate::error::Result;
use crate::input::ModelInput;
use crate::shared::RowGrouping;

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
}

impl Logistic {
    pub fn new(schema: &FeatureSchema, n_tasks: usize, device: &Device) -> Result<Self> {
        let tasks = (0..n_tasks)
            .map(|_| {
                let embedding = FeatureEmbedding::new(schema, 1, device)?;
                let linear = LinearConfig::new(embedding.input_dim(), 1).init(device);
                Ok(LogisticTask { embedding, linear })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { tasks })
    }

    pub fn forward(&self, input: &ModelInput) -> Vec<Tensor<2>> {
        self.tasks.iter().map(|t| t.linear.forward(t.embedding.forward(input))).collect()
    }

    /// `forward` with the shared slots embedded once per row group (see `crate::shared`).
    pub fn forward_shared(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> Vec<Tensor<2>> {
        self.tasks
            .iter()
            .map(|t| split_linear(&t.linear, &t.embedding.forward_split(input, grouping)))
            .collect()
    }
}
