//! Cross-stitch networks (Misra et al. 2016): one full column per task (own embeddings and
//! hidden layers, like single-task networks); after each hidden layer a cross-stitch unit mixes
//! the columns, x̃_k = Σ_j α_kj x_j. With α = I it is exactly K independent single-task
//! networks, which the tests check.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use seesaw_data::feature_map::FeatureSchema;

use crate::blocks::mlp::split_linear;
use crate::blocks::{CrossStitchUnit, FeatureEmbedding, Mlp, Tower};
use crate::error::Result;
use crate::input::ModelInput;
use crate::shared::RowGrouping;

#[derive(Module, Debug)]
pub struct Column {
    pub embedding: FeatureEmbedding,
    /// Stepped through layer by layer, so the units can mix between layers.
    pub mlp: Mlp,
    pub tower: Tower,
}

#[derive(Module, Debug)]
pub struct CrossStitch {
    pub columns: Vec<Column>,
    /// One unit after each hidden layer.
    pub units: Vec<CrossStitchUnit>,
}

impl CrossStitch {
    pub fn new(
        schema: &FeatureSchema,
        n_tasks: usize,
        embedding_dim: usize,
        hidden: &[usize],
        tower_hidden: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let columns = (0..n_tasks)
            .map(|_| {
                let embedding = FeatureEmbedding::new(schema, embedding_dim, device)?;
                let mlp = Mlp::new(embedding.input_dim(), hidden, device);
                let tower = Tower::new(mlp.output_dim(), tower_hidden, device);
                Ok(Column { embedding, mlp, tower })
            })
            .collect::<Result<Vec<_>>>()?;
        let units = hidden.iter().map(|_| CrossStitchUnit::new(n_tasks, device)).collect();
        Ok(Self { columns, units })
    }

    pub fn forward(&self, input: &ModelInput) -> Vec<Tensor<2>> {
        let xs: Vec<Tensor<2>> = self.columns.iter().map(|c| c.embedding.forward(input)).collect();
        self.forward_from(xs, 0)
    }

    /// `forward` with the shared slots embedded once per row group (see `crate::shared`): the
    /// first hidden layer of each column reads the split embedding.
    pub fn forward_shared(&self, input: &ModelInput, grouping: &RowGrouping<'_>) -> Vec<Tensor<2>> {
        let hs = self
            .columns
            .iter()
            .map(|c| {
                relu(split_linear(&c.mlp.layers[0], &c.embedding.forward_split(input, grouping)))
            })
            .collect();
        let xs = self.units[0].forward(hs);
        self.forward_from(xs, 1)
    }

    /// The network from the input of hidden layer `first` on.
    fn forward_from(&self, mut xs: Vec<Tensor<2>>, first: usize) -> Vec<Tensor<2>> {
        for (l, unit) in self.units.iter().enumerate().skip(first) {
            let hs = xs
                .into_iter()
                .zip(&self.columns)
                .map(|(x, c)| relu(c.mlp.layers[l].forward(x)))
                .collect();
            xs = unit.forward(hs);
        }
        xs.into_iter().zip(&self.columns).map(|(x, c)| c.tower.forward(x)).collect()
    }
}
