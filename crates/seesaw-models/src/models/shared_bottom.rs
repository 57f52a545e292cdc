//! Shared-bottom (Caruana 1997): one embedding layer and MLP shared by all tasks, one tower per
//! task. The simplest hard parameter sharing, and the one most prone to the see-saw.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::FeatureSchema;

use crate::blocks::{FeatureEmbedding, Mlp, Tower};
use crate::error::Result;
use crate::input::ModelInput;
use crate::shared::RowGrouping;

#[derive(Module, Debug)]
pub struct SharedBottom {
    pub embedding: FeatureEmbedding,
    pub bottom: Mlp,
    pub towers: Vec<Tower>,
}

impl SharedBottom {
    pub fn new(
        schema: &FeatureSchema,
        n_tasks: usize,
        embedding_dim: usize,
        hidden: &[usize],
        tower_hidden: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let embedding = FeatureEmbedding::new(schema, embedding_dim, device)?;
        let bottom = Mlp::new(embedding.input_dim(), hidden, device);
        let towers =
            (0..n_tasks).map(|_| Tower::new(bottom.output_dim(), tower_hidden, device)).collect();
        Ok(Self { embedding, bottom, towers })
    }

    pub fn forward(&self, input: &ModelInput) -> Vec<Tensor<2>> {
        let h = self.bottom.forward(self.embedding.forward(input));
        self.towers.iter().map(|t| t.forward(h.clone())).collect()
    }

    /// `forward` with the shared slots embedded once per row group (see `crate::shared`).
    pub fn forward_shared(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> Vec<Tensor<2>> {
        let h = self.bottom.forward_split(&self.embedding.forward_split(input, grouping));
        self.towers.iter().map(|t| t.forward(h.clone())).collect()
    }
}
