//! Single-task networks: one complete network per task (own embeddings, MLP, tower), trained
//! together only because they share a batch. The reference every multi-task gain is measured
//! from: same inputs, same capacity per task, no sharing at all.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::FeatureSchema;

use crate::blocks::{FeatureEmbedding, Mlp, Tower};
use crate::error::Result;
use crate::input::ModelInput;
use crate::shared::RowGrouping;

#[derive(Module, Debug)]
pub struct SingleTaskNet {
    pub embedding: FeatureEmbedding,
    pub mlp: Mlp,
    pub tower: Tower,
}

#[derive(Module, Debug)]
pub struct SingleTask {
    pub nets: Vec<SingleTaskNet>,
}

impl SingleTask {
    pub fn new(
        schema: &FeatureSchema,
        n_tasks: usize,
        embedding_dim: usize,
        hidden: &[usize],
        tower_hidden: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let nets = (0..n_tasks)
            .map(|_| {
                let embedding = FeatureEmbedding::new(schema, embedding_dim, device)?;
                let mlp = Mlp::new(embedding.input_dim(), hidden, device);
                let tower = Tower::new(mlp.output_dim(), tower_hidden, device);
                Ok(SingleTaskNet { embedding, mlp, tower })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { nets })
    }

    pub fn forward(&self, input: &ModelInput) -> Vec<Tensor<2>> {
        self.nets
            .iter()
            .map(|n| n.tower.forward(n.mlp.forward(n.embedding.forward(input))))
            .collect()
    }

    /// `forward` with the shared slots embedded once per row group (see `crate::shared`).
    pub fn forward_shared(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> Vec<Tensor<2>> {
        self.nets
            .iter()
            .map(|n| {
                n.tower.forward(n.mlp.forward_split(&n.embedding.forward_split(input, grouping)))
            })
            .collect()
    }
}
